//! `postgres`: each app logs in to its database with its own credentials over TLS, as the app
//! will: not a TCP probe. After login: the session is encrypted, the database exists (or, for
//! an app that creates its own databases, the role may create it), the server's version is
//! reported and the role has `CREATEDB` where the app needs it.
//!
//! Where the credentials come from depends on where it runs. A tier's gate runs before the
//! apps exist, so it reads them where Terraform put them: the app's remote secret in AWS
//! Secrets Manager (the one its ExternalSecret will sync). An app's own hook runs after its
//! ExternalSecret synced, and reads the synced Secret, as the app will. CI and local runs give
//! them in the config and an environment variable. The host, when none of them names it, is the
//! RDS instance's endpoint. The password lives in a `Password` that never prints.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use postgres_native_tls::MakeTlsConnector;
use serde::{Deserialize, Serialize};
use tokio_postgres::config::SslMode as WireSslMode;

use crate::check::ObjectRef;
use crate::check::{Attempt, Built, Check, Context, Definition, Family, KubeWatch, Site};
use crate::checks::aws::{
    RemoteSecret, fetch_remote, instance_identifier, remote_secret_grant, remote_secret_name,
};
use crate::checks::kubernetes::fetch::{self, SECRETS};
use crate::outcome::{Outcome, Status, error_chain};
use crate::platform::{NeededBy, Provider, Scope, app_named};
use crate::reads::{IamGrant, KubeRead, Reads};
use crate::tier::Tier;
use crate::tls::{Bundle, Roots, TlsError, TlsSettings, Verify};
use crate::trust::{BundleSetting, CaBundleError};

/// How strictly the PostgreSQL client checks the server's certificate (libpq's `sslmode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Encrypt, but trust any certificate (reported as a warning).
    Require,
    /// Encrypt and check the certificate chains to a trusted CA.
    VerifyCa,
    /// Also check the certificate names the host.
    #[default]
    VerifyFull,
}

/// Which keys (of a Secret) or properties (of a remote secret) hold each connection
/// parameter. The host and port may be absent: then the RDS instance's endpoint is used.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct CredentialKeys {
    /// Host key.
    pub host: String,
    /// Port key.
    pub port: String,
    /// User key.
    pub user: String,
    /// Password key.
    pub password: String,
    /// Database key, when the secret names the database.
    pub database: Option<String>,
}

impl Default for CredentialKeys {
    /// The `POSTGRES_*` keys app charts read.
    fn default() -> Self {
        CredentialKeys {
            host: "POSTGRES_HOST".into(),
            port: "POSTGRES_PORT".into(),
            user: "POSTGRES_USER".into(),
            password: "POSTGRES_PASSWORD".into(),
            database: None,
        }
    }
}

impl CredentialKeys {
    /// The shape of an RDS-managed secret: `username`, `password`, `host`, `port`, `dbname`.
    #[must_use]
    pub fn rds() -> Self {
        CredentialKeys {
            host: "host".into(),
            port: "port".into(),
            user: "username".into(),
            password: "password".into(),
            database: Some("dbname".into()),
        }
    }
}

fn rds_keys() -> CredentialKeys {
    CredentialKeys::rds()
}

/// One app database preflight logs in to, with the app's own credentials.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PostgresTarget {
    /// The app (one of the platform's, e.g. `backstage`): its tier places the gate check, and
    /// its hook checks the login with the synced Secret.
    pub app: String,
    /// The app's remote secret in AWS Secrets Manager, which tier gates read; default
    /// `goldenpath/{env}/{app}/postgres`.
    #[serde(default)]
    pub remote_secret: Option<String>,
    /// The remote secret's property names (default: the RDS-managed secret's shape).
    #[serde(default = "rds_keys")]
    pub remote_keys: CredentialKeys,
    /// The Secret the app's ExternalSecret syncs, which the app's hook reads, `namespace/name`;
    /// none: the app has no hook for it.
    #[serde(default)]
    pub secret: Option<ObjectRef>,
    /// Its key names.
    #[serde(default)]
    pub keys: CredentialKeys,
    /// Host, overriding the secret's and the RDS endpoint.
    #[serde(default)]
    pub host: Option<String>,
    /// Port, overriding the secret's.
    #[serde(default)]
    pub port: Option<u16>,
    /// User, overriding the secret's.
    #[serde(default)]
    pub user: Option<String>,
    /// Database, overriding the secret's.
    #[serde(default)]
    pub database: Option<String>,
    /// An environment variable holding the password (CI and local runs); when set, the
    /// password and every other parameter come from the config, not from a secret.
    #[serde(default)]
    pub password_env: Option<String>,
    /// The RDS instance whose endpoint is the host when nothing else names one; default
    /// `goldenpath-{env}`.
    #[serde(default)]
    pub rds_instance: Option<String>,
    /// Certificate checking.
    #[serde(default)]
    pub ssl_mode: SslMode,
    /// A PEM bundle of CAs to trust. Default: the RDS CA bundle shipped with preflight for
    /// `*.rds.amazonaws.com` hosts, the system's for others.
    #[serde(default)]
    pub ca_bundle: Option<std::path::PathBuf>,
    /// The app creates its own databases (Backstage's `backstage_plugin_*`): the role must have
    /// `CREATEDB`, and a database the app has not created yet is not a failure.
    #[serde(default)]
    pub require_createdb: bool,
    /// Also check, as advice, that the server refuses a plaintext connection.
    #[serde(default)]
    pub check_plaintext_refused: bool,
}

impl PostgresTarget {
    /// A target of `app` with the platform's conventions and nothing else set.
    #[must_use]
    pub fn for_app(app: &str) -> Self {
        PostgresTarget {
            app: app.into(),
            remote_secret: None,
            remote_keys: CredentialKeys::rds(),
            secret: None,
            keys: CredentialKeys::default(),
            host: None,
            port: None,
            user: None,
            database: None,
            password_env: None,
            rds_instance: None,
            ssl_mode: SslMode::VerifyFull,
            ca_bundle: None,
            require_createdb: false,
            check_plaintext_refused: false,
        }
    }

    /// The tier whose gate first checks it: its app's (tier 2 for an app preflight does not
    /// know, such as a database named on the command line).
    fn tier(&self) -> Tier {
        app_named(&self.app).map_or(Tier::Two, |a| a.tier)
    }
}

/// `checks.postgres`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct PostgresSettings {
    /// The app databases.
    pub databases: Vec<PostgresTarget>,
}

impl Default for PostgresSettings {
    /// Backstage's login: `backstage_app` (from the secret) on `backstage_plugin_catalog`, with
    /// `CREATEDB`, as its chart reads it from `backstage/backstage-secrets`. Keycloak's:
    /// `keycloak_app` on `keycloak` (no `CREATEDB`: its schema lives in that one database),
    /// checked at tier 3's gate with the credentials in `goldenpath/{env}/keycloak/postgres`,
    /// before Keycloak syncs; Keycloak has no hook of its own for it.
    fn default() -> Self {
        PostgresSettings {
            databases: vec![
                PostgresTarget {
                    secret: Some(ObjectRef::new("backstage", "backstage-secrets")),
                    database: Some("backstage_plugin_catalog".into()),
                    require_createdb: true,
                    ..PostgresTarget::for_app("backstage")
                },
                PostgresTarget {
                    database: Some("keycloak".into()),
                    ..PostgresTarget::for_app("keycloak")
                },
            ],
        }
    }
}

