//! One scheduler for the machine, shared by every `mlctl` process through the store.
//!
//! The scheduler of `mlctl-core` is a deterministic state machine fed events. The store keeps
//! its event log (`sched_log`); every process keeps a replica and, inside one
//! `BEGIN IMMEDIATE` transaction, catches up with the events others appended, then appends and
//! applies its own. Because the log has one order and the machine is deterministic, every
//! replica computes the same decisions: a process learns that its queued job was placed when
//! it replays the event (another run's job finishing) that freed the room. Capacity, quotas,
//! priorities and the no-starvation rule are therefore machine-wide, with no daemon.
//!
//! The log restarts (a new epoch) when the scheduler is idle and the log has grown, so
//! replaying it stays cheap.

use std::collections::BTreeMap;

use mlctl_core::sched::{Decision, Event, JobId, Node, Policy, Scheduler};

use crate::store::{Store, StoreError, sched_log};

/// Why syncing failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A logged event is not readable (written by another mlctl version).
    #[error("the scheduler log has an unreadable event: {0}")]
    Decode(#[from] serde_json::Error),
}

/// A replica of the machine's scheduler.
pub struct SchedSync {
    scheduler: Scheduler,
    epoch: i64,
    seq: i64,
    owner: i64,
    node: Node,
    /// The owner that submitted each job still known to the scheduler.
    owners: BTreeMap<JobId, i64>,
}

/// Events a sync applied and what the scheduler decided.
#[derive(Debug, Default)]
pub struct Synced {
    /// Every decision, in order (for every process's jobs).
    pub decisions: Vec<Decision>,
    /// Events of ours the scheduler refused (unknown job, duplicate), with why.
    pub refused: Vec<(Event, String)>,
}

/// Rebuild the log when idle and longer than this.
const COMPACT_AFTER: i64 = 2000;

impl SchedSync {
    /// A replica for process `owner` on a machine described by `node`.
    pub fn new(owner: i64, node: Node) -> Self {
        Self {
            scheduler: Scheduler::new(Policy::default()),
            epoch: 0,
            seq: 0,
            owner,
            node,
            owners: BTreeMap::new(),
        }
    }

    /// The replica's scheduler (for explanations).
    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// The owner that submitted `job`, if it is still known.
    pub fn owner_of(&self, job: &JobId) -> Option<i64> {
        self.owners.get(job).copied()
    }

    /// Jobs known to the scheduler (queued or running) with their owners.
    pub fn jobs(&self) -> &BTreeMap<JobId, i64> {
        &self.owners
    }

    fn apply(&mut self, owner: i64, event: &Event, out: &mut Synced, ours: bool) {
        if let Event::Submit(job) = event {
            self.owners.insert(job.id.clone(), owner);
        }
        match self.scheduler.apply(event.clone()) {
            Ok(decisions) => {
                for d in &decisions {
                    if let Decision::Reject { job, .. } | Decision::Evict { job, .. } = d {
                        self.owners.remove(job);
                    }
                }
                if let Event::Finish { job } | Event::Cancel { job } = event {
                    self.owners.remove(job);
                }
                out.decisions.extend(decisions);
            }
            Err(e) => {
                if let Event::Submit(job) = event {
                    // a refused submit leaves the previous owner of a duplicate id in place
                    if self.scheduler.placement(&job.id).is_none()
                        && !self.scheduler.queued().contains(&job.id)
                    {
                        self.owners.remove(&job.id);
                    }
                }
                if ours {
                    out.refused.push((event.clone(), e.to_string()));
                }
            }
        }
    }

    /// Catches up with the log, then appends and applies `events` (ours), atomically.
    pub fn sync(&mut self, store: &mut Store, events: Vec<Event>) -> Result<Synced, SyncError> {
        let owner = self.owner;
        store.write(|tx| {
            let mut out = Synced::default();
            let mut epoch = sched_log::epoch(tx)?;
            if epoch != self.epoch {
                self.rebuild(epoch);
            }
            for (seq, by, json) in sched_log::since(tx, epoch, self.seq)? {
                let event: Event = serde_json::from_str(&json)?;
                self.apply(by, &event, &mut out, false);
                self.seq = seq;
            }
            let idle = self.owners.is_empty();
            let known = self
                .scheduler
                .nodes()
                .into_iter()
                .find(|n| n.name == self.node.name);
            // a machine declared differently (say, --gpus 4 after --gpus 2) takes effect as
            // soon as nothing runs
            let changed = known.as_ref().is_some_and(|n| {
                n.allocatable != self.node.allocatable()
                    || n.gpus
                        .iter()
                        .map(|g| &g.0)
                        .ne(self.node.gpus.iter().map(|g| &g.id))
            });
            if idle && (changed || sched_log::len(tx)? > COMPACT_AFTER) {
                epoch = sched_log::clear(tx)?;
                self.rebuild(epoch);
            }
            let mut mine = Vec::new();
            if self
                .scheduler
                .nodes()
                .iter()
                .all(|n| n.name != self.node.name)
            {
                mine.push(Event::AddNode(self.node.clone()));
            }
            mine.extend(events);
            for event in mine {
                let json = serde_json::to_string(&event)?;
                self.seq = sched_log::append(tx, epoch, owner, &json)?;
                self.apply(owner, &event, &mut out, true);
            }
            Ok(out)
        })
    }

    fn rebuild(&mut self, epoch: i64) {
        self.scheduler = Scheduler::new(Policy::default());
        self.owners.clear();
        self.epoch = epoch;
        self.seq = 0;
    }
}
