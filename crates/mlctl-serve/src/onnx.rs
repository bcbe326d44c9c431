//! ONNX models through tract: loading (with the signature read off the typed model) and
//! running one batch.
//!
//! The file is read into memory rather than memory-mapped (tract's `model_for_path` maps
//! it): a model file replaced or truncated while the server runs must not crash it, and the
//! path may be a pipe.

use std::path::Path;

use tract_onnx::prelude::*;

use crate::model::{LoadError, Model, RunError, Signature, TensorSpec};
use crate::tensor::{DataType, Tensor as ServeTensor, TensorData};

/// An optimized tract plan and the signature it was built from.
pub struct OnnxModel {
    plan: Arc<TypedRunnableModel>,
    signature: Signature,
}

impl OnnxModel {
    /// Reads, parses, types and optimizes the model at `path`.
    pub fn load(path: &Path) -> Result<OnnxModel, LoadError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: shown.clone(),
            source,
        })?;
        let onnx_error = |e: TractError| LoadError::Onnx {
            path: shown.clone(),
            message: format!("{e:#}"),
        };
        let onnx = onnx();
        let proto = onnx
            .proto_model_for_read(&mut bytes.as_slice())
            .map_err(onnx_error)?;
        // External tensor data is resolved relative to the model's directory.
        let dir = path.parent().and_then(Path::to_str);
        let parsed = onnx.parse(&proto, dir).map_err(onnx_error)?;
        if !parsed.unresolved_inputs.is_empty() {
            return Err(LoadError::Onnx {
                path: shown,
                message: format!(
                    "nodes read tensors that nothing in the graph defines: {}",
                    parsed.unresolved_inputs.join(", ")
                ),
            });
        }
        let model = parsed.model;
        let input_names: Vec<String> = model
            .input_outlets()
            .map_err(onnx_error)?
            .iter()
            .map(|o| model.node(o.node).name.clone())
            .collect();
        let output_names: Vec<String> = model
            .output_outlets()
            .map_err(onnx_error)?
            .iter()
            .map(|o| {
                model
                    .outlet_label(*o)
                    .map_or_else(|| model.node(o.node).name.clone(), str::to_owned)
            })
            .collect();
        let typed = model.into_typed().map_err(onnx_error)?;
        let inputs =
            specs(&typed, &input_names, Side::Input).map_err(|message| LoadError::Onnx {
                path: shown.clone(),
                message,
            })?;
        let outputs =
            specs(&typed, &output_names, Side::Output).map_err(|message| LoadError::Onnx {
                path: shown.clone(),
                message,
            })?;
        let batchable = batch_axis_shared(&typed).map_err(onnx_error)?;
        let plan = typed
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(onnx_error)?;
        Ok(OnnxModel {
            plan,
            signature: Signature {
                inputs,
                outputs,
                batchable,
                platform: "tract_onnx",
            },
        })
    }
}

#[derive(Clone, Copy)]
enum Side {
    Input,
    Output,
}

fn specs(model: &TypedModel, names: &[String], side: Side) -> Result<Vec<TensorSpec>, String> {
    let mut specs = Vec::with_capacity(names.len());
    for (ix, name) in names.iter().enumerate() {
        let (fact, what) = match side {
            Side::Input => (model.input_fact(ix), "input"),
            Side::Output => (model.output_fact(ix), "output"),
        };
        let fact = fact.map_err(|e| format!("{e:#}"))?;
        let datatype = datatype(fact.datum_type).ok_or_else(|| {
            format!(
                "{what} {name:?} has element type {:?}, which this server cannot exchange",
                fact.datum_type
            )
        })?;
        let shape = fact
            .shape
            .iter()
            .map(|d| d.as_i64().and_then(|v| usize::try_from(v).ok()))
            .collect();
        specs.push(TensorSpec {
            name: name.clone(),
            datatype,
            shape,
        });
    }
    Ok(specs)
}

/// Axis 0 is a batch axis when every input and output has, as its first dimension, the same
/// symbol, and that symbol appears nowhere else in their shapes.
fn batch_axis_shared(model: &TypedModel) -> TractResult<bool> {
    let mut facts = Vec::new();
    for ix in 0..model.inputs.len() {
        facts.push(model.input_fact(ix)?);
    }
    for ix in 0..model.outputs.len() {
        facts.push(model.output_fact(ix)?);
    }
    let Some(first) = facts.first() else {
        return Ok(false);
    };
    let Some(TDim::Sym(batch)) = first.shape.iter().next() else {
        return Ok(false);
    };
    let batch = batch.clone();
    Ok(facts.iter().all(|fact| {
        let mut dims = fact.shape.iter();
        let leads = matches!(dims.next(), Some(TDim::Sym(s)) if *s == batch);
        leads && dims.all(|d| !d.symbols().contains(&batch))
    }))
}

fn datatype(t: DatumType) -> Option<DataType> {
    Some(match t {
        DatumType::Bool => DataType::Bool,
        DatumType::U8 => DataType::U8,
        DatumType::U16 => DataType::U16,
        DatumType::U32 => DataType::U32,
        DatumType::U64 => DataType::U64,
        DatumType::I8 => DataType::I8,
        DatumType::I16 => DataType::I16,
        DatumType::I32 => DataType::I32,
        DatumType::I64 => DataType::I64,
        DatumType::F16 => DataType::F16,
        DatumType::F32 => DataType::F32,
        DatumType::F64 => DataType::F64,
        _ => return None,
    })
}