/// A password: compared and sent, never shown.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Where and as whom to log in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Password,
    pub database: String,
}

/// Where a login's credentials come from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Source {
    /// The config and the password variable.
    Config,
    /// The Secret the app's ExternalSecret synced.
    Secret(ObjectRef),
    /// The app's remote secret in Secrets Manager.
    Remote(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Config => f.write_str("the config"),
            Source::Secret(s) => write!(f, "Secret {s}"),
            Source::Remote(name) => write!(f, "remote secret {name}"),
        }
    }
}

/// The secret's contents, as read. Its `Debug` shows key names only: base64 is no redaction.
pub(crate) enum Data {
    /// No secret: everything comes from the config.
    Empty,
    /// A Kubernetes Secret's `data`, base64-encoded.
    Secret(BTreeMap<String, String>),
    /// A remote secret's properties.
    Remote(RemoteSecret),
}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Data::Empty => f.write_str("Empty"),
            Data::Secret(data) => f
                .debug_tuple("Secret")
                .field(&data.keys().collect::<Vec<_>>())
                .finish(),
            Data::Remote(secret) => secret.fmt(f),
        }
    }
}

impl Data {
    fn get(&self, key: &str) -> Result<Option<String>, Outcome> {
        match self {
            Data::Empty => Ok(None),
            Data::Secret(data) => fetch::secret_text(data, key),
            Data::Remote(secret) => Ok(secret.value(key).map(str::to_owned)),
        }
    }
}

/// Assembles credentials from the secret's contents and the target's overrides; `endpoint`
/// is the RDS instance's, for a secret that names no host. A failure names keys, never
/// values.
pub(crate) fn credentials(
    target: &PostgresTarget,
    keys: &CredentialKeys,
    data: &Data,
    source: &str,
    env_password: Option<String>,
    endpoint: Option<(String, u16)>,
) -> Result<Credentials, Outcome> {
    let mut missing = Vec::new();
    let mut required =
        |explicit: Option<String>, key: Option<&str>| -> Result<Option<String>, Outcome> {
            if explicit.is_some() {
                return Ok(explicit);
            }
            let Some(key) = key else { return Ok(None) };
            let value = data.get(key)?;
            if value.is_none() && !matches!(data, Data::Empty) {
                missing.push(key.to_owned());
            }
            Ok(value)
        };
    let user = required(target.user.clone(), Some(&keys.user))?;
    let password = required(env_password, Some(&keys.password))?;
    let database = required(target.database.clone(), keys.database.as_deref())?;
    if !missing.is_empty() {
        return Err(Outcome::fail("credentials-incomplete", format!("{source} lacks the key(s) {}", missing.join(", ")))
            .hint("Map the keys in the ExternalSecret (or the properties in the remote secret), or name them in checks.postgres.databases[].keys / remoteKeys."));
    }
    let named = match &target.host {
        Some(h) => Some(h.clone()),
        None => data.get(&keys.host)?,
    };
    // The endpoint's port goes with the endpoint's host only.
    let endpoint = if named.is_some() { None } else { endpoint };
    let host = named.or_else(|| endpoint.as_ref().map(|(h, _)| h.clone()));
    let port = match target.port {
        Some(p) => Some(p.to_string()),
        None => data.get(&keys.port)?,
    };
    let (Some(host), Some(user), Some(database)) = (host, user, database) else {
        return Err(Outcome::fail(
            "credentials-incomplete",
            format!("no host, user or database for {} in {source}", target.app),
        )
        .hint("Set them in checks.postgres.databases[] or map them in the secret."));
    };
    let port: u16 = match port {
        Some(text) => text.trim().parse().map_err(|_| {
            Outcome::fail(
                "bad-port",
                format!(
                    "the port in {source} is not a port number ({} characters)",
                    text.len()
                ),
            )
        })?,
        None => endpoint.map_or(5432, |(_, p)| p),
    };
    let password = match password {
        Some(p) if !p.is_empty() => Password(p),
        _ => {
            return Err(Outcome::fail(
                "empty-password",
                format!("the password for {} in {source} is empty", target.app),
            ));
        }
    };
    Ok(Credentials {
        host,
        port,
        user,
        password,
        database,
    })
}

/// The fix for a problem with the inputs themselves (the Secret's values or the CA bundle),
/// added where the problem is found without one.
fn input_hint(outcome: Outcome) -> Outcome {
    if outcome.hint.is_some() {
        return outcome;
    }
    let hint = match outcome.code.as_str() {
        "ca-bundle-unreadable" => {
            "Mount the bundle into the hook's Pod (from a ConfigMap) at the path checks.postgres.databases[].caBundle names."
        }
        "ca-bundle-invalid" | "tls-setup-failed" => {
            "Use the PEM bundle as published (for RDS: https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem), not a DER file or a truncated copy."
        }
        _ => {
            "Fix the value in Secrets Manager (the ExternalSecret copies it as is), or map another key in checks.postgres.databases[].keys."
        }
    };
    outcome.hint(hint)
}

/// Which CAs a login trusts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Trust {
    /// The system's.
    System,
    /// A configured PEM bundle, instead of the system's.
    Bundle(PathBuf),
    /// The RDS CA bundle shipped with preflight (`certs/rds-global-bundle.pem`), for RDS
    /// endpoints when no bundle is configured: RDS certificates chain to Amazon's RDS roots,
    /// which no system trust store holds. Only the CAs of the instance's region (when its
    /// endpoint names one) and the global roots are trusted: see [`rds_bundle`].
    Rds {
        /// The region in the endpoint, e.g. `eu-west-1`.
        region: Option<String>,
    },
}

/// The RDS global CA bundle, as AWS publishes it (see `certs/README.md` for its source and how
/// to refresh it).
const RDS_CA_BUNDLE: &str = include_str!("../../certs/rds-global-bundle.pem");

impl Trust {
    /// The connector's settings: like libpq's `sslrootcert`, a bundle replaces the system's
    /// CAs rather than adding to them, so that a certificate from a public CA cannot pass for
    /// the RDS instance's.
    fn settings(self, ssl_mode: SslMode) -> TlsSettings {
        let roots = match self {
            Trust::System => Roots::System,
            Trust::Bundle(path) => Roots::Only(Bundle::File(path)),
            Trust::Rds { region } => Roots::Only(Bundle::Shipped {
                name: "shipped for RDS",
                pem: rds_bundle(region.as_deref()),
            }),
        };
        let verify = match ssl_mode {
            SslMode::Require => Verify::Nothing,
            SslMode::VerifyCa => Verify::Chain,
            SslMode::VerifyFull => Verify::Full,
        };
        TlsSettings { roots, verify }
    }

