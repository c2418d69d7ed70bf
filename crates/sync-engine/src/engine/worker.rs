//! Workers: claim runnable jobs with a lease, apply their rule, and record the attempt:
//! done, skipped, retried later with backoff, or dead-lettered.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use hookbridge_core::{RuleError, RuleOutcome};
use time::OffsetDateTime;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::{Inner, Source, dispatch, idle};
use crate::store::{Attempt, ClaimedJob, JobNext};

pub(crate) async fn run(engine: Arc<Inner>, mut stopped: watch::Receiver<bool>) {
    let notify = engine.store.notifier();
    let permits = Arc::new(Semaphore::new(engine.config.concurrency));
    let mut running = JoinSet::new();
    loop {
        while running.try_join_next().is_some() {}
        let mut notified = pin!(notify.notified());
        notified.as_mut().enable();
        let free = permits.available_permits();
        let claimed = if free == 0 {
            Vec::new()
        } else {
            let limit = u32::try_from(free).unwrap_or(u32::MAX);
            match engine
                .store
                .claim_jobs(
                    &engine.worker_id,
                    limit,
                    engine.config.lease,
                    OffsetDateTime::now_utc(),
                )
                .await
            {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::error!(%error, "cannot claim jobs");
                    Vec::new()
                }
            }
        };
        let found = claimed.len();
        for job in claimed {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let engine = engine.clone();
            running.spawn(async move {
                run_job(&engine, job).await;
                drop(permit);
            });
        }
        if *stopped.borrow() {
            break;
        }
        if found == 0 || permits.available_permits() == 0 {
            // With every permit taken, wake when one frees up instead of polling.
            let wait = async {
                if permits.available_permits() == 0 {
                    running.join_next().await;
                } else {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                stop = idle(notified, engine.config.poll_interval, &mut stopped) => if stop { break },
                () = wait => {}
            }
        }
    }
    // Let running jobs finish: an interrupted job would only be retried after its lease.
    while running.join_next().await.is_some() {}
}

