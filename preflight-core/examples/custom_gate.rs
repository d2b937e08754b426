//! Another tool's own gate, built on preflight-core's public API only: two built-in checks
//! (`kube-api`, `nodes-ready`) plus a check of the tool's own (a change freeze), run through
//! preflight's runner, then written by two of its reporters.
//!
//! ```sh
//! cargo run -p preflight-core --example custom_gate                # current kubeconfig
//! FREEZE="2026-12-24..2026-12-26" cargo run -p preflight-core --example custom_gate
//! ```
//!
//! It exits with the report's own exit code (0 passed, 1 failed, 3 unsettled).

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use preflight_core::check::{Attempt, Check, CheckMeta, Context, Family};
use preflight_core::config::Config;
use preflight_core::contract::{Origin, ValuesLayer};
use preflight_core::outcome::Outcome;
use preflight_core::plan::{Selection, plan};
use preflight_core::platform::{NeededBy, Provider, Scope};
use preflight_core::reads::Reads;
use preflight_core::report::{self, Report};
use preflight_core::runner::{RunOptions, run};
use preflight_core::{Tier, async_trait};
use tokio_util::sync::CancellationToken;

/// The tool's own check: no deploy during a change freeze. It reads nothing outside, so its
/// fetch is the environment and its judge a pure function.
#[derive(Debug)]
struct ChangeFreeze {
    /// `FIRST..LAST` (ISO dates, inclusive), if a freeze is declared.
    window: Option<String>,
    today: String,
}

/// The judge: pass outside the window, fail inside it, fail on a window it cannot read.
fn judge(window: Option<&str>, today: &str) -> Outcome {
    let Some(window) = window else {
        return Outcome::pass("no-freeze", "no change freeze is declared");
    };
    match window.split_once("..") {
        Some((first, last)) if first <= today && today <= last => Outcome::fail(
            "change-freeze",
            format!("{today} is inside the change freeze {window}"),
        )
        .hint("Deploy after the freeze, or ask the release manager for an exception."),
        Some(_) => Outcome::pass("outside-freeze", format!("{today} is outside {window}")),
        None => Outcome::fail(
            "freeze-unreadable",
            format!("FREEZE={window:?} is not FIRST..LAST"),
        )
        .hint("Write the freeze as 2026-12-24..2026-12-26."),
    }
}

#[async_trait]
impl Check for ChangeFreeze {
    async fn attempt(&self, _ctx: &Context) -> Attempt {
        // Nothing will change by waiting within one run: the outcome is final.
        Attempt::settled(judge(self.window.as_deref(), &self.today))
    }

    fn reads(&self) -> Reads {
        Reads::default()
    }
}

fn main() -> ExitCode {
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(gate()),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "cannot start a runtime: {e}");
            ExitCode::from(2)
        }
    }
}

async fn gate() -> ExitCode {
    // The bootstrap contract; a real tool reads it from its own configuration.
    let values = ValuesLayer::from_yaml(
        "bootstrap: {mode: persistent, env: prod}\nplatform: {storageClassReady: true, rdsAvailable: true}\n",
        Origin::File("example".into()),
    )
    .and_then(ValuesLayer::validate)
    .expect("the example's values are valid");
    let mut plan = plan(
        &values,
        &Config::default(),
        Scope::Gate(Tier::Zero),
        &Selection::only(&["kube-api", "nodes-ready"]),
    )
    .expect("tier 0 fits every cluster");

    let freeze = ChangeFreeze {
        window: std::env::var("FREEZE").ok(),
        today: jiff::Zoned::now().date().to_string(),
    };
    let meta = CheckMeta {
        id: "change-freeze",
        title: "No change freeze is in force".into(),
        tier: Tier::Zero,
        family: Family::Other,
        provided_by: Provider::Foundation("the release calendar"),
        needed_by: NeededBy::tier(Tier::Zero),
        // Asked only once the cluster answers: a dependency, as the built-in checks have.
        needs: vec!["kube-api"],
        required: true,
        uses_kubernetes: false,
    };
    plan.add(meta, Arc::new(freeze))
        .expect("a new id whose dependency is planned");

    // The clients the checks use. Without a reachable cluster, kube-api fails and says why,
    // and the checks after it are reported as blocked.
    let mut ctx = Context::default();
    match preflight_core::connect::kube_client(None, None, Duration::from_secs(5)).await {
        Ok(client) => ctx = ctx.with_kube(client),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "no Kubernetes client: {e}");
        }
    }
    let options = RunOptions::default();
    let results = run(&plan, &ctx, &options, &CancellationToken::new()).await;
    let report = Report::new(&plan, &values, results, Vec::new());

    let mut out = std::io::stdout().lock();
    let _ = out.write_all(report::human(&report, false).as_bytes());
    let _ = out.write_all(report::termination_message(&report).as_bytes());
    let _ = writeln!(out);
    ExitCode::from(u8::try_from(report.exit_code).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::judge;

    #[test]
    fn judges_the_window() {
        assert_eq!(judge(None, "2026-12-25").code, "no-freeze");
        assert_eq!(
            judge(Some("2026-12-24..2026-12-26"), "2026-12-25").code,
            "change-freeze"
        );
        assert_eq!(
            judge(Some("2026-12-24..2026-12-26"), "2026-12-27").code,
            "outside-freeze"
        );
        assert_eq!(
            judge(Some("christmas"), "2026-12-25").code,
            "freeze-unreadable"
        );
    }
}
