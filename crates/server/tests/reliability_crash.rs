//! Crashes under load, through real `hookbridge serve` processes: `kill -9` at random
//! moments while senders deliver and the engine applies a declarative HTTP rule to a mock
//! service. After the last restart, every delivery that was answered 2xx is stored, every
//! delivery has exactly one job, every job is done, and — counting side effects by the
//! `Idempotency-Key` the rule sends (stable across retries), as an idempotent service would —
//! every effect is applied exactly once. Raw duplicates (a worker killed after the service
//! applied the effect but before the job was recorded done) are counted and reported.
//!
//! Short form: 5 rounds (SQLite, `synchronous = full`), 3 rounds with `synchronous = normal`,
//! one deterministic mid-job kill, and two servers on PostgreSQL (if `HOOKBRIDGE_TEST_PG_URL`
//! is set). `HOOKBRIDGE_LONG_TESTS=1`: 20 rounds each. `HOOKBRIDGE_CRASH_SEED` picks the kill
//! times (printed, so that a failure can be replayed).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use hookbridge_sync_engine::store::{
    DeliveryFilter, JobFilter, JobState, PostgresOptions, PostgresStore, SqliteStore, Store,
};

const ADMIN: &str = "admin-token-crash-0123456789";
const RULE: &str = "issues-to-effects";
/// How long the mock service takes to apply an effect: wide enough that kills land while
/// jobs are in flight.
const EFFECT_TIME: Duration = Duration::from_millis(15);

fn config(mock: &str, store: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
body_timeout_secs = 5
shutdown_grace_secs = 5

{store}

[engine]
concurrency = 16
max_attempts = 50
backoff_base_ms = 20
backoff_max_secs = 1
lease_secs = 2
poll_interval_ms = 50

[admin]
token = "{ADMIN}"

[endpoints.gh]
provider = "github"
secret = "{SECRET}"

[[rules]]
name = "{RULE}"
action = {{ kind = "http", url = "{mock}/effects", body = '{{"delivery": "{{{{ event.delivery_id }}}}", "issue": {{{{ /issue/number | json }}}}}}' }}

[rules.when]
provider = "github"
event = "issues.*"
"#
    )
}

fn sqlite_store(synchronous: &str) -> String {
    format!(
        "[store]\nkind = \"sqlite\"\npath = \"data/hookbridge.db\"\nsynchronous = \"{synchronous}\"\n"
    )
}