fn to_tract(tensor: ServeTensor) -> TractResult<TValue> {
    let shape = tensor.shape;
    macro_rules! array {
        ($v:expr) => {
            tract_ndarray::ArrayD::from_shape_vec(tract_ndarray::IxDyn(&shape), $v)?
                .into_tensor()
                .into_tvalue()
        };
    }
    Ok(match tensor.data {
        TensorData::Bool(v) => array!(v),
        TensorData::U8(v) => array!(v),
        TensorData::U16(v) => array!(v),
        TensorData::U32(v) => array!(v),
        TensorData::U64(v) => array!(v),
        TensorData::I8(v) => array!(v),
        TensorData::I16(v) => array!(v),
        TensorData::I32(v) => array!(v),
        TensorData::I64(v) => array!(v),
        TensorData::F16(v) => array!(v),
        TensorData::F32(v) => array!(v),
        TensorData::F64(v) => array!(v),
    })
}

fn from_tract(value: &Tensor) -> TractResult<ServeTensor> {
    let shape = value.shape().to_vec();
    let plain = value.try_as_plain_ram()?;
    let data = match value.datum_type() {
        DatumType::Bool => TensorData::Bool(plain.as_slice::<bool>()?.to_vec()),
        DatumType::U8 => TensorData::U8(plain.as_slice::<u8>()?.to_vec()),
        DatumType::U16 => TensorData::U16(plain.as_slice::<u16>()?.to_vec()),
        DatumType::U32 => TensorData::U32(plain.as_slice::<u32>()?.to_vec()),
        DatumType::U64 => TensorData::U64(plain.as_slice::<u64>()?.to_vec()),
        DatumType::I8 => TensorData::I8(plain.as_slice::<i8>()?.to_vec()),
        DatumType::I16 => TensorData::I16(plain.as_slice::<i16>()?.to_vec()),
        DatumType::I32 => TensorData::I32(plain.as_slice::<i32>()?.to_vec()),
        DatumType::I64 => TensorData::I64(plain.as_slice::<i64>()?.to_vec()),
        DatumType::F16 => TensorData::F16(plain.as_slice::<f16>()?.to_vec()),
        DatumType::F32 => TensorData::F32(plain.as_slice::<f32>()?.to_vec()),
        DatumType::F64 => TensorData::F64(plain.as_slice::<f64>()?.to_vec()),
        other => {
            return Err(TractError::msg(format!(
                "the model produced {other:?} elements, which this server cannot send"
            )));
        }
    };
    Ok(ServeTensor { shape, data })
}

impl Model for OnnxModel {
    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn run(&self, inputs: Vec<ServeTensor>) -> Result<Vec<ServeTensor>, RunError> {
        let run = || -> TractResult<Vec<ServeTensor>> {
            let inputs = inputs
                .into_iter()
                .map(to_tract)
                .collect::<TractResult<TVec<_>>>()?;
            let outputs = self.plan.run(inputs)?;
            outputs.iter().map(|v| from_tract(v)).collect()
        };
        run().map_err(|e| RunError {
            message: format!("{e:#}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    #[test]
    fn mlp_signature() {
        let model = OnnxModel::load(&fixture("mlp.onnx")).expect("loads");
        let sig = model.signature();
        assert_eq!(sig.inputs.len(), 1);
        assert_eq!(sig.inputs[0].name, "input");
        assert_eq!(sig.inputs[0].datatype, DataType::F32);
        assert_eq!(sig.inputs[0].shape, vec![None, Some(16)]);
        assert_eq!(sig.outputs[0].name, "output");
        assert_eq!(sig.outputs[0].metadata_shape(), vec![-1, 2]);
        assert!(sig.batchable);
    }

    #[test]
    fn fixed_shape_model_is_not_batchable() {
        let model = OnnxModel::load(&fixture("fixed.onnx")).expect("loads");
        assert_eq!(model.signature().inputs[0].shape, vec![Some(2), Some(3)]);
        assert!(!model.signature().batchable);
    }

    #[test]
    fn multi_signature_keeps_order_and_types() {
        let model = OnnxModel::load(&fixture("multi.onnx")).expect("loads");
        let sig = model.signature();
        let names: Vec<_> = sig
            .inputs
            .iter()
            .map(|s| (s.name.as_str(), s.datatype))
            .collect();
        assert_eq!(names, [("a", DataType::F32), ("b", DataType::I64)]);
        let names: Vec<_> = sig
            .outputs
            .iter()
            .map(|s| (s.name.as_str(), s.datatype))
            .collect();
        assert_eq!(
            names,
            [("sum", DataType::F32), ("b_doubled", DataType::I64)]
        );
        assert!(sig.batchable);
        let out = model
            .run(vec![
                ServeTensor {
                    shape: vec![1, 3],
                    data: TensorData::F32(vec![0.5, 1.0, 1.5]),
                },
                ServeTensor {
                    shape: vec![1, 3],
                    data: TensorData::I64(vec![1, -2, 3]),
                },
            ])
            .expect("runs");
        assert_eq!(out[0].data, TensorData::F32(vec![1.5, -1.0, 4.5]));
        assert_eq!(out[1].data, TensorData::I64(vec![2, -4, 6]));
    }

    #[test]
    fn broken_model_names_the_missing_tensor() {
        let err = OnnxModel::load(&fixture("broken.onnx"))
            .err()
            .expect("fails");
        assert!(err.to_string().contains("ghost"), "{err}");
    }

    #[test]
    fn missing_and_garbage_files_fail_to_load() {
        let err = OnnxModel::load(&fixture("nope.onnx")).err().expect("fails");
        assert!(matches!(err, LoadError::Read { .. }), "{err}");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("garbage.onnx");
        std::fs::write(&path, b"this is not a protobuf \xff\xff\xff").expect("write");
        let err = OnnxModel::load(&path).err().expect("fails");
        assert!(matches!(err, LoadError::Onnx { .. }), "{err}");
    }
}
