//! Connecting to the outside systems checks talk to. Clients are built once here and handed
//! to checks through [`Context`](crate::check::Context).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::trust::{CaBundle, CaBundleError};

/// Why no Kubernetes client could be built.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The kubeconfig file is missing or malformed.
    #[error("cannot load the kubeconfig {path}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The default kubeconfig cannot be used with the requested context.
    #[error("cannot use the kubeconfig ($KUBECONFIG or ~/.kube/config)")]
    DefaultKubeconfig(#[source] kube::config::KubeconfigError),
    /// Neither a kubeconfig nor an in-cluster ServiceAccount was found.
    #[error(
        "no Kubernetes configuration: give --kubeconfig, set $KUBECONFIG, or run inside a cluster"
    )]
    Infer(#[source] kube::config::InferConfigError),
    /// The context asked for (`--context`, or the kubeconfig's `current-context`) is not in
    /// the kubeconfig.
    #[error("the kubeconfig {path} has no context {context:?} (its contexts: {})", if known.is_empty() { "none".to_owned() } else { known.join(", ") })]
    UnknownContext {
        /// The file (`$KUBECONFIG` or `~/.kube/config` when none was given).
        path: String,
        /// The context asked for.
        context: String,
        /// The contexts it has.
        known: Vec<String>,
    },
    /// The CA the kubeconfig names for its cluster cannot be used. kube-rs would skip a
    /// bundle without a certificate and trust the system's CAs instead, so that the mistake
    /// would show only as an untrusted server at the first request.
    #[error("cannot use the kubeconfig {path}: cluster {cluster:?}: {field}")]
    KubeconfigCa {
        /// The file (`$KUBECONFIG` or `~/.kube/config` when none was given).
        path: String,
        /// The cluster of the context in use.
        cluster: String,
        /// `certificate-authority` or `certificate-authority-data`.
        field: &'static str,
        /// What is wrong with it.
        #[source]
        source: Box<CaBundleError>,
    },
    /// The configuration is complete but the client cannot be built (e.g. a bad certificate).
    #[error("cannot build the Kubernetes client")]
    Client(#[source] kube::Error),
    /// A CA bundle to trust cannot be read, or holds no usable certificate.
    #[error(transparent)]
    CaBundle(#[from] CaBundleError),
}

/// Builds the Kubernetes client from `kubeconfig` (or `$KUBECONFIG`, `~/.kube/config`, or
/// the in-cluster ServiceAccount). The runner bounds every attempt and every wait; the client's
/// own connect timeout is only a backstop a little longer than an attempt, so that a silent
/// endpoint is reported by the runner as `timed-out`. Reads have no client timeout, because
/// watches legitimately stay quiet.
pub async fn kube_client(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
    attempt_timeout: Duration,
) -> Result<kube::Client, ConnectError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let mut config = match kubeconfig {
        Some(path) => {
            let shown = || path.display().to_string();
            let file = Kubeconfig::read_from(path).map_err(|source| ConnectError::Kubeconfig {
                path: shown(),
                source,
            })?;
            check_cluster_ca(&file, context, &shown())?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|source| ConnectError::Kubeconfig {
                    path: shown(),
                    source,
                })?
        }
        None if context.is_some() => {
            check_default_kubeconfig_ca(context)?;
            kube::Config::from_kubeconfig(&options)
                .await
                .map_err(ConnectError::DefaultKubeconfig)?
        }
        None => {
            check_default_kubeconfig_ca(None)?;
            kube::Config::infer().await.map_err(ConnectError::Infer)?
        }
    };
    config.connect_timeout = Some(attempt_timeout + Duration::from_secs(1));
    config.read_timeout = None;
    // The runner owns retries (only while --wait allows); a hidden retry layer in the client
    // would make a single attempt several, and its time unaccounted.
    config.default_retry = false;
    kube::Client::try_from(config).map_err(ConnectError::Client)
}

