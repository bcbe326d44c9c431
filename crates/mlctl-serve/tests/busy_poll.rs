//! Busy polling of idle keep-alive connections, over real loopback HTTP/1.1 written by hand
//! (so the tests decide when each byte is sent): answers are the same with it on and off,
//! a request that comes after the window is still answered (the fall-back to epoll), pipelined
//! and split requests work, and the hit and miss counters move as the adaptive rule says.

#![cfg(feature = "onnx")]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mlctl_serve::{
    Phase, QUIET, REARM_WINDOWS, ServeError, Server, ServerConfig, ServerState, Settings,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use common::{assert_close, expected, fixture, floats};

const DEADLINE: Duration = Duration::from_secs(20);

/// A gap between a response and the next request that is long enough for the server to have
/// started spinning (a request that is already there when the server looks is read without
/// a spin, and counts neither as a hit nor as a miss), and short next to the windows used.
const PAUSE: Duration = Duration::from_millis(50);

struct Running {
    address: SocketAddr,
    state: Arc<ServerState>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), ServeError>>,
}

async fn start(busy_poll: Duration) -> Running {
    let mut settings = Settings::new("mlp");
    settings.busy_poll = busy_poll;
    let server = Server::bind(ServerConfig {
        model_path: fixture("mlp.onnx"),
        settings,
        address: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 0,
        admin_port: None,
        drain_timeout: Duration::from_secs(10),
    })
    .await
    .expect("binds");
    let address = server.local_addr();
    let state = server.state().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    let mut phase = state.watch_phase();
    tokio::time::timeout(DEADLINE, phase.wait_for(|p| *p == Phase::Ready))
        .await
        .expect("ready before the deadline")
        .expect("state alive");
    Running {
        address,
        state,
        stop,
        task,
    }
}

impl Running {
    fn polls(&self) -> (u64, u64) {
        let m = self.state.metrics();
        (m.busy_poll_hits.get(), m.busy_poll_misses.get())
    }

    async fn shutdown(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("stops before the deadline")
            .expect("task")
            .expect("serves without error");
    }
}

/// One keep-alive connection.
struct Connection {
    stream: BufReader<TcpStream>,
}

impl Connection {
    async fn open(address: SocketAddr) -> Connection {
        let stream = TcpStream::connect(address).await.expect("connects");
        stream.set_nodelay(true).expect("nodelay");
        Connection {
            stream: BufReader::new(stream),
        }
    }

    async fn write(&mut self, bytes: &[u8]) {
        let stream = self.stream.get_mut();
        stream.write_all(bytes).await.expect("writes");
        stream.flush().await.expect("flushes");
    }

    /// Reads one response: its status and JSON body.
    async fn response(&mut self) -> (u16, Value) {
        tokio::time::timeout(DEADLINE, self.read_response())
            .await
            .expect("a response before the deadline")
    }

    async fn read_response(&mut self) -> (u16, Value) {
        let mut line = String::new();
        self.stream.read_line(&mut line).await.expect("status line");
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("status line {line:?}"));
        let mut length = None;
        loop {
            line.clear();
            self.stream.read_line(&mut line).await.expect("header");
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = Some(value.trim().parse::<usize>().expect("length"));
            }
        }
        let mut body = vec![0; length.expect("a content-length")];
        self.stream.read_exact(&mut body).await.expect("body");
        (status, serde_json::from_slice(&body).expect("JSON body"))
    }

    /// Sends `request` in one write and reads its answer.
    async fn round_trip(&mut self, request: &[u8]) -> (u16, Value) {
        self.write(request).await;
        self.response().await
    }

    /// Sends `request` again and again, each as soon as the previous one is answered, until
    /// [`QUIET`] has passed twice since the first answer: then this connection has had all
    /// of the server's recent requests, each right after the previous response (whether the
    /// server spun for some of them depends on timing), so the server spins after the last.
    async fn settle(&mut self, request: &[u8]) {
        assert_eq!(self.round_trip(request).await.0, 200);
        let first = Instant::now();
        while first.elapsed() < QUIET * 2 {
            assert_eq!(self.round_trip(request).await.0, 200);
        }
    }

    /// Waits [`PAUSE`], then sends `request` and reads its answer: a request that comes while
    /// the server spins, if it does.
    async fn after_pause(&mut self, request: &[u8]) -> (u16, Value) {
        tokio::time::sleep(PAUSE).await;
        self.round_trip(request).await
    }
}

