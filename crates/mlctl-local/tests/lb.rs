//! The local load balancer over real HTTP on loopback: backends are small hyper servers started
//! here on free ports that answer with their name; the client is hyper-util's.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::header::HeaderValue;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mlctl_local::lb::{Backend, BackendStats, Balancer, Group};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};

/// Upper bound on waiting for any event; tests end as soon as the event happens.
const DEADLINE: Duration = Duration::from_secs(30);

async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

type TestBody = BoxBody<Bytes, Infallible>;
type TestClient = Client<HttpConnector, TestBody>;

fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build_http()
}

fn empty() -> TestBody {
    Empty::new().boxed()
}

fn full(bytes: impl Into<Bytes>) -> TestBody {
    Full::new(bytes.into()).boxed()
}

/// A request body fed chunk by chunk from the test.
struct ChanBody(mpsc::Receiver<Bytes>);

impl Body for ChanBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

/// A backend that says who it is. Routes: `/who` (its name), `/slow` (reports that it was
/// entered, then waits for a permit of `gate`), `/drip` (answers at once but holds back the end
/// of its body until a permit of `gate`), `/fail` (500), `/inspect` (what it received,
/// as JSON), `/echo` (streams the request body back).
struct TestBackend {
    name: String,
    addr: SocketAddr,
    gate: Arc<Semaphore>,
    entered: mpsc::UnboundedReceiver<()>,
}

struct BackendState {
    name: String,
    gate: Arc<Semaphore>,
    entered: mpsc::UnboundedSender<()>,
}

type BackendBody = BoxBody<Bytes, hyper::Error>;

fn text(status: StatusCode, body: String) -> Response<BackendBody> {
    let mut response = Response::new(Full::new(Bytes::from(body)).map_err(|n| match n {}).boxed());
    *response.status_mut() = status;
    response
}

async fn backend_handle(
    state: Arc<BackendState>,
    req: Request<Incoming>,
) -> Result<Response<BackendBody>, Infallible> {
    let name = state.name.clone();
    Ok(match req.uri().path() {
        "/who" => text(StatusCode::OK, name),
        "/slow" => {
            state.entered.send(()).expect("test is listening");
            state.gate.acquire().await.expect("gate open").forget();
            text(StatusCode::OK, name)
        }
        "/fail" => text(StatusCode::INTERNAL_SERVER_ERROR, name),
        "/drip" => {
            // The head and a first chunk now, the rest once the gate opens.
            let (tx, rx) = mpsc::channel(1);
            tokio::spawn(async move {
                tx.send(Bytes::from(format!("{name}:first;")))
                    .await
                    .expect("client reads");
                state.gate.acquire().await.expect("gate open").forget();
                tx.send(Bytes::from_static(b"rest"))
                    .await
                    .expect("client reads");
            });
            Response::new(ChanBody(rx).map_err(|n| match n {}).boxed())
        }
        "/echo" => Response::new(req.into_body().boxed()),
        "/inspect" => {
            let header = |n: &str| {
                let values: Vec<&str> = req
                    .headers()
                    .get_all(n)
                    .iter()
                    .map(|v| v.to_str().expect("ascii"))
                    .collect();
                values.join("|")
            };
            let mut seen = serde_json::json!({
                "backend": name,
                "method": req.method().as_str(),
                "path": req.uri().path(),
                "query": req.uri().query(),
                "host": header("host"),
                "x-forwarded-for": header("x-forwarded-for"),
                "x-custom": header("x-custom"),
                "x-hop": header("x-hop"),
                "connection": header("connection"),
                "version": format!("{:?}", req.version()),
            });
            let body = req.into_body().collect().await.expect("body").to_bytes();
            seen["body"] = String::from_utf8_lossy(&body).into();
            text(StatusCode::OK, seen.to_string())
        }
        _ => text(StatusCode::NOT_FOUND, name),
    })
}

