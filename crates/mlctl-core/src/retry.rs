//! Whether and when a failed attempt is retried, with Argo Workflows' `retryStrategy`
//! semantics (`limit`, `retryPolicy`, `backoff.duration`, `backoff.factor`,
//! `backoff.maxDuration`).
//!
//! - `limit` counts retries: `limit: 3` allows 4 attempts.
//! - The policy decides which outcomes are retried: `OnFailure` (the default) retries failures
//!   of the process (non-zero exit, killed, deadline exceeded); `OnError` errors of the system
//!   (the process could not start); `OnTransientError` the transient ones among those; `Always`
//!   both.
//! - An attempt *lost* because mlctl itself died is not the job's failure: it is always run
//!   again, at once, and does not count against the limit (the caller leaves lost attempts
//!   out of `attempts`).
//! - Before retry `n` (1-based) the wait is `duration × factor^(n-1)`; without a factor it is
//!   `duration` every time; without a backoff there is no wait.
//! - `maxDuration` bounds the time from the start of the first attempt: no retry starts, and no
//!   wait is begun that would end, after it.

use std::time::Duration;

use crate::spec::common::{Retries, RetryPolicy};

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every process exited 0.
    Succeeded,
    /// A process failed: non-zero exit, killed by a signal, or the deadline was exceeded.
    Failed,
    /// The attempt could not run (the program could not be started).
    Error,
    /// mlctl died while the attempt ran; its processes were stopped on recovery.
    Lost,
}

/// What to do after an attempt that did not succeed.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Start another attempt after this wait.
    Retry {
        /// The wait.
        after: Duration,
    },
    /// Stop: the job has failed.
    GiveUp {
        /// Why no retry (for messages).
        why: String,
    },
}

