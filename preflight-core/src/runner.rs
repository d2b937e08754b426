//! The runner: runs a plan's checks concurrently, owns every timeout, retry and wait, and
//! stops on the deadline or on cancellation with whatever it has.

use std::collections::HashMap;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use futures::TryStreamExt as _;
use futures::future::select_all;
use kube::api::WatchParams;
use kube::core::{Request, WatchEvent};
use serde::Deserialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

use crate::check::{Attempt, Context, KubeWatch, Retry};
use crate::checks::Entry;
use crate::config::RunnerSettings;
use crate::freshness::Floors;
use crate::outcome::{Outcome, Status};
use crate::plan::Plan;
use crate::result::{CheckResult, Cut, End, RunEnd, RunResults};

/// How long to run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Per-attempt timeout and backoff.
    pub settings: RunnerSettings,
    /// The overall deadline (`--wait`). `None`: one attempt per check, no waiting, and the
    /// whole run within one attempt timeout (see [`spent`](Self::spent)).
    pub wait: Option<Duration>,
    /// Time the caller already spent on this run before the checks (reading its values from
    /// the cluster). A run without `--wait` promises to end within one attempt timeout of its
    /// start: checks that run after others (and after that read) get what is left of it, and
    /// at least [`MIN_ATTEMPT`], so an endpoint that never answers costs one timeout, not one
    /// per step.
    pub spent: Duration,
}

/// The shortest time an attempt gets when a run without `--wait` is near its end, so that a
/// check late in a chain is still tried rather than timed out unasked.
pub const MIN_ATTEMPT: Duration = Duration::from_secs(1);

/// When attempts must end: the `--wait` deadline, or without one, the end of the run's single
/// attempt timeout.
#[derive(Clone, Copy, Debug)]
enum Limit {
    Deadline(Instant),
    Budget(Instant),
}

/// What the runner tells an observer while a run goes on, so that a reporter can show
/// progress (which checks are still pending, and why) without polling the checks.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The check's dependencies passed and its first attempt starts.
    Started {
        /// The check.
        id: &'static str,
    },
    /// An attempt failed, and the check waits for a change (or its backoff) to try again.
    Waiting {
        /// The check.
        id: &'static str,
        /// Attempts made so far.
        attempt: u32,
        /// What the last attempt found: the reason it is still waiting.
        outcome: Outcome,
    },
    /// The check ended, for good or cut short.
    Ended(CheckResult),
}

/// Where events go; a closed receiver is fine (nobody is watching any more).
type Events = Option<mpsc::UnboundedSender<Event>>;

fn emit(events: &Events, event: Event) {
    if let Some(tx) = events {
        let _ = tx.send(event);
    }
}

/// What a dependant needs to know of a finished check.
#[derive(Clone, Copy, Debug)]
struct Settled {
    ok: bool,
    settled: bool,
}

/// Shortest spacing of two attempts woken by watch events, so that a busy collection (node
/// heartbeats on a large cluster) does not turn into back-to-back re-lists.
const MIN_SPACING: Duration = Duration::from_millis(200);

/// Upper bound of a watch request; real servers close watches after about five minutes.
const WATCH_SECONDS: u32 = 290;

/// A watch that a server closes sooner than this after opening it is opened again only after
/// the backoff delay.
const MIN_WATCH: Duration = Duration::from_secs(1);

/// Runs every check of the plan. Returns when all have settled, when the deadline passes, or
/// soon after `cancel` fires; checks still waiting then are reported as unsettled.
pub async fn run(
    plan: &Plan,
    ctx: &Context,
    options: &RunOptions,
    cancel: &CancellationToken,
) -> RunResults {
    run_inner(plan, ctx, options, cancel, None).await
}

/// [`run`], telling `events` as each check starts, waits and ends.
pub async fn run_with_events(
    plan: &Plan,
    ctx: &Context,
    options: &RunOptions,
    cancel: &CancellationToken,
    events: mpsc::UnboundedSender<Event>,
) -> RunResults {
    run_inner(plan, ctx, options, cancel, Some(events)).await
}

