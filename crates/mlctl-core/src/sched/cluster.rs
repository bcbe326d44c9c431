//! The cluster: nodes, what runs on them, the indexes placement filters by, and gang
//! placement with GPU bin-packing.
//!
//! Placement of a job of N identical workers:
//!
//! 1. **Candidates** come from an index: the smallest posting list of the node selector's
//!    labels, or (for GPU workers on the real cluster) the nodes with at least the needed
//!    number of free GPUs, or else every node. A job whose total request exceeds the
//!    cluster's free total is refused before any node is looked at. For GPU workers of any
//!    model, free-GPU buckets are read in ascending order only until nodes without a
//!    `PreferNoSchedule` taint have room for the gang: no later node can win the score.
//! 2. **Filters** (Kubernetes' order): node selector, untolerated `NoSchedule`/`NoExecute`
//!    taints, GPU model, allocatable size, then free capacity in the current view.
//! 3. **Score**, lowest first, for one more worker on a node:
//!    untolerated `PreferNoSchedule` taints; then for GPU workers the number of usable GPUs
//!    the node would have left (best fit: fill the fullest node that fits, so whole free
//!    nodes stay whole for big gangs) and, as a tie-break, the longest run of contiguous free
//!    GPUs it would have left (longer is better); for CPU-only workers the number of GPUs the
//!    node has (keep GPU nodes for GPU work); then the CPU and memory left (bin-packing); then
//!    the node name, so that results never depend on insertion order.
//! 4. **Gang**: workers are assigned one at a time to the best-scoring node, re-scoring only
//!    the node that changed (an ordered set keyed by score). Because the workers are
//!    identical, this finds a placement whenever the per-node worker capacities add up to N,
//!    and it is all or nothing: nothing is committed until every worker has a place.
//! 5. **Devices** on a node: among usable free GPUs (free, and of the requested model), the
//!    smallest contiguous run that holds the worker's GPUs (taken from its start); if no run
//!    is long enough, the smallest runs are used up first so the long runs survive.
//!
//! Cost per attempt: O(candidates · log candidates + N · log candidates), never quadratic in
//! the number of nodes.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use super::model::{GpuDevice, JobId, Node, PodRequest, Resource, Resources, Taint, TaintEffect};

pub(crate) type NodeIdx = usize;

/// A node and what runs on it.
#[derive(Debug, Clone)]
pub(crate) struct NodeState {
    pub spec: Node,
    /// Sum of the requests of the workers on the node (GPUs included).
    pub used: Resources,
    /// Which job holds each GPU device.
    pub owners: Vec<Option<JobId>>,
    /// Workers per job on this node.
    pub workers: BTreeMap<JobId, u32>,
}

impl NodeState {
    fn free_gpus(&self) -> u32 {
        let free = self.owners.iter().filter(|o| o.is_none()).count();
        u32::try_from(free).unwrap_or(u32::MAX)
    }
}

/// Resources held on one node in an [`Overlay`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Use {
    pub res: Resources,
    pub devices: BTreeSet<usize>,
}

/// Per-node amounts layered over the cluster: the usage of backfilled jobs, or a reservation.
#[derive(Debug, Clone, Default)]
pub(crate) struct Overlay {
    pub nodes: BTreeMap<NodeIdx, Use>,
}

impl Overlay {
    pub fn add(&mut self, per_worker: &Resources, placed: &[(NodeIdx, Vec<usize>)]) {
        for (idx, devices) in placed {
            let u = self.nodes.entry(*idx).or_default();
            u.res = u.res.plus(per_worker);
            u.devices.extend(devices.iter().copied());
        }
    }
}

/// Which capacity placement sees.
#[derive(Debug, Clone, Copy)]
pub(crate) enum View<'a> {
    /// What is free now.
    Real,
    /// Every node empty.
    Empty,
    /// Every node holding only the overlay.
    Virtual(&'a Overlay),
    /// What is free now, also leaving room on top of `backfill` for `reservation`.
    Reserved {
        backfill: &'a Overlay,
        reservation: &'a Overlay,
    },
}

/// What one job asks of a node.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape<'a> {
    pub per_worker: Resources,
    pub workers: u32,
    pub pod: &'a PodRequest,
}

/// What a node has left for a job in some view.
#[derive(Debug, Clone)]
struct Avail {
    res: Resources,
    /// Per device: free and of the requested model (empty when the job needs no GPU).
    usable: Vec<bool>,
}