fn seed() -> u64 {
    std::env::var("HOOKBRIDGE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_cafe)
}

fn rounds(short: usize) -> usize {
    if long_tests() { 20 } else { short }
}

/// Every delivery sent: answered 2xx (acknowledged), or not answered at all (the server died
/// first) and to be sent again, as a provider redelivers.
#[derive(Default)]
struct Ledger {
    acked: Mutex<BTreeSet<String>>,
    unanswered: Mutex<Vec<String>>,
    /// Deliveries answered `200 duplicate`: sent again after the answer was lost.
    duplicates: AtomicU64,
    next: AtomicU64,
    /// The servers' `/hooks/gh` URLs senders may use; empty: the senders stop.
    targets: Mutex<Vec<String>>,
}

impl Ledger {
    fn acked(&self) -> BTreeSet<String> {
        self.acked.lock().unwrap().clone()
    }
}

/// A signed `issues` delivery for issue `n % 50 + 1`: fifty objects, so per-object ordering
/// is exercised while most jobs still run in parallel.
fn delivery_body(template: &serde_json::Value, n: u64) -> Vec<u8> {
    let mut body = template.clone();
    body["issue"]["number"] = serde_json::json!(n % 50 + 1);
    serde_json::to_vec(&body).unwrap()
}

fn number(id: &str) -> u64 {
    id.rsplit('-').next().unwrap().parse().unwrap()
}

/// Starts `senders` tasks that deliver until the ledger has no targets left.
fn start_senders(ledger: &Arc<Ledger>, senders: usize) -> Vec<tokio::task::JoinHandle<()>> {
    let template: serde_json::Value =
        serde_json::from_slice(&fixture("issues.opened.json")).unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    (0..senders)
        .map(|i| {
            let ledger = ledger.clone();
            let client = client.clone();
            let template = template.clone();
            tokio::spawn(async move {
                loop {
                    let target = {
                        let targets = ledger.targets.lock().unwrap();
                        if targets.is_empty() {
                            return;
                        }
                        targets[i % targets.len()].clone()
                    };
                    let id = ledger.unanswered.lock().unwrap().pop().unwrap_or_else(|| {
                        format!("crash-{}", ledger.next.fetch_add(1, Ordering::Relaxed))
                    });
                    let body = delivery_body(&template, number(&id));
                    match github_post(&client, &target, "issues", &id, body)
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == 202 || r.status() == 200 => {
                            if r.status() == 200 {
                                ledger.duplicates.fetch_add(1, Ordering::Relaxed);
                            }
                            ledger.acked.lock().unwrap().insert(id);
                        }
                        Ok(r) => panic!("{id}: unexpected status {}", r.status()),
                        Err(_) => {
                            ledger.unanswered.lock().unwrap().push(id);
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            })
        })
        .collect()
}

async fn stop_senders(ledger: &Ledger, senders: Vec<tokio::task::JoinHandle<()>>) {
    ledger.targets.lock().unwrap().clear();
    for s in senders {
        s.await.unwrap();
    }
}

/// The mock service: applies an effect (after [`EFFECT_TIME`]) and answers 200.
async fn effects_service() -> MockService {
    MockService::start(|_, _| MockReply::status(200).after(EFFECT_TIME)).await
}

/// Waits until every delivery is dispatched and no job is pending or running.
async fn drain(store: &dyn Store, timeout: Duration) {
    wait_until(
        "every delivery dispatched and every job finished",
        timeout,
        || async {
            let undispatched = store.undispatched(1).await.unwrap();
            let counts = store.job_counts().await.unwrap();
            undispatched.is_empty()
                && counts
                    .iter()
                    .all(|(s, n)| *n == 0 || !matches!(s, JobState::Pending | JobState::Running))
        },
    )
    .await;
}

struct Figures {
    deliveries: usize,
    jobs: usize,
    requests: usize,
    distinct_keys: usize,
    raw_duplicates: usize,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} deliveries stored, {} jobs done, {} requests at the service, {} distinct \
             idempotency keys (effects), {} raw duplicates",
            self.deliveries, self.jobs, self.requests, self.distinct_keys, self.raw_duplicates
        )
    }
}

