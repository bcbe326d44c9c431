//! Shared by the `oneshot` router tests and the loopback HTTP tests: the fixtures, a way to
//! build a server state around a real loaded model, and the table of requests with the
//! answers they must get. Each test file runs the same table through its own transport.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mlctl_serve::{ServerState, Settings};
use serde_json::{Value, json};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The inputs and numpy's outputs for `mlp.onnx` (written by make_models.py).
pub struct Expected {
    pub rows: usize,
    pub input: Vec<f32>,
    pub output: Vec<f32>,
}

pub fn expected() -> Expected {
    let text = std::fs::read_to_string(fixture("mlp.expected.json")).expect("expected outputs");
    let v: Value = serde_json::from_str(&text).expect("json");
    let floats = |v: &Value| -> Vec<f32> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|x| x.as_f64().expect("number") as f32)
            .collect()
    };
    Expected {
        rows: v["input"]["shape"][0].as_u64().expect("rows") as usize,
        input: floats(&v["input"]["data"]),
        output: floats(&v["output"]["data"]),
    }
}

/// Asserts two float vectors agree to within `1e-5`.
pub fn assert_close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "lengths differ: {got:?} vs {want:?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() < 1e-5, "element {i}: got {g}, want {w}");
    }
}

/// A list of rows (TensorFlow Serving's predictions or outputs), flattened.
pub fn flat_rows(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .flat_map(floats)
        .collect()
}

pub fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

/// A state serving the fixture `file` as `name`, with the model loaded. Needs a tokio
/// runtime (the batcher is a task).
pub fn ready_state(
    file: &str,
    name: &str,
    settings: impl FnOnce(&mut Settings),
) -> Arc<ServerState> {
    let mut s = Settings::new(name);
    settings(&mut s);
    let state = ServerState::new(s);
    let model = mlctl_serve::load(&fixture(file)).expect("fixture loads");
    state.set_model(model);
    state
}

/// One request and what it must get back.
pub struct Case {
    pub what: &'static str,
    pub method: &'static str,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    pub status: u16,
    /// A part of the `error` message (for errors) or of the body (for successes).
    pub contains: String,
}

/// A response as both transports see it.
pub struct Answer {
    pub status: u16,
    pub content_type: Option<String>,
    pub retry_after: Option<String>,
    pub header_length: Option<String>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn new(status: u16, headers: &axum::http::HeaderMap, body: Vec<u8>) -> Answer {
        let header = |name: &str| {
            headers
                .get(name)
                .map(|v| v.to_str().expect("ascii").to_owned())
        };
        Answer {
            status,
            content_type: header("content-type"),
            retry_after: header("retry-after"),
            header_length: header("inference-header-content-length"),
            body,
        }
    }

