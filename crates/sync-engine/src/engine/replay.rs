//! Bulk replay by filter (time range, endpoint, rule, status), and the replay dry run: what
//! the current rules would do with a stored delivery, next to what was recorded when it
//! first ran, as a diff. The way to test new rule code against last week's traffic.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{DryRunError, Engine, RuleDryRun};
use crate::store::{
    Attempt, DeliverySearch, DeliveryStatus, Job, JobFilter, JobId, JobSearch, JobState, Store,
    StoreError,
};

/// Which deliveries a bulk replay (or its dry run) takes: every field that is set must hold.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ReplayFilter {
    /// Deliveries received at or after this time.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub since: Option<OffsetDateTime>,
    /// Deliveries received before this time.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
    /// Deliveries of this endpoint.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Jobs of this rule (the dry run shows only this rule).
    #[serde(default)]
    pub rule: Option<String>,
    /// Jobs (or deliveries) in this status; required to replay, optional for a dry run
    /// (then every delivery in the range).
    #[serde(default)]
    pub status: Option<ReplayStatus>,
    /// At most this many jobs (or, in a dry run, deliveries); 0: the default, 1,000.
    #[serde(default)]
    pub limit: u32,
}

impl ReplayFilter {
    fn limit(&self) -> u32 {
        if self.limit == 0 { 1000 } else { self.limit }
    }

    fn jobs(&self, states: Vec<JobState>, limit: u32) -> JobSearch {
        JobSearch {
            since: self.since,
            until: self.until,
            endpoint: self.endpoint.as_deref().map(Into::into),
            rule: self.rule.clone(),
            states,
            after_id: None,
            limit,
        }
    }
}

/// What a bulk replay takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayStatus {
    /// Dead-lettered jobs: run again with fresh attempts.
    Dead,
    /// What failed: dead-lettered jobs, and deliveries that could not be parsed (dispatched
    /// again through the current parsers and rules; not with a rule filter).
    Failed,
    /// Jobs that were applied: their rule runs again on their delivery (rules are
    /// desired-state, so this repairs what an earlier rule version did wrong).
    Done,
    /// Jobs whose rule decided there was nothing to do.
    Skipped,
}

impl std::str::FromStr for ReplayStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Ok(match text {
            "dead" => ReplayStatus::Dead,
            "failed" => ReplayStatus::Failed,
            "done" => ReplayStatus::Done,
            "skipped" => ReplayStatus::Skipped,
            other => {
                return Err(format!(
                    "unknown status {other:?}: dead, failed, done or skipped"
                ));
            }
        })
    }
}

impl ReplayStatus {
    fn states(self) -> Vec<JobState> {
        match self {
            ReplayStatus::Dead | ReplayStatus::Failed => vec![JobState::Dead],
            ReplayStatus::Done => vec![JobState::Done],
            ReplayStatus::Skipped => vec![JobState::Skipped],
        }
    }
}

/// What a bulk replay did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReplayReport {
    /// Jobs set to run again.
    pub jobs: Vec<JobId>,
    /// Deliveries set to be dispatched again (unparseable ones, with `failed`).
    pub deliveries: Vec<i64>,
    /// Jobs that changed state meanwhile (another replay, a worker) and were left alone.
    pub skipped: Vec<JobId>,
    /// Whether the limit was reached: more may match; run again.
    pub truncated: bool,
}

/// Replays what `filter` selects (its `status` is required): jobs run again, unparseable
/// deliveries are dispatched again.
pub async fn replay(
    store: &dyn Store,
    filter: &ReplayFilter,
    now: OffsetDateTime,
) -> Result<ReplayReport, ReplayError> {
    let status = filter.status.ok_or(ReplayError::NoStatus)?;
    let limit = filter.limit();
    let mut jobs = store
        .search_jobs(&filter.jobs(status.states(), limit.saturating_add(1)))
        .await?;
    let mut report = ReplayReport {
        truncated: jobs.len() > limit as usize,
        ..ReplayReport::default()
    };
    jobs.truncate(limit as usize);
    for job in jobs {
        let again = match status {
            ReplayStatus::Done => store.rerun_job(job.id, now).await?,
            _ => store.replay_job(job.id, now).await?,
        };
        if again {
            report.jobs.push(job.id);
        } else {
            report.skipped.push(job.id);
        }
    }
    if status == ReplayStatus::Failed && filter.rule.is_none() {
        for delivery in unparseable(store, filter, limit).await? {
            if store.replay_delivery(delivery).await? {
                report.deliveries.push(delivery);
            }
        }
    }
    tracing::info!(
        jobs = report.jobs.len(),
        deliveries = report.deliveries.len(),
        truncated = report.truncated,
        ?status,
        "bulk replay"
    );
    Ok(report)
}

