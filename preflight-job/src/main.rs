//! `preflight`: parses, loads, runs, reports, and maps the verdict to an exit code. All logic
//! lives in `preflight-core`.

mod access;
mod ca_bundles;
mod cli;
mod outputs;
mod progress;

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use preflight_core::check::Context;
use preflight_core::config::Config;
use preflight_core::reads::KubeRead;
use std::time::Duration;

use preflight_core::connect::kube_client;
use preflight_core::contract::{ConfigMapError, Values, ValuesConfigMap, ValuesLayer};
use preflight_core::exit;
use preflight_core::outcome::error_chain;
use preflight_core::plan::{Plan, Selection, app_scope, plan};
use preflight_core::platform::Scope;
use preflight_core::report::{self, Report};
use preflight_core::runner::{RunOptions, run, run_with_events};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command, Common, PlanArgs, RunArgs};

fn main() -> ExitCode {
    let system_trust = system_trust_on_demand();
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
                // On a terminal the live progress line says what the run waits for; the
                // per-attempt log lines would only break it up. In a Pod's log they are the
                // record of each attempt.
                let core = if std::io::stderr().is_terminal() {
                    "warn"
                } else {
                    "info"
                };
                tracing_subscriber::EnvFilter::new(format!(
                    "preflight_core={core},kube_client=off,warn"
                ))
            }),
        )
        .init();
    match &system_trust {
        Some(trust) => {
            tracing::debug!(dir = %trust.dir.display(), "the system's CAs are read on demand from their hashed directory")
        }
        None => tracing::debug!("the system's CAs are read as the TLS libraries find them"),
    }

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
            signalled(&runtime).and_then(|cancel| runtime.block_on(run_checks(&args, sub, cancel)))
        }
        Some(Command::Rbac(args)) => {
            let sub = matches.subcommand_matches("rbac").unwrap_or(&matches);
            access::show_rbac(&args, sub)
        }
        Some(Command::IamPolicy(args)) => {
            let sub = matches.subcommand_matches("iam-policy").unwrap_or(&matches);
            access::show_iam_policy(&args, sub)
        }
        None => signalled(&runtime)
            .and_then(|cancel| runtime.block_on(run_checks(&cli.run, &matches, cancel))),
    };
    // A step stopped by a signal may leave a thread blocked (a FIFO that is never written):
    // the process ends now rather than wait for it.
    runtime.shutdown_background();
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => fail(&e),
    }
}

fn signalled(runtime: &tokio::runtime::Runtime) -> anyhow::Result<CancellationToken> {
    cancel_on_signal(runtime).context("cannot handle SIGTERM and SIGINT")
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

fn print(text: &str) -> anyhow::Result<i32> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(exit::PASSED)
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

/// Where a run is before its checks start, and what it knows by then: what a report of a run
/// stopped there can say.
struct Stage {
    /// What the run is doing, as "stopped while …" reads it.
    doing: &'static str,
    /// The settings, once loaded.
    config: Option<Config>,
    /// The bootstrap values, once known.
    values: Option<Values>,
    notes: Vec<String>,
}

/// A run ready to start its checks.
struct Ready {
    plan: Plan,
    values: Values,
    ctx: Context,
    options: RunOptions,
}

impl Default for Stage {
    fn default() -> Self {
        Stage {
            doing: "starting",
            config: None,
            values: None,
            notes: Vec::new(),
        }
    }
}

/// Lets OpenSSL read the system's CAs one at a time from their hashed directory, when a chain
/// needs one, instead of decoding the whole bundle for every connector (kube's, and each of
/// native-tls's twice): see `preflight_core::tls`. Left alone when the operator set
/// `SSL_CERT_FILE` or `SSL_CERT_DIR`, or the system has no hashed directory. Credential
/// plugins inherit the variables; OpenSSL, Go and rustls read the same CAs from the directory.
#[expect(
    unsafe_code,
    reason = "the variables are set before any other thread of the process exists"
)]
fn system_trust_on_demand() -> Option<preflight_core::tls::SystemTrust> {
    let trust = preflight_core::tls::SystemTrust::on_demand()?;
    for (name, value) in trust.variables() {
        // SAFETY: called first in `main`, before the runtime or any other thread starts, so
        // nothing reads the environment meanwhile.
        unsafe { std::env::set_var(name, value) };
    }
    Some(trust)
}

