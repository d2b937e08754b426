//! The CA bundles of a run, read before any check runs.

use std::path::Path;

use preflight_core::checks::http::KEYCLOAK_CA_BUNDLE_SETTING;
use preflight_core::config::Config;
use preflight_core::outcome::error_chain;
use preflight_core::plan::Plan;
use preflight_core::trust::{BundleSetting, check_all};

/// The setting a `--pg-*` database's bundle takes in the plan: the flags make the first and
/// only database of the postgres check.
const FLAG_DATABASE_BUNDLE: &str = "checks.postgres.databases[0].caBundle";

/// Reads every CA bundle the planned checks trust, before any of them runs: one that cannot
/// be used is a configuration error (exit 2) naming the setting, whichever check it serves.
/// The HTTP client (Keycloak's, shared with the registry checks) trusts Keycloak's bundle
/// whenever it is built. `pg_flag` names `--pg-ca-bundle` (or its variable) when the
/// database came from the flags: read here, with the others, after the signal handlers are
/// in place and only when the postgres check is planned.
pub(crate) fn check(
    plan: &Plan,
    config: &Config,
    file: Option<&Path>,
    pg_flag: Option<&str>,
) -> anyhow::Result<()> {
    let mut bundles = plan.ca_bundles();
    if let Some(flag) = pg_flag {
        for bundle in &mut bundles {
            if bundle.setting == FLAG_DATABASE_BUNDLE {
                flag.clone_into(&mut bundle.setting);
            }
        }
    }
    let http = plan.uses_http();
    if let Some(path) = config
        .checks
        .keycloak_realm
        .ca_bundle
        .as_ref()
        .filter(|_| http)
    {
        let keycloak = BundleSetting {
            setting: KEYCLOAK_CA_BUNDLE_SETTING.to_owned(),
            path: path.clone(),
        };
        if !bundles.contains(&keycloak) {
            bundles.push(keycloak);
        }
    }
    let errors = check_all(&bundles);
    if errors.is_empty() {
        return Ok(());
    }
    let file = file.map_or_else(|| "config".to_owned(), |p| p.display().to_string());
    let lines: Vec<String> = errors
        .iter()
        .map(|e| match pg_flag {
            Some(flag) if e.setting == flag => format!("  - {e}: {}", error_chain(&e.source)),
            _ => format!("  - {file}: {e}: {}", error_chain(&e.source)),
        })
        .collect();
    anyhow::bail!(
        "a CA bundle cannot be used; nothing was checked:\n{}",
        lines.join("\n")
    )
}
