//! Adaptive busy polling of idle keep-alive connections: after answering a request, a
//! connection may spin for a short window reading its socket directly instead of going back
//! to epoll, so that the client's next request is read without the server having to be woken
//! from sleep (on a virtual machine that wake-up is most of a round trip at one connection).
//!
//! It trades CPU for latency, so it is bounded and adaptive, like KVM's halt-polling:
//!
//! - a connection spins at most `window` per read, and only while it is idle between
//!   requests, no other connection has a request being handled, no inference request is in
//!   flight, no other connection spins, and the server's latest requests (at least two, and
//!   all those of the last [`QUIET`]) came on this connection (so a worker is not held while
//!   other clients wait: it is for one client sending one request after another);
//! - a window that ends with nothing read (a miss) turns spinning off on that connection until
//!   one of its requests again follows its response closely (within [`REARM_WINDOWS`]
//!   windows as the server sees it, which includes the server's own wake-up), so an idle
//!   server, or a client that pauses between requests, costs no CPU after one window.
//!
//! When a window passes with nothing read the read returns `Pending` as usual: tokio's own
//! read, tried first, registered the task's waker, and epoll (edge-triggered) reports data
//! that arrived during the spin, so nothing is lost. Reads in the window go straight to the
//! socket (a non-blocking `recv`), since tokio does no system call once it has seen the
//! socket drained.
//!
//! Requests are seen as bytes, not parsed: a pipelined request that hyper already holds in
//! its buffer leaves the connection looking idle, so it may wait one window (a miss, after
//! which the connection is off) before it is handled.
//!
//! Not here: what the connection carries (hyper parses it); the admin port (not polled).

use std::io::{self, Read};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::metrics::Metrics;

/// A request read within this many windows of its connection's previous response turns
/// spinning back on for that connection. The gap is measured when the request is read, after
/// the server woke up for it, so it must allow for the wake-up itself (60-90 µs on a
/// virtual machine), which is longer than a useful window.
pub const REARM_WINDOWS: u32 = 4;

/// At most this many bytes are read per spin (the part of the read buffer that is zeroed
/// before reading into it).
const MAX_SPIN_READ: usize = 64 << 10;

/// Spinning waits until no other connection has received a request for this long: with one
/// worker thread (a server pinned to one CPU) the spinning thread cannot see other clients'
/// requests arrive, and when several connections take turns, spinning for one of them
/// delays the others (at 8 connections it halved the throughput).
pub const QUIET: Duration = Duration::from_millis(1);

/// What all connections of one listener share.
struct Poller {
    window: Duration,
    /// Connections that have read a request and not yet written its response.
    busy: AtomicUsize,
    /// Whether a connection is spinning now (one at a time).
    spinning: AtomicBool,
    /// The connection that received the latest request (0: none yet).
    last_reader: AtomicU64,
    /// When (nanoseconds after `started`) a request last came on another connection than
    /// the one before it.
    last_switch: AtomicU64,
    started: Instant,
    metrics: Arc<Metrics>,
}

impl Poller {
    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.duration_since(self.started).as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A TCP listener whose connections busy-poll between requests; `window` zero turns it off.
pub(crate) struct BusyPollListener {
    inner: TcpListener,
    poller: Arc<Poller>,
    next_id: u64,
}

impl BusyPollListener {
    pub(crate) fn new(inner: TcpListener, window: Duration, metrics: Arc<Metrics>) -> Self {
        BusyPollListener {
            inner,
            poller: Arc::new(Poller {
                window,
                busy: AtomicUsize::new(0),
                spinning: AtomicBool::new(false),
                last_reader: AtomicU64::new(0),
                last_switch: AtomicU64::new(0),
                started: Instant::now(),
                metrics,
            }),
            next_id: 1,
        }
    }
}

impl axum::serve::Listener for BusyPollListener {
    type Io = PolledStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (PolledStream, std::net::SocketAddr) {
        // axum's accept loop for TcpListener: it logs and retries failed accepts.
        let (stream, address) = axum::serve::Listener::accept(&mut self.inner).await;
        let id = self.next_id;
        self.next_id += 1;
        let stream = PolledStream {
            inner: stream,
            poller: self.poller.clone(),
            id,
            armed: true,
            busy: false,
            responded_at: None,
            switched: true,
        };
        (stream, address)
    }

    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.inner.local_addr()
    }
}

/// One accepted connection: tokio's stream, plus the state that decides whether to spin.
pub(crate) struct PolledStream {
    inner: TcpStream,
    poller: Arc<Poller>,
    id: u64,
    /// Whether this connection may spin (off after a miss, on again after a quick request).
    armed: bool,
    /// Whether it has read a request and not yet written the response.
    busy: bool,
    /// When it last wrote a response (cleared by the next request read).
    responded_at: Option<Instant>,
    /// Whether the server's request before its latest came on another connection.
    switched: bool,
}

