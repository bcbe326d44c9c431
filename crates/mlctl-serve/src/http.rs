//! The routes: Open Inference Protocol v2 (health, server and model metadata, model
//! readiness, inference, and the `/versions/V` forms tritonclient uses), TensorFlow Serving's
//! v1 status and `:predict`, and `/metrics`.
//!
//! Every failure is an [`ApiError`]: `{"error": "..."}` with the right status. Inference
//! requests for the served model are counted in `model_requests_total` by status code.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::batch::InferError;
use crate::error::{ApiError, json_response};
use crate::metrics;
use crate::server::{Loaded, Phase, ServerState};
use crate::tensor::Tensor;
use crate::{v1, v2};

type AppState = State<Arc<ServerState>>;

/// The server's routes, for `state`.
pub fn router(state: Arc<ServerState>) -> Router {
    let limit = state.settings().max_body_bytes;
    Router::new()
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(server_ready))
        .route("/v2", get(server_metadata))
        .route("/v2/models/{name}", get(model_metadata))
        .route("/v2/models/{name}/ready", get(model_ready))
        .route("/v2/models/{name}/infer", post(infer))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(model_metadata_version),
        )
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(model_ready_version),
        )
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(infer_version),
        )
        .route("/v1/models/{name}", get(v1_status).post(v1_predict))
        .route(
            "/v1/models/{name}/versions/{version}",
            get(v1_status_version).post(v1_predict_version),
        )
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// The admin port's routes: `/metrics` and the health routes.
pub fn admin_router(state: Arc<ServerState>) -> Router {
    Router::new()
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(server_ready))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

fn ok_json(value: &serde_json::Value) -> Response {
    json_response(StatusCode::OK, value.to_string().into_bytes())
}

/// A readiness answer: 200 `{..., "ready": true}`, or the error's status with
/// `{..., "ready": false, "error": why}`.
fn ready_response(mut body: serde_json::Value, readiness: Result<(), ApiError>) -> Response {
    match readiness {
        Ok(()) => {
            body["ready"] = json!(true);
            ok_json(&body)
        }
        Err(e) => {
            body["ready"] = json!(false);
            body["error"] = json!(e.message);
            let mut response = json_response(e.status, body.to_string().into_bytes());
            if let Some(seconds) = e.retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            response
        }
    }
}

async fn live() -> Response {
    ok_json(&json!({"live": true}))
}

async fn server_ready(State(state): AppState) -> Response {
    ready_response(json!({}), state.readiness())
}

async fn server_metadata() -> Response {
    ok_json(&json!({
        "name": "mlctl",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["binary_tensor_data"],
    }))
}

fn metadata(state: &ServerState, name: &str, version: Option<&str>) -> Result<Response, ApiError> {
    state.check_model(name, version)?;
    let loaded = state.loaded()?;
    let signature = loaded.model.signature();
    let tensors = |specs: &[crate::model::TensorSpec]| -> Vec<serde_json::Value> {
        specs
            .iter()
            .map(|s| {
                json!({
                    "name": s.name,
                    "datatype": s.datatype.as_str(),
                    "shape": s.metadata_shape(),
                })
            })
            .collect()
    };
    Ok(ok_json(&json!({
        "name": state.settings().name,
        "versions": [state.settings().version],
        "platform": signature.platform,
        "inputs": tensors(&signature.inputs),
        "outputs": tensors(&signature.outputs),
    })))
}

async fn model_metadata(State(state): AppState, Path(name): Path<String>) -> Response {
    metadata(&state, &name, None).unwrap_or_else(IntoResponse::into_response)
}

async fn model_metadata_version(
    State(state): AppState,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    metadata(&state, &name, Some(&version)).unwrap_or_else(IntoResponse::into_response)
}

fn model_ready_impl(state: &ServerState, name: &str, version: Option<&str>) -> Response {
    if let Err(e) = state.check_model(name, version) {
        return e.into_response();
    }
    ready_response(json!({"name": name}), state.readiness())
}

async fn model_ready(State(state): AppState, Path(name): Path<String>) -> Response {
    model_ready_impl(&state, &name, None)
}

async fn model_ready_version(
    State(state): AppState,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    model_ready_impl(&state, &name, Some(&version))
}

async fn infer(
    State(state): AppState,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    infer_impl(&state, &name, None, &headers, body).await
}

async fn infer_version(
    State(state): AppState,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    infer_impl(&state, &name, Some(&version), &headers, body).await
}

async fn infer_impl(
    state: &ServerState,
    name: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    counted(state, name, version, |started| {
        v2_infer(state, headers, body, started)
    })
    .await
}

/// Answers an inference request for the served model with `handle` (given the time the
/// request arrived) and counts the answer in `model_requests_total`; requests for other
/// models get 404 and are not counted.
async fn counted<F>(
    state: &ServerState,
    name: &str,
    version: Option<&str>,
    handle: impl FnOnce(Instant) -> F,
) -> Response
where
    F: Future<Output = Result<Response, ApiError>>,
{
    if let Err(e) = state.check_model(name, version) {
        return e.into_response();
    }
    let response = handle(Instant::now())
        .await
        .unwrap_or_else(IntoResponse::into_response);
    state.metrics().count_request(response.status().as_u16());
    response
}

/// The request body and the loaded model, or why there are none.
fn body_and_model(
    state: &ServerState,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Bytes, &Loaded), ApiError> {
    let body = body.map_err(body_error)?;
    Ok((body, state.loaded()?))
}

