//! `preflight`: parses, loads, runs, reports, and maps the verdict to an exit code. All logic
//! lives in `preflight-core`.

mod ca_bundles;
mod cli;
mod outputs;

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use preflight_core::access;
use preflight_core::reads::KubeRead;
use preflight_core::check::{Context, Family};
use preflight_core::config::Config;
use std::time::Duration;

use preflight_core::connect::kube_client;
use preflight_core::contract::{ConfigMapError, Values, ValuesConfigMap, ValuesLayer};
use preflight_core::exit;
use preflight_core::outcome::error_chain;
use preflight_core::plan::{Plan, Selection, app_scope, plan};
use preflight_core::platform::Scope;
use preflight_core::report::{self, Report};
use preflight_core::runner::{RunOptions, run};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command, Common, IamPolicyArgs, PlanArgs, RbacArgs, RunArgs};

fn main() -> ExitCode {
    let matches = match Cli::command().try_get_matches() {
        Ok(matches) => matches,
        Err(e) => cli::name_the_variable(e).exit(),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PREFLIGHT_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("preflight_core=info,kube_client=off,warn")
            }),
        )
        .init();

    // Two workers: checks mostly wait on the network, but their TLS setup (parsing the system's
    // CA bundle) is CPU work that should not hold up the others; more threads would only cost
    // memory inside a hook Pod with a CPU limit of its own.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&anyhow::Error::new(e).context("cannot start the async runtime")),
    };
    let result = match cli.command {
        Some(Command::Plan(args)) => {
            let sub = matches.subcommand_matches("plan").unwrap_or(&matches);
            show_plan(&args, sub)
        }
        Some(Command::Run(args)) => {
            let sub = matches.subcommand_matches("run").unwrap_or(&matches);
            runtime.block_on(run_checks(&args, sub))
        }
        Some(Command::Rbac(args)) => {
            let sub = matches.subcommand_matches("rbac").unwrap_or(&matches);
            show_rbac(&args, sub)
        }
        Some(Command::IamPolicy(args)) => {
            let sub = matches.subcommand_matches("iam-policy").unwrap_or(&matches);
            show_iam_policy(&args, sub)
        }
        None => runtime.block_on(run_checks(&cli.run, &matches)),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => fail(&e),
    }
}

fn fail(e: &anyhow::Error) -> ExitCode {
    // Each cause once: kube-rs's errors repeat their sources in their own messages.
    let _ = writeln!(std::io::stderr(), "preflight: {}", error_chain(e.as_ref()));
    ExitCode::from(exit::USAGE as u8)
}

fn load_config(common: &Common) -> anyhow::Result<Config> {
    let mut config = match &common.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(target) = common.database.target() {
        config.checks.postgres.databases = vec![target];
    }
    Ok(config)
}

fn file_layer(common: &Common) -> anyhow::Result<ValuesLayer> {
    match &common.values {
        Some(path) => Ok(ValuesLayer::from_file(path)?),
        None => Ok(ValuesLayer::default()),
    }
}

fn validate(layer: ValuesLayer, common: &Common) -> anyhow::Result<Values> {
    layer.validate_with(common.contract.rules()).context(
        "the bootstrap values are incomplete or invalid (give --values FILE, the bootstrap ConfigMap, PREFLIGHT_* variables or flags)",
    )
}

fn make_plan(values: &Values, config: &Config, common: &Common) -> anyhow::Result<Plan> {
    let scope = match &common.app {
        Some(app) => app_scope(app)?,
        None => Scope::Gate(common.tier.unwrap_or(values.ceiling.tier)),
    };
    let selection = Selection {
        only: common.only.clone(),
        skip: common.skip.clone(),
    };
    Ok(plan(values, config, scope, &selection)?)
}

