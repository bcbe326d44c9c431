//! TensorFlow Serving's REST predict API (`POST /v1/models/NAME:predict`), which KServe's v1
//! protocol also speaks: the row format (`{"instances": [...]}` answered with
//! `{"predictions": [...]}`) and the columnar format (`{"inputs": ...}` answered with
//! `{"outputs": ...}`). Tensors are nested JSON arrays whose shape is read off the nesting.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

use crate::error::ApiError;
use crate::model::{Signature, TensorSpec};
use crate::tensor::{Scalar, Tensor, TensorData, element_count};
use crate::v2::{batch_rows, check_shape};

/// Which of the two request formats was used; the response uses the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `instances` / `predictions`.
    Row,
    /// `inputs` / `outputs`.
    Columnar,
}

/// A checked predict request.
#[derive(Debug)]
pub struct PredictRequest {
    /// Inputs in the model's order.
    pub inputs: Vec<Tensor>,
    /// Size of axis 0 (the number of instances in the row format).
    pub rows: usize,
    /// The request's format.
    pub format: Format,
}

/// Reads and checks a predict request body against `signature`.
pub fn parse_predict(body: &[u8], signature: &Signature) -> Result<PredictRequest, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("failed to parse the predict request: {e}")))?;
    let Some(object) = value.as_object() else {
        return Err(ApiError::bad_request(
            "the predict request must be a JSON object with \"instances\" or \"inputs\"",
        ));
    };
    let (format, inputs) = match (object.get("instances"), object.get("inputs")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "the predict request has both \"instances\" and \"inputs\"; give one",
            ));
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "the predict request has neither \"instances\" (row format) nor \"inputs\" (columnar format)",
            ));
        }
        (Some(instances), None) => (Format::Row, from_instances(instances, signature)?),
        (None, Some(inputs)) => (Format::Columnar, from_columns(inputs, signature)?),
    };
    let rows = match format {
        Format::Row => inputs
            .first()
            .and_then(|t| t.shape.first())
            .copied()
            .unwrap_or(1),
        Format::Columnar => batch_rows(signature, &inputs)?,
    };
    Ok(PredictRequest {
        inputs,
        rows,
        format,
    })
}

fn from_instances(instances: &Value, signature: &Signature) -> Result<Vec<Tensor>, ApiError> {
    let Some(instances) = instances.as_array() else {
        return Err(ApiError::bad_request("\"instances\" must be an array"));
    };
    if instances.is_empty() {
        return Err(ApiError::bad_request("\"instances\" is empty"));
    }
    let single = signature.inputs.len() == 1;
    let mut columns: Vec<Vec<Value>> = signature
        .inputs
        .iter()
        .map(|_| Vec::with_capacity(instances.len()))
        .collect();
    for (i, instance) in instances.iter().enumerate() {
        match instance.as_object() {
            Some(named) => {
                check_names(named.keys(), signature, &format!("instance {i}"))?;
                for (spec, column) in signature.inputs.iter().zip(&mut columns) {
                    let v = named.get(&spec.name).ok_or_else(|| {
                        ApiError::bad_request(format!("instance {i} has no input {:?}", spec.name))
                    })?;
                    column.push(v.clone());
                }
            }
            None if single => columns[0].push(instance.clone()),
            None => {
                return Err(ApiError::bad_request(format!(
                    "instance {i} must be an object naming the model's inputs ({})",
                    names(&signature.inputs)
                )));
            }
        }
    }
    signature
        .inputs
        .iter()
        .zip(columns)
        .map(|(spec, column)| tensor(spec, &Value::Array(column)))
        .collect()
}

fn from_columns(inputs: &Value, signature: &Signature) -> Result<Vec<Tensor>, ApiError> {
    match inputs.as_object() {
        Some(named) => {
            check_names(named.keys(), signature, "\"inputs\"")?;
            signature
                .inputs
                .iter()
                .map(|spec| {
                    let v = named.get(&spec.name).ok_or_else(|| {
                        ApiError::bad_request(format!("\"inputs\" has no input {:?}", spec.name))
                    })?;
                    tensor(spec, v)
                })
                .collect()
        }
        None if signature.inputs.len() == 1 => Ok(vec![tensor(&signature.inputs[0], inputs)?]),
        None => Err(ApiError::bad_request(format!(
            "\"inputs\" must be an object naming the model's inputs ({})",
            names(&signature.inputs)
        ))),
    }
}

