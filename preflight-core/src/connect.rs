//! Connecting to the outside systems checks talk to. Clients are built once here and handed
//! to checks through [`Context`](crate::check::Context).

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};

use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};

use crate::tls::{Bundle, Connectors, Roots, TlsError, TlsSettings};
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
    /// A kubeconfig is not valid YAML or not a kubeconfig. The parser's message is given
    /// without its snippet of the file or any value it quotes: a kubeconfig holds tokens.
    #[error("cannot load the kubeconfig {path}: {message}")]
    KubeconfigSyntax {
        /// The file, or `$KUBECONFIG or ~/.kube/config`.
        path: String,
        /// Where and what, without the file's text.
        message: String,
    },
    /// The default kubeconfig cannot be used with the requested context.
    #[error("cannot use the kubeconfig ($KUBECONFIG or ~/.kube/config)")]
    DefaultKubeconfig(#[source] kube::config::KubeconfigError),
    /// Neither a kubeconfig nor an in-cluster ServiceAccount was found.
    #[error(
        "no Kubernetes configuration: give --kubeconfig, set $KUBECONFIG, or run inside a cluster (KUBERNETES_SERVICE_HOST and the ServiceAccount's files)"
    )]
    NoConfiguration(#[source] KubeconfigError),
    /// `KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT` make no URL.
    #[error("the in-cluster API server address {host:?} port {port:?} is unusable: {why}")]
    InClusterEndpoint {
        /// `KUBERNETES_SERVICE_HOST`.
        host: String,
        /// `KUBERNETES_SERVICE_PORT`.
        port: String,
        /// What is wrong with them.
        why: String,
    },
    /// A file of the in-cluster ServiceAccount cannot be read.
    #[error("cannot read the ServiceAccount's {path}")]
    InClusterFile {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The ServiceAccount's token file is empty.
    #[error("the ServiceAccount's token file {path} is empty")]
    InClusterTokenEmpty {
        /// The file.
        path: String,
    },
    /// The ServiceAccount's CA bundle holds no usable certificate.
    #[error("the ServiceAccount's CA bundle {path} is unusable: {reason}")]
    InClusterCa {
        /// The file.
        path: String,
        /// The parser's complaint.
        reason: String,
    },
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

/// Where the kubelet mounts a Pod's ServiceAccount credentials: `token`, `ca.crt` and
/// `namespace`.
pub const SERVICEACCOUNT_ROOT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The variable that moves [`SERVICEACCOUNT_ROOT`] (a projected volume mounted elsewhere, or a
/// test laying the files out).
pub const SERVICEACCOUNT_ROOT_ENV: &str = "PREFLIGHT_SERVICEACCOUNT_ROOT";

/// The in-cluster configuration of a Pod: the API server from `KUBERNETES_SERVICE_HOST` and
/// `KUBERNETES_SERVICE_PORT` (what client-go reads), and the ServiceAccount's token, CA and
/// namespace from the files under `root`.
///
/// kube's own `Config::incluster` reads fixed paths; this reads them under a root of the
/// caller's choosing, so that the path a hook takes can be run and tested anywhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InCluster {
    /// `KUBERNETES_SERVICE_HOST`: an IP address or a host name.
    pub host: String,
    /// `KUBERNETES_SERVICE_PORT`.
    pub port: String,
    /// The directory holding `token`, `ca.crt` and `namespace`.
    pub root: PathBuf,
}

impl InCluster {
    /// The in-cluster configuration the environment describes: `None` outside a Pod (no
    /// `KUBERNETES_SERVICE_HOST`). The root is [`SERVICEACCOUNT_ROOT_ENV`] or
    /// [`SERVICEACCOUNT_ROOT`].
    #[must_use]
    pub fn from_env() -> Option<InCluster> {
        let host = std::env::var("KUBERNETES_SERVICE_HOST")
            .ok()
            .filter(|h| !h.is_empty())?;
        let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_default();
        let root = std::env::var_os(SERVICEACCOUNT_ROOT_ENV)
            .filter(|r| !r.is_empty())
            .map_or_else(|| PathBuf::from(SERVICEACCOUNT_ROOT), PathBuf::from);
        Some(InCluster { host, port, root })
    }

    /// The file of the ServiceAccount's bearer token.
    #[must_use]
    pub fn token_path(&self) -> PathBuf {
        self.root.join("token")
    }

    /// The file of the cluster's CA bundle.
    #[must_use]
    pub fn ca_path(&self) -> PathBuf {
        self.root.join("ca.crt")
    }

    /// The file of the Pod's namespace.
    #[must_use]
    pub fn namespace_path(&self) -> PathBuf {
        self.root.join("namespace")
    }

    /// The API server's URL, as client-go forms it (an IPv6 address bracketed).
    pub fn url(&self) -> Result<http::Uri, ConnectError> {
        let invalid = |why: &str| ConnectError::InClusterEndpoint {
            host: self.host.clone(),
            port: self.port.clone(),
            why: why.to_owned(),
        };
        let port: u16 = self
            .port
            .parse()
            .map_err(|_| invalid("KUBERNETES_SERVICE_PORT is not a port number"))?;
        let authority = match self.host.parse::<std::net::IpAddr>() {
            Ok(ip) => std::net::SocketAddr::new(ip, port).to_string(),
            Err(_) => format!("{}:{port}", self.host),
        };
        format!("https://{authority}")
            .parse()
            .map_err(|_| invalid("not a valid URL"))
    }

    /// The client configuration: the API server, its CA (verified; a bundle without a
    /// certificate is an error here, not a TLS failure later), the token file (read now so
    /// that a missing one is a configuration error, then re-read by the client as the kubelet
    /// rotates it) and the namespace.
    pub fn config(&self) -> Result<kube::Config, ConnectError> {
        let unreadable = |path: PathBuf| {
            move |source| ConnectError::InClusterFile {
                path: path.display().to_string(),
                source,
            }
        };
        let url = self.url()?;
        let token_path = self.token_path();
        let token = std::fs::read(&token_path).map_err(unreadable(token_path.clone()))?;
        if token.iter().all(u8::is_ascii_whitespace) {
            return Err(ConnectError::InClusterTokenEmpty {
                path: token_path.display().to_string(),
            });
        }
        let ca_path = self.ca_path();
        let pem = std::fs::read(&ca_path).map_err(unreadable(ca_path.clone()))?;
        let invalid_ca = |reason: String| ConnectError::InClusterCa {
            path: ca_path.display().to_string(),
            reason,
        };
        let certificates =
            openssl::x509::X509::stack_from_pem(&pem).map_err(|e| invalid_ca(e.to_string()))?;
        if certificates.is_empty() {
            return Err(invalid_ca("no PEM certificate in it".to_owned()));
        }
        let der = certificates
            .iter()
            .map(|c| c.to_der().map_err(|e| invalid_ca(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        // The namespace is informative (preflight names every namespace it reads); a Pod
        // always has the file, a test may leave it out.
        let namespace = std::fs::read_to_string(self.namespace_path())
            .map(|n| n.trim().to_owned())
            .ok()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".to_owned());
        let mut config = kube::Config::new(url);
        config.default_namespace = namespace;
        config.root_cert = Some(der);
        config.auth_info = kube::config::AuthInfo {
            token_file: Some(token_path.display().to_string()),
            ..kube::config::AuthInfo::default()
        };
        Ok(config)
    }
}

/// Builds the Kubernetes client from `kubeconfig`, or else `$KUBECONFIG` or `~/.kube/config`,
/// or else, when there is no kubeconfig at all, the in-cluster ServiceAccount
/// ([`InCluster::from_env`]). The runner bounds every attempt and every wait; the client's
/// own connect timeout is only a backstop a little longer than an attempt, so that a silent
/// endpoint is reported by the runner as `timed-out`. Reads have no client timeout, because
/// watches legitimately stay quiet.
pub async fn kube_client(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
    attempt_timeout: Duration,
) -> Result<kube::Client, ConnectError> {
    let mut config = kube_config(kubeconfig, context).await?;
    config.connect_timeout = Some(attempt_timeout + Duration::from_secs(1));
    config.read_timeout = None;
    // The runner owns retries (only while --wait allows); a hidden retry layer in the client
    // would make a single attempt several, and its time unaccounted.
    config.default_retry = false;
    let namespace = config.default_namespace.clone();
    match kube::Client::try_from(config) {
        Ok(client) => Ok(client),
        Err(kube::Error::Auth(e)) if is_credential_plugin_failure(&e) => {
            Ok(failing_client(&e, namespace))
        }
        Err(e) => Err(ConnectError::Client(e)),
    }
}

/// Whether building the client failed because the kubeconfig's credential plugin did: it runs
/// once when the client is built, and again whenever its token is about to expire.
fn is_credential_plugin_failure(e: &kube::client::AuthError) -> bool {
    use kube::client::AuthError;
    matches!(
        e,
        AuthError::AuthExecStart(_)
            | AuthError::AuthExecRun { .. }
            | AuthError::AuthExecParse(_)
            | AuthError::AuthExec(_)
            | AuthError::ExecPluginFailed
    )
}

/// A client whose every request fails as the credential plugin did. The plugin's failure is
/// the cluster's answer for this run (an expired SSO session, a missing AWS profile), not a
/// usage error: each Kubernetes check reports it as `auth-failed`, with the plugin's own
/// explanation, exactly as when a refresh of its token fails in the middle of a run.
fn failing_client(e: &kube::client::AuthError, namespace: String) -> kube::Client {
    let said: Arc<str> = Arc::from(crate::outcome::error_chain(e));
    let service = tower::service_fn(move |_: http::Request<kube::client::Body>| {
        let said = said.to_string();
        async move {
            // Boxed as the client's own layers box errors, so that it unwraps it again.
            let error: tower::BoxError =
                Box::new(kube::Error::Auth(kube::client::AuthError::AuthExec(said)));
            Err::<http::Response<kube::client::Body>, _>(error)
        }
    });
    kube::Client::new(service, namespace)
}

/// The client configuration [`kube_client`] builds on.
async fn kube_config(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<kube::Config, ConnectError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let (file, shown) = match kubeconfig {
        Some(path) => {
            let shown = path.display().to_string();
            let file = Kubeconfig::read_from(path)
                .map_err(|source| kubeconfig_error(Some(shown.clone()), source))?;
            (file, Some(shown))
        }
        None => match Kubeconfig::read() {
            Ok(file) => (file, None),
            // No kubeconfig anywhere: inside a Pod, its ServiceAccount. A kubeconfig that
            // exists but is broken stays an error, never silently replaced.
            Err(e) if context.is_none() && is_absent(&e) => {
                return match InCluster::from_env() {
                    Some(in_cluster) => in_cluster.config(),
                    None => Err(ConnectError::NoConfiguration(e)),
                };
            }
            Err(e) => return Err(kubeconfig_error(None, e)),
        },
    };
    // kube-rs would skip a CA without a certificate and trust the system's CAs instead.
    let default_name = if std::env::var_os("KUBECONFIG").is_some_and(|v| !v.is_empty()) {
        "$KUBECONFIG"
    } else {
        "~/.kube/config"
    };
    check_cluster_ca(&file, context, shown.as_deref().unwrap_or(default_name))?;
    let file = non_interactive_exec(file, std::io::stdin().is_terminal());
    kube::Config::from_custom_kubeconfig(file, &options)
        .await
        .map_err(|source| kubeconfig_error(shown, source))
}

/// Wraps an error of the kubeconfig at `path` (`None`: the default one), keeping its text out
/// of a parse error's message.
fn kubeconfig_error(path: Option<String>, source: KubeconfigError) -> ConnectError {
    match (source, path) {
        (KubeconfigError::Parse(e), path) => ConnectError::KubeconfigSyntax {
            path: path.unwrap_or_else(|| "$KUBECONFIG or ~/.kube/config".to_owned()),
            message: crate::outcome::yaml_error_without_values(&e),
        },
        (source, Some(path)) => ConnectError::Kubeconfig { path, source },
        (source, None) => ConnectError::DefaultKubeconfig(source),
    }
}

/// Whether loading the default kubeconfig failed only because there is none.
fn is_absent(e: &KubeconfigError) -> bool {
    let unset = std::env::var_os("KUBECONFIG").is_none_or(|v| v.is_empty());
    unset
        && match e {
            KubeconfigError::FindPath => true,
            KubeconfigError::ReadConfig(io, _) => io.kind() == std::io::ErrorKind::NotFound,
            _ => false,
        }
}

/// Runs credential plugins without a terminal unless one is there and they may use it, as
/// client-go does (`interactiveMode` absent or `IfAvailable` means interactive only on a
/// terminal). kube treats every mode but `Never` as interactive and then lets the plugin
/// write to preflight's own stderr, so that a failing plugin's explanation never reaches the
/// report. Run non-interactively, its stderr is captured, and the `auth-failed` outcome says
/// why it failed.
fn non_interactive_exec(mut file: Kubeconfig, terminal: bool) -> Kubeconfig {
    use kube::config::ExecInteractiveMode;
    for named in &mut file.auth_infos {
        let exec = named.auth_info.as_mut().and_then(|a| a.exec.as_mut());
        if let Some(exec) = exec {
            let interactive = match exec.interactive_mode {
                Some(ExecInteractiveMode::Always) => true,
                Some(ExecInteractiveMode::Never) => false,
                Some(ExecInteractiveMode::IfAvailable) | None => terminal,
            };
            if !interactive {
                exec.interactive_mode = Some(ExecInteractiveMode::Never);
            }
        }
    }
    file
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

/// The shared AWS configuration from `aws-config`'s default chain: variables, profiles, IRSA
/// web identity in the cluster, instance metadata. The SDK's own retries are off: the runner
/// owns retries (only while `--wait` allows).
pub async fn aws() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

/// The HTTP client of the HTTPS checks, being built. Its TLS connector is CPU work, so it is
/// built on a blocking thread from the moment the run is planned, and the first check that
/// needs the client waits for it.
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
/// `ca_bundle` (a private CA), through the run's shared connector for that trust (`tls`), no
/// redirects followed (a redirect to a login page is a finding, not a detour), and a connect
/// timeout that only backs up the runner's per-attempt timeout. The bundle is read and parsed
/// here, so that a bad one is a configuration error; the connector is built in the
/// background. Call it inside a Tokio runtime.
pub fn http_client(
    ca_bundle: Option<&Path>,
    attempt_timeout: Duration,
    tls: Arc<Connectors>,
) -> Result<HttpClient, ConnectError> {
    let roots = match ca_bundle {
        Some(path) => {
            CaBundle::load(path)?;
            Roots::SystemAnd(Bundle::File(path.to_owned()))
        }
        None => Roots::System,
    };
    let building = tokio::spawn(async move {
        let connector = tls.get(&TlsSettings::verified(roots)).await?;
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(attempt_timeout + Duration::from_secs(1))
            .user_agent(concat!("preflight/", env!("CARGO_PKG_VERSION")))
            // TLS 1.2 at least, set on the connector.
            .use_preconfigured_tls(connector)
            .build()
            .map_err(|e| TlsError::Setup(Arc::from(crate::outcome::error_chain(&e))))
    });
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

#[cfg(test)]
mod tests {
    use super::*;
    use kube::config::ExecInteractiveMode;

    fn with_exec(mode: Option<ExecInteractiveMode>) -> Kubeconfig {
        let mode = match mode {
            None => String::new(),
            Some(m) => format!("      interactiveMode: {m:?}\n"),
        };
        Kubeconfig::from_yaml(&format!(
            "apiVersion: v1\nkind: Config\nusers:\n- name: eks\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: aws\n{mode}"
        ))
        .expect("a kubeconfig")
    }

    fn mode_after(
        mode: Option<ExecInteractiveMode>,
        terminal: bool,
    ) -> Option<ExecInteractiveMode> {
        non_interactive_exec(with_exec(mode), terminal).auth_infos[0]
            .auth_info
            .as_ref()
            .and_then(|a| a.exec.as_ref())
            .and_then(|e| e.interactive_mode.clone())
    }

    /// client-go's rule: a plugin may use the terminal when it says it may and one is there.
    #[test]
    fn credential_plugins_are_interactive_only_on_a_terminal() {
        use ExecInteractiveMode::{Always, IfAvailable, Never};
        for (mode, terminal, after) in [
            (None, false, Some(Never)),
            (Some(IfAvailable), false, Some(Never)),
            (None, true, None),
            (Some(IfAvailable), true, Some(IfAvailable)),
            (Some(Always), false, Some(Always)),
            (Some(Never), true, Some(Never)),
        ] {
            let got = format!("{:?}", mode_after(mode.clone(), terminal));
            assert_eq!(
                got,
                format!("{after:?}"),
                "{mode:?} on a terminal: {terminal}"
            );
        }
    }

    fn in_cluster(host: &str, port: &str) -> InCluster {
        InCluster {
            host: host.into(),
            port: port.into(),
            root: PathBuf::from(SERVICEACCOUNT_ROOT),
        }
    }

    #[test]
    fn the_in_cluster_url_is_formed_as_client_go_forms_it() {
        for (host, port, url) in [
            ("10.100.0.1", "443", "https://10.100.0.1:443/"),
            ("fd00::1", "443", "https://[fd00::1]:443/"),
            (
                "kubernetes.default.svc",
                "6443",
                "https://kubernetes.default.svc:6443/",
            ),
        ] {
            assert_eq!(
                in_cluster(host, port).url().expect("a URL").to_string(),
                url
            );
        }
        for (host, port) in [("10.100.0.1", ""), ("10.100.0.1", "https"), ("a b", "443")] {
            assert!(
                matches!(
                    in_cluster(host, port).url(),
                    Err(ConnectError::InClusterEndpoint { .. })
                ),
                "{host:?} {port:?}"
            );
        }
    }

    #[test]
    fn in_cluster_files_are_read_under_the_root() {
        let dir = tempfile::tempdir().expect("a directory");
        let root = dir.path();
        let at = InCluster {
            host: "127.0.0.1".into(),
            port: "6443".into(),
            root: root.to_owned(),
        };
        let Err(ConnectError::InClusterFile { path, .. }) = at.config() else {
            panic!("no token file is an error");
        };
        assert_eq!(path, root.join("token").display().to_string());
        std::fs::write(root.join("token"), "\n").expect("written");
        assert!(matches!(
            at.config(),
            Err(ConnectError::InClusterTokenEmpty { .. })
        ));
        std::fs::write(root.join("token"), "eyJhbGciOi.x.y").expect("written");
        std::fs::write(root.join("ca.crt"), "-----BEGIN CERTIFICATE-----\nnope\n")
            .expect("written");
        assert!(matches!(at.config(), Err(ConnectError::InClusterCa { .. })));
    }
}
