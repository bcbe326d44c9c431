//! `mlctl serve-model`: serve one ONNX model over the Open Inference Protocol v2 and
//! TensorFlow Serving's REST API until SIGTERM or Ctrl-C, then drain.
//!
//! What it prints on stderr is a contract with the local runtime, which starts replicas as
//! `mlctl serve-model --port 0 ...` and reads the port back:
//!
//! ```text
//! listening on http://127.0.0.1:43817
//! admin listening on http://127.0.0.1:43818      (only with --admin-port)
//! model mlp ready                                 (or: error: model mlp failed to load: ...)
//! ```
//!
//! The first line comes as soon as the port is bound, before the model is loaded; readiness
//! is then `GET /v2/health/ready` (200, or 503 with the reason). These lines are printed
//! whatever the log level.

use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use mlctl_core::scalar::Duration;
use mlctl_serve::{BatchConfig, Phase, Server, ServerConfig, Settings};
use tokio::signal::unix::{SignalKind, signal};

use crate::exit::{self, Failure, Outcome};

#[derive(Debug, clap::Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct Args {
    /// The ONNX model file.
    #[arg(long, value_name = "PATH")]
    model: PathBuf,
    /// The model's name: /v2/models/NAME, and the `model` label of the metrics.
    #[arg(long)]
    name: String,
    /// The version served under /v2/models/NAME/versions/VERSION.
    #[arg(long, value_name = "VERSION", default_value = "1")]
    model_version: String,
    /// The port; 0 picks a free one (printed on stderr).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    address: IpAddr,
    /// Also serve /metrics and the health routes on this port (0 picks a free one).
    #[arg(long, value_name = "PORT")]
    admin_port: Option<u16>,
    /// Rows per model run at most when joining requests into batches.
    #[arg(long, value_name = "N", default_value = "32")]
    max_batch_size: NonZeroUsize,
    /// How long a request waits for others to join its batch; 0 batches only the requests
    /// already waiting, adding no latency.
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    max_batch_delay: Duration,
    /// Model runs at the same time [default: the number of CPUs].
    #[arg(long, value_name = "N")]
    max_concurrency: Option<NonZeroUsize>,
    /// Requests that may wait for a model run; more are answered 429 with Retry-After.
    #[arg(long, value_name = "N", default_value = "256")]
    max_queue: NonZeroUsize,
    /// Largest request body in bytes; larger ones are answered 413.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    max_body_bytes: usize,
    /// How long an idle keep-alive connection spins reading its socket for the client's next
    /// request before the server sleeps (saves the wake-up, most of a round trip for a client
    /// sending one request after another). Only while no other connection has had a request
    /// for a millisecond and nothing else is being handled; off on a connection whose client
    /// did not send within the window until it again sends soon after a response; 0 turns it
    /// off.
    #[arg(long, value_name = "DURATION", default_value = "50us")]
    busy_poll: Duration,
    /// How long shutdown waits for requests in flight.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    drain_timeout: Duration,
}

const AFTER_HELP: &str = "\
Routes (Open Inference Protocol v2, as KServe and Triton clients call them):
  GET  /v2/health/live, /v2/health/ready, /v2
  GET  /v2/models/NAME[/versions/V], /v2/models/NAME[/versions/V]/ready
  POST /v2/models/NAME[/versions/V]/infer   (JSON, or binary tensor data)
TensorFlow Serving: GET /v1/models/NAME, POST /v1/models/NAME:predict
Metrics: GET /metrics (OpenMetrics), including model_busy_polls_total{result=\"hit|miss\"}

Stderr, for programs that start it: `listening on http://ADDRESS:PORT` as soon as the port is
bound, then `model NAME ready` or `error: model NAME failed to load: REASON` (the server stays
up and reports not-ready). SIGTERM or Ctrl-C drains requests in flight and exits 0 (130 after
Ctrl-C); a second signal stops at once.";

pub fn run(args: &Args) -> Outcome {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")
        .map_err(|e| Failure::new(exit::LOCAL_RUNTIME, e))?;
    runtime.block_on(serve(args))
}

async fn serve(args: &Args) -> Outcome {
    let mut batch = BatchConfig {
        max_batch_size: args.max_batch_size.get(),
        max_delay: args.max_batch_delay.0,
        max_queue: args.max_queue.get(),
        ..BatchConfig::default()
    };
    if let Some(n) = args.max_concurrency {
        batch.max_concurrency = n.get();
    }
    let config = ServerConfig {
        model_path: args.model.clone(),
        settings: Settings {
            name: args.name.clone(),
            version: args.model_version.clone(),
            batch,
            max_body_bytes: args.max_body_bytes,
            busy_poll: args.busy_poll.0,
        },
        address: args.address,
        port: args.port,
        admin_port: args.admin_port,
        drain_timeout: args.drain_timeout.0,
    };
    let server = Server::bind(config).await.map_err(|e| {
        Failure::new(exit::LOCAL_RUNTIME, e)
            .with_hint("another process may be using the port; --port 0 picks a free one")
    })?;
    eprintln!("listening on http://{}", server.local_addr());
    if let Some(admin) = server.admin_addr() {
        eprintln!("admin listening on http://{admin}");
    }

    let mut phase = server.state().watch_phase();
    let name = args.name.clone();
    tokio::spawn(async move {
        if let Ok(phase) = phase.wait_for(|p| *p != Phase::Loading).await {
            match &*phase {
                Phase::Ready => eprintln!("model {name} ready"),
                Phase::Failed(reason) => eprintln!("error: model {name} failed to load: {reason}"),
                Phase::Loading | Phase::Draining => {}
            }
        }
    });

    let mut terminate = signal(SignalKind::terminate())
        .context("failed to listen for SIGTERM")
        .map_err(|e| Failure::new(exit::LOCAL_RUNTIME, e))?;
    let interrupted = Arc::new(AtomicBool::new(false));
    let shutdown = {
        let interrupted = interrupted.clone();
        async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => interrupted.store(true, Ordering::SeqCst),
            }
            eprintln!("shutting down: finishing requests in flight (a second signal stops now)");
            tokio::spawn(async move {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
                eprintln!("stopping now");
                std::process::exit(i32::from(exit::INTERRUPTED));
            });
        }
    };
    server
        .run(shutdown)
        .await
        .map_err(|e| Failure::new(exit::LOCAL_RUNTIME, e))?;
    Ok(if interrupted.load(Ordering::SeqCst) {
        exit::INTERRUPTED
    } else {
        exit::OK
    })
}
