//! Which endpoint a job's delivery arrived on, for integrations bound to one endpoint of a
//! provider (several GitHub organisations, say, each with its own endpoint and mappings).
//! Events do not carry their endpoint; the job's delivery record does.

use hookbridge_core::{EndpointName, RuleError};

use crate::engine::RuleContext;

/// The endpoint the running job's delivery arrived on; None in a dry run (no job) or when
/// the job or delivery is gone.
pub(in crate::integrations) async fn delivery_endpoint(
    ctx: &RuleContext,
) -> Result<Option<EndpointName>, RuleError> {
    let Some(job) = ctx.job else {
        return Ok(None);
    };
    let Some((job, _)) = ctx.store.job(job).await? else {
        return Ok(None);
    };
    Ok(ctx
        .store
        .delivery(job.delivery_seq)
        .await?
        .map(|delivery| delivery.endpoint))
}

/// Whether the running job belongs to `endpoint` (always true without an endpoint filter,
/// and in a dry run, which has no job to tell).
pub(in crate::integrations) async fn on_endpoint(
    ctx: &RuleContext,
    endpoint: Option<&EndpointName>,
) -> Result<bool, RuleError> {
    let Some(wanted) = endpoint else {
        return Ok(true);
    };
    Ok(delivery_endpoint(ctx)
        .await?
        .is_none_or(|actual| &actual == wanted))
}
