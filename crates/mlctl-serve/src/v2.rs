//! The Open Inference Protocol v2 inference request and response over REST, including the
//! binary tensor data extension (a JSON header of `Inference-Header-Content-Length` bytes
//! followed by raw little-endian tensors) that tritonclient and the KServe SDK use by
//! default.
//!
//! Requests are checked against the model's signature here, so that everything that reaches
//! the batcher is known to fit: input names, datatypes, shapes, element counts, and one batch
//! size shared by all inputs.

use std::collections::HashSet;

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::ApiError;
use crate::model::{Signature, TensorSpec};
use crate::tensor::{DataType, Tensor, TensorData, element_count};

/// The header that says how long the JSON part of a binary request or response is.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

#[derive(Deserialize)]
struct RequestJson<'a> {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: Option<RequestParameters>,
    #[serde(borrow)]
    inputs: Vec<InputJson<'a>>,
    #[serde(default)]
    outputs: Option<Vec<OutputJson>>,
}

#[derive(Deserialize, Default)]
struct RequestParameters {
    #[serde(default)]
    binary_data_output: Option<bool>,
}

#[derive(Deserialize)]
struct InputJson<'a> {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Option<InputParameters>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
struct InputParameters {
    #[serde(default)]
    binary_data_size: Option<u64>,
}

#[derive(Deserialize)]
struct OutputJson {
    name: String,
    #[serde(default)]
    parameters: Option<OutputParameters>,
}

#[derive(Deserialize, Default)]
struct OutputParameters {
    #[serde(default)]
    binary_data: Option<bool>,
    #[serde(default)]
    classification: Option<serde_json::Value>,
}

/// A checked inference request.
#[derive(Debug)]
pub struct InferRequest {
    /// The client's request id, echoed in the response.
    pub id: Option<String>,
    /// Inputs in the model's order.
    pub inputs: Vec<Tensor>,
    /// Size of axis 0 (1 for models without a batch axis).
    pub rows: usize,
    /// Which outputs to return, in order, and whether as binary data.
    pub outputs: Vec<OutputChoice>,
}

/// One output to return.
#[derive(Debug, Clone, Copy)]
pub struct OutputChoice {
    /// Index into the model's outputs.
    pub index: usize,
    /// Whether to send it as binary data after the JSON header.
    pub binary: bool,
}