/// Why a node cannot take a worker.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Unfit {
    Selector {
        key: String,
        value: String,
    },
    Taint(Taint),
    GpuModel {
        model: String,
        have: u32,
        need: u32,
    },
    TooSmall {
        resource: Resource,
        have: u64,
        need: u64,
    },
    Busy {
        resource: Resource,
        free: u64,
        need: u64,
    },
}

impl Unfit {
    /// The text nodes are grouped by.
    fn group(&self) -> String {
        match self {
            Unfit::Selector { key, value } => format!("didn't match node selector {key}={value}"),
            Unfit::Taint(t) => format!("had untolerated taint {{{t}}}"),
            Unfit::GpuModel { model, need, .. } => {
                format!("had fewer than {need} {model} GPU(s)")
            }
            Unfit::TooSmall { resource, .. } => {
                format!("had too little allocatable {resource} for one worker")
            }
            Unfit::Busy { resource, .. } => format!("had insufficient {resource}"),
        }
    }

    /// The per-node detail.
    fn detail(&self) -> String {
        match self {
            Unfit::Selector { key, value } => format!("label {key}={value} missing"),
            Unfit::Taint(t) => format!("taint {t} not tolerated"),
            Unfit::GpuModel { model, have, need } => {
                format!("{have} {model} GPU(s), {need} needed per worker")
            }
            Unfit::TooSmall {
                resource,
                have,
                need,
            } => format!(
                "{} allocatable {resource}, {} needed per worker",
                resource.format(*have),
                resource.format(*need)
            ),
            Unfit::Busy {
                resource,
                free,
                need,
            } => format!(
                "{} {resource} free, {} needed per worker",
                resource.format(*free),
                resource.format(*need)
            ),
        }
    }
}

/// Why a job does not fit, node by node.
#[derive(Debug, Clone, Default)]
pub(crate) struct Report {
    pub nodes: usize,
    /// Nodes that can take at least one worker, and how many.
    pub fits: Vec<(String, u32)>,
    /// Other nodes, grouped by reason.
    unfit: BTreeMap<String, Vec<(String, String)>>,
}

impl Report {
    /// A one-line summary and a line per node that cannot take a worker.
    pub fn render(&self, workers: u32) -> (String, Vec<String>) {
        let room: u64 = self.fits.iter().map(|(_, k)| u64::from(*k)).sum();
        let mut summary = if self.fits.is_empty() {
            format!("0/{} nodes can take a worker", self.nodes)
        } else {
            let list: Vec<String> = self
                .fits
                .iter()
                .take(5)
                .map(|(n, k)| format!("{n}: {k}"))
                .collect();
            let more = if self.fits.len() > 5 { ", ..." } else { "" };
            format!(
                "gang of {workers} workers, room for {room} ({}{more})",
                list.join(", ")
            )
        };
        let groups: Vec<String> = self
            .unfit
            .iter()
            .map(|(reason, nodes)| format!("{} node(s) {reason}", nodes.len()))
            .collect();
        if !groups.is_empty() {
            summary.push_str(": ");
            summary.push_str(&groups.join(", "));
        }
        let details = self
            .unfit
            .values()
            .flatten()
            .map(|(node, detail)| format!("{node}: {detail}"))
            .collect();
        (summary, details)
    }
}

/// Nodes, their load, and indexes over them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cluster {
    nodes: Vec<Option<NodeState>>,
    by_name: BTreeMap<String, NodeIdx>,
    /// label key → value → nodes.
    by_label: BTreeMap<String, BTreeMap<String, BTreeSet<NodeIdx>>>,
    /// free GPU count → nodes.
    by_free_gpus: BTreeMap<u32, BTreeSet<NodeIdx>>,
    free_total: Resources,
}

impl Cluster {
    pub fn index_of(&self, name: &str) -> Option<NodeIdx> {
        self.by_name.get(name).copied()
    }

    pub fn node(&self, idx: NodeIdx) -> Option<&NodeState> {
        self.nodes.get(idx).and_then(Option::as_ref)
    }

