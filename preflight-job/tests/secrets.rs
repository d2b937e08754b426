//! Secrets are never printed. One canary per source a secret reaches preflight from: the
//! kubeconfig's bearer token, an exec credential plugin's token (and the environment the
//! kubeconfig gives the plugin), `PREFLIGHT_PG_PASSWORD`, a Secret's values (the Secret an
//! ExternalSecret synced, read by an app's hook), the remote secrets in Secrets Manager (read
//! at a gate), the Keycloak client secret, AWS secret keys and session tokens (static, and
//! those STS hands out for IRSA's web identity, whose token is a secret too).
//!
//! Every run here is made with every output requested ([`Everywhere`]): the human report and
//! GitHub's annotations on stdout, the JSON and JUnit reports, the step summary
//! (`GITHUB_STEP_SUMMARY`), the termination message, and stderr with `PREFLIGHT_LOG=trace`
//! (every library's trace logging: kube's, hyper's, the AWS SDK's, tokio-postgres',
//! reqwest's). Each run asserts the path it took (a pass, or the failure it provokes), then
//! that no canary, as is, base64-encoded or percent-encoded, appears in any output.

#![allow(clippy::unwrap_used, reason = "a test stops on a broken setup")]

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use fake_kube::FakeKeycloak;
use fake_kube::keycloak::Client;
use serde_json::{Value, json};
use support::moto::{Moto, REGION, ThrottleStub};
use support::pg::{CANARY, GRAFANA_PASSWORD, KEYCLOAK_PASSWORD, TestPostgres, cluster_for, config};
use support::platform::{PERSISTENT_VALUES, Platform};
use support::*;

/// A wrong password, sent and refused: as secret as a right one.
const WRONG_PASSWORD: &str = "canary-wrong-Pa55-3d9a";
/// A value of the synced Secret no check needs (Backstage's GitHub token).
const GITHUB_TOKEN: &str = "ghp_canary0secret0github0token0a1b2c3";
/// The Keycloak client's secret.
const CLIENT_SECRET: &str = "canary-kc-client-secret-6d5e";
/// A static AWS secret key, with the characters that get escaped.
const AWS_SECRET_KEY: &str = "canary/aws+Secret/Key0x4a3b";
/// A static AWS session token.
const AWS_SESSION_TOKEN: &str = "canary-aws-session+token/8f7e=";
/// The web identity token the kubelet projects for IRSA.
const WEB_IDENTITY_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.canary-web-identity-2c1d.c2lnbmF0dXJl";
/// A secret the kubeconfig hands its credential plugin in the environment.
const EXEC_ENV_SECRET: &str = "canary-exec-env-secret-5e1f";
/// A token a credential plugin returns that the server does not accept.
const EXEC_WRONG_TOKEN: &str = "canary-exec-wrong-token-77aa";
/// A token a credential plugin printed before failing.
const EXEC_PRINTED_TOKEN: &str = "canary-exec-printed-token-3c2d";

/// The canaries every test looks for, besides its own: all the constant ones.
fn constant_canaries() -> Vec<(&'static str, String)> {
    [
        ("backstage's password", CANARY),
        ("keycloak's password", KEYCLOAK_PASSWORD),
        ("grafana's password", GRAFANA_PASSWORD),
        ("a wrong password", WRONG_PASSWORD),
        ("a Secret's GitHub token", GITHUB_TOKEN),
        ("the Keycloak client secret", CLIENT_SECRET),
        ("the AWS secret key", AWS_SECRET_KEY),
        ("the AWS session token", AWS_SESSION_TOKEN),
        ("the web identity token", WEB_IDENTITY_TOKEN),
        ("the credential plugin's environment", EXEC_ENV_SECRET),
        ("a credential plugin's wrong token", EXEC_WRONG_TOKEN),
        ("a credential plugin's printed token", EXEC_PRINTED_TOKEN),
    ]
    .into_iter()
    .map(|(what, value)| (what, value.to_owned()))
    .collect()
}