impl TestBackend {
    async fn start(name: &str) -> TestBackend {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let gate = Arc::new(Semaphore::new(0));
        let (entered_tx, entered) = mpsc::unbounded_channel();
        let state = Arc::new(BackendState {
            name: name.to_owned(),
            gate: gate.clone(),
            entered: entered_tx,
        });
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.expect("accept");
                let state = state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| backend_handle(state.clone(), req));
                    // Errors here are clients going away (e.g. the balancer's pool closing).
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        TestBackend {
            name: name.to_owned(),
            addr,
            gate,
            entered,
        }
    }

    fn backend(&self, id: u64, group: Group, ready: bool) -> Backend {
        Backend {
            id,
            addr: self.addr,
            group,
            ready,
        }
    }

    fn stable(&self, id: u64) -> Backend {
        self.backend(id, Group::Stable, true)
    }

    /// Waits until a `/slow` request has reached this backend.
    async fn entered(&mut self) {
        within(
            &format!("a slow request on {}", self.name),
            self.entered.recv(),
        )
        .await
        .expect("backend running");
    }

    fn release(&self, requests: usize) {
        self.gate.add_permits(requests);
    }
}

/// Backend `a` (id 1) behind a new balancer, and a client.
async fn one_backend() -> (TestBackend, Balancer, TestClient) {
    let a = TestBackend::start("a").await;
    let lb = Balancer::start(0).await.expect("start");
    lb.set_backends(vec![a.stable(1)]);
    (a, lb, client())
}

/// An address where nothing listens.
async fn dead_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr")
}

fn url(lb: &Balancer, path: &str) -> String {
    format!("http://{}{path}", lb.local_addr())
}

async fn send(client: &TestClient, request: Request<TestBody>) -> (StatusCode, String) {
    let response = within("a response", client.request(request))
        .await
        .expect("request");
    let status = response.status();
    let body = within("a response body", response.into_body().collect())
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8(body.to_vec()).expect("utf-8"))
}

/// Sends a GET through the balancer and returns the response once its head has arrived.
async fn open(client: &TestClient, lb: &Balancer, path: &str) -> Response<Incoming> {
    let request = Request::get(url(lb, path)).body(empty()).expect("request");
    within("a response", client.request(request))
        .await
        .expect("request")
}

async fn get(client: &TestClient, lb: &Balancer, path: &str) -> (StatusCode, String) {
    let request = Request::get(url(lb, path)).body(empty()).expect("request");
    send(client, request).await
}

fn counts(id: u64, requests: u64, errors: u64, in_flight: u64) -> BackendStats {
    BackendStats {
        id,
        requests,
        errors,
        in_flight,
    }
}

/// GETs `/who` `n` times in sequence and returns the names in order.
async fn who(client: &TestClient, lb: &Balancer, n: usize) -> Vec<String> {
    let mut names = Vec::with_capacity(n);
    for _ in 0..n {
        let (status, name) = get(client, lb, "/who").await;
        assert_eq!(status, StatusCode::OK, "{name}");
        names.push(name);
    }
    names
}

fn tally(names: &[String]) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for name in names {
        *counts.entry(name.as_str()).or_default() += 1;
    }
    counts
}

fn stats_of(lb: &Balancer, id: u64) -> BackendStats {
    lb.stats()
        .into_iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("no stats for backend {id}"))
}

/// Starts a `/slow` request through the balancer in a task.
fn spawn_slow(client: &TestClient, lb: &Balancer) -> tokio::task::JoinHandle<(StatusCode, String)> {
    let client = client.clone();
    let lb = lb.clone();
    tokio::spawn(async move { get(&client, &lb, "/slow").await })
}

#[test]
fn the_balancer_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<Balancer>();
}

#[tokio::test]
async fn idle_backends_take_turns() {
    let backends = [
        TestBackend::start("a").await,
        TestBackend::start("b").await,
        TestBackend::start("c").await,
    ];
    let lb = Balancer::start(0).await.expect("start");
    lb.set_backends(
        backends
            .iter()
            .zip(1..)
            .map(|(b, id)| b.stable(id))
            .collect(),
    );
    let client = client();
    let names = who(&client, &lb, 300).await;
    // Strict rotation: every window of three requests hits all three backends.
    for window in names.chunks(3) {
        let mut window = window.to_vec();
        window.sort();
        assert_eq!(window, ["a", "b", "c"], "{names:?}");
    }
    for id in 1..=3 {
        let stats = stats_of(&lb, id);
        assert_eq!(stats, counts(id, 100, 0, 0));
    }
}

