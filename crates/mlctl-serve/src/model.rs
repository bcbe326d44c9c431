//! What the server needs from a model: its signature (inputs and outputs with their
//! datatypes and shapes, and whether axis 0 is a batch axis) and a way to run it.
//!
//! The ONNX implementation lives in `onnx.rs` behind the `onnx` feature; without that
//! feature [`load`] fails with an error that says so, and the server reports it as the reason
//! the model is not ready.

use std::path::Path;
use std::sync::Arc;

use crate::tensor::{DataType, Tensor};

/// The name, datatype and shape of one input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// The name requests and responses use.
    pub name: String,
    /// The element type.
    pub datatype: DataType,
    /// Dimensions; `None` is a dimension of any size (shown as -1 in metadata).
    pub shape: Vec<Option<usize>>,
}

impl TensorSpec {
    /// The shape as the protocol's metadata shows it: -1 for dimensions of any size.
    pub fn metadata_shape(&self) -> Vec<i64> {
        self.shape
            .iter()
            .map(|d| d.map_or(-1, |d| i64::try_from(d).unwrap_or(i64::MAX)))
            .collect()
    }
}

/// A model's inputs and outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Inputs, in the order the model takes them.
    pub inputs: Vec<TensorSpec>,
    /// Outputs, in the order the model produces them.
    pub outputs: Vec<TensorSpec>,
    /// Whether axis 0 of every input and output is one shared dimension of any size, so that
    /// requests can be joined along it into one run and the results split back.
    pub batchable: bool,
    /// The protocol's `platform` field, naming the runtime.
    pub platform: &'static str,
}

/// A loaded model.
pub trait Model: Send + Sync + 'static {
    /// Inputs and outputs.
    fn signature(&self) -> &Signature;

    /// Runs the model on `inputs`, given in the order of [`Signature::inputs`] and already
    /// checked against it; returns the outputs in the order of [`Signature::outputs`].
    fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, RunError>;
}

/// A model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("failed to read model file {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a model this build can run.
    #[error("failed to load ONNX model {path}: {message}")]
    Onnx {
        /// The file.
        path: String,
        /// The runtime's explanation, with its causes.
        message: String,
    },
    /// This build has no ONNX runtime.
    #[error(
        "failed to load model {path}: this mlctl was built without the `onnx` feature; rebuild with `--features onnx`"
    )]
    NoOnnxSupport {
        /// The file.
        path: String,
    },
}

/// A model failed while running.
#[derive(Debug, Clone, thiserror::Error)]
#[error("model run failed: {message}")]
pub struct RunError {
    /// The runtime's explanation.
    pub message: String,
}

/// Loads the ONNX model at `path`. Blocking: call it off the async runtime.
pub fn load(path: &Path) -> Result<Arc<dyn Model>, LoadError> {
    #[cfg(feature = "onnx")]
    {
        crate::onnx::OnnxModel::load(path).map(|m| Arc::new(m) as Arc<dyn Model>)
    }
    #[cfg(not(feature = "onnx"))]
    {
        Err(LoadError::NoOnnxSupport {
            path: path.display().to_string(),
        })
    }
}

#[cfg(all(test, not(feature = "onnx")))]
mod tests {
    #[test]
    fn without_onnx_loading_says_how_to_get_it() {
        let err = super::load(std::path::Path::new("m.onnx"))
            .err()
            .expect("no onnx");
        assert!(err.to_string().contains("--features onnx"), "{err}");
    }
}
