//! Dynamic batching with a bounded queue.
//!
//! Requests wait in a channel of at most `max_queue` entries; a full channel turns the
//! request away at once (the HTTP layer answers 429 with `Retry-After`), so memory and latency
//! stay bounded under any load. One task takes requests off the channel: it first waits for
//! one of `max_concurrency` run slots, then takes a request and, if the model has a batch
//! axis, keeps taking requests with the same trailing shapes until the batch holds
//! `max_batch_size` rows or `max_delay` has passed since the first one (with a zero delay it
//! takes only what is already waiting, adding no latency). The batch's inputs are joined along
//! axis 0, run once, and the outputs split back by rows. Runs go to a blocking thread, except
//! runs that past runs show to take under 100 µs: those are made on the batching task, since
//! the hand-off would cost more than the run.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::model::{Model, RunError};
use crate::tensor::{Tensor, TensorData, element_count};

/// How requests are batched and how many may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Rows per model run at most (a single larger request still runs, alone).
    pub max_batch_size: usize,
    /// How long the first request of a batch waits for others to join it.
    pub max_delay: Duration,
    /// Model runs at the same time.
    pub max_concurrency: usize,
    /// Requests waiting for a run at most; more are refused.
    pub max_queue: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_batch_size: 32,
            max_delay: Duration::ZERO,
            max_concurrency: std::thread::available_parallelism().map_or(1, usize::from),
            max_queue: 256,
        }
    }
}

/// Why a request got no outputs.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// The queue is full.
    #[error("the server is at capacity: {0} requests are already waiting")]
    QueueFull(usize),
    /// The batcher has stopped (the server is shutting down).
    #[error("the server is shutting down")]
    Stopped,
    /// The model failed.
    #[error(transparent)]
    Run(#[from] RunError),
}

struct Job {
    inputs: Vec<Tensor>,
    rows: usize,
    reply: oneshot::Sender<Result<Vec<Tensor>, RunError>>,
}

impl Job {
    /// Whether `other` can join a batch this job is in: same shapes apart from axis 0.
    fn fits_with(&self, other: &Job) -> bool {
        self.inputs
            .iter()
            .zip(&other.inputs)
            .all(|(a, b)| a.shape.get(1..) == b.shape.get(1..))
    }
}

/// The handle requests are submitted through. Dropping it stops the batching task once the
/// queue is empty.
pub struct Batcher {
    tx: mpsc::Sender<Job>,
    metrics: Arc<Metrics>,
    max_queue: usize,
}

impl Batcher {
    /// Starts the batching task for `model` on the current tokio runtime.
    pub fn start(model: Arc<dyn Model>, config: BatchConfig, metrics: Arc<Metrics>) -> Batcher {
        let max_queue = config.max_queue.max(1);
        let (tx, rx) = mpsc::channel(max_queue);
        tokio::spawn(batch_loop(model, config, rx, metrics.clone()));
        Batcher {
            tx,
            metrics,
            max_queue,
        }
    }

    /// Queues `inputs` (in the model's input order, validated; `rows` is their size along
    /// axis 0) and waits for the outputs.
    pub async fn infer(&self, inputs: Vec<Tensor>, rows: usize) -> Result<Vec<Tensor>, InferError> {
        let (reply, outputs) = oneshot::channel();
        // Count before sending: the batch task may take the job (and decrement) at once.
        self.metrics.queue_depth.inc();
        if let Err(e) = self.tx.try_send(Job {
            inputs,
            rows,
            reply,
        }) {
            self.metrics.queue_depth.dec();
            return Err(match e {
                mpsc::error::TrySendError::Full(_) => InferError::QueueFull(self.max_queue),
                mpsc::error::TrySendError::Closed(_) => InferError::Stopped,
            });
        }
        match outputs.await {
            Ok(result) => Ok(result?),
            // The run panicked and dropped the reply.
            Err(_) => Err(InferError::Run(RunError {
                message: "the model run stopped without a result".into(),
            })),
        }
    }
}