impl PolledStream {
    /// Bytes of a request were read at `now`.
    fn received(&mut self, now: Instant) {
        let poller = &*self.poller;
        if !self.busy {
            // The first bytes of a request.
            self.busy = true;
            poller.busy.fetch_add(1, Ordering::SeqCst);
            self.switched = poller.last_reader.swap(self.id, Ordering::Relaxed) != self.id;
            if self.switched {
                poller
                    .last_switch
                    .store(poller.nanos(now), Ordering::Relaxed);
            }
        }
        if let Some(responded) = self.responded_at.take() {
            self.armed = now.duration_since(responded) <= poller.window * REARM_WINDOWS;
        }
    }

    /// A write of the response finished with `written`.
    fn wrote(&mut self, cx: &Context<'_>, written: &Poll<io::Result<usize>>) {
        if matches!(written, Poll::Ready(Ok(n)) if *n > 0) {
            self.responded(cx);
        }
    }

    /// Bytes of a response were written.
    fn responded(&mut self, cx: &Context<'_>) {
        if self.busy {
            self.busy = false;
            self.poller.busy.fetch_sub(1, Ordering::SeqCst);
        }
        self.responded_at = Some(Instant::now());
        if self.armed && self.nothing_else_to_do() {
            // hyper does not read again after a response when its last read (made while the
            // request was being handled) found nothing: it waits for the waker. Polling the
            // connection once more, on this thread, makes it read, and that read spins.
            cx.waker().wake_by_ref();
        }
    }

    /// Whether polling is on and no other connection has, or recently had, work: its
    /// latest request followed another of its own, and all those of the last [`QUIET`]
    /// came on it.
    fn nothing_else_to_do(&self) -> bool {
        let poller = &*self.poller;
        !poller.window.is_zero()
            && !self.switched
            && poller.busy.load(Ordering::SeqCst) == 0
            && poller.metrics.inflight.get() == 0
            && poller.last_reader.load(Ordering::Relaxed) == self.id
            && poller.nanos(Instant::now())
                >= poller.last_switch.load(Ordering::Relaxed) + QUIET.as_nanos() as u64
    }

    fn may_spin(&self, buf: &ReadBuf<'_>) -> bool {
        self.armed && !self.busy && buf.remaining() > 0 && self.nothing_else_to_do()
    }

    /// Called when tokio's read found the socket empty (and registered the waker): reads the
    /// socket directly until data comes, the window passes, or another connection gets work.
    fn spin(&mut self, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if !self.may_spin(buf)
            || self
                .poller
                .spinning
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return Poll::Pending;
        }
        let read = self.spin_read(buf);
        self.poller.spinning.store(false, Ordering::Release);
        let metrics = &self.poller.metrics;
        match read {
            Some(Ok(n)) => {
                metrics.busy_poll_hits.inc();
                if n > 0 {
                    self.received(Instant::now());
                }
                Poll::Ready(Ok(()))
            }
            Some(Err(e)) => Poll::Ready(Err(e)),
            None => {
                metrics.busy_poll_misses.inc();
                self.armed = false;
                Poll::Pending
            }
        }
    }

    /// The spin itself: `Some` with what a read returned (bytes read, 0 at end of stream),
    /// `None` when the window ended with nothing to read.
    fn spin_read(&self, buf: &mut ReadBuf<'_>) -> Option<io::Result<usize>> {
        let poller = &*self.poller;
        let deadline = Instant::now() + poller.window;
        let socket = SockRef::from(&self.inner);
        let len = buf.remaining().min(MAX_SPIN_READ);
        loop {
            // The socket is non-blocking (tokio set it so): an empty one answers WouldBlock.
            match (&*socket).read(buf.initialize_unfilled_to(len)) {
                Ok(n) => {
                    buf.advance(n);
                    return Some(Ok(n));
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock) => {}
                Err(e) if matches!(e.kind(), io::ErrorKind::Interrupted) => {}
                Err(e) => return Some(Err(e)),
            }
            if Instant::now() >= deadline
                || poller.busy.load(Ordering::SeqCst) > 0
                || poller.last_reader.load(Ordering::Relaxed) != self.id
            {
                return None;
            }
            std::hint::spin_loop();
        }
    }
}

impl Drop for PolledStream {
    fn drop(&mut self) {
        if self.busy {
            self.poller.busy.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl AsyncRead for PolledStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.received(Instant::now());
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.spin(buf),
        }
    }
}

impl AsyncWrite for PolledStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write(cx, data);
        this.wrote(cx, &written);
        written
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write_vectored(cx, data);
        this.wrote(cx, &written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