fn infer_request(row: &[f32]) -> Vec<u8> {
    let body =
        json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 16], "data": row}]})
            .to_string();
    format!(
        "POST /v2/models/mlp/infer HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The output row of an inference answer.
fn output(answer: &(u16, Value)) -> Vec<f32> {
    assert_eq!(answer.0, 200, "{}", answer.1);
    floats(&answer.1["outputs"][0]["data"])
}

/// Every row of the fixture's inputs, as requests, with numpy's outputs.
fn rows() -> Vec<(Vec<u8>, Vec<f32>)> {
    let e = expected();
    let (inputs, outputs) = (e.input.len() / e.rows, e.output.len() / e.rows);
    (0..e.rows)
        .map(|r| {
            (
                infer_request(&e.input[r * inputs..(r + 1) * inputs]),
                e.output[r * outputs..(r + 1) * outputs].to_vec(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_answers_are_the_same_with_busy_polling_on_and_off() {
    let mut answers = Vec::new();
    for window in [Duration::from_secs(5), Duration::ZERO] {
        let server = start(window).await;
        let mut connection = Connection::open(server.address).await;
        let live = b"GET /v2/health/live HTTP/1.1\r\nhost: test\r\n\r\n";
        connection.settle(live).await;
        let before = server.polls();
        let mut got = Vec::new();
        let mut requests = 0;
        for round in 0..4 {
            for (request, want) in rows() {
                let answer = connection.after_pause(&request).await;
                assert_close(&output(&answer), &want);
                got.push(answer.1);
                requests += 1;
            }
            let answer = connection.after_pause(live).await;
            assert_eq!(answer, (200, json!({"live": true})), "round {round}");
            requests += 1;
        }
        let after = server.polls();
        if window.is_zero() {
            assert_eq!(after, (0, 0), "busy polling is off");
        } else {
            // Every request followed its response well within the window, and the server
            // was spinning when it came.
            assert_eq!((after.0 - before.0, after.1 - before.1), (requests, 0));
        }
        drop(connection);
        server.shutdown().await;
        answers.push(got);
    }
    assert_eq!(answers[0], answers[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_after_the_window_is_answered_and_polling_adapts() {
    // A window long enough that a request sent after PAUSE lands in it on a busy test
    // machine; the gap made below is longer than REARM_WINDOWS windows.
    let window = Duration::from_millis(200);
    let gap = window * (REARM_WINDOWS + 1);
    let server = start(window).await;
    let mut connection = Connection::open(server.address).await;
    let rows = rows();
    let (request, want) = &rows[0];
    connection.settle(request).await;
    let (h, m) = server.polls();
    assert_eq!(m, 0);

    // A request that follows its response closely is read by the spin.
    assert_close(&output(&connection.after_pause(request).await), want);
    assert_eq!(server.polls(), (h + 1, 0));

    // A pause longer than the window: the spin misses, and the request is still answered
    // through epoll.
    let answered = Instant::now();
    tokio::time::sleep(gap).await;
    assert!(answered.elapsed() >= gap);
    assert_close(&output(&connection.round_trip(request).await), want);
    assert_eq!(server.polls(), (h + 1, 1));

    // That request came long after its response: the connection stays off, and the next one
    // is read through epoll without a spin.
    assert_close(&output(&connection.after_pause(request).await), want);
    assert_eq!(server.polls(), (h + 1, 1));

    // It followed its response closely, so polling is back on for the one after.
    assert_close(&output(&connection.after_pause(request).await), want);
    assert_eq!(server.polls(), (h + 2, 1));

    drop(connection);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_millisecond_window_falls_back_to_epoll() {
    let window = Duration::from_millis(1);
    let server = start(window).await;
    let mut connection = Connection::open(server.address).await;
    let rows = rows();
    connection.settle(&rows[0].0).await;
    let hits = server.polls().0;
    // Each request comes after a gap of five windows, measured: the server's spin after the
    // last answer of `settle` misses, and every request is read through epoll.
    for (request, want) in &rows {
        let answered = Instant::now();
        tokio::time::sleep(window * 5).await;
        assert!(answered.elapsed() >= window * 5);
        assert_close(&output(&connection.round_trip(request).await), want);
        assert_eq!(server.polls().0, hits, "no request came within a window");
    }
    assert!(server.polls().1 > 0, "{:?}", server.polls());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_polling_while_two_connections_take_turns() {
    let server = start(Duration::from_secs(5)).await;
    let rows = rows();
    let (request, want) = &rows[0];
    let mut a = Connection::open(server.address).await;
    let mut b = Connection::open(server.address).await;
    for _ in 0..10 {
        assert_close(&output(&a.after_pause(request).await), want);
        assert_close(&output(&b.after_pause(request).await), want);
    }
    // Each request came right after one on the other connection.
    assert_eq!(server.polls(), (0, 0));
    // Once the other connection is quiet, polling is back.
    a.settle(request).await;
    let (hits, misses) = server.polls();
    assert_close(&output(&a.after_pause(request).await), want);
    assert_eq!(server.polls(), (hits + 1, misses));
    drop((a, b));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_and_pipelined_requests_are_answered() {
    let server = start(Duration::from_millis(200)).await;
    let mut connection = Connection::open(server.address).await;
    let rows = rows();
    connection.settle(&rows[0].0).await;
    let (hits, misses) = server.polls();

    // A request in three writes, split in its headers and in its body, with pauses between
    // them: the spin reads the first part, epoll the rest.
    let (request, want) = &rows[1];
    let split = [20, request.len() - 10];
    tokio::time::sleep(PAUSE).await;
    connection.write(&request[..split[0]]).await;
    tokio::time::sleep(PAUSE).await;
    connection.write(&request[split[0]..split[1]]).await;
    tokio::time::sleep(PAUSE).await;
    connection.write(&request[split[1]..]).await;
    assert_close(&output(&connection.response().await), want);
    assert_eq!(server.polls(), (hits + 1, misses));

    // Three requests in one write: three answers, in order. The last one is handled from
    // the server's buffer while the connection looks idle, so it may cost one missed window.
    let pipelined: Vec<u8> = rows[..3].iter().flat_map(|(r, _)| r.clone()).collect();
    tokio::time::sleep(PAUSE).await;
    connection.write(&pipelined).await;
    for (_, want) in &rows[..3] {
        assert_close(&output(&connection.response().await), want);
    }
    let after = server.polls();
    assert_eq!(
        after.0,
        hits + 2,
        "the pipelined requests were read by one spin"
    );
    assert!(after.1 <= misses + 1, "{after:?}");

    drop(connection);
    server.shutdown().await;
}
