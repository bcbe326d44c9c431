//! The routes without a socket: `router(state)` driven with `oneshot`, over a real tract
//! model, in every phase of the server's life.

#![cfg(feature = "onnx")]

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use mlctl_serve::{ServerState, Settings, router};
use serde_json::{Value, json};
use tower::ServiceExt;

use common::{Answer, Case, assert_close, check, expected, flat_rows, floats, ready_state};

async fn send(
    app: &Router,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Answer {
    let mut request = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        request = request.header(*k, v);
    }
    let request = request.body(Body::from(body)).expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Answer::new(status, &headers, body)
}

async fn get(app: &Router, path: &str) -> Answer {
    send(app, "GET", path, &[], Vec::new()).await
}

async fn post_json(app: &Router, path: &str, body: &Value) -> Answer {
    send(app, "POST", path, &[], body.to_string().into_bytes()).await
}

async fn run_cases(app: &Router, cases: &[Case]) {
    for case in cases {
        let answer = send(
            app,
            case.method,
            &case.path,
            &case.headers,
            case.body.clone(),
        )
        .await;
        check(case, &answer);
    }
}

#[tokio::test]
async fn every_mlp_error_has_its_status_and_message() {
    let app = router(ready_state("mlp.onnx", "mlp", |_| {}));
    run_cases(&app, &common::mlp_error_cases()).await;
}

#[tokio::test]
async fn every_multi_input_error_has_its_status_and_message() {
    let app = router(ready_state("multi.onnx", "multi", |_| {}));
    run_cases(&app, &common::multi_error_cases()).await;
}

#[tokio::test]
async fn infer_matches_numpy() {
    let app = router(ready_state("mlp.onnx", "mlp", |_| {}));
    let e = expected();
    let answer = post_json(
        &app,
        "/v2/models/mlp/infer",
        &json!({"id": "req-1", "inputs": [{"name": "input", "datatype": "FP32", "shape": [e.rows, 16], "data": e.input}]}),
    )
    .await;
    answer.ok();
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    let json = answer.json();
    assert_eq!(json["model_name"], "mlp");
    assert_eq!(json["model_version"], "1");
    assert_eq!(json["id"], "req-1");
    assert_eq!(json["outputs"][0]["name"], "output");
    assert_eq!(json["outputs"][0]["datatype"], "FP32");
    assert_eq!(json["outputs"][0]["shape"], json!([e.rows, 2]));
    assert_close(&floats(&json["outputs"][0]["data"]), &e.output);
}

#[tokio::test]
async fn metadata_lists_inputs_and_outputs() {
    let app = router(ready_state("multi.onnx", "multi", |s| {
        s.version = "3".into()
    }));
    let want = json!({
        "name": "multi",
        "versions": ["3"],
        "platform": "tract_onnx",
        "inputs": [
            {"name": "a", "datatype": "FP32", "shape": [-1, 3]},
            {"name": "b", "datatype": "INT64", "shape": [-1, 3]},
        ],
        "outputs": [
            {"name": "sum", "datatype": "FP32", "shape": [-1, 3]},
            {"name": "b_doubled", "datatype": "INT64", "shape": [-1, 3]},
        ],
    });
    assert_eq!(get(&app, "/v2/models/multi").await.json(), want);
    assert_eq!(get(&app, "/v2/models/multi/versions/3").await.json(), want);
    assert_eq!(get(&app, "/v2/models/multi/versions/1").await.status, 404);
}

