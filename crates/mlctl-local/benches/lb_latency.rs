//! What the local load balancer adds to a request: one backend (a small hyper server that reads
//! an inference-sized JSON request and answers an inference-sized JSON response), one balancer
//! in front of it, and one keep-alive client that alternates the same request direct and
//! through the balancer, so both see the same machine at the same moment. Backend, balancer and
//! client each run on their own thread and tokio runtime, as they would in separate processes.
//! `bench/lb/latency.sh` runs it and prints medians.
//!
//!   lb_latency latency REQUESTS REPEATS  one line per repetition:
//!                                        direct_p50_ns direct_p99_ns lb_p50_ns lb_p99_ns
//!   lb_latency serve                     prints "DIRECT_ADDR LB_ADDR", serves until stdin ends
//!                                        (for an external load generator such as wrk)

use std::convert::Infallible;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mlctl_local::lb::{Backend, Balancer, Group};
use tokio::net::TcpListener;

const REQUEST: &str = r#"{"inputs":[{"name":"input","shape":[1,8],"datatype":"FP32","data":[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8]}]}"#;
const RESPONSE: &str = r#"{"model_name":"mlp","outputs":[{"name":"output","shape":[1,4],"datatype":"FP32","data":[0.1,0.2,0.3,0.4]}]}"#;
const WARMUP: usize = 1_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read the whole request, as a model server must before it can answer.
    let body = req.into_body().collect().await.map(|b| b.to_bytes());
    assert!(body.is_ok_and(|b| b.len() == REQUEST.len()));
    let mut response = Response::new(Full::new(Bytes::from_static(RESPONSE.as_bytes())));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// Threads are named so that their CPU time can be read from `/proc`.
fn spawn_named(name: &str, run: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(run)
        .expect("spawn a thread");
}

/// Starts the backend and the balancer on threads of their own; returns their addresses.
fn start_servers() -> (SocketAddr, SocketAddr) {
    let (tx, rx) = mpsc::channel();
    spawn_named("backend", move || {
        runtime().block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            tx.send(listener.local_addr().expect("addr"))
                .expect("main waits");
            loop {
                let (stream, _) = listener.accept().await.expect("accept");
                stream.set_nodelay(true).expect("nodelay");
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service_fn(answer))
                        .await;
                });
            }
        })
    });
    let backend = rx.recv().expect("backend address");
    let (tx, rx) = mpsc::channel();
    spawn_named("balancer", move || {
        runtime().block_on(async move {
            let lb = Balancer::start(0).await.expect("balancer");
            lb.set_backends(vec![Backend {
                id: 1,
                addr: backend,
                group: Group::Stable,
                ready: true,
            }]);
            tx.send(lb.local_addr()).expect("main waits");
            std::future::pending::<()>().await;
        })
    });
    (backend, rx.recv().expect("balancer address"))
}

async fn once(client: &Client<HttpConnector, Full<Bytes>>, uri: &hyper::Uri) -> Duration {
    let request = Request::post(uri.clone())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(REQUEST.as_bytes())))
        .expect("request");
    let start = Instant::now();
    let response = client.request(request).await.expect("response");
    assert!(response.status().is_success());
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let took = start.elapsed();
    assert_eq!(body.len(), RESPONSE.len());
    took
}

fn percentile(sorted: &[u64], p: usize) -> u64 {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn latency(requests: usize, repeats: usize) {
    let (backend, lb) = start_servers();
    let direct: hyper::Uri = format!("http://{backend}/v2/models/mlp/infer")
        .parse()
        .expect("uri");
    let through: hyper::Uri = format!("http://{lb}/v2/models/mlp/infer")
        .parse()
        .expect("uri");
    runtime().block_on(async move {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        for _ in 0..repeats {
            for _ in 0..WARMUP {
                once(&client, &direct).await;
                once(&client, &through).await;
            }
            let mut a = Vec::with_capacity(requests);
            let mut b = Vec::with_capacity(requests);
            for i in 0..requests {
                // Alternate which goes first so neither always follows the other.
                if i % 2 == 0 {
                    a.push(once(&client, &direct).await);
                    b.push(once(&client, &through).await);
                } else {
                    b.push(once(&client, &through).await);
                    a.push(once(&client, &direct).await);
                }
            }
            let nanos = |v: Vec<Duration>| {
                let mut v: Vec<u64> = v
                    .into_iter()
                    .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
                    .collect();
                v.sort_unstable();
                v
            };
            let (a, b) = (nanos(a), nanos(b));
            println!(
                "{} {} {} {}",
                percentile(&a, 50),
                percentile(&a, 99),
                percentile(&b, 50),
                percentile(&b, 99)
            );
        }
    });
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("serve") => {
            let (backend, lb) = start_servers();
            println!("{backend} {lb}");
            // Serve until whoever started us closes our stdin.
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        }
        _ => {
            let requests = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
            let repeats = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(7);
            latency(requests, repeats);
        }
    }
}
