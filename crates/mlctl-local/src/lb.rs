//! The load balancer in front of a local InferenceService's replicas: an HTTP/1.1 reverse proxy
//! on `127.0.0.1` that sends each request (not each connection) to one ready backend.
//!
//! Choice of backend: among the backends that are ready and not draining, the request first
//! goes to a group — `Canary` for `percent` of the requests, `Stable` for the rest, as an exact
//! interleave rather than a coin toss, and all of them to one group when the other has no
//! routable backend — then, inside the group, to the backend with the fewest requests in flight,
//! ties broken round-robin. The choice and the in-flight increment happen under one short lock,
//! so concurrent requests see each other.
//!
//! Proxying: method, path, query, headers and `Host` are kept; hop-by-hop headers (RFC 9110
//! §7.6.1) are dropped in both directions and `X-Forwarded-For` gets the client's address
//! appended. Bodies are streamed both ways, never buffered; a request stays "in flight" until
//! its response body has been sent or dropped, which is what [`Balancer::drain`] waits for.
//! Connections to the backends are pooled and kept alive (hyper-util's client).
//!
//! Failures: no routable backend is a `503`, a backend that cannot be reached or fails before
//! answering is a `502`, both with a JSON body `{"error": "..."}`. A request is retried once on
//! another backend only when the connection to the first could not be established: nothing of
//! the request was sent then, so the retry is safe for every method, and the unread request
//! body is handed back for the second attempt (nothing is buffered). Failures after the
//! connection was made (reset mid-request, bad response) are not retried: the backend may have
//! acted on the request. Per backend, `errors` counts `5xx` answers, proxy failures and
//! response bodies that broke off.
//!
//! Not here: health checks (the service controller sets readiness), timeouts on slow backends
//! (liveness probes restart them), protocol upgrades and HTTP/2.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::uri::{self, Authority, PathAndQuery, Scheme};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::{error_chain, lock};

/// How long a connection to a backend may take to establish. Backends are on loopback: a
/// live one answers in microseconds, a dead one refuses at once.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Idle keep-alive connections to backends are closed after this long.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The traffic group of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// The current version of the model.
    Stable,
    /// The new version, which gets the canary percent of the requests.
    Canary,
}

impl Group {
    fn index(self) -> usize {
        match self {
            Group::Stable => 0,
            Group::Canary => 1,
        }
    }
}

/// One replica the balancer may send requests to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// Identifies the replica across [`Balancer::set_backends`] calls (counters follow it).
    pub id: u64,
    /// Where the replica listens.
    pub addr: SocketAddr,
    /// Its traffic group.
    pub group: Group,
    /// Whether it passes its readiness probe; only ready backends get requests.
    pub ready: bool,
}

/// Counters of one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendStats {
    /// The backend's id.
    pub id: u64,
    /// Requests sent to it since it was added (monotonic); a request retried elsewhere after
    /// a connection failure counts on both backends.
    pub requests: u64,
    /// Of those, the ones that failed: `5xx` answers, proxy failures, broken response bodies
    /// (monotonic).
    pub errors: u64,
    /// Requests sent to it whose response has not been fully delivered yet.
    pub in_flight: u64,
}

/// A running load balancer. Cheap to clone; it stops when [`Balancer::shutdown`] is called or
/// the last clone is dropped.
#[derive(Clone)]
pub struct Balancer {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for Balancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Balancer")
            .field("local_addr", &self.handle.local_addr)
            .finish_non_exhaustive()
    }
}

struct Handle {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    stopped: watch::Receiver<bool>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

impl Balancer {
    /// Binds `127.0.0.1:port` (`0` picks a free port) and starts serving on the current tokio
    /// runtime (which must have I/O and time enabled), with no backends (every request gets `503` until [`Balancer::set_backends`]).
    pub async fn start(port: u16) -> std::io::Result<Balancer> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
        Self::serve_on(listener)
    }

    /// Serves on a listener bound elsewhere (so that a port taken is an error before anything
    /// starts), on the current tokio runtime.
    pub fn from_std(listener: std::net::TcpListener) -> std::io::Result<Balancer> {
        listener.set_nonblocking(true)?;
        Self::serve_on(TcpListener::from_std(listener)?)
    }