/// Reads the CA of the cluster the kubeconfig's context (`context`, or its current one)
/// names, as any CA bundle is read. Whatever else is missing is left for kube-rs to report.
fn check_cluster_ca(
    file: &Kubeconfig,
    context: Option<&str>,
    shown: &str,
) -> Result<(), ConnectError> {
    let Some(name) = context.or(file.current_context.as_deref()) else {
        return Ok(());
    };
    let Some(named) = file.contexts.iter().find(|c| c.name == name) else {
        return Err(ConnectError::UnknownContext {
            path: shown.to_owned(),
            context: name.to_owned(),
            known: file.contexts.iter().map(|c| c.name.clone()).collect(),
        });
    };
    let Some(cluster_name) = named.context.as_ref().map(|c| c.cluster.as_str()) else {
        return Ok(());
    };
    let Some(cluster) = file
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.as_ref())
    else {
        return Ok(());
    };
    let failed = |field, source| ConnectError::KubeconfigCa {
        path: shown.to_owned(),
        cluster: cluster_name.to_owned(),
        field,
        source: Box::new(source),
    };
    // kube-rs reads the data before the file when both are given.
    if let Some(data) = &cluster.certificate_authority_data {
        use base64::Engine as _;
        let field = "certificate-authority-data";
        let name = "in certificate-authority-data";
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|e| {
                failed(
                    field,
                    CaBundleError::Invalid {
                        name: name.to_owned(),
                        problem: crate::trust::PemProblem::NotBase64 {
                            reason: e.to_string(),
                        },
                    },
                )
            })?;
        CaBundle::parse(&bytes, name).map_err(|e| failed(field, e))?;
    } else if let Some(path) = &cluster.certificate_authority {
        CaBundle::read(Path::new(path)).map_err(|e| failed("certificate-authority", e))?;
    }
    Ok(())
}

/// [`check_cluster_ca`] of the kubeconfig kube-rs would load (`$KUBECONFIG` or
/// `~/.kube/config`), when there is one: without one, kube-rs goes on to the in-cluster
/// configuration.
fn check_default_kubeconfig_ca(context: Option<&str>) -> Result<(), ConnectError> {
    let Ok(file) = Kubeconfig::read() else {
        return Ok(());
    };
    let shown = if std::env::var_os("KUBECONFIG").is_some_and(|v| !v.is_empty()) {
        "$KUBECONFIG"
    } else {
        "~/.kube/config"
    };
    check_cluster_ca(&file, context, shown)
}

/// The shared AWS configuration from `aws-config`'s default chain: variables, profiles, IRSA
/// web identity in the cluster, instance metadata. The SDK's own retries are off: the runner
/// owns retries (only while `--wait` allows).
pub async fn aws() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

/// The HTTP client of the HTTPS checks, being built. Its setup parses the system's CA bundle
/// (tens of milliseconds of CPU), so it runs on a blocking thread from the moment the run is
/// planned, and the first check that needs the client waits for it.
#[derive(Clone)]
pub struct HttpClient(Shared<BoxFuture<'static, Result<reqwest::Client, Arc<str>>>>);

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpClient")
    }
}

impl HttpClient {
    /// The client, once built; the reason when the TLS library could not start.
    pub async fn client(&self) -> Result<reqwest::Client, Arc<str>> {
        self.0.clone().await
    }
}

/// Starts building the HTTP client of the HTTPS checks: the system's trust store plus
/// `ca_bundle` (a private CA), no redirects followed (a redirect to a login page is a finding,
/// not a detour), and a connect timeout that only backs up the runner's per-attempt timeout.
/// The bundle is read and parsed here, so that a bad one is a configuration error; the rest
/// of the setup runs in the background. Call it inside a Tokio runtime.
pub fn http_client(
    ca_bundle: Option<&Path>,
    attempt_timeout: Duration,
) -> Result<HttpClient, ConnectError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(attempt_timeout + Duration::from_secs(1))
        .min_tls_version(reqwest::tls::Version::TLS_1_2)
        .user_agent(concat!("preflight/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_bundle {
        for der in CaBundle::read(path)?.certificates() {
            // Each was parsed as X.509 when the bundle was read.
            if let Ok(certificate) = reqwest::Certificate::from_der(der) {
                builder = builder.add_root_certificate(certificate);
            }
        }
    }
    let building = tokio::task::spawn_blocking(move || builder.build());
    Ok(HttpClient(
        async move {
            match building.await {
                Ok(Ok(client)) => Ok(client),
                Ok(Err(e)) => Err(Arc::from(format!(
                    "cannot build the HTTP client: {}",
                    crate::outcome::error_chain(&e)
                ))),
                Err(e) => Err(Arc::from(format!("cannot build the HTTP client: {e}"))),
            }
        }
        .boxed()
        .shared(),
    ))
}