/// The forms a secret could be printed in: as is, base64 (a Secret's data, an Authorization
/// header), and percent-encoded (a form body, a query string).
fn forms(secret: &str) -> Vec<String> {
    use base64::Engine as _;
    let percent: String = secret
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let mut forms = vec![
        secret.to_owned(),
        base64::engine::general_purpose::STANDARD.encode(secret),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
        percent,
    ];
    forms.dedup();
    forms
}

/// Every output of one run: where each goes, and what the run left in it.
struct Everywhere {
    dir: tempfile::TempDir,
}

/// What a run left in every output.
struct Seen {
    run: Run,
    outputs: Vec<(&'static str, String)>,
    report: Value,
}

impl Everywhere {
    fn new() -> Everywhere {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("step-summary.md"), "").unwrap();
        Everywhere { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Asks `cmd` for every output, and for trace logging.
    fn request(&self, cmd: &mut tokio::process::Command) {
        cmd.env("PREFLIGHT_LOG", "trace")
            .env("GITHUB_STEP_SUMMARY", self.path("step-summary.md"))
            .env("GITHUB_ACTIONS", "true");
        cmd.args(["--output", "human", "--output", "github"]);
        cmd.arg("--output")
            .arg(format!("json={}", self.path("report.json").display()));
        cmd.arg("--output")
            .arg(format!("junit={}", self.path("report.xml").display()));
        cmd.arg("--termination-message-path")
            .arg(self.path("termination-log"));
    }

    /// What the run left in every output.
    fn collect(self, run: Run) -> Seen {
        let read = |name: &str| std::fs::read_to_string(self.path(name)).unwrap_or_default();
        let json = read("report.json");
        let report = serde_json::from_str(&json).unwrap_or(Value::Null);
        let outputs = vec![
            ("stdout", run.stdout.clone()),
            ("stderr", run.stderr.clone()),
            ("the JSON report", json),
            ("the JUnit report", read("report.xml")),
            ("the step summary", read("step-summary.md")),
            ("the termination message", read("termination-log")),
        ];
        Seen {
            run,
            outputs,
            report,
        }
    }
}

/// Runs `cmd` with every output and trace logging.
async fn run_everywhere(mut cmd: tokio::process::Command) -> Seen {
    let everywhere = Everywhere::new();
    everywhere.request(&mut cmd);
    let run = run(cmd).await;
    everywhere.collect(run)
}

impl Seen {
    /// Asserts that no canary appears in any output, in any form.
    fn assert_clean(&self, scenario: &str, canaries: &[(&str, String)]) {
        for (output, text) in &self.outputs {
            for (what, secret) in canaries {
                for form in forms(secret) {
                    if let Some(at) = text.find(&form) {
                        let start = text[..at]
                            .char_indices()
                            .rev()
                            .nth(300)
                            .map_or(0, |(i, _)| i);
                        let end = (at + form.len() + 300).min(text.len());
                        let end = (end..=text.len())
                            .find(|&i| text.is_char_boundary(i))
                            .unwrap_or(text.len());
                        panic!(
                            "{scenario}: {output} shows {what} ({form:?}):\n…{}…",
                            &text[start..end]
                        );
                    }
                }
            }
        }
    }

    /// Asserts that the run logged at trace level (the libraries' own logging included), so
    /// that its stderr proves something of it.
    fn assert_traced(&self) {
        assert!(
            self.run
                .stderr
                .lines()
                .filter(|l| l.contains("TRACE"))
                .count()
                > 10,
            "no trace logging on stderr:\n{}",
            self.run.stderr
        );
    }

    /// The result of a check in the JSON report.
    fn check(&self, id: &str) -> Value {
        self.report["checks"]
            .as_array()
            .and_then(|checks| checks.iter().find(|c| c["id"] == id))
            .cloned()
            .unwrap_or_else(|| panic!("no check {id} in {:#}\n{}", self.report, self.run.stderr))
    }

