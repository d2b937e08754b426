//! `postgres`: each app logs in to its database with its own credentials over TLS, as the app
//! will: not a TCP probe. After login: the session is encrypted, the database exists, the
//! server's version is reported and the role has `CREATEDB` where the app needs it.
//!
//! Credentials come from the synced Secret (key names configurable) or from the config and an
//! environment variable. The password lives in a `Password` that never prints.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use native_tls::{Certificate, Protocol, TlsConnector};
use postgres_native_tls::MakeTlsConnector;
use tokio::sync::OnceCell;
use tokio_postgres::config::SslMode as WireSslMode;

use crate::access::{KubeRead, Reads};
use crate::check::{Attempt, Check, Context, KubeWatch};
use crate::checks::kubernetes::fetch::{self, SECRETS};
use crate::config::{PostgresSettings, PostgresTarget, SslMode};
use crate::outcome::{Outcome, Status, error_chain};

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

/// Assembles credentials from the Secret's data (decoded) and the target's overrides; a
/// failure names keys, never values.
pub(crate) fn credentials(
    target: &PostgresTarget,
    data: &BTreeMap<String, String>,
    env_password: Option<String>,
) -> Result<Credentials, Outcome> {
    let decoded = |key: &str| fetch::secret_text(data, key);
    let keys = &target.keys;
    let mut missing = Vec::new();
    let mut pick =
        |explicit: Option<String>, key: Option<&str>| -> Result<Option<String>, Outcome> {
            if explicit.is_some() {
                return Ok(explicit);
            }
            let Some(key) = key else { return Ok(None) };
            let value = decoded(key)?;
            if value.is_none() {
                missing.push(key.to_owned());
            }
            Ok(value)
        };
    let from_secret = |k: &str| target.secret.as_ref().map(|_| k.to_owned());
    let host = pick(target.host.clone(), from_secret(&keys.host).as_deref())?;
    let port = pick(
        target.port.map(|p| p.to_string()),
        from_secret(&keys.port).as_deref(),
    )?;
    let user = pick(target.user.clone(), from_secret(&keys.user).as_deref())?;
    let password = pick(env_password, from_secret(&keys.password).as_deref())?;
    let database = pick(
        target.database.clone(),
        keys.database.as_deref().and_then(from_secret).as_deref(),
    )?;
    let source = target
        .secret
        .as_ref()
        .map_or_else(|| "the config".to_owned(), |s| format!("Secret {s}"));
    if !missing.is_empty() {
        return Err(Outcome::fail("credentials-incomplete", format!("{source} lacks the key(s) {}", missing.join(", ")))
            .hint("Map the keys in the ExternalSecret, or name the Secret's keys in checks.postgres.databases[].keys."));
    }
    let (Some(host), Some(user), Some(database)) =
        (host, user, database.or_else(|| target.database.clone()))
    else {
        return Err(Outcome::fail(
            "credentials-incomplete",
            format!("no host, user or database for {} in {source}", target.app),
        )
        .hint("Set them in checks.postgres.databases[] or map them in the Secret."));
    };
    let port_text = port.unwrap_or_else(|| "5432".to_owned());
    let port: u16 = port_text.trim().parse().map_err(|_| {
        Outcome::fail(
            "bad-port",
            format!(
                "the port in {source} is not a port number ({} characters)",
                port_text.len()
            ),
        )
    })?;
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

/// The PEM certificates of a bundle such as the RDS global bundle.
fn pem_certificates(bundle: &str) -> Vec<String> {
    let marker = "-----BEGIN CERTIFICATE-----";
    bundle
        .split(marker)
        .skip(1)
        .map(|body| format!("{marker}{body}"))
        .collect()
}

/// The TLS connector for the target's `sslMode` and CA bundle.
fn connector(target: &PostgresTarget) -> Result<MakeTlsConnector, Outcome> {
    let mut builder = TlsConnector::builder();
    builder.min_protocol_version(Some(Protocol::Tlsv12));
    if let Some(path) = &target.ca_bundle {
        // Like libpq's sslrootcert, a bundle replaces the system's CAs rather than adding to
        // them: a certificate from a public CA must not pass for the RDS instance's.
        builder.disable_built_in_roots(true);
        let text = std::fs::read_to_string(path).map_err(|e| {
            Outcome::fail(
                "ca-bundle-unreadable",
                format!("cannot read the CA bundle {}: {e}", path.display()),
            )
        })?;
        let pems = pem_certificates(&text);
        if pems.is_empty() {
            return Err(Outcome::fail(
                "ca-bundle-invalid",
                format!("{} holds no PEM certificate", path.display()),
            ));
        }
        for (i, pem) in pems.iter().enumerate() {
            let cert = Certificate::from_pem(pem.as_bytes()).map_err(|e| {
                Outcome::fail(
                    "ca-bundle-invalid",
                    format!(
                        "certificate {} of {} is malformed: {e}",
                        i + 1,
                        path.display()
                    ),
                )
            })?;
            builder.add_root_certificate(cert);
        }
    }
    match target.ssl_mode {
        SslMode::Require => {
            builder
                .danger_accept_invalid_certs(true)
                .danger_accept_invalid_hostnames(true);
        }
        SslMode::VerifyCa => {
            builder.danger_accept_invalid_hostnames(true);
        }
        SslMode::VerifyFull => {}
    }
    builder
        .build()
        .map(MakeTlsConnector::new)
        .map_err(|e| Outcome::fail("tls-setup-failed", format!("cannot set up TLS: {e}")))
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

/// TLS connectors by trust setting. Building one parses the system's CA bundle (twice, in
/// native-tls): tens of milliseconds of CPU, done once per setting on a blocking thread, then
/// shared by every database and attempt with that setting.
#[derive(Default)]
struct Connectors(Mutex<TlsCells>);

type TlsCells = HashMap<(SslMode, Option<PathBuf>), Arc<OnceCell<MakeTlsConnector>>>;

impl fmt::Debug for Connectors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Connectors")
    }
}