type SharedStage = std::sync::Arc<std::sync::Mutex<Stage>>;

fn set_doing(stage: &SharedStage, doing: &'static str) {
    if let Ok(mut s) = stage.lock() {
        s.doing = doing;
    }
}

/// Everything before the checks: settings, values (file, cluster, flags), the plan, and the
/// clients the plan needs. Each step says where it is in `stage`, for a report of a run
/// stopped there. It runs on a thread of its own (see `run_checks`), so its file reads may
/// block (a FIFO, a stuck mount) without holding up the signal handling.
async fn prepare(
    args: RunArgs,
    flags: ValuesLayer,
    pg_flag: Option<String>,
    start: Instant,
    stage: SharedStage,
) -> anyhow::Result<Ready> {
    let common = args.common.clone();
    set_doing(&stage, "loading the settings");
    let mut config = load_config(&common)?;
    if let Some(t) = args.attempt_timeout {
        config.runner.attempt_timeout = t;
    }
    if let Ok(mut s) = stage.lock() {
        s.config = Some(config.clone());
    }
    set_doing(&stage, "loading the values file");
    let mut layers = file_layer(&common)?;
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
        set_doing(&stage, "connecting to the Kubernetes API");
        let c = connect().await?;
        set_doing(&stage, "reading the bootstrap ConfigMap");
        let limit = args.wait.map_or(config.runner.attempt_timeout, |w| {
            config.runner.attempt_timeout.min(w)
        });
        if let Some(layer) = cluster_values(&c, &configmap, limit, &mut notes).await? {
            layers = layers.merge(layer);
        }
        client = Some(c);
    }
    set_doing(&stage, "planning");
    let values = validate(layers.merge(flags), &common)?;
    if let Ok(mut s) = stage.lock() {
        s.values = Some(values.clone());
        s.notes.clone_from(&notes);
    }
    let plan = make_plan(&values, &config, &common)?;
    set_doing(&stage, "reading the CA bundles");
    ca_bundles::check(&plan, &config, common.config.as_deref(), pg_flag.as_deref())?;
    set_doing(&stage, "building the clients");
    // A run of checks that never touch Kubernetes (a database login from CI) needs no cluster.
    if client.is_none() && plan.checks.iter().any(|e| e.meta.uses_kubernetes) {
        set_doing(&stage, "connecting to the Kubernetes API");
        client = Some(connect().await?);
        set_doing(&stage, "building the clients");
    }
    let mut ctx = client
        .into_iter()
        .fold(Context::default(), Context::with_kube);
    // The HTTP client is set up in the background while the rest starts. One client serves the
    // HTTPS checks and the checks that speak HTTP to a registry (`uses_http`): it carries no
    // default header, cookie or credential (each request sets its own), so sharing it shares
    // only the trust store (with checks.keycloak-realm.caBundle, a CA the platform may also use
    // for its own registry) and one parse of the system's CA bundle.
    if plan.uses_http() {
        let tls = ctx.tls().clone();
        ctx = ctx.with_http(preflight_core::connect::http_client(
            config.checks.keycloak_realm.ca_bundle.as_deref(),
            config.runner.attempt_timeout,
            tls,
        )?);
    }
    if plan.checks.iter().any(|e| !e.check.reads().iam.is_empty()) {
        ctx = ctx.with_aws(&preflight_core::connect::aws().await);
    }
    if let Ok(mut s) = stage.lock() {
        s.notes.clone_from(&notes);
    }
    let options = RunOptions {
        settings: config.runner.clone(),
        wait: args.wait.map(|w| w.saturating_sub(start.elapsed())),
        // Without --wait, the ConfigMap read and the checks share one attempt timeout: an API
        // server that never answers costs one timeout, not one per step.
        spent: start.elapsed(),
    };
    Ok(Ready {
        plan,
        values,
        ctx,
        options,
    })
}