    /// Asserts the exit code and a check's status and code.
    fn assert_ended(&self, code: i32, id: &str, status: &str, outcome: &str) {
        assert_eq!(
            self.run.code,
            code,
            "{}\n{}",
            self.run.stdout,
            tail(&self.run.stderr)
        );
        let c = self.check(id);
        assert_eq!(
            (c["status"].as_str(), c["code"].as_str()),
            (Some(status), Some(outcome)),
            "{c:#}"
        );
    }
}

/// The end of a long trace log, for a failure message.
fn tail(text: &str) -> &str {
    let start = text.len().saturating_sub(4000);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    &text[start..]
}

/// The canaries, plus the kubeconfig's token of `cluster`'s fake server.
fn with_kube_token(cluster: &Cluster) -> Vec<(&'static str, String)> {
    let mut canaries = constant_canaries();
    canaries.push(("the kubeconfig's token", cluster.kube.fake().token()));
    canaries
}

#[tokio::test(flavor = "multi_thread")]
async fn the_kubeconfig_token_is_never_printed() {
    // Passing: every check of tiers 0 to 1.5 but the AWS ones.
    let cluster = Cluster::healthy().await;
    let canaries = with_kube_token(&cluster);
    let seen = run_everywhere(cluster.preflight(&["--tier", "1.5"])).await;
    seen.assert_ended(0, "kube-api", "pass", "api-ready");
    seen.assert_clean("a passing run", &canaries);
    seen.assert_traced();

    // Refused a permission.
    cluster.kube.fake().deny("list", "", "nodes");
    let seen = run_everywhere(cluster.preflight(&["--tier", "0"])).await;
    seen.assert_ended(1, "nodes-ready", "fail", "forbidden");
    seen.assert_clean("a forbidden read", &canaries);

    // The server failing, retried until the deadline.
    let cluster = Cluster::healthy().await;
    let canaries = with_kube_token(&cluster);
    cluster.kube.fake().fail_next(100_000, 503);
    let seen = run_everywhere(cluster.preflight(&["--tier", "0", "--wait", "2s"])).await;
    seen.assert_ended(3, "kube-api", "fail", "api-error");
    seen.assert_clean("a server answering 503 while waiting", &canaries);

    // The token revoked.
    let cluster = Cluster::healthy().await;
    let canaries = with_kube_token(&cluster);
    cluster.kube.fake().revoke_token();
    let seen = run_everywhere(cluster.preflight(&["--tier", "0"])).await;
    seen.assert_ended(1, "kube-api", "fail", "unauthorized");
    seen.assert_clean("a revoked token", &canaries);

    // A server that never answers.
    let cluster = Cluster::healthy().await;
    let canaries = with_kube_token(&cluster);
    cluster.kube.fake().blackhole(true);
    let seen = run_everywhere(cluster.preflight(&[
        "--tier",
        "0",
        "--no-cluster-values",
        "--attempt-timeout",
        "1s",
    ]))
    .await;
    seen.assert_ended(1, "kube-api", "fail", "timed-out");
    seen.assert_clean("a blackholed server", &canaries);
    cluster.kube.fake().blackhole(false);

    // A CA that did not sign the server's certificate: the token is never sent.
    let other = fake_kube::test_certificates().unwrap();
    let kubeconfig = cluster
        .kube
        .fake()
        .kubeconfig_yaml()
        .lines()
        .map(|l| match l.split_once("certificate-authority-data: ") {
            Some((indent, _)) => {
                use base64::Engine as _;
                format!(
                    "{indent}certificate-authority-data: {}",
                    base64::engine::general_purpose::STANDARD.encode(&other.ca_pem)
                )
            }
            None => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    cluster.write("kubeconfig", &kubeconfig);
    let seen = run_everywhere(cluster.preflight(&["--tier", "0", "--no-cluster-values"])).await;
    seen.assert_ended(1, "kube-api", "fail", "api-certificate-untrusted");
    seen.assert_clean("an untrusted server", &canaries);

    // A kubeconfig that does not parse, around its token.
    let token = cluster.kube.fake().token();
    cluster.write(
        "kubeconfig",
        &format!("apiVersion: v1\nkind: Config\nusers:\n- name: x\n  user:\n    token: \"{token}\n    exec: [\n"),
    );
    let seen = run_everywhere(cluster.preflight(&["--tier", "0"])).await;
    assert_eq!(seen.run.code, 2, "{}", seen.run.stderr);
    assert!(
        seen.run.stderr.contains("cannot load the kubeconfig"),
        "{}",
        seen.run.stderr
    );
    seen.assert_clean("a malformed kubeconfig", &canaries);

    // Interrupted while waiting: the partial report.
    let cluster = Cluster::healthy().await;
    let canaries = with_kube_token(&cluster);
    set_all_nodes(&cluster, false);
    let everywhere = Everywhere::new();
    let mut cmd = cluster.preflight(&["--tier", "0", "--wait", "60s"]);
    everywhere.request(&mut cmd);
    let child = cmd.spawn().unwrap();
    cluster.watching("/api/v1/nodes").await;
    let status = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().unwrap().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let seen = everywhere.collect(finish(child, Duration::from_secs(30)).await);
    assert_eq!(seen.run.code, 3, "{}", tail(&seen.run.stderr));
    assert_eq!(seen.check("nodes-ready")["settled"], false);
    seen.assert_clean("an interrupted run", &canaries);
}

/// The fake server's kubeconfig with its user replaced by `plugin`, given a secret in its
/// environment.
fn exec_kubeconfig(cluster: &Cluster, plugin: &Path) -> PathBuf {
    let fake = cluster.kube.fake();
    let text = fake.kubeconfig_yaml();
    let users = text.find("users:\n").unwrap();
    let contexts = text.find("contexts:\n").unwrap();
    let user = format!(
        "users:\n- name: fake\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\n      args: [eks, get-token, --cluster-name, goldenpath-dev]\n      env:\n      - {{name: PLUGIN_SECRET, value: \"{EXEC_ENV_SECRET}\"}}\n      interactiveMode: IfAvailable\n",
        plugin.display()
    );
    cluster.write(
        "exec.kubeconfig",
        &format!("{}{user}{}", &text[..users], &text[contexts..]),
    )
}

/// `preflight --tier 0` with the kubeconfig of `plugin`.
fn with_plugin(cluster: &Cluster, plugin: &Path) -> tokio::process::Command {
    let kubeconfig = exec_kubeconfig(cluster, plugin);
    let mut cmd = preflight_cmd();
    cmd.arg("--kubeconfig").arg(kubeconfig);
    cmd.arg("--values").arg(cluster.path("values.yaml"));
    cmd.args(["--tier", "0"]);
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exec_plugins_token_and_environment_are_never_printed() {
    let cluster = Cluster::healthy().await;
    let canaries = with_kube_token(&cluster);
    let dir = cluster.dir.path();

    // The plugin hands out the server's token.
    let good = plugin(
        dir,
        "good",
        &exec_credential(&cluster.kube.fake().token()),
        "",
        0,
    );
    let seen = run_everywhere(with_plugin(&cluster, &good)).await;
    seen.assert_ended(0, "kube-api", "pass", "api-ready");
    seen.assert_clean("a plugin's token accepted", &canaries);
    seen.assert_traced();

    // A token the server refuses.
    let wrong = plugin(dir, "wrong", &exec_credential(EXEC_WRONG_TOKEN), "", 0);
    let seen = run_everywhere(with_plugin(&cluster, &wrong)).await;
    seen.assert_ended(1, "kube-api", "fail", "unauthorized");
    seen.assert_clean("a plugin's token refused", &canaries);

    // The plugin fails, having printed a credential.
    let failing = plugin(
        dir,
        "failing",
        &exec_credential(EXEC_PRINTED_TOKEN),
        "Error when retrieving token from sso: Token has expired and refresh failed",
        1,
    );
    let seen = run_everywhere(with_plugin(&cluster, &failing)).await;
    seen.assert_ended(1, "kube-api", "fail", "auth-failed");
    seen.assert_clean("a failing plugin", &canaries);

    // The plugin prints something that is no ExecCredential, around a token.
    let garbled = plugin(
        dir,
        "garbled",
        &format!("{{\"status\": {{\"token\": \"{EXEC_PRINTED_TOKEN}\"\n  expirationTimestamp: ["),
        "",
        0,
    );
    let seen = run_everywhere(with_plugin(&cluster, &garbled)).await;
    seen.assert_ended(1, "kube-api", "fail", "auth-failed");
    seen.assert_clean("a plugin's garbled output", &canaries);
}

/// The CI login of `pg`'s backstage database, the password from `PREFLIGHT_PG_PASSWORD`.
fn ci_login(
    pg: &TestPostgres,
    values: &Path,
    password: &str,
    port: u16,
) -> tokio::process::Command {
    let mut cmd = preflight_cmd();
    cmd.env("PREFLIGHT_PG_PASSWORD", password);
    cmd.arg("--values")
        .arg(values)
        .args(support::pg::login_args(port));
    cmd.arg("--pg-ca-bundle").arg(pg.ca());
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn database_passwords_and_secret_values_are_never_printed() {
    let pg = TestPostgres::start();
    let cluster = cluster_for(&pg).await;
    let mut canaries = with_kube_token(&cluster);
    canaries.push(("the Secret's password as the API serves it", b64(CANARY)));
    // A persistent cluster: Backstage's tier (2) is within its ceiling.
    let values = cluster.write("values.yaml", PERSISTENT_VALUES);

    // From CI, the password from the environment.
    let seen = run_everywhere(ci_login(&pg, &values, CANARY, pg.port)).await;
    seen.assert_ended(0, "postgres", "pass", "postgres-login");
    seen.assert_clean("a CI login", &canaries);
    seen.assert_traced();
    let seen = run_everywhere(ci_login(&pg, &values, WRONG_PASSWORD, pg.port)).await;
    seen.assert_ended(1, "postgres", "fail", "wrong-password");
    seen.assert_clean("a CI login with a wrong password", &canaries);
    let closed = closed_addr().port();
    let seen = run_everywhere(ci_login(&pg, &values, CANARY, closed)).await;
    seen.assert_ended(1, "postgres", "fail", "database-unreachable");
    seen.assert_clean("a CI login to a closed port", &canaries);

    // Backstage's own hook: the login from the Secret its ExternalSecret synced, which also
    // holds values no check needs.
    cluster.set_secret_key(
        "backstage",
        "backstage-postgres",
        "GITHUB_TOKEN",
        GITHUB_TOKEN,
    );
    let settings = config(&cluster, &pg, "", false);
    let hook = || cluster.preflight(&["--app", "backstage", "--config", &settings]);
    let seen = run_everywhere(hook()).await;
    seen.assert_ended(0, "postgres", "pass", "postgres-login");
    assert_eq!(seen.check("external-secrets")["status"], "pass");
    seen.assert_clean("an app's hook", &canaries);
    seen.assert_traced();

    cluster.set_secret_key(
        "backstage",
        "backstage-postgres",
        "POSTGRES_PASSWORD",
        WRONG_PASSWORD,
    );
    let seen = run_everywhere(hook()).await;
    seen.assert_ended(1, "postgres", "fail", "wrong-password");
    seen.assert_clean(
        "an app's hook with a wrong password in its Secret",
        &canaries,
    );

    cluster.set_secret_key("backstage", "backstage-postgres", "POSTGRES_PASSWORD", "");
    let seen = run_everywhere(hook()).await;
    seen.assert_ended(1, "postgres", "fail", "empty-password");
    seen.assert_clean("an app's hook with an empty password", &canaries);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_keycloak_client_secret_is_never_printed() {
    let cluster = Cluster::empty().await;
    cluster.write("values.yaml", PERSISTENT_VALUES);
    let mut canaries = with_kube_token(&cluster);
    // The access token the fake Keycloak issues to the client: a bearer credential too.
    canaries.push((
        "the access token Keycloak issued",
        "eyJhbGciOiJSUzI1NiJ9.fake.token".to_owned(),
    ));
    let keycloak = FakeKeycloak::start().await.unwrap();
    let ca = cluster.write("keycloak-ca.pem", keycloak.ca_pem());
    cluster
        .kube
        .apply(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "backstage-oidc", "namespace": "backstage"},
            "data": {"client-secret": b64(CLIENT_SECRET)}
        }))
        .unwrap();
    let settings = cluster
        .write(
            "preflight.yaml",
            &format!(
                "checks:\n  keycloak-realm:\n    url: {}\n    caBundle: {}\n    clientCredentials: {{clientId: backstage, secret: backstage/backstage-oidc}}\n",
                keycloak.url(),
                ca.display()
            ),
        )
        .display()
        .to_string();
    let hook = || {
        cluster.preflight(&[
            "--app",
            "oidc-config",
            "--check",
            "keycloak-realm",
            "--no-cluster-values",
            "--config",
            &settings,
        ])
    };
    let client = |secret: &str| {
        keycloak.update(|r| {
            r.clients.insert(
                "backstage".into(),
                Client {
                    secret: secret.into(),
                    service_accounts: true,
                },
            );
        });
    };

    client(CLIENT_SECRET);
    let seen = run_everywhere(hook()).await;
    seen.assert_ended(0, "keycloak-realm", "pass", "keycloak-realm-served");
    seen.assert_clean("a client-credentials grant", &canaries);
    seen.assert_traced();

    client("rotated");
    let seen = run_everywhere(hook()).await;
    seen.assert_ended(1, "keycloak-realm", "fail", "keycloak-client-rejected");
    seen.assert_clean("a client secret refused", &canaries);

    client(CLIENT_SECRET);
    keycloak.update(|r| r.token_base = Some("http://127.0.0.1:9".into()));
    let seen = run_everywhere(hook()).await;
    seen.assert_ended(
        1,
        "keycloak-realm",
        "fail",
        "keycloak-token-endpoint-untrusted",
    );
    seen.assert_clean("a token endpoint over plain HTTP", &canaries);
}

/// The whole platform's tier-3 gate with static AWS keys that are canaries (moto, not
/// enforcing IAM, takes any).
fn gate_with_canary_keys(platform: &Platform, args: &[&str]) -> tokio::process::Command {
    let mut all = vec!["--tier", "3"];
    all.extend_from_slice(args);
    let mut cmd = platform.preflight(&all);
    cmd.env("AWS_SECRET_ACCESS_KEY", AWS_SECRET_KEY)
        .env("AWS_SESSION_TOKEN", AWS_SESSION_TOKEN);
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_keys_and_remote_secrets_are_never_printed() {
    let platform = Platform::start(PERSISTENT_VALUES).await;
    let canaries = with_kube_token(&platform.cluster);

    // Every check of tier 3's gate: the remote secrets read from Secrets Manager, the logins
    // made with them, every AWS call signed with the canary keys.
    let seen = run_everywhere(gate_with_canary_keys(&platform, &[])).await;
    seen.assert_ended(0, "postgres", "pass", "postgres-login");
    assert_eq!(seen.check("secrets-manager")["status"], "pass");
    seen.assert_clean("tier 3's gate", &canaries);
    seen.assert_traced();

    // Keycloak's remote secret rotated to a password the database does not know.
    platform
        .moto
        .secrets_manager()
        .await
        .put_secret_value()
        .secret_id("goldenpath/dev/keycloak/postgres")
        .secret_string(
            json!({"username": "keycloak_app", "password": WRONG_PASSWORD, "host": "127.0.0.1", "port": platform.pg.port, "dbname": "keycloak", "engine": "postgres"})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    let seen = run_everywhere(gate_with_canary_keys(&platform, &[])).await;
    seen.assert_ended(1, "postgres", "fail", "wrong-password");
    seen.assert_clean("a remote secret with a wrong password", &canaries);

    // A remote secret that is no JSON, around a password.
    platform
        .moto
        .secrets_manager()
        .await
        .put_secret_value()
        .secret_id("goldenpath/dev/keycloak/postgres")
        .secret_string(format!(
            "{{\"password\": \"{KEYCLOAK_PASSWORD}\", username: ["
        ))
        .send()
        .await
        .unwrap();
    let seen = run_everywhere(gate_with_canary_keys(
        &platform,
        &["--check", "secrets-manager"],
    ))
    .await;
    seen.assert_ended(1, "secrets-manager", "fail", "remote-secret-malformed");
    seen.assert_clean("a malformed remote secret", &canaries);

    // Throttled until the deadline.
    let stub = ThrottleStub::start(&platform.moto, usize::MAX);
    let mut cmd = gate_with_canary_keys(&platform, &["--check", "secrets-manager", "--wait", "2s"]);
    cmd.env("AWS_ENDPOINT_URL_SECRETS_MANAGER", &stub.url);
    let seen = run_everywhere(cmd).await;
    seen.assert_ended(3, "secrets-manager", "fail", "aws-throttled");
    seen.assert_clean("a throttled API", &canaries);

    // IAM enforced: keys AWS does not know.
    platform.moto.enforce_iam();
    let seen = run_everywhere(gate_with_canary_keys(
        &platform,
        &[
            "--check",
            "rds-instance",
            "--check",
            "secrets-manager",
            "--check",
            "s3-bucket",
        ],
    ))
    .await;
    assert_eq!(seen.run.code, 1, "{}", seen.run.stdout);
    for id in ["rds-instance", "secrets-manager", "s3-bucket"] {
        assert_eq!(seen.check(id)["status"], "fail", "{:#}", seen.check(id));
    }
    seen.assert_clean("unknown keys", &canaries);
    platform.moto.stop_enforcing_iam();
}

#[tokio::test(flavor = "multi_thread")]
async fn irsa_web_identity_credentials_are_never_printed() {
    let moto = Moto::start();
    moto.create_bucket("goldenpath-dev-loki", REGION).await;
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/5C6F3A0E"},
        "Action": "sts:AssumeRoleWithWebIdentity"}]})
    .to_string();
    let allowed = moto.create_role("preflight", &trust).await;
    moto.put_role_policy(
        "preflight",
        &json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:HeadBucket"], "Resource": "arn:aws:s3:::goldenpath-dev-loki"}]})
        .to_string(),
    )
    .await;
    let refused = moto.create_role("preflight-other", &trust).await;
    let cluster = Cluster::empty().await;
    cluster.write(
        "values.yaml",
        "bootstrap:\n  mode: persistent\n  env: dev\nplatform:\n  rdsAvailable: true\n  s3Available: true\n",
    );
    let token = cluster.write("web-identity-token", WEB_IDENTITY_TOKEN);
    let pod = |role: &str| {
        let mut cmd = preflight_cmd();
        cmd.arg("--kubeconfig").arg(cluster.path("kubeconfig"));
        cmd.arg("--values").arg(cluster.path("values.yaml"));
        cmd.args(["--tier", "2", "--check", "s3-bucket", "--no-cluster-values"]);
        cmd.env("HOME", cluster.dir.path())
            .env("AWS_ENDPOINT_URL", &moto.url)
            .env("AWS_REGION", REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_WEB_IDENTITY_TOKEN_FILE", &token)
            .env("AWS_ROLE_ARN", role)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN");
        cmd
    };
    // Every credential STS handed out so far is a canary too.
    let handed_out = |moto: &Moto| {
        let mut canaries = with_kube_token(&cluster);
        for role in moto.assumed_roles() {
            canaries.push((
                "an assumed role's secret key",
                role["secret_access_key"].as_str().unwrap().to_owned(),
            ));
            canaries.push((
                "an assumed role's session token",
                role["session_token"].as_str().unwrap().to_owned(),
            ));
        }
        canaries
    };

    moto.enforce_iam_after(1);
    let seen = run_everywhere(pod(&allowed)).await;
    seen.assert_ended(0, "s3-bucket", "pass", "s3-bucket-found");
    assert_eq!(moto.assumed_roles().len(), 1);
    seen.assert_clean("a role assumed with a web identity", &handed_out(&moto));
    seen.assert_traced();

    moto.enforce_iam_after(1);
    let seen = run_everywhere(pod(&refused)).await;
    seen.assert_ended(1, "s3-bucket", "fail", "aws-forbidden");
    assert_eq!(moto.assumed_roles().len(), 2);
    seen.assert_clean("an assumed role refused", &handed_out(&moto));

    // STS refusing the exchange (moto, enforcing, refuses the unsigned request).
    moto.enforce_iam();
    let seen = run_everywhere(pod(&allowed)).await;
    assert_eq!(seen.run.code, 1, "{}", tail(&seen.run.stderr));
    assert_eq!(seen.check("s3-bucket")["status"], "fail");
    seen.assert_clean("a web identity refused", &handed_out(&moto));
}
