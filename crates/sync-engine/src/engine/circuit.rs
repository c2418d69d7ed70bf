//! Circuit breakers per downstream target, and what the engine learns about a job's calls
//! while it runs.
//!
//! A target is the service a rule calls through [`RuleContext::perform`] or
//! [`RuleContext::perform_call`] (`jira`, or an HTTP action's host). After
//! [`CircuitConfig::failures`] consecutive transient failures of calls to it, its circuit
//! opens: for [`CircuitConfig::cooldown`], a job that calls it is put back to pending
//! without counting an attempt, instead of burning its attempts against a service that is
//! down. Then one call is let through as a probe (the circuit is half open): its success
//! closes the circuit, its failure opens it for another cool-down.
//!
//! Breakers live in the process: on PostgreSQL each instance keeps its own (an instance
//! trips its breaker from its own calls), see `docs/operations.md`.
//!
//! [`RuleContext::perform`]: super::RuleContext::perform
//! [`RuleContext::perform_call`]: super::RuleContext::perform_call

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::store::{CallRecord, Job, JobId};

/// Circuit breaker settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CircuitConfig {
    /// Consecutive transient failures of calls to one target that open its circuit
    /// (`0`: no circuit breaker).
    pub failures: u32,
    /// How long an open circuit pauses its target's jobs before a probe is let through.
    pub cooldown: Duration,
}

impl Default for CircuitConfig {
    /// Five failures, one minute: the server's defaults (`[engine] circuit_failures`,
    /// `circuit_cooldown_secs`).
    fn default() -> Self {
        Self {
            failures: 5,
            cooldown: Duration::from_secs(60),
        }
    }
}

/// The state of one target's circuit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    /// Calls go through.
    Closed,
    /// Calls are refused until the cool-down ends; jobs calling the target are paused.
    Open,
    /// The cool-down is over and one probe call is under way; other jobs still wait.
    HalfOpen,
}

impl CircuitState {
    /// The spelling used in the admin API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }
}

/// A target's circuit, as reported by [`Engine::circuits`](super::Engine::circuits).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CircuitStatus {
    /// The target (`jira`, an HTTP action's host).
    pub target: String,
    /// Its state.
    pub state: CircuitState,
    /// Transient failures in a row of calls to it (reset by a success).
    pub consecutive_failures: u32,
    /// When the circuit last opened (the current episode's start, while not closed).
    #[serde(with = "time::serde::rfc3339::option")]
    pub opened_at: Option<OffsetDateTime>,
    /// While open: when a probe will be let through.
    #[serde(with = "time::serde::rfc3339::option")]
    pub probe_at: Option<OffsetDateTime>,
    /// How many times the circuit opened (episodes) since the process started.
    pub opened_total: u64,
    /// Jobs paused by this circuit since the process started.
    pub paused_total: u64,
    /// The error of the last failed call.
    pub last_error: Option<String>,
}

/// What an admission check decided.
pub(crate) enum Admission {
    /// Call; report the outcome through the permit.
    Go(Permit),
    /// The circuit is open: do not call; the job waits until this time.
    Wait(OffsetDateTime),
}

/// Leave to call a target. Dropped without [`Permit::finish`] (the call was cancelled, e.g.
/// the rule ran out of time), it counts as a failure: a target that hangs must trip its
/// circuit like one that fails.
pub(crate) struct Permit {
    circuits: Option<Arc<Circuits>>,
    target: String,
    probe: bool,
    finished: bool,
}

impl Permit {
    /// A permit of no circuit (the breaker is off).
    pub(crate) fn unguarded() -> Self {
        Self {
            circuits: None,
            target: String::new(),
            probe: false,
            finished: true,
        }
    }

