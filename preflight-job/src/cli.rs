//! Command-line arguments, and the layer of contract values they (and their `PREFLIGHT_*`
//! variables) set.

use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory as _, Parser, Subcommand};
use preflight_core::Tier;
use preflight_core::checks::postgres::{PostgresTarget, SslMode};
use preflight_core::contract::{
    InvalidConfigMapRef, Source, Sourced, ValuesConfigMap, ValuesLayer,
};

use crate::outputs::Output;

pub(crate) const EXIT_CODES: &str = "\
Exit codes:
  0  every required check passed (warnings allowed)
  1  a required check failed
  2  usage or configuration error (flags, variables, values, config, kubeconfig, a CA bundle,
     a tier above the ceiling, an output that cannot be opened for writing); nothing was
     checked
  3  the --wait deadline was reached, or the run was interrupted (SIGTERM/SIGINT), before
     every required check settled";

/// Tells, before anything is deployed, whether a cluster is ready for a tier's apps.
///
/// `preflight --tier N` runs every check of tiers 0..N against the cluster and exits non-zero
/// when a prerequisite is missing. `preflight plan --tier N` shows what would run, offline.
#[derive(Debug, Parser)]
#[command(name = "preflight", version, args_conflicts_with_subcommands = true, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the checks of tiers 0..N against the cluster (the default command).
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// List the checks a run would perform, and why others are left out; contacts nothing.
    #[command(after_help = EXIT_CODES)]
    Plan(PlanArgs),
    /// Print the least-privilege RBAC a run of the tier needs (ServiceAccount, ClusterRole,
    /// Roles, bindings; get/list/watch only, Secrets by name), as YAML to apply.
    Rbac(RbacArgs),
    /// Print the IAM policy (JSON) the tier's AWS checks need, for preflight's IRSA role.
    IamPolicy(IamPolicyArgs),
}

#[derive(Debug, Args, Clone)]
pub(crate) struct RbacArgs {
    #[command(flatten)]
    pub common: Common,
    /// The namespace of preflight's ServiceAccount (where the hook runs).
    #[arg(long, default_value = "argocd", value_name = "NAMESPACE")]
    pub namespace: String,
    /// The bootstrap ConfigMap the run reads, `NAMESPACE/NAME[:KEY]`.
    #[arg(
        long,
        env = "PREFLIGHT_VALUES_CONFIGMAP",
        default_value = "kube-system/goldenpath-bootstrap:values.yaml",
        value_name = "NS/NAME[:KEY]",
        value_parser = parse_configmap
    )]
    pub values_configmap: ValuesConfigMap,
    /// The run does not read the bootstrap ConfigMap (no permission for it).
    #[arg(long, env = "PREFLIGHT_NO_CLUSTER_VALUES")]
    pub no_cluster_values: bool,
}

#[derive(Debug, Args, Clone)]
pub(crate) struct IamPolicyArgs {
    #[command(flatten)]
    pub common: Common,
}

/// The contract, the selection and the config: what both commands need.
#[derive(Debug, Args, Clone)]
pub(crate) struct Common {
    /// Tier to gate, cumulatively: 0, 1, 1.5, 2 or 3: what tiers 0..N need from the foundation
    /// and the tiers below. Default: the cluster's ceiling.
    #[arg(long, env = "PREFLIGHT_TIER", value_parser = parse_tier, conflicts_with = "app")]
    pub tier: Option<Tier>,

    /// Run an app's own hook instead of a tier's gate: what the app created for itself
    /// (its ExternalSecret and synced Secret, its database login; the OIDC app: the Keycloak
    /// realm), e.g. `--app backstage`.
    #[arg(long, env = "PREFLIGHT_APP", value_name = "NAME")]
    pub app: Option<String>,

    /// Bootstrap values file (the contract Terraform writes).
    #[arg(long, env = "PREFLIGHT_VALUES", value_name = "FILE")]
    pub values: Option<PathBuf>,

    /// Per-check settings file; defaults follow the platform's conventions.
    #[arg(long, env = "PREFLIGHT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Run only these checks (repeatable); see `preflight plan` for ids.
    #[arg(long = "check", value_name = "ID")]
    pub only: Vec<String>,

    /// Leave these checks out (repeatable), e.g. the AWS checks where no AWS access exists.
    #[arg(long = "skip", value_name = "ID")]
    pub skip: Vec<String>,

    #[command(flatten)]
    pub contract: ContractFlags,

    #[command(flatten)]
    pub database: DatabaseFlags,
}