async fn run_inner(
    plan: &Plan,
    ctx: &Context,
    options: &RunOptions,
    cancel: &CancellationToken,
    events: Events,
) -> RunResults {
    let started_at = jiff::Timestamp::now();
    let start = Instant::now();
    let limit = match options.wait {
        Some(w) => Limit::Deadline(start + w),
        None => Limit::Budget(
            start
                + options
                    .settings
                    .attempt_timeout
                    .saturating_sub(options.spent),
        ),
    };

    let mut senders = HashMap::new();
    let mut receivers = HashMap::new();
    for entry in &plan.checks {
        let (tx, rx) = watch::channel(None::<Settled>);
        senders.insert(entry.meta.id, tx);
        receivers.insert(entry.meta.id, rx);
    }
    // Each check is a task, so that CPU-bound setup (TLS trust stores, large JSON documents)
    // of one check runs on another worker thread while the others wait on the network. The
    // tasks live in a JoinSet, which aborts them if the run itself is dropped: nothing
    // outlives the run.
    let mut tasks = JoinSet::new();
    for (index, entry) in plan.checks.iter().enumerate() {
        let deps: Vec<_> = entry
            .meta
            .needs
            .iter()
            .filter_map(|n| Some((*n, receivers.get(n)?.clone())))
            .collect();
        let done = senders.remove(entry.meta.id);
        let (entry, ctx, options, cancel, events) = (
            entry.clone(),
            ctx.clone(),
            options.clone(),
            cancel.clone(),
            events.clone(),
        );
        tasks.spawn(async move {
            let result = run_check(&entry, deps, &ctx, &options, limit, &cancel, &events).await;
            emit(&events, Event::Ended(result.clone()));
            if let Some(done) = done {
                let _ = done.send(Some(Settled {
                    ok: matches!(&result.end, End::Judged(o) if o.status.is_ok()),
                    settled: result.settled(),
                }));
            }
            (index, result)
        });
    }
    let mut checks: Vec<Option<CheckResult>> = vec![None; plan.checks.len()];
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, result)) => checks[index] = Some(result),
            // A check that panicked: its result is missing, reported below as such.
            Err(e) => tracing::error!("a check's task ended abnormally: {e}"),
        }
    }
    let checks: Vec<CheckResult> = plan
        .checks
        .iter()
        .zip(checks)
        .map(|(entry, result)| {
            result.unwrap_or_else(|| {
                let crashed = CheckResult::new(&entry.meta, End::Crashed);
                emit(&events, Event::Ended(crashed.clone()));
                crashed
            })
        })
        .collect();
    // How the run ended follows from how its checks did: a signal that lands after the last
    // check settled changes nothing.
    let interrupted = checks.iter().any(|c| {
        matches!(
            c.end,
            End::Unsettled {
                cut_by: Cut::Interruption,
                ..
            }
        )
    });
    let end = if interrupted {
        RunEnd::Interrupted
    } else if checks.iter().any(|c| !c.settled()) {
        RunEnd::DeadlineReached
    } else {
        RunEnd::Completed
    };
    RunResults {
        started_at,
        duration: start.elapsed(),
        end,
        checks,
    }
}