async fn run_checks(
    args: &RunArgs,
    matches: &ArgMatches,
    cancel: CancellationToken,
) -> anyhow::Result<i32> {
    let start = Instant::now();
    let started_at = jiff::Timestamp::now();
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
    let flags = common.layer(matches);
    // How a bad `--pg-ca-bundle` is named: by its flag, or its variable.
    let pg_flag = common
        .database
        .target()
        .is_some()
        .then(|| cli::source_of(matches, "pg_ca_bundle", "--pg-ca-bundle"));
    let stage = SharedStage::default();
    // The preparation runs on a thread of its own, so that however it hangs (a FIFO for a
    // values file, an API server that never answers), a signal ends the run here. Not on a
    // worker thread: the AWS SDK and kube read their config files synchronously, and a worker
    // stuck in such a read can leave no thread to poll the I/O driver, which is where signals
    // arrive.
    let handle = tokio::runtime::Handle::current();
    let task = prepare(args.clone(), flags, pg_flag, start, stage.clone());
    let mut preparing = tokio::task::spawn_blocking(move || handle.block_on(task));
    let ready = tokio::select! {
        biased;
        () = cancel.cancelled() => {
            preparing.abort();
            None
        }
        prepared = &mut preparing => Some(prepared??),
    };
    let report = match ready {
        Some(ready) => {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let progress = args.wait.map(|w| {
                let planned = ready
                    .plan
                    .checks
                    .iter()
                    .map(|e| (e.meta.id, e.meta.needs.clone()))
                    .collect();
                tokio::spawn(progress::show(planned, rx, start + w))
            });
            let results =
                run_with_events(&ready.plan, &ready.ctx, &ready.options, &cancel, tx).await;
            if let Some(progress) = progress {
                let _ = progress.await;
            }
            let notes = stage.lock().map(|s| s.notes.clone()).unwrap_or_default();
            Report::new(&ready.plan, &ready.values, results, notes)
        }
        None => stopped_early(common, &stage, started_at, start, &cancel).await,
    };
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

/// The report of a run stopped by a signal before its checks started. With the values known,
/// it lists every planned check as interrupted before its first attempt (the runner, given
/// the cancelled token, says so for each); before that, it says only where the run stopped.
async fn stopped_early(
    common: &Common,
    stage: &SharedStage,
    started_at: jiff::Timestamp,
    start: Instant,
    cancel: &CancellationToken,
) -> Report {
    let (doing, config, values, mut notes) = match stage.lock() {
        Ok(s) => (s.doing, s.config.clone(), s.values.clone(), s.notes.clone()),
        Err(_) => ("starting", None, None, Vec::new()),
    };
    notes.push(format!("stopped while {doing}: no check ran"));
    if let Some(values) = &values
        && let Ok(plan) = make_plan(values, &config.unwrap_or_default(), common)
    {
        let results = run(&plan, &Context::default(), &RunOptions::default(), cancel).await;
        let mut report = Report::new(&plan, values, results, notes);
        // No check ran: even a plan of advisory checks only has not passed.
        report.verdict = preflight_core::report::Verdict::Unsettled;
        report.exit_code = report.verdict.exit_code();
        return report;
    }
    let app = common.app.as_deref().and_then(|a| app_scope(a).ok());
    let (tier, app) = match app {
        Some(Scope::App(app)) => (Some(app.tier), Some(app.name)),
        _ => (common.tier, None),
    };
    Report::stopped_early(
        tier,
        app,
        values.as_ref(),
        started_at,
        start.elapsed(),
        notes,
    )
}

/// Handles SIGTERM (Kubernetes stopping the hook Pod) and SIGINT (Ctrl-C) from the moment it
/// returns: each cancels the run, so that the partial report is still written. Registered
/// before anything else happens, so that no moment of a run dies with the default action.
fn cancel_on_signal(runtime: &tokio::runtime::Runtime) -> std::io::Result<CancellationToken> {
    use tokio::signal::unix::{SignalKind, signal};
    let _guard = runtime.enter();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    runtime.spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::warn!("SIGTERM: stopping and reporting what is known"),
            _ = int.recv() => tracing::warn!("SIGINT: stopping and reporting what is known"),
        }
        token.cancel();
        // The handlers stay installed: a second signal must still end the process, even if
        // writing the report hangs (an output on a stuck mount).
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        let _ = writeln!(
            std::io::stderr(),
            "preflight: second signal: exiting without a report"
        );
        std::process::exit(exit::UNSETTLED);
    });
    Ok(cancel)
}