    fn serve_on(listener: TcpListener) -> std::io::Result<Balancer> {
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new());
        let (stop, stop_rx) = watch::channel(false);
        let (stopped_tx, stopped) = watch::channel(false);
        tokio::spawn(serve(listener, shared.clone(), stop_rx, stopped_tx));
        Ok(Balancer {
            handle: Arc::new(Handle {
                shared,
                local_addr,
                stop,
                stopped,
            }),
        })
    }

    /// The address the balancer listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr
    }

    /// Replaces the set of backends. A backend whose id was already present keeps its counters
    /// and, if it was being drained, stays drained; requests in flight to removed backends
    /// complete normally. Ids are unique: a repeated id keeps its first entry.
    pub fn set_backends(&self, backends: Vec<Backend>) {
        self.handle.shared.set_backends(backends);
    }

    /// Sets the percentage (0 to 100, clamped; NaN counts as 0) of requests sent to the
    /// `Canary` group while both groups have a routable backend.
    pub fn set_canary_weight(&self, percent: f64) {
        let percent = if percent.is_nan() {
            0.0
        } else {
            percent.clamp(0.0, 100.0)
        };
        lock(&self.handle.shared.state).canary_percent = percent;
    }

    /// Counters of the current backends, in the order they were given.
    pub fn stats(&self) -> Vec<BackendStats> {
        lock(&self.handle.shared.state)
            .entries
            .iter()
            .map(|e| e.counters.stats())
            .collect()
    }

    /// Stops sending new requests to backend `id` at once (when this is called, not when the
    /// future is first polled), then resolves when its in-flight requests are done or `timeout`
    /// has passed, with the number still in flight (0 = fully drained). Used before a replica is
    /// stopped. An unknown id resolves at once with 0.
    pub fn drain(&self, id: u64, timeout: Duration) -> impl Future<Output = u64> + Send + 'static {
        let deadline = tokio::time::Instant::now() + timeout;
        let counters = self.handle.shared.mark_draining(id);
        async move {
            let Some(counters) = counters else {
                return 0;
            };
            loop {
                let idle = counters.idle.notified();
                tokio::pin!(idle);
                // Registered before reading the count, so a release in between still wakes us.
                idle.as_mut().enable();
                if counters.in_flight.load(Ordering::SeqCst) == 0 {
                    return 0;
                }
                if tokio::time::timeout_at(deadline, idle).await.is_err() {
                    return counters.in_flight.load(Ordering::SeqCst);
                }
            }
        }
    }

    /// Stops accepting connections and resolves once the requests in flight have completed
    /// (idle keep-alive connections are closed).
    pub async fn shutdown(self) {
        let mut stopped = self.handle.stopped.clone();
        self.handle.stop.send_replace(true);
        drop(self);
        // Also resolves if the serving task is gone (its runtime ended): nothing to wait for.
        until_true(&mut stopped).await;
    }
}