fn show_plan(args: &PlanArgs, matches: &ArgMatches) -> anyhow::Result<i32> {
    let values = validate(
        file_layer(&args.common)?.merge(args.common.layer(matches)),
        &args.common,
    )?;
    let plan = make_plan(&values, &load_config(&args.common)?, &args.common)?;
    let text = match args.output.as_str() {
        "json" => report::plan_json(&plan, &values),
        _ => report::plan_text(&plan, &values),
    };
    let mut out = anstream::stdout();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(exit::PASSED)
}

/// The plan of an offline command: values from the file and flags only.
fn offline_plan(common: &Common, matches: &ArgMatches) -> anyhow::Result<Plan> {
    let config = load_config(common)?;
    let values = validate(file_layer(common)?.merge(common.layer(matches)), common)?;
    make_plan(&values, &config, common)
}

fn print(text: &str) -> anyhow::Result<i32> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(exit::PASSED)
}

fn show_rbac(args: &RbacArgs, matches: &ArgMatches) -> anyhow::Result<i32> {
    let plan = offline_plan(&args.common, matches)?;
    let mut extra = Vec::new();
    if !args.no_cluster_values {
        let cm = args.values_configmap.clone();
        extra.push(KubeRead {
            group: "",
            resource: "configmaps",
            namespace: Some(cm.namespace),
            names: vec![cm.name],
        });
    }
    print(&access::rbac(&plan, &args.namespace, &extra))
}

fn show_iam_policy(args: &IamPolicyArgs, matches: &ArgMatches) -> anyhow::Result<i32> {
    let plan = offline_plan(&args.common, matches)?;
    match access::iam_policy(&plan) {
        Some(policy) => print(&policy),
        None => {
            let _ = writeln!(
                std::io::stderr(),
                "preflight: no AWS check is planned for tier {}: no IAM policy is needed",
                plan.tier
            );
            Ok(exit::PASSED)
        }
    }
}

/// Reads the bootstrap ConfigMap as a layer of values, noting what happened. Bounded like any
/// attempt, and inside the deadline: a blackholed API server must not stall the run before the
/// checks even start. Only a malformed ConfigMap is an error.
async fn cluster_values(
    client: &kube::Client,
    configmap: &ValuesConfigMap,
    limit: Duration,
    notes: &mut Vec<String>,
) -> anyhow::Result<Option<ValuesLayer>> {
    let object = configmap.object();
    match tokio::time::timeout(limit, configmap.read(client)).await {
        Ok(Ok(Some(layer))) => {
            notes.push(format!(
                "values read from ConfigMap {object} (key {})",
                configmap.key
            ));
            Ok(Some(layer))
        }
        Ok(Ok(None)) => {
            notes.push(format!("no bootstrap ConfigMap {object} in the cluster"));
            Ok(None)
        }
        Ok(Err(ConfigMapError::Invalid(e))) => Err(e.into()),
        // Without its contract a gate would judge the cluster by the wrong rules: a missing
        // permission stops the run, naming the rule that grants it.
        Ok(Err(ConfigMapError::Read {
            source: kube::Error::Api(status),
            ..
        })) if status.code == 403 => {
            let read = KubeRead {
                group: "",
                resource: "configmaps",
                namespace: Some(configmap.namespace.clone()),
                names: vec![configmap.name.clone()],
            };
            anyhow::bail!(
                "cannot read the bootstrap ConfigMap {object}: {}\n{}\n(or run with --no-cluster-values and --values FILE)",
                status.message,
                preflight_core::reads::grant(&read, &["get", "list", "watch"])
            )
        }
        Ok(Err(e)) => {
            notes.push(format!("bootstrap ConfigMap not used: {}", error_chain(&e)));
            Ok(None)
        }
        Err(_) => {
            notes.push(format!(
                "bootstrap ConfigMap {object} not read: no answer within {}",
                humantime::format_duration(limit)
            ));
            Ok(None)
        }
    }
}

