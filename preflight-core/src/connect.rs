//! Connecting to the outside systems checks talk to. Clients are built once here and handed
//! to checks through [`Context`](crate::check::Context).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};

use kube::config::{KubeConfigOptions, Kubeconfig};

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
    /// The configuration is complete but the client cannot be built (e.g. a bad certificate).
    #[error("cannot build the Kubernetes client")]
    Client(#[source] kube::Error),
    /// A CA bundle to trust cannot be read.
    #[error("cannot read the CA bundle {path}")]
    CaBundleRead {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A CA bundle holds no usable PEM certificate.
    #[error("the CA bundle {path} holds no PEM certificate preflight can use")]
    CaBundleInvalid {
        /// The file.
        path: String,
        /// The parser's complaint, when it had one.
        #[source]
        source: Option<reqwest::Error>,
    },
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
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|source| ConnectError::Kubeconfig {
                    path: shown(),
                    source,
                })?
        }
        None if context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(ConnectError::DefaultKubeconfig)?,
        None => kube::Config::infer().await.map_err(ConnectError::Infer)?,
    };
    config.connect_timeout = Some(attempt_timeout + Duration::from_secs(1));
    config.read_timeout = None;
    // The runner owns retries (only while --wait allows); a hidden retry layer in the client
    // would make a single attempt several, and its time unaccounted.
    config.default_retry = false;
    kube::Client::try_from(config).map_err(ConnectError::Client)
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
        let shown = || path.display().to_string();
        let pem = std::fs::read(path).map_err(|source| ConnectError::CaBundleRead {
            path: shown(),
            source,
        })?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            ConnectError::CaBundleInvalid {
                path: shown(),
                source: Some(e),
            }
        })?;
        if certificates.is_empty() {
            return Err(ConnectError::CaBundleInvalid {
                path: shown(),
                source: None,
            });
        }
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
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