/// Reads and checks a request body against `signature`.
pub fn parse_request(
    headers: &HeaderMap,
    body: &[u8],
    signature: &Signature,
) -> Result<InferRequest, ApiError> {
    let (json, mut binary) = match headers.get(HEADER_LENGTH) {
        Some(value) => {
            let len: usize = value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "header Inference-Header-Content-Length must be a byte count, not {value:?}"
                    ))
                })?;
            if len > body.len() {
                return Err(ApiError::bad_request(format!(
                    "header Inference-Header-Content-Length is {len}, but the body has only {} bytes",
                    body.len()
                )));
            }
            body.split_at(len)
        }
        None => (body, &[][..]),
    };
    let request: RequestJson<'_> = serde_json::from_slice(json).map_err(|e| {
        ApiError::bad_request(format!("failed to parse the inference request: {e}"))
    })?;
    let binary_outputs = request
        .parameters
        .as_ref()
        .and_then(|p| p.binary_data_output)
        .unwrap_or(false);

    let mut slots: Vec<Option<Tensor>> = vec![None; signature.inputs.len()];
    for input in &request.inputs {
        let ix = signature
            .inputs
            .iter()
            .position(|s| s.name == input.name)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unknown input {:?}; the model takes {}",
                    input.name,
                    names(&signature.inputs)
                ))
            })?;
        if slots[ix].is_some() {
            return Err(ApiError::bad_request(format!(
                "input {:?} is given more than once",
                input.name
            )));
        }
        let spec = &signature.inputs[ix];
        let datatype = check_datatype(spec, &input.datatype)?;
        let shape = check_shape(spec, &input.shape)?;
        let count = element_count(&shape).ok_or_else(|| {
            ApiError::bad_request(format!(
                "input {:?} has shape {:?}, which has too many elements",
                input.name, input.shape
            ))
        })?;
        let binary_size = input.parameters.as_ref().and_then(|p| p.binary_data_size);
        let data = match (binary_size, input.data) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(format!(
                    "input {:?} has both \"data\" and parameters.binary_data_size; give one",
                    input.name
                )));
            }
            (None, None) => {
                return Err(ApiError::bad_request(format!(
                    "input {:?} has no \"data\" (and no parameters.binary_data_size)",
                    input.name
                )));
            }
            (Some(size), None) => {
                let size = usize::try_from(size).unwrap_or(usize::MAX);
                if size > binary.len() {
                    return Err(ApiError::bad_request(format!(
                        "input {:?} claims {size} bytes of binary data, but only {} remain after the JSON header",
                        input.name,
                        binary.len()
                    )));
                }
                let (bytes, rest) = binary.split_at(size);
                binary = rest;
                TensorData::from_le_bytes(datatype, bytes)
                    .map_err(|e| ApiError::bad_request(format!("input {:?}: {e}", input.name)))?
            }
            (None, Some(raw)) => {
                TensorData::from_json(datatype, raw.get(), count).map_err(|e| {
                    ApiError::bad_request(format!("input {:?} has invalid data: {e}", input.name))
                })?
            }
        };
        if data.len() != count {
            return Err(ApiError::bad_request(format!(
                "input {:?} has {} elements in its data, but its shape {:?} needs {count}",
                input.name,
                data.len(),
                shape
            )));
        }
        slots[ix] = Some(Tensor { shape, data });
    }
    if !binary.is_empty() {
        return Err(ApiError::bad_request(format!(
            "{} bytes of binary data after the JSON header belong to no input",
            binary.len()
        )));
    }
    let mut inputs = Vec::with_capacity(slots.len());
    for (spec, slot) in signature.inputs.iter().zip(slots) {
        match slot {
            Some(t) => inputs.push(t),
            None => {
                return Err(ApiError::bad_request(format!(
                    "missing input {:?}; the model takes {}",
                    spec.name,
                    names(&signature.inputs)
                )));
            }
        }
    }
    let rows = batch_rows(signature, &inputs)?;
    let outputs = match &request.outputs {
        None => (0..signature.outputs.len())
            .map(|index| OutputChoice {
                index,
                binary: binary_outputs,
            })
            .collect(),
        Some(requested) => {
            let mut seen = HashSet::new();
            let mut choices = Vec::with_capacity(requested.len());
            for out in requested {
                let index = signature
                    .outputs
                    .iter()
                    .position(|s| s.name == out.name)
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "unknown output {:?}; the model has {}",
                            out.name,
                            names(&signature.outputs)
                        ))
                    })?;
                if !seen.insert(index) {
                    return Err(ApiError::bad_request(format!(
                        "output {:?} is requested more than once",
                        out.name
                    )));
                }
                let params = out.parameters.as_ref();
                if params.and_then(|p| p.classification.as_ref()).is_some() {
                    return Err(ApiError::bad_request(format!(
                        "output {:?} asks for classification, which this server does not support",
                        out.name
                    )));
                }
                let binary = params.and_then(|p| p.binary_data).unwrap_or(binary_outputs);
                choices.push(OutputChoice { index, binary });
            }
            choices
        }
    };
    Ok(InferRequest {
        id: request.id,
        inputs,
        rows,
        outputs,
    })
}

fn names(specs: &[TensorSpec]) -> String {
    let quoted: Vec<String> = specs.iter().map(|s| format!("{:?}", s.name)).collect();
    quoted.join(", ")
}

fn check_datatype(spec: &TensorSpec, given: &str) -> Result<DataType, ApiError> {
    let Some(datatype) = DataType::parse(given) else {
        let known: Vec<&str> = DataType::ALL.iter().map(|t| t.as_str()).collect();
        return Err(ApiError::bad_request(format!(
            "input {:?} has datatype {given:?}, which is not one of {}",
            spec.name,
            known.join(", ")
        )));
    };
    if datatype != spec.datatype {
        return Err(ApiError::bad_request(format!(
            "input {:?} has datatype {datatype}, but the model takes {}",
            spec.name, spec.datatype
        )));
    }
    Ok(datatype)
}