    /// Live nodes in name order.
    pub fn iter(&self) -> impl Iterator<Item = (NodeIdx, &NodeState)> {
        self.by_name
            .values()
            .filter_map(|&i| self.node(i).map(|n| (i, n)))
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Adds a node (the caller checked that the name and device ids are unique).
    pub fn add(&mut self, spec: Node) -> NodeIdx {
        let idx = self.nodes.len();
        for (k, v) in &spec.labels {
            self.by_label
                .entry(k.clone())
                .or_default()
                .entry(v.clone())
                .or_default()
                .insert(idx);
        }
        self.by_name.insert(spec.name.clone(), idx);
        self.free_total = self.free_total.plus(&spec.allocatable());
        let state = NodeState {
            owners: vec![None; spec.gpus.len()],
            spec,
            used: Resources::ZERO,
            workers: BTreeMap::new(),
        };
        self.by_free_gpus
            .entry(state.free_gpus())
            .or_default()
            .insert(idx);
        self.nodes.push(Some(state));
        idx
    }

    /// Removes an empty node (the caller released its workers first).
    pub fn remove(&mut self, idx: NodeIdx) {
        let Some(state) = self.nodes.get_mut(idx).and_then(Option::take) else {
            return;
        };
        for (k, v) in &state.spec.labels {
            if let Some(values) = self.by_label.get_mut(k) {
                if let Some(set) = values.get_mut(v) {
                    set.remove(&idx);
                    if set.is_empty() {
                        values.remove(v);
                    }
                }
                if values.is_empty() {
                    self.by_label.remove(k);
                }
            }
        }
        self.unindex_gpus(idx, state.free_gpus());
        self.by_name.remove(&state.spec.name);
        let free = state.spec.allocatable().minus(&state.used);
        self.free_total = self.free_total.minus(&free);
    }

    fn unindex_gpus(&mut self, idx: NodeIdx, free: u32) {
        if let Some(set) = self.by_free_gpus.get_mut(&free) {
            set.remove(&idx);
            if set.is_empty() {
                self.by_free_gpus.remove(&free);
            }
        }
    }

    /// Records a placement (all workers of one job).
    pub fn commit(
        &mut self,
        job: &JobId,
        per_worker: &Resources,
        placed: &[(NodeIdx, Vec<usize>)],
    ) {
        self.update(job, per_worker, placed, true);
    }

    /// Undoes [`Cluster::commit`].
    pub fn release(
        &mut self,
        job: &JobId,
        per_worker: &Resources,
        placed: &[(NodeIdx, Vec<usize>)],
    ) {
        self.update(job, per_worker, placed, false);
    }

    fn update(
        &mut self,
        job: &JobId,
        per_worker: &Resources,
        placed: &[(NodeIdx, Vec<usize>)],
        add: bool,
    ) {
        for (idx, devices) in placed {
            let Some(before) = self.node(*idx).map(NodeState::free_gpus) else {
                continue;
            };
            self.unindex_gpus(*idx, before);
            let Some(Some(state)) = self.nodes.get_mut(*idx) else {
                continue;
            };
            for &d in devices {
                if let Some(slot) = state.owners.get_mut(d) {
                    *slot = add.then(|| job.clone());
                }
            }
            let count = state.workers.entry(job.clone()).or_default();
            if add {
                state.used = state.used.plus(per_worker);
                self.free_total = self.free_total.minus(per_worker);
                *count += 1;
            } else {
                state.used = state.used.minus(per_worker);
                self.free_total = self.free_total.plus(per_worker);
                *count = count.saturating_sub(1);
                if *count == 0 {
                    state.workers.remove(job);
                }
            }
            let after = state.free_gpus();
            self.by_free_gpus.entry(after).or_default().insert(*idx);
        }
    }

    /// The filters that do not depend on load.
    fn static_unfit(node: &Node, shape: &Shape<'_>) -> Option<Unfit> {
        let pod = shape.pod;
        for (key, value) in &pod.node_selector {
            if node.labels.get(key) != Some(value) {
                return Some(Unfit::Selector {
                    key: key.clone(),
                    value: value.clone(),
                });
            }
        }
        for taint in &node.taints {
            if taint.effect != TaintEffect::PreferNoSchedule
                && !pod.tolerations.iter().any(|t| t.tolerates(taint))
            {
                return Some(Unfit::Taint(taint.clone()));
            }
        }
        let g = shape.per_worker.gpus;
        if g > 0
            && let Some(model) = &pod.gpu_type
        {
            let have = node.gpus.iter().filter(|d| &d.model == model).count();
            let have = u32::try_from(have).unwrap_or(u32::MAX);
            if have < g {
                return Some(Unfit::GpuModel {
                    model: model.clone(),
                    have,
                    need: g,
                });
            }
        }
        let alloc = node.allocatable();
        for r in Resource::ALL {
            if shape.per_worker.get(r) > alloc.get(r) {
                return Some(Unfit::TooSmall {
                    resource: r,
                    have: alloc.get(r),
                    need: shape.per_worker.get(r),
                });
            }
        }
        None
    }

    fn avail(&self, idx: NodeIdx, state: &NodeState, view: &View<'_>, shape: &Shape<'_>) -> Avail {
        let alloc = state.spec.allocatable();
        let model = shape.pod.gpu_type.as_deref();
        let needs_gpus = shape.per_worker.gpus > 0;
        let model_ok = |d: &GpuDevice| model.is_none_or(|m| d.model == m);
        let real_free = |i: usize| state.owners[i].is_none();
        let usable = |taken: &dyn Fn(usize) -> bool| -> Vec<bool> {
            if !needs_gpus {
                return Vec::new();
            }
            state
                .spec
                .gpus
                .iter()
                .enumerate()
                .map(|(i, d)| model_ok(d) && !taken(i))
                .collect()
        };
        let empty = Use::default();
        match view {
            View::Real => Avail {
                res: alloc.minus(&state.used),
                usable: usable(&|i| !real_free(i)),
            },
            View::Empty => Avail {
                res: alloc,
                usable: usable(&|_| false),
            },
            View::Virtual(o) => {
                let u = o.nodes.get(&idx).unwrap_or(&empty);
                Avail {
                    res: alloc.minus(&u.res),
                    usable: usable(&|i| u.devices.contains(&i)),
                }
            }
            View::Reserved {
                backfill,
                reservation,
            } => {
                let b = backfill.nodes.get(&idx).unwrap_or(&empty);
                let r = reservation.nodes.get(&idx).unwrap_or(&empty);
                let left = alloc.minus(&b.res).minus(&r.res);
                Avail {
                    res: alloc.minus(&state.used).least(&left),
                    usable: usable(&|i| !real_free(i) || r.devices.contains(&i)),
                }
            }
        }
    }

    /// How many workers of `shape` fit in `avail` (ignoring the gang size), and if none,
    /// the first resource short.
    fn fit_count(shape: &Shape<'_>, avail: &Avail) -> Result<u32, (Resource, u64, u64)> {
        let need = shape.per_worker;
        let mut k = u64::from(shape.workers.max(1));
        let mut short = None;
        let gpu_free = avail.usable.iter().filter(|u| **u).count() as u64;
        for r in Resource::ALL {
            let (free, n) = match r {
                Resource::Gpu => (gpu_free, u64::from(need.gpus)),
                _ => (avail.res.get(r), need.get(r)),
            };
            if n == 0 {
                continue;
            }
            let fit = free / n;
            if fit == 0 && short.is_none() {
                short = Some((r, free, n));
            }
            k = k.min(fit);
        }
        match short {
            Some(s) => Err(s),
            None => Ok(u32::try_from(k).unwrap_or(u32::MAX)),
        }
    }

    /// Candidate nodes from the indexes (a superset of the nodes that pass the filters), in
    /// groups: one group per free-GPU count (ascending) when the free-GPU index is used,
    /// otherwise a single group.
    fn candidates(&self, shape: &Shape<'_>, view: &View<'_>) -> Vec<Vec<NodeIdx>> {
        let selector = &shape.pod.node_selector;
        if !selector.is_empty() {
            let mut best: Option<&BTreeSet<NodeIdx>> = None;
            for (k, v) in selector {
                match self.by_label.get(k).and_then(|vals| vals.get(v)) {
                    None => return Vec::new(),
                    Some(set) => {
                        if best.is_none_or(|b| set.len() < b.len()) {
                            best = Some(set);
                        }
                    }
                }
            }
            return best
                .map(|s| vec![s.iter().copied().collect()])
                .unwrap_or_default();
        }
        let g = shape.per_worker.gpus;
        if g > 0 && matches!(view, View::Real | View::Reserved { .. }) {
            return self
                .by_free_gpus
                .range(g..)
                .map(|(_, set)| set.iter().copied().collect())
                .collect();
        }
        vec![self.by_name.values().copied().collect()]
    }

    /// Places every worker of `shape`, or returns how many could be placed.
    pub fn place(
        &self,
        shape: &Shape<'_>,
        view: &View<'_>,
    ) -> Result<Vec<(NodeIdx, Vec<usize>)>, u32> {
        self.place_scanning(shape, view, true)
    }

    fn place_scanning(
        &self,
        shape: &Shape<'_>,
        view: &View<'_>,
        allow_early_stop: bool,
    ) -> Result<Vec<(NodeIdx, Vec<usize>)>, u32> {
        let workers = shape.workers as usize;
        if workers == 0 {
            return Ok(Vec::new());
        }
        if matches!(view, View::Real | View::Reserved { .. }) {
            let total = shape.per_worker.times(shape.workers);
            let max_free_gpus = self.by_free_gpus.keys().next_back().copied().unwrap_or(0);
            if !total.fits_in(&self.free_total) || shape.per_worker.gpus > max_free_gpus {
                return Err(0);
            }
        }
        let g = shape.per_worker.gpus as usize;
        // On the real cluster, for GPUs of any model, the groups come in ascending free-GPU
        // order, which is the score's main key after the PreferNoSchedule count: once the
        // nodes seen without such a taint have room for every worker, no later node can be
        // chosen, so the rest need not be looked at.
        let early_stop =
            allow_early_stop && g > 0 && shape.pod.gpu_type.is_none() && matches!(view, View::Real);
        let mut room_without_penalty = 0u64;
        let mut tentative: BTreeMap<NodeIdx, Avail> = BTreeMap::new();
        let mut order: BTreeSet<(Score<'_>, NodeIdx)> = BTreeSet::new();
        for group in self.candidates(shape, view) {
            if early_stop && room_without_penalty >= workers as u64 {
                break;
            }
            for idx in group {
                let Some(state) = self.node(idx) else {
                    continue;
                };
                if Self::static_unfit(&state.spec, shape).is_some() {
                    continue;
                }
                let avail = self.avail(idx, state, view, shape);
                if let Some(score) = score(&state.spec, shape, &avail) {
                    if early_stop && score.prefer_no_schedule == 0 {
                        room_without_penalty +=
                            u64::from(Self::fit_count(shape, &avail).unwrap_or(0));
                    }
                    order.insert((score, idx));
                    tentative.insert(idx, avail);
                }
            }
        }
        let mut placed = Vec::with_capacity(workers);
        while placed.len() < workers {
            let Some((_, idx)) = order.pop_first() else {
                return Err(u32::try_from(placed.len()).unwrap_or(u32::MAX));
            };
            let (Some(state), Some(avail)) = (self.node(idx), tentative.get_mut(&idx)) else {
                continue;
            };
            let Some(devices) = choose_devices(&avail.usable, g) else {
                continue;
            };
            avail.res = avail.res.minus(&shape.per_worker);
            for &d in &devices {
                avail.usable[d] = false;
            }
            placed.push((idx, devices));
            if let Some(score) = score(&state.spec, shape, avail) {
                order.insert((score, idx));
            }
        }
        Ok(placed)
    }

    /// Why `shape` does or does not fit, node by node.
    pub fn report(&self, shape: &Shape<'_>, view: &View<'_>) -> Report {
        let mut report = Report {
            nodes: self.len(),
            ..Report::default()
        };
        for (idx, state) in self.iter() {
            let unfit = match Self::static_unfit(&state.spec, shape) {
                Some(u) => u,
                None => match Self::fit_count(shape, &self.avail(idx, state, view, shape)) {
                    Ok(k) => {
                        report.fits.push((state.spec.name.clone(), k));
                        continue;
                    }
                    Err((resource, free, need)) => Unfit::Busy {
                        resource,
                        free,
                        need,
                    },
                },
            };
            report
                .unfit
                .entry(unfit.group())
                .or_default()
                .push((state.spec.name.clone(), unfit.detail()));
        }
        report
    }
}

/// Placement preference for one more worker on a node: lower is better.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Score<'a> {
    prefer_no_schedule: usize,
    gpus_left_or_node_gpus: u64,
    longest_run_left: Reverse<u64>,
    cpu_left: u64,
    memory_left: u64,
    name: &'a str,
}

/// The score of one more worker on `node`, or `None` if it does not fit.
fn score<'a>(node: &'a Node, shape: &Shape<'_>, avail: &Avail) -> Option<Score<'a>> {
    let need = shape.per_worker;
    if need.cpu_milli > avail.res.cpu_milli || need.memory_bytes > avail.res.memory_bytes {
        return None;
    }
    let g = need.gpus as usize;
    let (gpu_key, run_key) = if g == 0 {
        (node.gpus.len() as u64, 0)
    } else {
        let chosen = choose_devices(&avail.usable, g)?;
        let mut after = avail.usable.clone();
        for d in chosen {
            after[d] = false;
        }
        let left = after.iter().filter(|u| **u).count() as u64;
        let longest = runs(&after).iter().map(|r| r.1).max().unwrap_or(0) as u64;
        (left, longest)
    };
    let prefer_no_schedule = node
        .taints
        .iter()
        .filter(|t| {
            t.effect == TaintEffect::PreferNoSchedule
                && !shape.pod.tolerations.iter().any(|tol| tol.tolerates(t))
        })
        .count();
    Some(Score {
        prefer_no_schedule,
        gpus_left_or_node_gpus: gpu_key,
        longest_run_left: Reverse(run_key),
        cpu_left: avail.res.cpu_milli - need.cpu_milli,
        memory_left: avail.res.memory_bytes - need.memory_bytes,
        name: &node.name,
    })
}

/// Maximal runs of consecutive usable devices, as (start, length).
fn runs(usable: &[bool]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &u) in usable.iter().enumerate() {
        match (u, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i - s));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, usable.len() - s));
    }
    out
}

