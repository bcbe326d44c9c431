//! The server's state (which model, whether it is loading, ready, failed or draining) and
//! the listening server: bind, load the model in the background, serve, and drain in-flight
//! requests on shutdown.
//!
//! The process stays up when the model cannot be loaded: liveness answers, readiness says
//! why not, which is what Kubernetes probes and the local runtime expect of a replica.

use std::future::{Future, IntoFuture};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::batch::{BatchConfig, Batcher};
use crate::busy_poll::BusyPollListener;
use crate::error::ApiError;
use crate::http;
use crate::metrics::Metrics;
use crate::model::{self, Model};

/// The default busy-polling window: longer than a client's turnaround on loopback or a fast
/// network (a request following its response within it is read without a wake-up), short
/// enough that a miss costs little CPU.
pub const DEFAULT_BUSY_POLL: Duration = Duration::from_micros(50);

/// What the server serves and how.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The model's name in URLs and metrics.
    pub name: String,
    /// The one version served (the protocol's `versions` and the `/versions/V` routes).
    pub version: String,
    /// Batching and back-pressure.
    pub batch: BatchConfig,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// How long an idle keep-alive connection may spin reading its socket for the next
    /// request before sleeping in epoll (see `busy_poll`); zero turns busy polling off.
    pub busy_poll: Duration,
}

impl Settings {
    /// Settings for a model called `name`, version "1", with default batching.
    pub fn new(name: impl Into<String>) -> Settings {
        Settings {
            name: name.into(),
            version: "1".into(),
            batch: BatchConfig::default(),
            max_body_bytes: 64 << 20,
            busy_poll: DEFAULT_BUSY_POLL,
        }
    }
}

/// Where the server is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Reading and optimizing the model.
    Loading,
    /// Serving.
    Ready,
    /// The model could not be loaded; the reason.
    Failed(String),
    /// Shutting down: finishing the requests it has, refusing readiness.
    Draining,
}

pub(crate) struct Loaded {
    pub(crate) model: Arc<dyn Model>,
    pub(crate) batcher: Batcher,
}

/// Everything the routes share.
pub struct ServerState {
    settings: Settings,
    loaded: OnceLock<Result<Arc<Loaded>, String>>,
    draining: AtomicBool,
    metrics: Arc<Metrics>,
    phase: watch::Sender<Phase>,
}

impl ServerState {
    /// A server for `settings` whose model is still loading.
    pub fn new(settings: Settings) -> Arc<ServerState> {
        let metrics = Arc::new(Metrics::new(&settings.name, settings.batch.max_batch_size));
        Arc::new(ServerState {
            settings,
            loaded: OnceLock::new(),
            draining: AtomicBool::new(false),
            metrics,
            phase: watch::Sender::new(Phase::Loading),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Makes `model` the served model and starts its batcher (on the current tokio runtime).
    /// A server gets one model: later calls are ignored.
    pub fn set_model(&self, model: Arc<dyn Model>) {
        let batcher = Batcher::start(model.clone(), self.settings.batch, self.metrics.clone());
        if self
            .loaded
            .set(Ok(Arc::new(Loaded { model, batcher })))
            .is_ok()
        {
            self.update_phase();
        }
    }

    /// Records that the model could not be loaded, and why.
    pub fn set_failed(&self, reason: impl Into<String>) {
        if self.loaded.set(Err(reason.into())).is_ok() {
            self.update_phase();
        }
    }

    /// Stops reporting ready; requests already accepted are still answered.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.update_phase();
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase.borrow().clone()
    }

    /// A receiver that sees every change of phase.
    pub fn watch_phase(&self) -> watch::Receiver<Phase> {
        self.phase.subscribe()
    }

    fn update_phase(&self) {
        let phase = if self.draining.load(Ordering::SeqCst) {
            Phase::Draining
        } else {
            match self.loaded.get() {
                None => Phase::Loading,
                Some(Ok(_)) => Phase::Ready,
                Some(Err(reason)) => Phase::Failed(reason.clone()),
            }
        };
        self.metrics.ready.set(i64::from(phase == Phase::Ready));
        self.phase.send_replace(phase);
    }

    /// 404 unless `name` (and `version`, if given) is what this server serves.
    pub(crate) fn check_model(&self, name: &str, version: Option<&str>) -> Result<(), ApiError> {
        if name != self.settings.name {
            return Err(ApiError::not_found(format!(
                "model {name:?} is not served here; this server serves {:?}",
                self.settings.name
            )));
        }
        if let Some(v) = version
            && v != self.settings.version
        {
            return Err(ApiError::not_found(format!(
                "model {name:?} has no version {v:?}; this server serves version {:?}",
                self.settings.version
            )));
        }
        Ok(())
    }

    /// The loaded model, or 503 saying why there is none.
    pub(crate) fn loaded(&self) -> Result<&Arc<Loaded>, ApiError> {
        match self.loaded.get() {
            Some(Ok(loaded)) => Ok(loaded),
            Some(Err(reason)) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("model {:?} failed to load: {reason}", self.settings.name),
            )),
            None => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("model {:?} is loading", self.settings.name),
            )
            .retry_after(1)),
        }
    }

    /// `Ok` when ready to take traffic, else 503 saying why not.
    pub(crate) fn readiness(&self) -> Result<(), ApiError> {
        self.loaded()?;
        if self.draining.load(Ordering::SeqCst) {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is shutting down",
            ));
        }
        Ok(())
    }
}