impl Connectors {
    async fn get(&self, target: &PostgresTarget) -> Result<MakeTlsConnector, Outcome> {
        let key = (target.ssl_mode, target.ca_bundle.clone());
        let cell = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key)
            .or_default()
            .clone();
        cell.get_or_try_init(|| {
            let target = target.clone();
            async move {
                tokio::task::spawn_blocking(move || connector(&target))
                    .await
                    .unwrap_or_else(|e| {
                        Err(Outcome::fail(
                            "tls-setup-failed",
                            format!("cannot set up TLS: {e}"),
                        ))
                    })
            }
        })
        .await
        .cloned()
    }
}

/// The `postgres` check.
#[derive(Debug)]
pub struct PostgresLogin {
    settings: PostgresSettings,
    connectors: Connectors,
}

impl PostgresLogin {
    /// A check with these settings.
    #[must_use]
    pub fn new(settings: PostgresSettings) -> Self {
        PostgresLogin {
            settings,
            connectors: Connectors::default(),
        }
    }
}

/// One database's attempt; a watch on its Secret when its credentials came from one.
async fn attempt_one(
    ctx: &Context,
    connectors: &Connectors,
    target: &PostgresTarget,
) -> (Attempt, Option<KubeWatch>) {
    let (data, watch) = match &target.secret {
        Some(secret) => {
            match fetch::get_watchable::<fetch::SecretDoc>(
                ctx,
                &SECRETS,
                Some(&secret.namespace),
                &secret.name,
            )
            .await
            {
                Ok((Some(doc), watch)) => (doc.data, Some(watch)),
                Ok((None, watch)) => {
                    let outcome = Outcome::fail("credentials-secret-missing", format!("Secret {secret} with {}'s database credentials not found", target.app))
                    .hint("It is written by the app's ExternalSecret: see the external-secrets check.");
                    return (
                        Attempt::until_changed(outcome, vec![watch.clone()]),
                        Some(watch),
                    );
                }
                Err(failed) => return (*failed, None),
            }
        }
        None => (BTreeMap::new(), None),
    };
    let env_password = target
        .password_env
        .as_ref()
        .and_then(|var| std::env::var(var).ok());
    let creds = match credentials(target, &data, env_password) {
        Ok(c) => c,
        Err(outcome) => return (Attempt::settled(input_hint(outcome)), watch),
    };
    let tls = match connectors.get(target).await {
        Ok(t) => t,
        Err(outcome) => return (Attempt::settled(input_hint(outcome)), watch),
    };
    let session = match session(&creds, tls).await {
        Ok(s) => s,
        Err(e) => {
            let code = e.code().map(|c| c.code().to_owned());
            let message = e
                .as_db_error()
                .map_or_else(|| error_chain(&e), |db| db.message().to_owned());
            return (classify(code.as_deref(), &message, &creds), watch);
        }
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

#[async_trait::async_trait]
impl Check for PostgresLogin {
    fn reads(&self) -> Reads {
        Reads::kube(
            self.settings
                .databases
                .iter()
                .filter_map(|d| d.secret.as_ref())
                .map(|s| KubeRead::secret(&s.namespace, &s.name))
                .collect(),
        )
    }

    async fn attempt(&self, ctx: &Context) -> Attempt {
        let results = futures::future::join_all(
            self.settings
                .databases
                .iter()
                .map(|t| attempt_one(ctx, &self.connectors, t)),
        )
        .await;
        combine(
            self.settings
                .databases
                .iter()
                .map(|t| t.app.as_str())
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
    use crate::config::{Config, ObjectRef};
    use base64::Engine as _;

    fn target() -> PostgresTarget {
        Config::default().checks.postgres.databases[0].clone()
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), b64(v)))
            .collect()
    }

    const CANARY: &str = "canary-Pa55-do-not-print";

    fn creds() -> Credentials {
        credentials(
            &target(),
            &data(&[
                ("POSTGRES_HOST", "db.example"),
                ("POSTGRES_PORT", "5432"),
                ("POSTGRES_USER", "backstage"),
                ("POSTGRES_PASSWORD", CANARY),
            ]),
            None,
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
            ("db.example", 5432, "backstage", "backstage")
        );
        assert!(!format!("{c:?}").contains(CANARY));
        let rds = PostgresTarget {
            secret: Some(ObjectRef::new("monitoring", "grafana-db")),
            keys: crate::config::CredentialKeys::rds(),
            database: None,
            ..target()
        };
        let c = credentials(
            &rds,
            &data(&[
                ("host", "h"),
                ("port", "6432"),
                ("username", "grafana"),
                ("password", "p"),
                ("dbname", "grafana"),
            ]),
            None,
        )
        .expect("complete");
        assert_eq!((c.port, c.database.as_str()), (6432, "grafana"));
    }

    #[test]
    fn bad_credentials_fail_without_their_values() {
        let t = target();
        let cases: Vec<(BTreeMap<String, String>, &str)> = vec![
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
                BTreeMap::from([("POSTGRES_PASSWORD".to_owned(), "%%%".to_owned())]),
                "credentials-invalid",
            ),
        ];
        for (d, code) in cases {
            let o = credentials(&t, &d, None).expect_err(code);
            assert_eq!(o.code, code, "{}", o.message);
            assert!(
                !o.message.contains(CANARY) && !o.message.contains("five"),
                "{}",
                o.message
            );
        }
        let o = credentials(&t, &data(&[("POSTGRES_HOST", "h")]), None).expect_err("incomplete");
        assert_eq!(
            o.message,
            "Secret backstage/backstage-postgres lacks the key(s) POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD"
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
        let c = credentials(&t, &BTreeMap::new(), Some(CANARY.into())).expect("complete");
        assert_eq!(
            (c.host.as_str(), c.port, c.user.as_str()),
            ("127.0.0.1", 6543, "ci")
        );
        assert_eq!(
            credentials(&t, &BTreeMap::new(), None)
                .expect_err("no password")
                .code,
            "empty-password"
        );
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
            "logged in to backstage on db.example:5432 as backstage over TLSv1.3; PostgreSQL 15.18; CREATEDB granted; plaintext refused"
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

    #[test]
    fn splits_pem_bundles() {
        let bundle = "junk\n-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_certificates(bundle).len(), 2);
        assert!(pem_certificates("nothing").is_empty());
    }
}