/// Checks a shape given in a request (or inferred from nested data) against the model's.
pub(crate) fn check_shape(spec: &TensorSpec, given: &[i64]) -> Result<Vec<usize>, ApiError> {
    let mismatch = || {
        ApiError::bad_request(format!(
            "input {:?} has shape {given:?}, but the model takes {:?}",
            spec.name,
            spec.metadata_shape()
        ))
    };
    if given.len() != spec.shape.len() {
        return Err(mismatch());
    }
    let mut shape = Vec::with_capacity(given.len());
    for (&g, &want) in given.iter().zip(&spec.shape) {
        let g = usize::try_from(g).map_err(|_| {
            ApiError::bad_request(format!(
                "input {:?} has shape {given:?}; dimensions cannot be negative",
                spec.name
            ))
        })?;
        if want.is_some_and(|w| w != g) {
            return Err(mismatch());
        }
        shape.push(g);
    }
    Ok(shape)
}

/// The batch size all inputs share along axis 0, for models with a batch axis.
pub(crate) fn batch_rows(signature: &Signature, inputs: &[Tensor]) -> Result<usize, ApiError> {
    if !signature.batchable {
        return Ok(1);
    }
    let rows = inputs
        .first()
        .and_then(|t| t.shape.first())
        .copied()
        .unwrap_or(1);
    for (spec, tensor) in signature.inputs.iter().zip(inputs) {
        let r = tensor.shape.first().copied().unwrap_or(1);
        if r != rows {
            return Err(ApiError::bad_request(format!(
                "inputs disagree on the batch size (axis 0): {:?} has {rows}, {:?} has {r}",
                signature.inputs[0].name, spec.name
            )));
        }
    }
    if rows == 0 {
        return Err(ApiError::bad_request(
            "the batch size (axis 0) is 0; send at least one row",
        ));
    }
    Ok(rows)
}

#[derive(Serialize)]
struct ResponseJson<'a> {
    model_name: &'a str,
    model_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    outputs: Vec<OutputOut<'a>>,
}

#[derive(Serialize)]
struct OutputOut<'a> {
    name: &'a str,
    datatype: &'static str,
    shape: &'a [usize],
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<BinaryParameters>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a TensorData>,
}

#[derive(Serialize)]
struct BinaryParameters {
    binary_data_size: usize,
}

/// An encoded response body; `json_len` is set when binary data follows the JSON.
pub struct EncodedResponse {
    /// The body.
    pub body: Vec<u8>,
    /// Length of the JSON header when the body carries binary outputs.
    pub json_len: Option<usize>,
}

/// Encodes the outputs a request asked for (`choices`), echoing its `id`.
pub fn encode_response(
    model_name: &str,
    model_version: &str,
    id: Option<&str>,
    choices: &[OutputChoice],
    signature: &Signature,
    outputs: &[Tensor],
) -> Result<EncodedResponse, ApiError> {
    let mut binary = Vec::new();
    let mut outs = Vec::with_capacity(choices.len());
    for choice in choices {
        let tensor = outputs.get(choice.index).ok_or_else(|| {
            ApiError::internal(format!(
                "the model returned {} outputs, fewer than its signature's {}",
                outputs.len(),
                signature.outputs.len()
            ))
        })?;
        let spec = &signature.outputs[choice.index];
        let (parameters, data) = if choice.binary {
            let before = binary.len();
            tensor.data.write_le_bytes(&mut binary);
            (
                Some(BinaryParameters {
                    binary_data_size: binary.len() - before,
                }),
                None,
            )
        } else {
            (None, Some(&tensor.data))
        };
        outs.push(OutputOut {
            name: &spec.name,
            datatype: tensor.datatype().as_str(),
            shape: &tensor.shape,
            parameters,
            data,
        });
    }
    let response = ResponseJson {
        model_name,
        model_version,
        id,
        outputs: outs,
    };
    let mut body = serde_json::to_vec(&response)
        .map_err(|e| ApiError::internal(format!("failed to encode the response: {e}")))?;
    if !choices.iter().any(|c| c.binary) {
        return Ok(EncodedResponse {
            body,
            json_len: None,
        });
    }
    let json_len = body.len();
    body.extend_from_slice(&binary);
    Ok(EncodedResponse {
        body,
        json_len: Some(json_len),
    })
}