async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    stopped: watch::Sender<bool>,
) {
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new());
    loop {
        tokio::select! {
            biased;
            () = until_true(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Small requests and answers must not wait for Nagle's algorithm.
                    if let Err(err) = stream.set_nodelay(true) {
                        tracing::debug!(%peer, error = %err, "could not set TCP_NODELAY");
                    }
                    let shared = shared.clone();
                    let service = service_fn(move |req| proxy(shared.clone(), peer, req));
                    let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
                    tokio::spawn(async move {
                        if let Err(err) = conn.await {
                            tracing::debug!(%peer, error = %err, "load balancer connection failed");
                        }
                    });
                }
                Err(err) => {
                    tracing::warn!(error = %err, "load balancer failed to accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    drop(listener);
    graceful.shutdown().await;
    stopped.send_replace(true);
}

/// Resolves once the flag is true or its sender is gone.
async fn until_true(flag: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`; drop it here.
    let _ = flag.wait_for(|set| *set).await.map(|_| ());
}

struct Shared {
    state: Mutex<State>,
    client: Client<HttpConnector, ReqBody>,
}

struct State {
    entries: Vec<Entry>,
    /// Removed backends that still had requests in flight, so that `drain` still finds them.
    retired: Vec<Arc<Counters>>,
    canary_percent: f64,
    /// Grows by the canary percent per routed request; each time it reaches 100 the request
    /// goes to the canary group.
    canary_credit: f64,
    /// Round-robin position per group (indexed by `Group::index`).
    cursor: [usize; 2],
}

struct Entry {
    id: u64,
    group: Group,
    ready: bool,
    authority: Authority,
    counters: Arc<Counters>,
}

struct Counters {
    id: u64,
    requests: AtomicU64,
    errors: AtomicU64,
    in_flight: AtomicU64,
    draining: AtomicBool,
    /// Notified when `in_flight` drops to 0 while draining.
    idle: Notify,
}

impl Counters {
    fn new(id: u64) -> Counters {
        Counters {
            id,
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            draining: AtomicBool::new(false),
            idle: Notify::new(),
        }
    }

    fn stats(&self) -> BackendStats {
        BackendStats {
            id: self.id,
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::SeqCst),
        }
    }
}

impl Shared {
    fn new() -> Shared {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(connector);
        Shared {
            state: Mutex::new(State {
                entries: Vec::new(),
                retired: Vec::new(),
                canary_percent: 0.0,
                canary_credit: 0.0,
                cursor: [0; 2],
            }),
            client,
        }
    }

    fn set_backends(&self, backends: Vec<Backend>) {
        let mut state = lock(&self.state);
        let mut old = std::mem::take(&mut state.entries);
        let mut entries: Vec<Entry> = Vec::with_capacity(backends.len());
        for backend in backends {
            if entries.iter().any(|e| e.id == backend.id) {
                tracing::warn!(
                    id = backend.id,
                    "load balancer: backend listed twice, ignored"
                );
                continue;
            }
            let authority = match Authority::try_from(backend.addr.to_string()) {
                Ok(authority) => authority,
                Err(err) => {
                    // A socket address always formats as a valid authority.
                    tracing::error!(addr = %backend.addr, error = %err, "load balancer: bad backend address");
                    continue;
                }
            };
            let counters = match old.iter().position(|e| e.id == backend.id) {
                Some(i) => old.swap_remove(i).counters,
                None => Arc::new(Counters::new(backend.id)),
            };
            entries.push(Entry {
                id: backend.id,
                group: backend.group,
                ready: backend.ready,
                authority,
                counters,
            });
        }
        state.entries = entries;
        state
            .retired
            .retain(|c| c.in_flight.load(Ordering::SeqCst) > 0);
        for removed in old {
            if removed.counters.in_flight.load(Ordering::SeqCst) > 0 {
                state.retired.push(removed.counters);
            }
        }
    }

    fn mark_draining(&self, id: u64) -> Option<Arc<Counters>> {
        let state = lock(&self.state);
        let counters = state
            .entries
            .iter()
            .map(|e| &e.counters)
            .chain(state.retired.iter())
            .find(|c| c.id == id)?
            .clone();
        counters.draining.store(true, Ordering::SeqCst);
        Some(counters)
    }

    /// Chooses a backend for one request (see the module docs) and counts the request on it.
    fn pick(&self, exclude: Option<u64>) -> Option<Picked> {
        let mut guard = lock(&self.state);
        let state = &mut *guard;
        let routable = |e: &Entry| {
            e.ready && Some(e.id) != exclude && !e.counters.draining.load(Ordering::SeqCst)
        };
        let mut count = [0usize; 2];
        for e in state.entries.iter().filter(|e| routable(e)) {
            count[e.group.index()] += 1;
        }
        let group = match count {
            [0, 0] => return None,
            [_, 0] => Group::Stable,
            [0, _] => Group::Canary,
            _ => {
                state.canary_credit += state.canary_percent;
                if state.canary_credit >= 100.0 {
                    state.canary_credit -= 100.0;
                    Group::Canary
                } else {
                    Group::Stable
                }
            }
        };
        let n = count[group.index()];
        let cursor = &mut state.cursor[group.index()];
        let start = *cursor % n;
        if exclude.is_none() {
            // A retry does not move the rotation, or a dead backend would be tried first by
            // every request.
            *cursor = cursor.wrapping_add(1);
        }
        // Least in flight; among equals, the first at or after the round-robin position.
        let (_, _, chosen) = state
            .entries
            .iter()
            .filter(|e| e.group == group && routable(e))
            .enumerate()
            .map(|(pos, e)| {
                let load = e.counters.in_flight.load(Ordering::SeqCst);
                (load, (pos + n - start) % n, e)
            })
            .min_by_key(|(load, rank, _)| (*load, *rank))?;
        chosen.counters.requests.fetch_add(1, Ordering::Relaxed);
        Some(Picked {
            id: chosen.id,
            authority: chosen.authority.clone(),
            in_flight: InFlight::start(chosen.counters.clone()),
        })
    }
}

struct Picked {
    id: u64,
    authority: Authority,
    in_flight: InFlight,
}

/// One request in flight to a backend; released when dropped (or at the end of the response).
struct InFlight {
    counters: Arc<Counters>,
    released: bool,
}

impl InFlight {
    fn start(counters: Arc<Counters>) -> InFlight {
        counters.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight {
            counters,
            released: false,
        }
    }

    fn failed(&self) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
    }

    fn release(&mut self) {
        if std::mem::replace(&mut self.released, true) {
            return;
        }
        // SeqCst on both sides: either `drain` sees the count at 0, or we see `draining` and
        // wake it.
        let before = self.counters.in_flight.fetch_sub(1, Ordering::SeqCst);
        if before == 1 && self.counters.draining.load(Ordering::SeqCst) {
            self.counters.idle.notify_waiters();
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.release();
    }
}

/// Hop-by-hop headers: they describe one connection and are never forwarded.
static HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(header::CONNECTION) {
        // Headers named in `Connection` are hop-by-hop too.
        let listed: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .collect();
        for name in listed {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    // `Trailer` announces trailers of this hop's chunked encoding.
    headers.remove(header::TRAILER);
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

fn append_forwarded_for(headers: &mut HeaderMap, client: IpAddr) {
    let client = client.to_string();
    let mut value = Vec::new();
    for previous in headers.get_all(&X_FORWARDED_FOR) {
        value.extend_from_slice(previous.as_bytes());
        value.extend_from_slice(b", ");
    }
    value.extend_from_slice(client.as_bytes());
    let value = HeaderValue::from_bytes(&value)
        .or_else(|_| HeaderValue::from_str(&client))
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
    headers.insert(X_FORWARDED_FOR.clone(), value);
}

/// The request body sent to a backend. If the client drops it without ever reading from it —
/// which is what happens when the connection could not be established — it hands the client's
/// body back, so the request can be retried elsewhere without buffering.
struct ReqBody {
    inner: Option<Incoming>,
    read: bool,
    hand_back: Option<Arc<Mutex<Option<Incoming>>>>,
}

impl ReqBody {
    fn new(inner: Incoming, hand_back: Option<Arc<Mutex<Option<Incoming>>>>) -> ReqBody {
        ReqBody {
            inner: Some(inner),
            read: false,
            hand_back,
        }
    }
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        self.read = true;
        match self.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl Drop for ReqBody {
    fn drop(&mut self) {
        if !self.read
            && let Some(slot) = self.hand_back.take()
        {
            *lock(&slot) = self.inner.take();
        }
    }
}

/// The response body sent to the client.
enum RespBody {
    /// Streamed from a backend; the request stays in flight until it ends.
    Backend { body: Incoming, in_flight: InFlight },
    /// Made by the balancer (errors).
    Local(Full<Bytes>),
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            RespBody::Backend { body, in_flight } => {
                let polled = Pin::new(body).poll_frame(cx);
                match &polled {
                    Poll::Ready(None) => in_flight.release(),
                    Poll::Ready(Some(Err(_))) => {
                        in_flight.failed();
                        in_flight.release();
                    }
                    Poll::Ready(Some(Ok(_))) | Poll::Pending => {}
                }
                polled
            }
            RespBody::Local(full) => Pin::new(full)
                .poll_frame(cx)
                .map_err(|never: Infallible| match never {}),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RespBody::Backend { body, .. } => body.is_end_stream(),
            RespBody::Local(full) => full.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RespBody::Backend { body, .. } => body.size_hint(),
            RespBody::Local(full) => full.size_hint(),
        }
    }
}

fn error_response(status: StatusCode, message: &str) -> Response<RespBody> {
    let body = serde_json::json!({ "error": message }).to_string();
    let mut response = Response::new(RespBody::Local(Full::new(Bytes::from(body))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn backend_request(
    method: &Method,
    authority: &Authority,
    path: &PathAndQuery,
    headers: HeaderMap,
    body: ReqBody,
) -> Result<Request<ReqBody>, hyper::http::Error> {
    let mut parts = uri::Parts::default();
    parts.scheme = Some(Scheme::HTTP);
    parts.authority = Some(authority.clone());
    parts.path_and_query = Some(path.clone());
    let mut request = Request::new(body);
    *request.method_mut() = method.clone();
    *request.uri_mut() = Uri::from_parts(parts)?;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Ok(request)
}

async fn proxy(
    shared: Arc<Shared>,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response<RespBody>, Infallible> {
    let (parts, body) = request.into_parts();
    if parts.method == Method::CONNECT {
        return Ok(error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "the load balancer does not support CONNECT",
        ));
    }
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    append_forwarded_for(&mut headers, peer.ip());
    let path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));

    let Some(first) = shared.pick(None) else {
        return Ok(error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "no ready backend",
        ));
    };
    let hand_back = Arc::new(Mutex::new(None));
    let body = ReqBody::new(body, Some(hand_back.clone()));
    // The headers are kept for a retry; cloning them costs far less than a round trip.
    let attempt = backend_request(
        &parts.method,
        &first.authority,
        &path,
        headers.clone(),
        body,
    );
    let error = match send(&shared, attempt).await {
        Ok(response) => return Ok(forward(response, first.in_flight)),
        Err(error) => error,
    };
    first.in_flight.failed();
    let retry_body = if error.connect {
        lock(&hand_back).take()
    } else {
        None
    };
    tracing::debug!(backend = first.id, error = %error.message, retry = retry_body.is_some(), "load balancer: backend request failed");
    let second = match retry_body {
        Some(body) => shared.pick(Some(first.id)).map(|picked| (picked, body)),
        None => None,
    };
    drop(first.in_flight);
    let Some((second, body)) = second else {
        return Ok(bad_gateway(first.id, &error.message));
    };
    let attempt = backend_request(
        &parts.method,
        &second.authority,
        &path,
        headers,
        ReqBody::new(body, None),
    );
    match send(&shared, attempt).await {
        Ok(response) => Ok(forward(response, second.in_flight)),
        Err(error) => {
            second.in_flight.failed();
            tracing::debug!(backend = second.id, error = %error.message, "load balancer: backend request failed");
            Ok(bad_gateway(second.id, &error.message))
        }
    }
}

struct SendError {
    /// The connection could not be established: nothing was sent.
    connect: bool,
    message: String,
}

async fn send(
    shared: &Shared,
    request: Result<Request<ReqBody>, hyper::http::Error>,
) -> Result<Response<Incoming>, SendError> {
    let request = request.map_err(|err| SendError {
        connect: false,
        message: error_chain(&err),
    })?;
    shared
        .client
        .request(request)
        .await
        .map_err(|err| SendError {
            connect: err.is_connect(),
            message: error_chain(&err),
        })
}

fn bad_gateway(id: u64, message: &str) -> Response<RespBody> {
    error_response(
        StatusCode::BAD_GATEWAY,
        &format!("backend {id} failed: {message}"),
    )
}

fn forward(response: Response<Incoming>, in_flight: InFlight) -> Response<RespBody> {
    let (mut parts, body) = response.into_parts();
    if parts.status.is_server_error() {
        in_flight.failed();
    }
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, RespBody::Backend { body, in_flight })
}