#[tokio::test]
async fn requests_go_to_the_backend_with_fewest_in_flight() {
    let mut a = TestBackend::start("a").await;
    let mut b = TestBackend::start("b").await;
    let lb = Balancer::start(0).await.expect("start");
    lb.set_backends(vec![a.stable(1), b.stable(2)]);
    let client = client();

    // Two slow requests: the second must avoid the backend busy with the first.
    let first = spawn_slow(&client, &lb);
    let first_on_a = tokio::select! {
        () = a.entered() => true,
        () = b.entered() => false,
    };
    let second = spawn_slow(&client, &lb);
    if first_on_a {
        b.entered().await;
    } else {
        a.entered().await;
    }
    assert_eq!(stats_of(&lb, 1).in_flight, 1);
    assert_eq!(stats_of(&lb, 2).in_flight, 1);

    // One more slow request on the busy pair lands somewhere; after that, quick requests all
    // go to the backend with one request in flight, not the one with two.
    let third = spawn_slow(&client, &lb);
    let third_on_a = tokio::select! {
        () = a.entered() => true,
        () = b.entered() => false,
    };
    let names = who(&client, &lb, 20).await;
    let idle = if third_on_a { "b" } else { "a" };
    assert_eq!(tally(&names), BTreeMap::from([(idle, 20)]));

    a.release(3);
    b.release(3);
    let mut slow_names = Vec::new();
    for task in [first, second, third] {
        let (status, name) = within("slow requests", task).await.expect("task");
        assert_eq!(status, StatusCode::OK);
        slow_names.push(name);
    }
    let slow = tally(&slow_names);
    assert_eq!(slow.values().sum::<usize>(), 3);
    assert_eq!(slow.len(), 2, "{slow:?}");
    assert_eq!(stats_of(&lb, 1).in_flight + stats_of(&lb, 2).in_flight, 0);
}

#[tokio::test]
async fn only_ready_backends_get_requests() {
    let a = TestBackend::start("a").await;
    let b = TestBackend::start("b").await;
    let lb = Balancer::start(0).await.expect("start");
    lb.set_backends(vec![a.stable(1), b.backend(2, Group::Stable, false)]);
    let client = client();
    assert_eq!(
        tally(&who(&client, &lb, 20).await),
        BTreeMap::from([("a", 20)])
    );

    lb.set_backends(vec![a.stable(1), b.stable(2)]);
    assert_eq!(
        tally(&who(&client, &lb, 20).await),
        BTreeMap::from([("a", 10), ("b", 10)])
    );

    lb.set_backends(vec![a.backend(1, Group::Stable, false), b.stable(2)]);
    assert_eq!(
        tally(&who(&client, &lb, 20).await),
        BTreeMap::from([("b", 20)])
    );
    assert_eq!(stats_of(&lb, 1).requests, 30);
    assert_eq!(stats_of(&lb, 2).requests, 30);
}

#[tokio::test]
async fn canary_gets_its_percent_of_concurrent_requests() {
    let s1 = TestBackend::start("stable-1").await;
    let s2 = TestBackend::start("stable-2").await;
    let c1 = TestBackend::start("canary-1").await;
    let lb = Balancer::start(0).await.expect("start");
    lb.set_backends(vec![
        s1.stable(1),
        s2.stable(2),
        c1.backend(3, Group::Canary, true),
    ]);
    lb.set_canary_weight(20.0);
    let client = client();

    // 2,000 requests from 16 concurrent clients.
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (client, lb) = (client.clone(), lb.clone());
        tasks.push(tokio::spawn(async move { who(&client, &lb, 125).await }));
    }
    let mut names = Vec::new();
    for task in tasks {
        names.extend(within("concurrent clients", task).await.expect("task"));
    }
    let counts = tally(&names);
    let canary = counts.get("canary-1").copied().unwrap_or(0);
    assert!(
        (380..=420).contains(&canary),
        "canary got {canary} of 2000: {counts:?}"
    );
    let (one, two) = (counts["stable-1"], counts["stable-2"]);
    assert_eq!(one + two + canary, 2000);
    assert!(one.abs_diff(two) <= 80, "stable split {one}/{two}");

    lb.set_canary_weight(0.0);
    assert!(!who(&client, &lb, 50).await.contains(&"canary-1".to_owned()));
    lb.set_canary_weight(100.0);
    assert_eq!(
        tally(&who(&client, &lb, 50).await),
        BTreeMap::from([("canary-1", 50)])
    );

    // A group without a ready backend leaves everything to the other, whatever the weight.
    lb.set_backends(vec![
        s1.stable(1),
        s2.stable(2),
        c1.backend(3, Group::Canary, false),
    ]);
    assert!(!who(&client, &lb, 50).await.contains(&"canary-1".to_owned()));
    lb.set_canary_weight(0.0);
    lb.set_backends(vec![
        s1.backend(1, Group::Stable, false),
        s2.backend(2, Group::Stable, false),
        c1.backend(3, Group::Canary, true),
    ]);
    assert_eq!(
        tally(&who(&client, &lb, 50).await),
        BTreeMap::from([("canary-1", 50)])
    );
}