/// The devices for one worker of `g` GPUs, chosen to leave the longest contiguous free runs.
pub(crate) fn choose_devices(usable: &[bool], g: usize) -> Option<Vec<usize>> {
    if g == 0 {
        return Some(Vec::new());
    }
    let runs = runs(usable);
    if runs.iter().map(|r| r.1).sum::<usize>() < g {
        return None;
    }
    if let Some(&(start, _)) = runs.iter().filter(|r| r.1 >= g).min_by_key(|r| (r.1, r.0)) {
        return Some((start..start + g).collect());
    }
    let mut by_size = runs;
    by_size.sort_by_key(|r| (r.1, r.0));
    let mut out: Vec<usize> = by_size
        .into_iter()
        .flat_map(|(s, l)| s..s + l)
        .take(g)
        .collect();
    out.sort_unstable();
    Some(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::sched::model::ResourceList;

    proptest! {
        /// Stopping the scan of free-GPU groups early picks exactly what a full scan picks.
        #[test]
        fn early_stop_is_exact(
            nodes in prop::collection::vec((1u32..=8, 0u32..=8, prop::bool::weighted(0.3)), 1..25),
            gpus in 1u32..=4,
            workers in 1u32..=4,
        ) {
            let mut c = Cluster::default();
            let soft = Taint::new("spot", "", TaintEffect::PreferNoSchedule);
            for (i, (total, busy, spot)) in nodes.iter().enumerate() {
                let mut n = Node::new(format!("n{i:02}"), 64_000, 1 << 40).with_gpus(*total, "a100");
                if *spot {
                    n = n.taint(soft.clone());
                }
                let idx = c.add(n);
                let busy: Vec<usize> = (0..(*busy).min(*total) as usize).map(|d| (d * 3) % *total as usize).collect::<BTreeSet<_>>().into_iter().collect();
                c.commit(&JobId::from("busy"), &Resources::new(1000, 1 << 30, busy.len() as u32), &[(idx, busy)]);
            }
            let pod = PodRequest::single(ResourceList::new().gpus(gpus));
            let shape = Shape { per_worker: Resources::new(1000, 1 << 30, gpus), workers, pod: &pod };
            prop_assert_eq!(
                c.place_scanning(&shape, &View::Real, true),
                c.place_scanning(&shape, &View::Real, false)
            );
        }
    }

    fn mask(s: &str) -> Vec<bool> {
        s.chars().map(|c| c == '.').collect()
    }

    #[test]
    fn devices_come_from_the_smallest_run_that_holds_them() {
        // Free: 0-1 (run of 2), 3-6 (run of 4). One GPU goes into the run of 2.
        assert_eq!(choose_devices(&mask("..x....x"), 1), Some(vec![0]));
        // Two GPUs: the run of 2 fits exactly; the run of 4 stays whole.
        assert_eq!(choose_devices(&mask("..x....x"), 2), Some(vec![0, 1]));
        // Three GPUs: only the run of 4 holds them; take its start.
        assert_eq!(choose_devices(&mask("..x....x"), 3), Some(vec![3, 4, 5]));
    }

    #[test]
    fn without_a_long_enough_run_the_smallest_runs_are_used_first() {
        // Runs: {0} (1), {2,3} (2), {5,6,7} (3); five GPUs: 1 + 2 + two of the 3.
        assert_eq!(
            choose_devices(&mask(".x..x..."), 5),
            Some(vec![0, 2, 3, 5, 6])
        );
        assert_eq!(choose_devices(&mask(".x..x..."), 7), None);
        assert_eq!(choose_devices(&mask("xx"), 0), Some(vec![]));
    }
}