    /// Reports the call's outcome: `Err(message)` for a transient failure.
    pub(crate) fn finish(mut self, outcome: Result<(), &str>) {
        self.finished = true;
        if let Some(circuits) = &self.circuits {
            circuits.record(&self.target, self.probe, outcome);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.finished
            && let Some(circuits) = &self.circuits
        {
            circuits.record(&self.target, self.probe, Err("the call was cancelled"));
        }
    }
}

#[derive(Debug)]
enum Phase {
    Closed,
    Open { until: Instant },
    Probing,
}

#[derive(Debug)]
struct Circuit {
    phase: Phase,
    consecutive_failures: u32,
    opened_at: Option<OffsetDateTime>,
    opened_wall_until: Option<OffsetDateTime>,
    opened_total: u64,
    paused_total: u64,
    last_error: Option<String>,
}

impl Circuit {
    fn new() -> Self {
        Self {
            phase: Phase::Closed,
            consecutive_failures: 0,
            opened_at: None,
            opened_wall_until: None,
            opened_total: 0,
            paused_total: 0,
            last_error: None,
        }
    }

    fn state(&self) -> CircuitState {
        match self.phase {
            Phase::Closed => CircuitState::Closed,
            Phase::Open { .. } => CircuitState::Open,
            Phase::Probing => CircuitState::HalfOpen,
        }
    }
}

/// The circuit breakers of one engine, by target.
#[derive(Debug)]
pub struct Circuits {
    config: CircuitConfig,
    by_target: Mutex<HashMap<String, Circuit>>,
}

impl Circuits {
    /// Breakers with these settings.
    pub fn new(config: CircuitConfig) -> Self {
        Self {
            config,
            by_target: Mutex::new(HashMap::new()),
        }
    }

    /// The settings.
    pub fn config(&self) -> CircuitConfig {
        self.config
    }