/// One database to log in to, for CI and local runs; replaces `checks.postgres`. The password
/// is read from `PREFLIGHT_PG_PASSWORD` only: a flag would show in the process list.
#[derive(Debug, Args, Clone)]
#[command(
    next_help_heading = "Database (CI and local runs; replaces checks.postgres; password in $PREFLIGHT_PG_PASSWORD)"
)]
pub(crate) struct DatabaseFlags {
    /// PostgreSQL host.
    #[arg(long, env = "PREFLIGHT_PG_HOST")]
    pub pg_host: Option<String>,
    /// PostgreSQL port.
    #[arg(
        long,
        env = "PREFLIGHT_PG_PORT",
        default_value_t = 5432,
        requires = "pg_host",
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    pub pg_port: u16,
    /// Login role.
    #[arg(long, env = "PREFLIGHT_PG_USER", requires = "pg_host")]
    pub pg_user: Option<String>,
    /// Database.
    #[arg(long, env = "PREFLIGHT_PG_DATABASE", requires = "pg_host")]
    pub pg_database: Option<String>,
    /// Certificate checking: require, verify-ca or verify-full.
    #[arg(long, env = "PREFLIGHT_PG_SSL_MODE", default_value = "verify-full", value_parser = ["require", "verify-ca", "verify-full"])]
    pub pg_ssl_mode: String,
    /// PEM bundle of CAs to trust (e.g. the RDS global bundle); read before any check runs.
    #[arg(long, env = "PREFLIGHT_PG_CA_BUNDLE", value_name = "FILE")]
    pub pg_ca_bundle: Option<PathBuf>,
    /// The role must have CREATEDB.
    #[arg(long, env = "PREFLIGHT_PG_REQUIRE_CREATEDB")]
    pub pg_require_createdb: bool,
    /// Also check that the server refuses a plaintext login (advice).
    #[arg(long, env = "PREFLIGHT_PG_CHECK_PLAINTEXT")]
    pub pg_check_plaintext_refused: bool,
}

impl DatabaseFlags {
    /// The database these flags describe, if any.
    pub(crate) fn target(&self) -> Option<PostgresTarget> {
        let host = self.pg_host.clone()?;
        let database = self
            .pg_database
            .clone()
            .unwrap_or_else(|| "postgres".into());
        Some(PostgresTarget {
            host: Some(host),
            port: Some(self.pg_port),
            user: self.pg_user.clone(),
            database: Some(database.clone()),
            password_env: Some("PREFLIGHT_PG_PASSWORD".into()),
            ssl_mode: match self.pg_ssl_mode.as_str() {
                "require" => SslMode::Require,
                "verify-ca" => SslMode::VerifyCa,
                _ => SslMode::VerifyFull,
            },
            ca_bundle: self.pg_ca_bundle.clone(),
            require_createdb: self.pg_require_createdb,
            check_plaintext_refused: self.pg_check_plaintext_refused,
            ..PostgresTarget::for_app(&database)
        })
    }
}

/// Values of the bootstrap contract, overriding the file and the ConfigMap.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Contract values (override the file and the ConfigMap)")]
pub(crate) struct ContractFlags {
    /// bootstrap.mode: ephemeral or persistent.
    #[arg(long, env = "PREFLIGHT_MODE")]
    pub mode: Option<String>,
    /// bootstrap.maxTier.
    #[arg(long, env = "PREFLIGHT_MAX_TIER")]
    pub max_tier: Option<String>,
    /// bootstrap.env: dev, test, staging or prod.
    #[arg(long = "env", env = "PREFLIGHT_ENV")]
    pub environment: Option<String>,
    /// bootstrap.buildId (ephemeral clusters).
    #[arg(long, env = "PREFLIGHT_BUILD_ID")]
    pub build_id: Option<String>,
    /// dns.hostSuffix (derived when absent).
    #[arg(long, env = "PREFLIGHT_HOST_SUFFIX")]
    pub host_suffix: Option<String>,
    /// dns.baseDomain (goldenpathidp.io when absent).
    #[arg(long, env = "PREFLIGHT_BASE_DOMAIN")]
    pub base_domain: Option<String>,
    /// dns.ownerId, the ExternalDNS owner id (derived when absent).
    #[arg(long, env = "PREFLIGHT_OWNER_ID")]
    pub owner_id: Option<String>,
    /// The tier rules: v1 (maxTier derived from the mode: ephemeral 1.5, persistent 3; an
    /// explicit maxTier must agree) or adr-0180 (maxTier is the ceiling, an ephemeral
    /// cluster never gets tier 3).
    #[arg(
        long,
        env = "PREFLIGHT_CONTRACT_RULES",
        default_value = "v1",
        value_name = "RULES",
        value_parser = clap::builder::TypedValueParser::try_map(
            clap::builder::PossibleValuesParser::new(["v1", "adr-0180"]),
            |s| s.parse::<preflight_core::contract::ContractRules>(),
        )
    )]
    pub contract_rules: preflight_core::contract::ContractRules,
}