/// The guarantees, checked against the store and the mock service.
async fn verify(store: &dyn Store, mock: &MockService, acked: &BTreeSet<String>) -> Figures {
    let deliveries = store
        .list_deliveries(&DeliveryFilter {
            limit: u32::MAX,
            ..Default::default()
        })
        .await
        .unwrap();
    let by_id: HashMap<String, i64> = deliveries
        .iter()
        .map(|d| (d.delivery_id.as_str().to_owned(), d.seq))
        .collect();
    assert_eq!(by_id.len(), deliveries.len(), "a delivery is stored twice");
    let lost: Vec<_> = acked.iter().filter(|id| !by_id.contains_key(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged deliveries lost: {lost:?}",
        lost.len()
    );
    let unsent: Vec<_> = by_id.keys().filter(|id| !acked.contains(*id)).collect();
    assert!(
        unsent.is_empty(),
        "stored but never acknowledged: {unsent:?}"
    );
    for d in &deliveries {
        assert_eq!(d.status, "dispatched", "{}", d.delivery_id);
    }

    let jobs = store
        .list_jobs(&JobFilter {
            limit: u32::MAX,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut jobs_per_delivery: HashMap<i64, usize> = HashMap::new();
    for job in &jobs {
        *jobs_per_delivery.entry(job.delivery_seq).or_default() += 1;
        assert_eq!(
            job.state,
            JobState::Done,
            "job {} of {:?}",
            job.id,
            job.rule
        );
    }
    for d in &deliveries {
        assert_eq!(
            jobs_per_delivery.get(&d.seq).copied().unwrap_or(0),
            1,
            "delivery {} must have exactly one job",
            d.delivery_id
        );
    }

    // Side effects, by idempotency key.
    let requests = mock.requests();
    let mut by_key: BTreeMap<String, Vec<&MockRequest>> = BTreeMap::new();
    for r in &requests {
        let key = r
            .idempotency_key()
            .unwrap_or_else(|| panic!("a request without Idempotency-Key: {r:?}"));
        by_key.entry(key.to_owned()).or_default().push(r);
    }
    let seq_to_id: HashMap<i64, &str> = deliveries
        .iter()
        .map(|d| (d.seq, d.delivery_id.as_str()))
        .collect();
    for job in &jobs {
        let key = format!("hookbridge-{RULE}-{}", job.id);
        let seen = by_key
            .get(&key)
            .unwrap_or_else(|| panic!("job {} (done) never reached the service", job.id));
        assert!(seen.iter().any(|r| r.succeeded()));
        let delivery = seq_to_id[&job.delivery_seq];
        for r in seen {
            assert_eq!(
                r.json()["delivery"],
                delivery,
                "key {key} carried another delivery"
            );
        }
    }
    assert_eq!(
        by_key.len(),
        jobs.len(),
        "the service saw keys of no job: effects applied more than once"
    );
    let applied: usize = by_key
        .values()
        .map(|rs| rs.iter().filter(|r| r.succeeded()).count())
        .sum();
    Figures {
        deliveries: deliveries.len(),
        jobs: jobs.len(),
        requests: requests.len(),
        distinct_keys: by_key.len(),
        raw_duplicates: applied - by_key.len(),
    }
}

async fn kill_9_rounds(synchronous: &str, rounds: usize) {
    let seed = seed();
    let mut rng = Rng(seed);
    let mock = effects_service().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(&mock.uri(), &sqlite_store(synchronous));
    let ledger = Arc::new(Ledger::default());
    let started = std::time::Instant::now();
    for round in 0..rounds {
        let mut server = Server::start(dir.path(), &config);
        *ledger.targets.lock().unwrap() = vec![server.url("/hooks/gh")];
        let senders = start_senders(&ledger, 6);
        // Mostly mid-load; now and then right after start-up.
        let uptime = if rng.range(0, 5) == 0 {
            rng.range(0, 60)
        } else {
            rng.range(150, 900)
        };
        tokio::time::sleep(Duration::from_millis(uptime)).await;
        server.kill_hard();
        stop_senders(&ledger, senders).await;
        eprintln!(
            "round {round}: killed after {uptime} ms; {} acknowledged, {} unanswered so far",
            ledger.acked.lock().unwrap().len(),
            ledger.unanswered.lock().unwrap().len()
        );
    }

    // The last restart: what was never answered is sent again (202 if it was lost before
    // being stored, 200 if it was stored but the answer was lost), then everything drains.
    let server = Server::start(dir.path(), &config);
    let resent = ledger.unanswered.lock().unwrap().len();
    *ledger.targets.lock().unwrap() = vec![server.url("/hooks/gh")];
    let senders = start_senders(&ledger, 2);
    wait_until(
        "the unanswered deliveries resent",
        Duration::from_secs(30),
        || async { ledger.unanswered.lock().unwrap().is_empty() },
    )
    .await;
    stop_senders(&ledger, senders).await;
    let store = SqliteStore::open(server.db_path(), Default::default())
        .await
        .unwrap();
    drain(&store, Duration::from_secs(120)).await;
    let figures = verify(&store, &mock, &ledger.acked()).await;
    store.close().await;
    eprintln!(
        "kill -9 x{rounds} (sqlite, synchronous={synchronous}, seed {seed:#x}) in {:?}: \
         {figures}; {resent} unanswered deliveries resent, {} of all resent ones had been \
         stored (200 duplicate)",
        started.elapsed(),
        ledger.duplicates.load(Ordering::Relaxed)
    );
    assert!(
        figures.deliveries > 20 * rounds,
        "load too light to be meaningful: {figures}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_nothing_and_applies_each_effect_once() {
    kill_9_rounds("full", rounds(5)).await;
}

/// `synchronous = normal` loses nothing when the process dies (the WAL is in the OS's page
/// cache); only an OS crash or power cut can lose the last commits, which no test here makes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_synchronous_normal_loses_nothing() {
    kill_9_rounds("normal", rounds(3)).await;
}

/// A worker killed while the service is applying its job: the job is taken again after its
/// lease, with the same idempotency key, and finishes once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_killed_mid_job_retries_with_the_same_key() {
    let hold = Arc::new(AtomicBool::new(true));
    let held = hold.clone();
    let mock = MockService::start(move |_, _| {
        if held.load(Ordering::SeqCst) {
            MockReply::Hang(Duration::from_secs(30))
        } else {
            MockReply::status(200)
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(&mock.uri(), &sqlite_store("full"));
    let mut server = Server::start(dir.path(), &config);
    let client = reqwest::Client::new();
    let r = github_post(
        &client,
        &server.url("/hooks/gh"),
        "issues",
        "mid-job-1",
        fixture("issues.opened.json"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    wait_until(
        "the job reaches the service",
        Duration::from_secs(15),
        || async { !mock.requests().is_empty() },
    )
    .await;
    server.kill_hard();
    let killed_at = std::time::Instant::now();
    hold.store(false, Ordering::SeqCst);

    let server = Server::start(dir.path(), &config);
    let store = SqliteStore::open(server.db_path(), Default::default())
        .await
        .unwrap();
    drain(&store, Duration::from_secs(30)).await;
    let requests = mock.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].idempotency_key(), requests[1].idempotency_key());
    // Not before the dead worker's lease (2 s from its claim) ran out.
    let gap = requests[1].at.duration_since(requests[0].at);
    assert!(
        gap >= Duration::from_millis(1500),
        "taken again {gap:?} after the first attempt ({:?} after the kill): before the lease expired",
        requests[1].at.duration_since(killed_at)
    );
    let jobs = store.list_jobs(&JobFilter::default()).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].state, JobState::Done);
    let (_, attempts) = store.job(jobs[0].id).await.unwrap().unwrap();
    // The killed attempt never finished: only the second is recorded.
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0].outcome, "applied");
    assert_eq!(attempts[0].number, 2);
    store.close().await;
}

/// Two servers on one PostgreSQL schema share the load; one is killed mid-load; the other
/// finishes all the work, each effect once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_postgres_one_killed_all_work_finishes_once() {
    let Some(schema) = PgSchema::new("crash") else {
        return;
    };
    let mock = effects_service().await;
    let store_section = format!(
        "[store]\nkind = \"postgres\"\nurl = {{ env = \"HB_CRASH_PG_URL\" }}\nschema = \"{}\"\nmax_connections = 8\n",
        schema.name
    );
    let config = config(&mock.uri(), &store_section);
    let env = [("HB_CRASH_PG_URL", schema.url.as_str())];
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let rounds = rounds(3);
    let ledger = Arc::new(Ledger::default());
    let mut survivor = Server::start_with_env(dir_b.path(), &config, &env);
    let started = std::time::Instant::now();
    let mut rng = Rng(seed());
    for round in 0..rounds {
        // Each round, a fresh A joins the survivor B, both take load, and A is killed.
        let mut victim = Server::start_with_env(dir_a.path(), &config, &env);
        *ledger.targets.lock().unwrap() = vec![victim.url("/hooks/gh"), survivor.url("/hooks/gh")];
        let senders = start_senders(&ledger, 6);
        let uptime = rng.range(300, 1200);
        tokio::time::sleep(Duration::from_millis(uptime)).await;
        // Senders move to B; what A had in flight is resent there.
        ledger
            .targets
            .lock()
            .unwrap()
            .retain(|t| *t == survivor.url("/hooks/gh"));
        victim.kill_hard();
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop_senders(&ledger, senders).await;
        eprintln!(
            "round {round}: A killed after {uptime} ms; {} acknowledged so far",
            ledger.acked.lock().unwrap().len()
        );
        if round + 1 == rounds {
            break;
        }
        // Every other round, B is killed too (idle, with jobs in flight) and restarted.
        if round % 2 == 1 {
            survivor.kill_hard();
            survivor = Server::start_with_env(dir_b.path(), &config, &env);
        }
    }
    *ledger.targets.lock().unwrap() = vec![survivor.url("/hooks/gh")];
    let senders = start_senders(&ledger, 2);
    wait_until(
        "the unanswered deliveries resent",
        Duration::from_secs(30),
        || async { ledger.unanswered.lock().unwrap().is_empty() },
    )
    .await;
    stop_senders(&ledger, senders).await;

    let store = PostgresStore::connect(
        &schema.url,
        PostgresOptions {
            max_connections: 2,
            schema: Some(schema.name.clone()),
            ..PostgresOptions::default()
        },
    )
    .await
    .unwrap();
    drain(&store, Duration::from_secs(120)).await;
    let figures = verify(&store, &mock, &ledger.acked()).await;
    store.close().await;
    eprintln!(
        "two servers on postgres, {rounds} kills in {:?}: {figures}",
        started.elapsed()
    );
    assert!(
        figures.deliveries > 20 * rounds,
        "load too light to be meaningful: {figures}"
    );
    drop(survivor);
}
