//! mlctl's model server: one ONNX model served over the Open Inference Protocol v2 (REST,
//! with the binary tensor data extension) and TensorFlow Serving's v1 REST API, with dynamic
//! batching, a bounded queue, Prometheus metrics and graceful shutdown.
//!
//! It is a program of its own (`mlctl serve-model`): the local runtime starts one per replica
//! as a child process, and the container image runs it in a cluster. Nothing here knows about
//! the runtime.
//!
//! - [`router`] builds the routes over a [`ServerState`] (tested with `oneshot`, no socket);
//! - [`Server`] binds, loads the model in the background, serves, and drains on shutdown.

mod batch;
mod busy_poll;
mod error;
mod http;
mod metrics;
mod model;
#[cfg(feature = "onnx")]
mod onnx;
mod server;
mod tensor;
mod v1;
mod v2;

pub use batch::BatchConfig;
pub use busy_poll::{QUIET, REARM_WINDOWS};
pub use error::ApiError;
pub use http::{admin_router, router};
pub use metrics::Metrics;
pub use model::{LoadError, Model, RunError, Signature, TensorSpec, load};
pub use server::{
    DEFAULT_BUSY_POLL, Phase, ServeError, Server, ServerConfig, ServerState, Settings, load_model,
};
pub use tensor::{DataType, Tensor, TensorData};