/// Why a bulk replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A replay (not a dry run) needs a status.
    #[error("give a status to replay: dead, failed, done or skipped")]
    NoStatus,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Unparseable deliveries in the filter's range, oldest first.
async fn unparseable(
    store: &dyn Store,
    filter: &ReplayFilter,
    limit: u32,
) -> Result<Vec<i64>, StoreError> {
    let search = DeliverySearch {
        endpoint: filter.endpoint.as_deref().map(Into::into),
        status: Some(DeliveryStatus::Unparseable),
        since: filter.since,
        until: filter.until,
        limit,
        ..DeliverySearch::default()
    };
    let mut seqs: Vec<i64> = store
        .search_deliveries(&search)
        .await?
        .iter()
        .map(|d| d.seq)
        .collect();
    seqs.sort_unstable();
    Ok(seqs)
}

/// The deliveries a replay dry run looks at, oldest first: with a status, those of the jobs
/// (and unparseable deliveries) a replay would take; without, every delivery in the range.
pub async fn select_deliveries(
    store: &dyn Store,
    filter: &ReplayFilter,
) -> Result<(Vec<i64>, bool), StoreError> {
    let limit = filter.limit() as usize;
    let mut seqs = match filter.status {
        Some(status) => {
            let mut seqs = Vec::new();
            let mut after_id = None;
            // Several jobs may share a delivery: page until `limit` deliveries are found.
            loop {
                let page = store
                    .search_jobs(&JobSearch {
                        after_id,
                        ..filter.jobs(status.states(), 500)
                    })
                    .await?;
                let Some(last) = page.last() else { break };
                after_id = Some(last.id.0);
                seqs.extend(page.iter().map(|j| j.delivery_seq));
                seqs.sort_unstable();
                seqs.dedup();
                if seqs.len() > limit {
                    break;
                }
            }
            if status == ReplayStatus::Failed && filter.rule.is_none() {
                seqs.extend(unparseable(store, filter, filter.limit() + 1).await?);
                seqs.sort_unstable();
                seqs.dedup();
            }
            seqs
        }
        None => {
            let search = DeliverySearch {
                endpoint: filter.endpoint.as_deref().map(Into::into),
                since: filter.since,
                until: filter.until,
                limit: filter.limit() + 1,
                ..DeliverySearch::default()
            };
            let mut seqs: Vec<i64> = store
                .search_deliveries(&search)
                .await?
                .iter()
                .map(|d| d.seq)
                .collect();
            // The newest `limit + 1`, shown oldest first.
            seqs.sort_unstable();
            seqs
        }
    };
    let truncated = seqs.len() > limit;
    seqs.truncate(limit);
    Ok((seqs, truncated))
}

/// One delivery's replay dry run: per rule, what was recorded and what would happen now.
#[derive(Clone, Debug, Serialize)]
pub struct ReplayDiff {
    /// The delivery.
    pub seq: i64,
    /// Its event name, when it parses.
    pub event: Option<String>,
    /// Why the dry run could not run (the delivery does not parse).
    pub error: Option<String>,
    /// One entry per rule that ran on it before or would run on it now.
    pub rules: Vec<RuleDiff>,
}

impl ReplayDiff {
    /// Whether any rule would act differently.
    pub fn changed(&self) -> bool {
        self.rules.iter().any(|r| r.changed)
    }
}