async fn batch_loop(
    model: Arc<dyn Model>,
    config: BatchConfig,
    mut rx: mpsc::Receiver<Job>,
    metrics: Arc<Metrics>,
) {
    let batchable = model.signature().batchable;
    let max_rows = config.max_batch_size.max(1);
    let slots = Arc::new(Semaphore::new(config.max_concurrency.max(1)));
    let cost = RunCost::default();
    let mut carried: Option<Job> = None;
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let first = match carried.take() {
            Some(job) => job,
            None => match rx.recv().await {
                Some(job) => {
                    metrics.queue_depth.dec();
                    job
                }
                None => break,
            },
        };
        let mut rows = first.rows;
        let mut batch = vec![first];
        if batchable {
            let deadline = Instant::now() + config.max_delay;
            while rows < max_rows {
                let next = match rx.try_recv() {
                    Ok(job) => Some(job),
                    Err(mpsc::error::TryRecvError::Empty) if !config.max_delay.is_zero() => {
                        tokio::time::timeout_at(deadline, rx.recv())
                            .await
                            .ok()
                            .flatten()
                    }
                    Err(_) => None,
                };
                let Some(job) = next else { break };
                metrics.queue_depth.dec();
                if rows + job.rows > max_rows || !batch[0].fits_with(&job) {
                    carried = Some(job);
                    break;
                }
                rows += job.rows;
                batch.push(job);
            }
        }
        metrics.batch_size.observe(rows as f64);
        if cost.cheap(rows) {
            // Handing a run of a few microseconds to a blocking thread costs more than the
            // run: make it here, between two awaits.
            let started = std::time::Instant::now();
            // A panicking model must not take the batching task down with it: the batch's
            // replies are dropped and its requests answered 500.
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_batch(model.as_ref(), batch, rows);
            }));
            if ran.is_ok() {
                cost.record(rows, started.elapsed());
            }
            drop(slot);
        } else {
            let (model, cost) = (model.clone(), cost.clone());
            tokio::task::spawn_blocking(move || {
                let started = std::time::Instant::now();
                run_batch(model.as_ref(), batch, rows);
                cost.record(rows, started.elapsed());
                drop(slot);
            });
        }
    }
}

/// Runs estimated to take less than this are made on the batching task itself.
const INLINE_RUN: Duration = Duration::from_micros(100);

/// A running estimate of a model run's cost per row (nanoseconds, exponentially weighted),
/// unknown until the first run has been timed.
#[derive(Clone, Default)]
struct RunCost(Arc<std::sync::atomic::AtomicU64>);

impl RunCost {
    fn cheap(&self, rows: usize) -> bool {
        let per_row = self.0.load(std::sync::atomic::Ordering::Relaxed);
        per_row != 0 && u128::from(per_row).saturating_mul(rows as u128) < INLINE_RUN.as_nanos()
    }

    fn record(&self, rows: usize, took: Duration) {
        let sample = u64::try_from(took.as_nanos() / rows.max(1) as u128)
            .unwrap_or(u64::MAX)
            .max(1);
        let old = self.0.load(std::sync::atomic::Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            old - old / 8 + sample / 8
        };
        self.0
            .store(new.max(1), std::sync::atomic::Ordering::Relaxed);
    }
}

fn run_batch(model: &dyn Model, mut batch: Vec<Job>, rows: usize) {
    if batch.len() == 1 {
        if let Some(job) = batch.pop() {
            let _ = job.reply.send(model.run(job.inputs));
        }
        return;
    }
    let result = join(&batch, rows)
        .and_then(|inputs| model.run(inputs))
        .and_then(|outputs| split(outputs, &batch, rows));
    match result {
        Ok(parts) => {
            for (job, outputs) in batch.into_iter().zip(parts) {
                let _ = job.reply.send(Ok(outputs));
            }
        }
        Err(e) => {
            for job in batch {
                let _ = job.reply.send(Err(e.clone()));
            }
        }
    }
}

/// Joins the jobs' inputs along axis 0.
fn join(batch: &[Job], rows: usize) -> Result<Vec<Tensor>, RunError> {
    let first = &batch[0];
    let mut joined = Vec::with_capacity(first.inputs.len());
    for (ix, input) in first.inputs.iter().enumerate() {
        let mut shape = input.shape.clone();
        shape[0] = rows;
        let mut data =
            TensorData::with_capacity(input.datatype(), element_count(&shape).unwrap_or(0));
        for job in batch {
            data.extend_from(&job.inputs[ix].data)
                .map_err(|e| RunError {
                    message: format!("failed to batch input {ix}: {e}"),
                })?;
        }
        joined.push(Tensor { shape, data });
    }
    Ok(joined)
}

/// Splits each output along axis 0 back into the jobs' rows.
fn split(outputs: Vec<Tensor>, batch: &[Job], rows: usize) -> Result<Vec<Vec<Tensor>>, RunError> {
    let mut parts: Vec<Vec<Tensor>> = batch
        .iter()
        .map(|_| Vec::with_capacity(outputs.len()))
        .collect();
    for (ix, output) in outputs.iter().enumerate() {
        if output.shape.first() != Some(&rows) {
            return Err(RunError {
                message: format!(
                    "output {ix} has shape {:?}, which does not start with the batch's {rows} rows",
                    output.shape
                ),
            });
        }
        let per_row = element_count(&output.shape[1..]).unwrap_or(0);
        let mut offset = 0;
        for (job, part) in batch.iter().zip(&mut parts) {
            let len = job.rows * per_row;
            let mut shape = output.shape.clone();
            shape[0] = job.rows;
            part.push(Tensor {
                shape,
                data: output.data.slice(offset..offset + len),
            });
            offset += len;
        }
    }
    Ok(parts)
}
