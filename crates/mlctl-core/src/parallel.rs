//! Independent tasks on all available cores, with their results in task order: what
//! `mlctl check` and the reading of many files do with documents and files.

use std::sync::atomic::{AtomicUsize, Ordering};

/// `task(0)`, ..., `task(n - 1)`, on all available cores when there are several tasks
/// (each thread takes the next task as it finishes one); results in task order.
pub fn in_parallel<T: Send>(n: usize, task: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(n);
    if workers <= 1 {
        return (0..n).map(task).collect();
    }
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                return done;
            }
            done.push((i, task(i)));
        }
    };
    let mut done: Vec<(usize, T)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (1..workers).map(|_| scope.spawn(work)).collect();
        let mut all = work();
        for h in handles {
            match h.join() {
                Ok(part) => all.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        all
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, t)| t).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_results_come_back_in_task_order() {
        // uneven tasks, so that the threads finish them out of order
        let cost = |i: usize| (0..(i % 7) * 20_000).fold(i, |a, b| a.wrapping_add(b) % 1_000_003);
        let expected: Vec<(usize, usize)> = (0..500).map(|i| (i, cost(i))).collect();
        assert_eq!(in_parallel(500, |i| (i, cost(i))), expected);
        assert_eq!(in_parallel(1, |i| i + 1), vec![1]);
        assert!(in_parallel(0, |i| i).is_empty());
    }
}