    /// Every target called so far, by name.
    pub fn snapshot(&self) -> Vec<CircuitStatus> {
        let Ok(by_target) = self.by_target.lock() else {
            return Vec::new();
        };
        let mut out: Vec<CircuitStatus> = by_target
            .iter()
            .map(|(target, c)| CircuitStatus {
                target: target.clone(),
                state: c.state(),
                consecutive_failures: c.consecutive_failures,
                opened_at: c.opened_at,
                probe_at: matches!(c.phase, Phase::Open { .. })
                    .then_some(c.opened_wall_until)
                    .flatten(),
                opened_total: c.opened_total,
                paused_total: c.paused_total,
                last_error: c.last_error.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.target.cmp(&b.target));
        out
    }

    /// Whether a call to `target` may go now.
    pub(crate) fn admit(self: &Arc<Self>, target: &str) -> Admission {
        let Ok(mut by_target) = self.by_target.lock() else {
            return Admission::Go(Permit::unguarded());
        };
        let circuit = by_target.entry(target.to_owned()).or_insert_with(|| {
            gauge(target, CircuitState::Closed);
            Circuit::new()
        });
        let permit = |probe| {
            Admission::Go(Permit {
                circuits: Some(self.clone()),
                target: target.to_owned(),
                probe,
                finished: false,
            })
        };
        match circuit.phase {
            Phase::Closed => permit(false),
            Phase::Open { until } if Instant::now() >= until => {
                circuit.phase = Phase::Probing;
                gauge(target, CircuitState::HalfOpen);
                tracing::info!(target, "circuit half open: letting one probe call through");
                permit(true)
            }
            Phase::Open { .. } => {
                circuit.paused_total += 1;
                let until = circuit
                    .opened_wall_until
                    .unwrap_or_else(|| OffsetDateTime::now_utc() + self.config.cooldown);
                Admission::Wait(until)
            }
            Phase::Probing => {
                // The probe decides soon; look again then rather than after a whole cool-down.
                circuit.paused_total += 1;
                Admission::Wait(OffsetDateTime::now_utc() + self.probe_recheck())
            }
        }
    }

    fn probe_recheck(&self) -> Duration {
        self.config.cooldown.min(Duration::from_secs(2))
    }

    fn record(&self, target: &str, probe: bool, outcome: Result<(), &str>) {
        let Ok(mut by_target) = self.by_target.lock() else {
            return;
        };
        let Some(circuit) = by_target.get_mut(target) else {
            return;
        };
        match (outcome, &circuit.phase) {
            (Ok(()), Phase::Probing) if probe => {
                circuit.phase = Phase::Closed;
                circuit.consecutive_failures = 0;
                circuit.opened_wall_until = None;
                gauge(target, CircuitState::Closed);
                tracing::info!(target, "circuit closed: the probe call succeeded");
            }
            (Ok(()), Phase::Closed) => circuit.consecutive_failures = 0,
            // A call admitted before the circuit opened, finishing late: the probe decides.
            (Ok(()), _) => {}
            (Err(error), Phase::Probing) if probe => {
                circuit.last_error = Some(error.to_owned());
                self.open(target, circuit, "the probe call failed");
            }
            (Err(error), Phase::Closed) => {
                circuit.consecutive_failures += 1;
                circuit.last_error = Some(error.to_owned());
                if self.config.failures > 0 && circuit.consecutive_failures >= self.config.failures
                {
                    circuit.opened_total += 1;
                    circuit.opened_at = Some(OffsetDateTime::now_utc());
                    metrics::counter!("hookbridge_circuit_opened_total", "target" => target.to_owned())
                        .increment(1);
                    self.open(target, circuit, "consecutive transient failures");
                }
            }
            (Err(error), _) => circuit.last_error = Some(error.to_owned()),
        }
    }

    fn open(&self, target: &str, circuit: &mut Circuit, why: &'static str) {
        circuit.phase = Phase::Open {
            until: Instant::now() + self.config.cooldown,
        };
        circuit.opened_wall_until = Some(OffsetDateTime::now_utc() + self.config.cooldown);
        gauge(target, CircuitState::Open);
        tracing::warn!(
            target,
            why,
            failures = circuit.consecutive_failures,
            cooldown = ?self.config.cooldown,
            error = circuit.last_error.as_deref().unwrap_or(""),
            "circuit open: jobs calling this target are paused"
        );
    }
}

/// `hookbridge_circuit_open{target}`: 1 while the circuit is open or half open.
fn gauge(target: &str, state: CircuitState) {
    let value = if state == CircuitState::Closed {
        0.0
    } else {
        1.0
    };
    metrics::gauge!("hookbridge_circuit_open", "target" => target.to_owned()).set(value);
}

/// A job paused by an open circuit.
#[derive(Clone, Debug)]
pub(crate) struct Pause {
    /// The target whose circuit is open.
    pub(crate) target: String,
    /// When the job may run again.
    pub(crate) until: OffsetDateTime,
}

/// What a running job's context reports to its worker besides its action lines: its
/// structured calls, and whether an open circuit stopped it.
#[derive(Debug, Default)]
pub(crate) struct JobNotes {
    pub(crate) calls: Vec<CallRecord>,
    pub(crate) paused: Option<Pause>,
}

/// What the engine tracks of its calls to downstream services: the circuit breakers (when
/// on), and the notes of each running job, handed from its [`RuleContext`] to its worker.
///
/// Rule contexts reach it through the engine's [`Clients`](super::Clients), under a type
/// only this crate can name.
///
/// [`RuleContext`]: super::RuleContext
#[derive(Debug, Default)]
pub(crate) struct Downstream {
    pub(crate) circuits: Option<Arc<Circuits>>,
    notes: Mutex<HashMap<JobId, JobNotes>>,
}

impl Downstream {
    pub(crate) fn new(config: Option<CircuitConfig>) -> Self {
        Self {
            circuits: config
                .filter(|c| c.failures > 0)
                .map(|c| Arc::new(Circuits::new(c))),
            notes: Mutex::new(HashMap::new()),
        }
    }

    /// Adds a finished context's notes to its job's.
    pub(crate) fn deposit(&self, job: JobId, notes: JobNotes) {
        if let Ok(mut all) = self.notes.lock() {
            let entry = all.entry(job).or_default();
            entry.calls.extend(notes.calls);
            if notes.paused.is_some() {
                entry.paused = notes.paused;
            }
        }
    }