/// One rule's replay dry run.
#[derive(Clone, Debug, Serialize)]
pub struct RuleDiff {
    /// The rule.
    pub rule: String,
    /// Its job on the delivery, if it had one.
    pub job: Option<JobId>,
    /// The recorded outcome: the job's state and the attempt compared (`done, attempt 2`),
    /// or `no job`.
    pub recorded: String,
    /// What would happen now: `applied`, `skipped: <reason>`, `failed: <error>`, `not
    /// matched`, or `rule no longer configured`.
    pub now: String,
    /// The actions, recorded and now, as a diff.
    pub lines: Vec<DiffLine>,
    /// Whether the actions or the kind of outcome differ.
    pub changed: bool,
}

/// One line of a diff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DiffLine {
    /// `same`, `recorded` (only in what was recorded: would no longer be done) or `now`
    /// (only in what would be done now).
    pub side: DiffSide,
    /// The action.
    pub text: String,
}

/// Which side of a diff a line is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffSide {
    /// In both.
    Same,
    /// Only recorded: the current rules would not do it.
    Recorded,
    /// Only now: the current rules would do it, the recorded run did not.
    Now,
}

impl DiffLine {
    /// The line as a unified diff shows it: `  `, `- ` or `+ ` and the text.
    pub fn unified(&self) -> String {
        let mark = match self.side {
            DiffSide::Same => ' ',
            DiffSide::Recorded => '-',
            DiffSide::Now => '+',
        };
        format!("{mark} {}", self.text)
    }
}

impl Engine {
    /// A replay dry run of one delivery: for each rule (or only `rule`), the actions its job
    /// recorded when it first ran (its first attempt that applied or skipped, else its last
    /// attempt) next to the actions the current rules would take, as a diff. Nothing is
    /// done or stored.
    pub async fn replay_diff(
        &self,
        seq: i64,
        rule: Option<&str>,
    ) -> Result<ReplayDiff, DryRunError> {
        let store = self.inner.store.as_ref();
        let jobs = store
            .list_jobs(&JobFilter {
                delivery_seq: Some(seq),
                rule: rule.map(str::to_owned),
                limit: 1000,
                ..JobFilter::default()
            })
            .await?;
        let (event, error, now) = match self.dry_run(seq).await {
            Ok(dry) => (Some(dry.event), None, dry.rules),
            Err(DryRunError::Unparseable { reason, .. }) => (None, Some(reason), Vec::new()),
            Err(other) => return Err(other),
        };
        let mut recorded: Vec<(Job, Option<Attempt>)> = Vec::new();
        // Oldest job first: the one that ran when the delivery first came.
        for job in jobs.into_iter().rev() {
            if recorded.iter().any(|(j, _)| j.rule == job.rule) {
                continue;
            }
            let attempt = match store.job(job.id).await? {
                Some((_, attempts)) => compared_attempt(attempts),
                None => None,
            };
            recorded.push((job, attempt));
        }
        let mut rules = Vec::new();
        for dry in now
            .iter()
            .filter(|r| rule.is_none_or(|name| r.rule == name))
        {
            let before = recorded.iter().position(|(j, _)| j.rule == dry.rule);
            let before = before.map(|i| recorded.remove(i));
            if before.is_none() && !dry.matched {
                continue;
            }
            rules.push(rule_diff(&dry.rule, before.as_ref(), Some(dry)));
        }
        for before in &recorded {
            rules.push(rule_diff(&before.0.rule, Some(before), None));
        }
        Ok(ReplayDiff {
            seq,
            event,
            error,
            rules,
        })
    }
}

/// The attempt that stands for a job's run: its first that applied or skipped, else its
/// last.
fn compared_attempt(attempts: Vec<Attempt>) -> Option<Attempt> {
    let first_done = attempts
        .iter()
        .position(|a| a.outcome == "applied" || a.outcome == "skipped");
    match first_done {
        Some(i) => attempts.into_iter().nth(i),
        None => attempts.into_iter().last(),
    }
}