fn assert_json_error(status: StatusCode, body: &str, expected: StatusCode, contains: &str) {
    assert_eq!(status, expected, "{body}");
    let json: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
    let error = json["error"].as_str().expect("an error message");
    assert!(error.contains(contains), "{error}");
}

async fn assert_unavailable(client: &TestClient, lb: &Balancer) {
    let (status, body) = get(client, lb, "/who").await;
    assert_json_error(
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "no ready backend",
    );
}

#[tokio::test]
async fn no_ready_backend_is_503() {
    let a = TestBackend::start("a").await;
    let lb = Balancer::start(0).await.expect("start");
    let client = client();

    let response = open(&client, &lb, "/who").await;
    assert_eq!(
        response.headers().get("content-type"),
        Some(&HeaderValue::from_static("application/json"))
    );
    assert_unavailable(&client, &lb).await;

    lb.set_backends(vec![a.backend(1, Group::Stable, false)]);
    assert_unavailable(&client, &lb).await;

    lb.set_backends(vec![a.stable(1)]);
    assert_eq!(
        get(&client, &lb, "/who").await,
        (StatusCode::OK, "a".to_owned())
    );
    assert_eq!(lb.drain(1, Duration::ZERO).await, 0);
    assert_unavailable(&client, &lb).await;
    assert_eq!(stats_of(&lb, 1).requests, 1);
}

#[tokio::test]
async fn a_dead_backend_is_502_and_counted() {
    let lb = Balancer::start(0).await.expect("start");
    let dead = dead_addr().await;
    lb.set_backends(vec![Backend {
        id: 7,
        addr: dead,
        group: Group::Stable,
        ready: true,
    }]);
    let client = client();
    let (status, body) = get(&client, &lb, "/who").await;
    assert_json_error(status, &body, StatusCode::BAD_GATEWAY, "backend 7 failed");
    assert!(body.contains("refused"), "{body}");
    assert_eq!(stats_of(&lb, 7), counts(7, 1, 1, 0));
}

#[tokio::test]
async fn connection_failures_are_retried_once_on_another_backend() {
    let live = TestBackend::start("live").await;
    let lb = Balancer::start(0).await.expect("start");
    let dead = dead_addr().await;
    lb.set_backends(vec![
        Backend {
            id: 1,
            addr: dead,
            group: Group::Stable,
            ready: true,
        },
        live.stable(2),
    ]);
    let client = client();
    assert_eq!(
        tally(&who(&client, &lb, 10).await),
        BTreeMap::from([("live", 10)])
    );
    // A body that was never read is handed to the second attempt whole.
    for i in 0..6 {
        let payload = format!("payload {i} ").repeat(1000);
        let request = Request::post(url(&lb, "/echo"))
            .body(full(payload.clone()))
            .expect("request");
        assert_eq!(send(&client, request).await, (StatusCode::OK, payload));
    }
    let dead_stats = stats_of(&lb, 1);
    assert!(dead_stats.requests >= 5, "{dead_stats:?}");
    assert_eq!(dead_stats.errors, dead_stats.requests);
    assert_eq!(stats_of(&lb, 2), counts(2, 16, 0, 0));
}

#[tokio::test]
async fn server_errors_pass_through_and_count() {
    let (_a, lb, client) = one_backend().await;
    assert_eq!(
        get(&client, &lb, "/fail").await,
        (StatusCode::INTERNAL_SERVER_ERROR, "a".to_owned())
    );
    assert_eq!(get(&client, &lb, "/nowhere").await.0, StatusCode::NOT_FOUND);
    assert_eq!(stats_of(&lb, 1), counts(1, 2, 1, 0));
}