async fn run_check(
    entry: &Entry,
    deps: Vec<(&'static str, watch::Receiver<Option<Settled>>)>,
    ctx: &Context,
    options: &RunOptions,
    run_limit: Limit,
    cancel: &CancellationToken,
    events: &Events,
) -> CheckResult {
    let deadline = match run_limit {
        Limit::Deadline(d) => Some(d),
        Limit::Budget(_) => None,
    };
    let meta = &entry.meta;
    let unsettled =
        |last: Option<Outcome>, cut_by: Cut, attempts: u32, started: Instant| CheckResult {
            attempts,
            duration: started.elapsed(),
            ..CheckResult::new(meta, End::Unsettled { last, cut_by })
        };

    // Wait for dependencies; a failed one blocks this check.
    let waiting = Instant::now();
    for (dep, mut rx) in deps {
        let state = tokio::select! {
            biased;
            () = cancel.cancelled() => return unsettled(None, Cut::Interruption, 0, waiting),
            state = rx.wait_for(Option::is_some) => state.ok().and_then(|s| *s),
        };
        match state {
            Some(Settled { ok: true, .. }) => {}
            Some(Settled { settled, .. }) => {
                return CheckResult::new(meta, End::Blocked { by: dep, settled });
            }
            // The dependency's task ended without a result: it panicked (reported as
            // crashed), or the run is being cancelled.
            None if cancel.is_cancelled() => {
                return unsettled(None, Cut::Interruption, 0, waiting);
            }
            None => {
                return CheckResult::new(
                    meta,
                    End::Blocked {
                        by: dep,
                        settled: true,
                    },
                );
            }
        }
    }

    let started = Instant::now();
    emit(events, Event::Started { id: meta.id });
    let settings = &options.settings;
    let mut backoff = ExponentialBuilder::default()
        .with_min_delay(settings.backoff_initial)
        .with_max_delay(settings.backoff_max)
        .with_jitter()
        .without_max_times()
        .build();
    let mut attempts = 0;
    let mut last: Option<Outcome> = None;
    loop {
        attempts += 1;
        let attempt_started = Instant::now();
        let limit = match run_limit {
            Limit::Deadline(d) => settings
                .attempt_timeout
                .min(d.saturating_duration_since(attempt_started)),
            Limit::Budget(b) => settings.attempt_timeout.min(
                b.saturating_duration_since(attempt_started)
                    .max(MIN_ATTEMPT),
            ),
        };
        let attempt = tokio::select! {
            biased;
            () = cancel.cancelled() => {
                return unsettled(last, Cut::Interruption, attempts - 1, started);
            }
            result = timeout(limit, entry.check.attempt(ctx)) => result.map_err(|_| limit),
        };
        let finished = |end: End| CheckResult {
            attempts,
            duration: started.elapsed(),
            ..CheckResult::new(meta, end)
        };
        let Some(deadline) = deadline else {
            // One attempt, no waiting: its answer, or its silence, is final.
            return finished(match attempt {
                Ok(Attempt { outcome, .. }) => End::Judged(outcome),
                Err(limit) => End::TimedOut { limit },
            });
        };
        let Attempt { outcome, retry } = attempt.unwrap_or_else(timed_out);
        if outcome.status != Status::Fail || retry == Retry::Never {
            return finished(End::Judged(outcome));
        }
        let cut = |outcome: Outcome, cut_by: Cut| {
            finished(End::Unsettled {
                last: Some(outcome),
                cut_by,
            })
        };
        if Instant::now() >= deadline {
            return cut(outcome, Cut::Deadline);
        }
        tracing::info!(check = meta.id, attempt = attempts, code = %outcome.code, "waiting: {}", outcome.message);
        emit(
            events,
            Event::Waiting {
                id: meta.id,
                attempt: attempts,
                outcome: outcome.clone(),
            },
        );
        let delay = backoff.next().unwrap_or(settings.backoff_max);
        let wake = async {
            match &retry {
                Retry::OnChange(watches) => {
                    wait_for_change(ctx, watches, delay, settings.backoff_max).await;
                    sleep_until(attempt_started + MIN_SPACING).await;
                }
                _ => sleep(delay).await,
            }
        };
        tokio::select! {
            biased;
            () = cancel.cancelled() => return cut(outcome, Cut::Interruption),
            () = sleep_until(deadline) => return cut(outcome, Cut::Deadline),
            () = wake => {}
        }
        last = Some(outcome);
    }
}

/// A timed-out attempt in a run that waits: transient, so it is tried again; its outcome is
/// the one a final timeout reports.
fn timed_out(limit: Duration) -> Attempt {
    Attempt::transient(End::TimedOut { limit }.outcome().into_owned())
}

/// The resource version of a watched object: watch events are only a signal here, so the
/// rest of the object is skipped.
#[derive(Clone, Debug, Default, Deserialize)]
struct Seen {
    #[serde(default)]
    metadata: SeenMeta,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeenMeta {
    #[serde(default)]
    resource_version: String,
}

/// Returns when any watched collection changes, or after `fallback` at most. A watch that
/// cannot be opened (no client, no `watch` permission) degrades to waiting `delay`, so that a
/// broken watch never turns into a busy loop.
async fn wait_for_change(
    ctx: &Context,
    watches: &[KubeWatch],
    delay: Duration,
    fallback: Duration,
) {
    let Some(client) = ctx.kube() else {
        sleep(delay).await;
        return;
    };
    if watches.is_empty() {
        sleep(delay).await;
        return;
    }
    let floors = ctx.floors();
    let changes = watches.iter().map(|w| {
        Box::pin(async move {
            if let Err(e) = watch_for_change(client, floors, w, delay).await {
                tracing::debug!(path = %w.path, "watch failed, waiting instead: {e}");
                sleep(delay).await;
            }
        })
    });
    let _ = timeout(fallback, select_all(changes)).await;
}

/// How one watch request ended.
enum WatchEnd {
    /// An object was added, changed or deleted.
    Changed,
    /// The resource version it started from is gone (`410`).
    Expired,
    /// The server ended it (its timeout) or the connection dropped, with no change.
    Closed,
}

/// Watches a collection from the resource version the facts were read at until it changes
/// or the version expires. A watch the server closes is opened again from the last version
/// it saw (a bookmark's, at least the start's), with no read in between: nothing happened.
/// Every version seen raises the collection's floor ([`Floors`]),
/// so the next attempt's read is not older than what woke it.
async fn watch_for_change(
    client: &kube::Client,
    floors: &Floors,
    w: &KubeWatch,
    delay: Duration,
) -> Result<(), kube::Error> {
    let mut from = w.resource_version.clone();
    floors.raise(&w.path, &from);
    loop {
        let opened = Instant::now();
        match watch_once(client, floors, w, &mut from).await? {
            WatchEnd::Changed => return Ok(()),
            // The facts are read again, which is a relist: from the floor, which the version
            // the watch started at (a list's) keeps valid for a list `NotOlderThan` it.
            WatchEnd::Expired => {
                tracing::info!(path = %w.path, "the watch expired (410 Gone): reading again");
                return Ok(());
            }
            WatchEnd::Closed => {
                tracing::debug!(
                    path = %w.path,
                    resource_version = %from,
                    "the watch closed without a change: watching again from the last version seen"
                );
                // A server that closes watches at once must not turn this into a busy loop.
                if opened.elapsed() < MIN_WATCH {
                    sleep(delay).await;
                }
            }
        }
    }
}

/// One watch request from `from`, which follows the versions it sees.
async fn watch_once(
    client: &kube::Client,
    floors: &Floors,
    w: &KubeWatch,
    from: &mut String,
) -> Result<WatchEnd, kube::Error> {
    // Bookmarks (on by default) let a quiet watch move on with the server, so that one the
    // server closes is opened again from a recent version, still in the server's window.
    let mut params = WatchParams::default().timeout(WATCH_SECONDS);
    if let Some(fs) = &w.field_selector {
        params = params.fields(fs);
    }
    let request = Request::new(&w.path)
        .watch(&params, from)
        .map_err(kube::Error::BuildRequest)?;
    // A resource version the server has compacted away expires the watch (410 Gone, as an
    // answer or as an ERROR event).
    let events = match client.request_events::<Seen>(request).await {
        Ok(events) => events,
        Err(kube::Error::Api(status)) if status.code == 410 => return Ok(WatchEnd::Expired),
        Err(e) => return Err(e),
    };
    futures::pin_mut!(events);
    while let Some(event) = events.try_next().await? {
        let seen = match event {
            WatchEvent::Bookmark(bookmark) => bookmark.metadata.resource_version,
            WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => {
                floors.raise(&w.path, &o.metadata.resource_version);
                return Ok(WatchEnd::Changed);
            }
            WatchEvent::Error(status) if status.code == 410 => return Ok(WatchEnd::Expired),
            WatchEvent::Error(status) => return Err(kube::Error::Api(status)),
        };
        if !seen.is_empty() {
            floors.raise(&w.path, &seen);
            *from = seen;
        }
    }
    Ok(WatchEnd::Closed)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::check::{Check, CheckMeta, Family};
    use crate::contract::Ceiling;
    use crate::reads::Reads;
    use crate::tier::Tier;

    /// A check with a bug: it panics.
    #[derive(Debug)]
    struct Panics;

    #[async_trait::async_trait]
    impl Check for Panics {
        async fn attempt(&self, _: &Context) -> Attempt {
            panic!("a bug in a check")
        }

        fn reads(&self) -> Reads {
            Reads::default()
        }
    }

    /// A check that passes.
    #[derive(Debug)]
    struct Passes;

    #[async_trait::async_trait]
    impl Check for Passes {
        async fn attempt(&self, _: &Context) -> Attempt {
            Attempt::settled(Outcome::pass("fine", "fine"))
        }

        fn reads(&self) -> Reads {
            Reads::default()
        }
    }

    fn entry(id: &'static str, needs: &[&'static str], check: Arc<dyn Check>) -> Entry {
        Entry {
            meta: CheckMeta {
                id,
                title: id.to_owned(),
                tier: Tier::Zero,
                family: Family::Kubernetes,
                provided_by: crate::platform::Provider::Foundation("test"),
                needed_by: crate::platform::NeededBy::tier(Tier::Zero),
                needs: needs.to_vec(),
                required: true,
                uses_kubernetes: false,
            },
            check,
        }
    }

    #[tokio::test]
    async fn a_crashed_check_fails_and_blocks_its_dependants_without_a_deadline() {
        let plan = Plan {
            scope: crate::platform::Scope::Gate(Tier::Zero),
            tier: Tier::Zero,
            ceiling: Ceiling {
                tier: Tier::Zero,
                rule: "test".into(),
            },
            checks: vec![
                entry("buggy", &[], Arc::new(Panics)),
                entry("after", &["buggy"], Arc::new(Passes)),
                entry("alone", &[], Arc::new(Passes)),
            ],
            left_out: Vec::new(),
        };
        let options = RunOptions::default();
        let results = run(
            &plan,
            &Context::default(),
            &options,
            &CancellationToken::new(),
        )
        .await;
        let ends: Vec<(&str, &End)> = results.checks.iter().map(|c| (c.id, &c.end)).collect();
        assert_eq!(
            ends,
            [
                ("buggy", &End::Crashed),
                (
                    "after",
                    &End::Blocked {
                        by: "buggy",
                        settled: true
                    }
                ),
                ("alone", &End::Judged(Outcome::pass("fine", "fine")))
            ]
        );
        assert_eq!(results.checks[0].outcome().code, "check-crashed");
        assert_eq!(results.end, RunEnd::Completed);
    }
}