    fn of(target: &PostgresTarget, host: &str) -> Trust {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        match &target.ca_bundle {
            Some(path) => Trust::Bundle(path.clone()),
            // RDS Proxy endpoints present public (ACM) certificates, not the RDS CAs'.
            None if host.contains(".proxy-") => Trust::System,
            None if host.ends_with(".rds.amazonaws.com")
                || host.ends_with(".rds.amazonaws.com.cn") =>
            {
                // <instance>.<account hash>.<region>.rds.amazonaws.com[.cn]
                let labels: Vec<&str> = host.split('.').collect();
                let from_end = if host.ends_with(".cn") { 5 } else { 4 };
                Trust::Rds {
                    region: labels
                        .len()
                        .checked_sub(from_end)
                        .and_then(|at| labels.get(at))
                        .filter(|r| is_region(r))
                        .map(|r| (*r).to_owned()),
                }
            }
            None => Trust::System,
        }
    }
}

/// Whether `token` reads as an AWS region (`eu-west-1`, `us-gov-west-1`, `cn-north-1`).
fn is_region(token: &str) -> bool {
    let parts: Vec<&str> = token.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
}

/// The part of the shipped RDS bundle an instance in `region` chains to: the CAs that name
/// the region (`Amazon RDS eu-west-1 Root CA RSA2048 G1`, `Amazon RDS eu-west-1 2019 CA`) and
/// those that name none (`Amazon RDS Root 2019 CA`), in the bundle's order. The whole bundle
/// holds over a hundred CAs, a set per region, and OpenSSL 3 decodes every certificate a
/// connector trusts (`cargo bench -p preflight-job --bench cpu`). The names are read from the
/// certificates' DER without decoding them; without a region, or with one the bundle does not
/// name, the whole bundle.
fn rds_bundle(region: Option<&str>) -> Arc<str> {
    static WHOLE: std::sync::LazyLock<Arc<str>> =
        std::sync::LazyLock::new(|| Arc::from(RDS_CA_BUNDLE));
    let Some(region) = region else {
        return WHOLE.clone();
    };
    const END: &str = "-----END CERTIFICATE-----";
    let mut kept = String::new();
    let mut named = false;
    for block in RDS_CA_BUNDLE.split_inclusive(END) {
        let Some(start) = block.find("-----BEGIN CERTIFICATE-----") else {
            continue;
        };
        let block = &block[start..];
        let body: String = block.lines().filter(|l| !l.starts_with("-----")).collect();
        let Ok(der) = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, body)
        else {
            continue;
        };
        let regions = regions_named(&der);
        if regions.iter().any(|r| r == region) {
            named = true;
        }
        if regions.is_empty() || regions.iter().any(|r| r == region) {
            kept.push_str(block);
            kept.push('\n');
        }
    }
    if named {
        Arc::from(kept)
    } else {
        WHOLE.clone()
    }
}

/// The regions a certificate's names mention: `Amazon RDS [Beta |Preview ]<region> …`.
fn regions_named(der: &[u8]) -> Vec<String> {
    const PREFIX: &[u8] = b"Amazon RDS ";
    let mut regions = Vec::new();
    let mut rest = der;
    while let Some(at) = rest.windows(PREFIX.len()).position(|w| w == PREFIX) {
        rest = &rest[at + PREFIX.len()..];
        // The rest of the name: printable ASCII up to the next DER header.
        let name: Vec<u8> = rest
            .iter()
            .take_while(|b| (0x20..0x7f).contains(*b))
            .copied()
            .collect();
        for token in String::from_utf8_lossy(&name).split(' ') {
            if is_region(token) && !regions.iter().any(|r| r == token) {
                regions.push(token.to_owned());
            }
        }
    }
    regions
}

/// A bundle that cannot be used, as the login's outcome. The run checks every bundle before
/// it starts (`preflight` exits 2 naming the setting), so this is met only when the file
/// changed during the run.
fn bundle_failure(e: &CaBundleError) -> Outcome {
    let code = match e {
        CaBundleError::Read { .. } => "ca-bundle-unreadable",
        CaBundleError::Invalid { .. } => "ca-bundle-invalid",
    };
    Outcome::fail(code, error_chain(e))
}

/// The shared TLS connector for an `sslMode` and the CAs to trust.
async fn connector(
    ctx: &Context,
    ssl_mode: SslMode,
    trust: Trust,
) -> Result<MakeTlsConnector, Outcome> {
    ctx.tls()
        .get(&trust.settings(ssl_mode))
        .await
        .map(MakeTlsConnector::new)
        .map_err(|e| match e {
            TlsError::Bundle(e) => bundle_failure(&e),
            TlsError::Setup(_) => Outcome::fail("tls-setup-failed", e.to_string()),
        })
}

/// What the server said about the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Session {
    pub server_version: String,
    pub encrypted: bool,
    pub tls_version: Option<String>,
    pub createdb: bool,
}

/// What a plaintext connection attempt got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Plaintext {
    Refused,
    Accepted,
    Inconclusive(String),
}

fn config(creds: &Credentials, connect_timeout: Duration) -> tokio_postgres::Config {
    let mut c = tokio_postgres::Config::new();
    c.host(&creds.host)
        .port(creds.port)
        .user(&creds.user)
        .password(&creds.password.0)
        .dbname(&creds.database)
        .application_name("preflight")
        .connect_timeout(connect_timeout);
    c
}

/// Logs in over TLS and asks the server about the session.
async fn session(
    creds: &Credentials,
    tls: MakeTlsConnector,
) -> Result<Session, tokio_postgres::Error> {
    let mut cfg = config(creds, Duration::from_secs(30));
    cfg.ssl_mode(WireSslMode::Require);
    let (client, connection) = cfg.connect(tls).await?;
    // The connection future drives the socket; it ends once the client is dropped, so the two
    // are joined here rather than spawning a task nobody waits for.
    let queries = async move {
        let row = client
            .query_one(
                "SELECT current_setting('server_version'), \
                        coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false), \
                        (SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()), \
                        coalesce((SELECT rolcreatedb FROM pg_roles WHERE rolname = current_user), false)",
                &[],
            )
            .await;
        drop(client);
        row
    };
    let (row, _) = tokio::join!(queries, connection);
    let row = row?;
    Ok(Session {
        server_version: row.try_get(0)?,
        encrypted: row.try_get(1)?,
        tls_version: row.try_get(2)?,
        createdb: row.try_get(3)?,
    })
}

/// Tries a plaintext login, which a server that only accepts TLS must refuse.
async fn plaintext(creds: &Credentials) -> Plaintext {
    let mut cfg = config(creds, Duration::from_secs(10));
    cfg.ssl_mode(WireSslMode::Disable);
    match cfg.connect(tokio_postgres::NoTls).await {
        Ok((client, connection)) => {
            drop(client);
            let _ = connection.await;
            Plaintext::Accepted
        }
        Err(e) if e.code().is_some_and(|c| c.code() == "28000") => Plaintext::Refused,
        Err(e) => Plaintext::Inconclusive(error_chain(&e)),
    }
}