#[tokio::test]
async fn while_loading_nothing_is_ready_but_the_process_is_live() {
    let app = router(ServerState::new(Settings::new("mlp")));
    let live = get(&app, "/v2/health/live").await;
    assert_eq!((live.status, live.json()), (200, json!({"live": true})));
    for path in [
        "/v2/health/ready",
        "/v2/models/mlp/ready",
        "/v2/models/mlp/versions/1/ready",
    ] {
        let answer = get(&app, path).await;
        assert_eq!(answer.status, 503, "{path}");
        assert_eq!(answer.retry_after.as_deref(), Some("1"), "{path}");
        assert_eq!(answer.json()["ready"], false, "{path}");
        assert_eq!(answer.json()["error"], "model \"mlp\" is loading", "{path}");
    }
    let metadata = get(&app, "/v2/models/mlp").await;
    assert_eq!(
        (metadata.status, metadata.json()["error"].clone()),
        (503, json!("model \"mlp\" is loading"))
    );
    let infer = post_json(&app, "/v2/models/mlp/infer", &json!({"inputs": []})).await;
    assert_eq!(infer.status, 503);
    assert_eq!(infer.retry_after.as_deref(), Some("1"));
    let status = get(&app, "/v1/models/mlp").await;
    assert_eq!(status.status, 503);
    assert_eq!(status.json()["ready"], false);
    assert_eq!(status.json()["model_version_status"][0]["state"], "LOADING");
    let metrics = String::from_utf8(get(&app, "/metrics").await.body).expect("utf8");
    assert!(
        metrics.contains("model_ready{model=\"mlp\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("model_requests_total{model=\"mlp\",code=\"503\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_failed_load_is_reported_on_every_ready_route() {
    let state = ServerState::new(Settings::new("mlp"));
    state.set_failed("failed to read model file m.onnx: No such file or directory");
    let app = router(state);
    for path in ["/v2/health/ready", "/v2/models/mlp/ready"] {
        let answer = get(&app, path).await;
        assert_eq!(answer.status, 503, "{path}");
        assert_eq!(answer.retry_after, None, "{path}: waiting will not help");
        let error = answer.json()["error"].as_str().expect("error").to_owned();
        assert_eq!(
            error,
            "model \"mlp\" failed to load: failed to read model file m.onnx: No such file or directory"
        );
    }
    let status = get(&app, "/v1/models/mlp").await.json();
    assert_eq!(status["model_version_status"][0]["state"], "END");
    assert_eq!(
        status["model_version_status"][0]["status"]["error_code"],
        "UNKNOWN"
    );
    assert_eq!(get(&app, "/v2/health/live").await.status, 200);
}

#[tokio::test]
async fn draining_refuses_readiness_but_answers_inference() {
    let state = ready_state("mlp.onnx", "mlp", |_| {});
    let app = router(state.clone());
    assert_eq!(
        get(&app, "/v2/health/ready").await.json(),
        json!({"ready": true})
    );
    assert_eq!(
        get(&app, "/v2/models/mlp/ready").await.json(),
        json!({"name": "mlp", "ready": true})
    );
    state.begin_drain();
    let ready = get(&app, "/v2/health/ready").await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.json()["error"], "the server is shutting down");
    assert_eq!(
        get(&app, "/v1/models/mlp").await.json()["model_version_status"][0]["state"],
        "UNLOADING"
    );
    let e = expected();
    let infer = post_json(
        &app,
        "/v2/models/mlp/infer",
        &json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 16], "data": e.input[..16]}]}),
    )
    .await;
    assert_eq!(infer.status, 200);
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let app = router(ready_state("mlp.onnx", "mlp", |s| s.max_body_bytes = 1024));
    let big = json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [100, 16], "data": vec![0.5f32; 1600]}]});
    let answer = post_json(&app, "/v2/models/mlp/infer", &big).await;
    assert_eq!(answer.status, 413);
    assert_eq!(
        answer.json()["error"],
        "the request body is larger than the server accepts"
    );
}