    /// The JSON body of a 200 answer (panics with the body otherwise).
    pub fn ok(&self) -> Value {
        assert_eq!(self.status, 200, "{}", String::from_utf8_lossy(&self.body));
        self.json()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

fn case(
    what: &'static str,
    method: &'static str,
    path: &str,
    body: Value,
    status: u16,
    contains: &str,
) -> Case {
    raw(
        what,
        method,
        path,
        body.to_string().as_bytes(),
        status,
        contains,
    )
}

fn raw(
    what: &'static str,
    method: &'static str,
    path: &str,
    body: &[u8],
    status: u16,
    contains: &str,
) -> Case {
    Case {
        what,
        method,
        path: path.to_owned(),
        headers: Vec::new(),
        body: body.to_vec(),
        status,
        contains: contains.to_owned(),
    }
}

fn row16() -> Vec<f32> {
    (0..16).map(|i| i as f32 / 16.0).collect()
}

fn input(name: &str, datatype: &str, shape: Value, data: Value) -> Value {
    json!({"name": name, "datatype": datatype, "shape": shape, "data": data})
}

/// A request body in the binary tensor data extension: JSON header, then `blob`.
pub fn binary_body(header: &Value, blob: &[u8]) -> (Vec<u8>, usize) {
    let mut body = header.to_string().into_bytes();
    let len = body.len();
    body.extend_from_slice(blob);
    (body, len)
}

/// Every error the inference routes of a server serving `mlp.onnx` as "mlp" can give.
pub fn mlp_error_cases() -> Vec<Case> {
    let infer = "/v2/models/mlp/infer";
    let good = || input("input", "FP32", json!([1, 16]), json!(row16()));
    let mut cases = vec![
        case(
            "unknown model",
            "POST",
            "/v2/models/nope/infer",
            json!({"inputs": [good()]}),
            404,
            "model \"nope\" is not served here",
        ),
        case(
            "unknown version",
            "POST",
            "/v2/models/mlp/versions/9/infer",
            json!({"inputs": [good()]}),
            404,
            "has no version \"9\"",
        ),
        case(
            "unknown model metadata",
            "GET",
            "/v2/models/nope",
            json!(null),
            404,
            "not served here",
        ),
        case(
            "unknown model ready",
            "GET",
            "/v2/models/nope/ready",
            json!(null),
            404,
            "not served here",
        ),
        case(
            "unknown version metadata",
            "GET",
            "/v2/models/mlp/versions/2",
            json!(null),
            404,
            "has no version \"2\"",
        ),
        raw(
            "malformed json",
            "POST",
            infer,
            b"{\"inputs\": [",
            400,
            "failed to parse the inference request",
        ),
        case(
            "inputs missing",
            "POST",
            infer,
            json!({"id": "x"}),
            400,
            "missing field `inputs`",
        ),
        case(
            "unknown input",
            "POST",
            infer,
            json!({"inputs": [input("wrong", "FP32", json!([1, 16]), json!(row16()))]}),
            400,
            "unknown input \"wrong\"; the model takes \"input\"",
        ),
        case(
            "missing input",
            "POST",
            infer,
            json!({"inputs": []}),
            400,
            "missing input \"input\"",
        ),
        case(
            "input twice",
            "POST",
            infer,
            json!({"inputs": [good(), good()]}),
            400,
            "input \"input\" is given more than once",
        ),
        case(
            "wrong datatype",
            "POST",
            infer,
            json!({"inputs": [input("input", "FP64", json!([1, 16]), json!(row16()))]}),
            400,
            "input \"input\" has datatype FP64, but the model takes FP32",
        ),
        case(
            "unknown datatype",
            "POST",
            infer,
            json!({"inputs": [input("input", "float32", json!([1, 16]), json!(row16()))]}),
            400,
            "has datatype \"float32\", which is not one of BOOL",
        ),
        case(
            "shape mismatch",
            "POST",
            infer,
            json!({"inputs": [input("input", "FP32", json!([1, 15]), json!(row16()[..15]))]}),
            400,
            "input \"input\" has shape [1, 15], but the model takes [-1, 16]",
        ),
        case(
            "rank mismatch",
            "POST",
            infer,
            json!({"inputs": [input("input", "FP32", json!([16]), json!(row16()))]}),
            400,
            "has shape [16], but the model takes [-1, 16]",
        ),
        case(
            "negative dimension",
            "POST",
            infer,
            json!({"inputs": [input("input", "FP32", json!([-1, 16]), json!(row16()))]}),
            400,
            "dimensions cannot be negative",
        ),
        case(
            "data shorter than shape",
            "POST",
            infer,
            json!({"inputs": [input("input", "FP32", json!([1, 16]), json!(row16()[..15]))]}),
            400,
            "input \"input\" has 15 elements in its data, but its shape [1, 16] needs 16",
        ),
        case(
            "data longer than shape",
            "POST",
            infer,
            json!({"inputs": [input("input", "FP32", json!([2, 16]), json!([row16(), row16(), row16()]))]}),
            400,
            "has 48 elements in its data, but its shape [2, 16] needs 32",
        ),
        case(
            "string element",
            "POST",
            infer,
            json!({"inputs": [input("input", "FP32", json!([1, 16]), json!(["a"]))]}),
            400,
            "input \"input\" has invalid data: found the string \"a\" where a FP32 value was expected",
        ),
        case(
            "no data",
            "POST",
            infer,
            json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 16]}]}),
            400,
            "input \"input\" has no \"data\"",
        ),
        case(
            "empty batch",
            "POST",
            infer,
            json!({"inputs": [input("input", "FP32", json!([0, 16]), json!([]))]}),
            400,
            "the batch size (axis 0) is 0",
        ),
        case(
            "unknown output",
            "POST",
            infer,
            json!({"inputs": [good()], "outputs": [{"name": "nope"}]}),
            400,
            "unknown output \"nope\"; the model has \"output\"",
        ),
        case(
            "output twice",
            "POST",
            infer,
            json!({"inputs": [good()], "outputs": [{"name": "output"}, {"name": "output"}]}),
            400,
            "output \"output\" is requested more than once",
        ),
        case(
            "classification",
            "POST",
            infer,
            json!({"inputs": [good()], "outputs": [{"name": "output", "parameters": {"classification": 2}}]}),
            400,
            "classification, which this server does not support",
        ),
        case(
            "infer with GET",
            "GET",
            infer,
            json!(null),
            405,
            "/v2/models/mlp/infer does not take GET",
        ),
        case(
            "unknown route",
            "GET",
            "/v3/whatever",
            json!(null),
            404,
            "no route for GET /v3/whatever",
        ),
        // TensorFlow Serving's routes.
        case(
            "v1 unknown model",
            "POST",
            "/v1/models/nope:predict",
            json!({"instances": [row16()]}),
            404,
            "not served here",
        ),
        case(
            "v1 unknown verb",
            "POST",
            "/v1/models/mlp:classify",
            json!({"instances": [row16()]}),
            404,
            "\"classify\" is not supported",
        ),
        case(
            "v1 no verb",
            "POST",
            "/v1/models/mlp",
            json!({"instances": [row16()]}),
            405,
            "POST needs a verb: /v1/models/mlp:predict",
        ),
        case(
            "v1 predict with GET",
            "GET",
            "/v1/models/mlp:predict",
            json!(null),
            405,
            "takes POST, not GET",
        ),
        case(
            "v1 neither format",
            "POST",
            "/v1/models/mlp:predict",
            json!({"signature_name": "x"}),
            400,
            "neither \"instances\" (row format) nor \"inputs\" (columnar format)",
        ),
        case(
            "v1 both formats",
            "POST",
            "/v1/models/mlp:predict",
            json!({"instances": [row16()], "inputs": [row16()]}),
            400,
            "has both \"instances\" and \"inputs\"",
        ),
        case(
            "v1 not an object",
            "POST",
            "/v1/models/mlp:predict",
            json!([1, 2]),
            400,
            "must be a JSON object",
        ),
        case(
            "v1 empty instances",
            "POST",
            "/v1/models/mlp:predict",
            json!({"instances": []}),
            400,
            "\"instances\" is empty",
        ),
        case(
            "v1 ragged instances",
            "POST",
            "/v1/models/mlp:predict",
            json!({"instances": [row16(), row16()[..3]]}),
            400,
            "its arrays are ragged",
        ),
        case(
            "v1 wrong row length",
            "POST",
            "/v1/models/mlp:predict",
            json!({"instances": [row16()[..3]]}),
            400,
            "has shape [1, 3], but the model takes [-1, 16]",
        ),
        case(
            "v1 unknown named input",
            "POST",
            "/v1/models/mlp:predict",
            json!({"instances": [{"wrong": row16()}]}),
            400,
            "instance 0 names unknown input \"wrong\"",
        ),
        case(
            "v1 bad element",
            "POST",
            "/v1/models/mlp:predict",
            json!({"inputs": [vec![true; 16]]}),
            400,
            "true is not a valid FP32 value",
        ),
        case(
            "v1 unknown version",
            "GET",
            "/v1/models/mlp/versions/7",
            json!(null),
            404,
            "has no version \"7\"",
        ),
    ];
    // The binary tensor data extension.
    let header = json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 16], "parameters": {"binary_data_size": 64}}]});
    let (body, len) = binary_body(&header, &[0u8; 64]);
    let binary = |what, body: &[u8], length: String, contains| {
        let mut case = raw(what, "POST", infer, body, 400, contains);
        case.headers
            .push(("Inference-Header-Content-Length", length));
        case
    };
    cases.push(binary(
        "binary header longer than body",
        &body,
        "100000".into(),
        "header Inference-Header-Content-Length is 100000, but the body has only",
    ));
    cases.push(binary(
        "binary header not a number",
        &body,
        "ten".into(),
        "must be a byte count",
    ));
    cases.push(binary(
        "binary data short",
        &body[..body.len() - 4],
        len.to_string(),
        "claims 64 bytes of binary data, but only 60 remain",
    ));
    let mut extra = body.clone();
    extra.extend_from_slice(&[1, 2, 3]);
    cases.push(binary(
        "binary data left over",
        &extra,
        len.to_string(),
        "3 bytes of binary data after the JSON header belong to no input",
    ));
    let ragged_header = json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 16], "parameters": {"binary_data_size": 62}}]});
    let (body, len) = binary_body(&ragged_header, &[0u8; 62]);
    cases.push(binary(
        "binary size not whole elements",
        &body,
        len.to_string(),
        "62 bytes of binary data is not a whole number of FP32 elements",
    ));
    let both_header = json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 16], "data": row16(), "parameters": {"binary_data_size": 64}}]});
    let (body, len) = binary_body(&both_header, &[0u8; 64]);
    cases.push(binary(
        "binary and json data",
        &body,
        len.to_string(),
        "has both \"data\" and parameters.binary_data_size",
    ));
    cases
}