/// Loads the model at `path` off the async threads and records the outcome in `state`.
pub async fn load_model(state: Arc<ServerState>, path: PathBuf) {
    let started = Instant::now();
    let loaded = tokio::task::spawn_blocking(move || model::load(&path)).await;
    match loaded {
        Ok(Ok(model)) => {
            tracing::debug!(
                model = %state.settings.name,
                elapsed_ms = started.elapsed().as_millis(),
                "model loaded"
            );
            state.set_model(model);
        }
        Ok(Err(e)) => {
            let reason = error_chain(&e);
            tracing::debug!(model = %state.settings.name, "{reason}");
            state.set_failed(reason);
        }
        Err(e) => state.set_failed(format!("the model loader crashed: {e}")),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// How to start a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The ONNX file.
    pub model_path: PathBuf,
    /// The model's name, version, batching and limits.
    pub settings: Settings,
    /// The address to listen on (127.0.0.1 unless told otherwise).
    pub address: IpAddr,
    /// The port; 0 picks a free one.
    pub port: u16,
    /// A second port serving only `/metrics` and the health routes; 0 picks a free one.
    pub admin_port: Option<u16>,
    /// How long shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
}

/// Binding or serving failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("failed to listen on {address}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The listener failed while serving.
    #[error("failed to serve on {address}")]
    Serve {
        /// The address.
        address: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A bound server, not yet serving.
pub struct Server {
    listener: TcpListener,
    address: SocketAddr,
    admin: Option<(TcpListener, SocketAddr)>,
    state: Arc<ServerState>,
    model_path: PathBuf,
    drain_timeout: Duration,
}

impl Server {
    /// Binds the ports; the model is loaded by [`Server::run`].
    pub async fn bind(config: ServerConfig) -> Result<Server, ServeError> {
        let (listener, address) = listen(SocketAddr::new(config.address, config.port)).await?;
        let admin = match config.admin_port {
            Some(port) => Some(listen(SocketAddr::new(config.address, port)).await?),
            None => None,
        };
        Ok(Server {
            listener,
            address,
            admin,
            state: ServerState::new(config.settings),
            model_path: config.model_path,
            drain_timeout: config.drain_timeout,
        })
    }

    /// The address it listens on (with the port picked, if 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// The admin port's address, if there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|(_, a)| *a)
    }

    /// The shared state (phase, metrics).
    pub fn state(&self) -> &Arc<ServerState> {
        &self.state
    }

    /// Loads the model in the background and serves until `shutdown` completes; then stops
    /// reporting ready, stops accepting connections, and waits up to the drain timeout for
    /// the requests in flight.
    pub async fn run<F>(self, shutdown: F) -> Result<(), ServeError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Server {
            listener,
            address,
            admin,
            state,
            model_path,
            drain_timeout,
        } = self;
        let loader = tokio::spawn(load_model(state.clone(), model_path));
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = move |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let listener =
            BusyPollListener::new(listener, state.settings.busy_poll, state.metrics.clone());
        let main = axum::serve(listener, http::router(state.clone()))
            .with_graceful_shutdown(stopped(stop_rx.clone()))
            .into_future();
        let admin = async {
            match admin {
                Some((listener, address)) => {
                    axum::serve(listener, http::admin_router(state.clone()))
                        .with_graceful_shutdown(stopped(stop_rx.clone()))
                        .await
                        .map_err(|source| ServeError::Serve { address, source })
                }
                None => Ok(()),
            }
        };
        let serving = async {
            let main = async {
                main.await
                    .map_err(|source| ServeError::Serve { address, source })
            };
            tokio::try_join!(main, admin).map(|_| ())
        };
        tokio::pin!(serving);
        tokio::pin!(shutdown);
        tokio::select! {
            result = &mut serving => {
                loader.abort();
                return result;
            }
            () = &mut shutdown => {}
        }
        tracing::info!("shutting down: draining in-flight requests");
        state.begin_drain();
        let _ = stop_tx.send(true);
        let inflight = &state.metrics().inflight;
        match tokio::time::timeout(drain_timeout, serving).await {
            Ok(result) => result?,
            Err(_) => tracing::warn!(
                requests = inflight.get(),
                "drain timeout of {drain_timeout:?} passed; closing the remaining connections"
            ),
        }
        loader.abort();
        Ok(())
    }
}

async fn listen(address: SocketAddr) -> Result<(TcpListener, SocketAddr), ServeError> {
    let bind_error = |source| ServeError::Bind { address, source };
    let listener = TcpListener::bind(address).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}
