//! A throwaway PostgreSQL 15 server with TLS for the end-to-end tests: its own CA, `hostssl`
//! only in pg_hba.conf, and roles with and without CREATEDB. It runs as the `postgres` user
//! when the tests run as root (PostgreSQL refuses root), and stops when dropped. A role
//! `blocked` is rejected by pg_hba.conf; database `locked` refuses CONNECT to the app roles.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use tempfile::TempDir;

use super::{Cluster, b64};

/// The postgres check's own query about the session (version, TLS, CREATEDB), for the
/// benchmarks' `psql` to send the same.
pub(crate) const SESSION_QUERY: &str = "SELECT current_setting('server_version'), coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false), (SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()), coalesce((SELECT rolcreatedb FROM pg_roles WHERE rolname = current_user), false)";

/// The password of the `backstage` role: tests assert it appears in no output.
pub(crate) const CANARY: &str = "canary-Pa55-do-not-print-7f3e";
/// The password of the `grafana` role.
pub(crate) const GRAFANA_PASSWORD: &str = "grafana-Pa55-2b1c";
/// The password of Keycloak's `keycloak_app` role: also never printed.
pub(crate) const KEYCLOAK_PASSWORD: &str = "keycloak-Pa55-do-not-print-91ad";

/// A PostgreSQL 15 program by name, the versioned binary itself where installed (Debian's
/// `/usr/bin/psql` is `pg_wrapper`, a Perl script that picks a version, then execs it).
pub(crate) fn bin(name: &str) -> PathBuf {
    let versioned = Path::new("/usr/lib/postgresql/15/bin").join(name);
    if versioned.exists() {
        versioned
    } else {
        PathBuf::from(name)
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// `cmd` as the `postgres` user when we are root; `setpriv` execs without forking, so killing
/// the child kills the server itself.
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ])
        .arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("bound").port()
}

/// The running server.
pub(crate) struct TestPostgres {
    pub(crate) port: u16,
    pub(crate) dir: TempDir,
    child: std::process::Child,
}

impl TestPostgres {
    /// The CA that signed the server's certificate.
    pub(crate) fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// A CA that did not sign it.
    pub(crate) fn other_ca(&self) -> PathBuf {
        self.dir.path().join("other-ca.crt")
    }

    /// Starts the server and creates the roles and databases; panics with the server's log if
    /// it does not come up.
    pub(crate) fn start() -> TestPostgres {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let certs = fake_kube::test_certificates().expect("certificates");
        let other = fake_kube::test_certificates().expect("certificates");
        std::fs::write(root.join("ca.crt"), &certs.ca_pem).expect("write");
        std::fs::write(root.join("other-ca.crt"), &other.ca_pem).expect("write");
        std::fs::write(root.join("server.crt"), &certs.cert_pem).expect("write");
        std::fs::write(root.join("server.key"), &certs.key_pem).expect("write");
        set_mode(&root.join("server.key"), 0o600);
        set_mode(root, 0o755);
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(root)
                .status()
                .expect("chown");
            assert!(status.success());
        }
        let data = root.join("data");
        let out = as_postgres(&bin("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // TLS only over TCP: a plaintext login gets "no pg_hba.conf entry … no encryption".
        std::fs::write(data.join("pg_hba.conf"), "local all all trust\nhostssl all blocked 127.0.0.1/32 reject\nhostssl all all 127.0.0.1/32 scram-sha-256\nhostssl all all 127.0.0.2/32 scram-sha-256\n").expect("pg_hba");
        let port = free_port();
        let log = std::fs::File::create(root.join("server.log")).expect("log");
        let child = as_postgres(&bin("postgres"))
            .arg("-D")
            .arg(&data)
            .args([
                "-c",
                "listen_addresses=127.0.0.1,127.0.0.2",
                "-c",
                &format!("port={port}"),
                "-c",
                "ssl=on",
            ])
            .args([
                "-c",
                &format!("ssl_cert_file={}", root.join("server.crt").display()),
            ])
            .args([
                "-c",
                &format!("ssl_key_file={}", root.join("server.key").display()),
            ])
            .args(["-c", &format!("unix_socket_directories={}", root.display())])
            .args(["-c", "fsync=off", "-c", "log_connections=on"])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("postgres starts");
        let pg = TestPostgres { port, dir, child };
        let started = Instant::now();
        while !pg.psql("SELECT 1").status.success() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "postgres did not start: {}",
                pg.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // One statement per call: CREATE DATABASE cannot run inside psql's implicit transaction.
        for sql in [
            format!("CREATE ROLE backstage LOGIN CREATEDB PASSWORD '{CANARY}'"),
            "CREATE DATABASE backstage OWNER backstage".to_owned(),
            format!("CREATE ROLE grafana LOGIN PASSWORD '{GRAFANA_PASSWORD}'"),
            "CREATE DATABASE grafana OWNER grafana".to_owned(),
            // Keycloak's login: its own database, no CREATEDB.
            format!("CREATE ROLE keycloak_app LOGIN PASSWORD '{KEYCLOAK_PASSWORD}'"),
            "CREATE DATABASE keycloak OWNER keycloak_app".to_owned(),
            // A role pg_hba.conf rejects, and a database it may not connect to.
            "CREATE ROLE blocked LOGIN PASSWORD 'blocked'".to_owned(),
            "CREATE DATABASE locked".to_owned(),
            "REVOKE CONNECT ON DATABASE locked FROM PUBLIC".to_owned(),
        ] {
            let out = pg.psql(&sql);
            assert!(
                out.status.success(),
                "setup: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        pg
    }

    /// Runs SQL as the superuser over the Unix socket.
    pub(crate) fn psql(&self, sql: &str) -> std::process::Output {
        Command::new("psql")
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-h",
            ])
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string(), "-c", sql])
            .output()
            .expect("psql runs")
    }

    /// The server's log, for failure messages.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        // SIGINT is PostgreSQL's fast shutdown: backends end, the postmaster exits.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A healthy cluster whose synced Secrets point at the test server.