    /// Takes a job's notes (empty if its rule made no call).
    pub(crate) fn take(&self, job: JobId) -> JobNotes {
        self.notes
            .lock()
            .ok()
            .and_then(|mut all| all.remove(&job))
            .unwrap_or_default()
    }
}

/// The handle under which [`Downstream`] travels in [`Clients`](super::Clients).
#[derive(Clone, Debug)]
pub(crate) struct DownstreamHandle(pub(crate) Arc<Downstream>);

/// Puts a job stopped by an open circuit back to pending until the circuit lets calls
/// through again, giving back the attempt it was claimed for.
pub(crate) async fn pause_job(engine: &super::Inner, job: &Job, pause: &Pause) {
    let reason = format!(
        "paused: the circuit of {} is open (not counted as an attempt)",
        pause.target
    );
    metrics::counter!(
        "hookbridge_jobs_paused_total",
        "rule" => job.rule.clone(),
        "target" => pause.target.clone()
    )
    .increment(1);
    match engine
        .store
        .pause_job(
            job.id,
            &engine.worker_id,
            job.attempts,
            pause.until,
            &reason,
            OffsetDateTime::now_utc(),
        )
        .await
    {
        Ok(true) => tracing::info!(
            job = %job.id,
            rule = %job.rule,
            target = %pause.target,
            until = %pause.until,
            "job paused: its target's circuit is open"
        ),
        Ok(false) => {
            tracing::warn!(job = %job.id, "lease lost before the job was paused")
        }
        Err(error) => tracing::error!(
            job = %job.id,
            %error,
            "cannot pause the job; it will run again after its lease"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn circuits(failures: u32, cooldown_ms: u64) -> Arc<Circuits> {
        Arc::new(Circuits::new(CircuitConfig {
            failures,
            cooldown: Duration::from_millis(cooldown_ms),
        }))
    }

    fn go(c: &Arc<Circuits>, target: &str) -> Permit {
        match c.admit(target) {
            Admission::Go(permit) => permit,
            Admission::Wait(until) => panic!("{target} refused until {until}"),
        }
    }

    fn state(c: &Circuits, target: &str) -> CircuitState {
        c.snapshot()
            .into_iter()
            .find(|s| s.target == target)
            .map(|s| s.state)
            .unwrap_or(CircuitState::Closed)
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures_probes_then_closes() {
        let c = circuits(3, 1000);
        // A success in between resets the count.
        go(&c, "jira").finish(Err("503"));
        go(&c, "jira").finish(Err("503"));
        go(&c, "jira").finish(Ok(()));
        go(&c, "jira").finish(Err("503"));
        go(&c, "jira").finish(Err("503"));
        assert_eq!(state(&c, "jira"), CircuitState::Closed);
        go(&c, "jira").finish(Err("503"));
        assert_eq!(state(&c, "jira"), CircuitState::Open);
        assert!(matches!(c.admit("jira"), Admission::Wait(_)));
        // Other targets are not affected.
        go(&c, "slack").finish(Ok(()));

        tokio::time::advance(Duration::from_millis(1001)).await;
        let probe = go(&c, "jira");
        assert_eq!(state(&c, "jira"), CircuitState::HalfOpen);
        // While the probe runs, other jobs still wait.
        assert!(matches!(c.admit("jira"), Admission::Wait(_)));
        probe.finish(Ok(()));
        assert_eq!(state(&c, "jira"), CircuitState::Closed);
        go(&c, "jira").finish(Ok(()));
        let status = &c.snapshot()[0];
        assert_eq!(status.target, "jira");
        assert_eq!(status.opened_total, 1);
        assert_eq!(status.paused_total, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_or_cancelled_probe_reopens_in_the_same_episode() {
        let c = circuits(1, 500);
        go(&c, "h").finish(Err("boom"));
        tokio::time::advance(Duration::from_millis(501)).await;
        go(&c, "h").finish(Err("still down"));
        assert_eq!(state(&c, "h"), CircuitState::Open);
        tokio::time::advance(Duration::from_millis(501)).await;
        // Dropped unfinished: the rule timed out during the probe.
        drop(go(&c, "h"));
        assert_eq!(state(&c, "h"), CircuitState::Open);
        let status = &c.snapshot()[0];
        assert_eq!(status.opened_total, 1, "{status:?}");
        assert_eq!(status.last_error.as_deref(), Some("the call was cancelled"));
    }

    #[test]
    fn zero_failures_means_no_breaker() {
        assert!(
            Downstream::new(Some(CircuitConfig {
                failures: 0,
                cooldown: Duration::from_secs(1)
            }))
            .circuits
            .is_none()
        );
        assert!(Downstream::new(None).circuits.is_none());
        assert!(
            Downstream::new(Some(CircuitConfig::default()))
                .circuits
                .is_some()
        );
    }
}