fn check_names<'a>(
    keys: impl Iterator<Item = &'a String>,
    signature: &Signature,
    what: &str,
) -> Result<(), ApiError> {
    for key in keys {
        if !signature.inputs.iter().any(|s| &s.name == key) {
            return Err(ApiError::bad_request(format!(
                "{what} names unknown input {key:?}; the model takes {}",
                names(&signature.inputs)
            )));
        }
    }
    Ok(())
}

fn names(specs: &[TensorSpec]) -> String {
    let quoted: Vec<String> = specs.iter().map(|s| format!("{:?}", s.name)).collect();
    quoted.join(", ")
}

/// A tensor from nested JSON arrays, its shape read off the nesting.
fn tensor(spec: &TensorSpec, value: &Value) -> Result<Tensor, ApiError> {
    let shape = nested_shape(value, 0).map_err(|e| {
        ApiError::bad_request(format!("input {:?} is not a tensor: {e}", spec.name))
    })?;
    let shape = check_shape(spec, &shape)?;
    let count = element_count(&shape).unwrap_or(0);
    let data = TensorData::from_json_value(spec.datatype, value, count).map_err(|e| {
        ApiError::bad_request(format!("input {:?} has invalid data: {e}", spec.name))
    })?;
    Ok(Tensor { shape, data })
}

/// Reads the shape of nested arrays, checking that they are not ragged.
fn nested_shape(value: &Value, depth: usize) -> Result<Vec<i64>, String> {
    if depth > 32 {
        return Err("it is nested deeper than 32 levels".into());
    }
    let Value::Array(items) = value else {
        return Ok(Vec::new());
    };
    let mut shape = vec![i64::try_from(items.len()).unwrap_or(i64::MAX)];
    if let Some(first) = items.first() {
        let inner = nested_shape(first, depth + 1)?;
        for (i, item) in items.iter().enumerate().skip(1) {
            let other = nested_shape(item, depth + 1)?;
            if other != inner {
                return Err(format!(
                    "its arrays are ragged: element {i} at depth {depth} has shape {other:?}, the first has {inner:?}"
                ));
            }
        }
        shape.extend(inner);
    }
    Ok(shape)
}

/// Encodes the model's outputs in the request's format.
pub fn encode_predict(
    format: Format,
    rows: usize,
    signature: &Signature,
    outputs: &[Tensor],
) -> Result<Vec<u8>, ApiError> {
    let encoded = match format {
        Format::Columnar => serde_json::to_vec(&Columns { signature, outputs }),
        Format::Row => {
            for (spec, t) in signature.outputs.iter().zip(outputs) {
                if t.shape.first() != Some(&rows) {
                    return Err(ApiError::internal(format!(
                        "output {:?} has shape {:?}, which cannot be split into {rows} predictions",
                        spec.name, t.shape
                    )));
                }
            }
            serde_json::to_vec(&Predictions {
                signature,
                outputs,
                rows,
            })
        }
    };
    encoded.map_err(|e| ApiError::internal(format!("failed to encode the response: {e}")))
}

struct Columns<'a> {
    signature: &'a Signature,
    outputs: &'a [Tensor],
}

impl Serialize for Columns<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        if let [only] = self.outputs {
            map.serialize_entry("outputs", &Nested::whole(only))?;
        } else {
            map.serialize_entry(
                "outputs",
                &Named {
                    signature: self.signature,
                    outputs: self.outputs,
                    row: None,
                },
            )?;
        }
        map.end()
    }
}

struct Predictions<'a> {
    signature: &'a Signature,
    outputs: &'a [Tensor],
    rows: usize,
}

