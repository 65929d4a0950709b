//! Outbound webhooks: the dispatcher that turns committed events into signed POSTs.
//!
//! One task follows the event log from the dispatch cursor and queues a delivery
//! per matching subscription ([`queue::fan_out`]); another sends what is due,
//! woken by every commit that queues one. Each subscription has
//! one attempt in flight at a time, on a thread of its own with a timeout, so a
//! slow or dead receiver only ever delays itself. The queue is in `agents.db`: a
//! restart resumes it, and an attempt cut short by a crash is made again with the
//! same `webhook-id` (at least once).

pub mod payload;
pub mod queue;
pub mod signing;

use std::collections::HashSet;
use std::io::Read;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::actors::Shared;
use crate::db::deliveries::{self as store, Due, Outcome, Recorded};
use crate::db::events::Filter;
use crate::db::DbError;
use crate::events::Stopped;

/// Most attempts in flight at once, over all subscriptions.
const MAX_IN_FLIGHT: usize = 64;
/// How much of a receiver's answer is kept in the attempt log.
const KEPT_ANSWER_BYTES: u64 = 512;

/// How deliveries are sent.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Waits before each retry; when spent, the delivery is failed.
    pub retry_schedule: Vec<Duration>,
    /// Longest wait for a receiver's whole answer.
    pub timeout: Duration,
}

/// Starts the dispatcher on the current runtime; it stops when the bus says the server stops.
pub fn spawn(shared: Arc<Shared>, config: DeliveryConfig) {
    actix_web::rt::spawn(fan_out(shared.clone()));
    actix_web::rt::spawn(run(shared, config));
}

/// Follows the log from the dispatch cursor and queues deliveries of what it reads.
async fn fan_out(shared: Arc<Shared>) {
    let from = loop {
        match db(&shared, |conn| store::cursor(conn)).await {
            Ok(cursor) => break cursor,
            Err(e) => tracing::warn!(error = %e, "reading the webhook cursor failed; retrying"),
        }
        if pause(&shared).await.is_err() {
            return;
        }
    };
    let mut log = shared.bus.follow(Filter::default(), from);
    let mut from = from;
    loop {
        let batch = match log.next().await {
            Ok(batch) => batch,
            Err(Stopped::Stopping) => return,
            Err(Stopped::Storage(e)) => {
                tracing::warn!(error = %e, "reading the event log for webhooks failed; retrying");
                if pause(&shared).await.is_err() {
                    return;
                }
                continue;
            }
        };
        let batch = Arc::new(batch);
        loop {
            let events = batch.clone();
            match db(&shared, move |conn| queue::fan_out(conn, from, &events)).await {
                Ok(()) => break,
                Err(e) => tracing::warn!(error = %e, "queuing webhook deliveries failed; retrying"),
            }
            if pause(&shared).await.is_err() {
                return;
            }
        }
        from = log.cursor();
    }
}

/// A second's pause before trying again; `Err` when the server stops meanwhile.
async fn pause(shared: &Shared) -> Result<(), ()> {
    let mut stopping = shared.bus.stopping();
    tokio::select! {
        () = actix_web::rt::time::sleep(Duration::from_secs(1)) => Ok(()),
        _ = stopping.wait_for(|stop| *stop) => Err(()),
    }
}

fn client(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("Switchboard-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

/// Storage work on the blocking pool; failures as text, for the log.
async fn db<T: Send + 'static>(
    shared: &Shared,
    work: impl FnOnce(&mut rusqlite::Connection) -> Result<T, DbError> + Send + 'static,
) -> Result<T, DbError> {
    crate::db::run(&shared.db.agents, work).await
}

async fn run(shared: Arc<Shared>, config: DeliveryConfig) {
    let agent = client(config.timeout);
    let config = Arc::new(config);
    let mut queued = shared.bus.deliveries();
    let mut stopping = shared.bus.stopping();
    let finished = Arc::new(Notify::new());
    let busy: Arc<Mutex<HashSet<String>>> = Arc::default();
    let lock = |busy: &Mutex<HashSet<String>>| busy.lock().unwrap_or_else(PoisonError::into_inner).clone();
    loop {
        if *stopping.borrow() {
            return;
        }
        queued.borrow_and_update();
        let heads = db(&shared, |conn| store::heads(conn)).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "reading the webhook queue failed");
            Vec::new()
        });
        let now = store::now_ms();
        let mut next: Option<i64> = None;
        for (webhook, due_at) in heads {
            let in_flight = lock(&busy);
            if in_flight.contains(&webhook) {
                continue;
            }
            if due_at > now {
                next = Some(next.map_or(due_at, |n| n.min(due_at)));
                continue;
            }
            if in_flight.len() >= MAX_IN_FLIGHT {
                break;
            }
            let id = webhook.clone();
            let Ok(Some(due)) = db(&shared, move |conn| store::head(conn, &id)).await else {
                continue;
            };
            busy.lock().unwrap_or_else(PoisonError::into_inner).insert(webhook.clone());
            let (shared, agent, config, busy, finished) =
                (shared.clone(), agent.clone(), config.clone(), busy.clone(), finished.clone());
            actix_web::rt::spawn(async move {
                attempt(&shared, agent, &config, due).await;
                busy.lock().unwrap_or_else(PoisonError::into_inner).remove(&webhook);
                finished.notify_one();
            });
        }
        let wait = next.map_or(Duration::from_secs(60), |at| {
            Duration::from_millis(u64::try_from(at - store::now_ms()).unwrap_or(0))
        });
        tokio::select! {
            _ = queued.changed() => {}
            () = finished.notified() => {}
            () = actix_web::rt::time::sleep(wait) => {}
            _ = stopping.changed() => {}
        }
    }
}