/// Maps a failed login to an outcome. Pure: takes the SQLSTATE (if the server sent one) and
/// the error text, so every case is a table test.
pub(crate) fn classify(code: Option<&str>, message: &str, creds: &Credentials) -> Attempt {
    let at = format!(
        "{}:{} as {} to database {}",
        creds.host, creds.port, creds.user, creds.database
    );
    let lower = message.to_lowercase();
    match code {
        Some("28000") if lower.contains("no encryption") => Attempt::settled(
            Outcome::fail("pg-hba-no-encryption", format!("the server refused an unencrypted login at {at}: {message}"))
                .hint("The server only accepts TLS (hostssl, or rds.force_ssl=1 on RDS): the app must connect with sslmode=require or stricter."),
        ),
        Some("28000") => Attempt::settled(
            Outcome::fail("pg-hba-rejected", format!("no pg_hba.conf entry admits {at}: {message}"))
                .hint("Allow this client's address, user and database over hostssl in pg_hba.conf (on RDS: the parameter group and the security group)."),
        ),
        Some("28P01") => Attempt::settled(
            Outcome::fail("wrong-password", format!("password authentication failed at {at}"))
                .hint("The synced Secret's password does not match the role's: rotate it in Secrets Manager, then let the ExternalSecret refresh (or force-sync it)."),
        ),
        Some("3D000") => Attempt::transient(
            Outcome::fail("database-missing", format!("database {} does not exist on {}:{}", creds.database, creds.host, creds.port))
                .hint("Create it (CREATE DATABASE … OWNER …) in the RDS bootstrap, or fix the database name in the Secret."),
        ),
        Some("42501") => Attempt::settled(
            Outcome::fail("missing-privilege", format!("role {} lacks a privilege at {at}: {message}", creds.user))
                .hint("Grant the role the privileges the app needs (CONNECT on the database at least)."),
        ),
        Some(code) => Attempt::transient(Outcome::fail("postgres-error", format!("the server refused the login at {at}: {message} (SQLSTATE {code})"))),
        // A name mismatch is also a verification failure: test it first.
        None if lower.contains("hostname mismatch") || lower.contains("ip address mismatch") => Attempt::settled(
            Outcome::fail("certificate-mismatch", format!("the server's certificate does not name {}: {message}", creds.host))
                .hint("Connect with the instance's endpoint name (not an IP or CNAME the certificate lacks), or use sslMode verify-ca."),
        ),
        None if lower.contains("certificate verify failed") || lower.contains("unable to get local issuer") || lower.contains("self-signed") || lower.contains("self signed") => Attempt::settled(
            Outcome::fail("certificate-untrusted", format!("the server's certificate at {}:{} is not trusted: {message}", creds.host, creds.port))
                .hint("Trust the CA that signed it: set caBundle to the RDS global bundle (https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem) or your CA."),
        ),
        None if lower.contains("server does not support tls") => Attempt::settled(
            Outcome::fail("tls-unsupported", format!("{}:{} does not accept TLS", creds.host, creds.port))
                .hint("Enable ssl on the server (RDS always supports it: check that the endpoint is really the database)."),
        ),
        None if lower.contains("timed out") || lower.contains("deadline has elapsed") => Attempt::transient(
            Outcome::fail("database-unreachable", format!("no answer from {}:{}: {message}", creds.host, creds.port))
                .hint("A security group or subnet route drops the packets: allow the cluster's node (or pod) security group on the database's port."),
        ),
        None if lower.contains("lookup") || lower.contains("name or service not known") || lower.contains("no address") => Attempt::transient(
            Outcome::fail("host-unresolvable", format!("the database host {} does not resolve: {message}", creds.host))
                .hint("Check the host in the Secret: the RDS endpoint name, resolvable from the cluster's VPC."),
        ),
        None => Attempt::transient(
            Outcome::fail("database-unreachable", format!("cannot reach {}:{}: {message}", creds.host, creds.port))
                .hint("Check the endpoint, the port and the security groups between the cluster and the database."),
        ),
    }
}

/// Judges a successful login.
pub(crate) fn judge(
    target: &PostgresTarget,
    creds: &Credentials,
    session: &Session,
    plaintext: Option<&Plaintext>,
) -> Outcome {
    let at = format!(
        "{} on {}:{} as {}",
        creds.database, creds.host, creds.port, creds.user
    );
    let tls = session.tls_version.clone().unwrap_or_else(|| "TLS".into());
    let evidence = |o: Outcome| {
        o.evidence("serverVersion", &session.server_version)
            .evidence("tls", &tls)
    };
    if !session.encrypted {
        return evidence(Outcome::fail(
            "session-not-encrypted",
            format!("logged in to {at}, but the server reports the session is not encrypted"),
        ));
    }
    if target.require_createdb && !session.createdb {
        return evidence(
            Outcome::fail(
                "missing-createdb",
                format!(
                    "role {} may not create databases, which {} needs",
                    creds.user, target.app
                ),
            )
            .hint(format!(
                "ALTER ROLE {} CREATEDB; (Backstage creates one database per plugin).",
                creds.user
            )),
        );
    }
    let summary = format!(
        "logged in to {at} over {tls}; PostgreSQL {}{}",
        session.server_version,
        if target.require_createdb {
            "; CREATEDB granted"
        } else {
            ""
        }
    );
    let outcome = match (target.ssl_mode, plaintext) {
        (_, Some(Plaintext::Accepted)) => Outcome::warn("plaintext-accepted", format!("{summary}; but the server also accepted a plaintext login"))
            .hint("Reject unencrypted connections: hostssl only in pg_hba.conf, or rds.force_ssl=1."),
        (SslMode::Require, _) => Outcome::warn("tls-not-verified", format!("{summary}; the certificate was not verified (sslMode require)"))
            .hint("Use sslMode verify-full with the RDS CA bundle so a spoofed endpoint cannot take the password."),
        (_, Some(Plaintext::Inconclusive(why))) => Outcome::pass("postgres-login", format!("{summary}; the plaintext probe was inconclusive: {why}")),
        (_, Some(Plaintext::Refused)) => Outcome::pass("postgres-login", format!("{summary}; plaintext refused")),
        (_, None) => Outcome::pass("postgres-login", summary),
    };
    evidence(outcome)
}

/// Judges a login to the maintenance database when the app's own database does not exist
/// yet: fine if the role may create it, as the app will on its first start.
pub(crate) fn judge_not_created(
    target: &PostgresTarget,
    creds: &Credentials,
    session: &Session,
) -> Outcome {
    let tls = session.tls_version.clone().unwrap_or_else(|| "TLS".into());
    let outcome = if !session.encrypted {
        Outcome::fail(
            "session-not-encrypted",
            format!(
                "logged in to postgres on {}:{} as {}, but the server reports the session is not encrypted",
                creds.host, creds.port, creds.user
            ),
        )
    } else if session.createdb {
        Outcome::pass(
            "postgres-login",
            format!(
                "logged in to {}:{} as {} over {tls}; PostgreSQL {}; database {} does not exist yet, and the role has CREATEDB, so {} creates it",
                creds.host,
                creds.port,
                creds.user,
                session.server_version,
                creds.database,
                target.app
            ),
        )
    } else {
        Outcome::fail(
            "database-missing",
            format!(
                "database {} does not exist on {}:{}, and role {} may not create it (no CREATEDB), which {} needs",
                creds.database, creds.host, creds.port, creds.user, target.app
            ),
        )
        .hint(format!(
            "ALTER ROLE {} CREATEDB; ({} creates its own databases), or create the database in the RDS bootstrap.",
            creds.user, target.app
        ))
    };
    outcome
        .evidence("serverVersion", &session.server_version)
        .evidence("tls", &tls)
}