impl Serialize for Predictions<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct List<'b>(&'b Predictions<'b>);
        impl Serialize for List<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let p = self.0;
                let mut seq = s.serialize_seq(Some(p.rows))?;
                for row in 0..p.rows {
                    if let [only] = p.outputs {
                        seq.serialize_element(&Nested::row(only, row))?;
                    } else {
                        seq.serialize_element(&Named {
                            signature: p.signature,
                            outputs: p.outputs,
                            row: Some(row),
                        })?;
                    }
                }
                seq.end()
            }
        }
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry("predictions", &List(self))?;
        map.end()
    }
}

/// `{"name": tensor, ...}` for every output, whole or one row of each.
struct Named<'a> {
    signature: &'a Signature,
    outputs: &'a [Tensor],
    row: Option<usize>,
}

impl Serialize for Named<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.outputs.len()))?;
        for (spec, t) in self.signature.outputs.iter().zip(self.outputs) {
            match self.row {
                Some(row) => map.serialize_entry(&spec.name, &Nested::row(t, row))?,
                None => map.serialize_entry(&spec.name, &Nested::whole(t))?,
            }
        }
        map.end()
    }
}

/// Part of a tensor as nested arrays: the elements from `start` in the given shape.
struct Nested<'a> {
    data: &'a TensorData,
    shape: &'a [usize],
    start: usize,
}

impl<'a> Nested<'a> {
    fn whole(t: &'a Tensor) -> Nested<'a> {
        Nested {
            data: &t.data,
            shape: &t.shape,
            start: 0,
        }
    }

    fn row(t: &'a Tensor, row: usize) -> Nested<'a> {
        let inner = t.shape.get(1..).unwrap_or(&[]);
        Nested {
            data: &t.data,
            shape: inner,
            start: row * element_count(inner).unwrap_or(0),
        }
    }
}

impl Serialize for Nested<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let len = element_count(self.shape).unwrap_or(0);
        let range = self.start..self.start + len;
        crate::tensor::with_vec!(self.data, v => NestedSlice { data: &v[range], shape: self.shape }.serialize(s))
    }
}

struct NestedSlice<'a, T> {
    data: &'a [T],
    shape: &'a [usize],
}

impl<T: Scalar> Serialize for NestedSlice<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.shape.split_first() {
            None => match self.data.first() {
                Some(x) => x.serialize_scalar(s),
                None => s.serialize_unit(),
            },
            Some((&n, rest)) => {
                let step = element_count(rest).unwrap_or(0);
                let mut seq = s.serialize_seq(Some(n))?;
                for i in 0..n {
                    seq.serialize_element(&NestedSlice {
                        data: &self.data[i * step..(i + 1) * step],
                        shape: rest,
                    })?;
                }
                seq.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::DataType;

    fn spec(name: &str, shape: Vec<Option<usize>>) -> TensorSpec {
        TensorSpec {
            name: name.into(),
            datatype: DataType::F32,
            shape,
        }
    }

    #[test]
    fn ragged_arrays_are_refused() {
        let err = nested_shape(&serde_json::json!([[1, 2], [3]]), 0).expect_err("ragged");
        assert!(err.contains("ragged"), "{err}");
        let shape = nested_shape(&serde_json::json!([[1, 2], [3, 4], [5, 6]]), 0).expect("ok");
        assert_eq!(shape, vec![3, 2]);
        assert_eq!(
            nested_shape(&serde_json::json!(7), 0).expect("scalar"),
            Vec::<i64>::new()
        );
    }

    #[test]
    fn nested_output_keeps_its_shape() {
        let t = Tensor {
            shape: vec![2, 2],
            data: TensorData::F32(vec![1.0, 2.0, 3.0, 4.5]),
        };
        let sig = Signature {
            inputs: vec![spec("x", vec![None, Some(2)])],
            outputs: vec![spec("y", vec![None, Some(2)])],
            batchable: true,
            platform: "test",
        };
        let row = encode_predict(Format::Row, 2, &sig, std::slice::from_ref(&t)).expect("row");
        assert_eq!(
            String::from_utf8_lossy(&row),
            r#"{"predictions":[[1.0,2.0],[3.0,4.5]]}"#
        );
        let col = encode_predict(Format::Columnar, 2, &sig, &[t]).expect("columnar");
        assert_eq!(
            String::from_utf8_lossy(&col),
            r#"{"outputs":[[1.0,2.0],[3.0,4.5]]}"#
        );
    }
}