#[tokio::test]
async fn method_path_query_headers_and_host_are_forwarded() {
    let (a, lb, client) = one_backend().await;
    let request = Request::builder()
        .method(Method::PUT)
        .uri(url(&lb, "/inspect?x=1&y=two%20words"))
        .header("host", "classifier.example:8080")
        .header("x-forwarded-for", "10.1.2.3")
        .header("x-custom", "kept")
        .header("connection", "x-hop")
        .header("x-hop", "dropped")
        .body(full("the body"))
        .expect("request");
    let (status, body) = send(&client, request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let seen: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        seen,
        serde_json::json!({
            "backend": "a",
            "method": "PUT",
            "path": "/inspect",
            "query": "x=1&y=two%20words",
            "host": "classifier.example:8080",
            "x-forwarded-for": "10.1.2.3, 127.0.0.1",
            "x-custom": "kept",
            "x-hop": "",
            "connection": "",
            "version": "HTTP/1.1",
            "body": "the body",
        })
    );

    // Without a Host (HTTP/1.0), the backend's address is the host.
    let mut stream = TcpStream::connect(lb.local_addr()).await.expect("connect");
    let raw = "GET /inspect HTTP/1.0\r\n\r\n";
    tokio::io::AsyncWriteExt::write_all(&mut stream, raw.as_bytes())
        .await
        .expect("write");
    let mut answer = String::new();
    within(
        "an HTTP/1.0 answer",
        tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut answer),
    )
    .await
    .expect("read");
    assert!(
        answer.starts_with("HTTP/1.") && answer.contains(" 200 OK\r\n"),
        "{answer}"
    );
    let json = answer.split("\r\n\r\n").nth(1).expect("a body");
    let seen: serde_json::Value = serde_json::from_str(json).expect("json");
    assert_eq!(seen["host"], a.addr.to_string());
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1");
}

#[tokio::test]
async fn drain_waits_for_in_flight_requests_while_new_ones_go_elsewhere() {
    let mut a = TestBackend::start("a").await;
    let b = TestBackend::start("b").await;
    let lb = Balancer::start(0).await.expect("start");
    // Only `a` is ready while the slow request starts, so it surely lands there.
    lb.set_backends(vec![a.stable(1), b.backend(2, Group::Stable, false)]);
    let client = client();
    let slow = spawn_slow(&client, &lb);
    a.entered().await;
    lb.set_backends(vec![a.stable(1), b.stable(2)]);

    let drained = tokio::spawn(lb.drain(1, DEADLINE));
    assert_eq!(
        tally(&who(&client, &lb, 20).await),
        BTreeMap::from([("b", 20)])
    );
    // The slow request is held by the backend, so the drain cannot have finished.
    assert!(!drained.is_finished());
    assert_eq!(stats_of(&lb, 1).in_flight, 1);

    a.release(1);
    assert_eq!(within("the drain", drained).await.expect("task"), 0);
    assert_eq!(
        within("the slow request", slow).await.expect("task"),
        (StatusCode::OK, "a".to_owned())
    );
    assert_eq!(stats_of(&lb, 1), counts(1, 1, 0, 0));
    // Still draining: it gets nothing more.
    assert_eq!(
        tally(&who(&client, &lb, 5).await),
        BTreeMap::from([("b", 5)])
    );
}

#[tokio::test]
async fn a_request_is_in_flight_until_its_response_body_ends() {
    let (a, lb, client) = one_backend().await;
    let response = open(&client, &lb, "/drip").await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = within("the first chunk", body.frame())
        .await
        .expect("a frame")
        .expect("data")
        .into_data()
        .expect("data frame");
    assert_eq!(first, "a:first;");

    let drained = tokio::spawn(lb.drain(1, DEADLINE));
    assert_eq!(stats_of(&lb, 1).in_flight, 1);
    a.release(1);
    let rest = within("the rest", body.collect())
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(rest, "rest");
    assert_eq!(within("the drain", drained).await.expect("task"), 0);
    assert_eq!(stats_of(&lb, 1).in_flight, 0);
}

#[tokio::test]
async fn drain_gives_up_at_its_timeout() {
    let (mut a, lb, client) = one_backend().await;
    let slow = spawn_slow(&client, &lb);
    a.entered().await;
    let started = tokio::time::Instant::now();
    let left = within("the drain timeout", lb.drain(1, Duration::from_millis(200))).await;
    assert_eq!(left, 1);
    assert!(started.elapsed() >= Duration::from_millis(200));
    a.release(1);
    assert_eq!(
        within("the slow request", slow).await.expect("task").0,
        StatusCode::OK
    );
    assert_eq!(lb.drain(1, Duration::ZERO).await, 0);
    assert_eq!(lb.drain(99, DEADLINE).await, 0, "unknown ids are drained");
}