pub(crate) async fn cluster_for(pg: &TestPostgres) -> Cluster {
    let cluster = Cluster::healthy().await;
    let port = pg.port.to_string();
    cluster
        .kube
        .update("v1", "Secret", Some("backstage"), "backstage-postgres", |s| {
            s["data"] = json!({"POSTGRES_HOST": b64("127.0.0.1"), "POSTGRES_PORT": b64(&port), "POSTGRES_USER": b64("backstage"), "POSTGRES_PASSWORD": b64(CANARY)});
        })
        .expect("the fixture has the Secret");
    cluster
        .kube
        .update("v1", "Secret", Some("monitoring"), "grafana-db", |s| {
            s["data"] = json!({"host": b64("127.0.0.1"), "port": b64(&port), "username": b64("grafana"), "password": b64(GRAFANA_PASSWORD), "dbname": b64("grafana")});
        })
        .expect("the fixture has the Secret");
    cluster
}

/// A config with the backstage database (`extra` settings replace its defaults), and
/// optionally grafana's and keycloak's.
pub(crate) fn config(
    cluster: &Cluster,
    pg: &TestPostgres,
    extra: &str,
    with_grafana: bool,
) -> String {
    let ca = pg.ca();
    let mut settings: Vec<(String, String)> = vec![
        ("secret".into(), "backstage/backstage-postgres".into()),
        ("database".into(), "backstage".into()),
        ("requireCreatedb".into(), "true".into()),
        ("caBundle".into(), ca.display().to_string()),
    ];
    for line in extra.lines() {
        let (key, value) = line
            .split_once(": ")
            .expect("extra settings are `key: value` lines");
        settings.retain(|(k, _)| k != key);
        settings.push((key.into(), value.into()));
    }
    let mut yaml = String::from("checks:\n  postgres:\n    databases:\n    - app: backstage\n");
    for (k, v) in settings {
        yaml.push_str(&format!("      {k}: {v}\n"));
    }
    if with_grafana {
        yaml.push_str(&format!(
            "    - app: grafana-postgresql\n      secret: monitoring/grafana-db\n      keys: {{host: host, port: port, user: username, password: password, database: dbname}}\n      caBundle: {}\n",
            ca.display()
        ));
        // Keycloak's, as the defaults have it (tier 3's gate, its remote secret), trusting
        // the test server's CA.
        yaml.push_str(&format!(
            "    - app: keycloak\n      database: keycloak\n      caBundle: {}\n",
            ca.display()
        ));
    }
    // The fixture's ExternalSecrets, which the apps' own hooks check with their logins.
    yaml.push_str("  external-secrets:\n    secrets:\n    - {app: backstage, externalSecret: backstage/backstage-postgres, keys: [POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD]}\n    - {app: grafana-postgresql, externalSecret: monitoring/grafana-postgres, secret: grafana-db, keys: [username, password, host, port, dbname]}\n");
    cluster.write("preflight.yaml", &yaml).display().to_string()
}

/// `preflight` logging in to the backstage database of `pg` from CI: connection flags, the
/// password from `$PREFLIGHT_PG_PASSWORD`, no cluster, a JSON report to `output`.
pub(crate) fn login_cmd(
    pg: &TestPostgres,
    values: &Path,
    password: &str,
    output: &str,
) -> tokio::process::Command {
    let mut cmd = super::preflight_cmd();
    cmd.env("PREFLIGHT_PG_PASSWORD", password);
    cmd.arg("--values").arg(values).args(login_args(pg.port));
    cmd.args(["--pg-require-createdb", "--output", output]);
    cmd.arg("--pg-ca-bundle").arg(pg.ca());
    cmd
}

/// The flags of a CI login to backstage's database on `127.0.0.1:port`, with no cluster: the
/// tier-2 gate's `postgres` check alone (the password comes from `$PREFLIGHT_PG_PASSWORD`).
pub(crate) fn login_args(port: u16) -> Vec<String> {
    [
        "--no-cluster-values",
        "--contract-rules",
        "adr-0180",
        "--max-tier",
        "2",
        "--tier",
        "2",
        "--check",
        "postgres",
        "--pg-host",
        "127.0.0.1",
        "--pg-port",
        &port.to_string(),
        "--pg-user",
        "backstage",
        "--pg-database",
        "backstage",
    ]
    .map(str::to_owned)
    .to_vec()
}