fn rule_diff(
    rule: &str,
    before: Option<&(Job, Option<Attempt>)>,
    now: Option<&RuleDryRun>,
) -> RuleDiff {
    let recorded_calls = before
        .and_then(|(_, a)| a.as_ref())
        .map(|a| a.calls.as_slice())
        .unwrap_or_default();
    let recorded_lines = before
        .and_then(|(_, a)| a.as_ref())
        .map(|a| a.actions.as_slice())
        .unwrap_or_default();
    let now_calls = now.map(|d| d.calls.as_slice()).unwrap_or_default();
    let now_lines: Vec<String> = now
        .map(|d| {
            d.actions
                .iter()
                .map(|l| l.strip_prefix("would: ").unwrap_or(l).to_owned())
                .collect()
        })
        .unwrap_or_default();
    let (old, new): (Vec<String>, Vec<String>) =
        if recorded_calls.is_empty() && now_calls.is_empty() {
            (recorded_lines.to_vec(), now_lines)
        } else if recorded_calls.is_empty() && !recorded_lines.is_empty() {
            // Recorded before calls were structured: compare with what the calls say.
            (
                recorded_lines.to_vec(),
                now_calls.iter().map(|c| c.summary.clone()).collect(),
            )
        } else {
            (
                recorded_calls.iter().map(|c| c.plan()).collect(),
                now_calls.iter().map(|c| c.plan()).collect(),
            )
        };
    let lines = diff(&old, &new);
    let recorded = match before {
        None => "no job".to_owned(),
        Some((job, Some(attempt))) => {
            format!("{}, attempt {}", job.state.as_str(), attempt.number)
        }
        Some((job, None)) => job.state.as_str().to_owned(),
    };
    let now_text = match now {
        None => "rule no longer configured".to_owned(),
        Some(d) => match &d.error {
            Some(error) => format!("failed: {error}"),
            None => d.outcome.clone(),
        },
    };
    let kind_before = before.map(|(job, _)| match job.state {
        JobState::Done => "applied",
        JobState::Skipped => "skipped",
        JobState::Dead => "failed",
        JobState::Pending | JobState::Running => "unfinished",
    });
    let kind_now = now.map(|d| {
        if !d.matched {
            "not matched"
        } else if d.error.is_some() {
            "failed"
        } else if d.outcome.starts_with("skipped") {
            "skipped"
        } else {
            "applied"
        }
    });
    let changed = lines.iter().any(|l| l.side != DiffSide::Same)
        || (kind_before != kind_now && kind_before != Some("unfinished"));
    RuleDiff {
        rule: rule.to_owned(),
        job: before.map(|(job, _)| job.id),
        recorded,
        now: now_text,
        lines,
        changed,
    }
}

/// A line diff of `old` and `new` (longest common subsequence), in order.
pub(crate) fn diff(old: &[String], new: &[String]) -> Vec<DiffLine> {
    let (n, m) = (old.len(), new.len());
    // lcs[i][j]: the longest common subsequence of old[i..] and new[j..].
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if old[i] == new[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = Vec::with_capacity(n.max(m));
    let (mut i, mut j) = (0, 0);
    let line = |side, text: &String| DiffLine {
        side,
        text: text.clone(),
    };
    while i < n || j < m {
        if i < n && j < m && old[i] == new[j] {
            out.push(line(DiffSide::Same, &old[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            // What is no longer done comes before what replaces it, as in a unified diff.
            out.push(line(DiffSide::Recorded, &old[i]));
            i += 1;
        } else {
            out.push(line(DiffSide::Now, &new[j]));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn diff_keeps_order_and_marks_both_sides() {
        let old = lines(&["a", "b", "c"]);
        let new = lines(&["a", "c", "d"]);
        let out: Vec<String> = diff(&old, &new).iter().map(DiffLine::unified).collect();
        assert_eq!(out, ["  a", "- b", "  c", "+ d"]);
        assert!(diff(&old, &old).iter().all(|l| l.side == DiffSide::Same));
        let out: Vec<String> = diff(&[], &new).iter().map(DiffLine::unified).collect();
        assert_eq!(out, ["+ a", "+ c", "+ d"]);
        let out: Vec<String> = diff(&lines(&["v1"]), &lines(&["v2"]))
            .iter()
            .map(DiffLine::unified)
            .collect();
        assert_eq!(out, ["- v1", "+ v2"]);
    }

    #[test]
    fn statuses_parse() {
        assert_eq!("dead".parse::<ReplayStatus>(), Ok(ReplayStatus::Dead));
        assert_eq!("done".parse::<ReplayStatus>(), Ok(ReplayStatus::Done));
        assert!("gone".parse::<ReplayStatus>().is_err());
    }
}