async fn run_job(engine: &Inner, claimed: ClaimedJob) {
    let job = &claimed.job;
    let started_at = OffsetDateTime::now_utc();
    let attempt_number = job.attempts;
    let applied = apply(engine, &claimed).await;
    // The rule's calls, and whether an open circuit stopped it: the job then waits for the
    // cool-down, without counting this attempt.
    let notes = engine.downstream.take(job.id);
    if let (Err((error, _)), Some(pause)) = (&applied, &notes.paused)
        && error.is_transient()
    {
        super::circuit::pause_job(engine, job, pause).await;
        return;
    }
    let (outcome, error, actions, next) = match applied {
        Ok((RuleOutcome::Applied { actions }, mut recorded)) => {
            recorded.extend(actions);
            ("applied", None, recorded, JobNext::Done)
        }
        Ok((RuleOutcome::Skipped { reason }, recorded)) => {
            ("skipped", Some(reason), recorded, JobNext::Skipped)
        }
        Err((error, recorded)) => {
            let message = error.to_string();
            if error.is_transient() && attempt_number < job.max_attempts {
                let delay = engine
                    .config
                    .backoff
                    .delay(attempt_number, retry_after(&error));
                let at = OffsetDateTime::now_utc() + delay;
                tracing::warn!(job = %job.id, rule = %job.rule, attempt = attempt_number, ?delay, error = %message, "job failed; will retry");
                ("retry", Some(message), recorded, JobNext::RetryAt(at))
            } else {
                tracing::error!(job = %job.id, rule = %job.rule, attempt = attempt_number, error = %message, "job failed; dead-lettered");
                ("failed", Some(message), recorded, JobNext::Dead)
            }
        }
    };
    metrics::counter!("hookbridge_job_attempts_total", "rule" => job.rule.clone(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("hookbridge_job_duration_seconds", "rule" => job.rule.clone())
        .record((OffsetDateTime::now_utc() - started_at).as_seconds_f64());
    let attempt = Attempt {
        number: attempt_number,
        started_at,
        finished_at: OffsetDateTime::now_utc(),
        outcome: outcome.to_owned(),
        error,
        actions,
        calls: notes.calls,
    };
    match engine
        .store
        .finish_job(
            job.id,
            &engine.worker_id,
            &attempt,
            next,
            OffsetDateTime::now_utc(),
        )
        .await
    {
        Ok(true) => tracing::debug!(job = %job.id, rule = %job.rule, outcome, "job finished"),
        Ok(false) => {
            tracing::warn!(job = %job.id, "lease lost before the job finished; its result was dropped")
        }
        Err(error) => {
            tracing::error!(job = %job.id, %error, "cannot record the job's result; it will run again after its lease")
        }
    }
}

type Applied = (RuleOutcome, Vec<String>);

async fn apply(engine: &Inner, claimed: &ClaimedJob) -> Result<Applied, (RuleError, Vec<String>)> {
    let job = &claimed.job;
    let event = dispatch::parse(engine, &claimed.delivery).map_err(|reason| {
        (
            RuleError::Permanent {
                message: format!("delivery cannot be parsed: {reason}"),
            },
            Vec::new(),
        )
    })?;
    let Some(rule) = engine.rule(&job.rule) else {
        return Err((
            RuleError::Permanent {
                message: format!("rule {:?} is no longer configured", job.rule),
            },
            Vec::new(),
        ));
    };
    if engine.is_self_actor(&event) {
        return Ok((
            RuleOutcome::Skipped {
                reason: "caused by hookbridge's own account".into(),
            },
            Vec::new(),
        ));
    }
    // Stale events: the provider's own timestamp says this state is older than one this rule
    // already applied to the same object (deliveries can arrive out of order).
    let watermark = match (event.subject(), event.occurred_at()) {
        (Some(subject), Some(at)) => Some((format!("applied-at:{subject}"), at)),
        _ => None,
    };
    if let Some((key, at)) = &watermark
        && let Some(applied) = engine
            .store
            .state(&job.rule, key)
            .await
            .map_err(|e| (e.into(), Vec::new()))?
        && applied
            .as_i64()
            .is_some_and(|applied| applied > unix_nanos(*at))
    {
        return Ok((
            RuleOutcome::Skipped {
                reason: "stale: a newer state of this object was already applied".into(),
            },
            Vec::new(),
        ));
    }
    let ctx = engine.context(&job.rule, Some(job.id), false);
    // A rule must finish well inside its lease, or a second worker could start it too.
    let budget = engine.config.lease / 2;
    let result = match tokio::time::timeout(budget, rule.apply(&ctx, &event)).await {
        Ok(result) => result,
        Err(_) => Err(RuleError::Transient {
            message: format!("rule did not finish within {budget:?}"),
            retry_after: None,
        }),
    };
    let recorded = ctx.take_actions();
    match result {
        Ok(outcome) => {
            if let (Some((key, at)), RuleOutcome::Applied { .. }) = (&watermark, &outcome) {
                // Jobs of one subject run one at a time, so this read-then-write cannot race.
                let value = serde_json::Value::from(unix_nanos(*at));
                if let Err(error) = engine.store.put_state(&job.rule, key, &value).await {
                    tracing::warn!(job = %job.id, %error, "cannot record the applied state's time");
                }
            }
            Ok((outcome, recorded))
        }
        Err(error) => Err((error, recorded)),
    }
}

fn unix_nanos(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

fn retry_after(error: &RuleError) -> Option<Duration> {
    match error {
        RuleError::Transient { retry_after, .. } => *retry_after,
        RuleError::Permanent { .. } => None,
        RuleError::Partial(errors) => errors.iter().filter_map(retry_after).max(),
    }
}

pub(crate) async fn run_source(
    engine: Arc<Inner>,
    source: Arc<dyn Source>,
    mut stopped: watch::Receiver<bool>,
) {
    let lease_name = format!("source:{}", source.name());
    let interval = source.interval();
    // The lease outlives one interval so a live poller keeps it, and lapses soon after a
    // dead one stops renewing.
    let ttl = interval.saturating_mul(3).max(Duration::from_secs(5));
    loop {
        match engine
            .store
            .try_lease(
                &lease_name,
                &engine.worker_id,
                ttl,
                OffsetDateTime::now_utc(),
            )
            .await
        {
            Ok(true) => poll_once(&engine, source.as_ref()).await,
            Ok(false) => {
                tracing::trace!(source = source.name(), "another instance runs this poller")
            }
            Err(error) => {
                tracing::error!(source = source.name(), %error, "cannot take the poller lease")
            }
        }
        let stop = tokio::select! {
            () = tokio::time::sleep(interval) => false,
            _ = stopped.wait_for(|stop| *stop) => true,
        };
        if stop {
            let _ = engine
                .store
                .release_lease(&lease_name, &engine.worker_id)
                .await;
            return;
        }
    }
}

async fn poll_once(engine: &Inner, source: &dyn Source) {
    let cursor = match engine.store.cursor(source.name()).await {
        Ok(cursor) => cursor,
        Err(error) => {
            tracing::error!(source = source.name(), %error, "cannot read the poller cursor");
            return;
        }
    };
    match source.poll(cursor).await {
        Ok(poll) => {
            let found = poll.deliveries.len();
            match engine
                .store
                .commit_poll(source.name(), &poll.cursor, poll.deliveries)
                .await
            {
                Ok(outcomes) => {
                    let new = outcomes
                        .iter()
                        .filter(|o| matches!(o, crate::store::InsertOutcome::Inserted { .. }))
                        .count();
                    tracing::debug!(source = source.name(), found, new, "polled");
                }
                Err(error) => {
                    tracing::error!(source = source.name(), %error, "cannot store the poll")
                }
            }
        }
        Err(error) => tracing::warn!(%error, "poll failed; trying again next interval"),
    }
}