/// Makes one attempt and records it; a failure to record is retried after a pause.
async fn attempt(shared: &Arc<Shared>, agent: ureq::Agent, config: &Arc<DeliveryConfig>, due: Due) {
    // A thread of its own rather than the blocking pool: a receiver that holds the
    // connection until the timeout must not hold up the server's exit either.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let sending = due.clone();
    let spawned = std::thread::Builder::new().name("webhook-send".into()).spawn(move || {
        let _ = tx.send(send(&agent, &sending));
    });
    let failed = |why: String| Outcome { status: None, error: Some(why), duration_ms: 0 };
    let outcome = match spawned {
        Ok(_) => rx.await.unwrap_or_else(|_| failed("the sending thread failed".into())),
        Err(e) => failed(format!("cannot start a sending thread: {e}")),
    };
    let schedule = config.retry_schedule.clone();
    let (logged, logged_outcome) = (due.clone(), outcome.clone());
    match db(shared, move |conn| store::record(conn, &logged, &logged_outcome, &schedule)).await {
        Ok(recorded) => report(&due, &outcome, recorded),
        Err(e) => {
            tracing::warn!(delivery = %due.delivery_id, error = %e, "recording a webhook attempt failed");
            actix_web::rt::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

fn report(due: &Due, outcome: &Outcome, recorded: Recorded) {
    let (delivery, webhook, attempt) = (&due.delivery_id, &due.webhook_id, due.attempt);
    let status = outcome.status.map_or_else(|| "none".to_owned(), |s| s.to_string());
    let error = outcome.error.as_deref().unwrap_or("");
    match recorded {
        Recorded::Delivered => tracing::info!(%delivery, %webhook, attempt, %status, "webhook delivered"),
        Recorded::Retry(at) => {
            tracing::warn!(%delivery, %webhook, attempt, %status, error, retry_in_ms = at - store::now_ms(), "webhook attempt failed");
        }
        Recorded::Failed => {
            tracing::warn!(%delivery, %webhook, attempt, %status, error, "webhook delivery failed for good");
        }
        Recorded::Disabled => tracing::warn!(%webhook, "the receiver answered 410 Gone; subscription turned off"),
        Recorded::Vanished => tracing::debug!(%delivery, "delivery deleted while it was being sent"),
        Recorded::Requeued => {
            tracing::info!(%delivery, %webhook, attempt, %status, "redelivery asked for during the attempt; sending again");
        }
    }
}

/// POSTs one delivery, signed with a fresh timestamp. Blocking.
fn send(agent: &ureq::Agent, due: &Due) -> Outcome {
    let timestamp = chrono::Utc::now().timestamp();
    let signature = signing::sign(&signing::key_of(&due.secret), &due.delivery_id, timestamp, due.body.as_bytes());
    let started = Instant::now();
    let result = agent
        .post(&due.url)
        .header("content-type", "application/json")
        .header("webhook-id", &due.delivery_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .send(due.body.as_bytes());
    let (status, error) = match result {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let mut kept = Vec::new();
            let _ = response.body_mut().as_reader().take(KEPT_ANSWER_BYTES).read_to_end(&mut kept);
            let error = (!(200..300).contains(&status)).then(|| {
                let answer = String::from_utf8_lossy(&kept);
                let answer = answer.trim();
                if answer.is_empty() {
                    format!("HTTP {status}")
                } else {
                    format!("HTTP {status}: {answer}")
                }
            });
            (Some(status), error)
        }
        Err(e) => (None, Some(e.to_string())),
    };
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Outcome { status, error, duration_ms }
}