/// One database to log in to, with where its credentials come from at this site.
#[derive(Clone, Debug)]
struct Login {
    /// Its place in `checks.postgres.databases`.
    index: usize,
    target: PostgresTarget,
    source: Source,
    /// The RDS instance whose endpoint is the host when nothing else names one.
    rds_instance: String,
}

impl Login {
    /// The keys of its source.
    fn keys(&self) -> &CredentialKeys {
        match self.source {
            Source::Remote(_) => &self.target.remote_keys,
            Source::Secret(_) | Source::Config => &self.target.keys,
        }
    }
}

/// The `postgres` check.
#[derive(Debug)]
pub struct PostgresLogin {
    logins: Vec<Login>,
}

impl PostgresLogin {
    /// A check of these databases for `site`: at a tier's gate, those of the tier's apps and
    /// below, with credentials from Secrets Manager; in an app's hook, the app's, with the
    /// credentials its ExternalSecret synced. Databases with a password variable take their
    /// credentials from the config anywhere.
    #[must_use]
    pub fn new(settings: &PostgresSettings, site: &Site<'_>) -> Self {
        let env = &site.values.env.value;
        let logins = settings
            .databases
            .iter()
            .enumerate()
            .filter_map(|(index, t)| {
                // Where it is checked first, then where its credentials come from there.
                let here = match site.scope {
                    Scope::Gate(tier) => t.tier() <= tier,
                    Scope::App(app) => app.name == t.app,
                };
                if !here {
                    return None;
                }
                let source = match site.scope {
                    _ if t.password_env.is_some() => Source::Config,
                    Scope::Gate(_) => Source::Remote(
                        t.remote_secret
                            .clone()
                            .unwrap_or_else(|| remote_secret_name(env, &t.app)),
                    ),
                    Scope::App(_) => Source::Secret(t.secret.clone()?),
                };
                Some(Login {
                    index,
                    target: t.clone(),
                    source,
                    rds_instance: instance_identifier(t.rds_instance.as_deref(), env),
                })
            })
            .collect();
        PostgresLogin { logins }
    }
}

impl Definition for PostgresLogin {
    const ID: &'static str = "postgres";
    const FAMILY: Family = Family::Postgres;
    type Settings = PostgresSettings;

    /// The gate of each database's app's tier, with the credentials in AWS; and the app's own
    /// hook, with the credentials its ExternalSecret synced.
    fn needed_by(settings: &PostgresSettings) -> NeededBy {
        let tier = settings.databases.iter().map(PostgresTarget::tier).min();
        NeededBy {
            tier,
            ..NeededBy::default()
        }
        .and_apps(
            settings
                .databases
                .iter()
                .filter(|t| t.secret.is_some())
                .map(|t| &t.app),
        )
    }

    fn provided_by(_: &PostgresSettings, site: &Site<'_>) -> Provider {
        match site.scope {
            Scope::App(app) => Provider::App(app),
            Scope::Gate(_) => Provider::Foundation("Terraform (RDS, roles, Secrets Manager)"),
        }
    }

    fn build(settings: &PostgresSettings, site: &Site<'_>) -> Result<Built, String> {
        let check = PostgresLogin::new(settings, site);
        if check.logins.is_empty() {
            return Err(format!("no database is configured for {}", site.scope));
        }
        let apps: Vec<String> = check
            .logins
            .iter()
            .map(|l| format!("{} from {}", l.target.app, l.source))
            .collect();
        let mut needs = Vec::new();
        if check
            .logins
            .iter()
            .any(|l| matches!(l.source, Source::Remote(_)))
        {
            needs.push(super::aws::SecretsManager::ID);
        }
        if check.logins.iter().any(|l| l.target.host.is_none()) {
            needs.push(super::aws::RdsInstance::ID);
        }
        if check
            .logins
            .iter()
            .any(|l| matches!(l.source, Source::Secret(_)))
        {
            needs.push(super::kubernetes::ExternalSecretsSynced::ID);
        }
        Ok(Built {
            title: format!(
                "PostgreSQL login over TLS with the app's own credentials ({})",
                apps.join("; ")
            ),
            provided_by: Self::provided_by(settings, site),
            needs,
            check: Arc::new(check),
        })
    }
}

/// Reads a login's secret: its contents, and a watch when it is a Kubernetes Secret.
async fn read_source(
    ctx: &Context,
    login: &Login,
) -> Result<(Data, Option<KubeWatch>), Box<Attempt>> {
    let app = &login.target.app;
    match &login.source {
        Source::Config => Ok((Data::Empty, None)),
        Source::Secret(secret) => {
            match fetch::get_watchable::<fetch::SecretDoc>(
                ctx,
                &SECRETS,
                Some(&secret.namespace),
                &secret.name,
            )
            .await?
            {
                (Some(doc), watch) => Ok((Data::Secret(doc.data), Some(watch))),
                (None, watch) => {
                    let outcome = Outcome::fail("credentials-secret-missing", format!("Secret {secret} with {app}'s database credentials not found"))
                        .hint("It is written by the app's ExternalSecret: see the external-secrets check.");
                    Err(Box::new(Attempt::until_changed(outcome, vec![watch])))
                }
            }
        }
        Source::Remote(name) => {
            let Some(client) = ctx.secrets_manager() else {
                return Err(Box::new(super::aws::no_client()));
            };
            match fetch_remote(client, name).await? {
                Some(secret) => Ok((Data::Remote(secret), None)),
                None => Err(Box::new(Attempt::settled(
                    Outcome::fail("credentials-secret-missing", format!("remote secret {name} with {app}'s database credentials does not exist in Secrets Manager"))
                        .hint("Terraform creates it with the app's role: see the secrets-manager check."),
                ))),
            }
        }
    }
}

/// The RDS instance's endpoint, when the login names no host of its own.
async fn endpoint(
    ctx: &Context,
    login: &Login,
    keys: &CredentialKeys,
    data: &Data,
) -> Result<Option<(String, u16)>, Box<Attempt>> {
    let named = login.target.host.is_some() || data.get(&keys.host).ok().flatten().is_some();
    if named {
        return Ok(None);
    }
    let Some(rds) = ctx.rds() else {
        return Ok(None);
    };
    let instance = super::aws::describe_instance(rds, &login.rds_instance).await?;
    Ok(instance.address.map(|address| {
        let port = instance
            .port
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(5432);
        (address, port)
    }))
}