#[tokio::test]
async fn tf_serving_predict_in_both_formats() {
    let app = router(ready_state("mlp.onnx", "mlp", |_| {}));
    let e = expected();
    let rows: Vec<&[f32]> = e.input.chunks(16).collect();
    let answer = post_json(&app, "/v1/models/mlp:predict", &json!({"instances": rows})).await;
    answer.ok();
    assert_close(&flat_rows(&answer.json()["predictions"]), &e.output);
    let answer = post_json(
        &app,
        "/v1/models/mlp/versions/1:predict",
        &json!({"inputs": rows}),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_close(&flat_rows(&answer.json()["outputs"]), &e.output);
}

#[tokio::test]
async fn tf_serving_predict_with_named_inputs_and_outputs() {
    let app = router(ready_state("multi.onnx", "multi", |_| {}));
    let answer = post_json(
        &app,
        "/v1/models/multi:predict",
        &json!({"instances": [{"a": [0.5, 1, 1.5], "b": [1, 2, 3]}, {"a": [0, 0, 0], "b": [-1, -2, -3]}]}),
    )
    .await;
    answer.ok();
    assert_eq!(
        answer.json(),
        json!({"predictions": [
            {"sum": [1.5, 3.0, 4.5], "b_doubled": [2, 4, 6]},
            {"sum": [-1.0, -2.0, -3.0], "b_doubled": [-2, -4, -6]},
        ]})
    );
    let answer = post_json(
        &app,
        "/v1/models/multi:predict",
        &json!({"inputs": {"a": [[1, 1, 1]], "b": [[2, 2, 2]]}}),
    )
    .await;
    assert_eq!(
        answer.json(),
        json!({"outputs": {"sum": [[3.0, 3.0, 3.0]], "b_doubled": [[4, 4, 4]]}})
    );
}

#[tokio::test]
async fn requested_outputs_choose_and_order_the_response() {
    let app = router(ready_state("multi.onnx", "multi", |_| {}));
    let answer = post_json(
        &app,
        "/v2/models/multi/infer",
        &json!({
            "inputs": [
                {"name": "b", "datatype": "INT64", "shape": [1, 3], "data": [[4, 5, 6]]},
                {"name": "a", "datatype": "FP32", "shape": [1, 3], "data": [[1, 1, 1]]},
            ],
            "outputs": [{"name": "b_doubled"}],
        }),
    )
    .await;
    answer.ok();
    assert_eq!(
        answer.json()["outputs"],
        json!([{"name": "b_doubled", "datatype": "INT64", "shape": [1, 3], "data": [8, 10, 12]}])
    );
}

#[tokio::test]
async fn metrics_count_requests_by_code() {
    let app = router(ready_state("mlp.onnx", "mlp", |_| {}));
    let good = json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 16], "data": vec![0.0; 16]}]});
    post_json(&app, "/v2/models/mlp/infer", &good).await;
    post_json(
        &app,
        "/v1/models/mlp:predict",
        &json!({"instances": [vec![0.0; 16]]}),
    )
    .await;
    post_json(&app, "/v2/models/mlp/infer", &json!({"inputs": []})).await;
    post_json(&app, "/v2/models/other/infer", &good).await;
    let answer = get(&app, "/metrics").await;
    assert_eq!(
        answer.content_type.as_deref(),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = String::from_utf8(answer.body).expect("utf8");
    assert!(
        text.contains("model_requests_total{model=\"mlp\",code=\"200\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("model_requests_total{model=\"mlp\",code=\"400\"} 1"),
        "{text}"
    );
    assert!(
        !text.contains("model=\"other\""),
        "requests for other models are not counted: {text}"
    );
    assert!(
        text.contains("model_inference_duration_seconds_count{model=\"mlp\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("model_batch_size_count{model=\"mlp\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("model_queue_depth{model=\"mlp\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("model_inflight_requests{model=\"mlp\"} 0"),
        "{text}"
    );
    assert!(text.contains("model_ready{model=\"mlp\"} 1"), "{text}");
}

#[tokio::test]
async fn server_metadata_names_the_binary_extension() {
    let app = router(ServerState::new(Settings::new("mlp")));
    let answer = get(&app, "/v2").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["name"], "mlctl");
    assert_eq!(answer.json()["extensions"], json!(["binary_tensor_data"]));
}