impl ContractFlags {
    /// The tier rules to validate the contract under (`--contract-rules`).
    pub(crate) fn rules(&self) -> preflight_core::contract::ContractRules {
        self.contract_rules
    }
}

#[derive(Debug, Args, Clone)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    pub common: Common,
    /// Output format: human or json.
    #[arg(help_heading = "Output", long, default_value = "human", value_parser = ["human", "json"])]
    pub output: String,
}

#[derive(Debug, Args, Clone)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub common: Common,

    /// Report output, repeatable: human, json, junit or github, each optionally =PATH
    /// (e.g. --output human --output junit=report.xml). Default: human on stdout.
    #[arg(
        help_heading = "Running",
        long = "output",
        short = 'o',
        env = "PREFLIGHT_OUTPUT",
        value_delimiter = ',',
        value_name = "FORMAT[=PATH]",
        value_parser = crate::outputs::spec
    )]
    pub outputs: Vec<Output>,

    /// Keep re-checking failures that can still change until this deadline (e.g. 5m; at
    /// most 7 days). Default: a single attempt per check.
    #[arg(help_heading = "Running", long, env = "PREFLIGHT_WAIT", value_parser = parse_duration, allow_hyphen_values = true, value_name = "DURATION")]
    pub wait: Option<Duration>,

    /// Longest a single attempt of a check may take (overrides runner.attemptTimeout; at
    /// most 7 days).
    #[arg(help_heading = "Running", long, env = "PREFLIGHT_ATTEMPT_TIMEOUT", value_parser = parse_duration, allow_hyphen_values = true, value_name = "DURATION")]
    pub attempt_timeout: Option<Duration>,

    /// Kubeconfig file. Default: $KUBECONFIG, ~/.kube/config, or the in-cluster ServiceAccount.
    #[arg(help_heading = "Running", long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use.
    #[arg(help_heading = "Running", long, value_name = "NAME")]
    pub context: Option<String>,

    /// The bootstrap ConfigMap holding the contract values, `NAMESPACE/NAME[:KEY]`.
    #[arg(
        help_heading = "Running",
        long,
        env = "PREFLIGHT_VALUES_CONFIGMAP",
        default_value = "kube-system/goldenpath-bootstrap:values.yaml",
        value_name = "NS/NAME[:KEY]",
        value_parser = parse_configmap
    )]
    pub values_configmap: ValuesConfigMap,

    /// Do not read the bootstrap ConfigMap.
    #[arg(help_heading = "Running", long, env = "PREFLIGHT_NO_CLUSTER_VALUES")]
    pub no_cluster_values: bool,

    /// Where to write the short summary Kubernetes shows as the container's termination
    /// message. The default path is written only when it exists (i.e. inside a Pod).
    #[arg(
        help_heading = "Running",
        long,
        env = "PREFLIGHT_TERMINATION_MESSAGE_PATH",
        value_name = "FILE"
    )]
    pub termination_message_path: Option<PathBuf>,
}

fn parse_tier(s: &str) -> Result<Tier, String> {
    s.parse()
        .map_err(|e: preflight_core::tier::InvalidTier| e.to_string())
}

/// The longest `--wait` or `--attempt-timeout`: far beyond any hook's or CI job's own limit,
/// and far below the durations a deadline cannot be computed for.
const LONGEST: Duration = Duration::from_secs(7 * 24 * 3600);

/// A duration such as `30s`, `5m` or `1h30m`: positive, and at most [`LONGEST`].
fn parse_duration(s: &str) -> Result<Duration, String> {
    if s.trim_start().starts_with('-') {
        return Err("a duration is not negative; write e.g. 30s, 5m or 1h30m".to_owned());
    }
    let duration = humantime::parse_duration(s.trim())
        .map_err(|e| format!("not a duration ({e}); write e.g. 30s, 5m or 1h30m"))?;
    if duration.is_zero() {
        return Err("no time at all; give at least 1s".to_owned());
    }
    if duration > LONGEST {
        return Err("longer than the longest accepted, 7days".to_owned());
    }
    Ok(duration)
}

fn parse_configmap(s: &str) -> Result<ValuesConfigMap, String> {
    s.parse().map_err(|e: InvalidConfigMapRef| e.to_string())
}