/// One database's attempt; a watch on its Secret when its credentials came from one.
async fn attempt_one(ctx: &Context, login: &Login) -> (Attempt, Option<KubeWatch>) {
    let target = &login.target;
    let (data, watch) = match read_source(ctx, login).await {
        Ok(read) => read,
        Err(failed) => {
            let watch = match &failed.retry {
                crate::check::Retry::OnChange(w) => w.first().cloned(),
                _ => None,
            };
            return (*failed, watch);
        }
    };
    let keys = login.keys();
    let endpoint = match endpoint(ctx, login, keys, &data).await {
        Ok(e) => e,
        Err(failed) => return (*failed, watch),
    };
    let env_password = target
        .password_env
        .as_ref()
        .and_then(|var| std::env::var(var).ok());
    let source = login.source.to_string();
    let creds = match credentials(target, keys, &data, &source, env_password, endpoint) {
        Ok(c) => c,
        Err(outcome) => return (Attempt::settled(input_hint(outcome)), watch),
    };
    let tls = match connector(ctx, target.ssl_mode, Trust::of(target, &creds.host)).await {
        Ok(t) => t,
        Err(outcome) => return (Attempt::settled(input_hint(outcome)), watch),
    };
    let session = match session(&creds, tls.clone()).await {
        Ok(s) => s,
        Err(e) if target.require_createdb && e.code().is_some_and(|c| c.code() == "3D000") => {
            // An app that creates its own databases has not created this one yet: the role's
            // right to create it is what the app needs, read from the maintenance database.
            let maintenance = Credentials {
                database: "postgres".into(),
                ..creds.clone()
            };
            match session(&maintenance, tls).await {
                Ok(s) => {
                    return (
                        Attempt::settled(judge_not_created(target, &creds, &s)),
                        watch,
                    );
                }
                Err(e) => return (login_failure(&e, &maintenance), watch),
            }
        }
        Err(e) => return (login_failure(&e, &creds), watch),
    };
    let probe = if target.check_plaintext_refused {
        Some(plaintext(&creds).await)
    } else {
        None
    };
    (
        Attempt::settled(judge(target, &creds, &session, probe.as_ref())),
        watch,
    )
}

/// Maps a failed login to an attempt.
fn login_failure(e: &tokio_postgres::Error, creds: &Credentials) -> Attempt {
    let code = e.code().map(|c| c.code().to_owned());
    let message = e
        .as_db_error()
        .map_or_else(|| error_chain(e), |db| db.message().to_owned());
    classify(code.as_deref(), &message, creds)
}

#[async_trait::async_trait]
impl Check for PostgresLogin {
    fn reads(&self) -> Reads {
        let mut reads = Reads::default();
        for login in &self.logins {
            match &login.source {
                Source::Secret(s) => reads.kube.push(KubeRead::secret(&s.namespace, &s.name)),
                Source::Remote(name) => reads.iam.push(remote_secret_grant(name)),
                Source::Config => {}
            }
            if login.target.host.is_none() {
                reads.iam.push(IamGrant {
                    action: "rds:DescribeDBInstances",
                    resource: format!("arn:aws:rds:*:*:db:{}", login.rds_instance),
                });
            }
        }
        reads.iam.sort();
        reads.iam.dedup();
        reads
    }

    fn ca_bundles(&self) -> Vec<BundleSetting> {
        self.logins
            .iter()
            .filter_map(|l| {
                Some(BundleSetting {
                    setting: format!("checks.postgres.databases[{}].caBundle", l.index),
                    path: l.target.ca_bundle.clone()?,
                })
            })
            .collect()
    }

    async fn attempt(&self, ctx: &Context) -> Attempt {
        let results =
            futures::future::join_all(self.logins.iter().map(|l| attempt_one(ctx, l))).await;
        combine(
            self.logins
                .iter()
                .map(|l| l.target.app.as_str())
                .zip(results)
                .collect(),
        )
    }
}