#[tokio::test]
async fn replacing_backends_lets_in_flight_requests_finish() {
    let mut a = TestBackend::start("a").await;
    let b = TestBackend::start("b").await;
    let lb = Balancer::start(0).await.expect("start");
    lb.set_backends(vec![a.stable(1)]);
    let client = client();
    let slow = spawn_slow(&client, &lb);
    a.entered().await;

    lb.set_backends(vec![b.stable(2)]);
    assert_eq!(
        tally(&who(&client, &lb, 10).await),
        BTreeMap::from([("b", 10)])
    );
    assert_eq!(lb.stats().iter().map(|s| s.id).collect::<Vec<_>>(), [2]);
    // A removed backend can still be drained: this waits for the request it still serves.
    let drained = tokio::spawn(lb.drain(1, DEADLINE));
    assert!(!slow.is_finished());
    assert!(!drained.is_finished());

    a.release(1);
    assert_eq!(
        within("the slow request", slow).await.expect("task"),
        (StatusCode::OK, "a".to_owned())
    );
    assert_eq!(within("the drain", drained).await.expect("task"), 0);
}

#[tokio::test]
async fn counters_follow_the_id_across_updates() {
    let a = TestBackend::start("a").await;
    let b = TestBackend::start("b").await;
    let lb = Balancer::start(0).await.expect("start");
    lb.set_backends(vec![a.stable(1)]);
    let client = client();
    who(&client, &lb, 5).await;
    lb.set_backends(vec![b.stable(2), a.stable(1)]);
    assert_eq!(lb.stats().iter().map(|s| s.id).collect::<Vec<_>>(), [2, 1]);
    assert_eq!(stats_of(&lb, 1).requests, 5);
    who(&client, &lb, 4).await;
    assert_eq!(stats_of(&lb, 1).requests, 7);
    assert_eq!(stats_of(&lb, 2).requests, 2);
    // Removed and added again: a new backend as far as the counters go.
    lb.set_backends(vec![b.stable(2)]);
    lb.set_backends(vec![b.stable(2), a.stable(1)]);
    assert_eq!(stats_of(&lb, 1).requests, 0);
}

#[tokio::test]
async fn large_bodies_stream_both_ways() {
    let (_a, lb, client) = one_backend().await;

    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let request = Request::post(url(&lb, "/echo"))
        .body(ChanBody(rx).boxed())
        .expect("request");
    let chunk = |i: usize| Bytes::from(vec![(i % 251) as u8; 64 * 1024]);
    tx.send(chunk(0)).await.expect("send");
    let response = within("the echo's head", client.request(request))
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    // The first chunk comes back through the balancer while the request is still open: the
    // request and the response are both streamed, not buffered.
    let mut received = 0usize;
    while received < 64 * 1024 {
        let frame = within("the first echoed chunk", body.frame())
            .await
            .expect("a frame")
            .expect("data");
        let data = frame.into_data().expect("data frame");
        assert!(data.iter().all(|&byte| byte == 0));
        received += data.len();
    }
    assert_eq!(received, 64 * 1024);

    // Then 64 MiB more, sent and received concurrently.
    const CHUNKS: usize = 1024;
    let sender = tokio::spawn(async move {
        for i in 1..=CHUNKS {
            tx.send(chunk(i)).await.expect("send");
        }
    });
    let mut sum = 0u64;
    while let Some(frame) = within("echoed data", body.frame()).await {
        let data = frame.expect("frame").into_data().expect("data frame");
        received += data.len();
        sum += data.iter().map(|&b| u64::from(b)).sum::<u64>();
    }
    within("the sender", sender).await.expect("task");
    assert_eq!(received, (CHUNKS + 1) * 64 * 1024);
    let expected: u64 = (1..=CHUNKS).map(|i| (i % 251) as u64 * 64 * 1024).sum();
    assert_eq!(sum, expected);
    assert_eq!(stats_of(&lb, 1).in_flight, 0);
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests_and_stops_accepting() {
    let (mut a, lb, client) = one_backend().await;
    let addr = lb.local_addr();
    let slow = spawn_slow(&client, &lb);
    a.entered().await;

    let shutdown = tokio::spawn(lb.clone().shutdown());
    // Wait until the listener is closed: connecting is refused.
    within("the listener to close", async {
        while TcpStream::connect(addr).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        !shutdown.is_finished(),
        "shutdown waits for the request in flight"
    );

    a.release(1);
    assert_eq!(
        within("the slow request", slow).await.expect("task"),
        (StatusCode::OK, "a".to_owned())
    );
    within("the shutdown", shutdown).await.expect("task");
    assert!(TcpStream::connect(addr).await.is_err());
}