async fn run_checks(args: &RunArgs, matches: &ArgMatches) -> anyhow::Result<i32> {
    let start = Instant::now();
    let common = &args.common;
    // Every output is opened before anything is read or checked: one that cannot be written
    // is a usage error now, not after a whole run.
    let sinks = outputs::open(
        &outputs::resolve(
            &args.outputs,
            &cli::source_of(matches, "outputs", "--output"),
        )?,
        args.termination_message_path.as_deref(),
    )?;
    let mut config = load_config(common)?;
    if let Some(t) = args.attempt_timeout {
        config.runner.attempt_timeout = t;
    }
    let mut layers = file_layer(common)?;
    let configmap = args.values_configmap.clone();
    let connect = || {
        kube_client(
            args.kubeconfig.as_deref(),
            args.context.as_deref(),
            config.runner.attempt_timeout,
        )
    };

    let mut notes = Vec::new();
    let mut client = None;
    if args.no_cluster_values {
        notes.push("bootstrap ConfigMap not read (--no-cluster-values)".to_owned());
    } else {
        let c = connect().await?;
        let limit = args.wait.map_or(config.runner.attempt_timeout, |w| {
            config.runner.attempt_timeout.min(w)
        });
        if let Some(layer) = cluster_values(&c, &configmap, limit, &mut notes).await? {
            layers = layers.merge(layer);
        }
        client = Some(c);
    }
    let values = validate(layers.merge(common.layer(matches)), common)?;
    let plan = make_plan(&values, &config, common)?;
    ca_bundles::check(&plan, &config, common.config.as_deref())?;
    // A run of checks that never touch Kubernetes (a database login from CI) needs no cluster.
    if client.is_none() && plan.checks.iter().any(|e| e.meta.uses_kubernetes) {
        client = Some(connect().await?);
    }

    let cancel = CancellationToken::new();
    let signals = tokio::spawn(cancel_on_signal(cancel.clone()));
    let options = RunOptions {
        settings: config.runner.clone(),
        wait: args.wait.map(|w| w.saturating_sub(start.elapsed())),
    };
    let mut ctx = client
        .into_iter()
        .fold(Context::default(), Context::with_kube);
    // The HTTP client is set up in the background while the rest starts. One client serves the
    // HTTPS checks and the checks that speak HTTP to a registry (`uses_http`): it carries no
    // default header, cookie or credential (each request sets its own), so sharing it shares
    // only the trust store (with checks.keycloak-realm.caBundle, a CA the platform may also use
    // for its own registry) and one parse of the system's CA bundle.
    if plan
        .checks
        .iter()
        .any(|e| e.meta.family == Family::Http || e.check.uses_http())
    {
        ctx = ctx.with_http(preflight_core::connect::http_client(
            config.checks.keycloak_realm.ca_bundle.as_deref(),
            config.runner.attempt_timeout,
        )?);
    }
    if plan.checks.iter().any(|e| !e.check.reads().iam.is_empty()) {
        ctx = ctx.with_aws(&preflight_core::connect::aws().await);
    }
    let results = run(&plan, &ctx, &options, &cancel).await;
    signals.abort();

    let report = Report::new(&plan, &values, results, notes);
    // A report that cannot be written after the run (a full disk) is said, but the run's own
    // verdict stands: CI must not read a failed gate as a usage error, nor a pass as a failure.
    for e in sinks.write(&report) {
        let _ = writeln!(
            std::io::stderr(),
            "preflight: {e:#} (the run's exit code {} stands)",
            report.exit_code
        );
    }
    Ok(report.exit_code)
}

/// Cancels the run on SIGTERM (Kubernetes stopping the hook Pod) or SIGINT (Ctrl-C), so the
/// partial report is still written.
async fn cancel_on_signal(cancel: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::warn!("SIGTERM: stopping and reporting what is known"),
        _ = tokio::signal::ctrl_c() => tracing::warn!("SIGINT: stopping and reporting what is known"),
    }
    cancel.cancel();
}