/// Errors only a model with two inputs can show.
pub fn multi_error_cases() -> Vec<Case> {
    let infer = "/v2/models/multi/infer";
    vec![
        case(
            "batch sizes disagree",
            "POST",
            infer,
            json!({"inputs": [
                input("a", "FP32", json!([2, 3]), json!([1, 2, 3, 4, 5, 6])),
                input("b", "INT64", json!([1, 3]), json!([1, 2, 3])),
            ]}),
            400,
            "inputs disagree on the batch size (axis 0): \"a\" has 2, \"b\" has 1",
        ),
        case(
            "int out of range",
            "POST",
            infer,
            json!({"inputs": [
                input("a", "FP32", json!([1, 3]), json!([1, 2, 3])),
                input("b", "INT64", json!([1, 3]), json!([1, 2.5, 3])),
            ]}),
            400,
            "input \"b\" has invalid data: 2.5 is not a valid INT64 value",
        ),
        case(
            "second input missing",
            "POST",
            infer,
            json!({"inputs": [
                input("a", "FP32", json!([1, 3]), json!([1, 2, 3])),
            ]}),
            400,
            "missing input \"b\"; the model takes \"a\", \"b\"",
        ),
        case(
            "v1 instance not named",
            "POST",
            "/v1/models/multi:predict",
            json!({"instances": [[1, 2, 3]]}),
            400,
            "instance 0 must be an object naming the model's inputs (\"a\", \"b\")",
        ),
        case(
            "v1 instance lacks input",
            "POST",
            "/v1/models/multi:predict",
            json!({"instances": [{"a": [1, 2, 3]}]}),
            400,
            "instance 0 has no input \"b\"",
        ),
        case(
            "v1 columns not named",
            "POST",
            "/v1/models/multi:predict",
            json!({"inputs": [[1, 2, 3]]}),
            400,
            "\"inputs\" must be an object naming the model's inputs",
        ),
    ]
}

/// Checks `answer` against `case`: the status, the OIP error body (`{"error": ...}` with
/// content type application/json) or a success body containing `contains`.
pub fn check(case: &Case, answer: &Answer) {
    let body = String::from_utf8_lossy(&answer.body);
    assert_eq!(
        answer.status, case.status,
        "{}: status; body {body}",
        case.what
    );
    if case.status >= 400 {
        assert_eq!(
            answer.content_type.as_deref(),
            Some("application/json"),
            "{}: content type",
            case.what
        );
        let json = answer.json();
        let message = json["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no error in {json}", case.what));
        assert!(
            message.contains(&case.contains),
            "{}: error {message:?} does not contain {:?}",
            case.what,
            case.contains
        );
        assert_eq!(
            json.as_object().map(|o| o.len()),
            Some(1),
            "{}: only `error` in {json}",
            case.what
        );
    } else {
        assert!(
            body.contains(&case.contains),
            "{}: {body} lacks {:?}",
            case.what,
            case.contains
        );
    }
}
