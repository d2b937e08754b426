//! Progress while a run waits (`--wait`): which checks are still pending, why (the last reason
//! each gave) and the time left. On a terminal, one live line on stderr, redrawn every second
//! and cleared before the report; without one (a hook Pod's log, CI), one line at a steady
//! interval, so that `kubectl logs` of a running hook says what it waits for. Everything comes
//! from the runner's events; nothing polls the checks.

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use preflight_core::runner::Event;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, interval_at};

/// How often a line is written without a terminal, unless PREFLIGHT_PROGRESS_INTERVAL says.
const LOG_INTERVAL: Duration = Duration::from_secs(15);

/// How often the live line is redrawn on a terminal.
const LIVE_INTERVAL: Duration = Duration::from_secs(1);

/// Where a pending check stands.
enum Pending {
    /// Its dependencies have not passed yet.
    Queued(Vec<&'static str>),
    /// Its first attempt is under way.
    Running,
    /// It failed and waits to try again; the last reason.
    Waiting { code: String, message: String },
}

/// The planned checks, in plan order, each with the checks it needs.
pub(crate) type Planned = Vec<(&'static str, Vec<&'static str>)>;

/// Shows progress until `events` closes (the run is over). `deadline` is when the run's
/// `--wait` ends.
pub(crate) async fn show(
    planned: Planned,
    mut events: mpsc::UnboundedReceiver<Event>,
    deadline: Instant,
) {
    let live = std::io::stderr().is_terminal();
    let every = if live {
        LIVE_INTERVAL
    } else {
        std::env::var("PREFLIGHT_PROGRESS_INTERVAL")
            .ok()
            .and_then(|v| humantime::parse_duration(&v).ok())
            .filter(|d| !d.is_zero())
            .unwrap_or(LOG_INTERVAL)
    };
    let order: Vec<&'static str> = planned.iter().map(|(id, _)| *id).collect();
    let mut pending: BTreeMap<&'static str, Pending> = planned
        .into_iter()
        .map(|(id, needs)| (id, Pending::Queued(needs)))
        .collect();
    let total = order.len();
    let mut ticks = interval_at(Instant::now() + every, every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut drawn = false;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(Event::Started { id }) => { pending.insert(id, Pending::Running); }
                Some(Event::Waiting { id, outcome, .. }) => {
                    // One line per entry: a multi-line message shows its first line.
                    let message = outcome.message.lines().next().unwrap_or_default().to_owned();
                    pending.insert(id, Pending::Waiting { code: outcome.code, message });
                }
                Some(Event::Ended(result)) => { pending.remove(result.id); }
                // An event this reporter does not know yet changes nothing it shows.
                Some(_) => {}
                None => break,
            },
            _ = ticks.tick() => {
                if pending.is_empty() {
                    continue;
                }
                let line = line(&order, &pending, total, deadline.saturating_duration_since(Instant::now()));
                let mut err = std::io::stderr().lock();
                let _ = if live {
                    // Redraw in place, cut to the terminal's usual width so it never wraps.
                    let shown: String = line.chars().take(columns().saturating_sub(1)).collect();
                    write!(err, "\r\x1b[2K{shown}")
                } else {
                    writeln!(err, "{line}")
                };
                let _ = err.flush();
                drawn = live;
            }
        }
    }
    if drawn {
        let _ = write!(std::io::stderr(), "\r\x1b[2K");
    }
}

/// `preflight: waiting for 2 of 14 checks, 4m12s left: nodes-ready (nodes-not-ready: …), …`
fn line(
    order: &[&'static str],
    pending: &BTreeMap<&'static str, Pending>,
    total: usize,
    left: Duration,
) -> String {
    let reasons: Vec<String> = order
        .iter()
        .filter_map(|id| {
            let why = match pending.get(id)? {
                // Only the dependencies still pending: those that passed hold nothing up.
                Pending::Queued(needs) => {
                    let open: Vec<&str> = needs
                        .iter()
                        .copied()
                        .filter(|n| pending.contains_key(n))
                        .collect();
                    if open.is_empty() {
                        "starting".to_owned()
                    } else {
                        format!("after {}", open.join(", "))
                    }
                }
                Pending::Running => "first attempt running".to_owned(),
                Pending::Waiting { code, message } => format!("{code}: {message}"),
            };
            Some(format!("{id} ({why})"))
        })
        .collect();
    let left = Duration::from_secs(left.as_secs());
    format!(
        "preflight: waiting for {} of {total} checks, {} left: {}",
        pending.len(),
        humantime::format_duration(left),
        reasons.join("; ")
    )
}

/// The width of the terminal on stderr, or the usual 80 when it does not say.
fn columns() -> usize {
    terminal_size::terminal_size_of(std::io::stderr())
        .map(|(width, _)| usize::from(width.0))
        .filter(|&c| c >= 20)
        .unwrap_or(80)
}