/// Folds the databases' attempts into one: the worst status leads (its code and hint), every
/// database's message is kept, and the run may retry only if some failure can still change.
fn combine(results: Vec<(&str, (Attempt, Option<KubeWatch>))>) -> Attempt {
    let rank = |s: Status| match s {
        Status::Fail => 3,
        Status::Warn => 2,
        Status::Skip => 1,
        Status::Pass => 0,
    };
    let worst = results
        .iter()
        .max_by_key(|(_, (a, _))| rank(a.outcome.status))
        .map(|(_, (a, _))| a.clone());
    let Some(worst) = worst else {
        return Attempt::settled(Outcome::new(
            Status::Skip,
            "no-databases",
            "no databases are configured",
        ));
    };
    let mut outcome = worst.outcome.clone();
    outcome.message = results
        .iter()
        .map(|(app, (a, _))| format!("{app}: {}", a.outcome.message))
        .collect::<Vec<_>>()
        .join("; ");
    for (app, (a, _)) in &results {
        outcome
            .evidence
            .insert(format!("{app}.code"), a.outcome.code.clone());
        for (k, v) in &a.outcome.evidence {
            outcome.evidence.insert(format!("{app}.{k}"), v.clone());
        }
    }
    let failing: Vec<&Attempt> = results
        .iter()
        .map(|(_, (a, _))| a)
        .filter(|a| a.outcome.status == Status::Fail)
        .collect();
    let retry = if failing
        .iter()
        .all(|a| a.retry == crate::check::Retry::Never)
    {
        crate::check::Retry::Never
    } else {
        // Waiting can still help one of them: poll with backoff (a database offers no watch).
        crate::check::Retry::Backoff
    };
    Attempt { outcome, retry }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Retry;
    use crate::checks::aws::RemoteSecret;
    use crate::config::{Config, ObjectRef};
    use base64::Engine as _;

    fn target() -> PostgresTarget {
        Config::default().checks.postgres.databases[0].clone()
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn data(pairs: &[(&str, &str)]) -> Data {
        Data::Secret(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), b64(v)))
                .collect(),
        )
    }

    const CANARY: &str = "canary-Pa55-do-not-print";
    const SECRET: &str = "Secret backstage/backstage-secrets";

    /// Credentials from the Secret's own keys, with no RDS endpoint.
    fn from_secret(target: &PostgresTarget, data: &Data) -> Result<Credentials, Outcome> {
        credentials(target, &target.keys, data, SECRET, None, None)
    }

    fn creds() -> Credentials {
        from_secret(
            &target(),
            &data(&[
                ("POSTGRES_HOST", "db.example"),
                ("POSTGRES_PORT", "5432"),
                ("POSTGRES_USER", "backstage_app"),
                ("POSTGRES_PASSWORD", CANARY),
            ]),
        )
        .expect("complete")
    }

    #[test]
    fn reads_credentials_in_both_shapes_and_never_shows_the_password() {
        let c = creds();
        assert_eq!(
            (
                c.host.as_str(),
                c.port,
                c.user.as_str(),
                c.database.as_str()
            ),
            (
                "db.example",
                5432,
                "backstage_app",
                "backstage_plugin_catalog"
            )
        );
        assert!(!format!("{c:?}").contains(CANARY));
        let rds = PostgresTarget {
            secret: Some(ObjectRef::new("monitoring", "grafana-db")),
            keys: CredentialKeys::rds(),
            database: None,
            ..target()
        };
        let c = from_secret(
            &rds,
            &data(&[
                ("host", "h"),
                ("port", "6432"),
                ("username", "grafana"),
                ("password", "p"),
                ("dbname", "grafana"),
            ]),
        )
        .expect("complete");
        assert_eq!((c.port, c.database.as_str()), (6432, "grafana"));
    }

    /// Backstage's Secret names no host: the RDS instance's endpoint is the host, and its
    /// port the port. A host in the secret wins over the endpoint.
    #[test]
    fn the_host_is_the_rds_endpoint_when_the_secret_names_none() {
        let endpoint = Some((
            "goldenpath-dev.abc.eu-west-1.rds.amazonaws.com".to_owned(),
            5433,
        ));
        let t = target();
        let without_host = data(&[
            ("POSTGRES_USER", "backstage_app"),
            ("POSTGRES_PASSWORD", CANARY),
        ]);
        let c = credentials(&t, &t.keys, &without_host, SECRET, None, endpoint.clone())
            .expect("complete");
        assert_eq!(
            (c.host.as_str(), c.port),
            ("goldenpath-dev.abc.eu-west-1.rds.amazonaws.com", 5433)
        );
        let with_host = data(&[
            ("POSTGRES_HOST", "db.example"),
            ("POSTGRES_USER", "u"),
            ("POSTGRES_PASSWORD", CANARY),
        ]);
        let c = credentials(&t, &t.keys, &with_host, SECRET, None, endpoint).expect("complete");
        assert_eq!((c.host.as_str(), c.port), ("db.example", 5432));
        let o = credentials(&t, &t.keys, &without_host, SECRET, None, None).expect_err("no host");
        assert_eq!(o.code, "credentials-incomplete");
    }

    /// At a tier's gate the credentials come from the remote secret in Secrets Manager, with
    /// the property names of an RDS-managed secret.
    #[test]
    fn reads_the_remote_secrets_properties() {
        let t = target();
        let remote = Data::Remote(RemoteSecret {
            name: "goldenpath/dev/backstage/postgres".into(),
            properties: crate::checks::aws::parse_properties(&format!(
                r#"{{"username": "backstage_app", "password": "{CANARY}", "port": 5432}}"#
            ))
            .expect("a JSON object"),
        });
        let c = credentials(
            &t,
            &t.remote_keys,
            &remote,
            "remote secret goldenpath/dev/backstage/postgres",
            None,
            Some(("db.example".into(), 5432)),
        )
        .expect("complete");
        assert_eq!(
            (c.user.as_str(), c.host.as_str(), c.database.as_str()),
            ("backstage_app", "db.example", "backstage_plugin_catalog")
        );
        assert!(!format!("{c:?} {remote:?}").contains(CANARY));
        let synced = data(&[("POSTGRES_PASSWORD", CANARY)]);
        assert_eq!(format!("{synced:?}"), "Secret([\"POSTGRES_PASSWORD\"])");
        let no_password = Data::Remote(RemoteSecret {
            name: "n".into(),
            properties: crate::checks::aws::parse_properties(r#"{"username": "u"}"#)
                .expect("a JSON object"),
        });
        let o = credentials(
            &t,
            &t.remote_keys,
            &no_password,
            "remote secret n",
            None,
            None,
        )
        .expect_err("incomplete");
        assert_eq!(o.message, "remote secret n lacks the key(s) password");
    }

    #[test]
    fn bad_credentials_fail_without_their_values() {
        let t = target();
        let cases: Vec<(Data, &str)> = vec![
            (
                data(&[("POSTGRES_HOST", "h"), ("POSTGRES_PORT", "5432")]),
                "credentials-incomplete",
            ),
            (
                data(&[
                    ("POSTGRES_HOST", "h"),
                    ("POSTGRES_PORT", "five"),
                    ("POSTGRES_USER", "u"),
                    ("POSTGRES_PASSWORD", CANARY),
                ]),
                "bad-port",
            ),
            (
                data(&[
                    ("POSTGRES_HOST", "h"),
                    ("POSTGRES_PORT", "5432"),
                    ("POSTGRES_USER", "u"),
                    ("POSTGRES_PASSWORD", ""),
                ]),
                "empty-password",
            ),
            (
                Data::Secret(BTreeMap::from([(
                    "POSTGRES_PASSWORD".to_owned(),
                    "%%%".to_owned(),
                )])),
                "credentials-invalid",
            ),
        ];
        for (d, code) in cases {
            let o = from_secret(&t, &d).expect_err(code);
            assert_eq!(o.code, code, "{}", o.message);
            assert!(
                !o.message.contains(CANARY) && !o.message.contains("five"),
                "{}",
                o.message
            );
        }
        let o = from_secret(&t, &data(&[("POSTGRES_HOST", "h")])).expect_err("incomplete");
        assert_eq!(
            o.message,
            "Secret backstage/backstage-secrets lacks the key(s) POSTGRES_USER, POSTGRES_PASSWORD"
        );
    }

    #[test]
    fn explicit_settings_and_the_password_variable_win() {
        let t = PostgresTarget {
            secret: None,
            host: Some("127.0.0.1".into()),
            port: Some(6543),
            user: Some("ci".into()),
            ..target()
        };
        let c = credentials(
            &t,
            &t.keys,
            &Data::Empty,
            "the config",
            Some(CANARY.into()),
            None,
        )
        .expect("complete");
        assert_eq!(
            (c.host.as_str(), c.port, c.user.as_str()),
            ("127.0.0.1", 6543, "ci")
        );
        assert_eq!(
            credentials(&t, &t.keys, &Data::Empty, "the config", None, None)
                .expect_err("no password")
                .code,
            "empty-password"
        );
    }

    /// RDS endpoints are verified against the shipped RDS CA bundle unless a bundle is
    /// configured; other hosts against the system's roots. The bundle parses.
    #[test]
    fn trusts_the_rds_bundle_for_rds_endpoints() {
        let t = target();
        assert_eq!(
            Trust::of(&t, "goldenpath-dev.c1x2y3.eu-west-1.rds.amazonaws.com"),
            Trust::Rds {
                region: Some("eu-west-1".into())
            }
        );
        assert_eq!(
            Trust::of(&t, "x.y.cn-north-1.rds.amazonaws.com.cn"),
            Trust::Rds {
                region: Some("cn-north-1".into())
            }
        );
        assert_eq!(
            Trust::of(&t, "GOLDENPATH.X.RDS.AMAZONAWS.COM."),
            Trust::Rds { region: None }
        );
        assert_eq!(
            Trust::of(&t, "rds.amazonaws.com.evil.example"),
            Trust::System
        );
        assert_eq!(
            Trust::of(&t, "goldenpath.proxy-c1x2y3.eu-west-1.rds.amazonaws.com"),
            Trust::System,
            "RDS Proxy presents a public certificate"
        );
        let bundled = PostgresTarget {
            ca_bundle: Some("/etc/ca.pem".into()),
            ..target()
        };
        assert_eq!(
            Trust::of(&bundled, "x.rds.amazonaws.com"),
            Trust::Bundle("/etc/ca.pem".into())
        );
        assert!(
            crate::trust::CaBundle::parse(RDS_CA_BUNDLE.as_bytes(), "RDS")
                .expect("the shipped bundle")
                .certificates()
                .len()
                > 100
        );
    }

    /// Each region's part of the RDS bundle is small, and complete: every CA in it is issued
    /// by a CA in it (or by itself), so that any chain an instance of the region presents ends
    /// at a trusted root.
    #[test]
    fn an_rds_region_trusts_its_own_chains_only() {
        use openssl::x509::X509;
        let names = |pem: &str| -> Vec<(String, String)> {
            X509::stack_from_pem(pem.as_bytes())
                .expect("PEM")
                .iter()
                .map(|c| {
                    let text = |n: &openssl::x509::X509NameRef| {
                        n.entries()
                            .map(|e| String::from_utf8_lossy(e.data().as_slice()).into_owned())
                            .collect::<Vec<_>>()
                            .join("/")
                    };
                    (text(c.subject_name()), text(c.issuer_name()))
                })
                .collect()
        };
        let whole = names(RDS_CA_BUNDLE);
        let mut regions: Vec<String> = whole
            .iter()
            .flat_map(|(subject, _)| {
                subject
                    .split(['/', ' '])
                    .filter(|t| is_region(t))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        regions.sort();
        regions.dedup();
        assert!(regions.len() > 20, "{regions:?}");
        for region in &regions {
            let part = names(&rds_bundle(Some(region)));
            assert!(part.len() < 15, "{region}: {}", part.len());
            assert!(
                part.iter()
                    .any(|(s, _)| s.contains(&format!("Amazon RDS {region} "))),
                "{region}"
            );
            for (subject, issuer) in &part {
                assert!(
                    part.iter().any(|(s, _)| s == issuer),
                    "{region}: {subject} is issued by {issuer}, which is not kept"
                );
                assert!(
                    !regions
                        .iter()
                        .any(|r| r != region && subject.contains(&format!("Amazon RDS {r} "))),
                    "{region}: {subject}"
                );
            }
        }
        assert_eq!(names(&rds_bundle(None)).len(), whole.len());
        assert_eq!(names(&rds_bundle(Some("xx-nowhere-9"))).len(), whole.len());
    }

    #[test]
    fn classifies_login_failures() {
        let c = creds();
        for (code, message, want, retry) in [
            (
                Some("28000"),
                "no pg_hba.conf entry for host \"10.0.1.5\", user \"backstage\", database \"backstage\", no encryption",
                "pg-hba-no-encryption",
                Retry::Never,
            ),
            (
                Some("28000"),
                "no pg_hba.conf entry for host \"10.0.1.5\", user \"backstage\", database \"backstage\", SSL encryption",
                "pg-hba-rejected",
                Retry::Never,
            ),
            (
                Some("28P01"),
                "password authentication failed for user \"backstage\"",
                "wrong-password",
                Retry::Never,
            ),
            (
                Some("3D000"),
                "database \"backstage\" does not exist",
                "database-missing",
                Retry::Backoff,
            ),
            (
                Some("42501"),
                "permission denied for database backstage",
                "missing-privilege",
                Retry::Never,
            ),
            (
                None,
                "error performing TLS handshake: error:0A000086:SSL routines:tls_post_process_server_certificate:certificate verify failed:../ssl/statem/statem_clnt.c:1889: (self-signed certificate in certificate chain)",
                "certificate-untrusted",
                Retry::Never,
            ),
            (
                None,
                "error performing TLS handshake: certificate verify failed: (hostname mismatch)",
                "certificate-mismatch",
                Retry::Never,
            ),
            (
                None,
                "error performing TLS handshake: server does not support TLS",
                "tls-unsupported",
                Retry::Never,
            ),
            (
                None,
                "error connecting to server: timed out",
                "database-unreachable",
                Retry::Backoff,
            ),
            (
                None,
                "error connecting to server: failed to lookup address information: Name or service not known",
                "host-unresolvable",
                Retry::Backoff,
            ),
            (
                None,
                "error connecting to server: Connection refused (os error 111)",
                "database-unreachable",
                Retry::Backoff,
            ),
        ] {
            let a = classify(code, message, &c);
            assert_eq!(
                (a.outcome.code.as_str(), a.retry),
                (want, retry),
                "{message}"
            );
            assert!(a.outcome.hint.is_some(), "{want} has a hint");
        }
    }

    #[test]
    fn judges_the_session() {
        let c = creds();
        let ok = Session {
            server_version: "15.18".into(),
            encrypted: true,
            tls_version: Some("TLSv1.3".into()),
            createdb: true,
        };
        let o = judge(&target(), &c, &ok, Some(&Plaintext::Refused));
        assert_eq!(
            (o.status, o.code.as_str()),
            (Status::Pass, "postgres-login")
        );
        assert_eq!(
            o.message,
            "logged in to backstage_plugin_catalog on db.example:5432 as backstage_app over TLSv1.3; PostgreSQL 15.18; CREATEDB granted; plaintext refused"
        );
        let no_createdb = Session {
            createdb: false,
            ..ok.clone()
        };
        assert_eq!(
            judge(&target(), &c, &no_createdb, None).code,
            "missing-createdb"
        );
        let clear = Session {
            encrypted: false,
            ..ok.clone()
        };
        assert_eq!(
            judge(&target(), &c, &clear, None).code,
            "session-not-encrypted"
        );
        assert_eq!(
            judge(&target(), &c, &ok, Some(&Plaintext::Accepted)).code,
            "plaintext-accepted"
        );
        let lax = PostgresTarget {
            ssl_mode: SslMode::Require,
            ..target()
        };
        assert_eq!(judge(&lax, &c, &ok, None).code, "tls-not-verified");
    }

    #[test]
    fn combines_databases_worst_first() {
        let pass = Attempt::settled(Outcome::pass("postgres-login", "ok"));
        let wrong = Attempt::settled(Outcome::fail("wrong-password", "bad").hint("rotate"));
        let down = Attempt::transient(Outcome::fail("database-unreachable", "down"));
        let a = combine(vec![
            ("backstage", (pass.clone(), None)),
            ("grafana", (wrong.clone(), None)),
        ]);
        assert_eq!(
            (
                a.outcome.code.as_str(),
                a.retry.clone(),
                a.outcome.message.as_str()
            ),
            (
                "wrong-password",
                Retry::Never,
                "backstage: ok; grafana: bad"
            )
        );
        let a = combine(vec![
            ("backstage", (down, None)),
            ("grafana", (wrong, None)),
        ]);
        assert_eq!(a.retry, Retry::Backoff, "one failure may still change");
    }
}