async fn v2_infer(
    state: &ServerState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    started: Instant,
) -> Result<Response, ApiError> {
    let (body, loaded) = body_and_model(state, body)?;
    let signature = loaded.model.signature();
    let request = v2::parse_request(headers, &body, signature)?;
    drop(body);
    let outputs = run(state, loaded, request.inputs, request.rows, started).await?;
    let settings = state.settings();
    let encoded = v2::encode_response(
        &settings.name,
        &settings.version,
        request.id.as_deref(),
        &request.outputs,
        signature,
        &outputs,
    )?;
    let mut response = (StatusCode::OK, encoded.body).into_response();
    let headers = response.headers_mut();
    match encoded.json_len {
        Some(len) => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            headers.insert(v2::HEADER_LENGTH, HeaderValue::from(len));
        }
        None => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
    }
    Ok(response)
}

/// Keeps `model_inflight_requests` right even when the client goes away mid-request.
struct Inflight<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl Drop for Inflight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

async fn run(
    state: &ServerState,
    loaded: &Loaded,
    inputs: Vec<Tensor>,
    rows: usize,
    started: Instant,
) -> Result<Vec<Tensor>, ApiError> {
    let metrics = state.metrics();
    metrics.inflight.inc();
    let _inflight = Inflight(&metrics.inflight);
    let result = loaded.batcher.infer(inputs, rows).await;
    if !matches!(result, Err(InferError::QueueFull(_) | InferError::Stopped)) {
        metrics
            .inference_duration
            .observe(started.elapsed().as_secs_f64());
    }
    result.map_err(|e| match e {
        InferError::QueueFull(_) => {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, e.to_string()).retry_after(1)
        }
        InferError::Stopped => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).retry_after(1)
        }
        InferError::Run(e) => ApiError::internal(e.to_string()),
    })
}

fn body_error(rejection: BytesRejection) -> ApiError {
    let status = rejection.status();
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "the request body is larger than the server accepts".to_owned()
    } else {
        format!("failed to read the request body: {}", rejection.body_text())
    };
    ApiError::new(status, message)
}

fn tf_state(phase: &Phase) -> (&'static str, &'static str, String) {
    match phase {
        Phase::Loading => ("LOADING", "UNAVAILABLE", "the model is loading".into()),
        Phase::Ready => ("AVAILABLE", "OK", String::new()),
        Phase::Failed(reason) => ("END", "UNKNOWN", reason.clone()),
        Phase::Draining => (
            "UNLOADING",
            "UNAVAILABLE",
            "the server is shutting down".into(),
        ),
    }
}

fn v1_status_impl(state: &ServerState, segment: &str, version: Option<&str>) -> Response {
    if segment.contains(':') {
        return ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{segment:?} takes POST, not GET"),
        )
        .into_response();
    }
    if let Err(e) = state.check_model(segment, version) {
        return e.into_response();
    }
    let phase = state.phase();
    let (tf, code, message) = tf_state(&phase);
    // TensorFlow Serving's status document, plus the `ready` field KServe's v1 client reads.
    let body = json!({
        "name": segment,
        "ready": phase == Phase::Ready,
        "model_version_status": [{
            "version": state.settings().version,
            "state": tf,
            "status": {"error_code": code, "error_message": message},
        }],
    });
    let status = if phase == Phase::Ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(status, body.to_string().into_bytes())
}

async fn v1_status(State(state): AppState, Path(name): Path<String>) -> Response {
    v1_status_impl(&state, &name, None)
}

async fn v1_status_version(
    State(state): AppState,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    v1_status_impl(&state, &name, Some(&version))
}

async fn v1_predict(
    State(state): AppState,
    Path(segment): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // The verb is in the model's segment: /v1/models/mlp:predict.
    let (name, verb) = split_verb(&segment);
    v1_predict_impl(&state, name, None, verb, body).await
}

async fn v1_predict_version(
    State(state): AppState,
    Path((name, segment)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (version, verb) = split_verb(&segment);
    v1_predict_impl(&state, &name, Some(version), verb, body).await
}

fn split_verb(segment: &str) -> (&str, Option<&str>) {
    match segment.rsplit_once(':') {
        Some((name, verb)) => (name, Some(verb)),
        None => (segment, None),
    }
}

async fn v1_predict_impl(
    state: &ServerState,
    name: &str,
    version: Option<&str>,
    verb: Option<&str>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match verb {
        Some("predict") => {}
        Some(other) => {
            return ApiError::not_found(format!(
                "{other:?} is not supported; this server answers :predict"
            ))
            .into_response();
        }
        None => {
            return ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("POST needs a verb: /v1/models/{name}:predict"),
            )
            .into_response();
        }
    }
    counted(state, name, version, |started| {
        predict(state, body, started)
    })
    .await
}

async fn predict(
    state: &ServerState,
    body: Result<Bytes, BytesRejection>,
    started: Instant,
) -> Result<Response, ApiError> {
    let (body, loaded) = body_and_model(state, body)?;
    let signature = loaded.model.signature();
    let request = v1::parse_predict(&body, signature)?;
    drop(body);
    let (format, rows) = (request.format, request.rows);
    let outputs = run(state, loaded, request.inputs, rows, started).await?;
    let body = v1::encode_predict(format, rows, signature, &outputs)?;
    Ok(json_response(StatusCode::OK, body))
}

async fn metrics(State(state): AppState) -> Response {
    let mut response = (StatusCode::OK, state.metrics().encode()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(metrics::CONTENT_TYPE),
    );
    response
}

async fn not_found(method: Method, uri: Uri) -> Response {
    ApiError::not_found(format!(
        "no route for {method} {}; the inference routes are under /v2/models/NAME",
        uri.path()
    ))
    .into_response()
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} does not take {method}", uri.path()),
    )
    .into_response()
}