/// How to name the argument `id` in a message: its flag, or its variable when the value
/// came from there.
pub(crate) fn source_of(matches: &ArgMatches, id: &str, flag: &str) -> String {
    let var = Cli::command()
        .get_arguments()
        .find(|a| a.get_id() == id)
        .and_then(clap::Arg::get_env)
        .map(|v| v.to_string_lossy().into_owned());
    match (matches.value_source(id), var) {
        (Some(ValueSource::EnvVariable), Some(var)) => format!("${var}"),
        _ => flag.to_owned(),
    }
}

/// Names the variable a bad value came from: clap names only the flag, even when the value
/// was the flag's `PREFLIGHT_*` variable (clap-rs/clap#5202), and a hook's author looking for
/// `--wait` in the Pod's arguments would not find it.
pub(crate) fn name_the_variable(err: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        err.kind(),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue
    ) {
        return err;
    }
    let (Some(ContextValue::String(arg)), Some(ContextValue::String(value))) = (
        err.get(ContextKind::InvalidArg),
        err.get(ContextKind::InvalidValue),
    ) else {
        return err;
    };
    let Some(long) = arg
        .split_whitespace()
        .next()
        .and_then(|flag| flag.strip_prefix("--"))
    else {
        return err;
    };
    let command = Cli::command();
    let Some(var) = std::iter::once(&command)
        .chain(command.get_subcommands())
        .flat_map(clap::Command::get_arguments)
        .find(|a| a.get_long() == Some(long))
        .and_then(clap::Arg::get_env)
        .map(|v| v.to_string_lossy().into_owned())
    else {
        return err;
    };
    let flag = format!("--{long}");
    let on_command_line = std::env::args()
        .skip(1)
        .any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    let from_variable = std::env::var(&var).is_ok_and(|v| v.contains(value.as_str()));
    if on_command_line || !from_variable {
        return err;
    }
    let rendered = err.render().to_string();
    let message = rendered
        .strip_prefix("error: ")
        .unwrap_or(&rendered)
        .replacen(&format!("'{arg}'"), &format!("'{arg}' (from ${var})"), 1);
    clap::Error::raw(err.kind(), message)
}

impl Common {
    /// The values these flags and variables set, each with its true source.
    pub(crate) fn layer(&self, matches: &ArgMatches) -> ValuesLayer {
        let sourced = |id: &str, flag: &str, env: &str, value: &Option<String>| {
            value.clone().map(|v| {
                let source = match matches.value_source(id) {
                    Some(ValueSource::EnvVariable) => Source::Env { var: env.into() },
                    _ => Source::Flag { flag: flag.into() },
                };
                Sourced::new(v, source)
            })
        };
        ValuesLayer {
            mode: sourced("mode", "--mode", "PREFLIGHT_MODE", &self.contract.mode),
            max_tier: sourced(
                "max_tier",
                "--max-tier",
                "PREFLIGHT_MAX_TIER",
                &self.contract.max_tier,
            ),
            env: sourced(
                "environment",
                "--env",
                "PREFLIGHT_ENV",
                &self.contract.environment,
            ),
            build_id: sourced(
                "build_id",
                "--build-id",
                "PREFLIGHT_BUILD_ID",
                &self.contract.build_id,
            ),
            host_suffix: sourced(
                "host_suffix",
                "--host-suffix",
                "PREFLIGHT_HOST_SUFFIX",
                &self.contract.host_suffix,
            ),
            base_domain: sourced(
                "base_domain",
                "--base-domain",
                "PREFLIGHT_BASE_DOMAIN",
                &self.contract.base_domain,
            ),
            owner_id: sourced(
                "owner_id",
                "--owner-id",
                "PREFLIGHT_OWNER_ID",
                &self.contract.owner_id,
            ),
            ..ValuesLayer::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_are_positive_and_bounded() {
        for (text, parsed) in [
            ("30s", Ok(Duration::from_secs(30))),
            (" 1h30m ", Ok(Duration::from_secs(5400))),
            ("7days", Ok(LONGEST)),
            ("500ms", Ok(Duration::from_millis(500))),
        ] {
            assert_eq!(parse_duration(text), parsed, "{text:?}");
        }
        for (text, why) in [
            ("soon", "not a duration (expected number at 0)"),
            ("", "not a duration"),
            ("-5s", "a duration is not negative"),
            ("0s", "no time at all"),
            ("7days 1s", "longer than the longest accepted"),
            ("500000000000y", "longer than the longest accepted"),
            ("99999999999999999999999y", "not a duration"),
        ] {
            let e = parse_duration(text).expect_err(text);
            assert!(e.starts_with(why), "{text:?}: {e}");
        }
    }
}