/// Decides about the attempt that just ended. `attempts` counts the attempts made so far
/// (including this one, excluding lost ones); `since_first_start` is the time from the first
/// attempt's start to now.
pub fn decide(
    retries: Option<&Retries>,
    attempts: u32,
    outcome: Outcome,
    since_first_start: Duration,
) -> Decision {
    let give_up = |why: String| Decision::GiveUp { why };
    if outcome == Outcome::Lost {
        return Decision::Retry {
            after: Duration::ZERO,
        };
    }
    let Some(retries) = retries else {
        return give_up("no retries are configured".into());
    };
    if outcome == Outcome::Succeeded {
        return give_up("the attempt succeeded".into());
    }
    let retryable = matches!(
        (outcome, retries.policy),
        (
            Outcome::Failed,
            RetryPolicy::OnFailure | RetryPolicy::Always
        ) | (
            Outcome::Error,
            RetryPolicy::OnError | RetryPolicy::OnTransientError | RetryPolicy::Always
        )
    );
    if !retryable {
        return give_up(format!(
            "the retry policy {:?} does not retry this",
            retries.policy
        ));
    }
    let retries_made = attempts.saturating_sub(1);
    if retries_made >= retries.limit {
        return give_up(format!("the retry limit ({}) is reached", retries.limit));
    }
    let Some(backoff) = &retries.backoff else {
        return Decision::Retry {
            after: Duration::ZERO,
        };
    };
    let base = backoff.duration.0;
    let wait = match backoff.factor {
        Some(factor) if factor > 0.0 => {
            let exponent = i32::try_from(retries_made).unwrap_or(i32::MAX);
            let secs = base.as_secs_f64() * factor.powi(exponent);
            if secs.is_finite() && secs < 1e9 {
                Duration::from_secs_f64(secs)
            } else {
                Duration::from_secs(1_000_000_000)
            }
        }
        _ => base,
    };
    if let Some(max) = &backoff.max_duration {
        if since_first_start >= max.0 {
            return give_up(format!("retries stop after maxDuration {max}"));
        }
        if since_first_start + wait > max.0 {
            return give_up(format!(
                "the next backoff would end after maxDuration {max}"
            ));
        }
    }
    Decision::Retry { after: wait }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scalar::Duration as SpecDuration;
    use crate::spec::common::Backoff;

    fn retries(
        limit: u32,
        policy: RetryPolicy,
        backoff: Option<(u64, Option<f64>, Option<u64>)>,
    ) -> Retries {
        Retries {
            limit,
            policy,
            backoff: backoff.map(|(d, f, m)| Backoff {
                duration: SpecDuration(Duration::from_secs(d)),
                factor: f,
                max_duration: m.map(|m| SpecDuration(Duration::from_secs(m))),
            }),
        }
    }

    fn wait(d: &Decision) -> Option<u64> {
        match d {
            Decision::Retry { after } => Some(after.as_secs()),
            Decision::GiveUp { .. } => None,
        }
    }

    #[test]
    fn limit_counts_retries_not_attempts() {
        let r = retries(2, RetryPolicy::OnFailure, None);
        assert_eq!(
            wait(&decide(Some(&r), 1, Outcome::Failed, Duration::ZERO)),
            Some(0)
        );
        assert_eq!(
            wait(&decide(Some(&r), 2, Outcome::Failed, Duration::ZERO)),
            Some(0)
        );
        assert_eq!(
            wait(&decide(Some(&r), 3, Outcome::Failed, Duration::ZERO)),
            None
        );
        assert_eq!(
            wait(&decide(None, 1, Outcome::Failed, Duration::ZERO)),
            None
        );
    }

    #[test]
    fn policies_follow_argo() {
        let d = |policy, outcome| {
            wait(&decide(
                Some(&retries(1, policy, None)),
                1,
                outcome,
                Duration::ZERO,
            ))
        };
        assert_eq!(d(RetryPolicy::OnFailure, Outcome::Failed), Some(0));
        assert_eq!(d(RetryPolicy::OnFailure, Outcome::Error), None);
        assert_eq!(d(RetryPolicy::OnError, Outcome::Failed), None);
        assert_eq!(d(RetryPolicy::OnError, Outcome::Error), Some(0));
        assert_eq!(d(RetryPolicy::Always, Outcome::Failed), Some(0));
        assert_eq!(d(RetryPolicy::Always, Outcome::Error), Some(0));
        // lost attempts are always run again, even without retries
        assert_eq!(d(RetryPolicy::OnFailure, Outcome::Lost), Some(0));
        assert_eq!(
            wait(&decide(None, 5, Outcome::Lost, Duration::ZERO)),
            Some(0)
        );
    }

    #[test]
    fn backoff_is_duration_times_factor_to_the_retry_number() {
        // Argo: timeToWait = duration * factor^(retries so far); the first retry waits `duration`
        let r = retries(5, RetryPolicy::OnFailure, Some((10, Some(2.0), None)));
        let waits: Vec<_> = (1..=5)
            .map(|n| wait(&decide(Some(&r), n, Outcome::Failed, Duration::ZERO)))
            .collect();
        assert_eq!(waits, [Some(10), Some(20), Some(40), Some(80), Some(160)]);
        // without a factor the wait is constant
        let r = retries(3, RetryPolicy::OnFailure, Some((5, None, None)));
        assert_eq!(
            wait(&decide(Some(&r), 3, Outcome::Failed, Duration::ZERO)),
            Some(5)
        );
    }

    #[test]
    fn max_duration_stops_retries_and_futile_waits() {
        let r = retries(10, RetryPolicy::OnFailure, Some((10, Some(2.0), Some(60))));
        assert_eq!(
            wait(&decide(
                Some(&r),
                1,
                Outcome::Failed,
                Duration::from_secs(5)
            )),
            Some(10)
        );
        // 40s wait from t=30s would end at 70s > 60s: give up now
        assert_eq!(
            wait(&decide(
                Some(&r),
                3,
                Outcome::Failed,
                Duration::from_secs(30)
            )),
            None
        );
        assert_eq!(
            wait(&decide(
                Some(&r),
                1,
                Outcome::Failed,
                Duration::from_secs(61)
            )),
            None
        );
    }
}
