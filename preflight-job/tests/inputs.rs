//! Every input the run takes, given wrong: each flag value (and the `PREFLIGHT_*` variable
//! behind it), the values file, the config file, the kubeconfig and every CA bundle. Each case
//! ends with exit 2, a message naming the source (flag, variable or file), the place (line and
//! column, the key path, or the part of the value) and the problem, and nothing checked: the
//! API server received no request but the read of the bootstrap ConfigMap, and no report was
//! printed.

#![expect(
    clippy::unwrap_used,
    reason = "the cases' helpers stop on a broken setup"
)]

mod support;

use base64::Engine as _;
use serde_json::json;
use support::*;

/// The bootstrap ConfigMap the run reads before anything is planned.
const CONFIGMAP: &str = "/api/v1/namespaces/kube-system/configmaps/goldenpath-bootstrap";

/// One wrong input: the arguments and variables that give it, and what stderr must say.
struct Case {
    name: &'static str,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    says: Vec<String>,
}

fn case(name: &'static str, args: &[&str], says: &[&str]) -> Case {
    Case {
        name,
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        env: Vec::new(),
        says: says.iter().map(|s| (*s).to_owned()).collect(),
    }
}

impl Case {
    fn env(mut self, var: &'static str, value: &str) -> Case {
        self.env.push((var, value.to_owned()));
        self
    }
}

/// The scratch files of the cases.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }
}

/// The PEM of a real certificate (the fake API server's CA), and its DER.
fn certificate(cluster: &Cluster) -> (String, Vec<u8>) {
    let pem = cluster.kube.fake().ca_pem();
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    (pem, der)
}

/// Runs one case against `cluster`, with its kubeconfig and the ephemeral values unless the
/// case gives its own, and checks the promise of this file.
async fn assert_refused(cluster: &Cluster, case: &Case) {
    let mark = cluster.kube.fake().requests().len();
    let mut cmd = preflight_cmd();
    let has = |flag: &str| {
        case.args
            .iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    };
    // `$KUBECONFIG` is read only when no `--kubeconfig` is given.
    if !has("--kubeconfig") && !case.env.iter().any(|(v, _)| *v == "KUBECONFIG") {
        cmd.arg("--kubeconfig").arg(cluster.path("kubeconfig"));
    }
    if !has("--values") {
        cmd.arg("--values").arg(cluster.path("values.yaml"));
    }
    cmd.args(&case.args);
    cmd.env("HOME", cluster.dir.path());
    for (var, value) in &case.env {
        cmd.env(var, value);
    }
    let run = run(cmd).await;
    let name = case.name;
    assert_eq!(
        run.code, 2,
        "{name}: exit {}\nstdout:\n{}\nstderr:\n{}",
        run.code, run.stdout, run.stderr
    );
    for needle in &case.says {
        assert!(
            run.stderr.contains(needle.as_str()),
            "{name}: stderr lacks {needle:?}:\n{}",
            run.stderr
        );
    }
    assert!(!run.stderr.contains("panicked"), "{name}: {}", run.stderr);
    assert!(
        run.stdout.is_empty(),
        "{name}: a report was printed:\n{}",
        run.stdout
    );
    let requests: Vec<String> = cluster.kube.fake().requests()[mark..]
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert!(
        requests.iter().all(|p| p == CONFIGMAP),
        "{name}: a check ran: {requests:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_flag_value_is_a_usage_error_naming_the_flag_or_its_variable() {
    let cluster = Cluster::empty().await;
    let cases = [
        case(
            "--wait not a duration",
            &["--wait", "soon"],
            &["'--wait <DURATION>'", "not a duration"],
        ),
        case(
            "--wait negative",
            &["--wait", "-5s"],
            &["'--wait <DURATION>'", "not negative"],
        ),
        case(
            "--wait zero",
            &["--wait=0s"],
            &["'--wait <DURATION>'", "no time at all"],
        ),
        case(
            "--wait beyond any deadline",
            &["--wait", "500000000000y"],
            &["'--wait <DURATION>'", "longer than the longest accepted"],
        ),
        case(
            "$PREFLIGHT_WAIT",
            &[],
            &[
                "'--wait <DURATION>' (from $PREFLIGHT_WAIT)",
                "not a duration",
            ],
        )
        .env("PREFLIGHT_WAIT", "five minutes"),
        case(
            "--attempt-timeout zero",
            &["--attempt-timeout", "0"],
            &["'--attempt-timeout <DURATION>'", "no time at all"],
        ),
        case(
            "$PREFLIGHT_ATTEMPT_TIMEOUT",
            &[],
            &[
                "'--attempt-timeout <DURATION>' (from $PREFLIGHT_ATTEMPT_TIMEOUT)",
                "not a duration",
            ],
        )
        .env("PREFLIGHT_ATTEMPT_TIMEOUT", "10 parsecs"),
        case(
            "--values-configmap without a namespace",
            &["--values-configmap", "goldenpath-bootstrap"],
            &[
                "'--values-configmap <NS/NAME[:KEY]>'",
                "\"goldenpath-bootstrap\" is not NAMESPACE/NAME[:KEY]",
            ],
        ),
        case(
            "--values-configmap with a bad namespace",
            &["--values-configmap", "Kube_System/goldenpath-bootstrap"],
            &[
                "'--values-configmap <NS/NAME[:KEY]>'",
                "namespace \"Kube_System\" is not a namespace name",
            ],
        ),
        case(
            "--values-configmap with an empty key",
            &["--values-configmap", "kube-system/goldenpath-bootstrap:"],
            &[
                "'--values-configmap <NS/NAME[:KEY]>'",
                "key \"\" is not a ConfigMap key",
            ],
        ),
        case(
            "$PREFLIGHT_VALUES_CONFIGMAP",
            &[],
            &[
                "'--values-configmap <NS/NAME[:KEY]>' (from $PREFLIGHT_VALUES_CONFIGMAP)",
                "name \"goldenpath/bootstrap\" is not a ConfigMap name",
            ],
        )
        .env(
            "PREFLIGHT_VALUES_CONFIGMAP",
            "kube-system/goldenpath/bootstrap",
        ),
        case(
            "--pg-port zero",
            &["--pg-host", "127.0.0.1", "--pg-port", "0"],
            &["'--pg-port <PG_PORT>'", "0 is not in 1..=65535"],
        ),
        case(
            "--pg-port too large",
            &["--pg-host", "127.0.0.1", "--pg-port", "70000"],
            &["'--pg-port <PG_PORT>'", "70000 is not in 1..=65535"],
        ),
        case(
            "$PREFLIGHT_PG_PORT",
            &["--pg-host", "127.0.0.1"],
            &[
                "'--pg-port <PG_PORT>' (from $PREFLIGHT_PG_PORT)",
                "invalid digit",
            ],
        )
        .env("PREFLIGHT_PG_PORT", "postgres"),
        case(
            "--output of an unknown format",
            &["--output", "xml"],
            &["'--output <FORMAT[=PATH]>'", "unknown format \"xml\""],
        ),
        case(
            "--output with an empty path",
            &["--output", "json="],
            &["'--output <FORMAT[=PATH]>'", "the path after '=' is empty"],
        ),
        case(
            "--output twice on stdout",
            &["--output", "human", "--output", "json"],
            &["--output: at most one of human, json and junit can go to standard output"],
        ),
        case(
            "$PREFLIGHT_OUTPUT",
            &[],
            &["$PREFLIGHT_OUTPUT: at most one of human, json and junit"],
        )
        .env("PREFLIGHT_OUTPUT", "json,junit"),
        case(
            "$PREFLIGHT_OUTPUT of an unknown format",
            &[],
            &[
                "'--output <FORMAT[=PATH]>' (from $PREFLIGHT_OUTPUT)",
                "unknown format \"yaml\"",
            ],
        )
        .env("PREFLIGHT_OUTPUT", "junit=r.xml,yaml"),
        case(
            "--tier that is no tier",
            &["--tier", "2.5"],
            &["'--tier <TIER>'", "\"2.5\" is not a tier"],
        ),
        case(
            "$PREFLIGHT_TIER",
            &[],
            &[
                "'--tier <TIER>' (from $PREFLIGHT_TIER)",
                "\"high\" is not a tier",
            ],
        )
        .env("PREFLIGHT_TIER", "high"),
        case(
            "--tier above the ceiling",
            &["--tier", "2"],
            &[
                "tier 2 is above this cluster's ceiling 1.5",
                "bootstrap.mode ephemeral (",
                "values.yaml:2)",
            ],
        ),
    ];
    for case in &cases {
        assert_refused(&cluster, case).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_file_is_a_configuration_error_naming_the_file_the_place_and_the_problem() {
    let cluster = Cluster::empty().await;
    let files = Files {
        dir: tempfile::tempdir().unwrap(),
    };
    let (pem, der) = certificate(&cluster);
    let kubeconfig = cluster.kube.kubeconfig_yaml();
    let ca_data = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("certificate-authority-data: "))
        .unwrap()
        .to_owned();
    let with_ca =
        |ca: &str| kubeconfig.replace(&format!("certificate-authority-data: {ca_data}"), ca);

    // Each case its own file: the cases are all written before the first runs.
    let values = |name: &str, text: &[u8]| files.write(name, text);
    let config = |name: &str, text: &str| files.write(name, text);
    let cases = [
        case(
            "values file missing",
            &["--values", &files.path("absent.yaml")],
            &["cannot read values file", "absent.yaml", "No such file"],
        ),
        case(
            "values: an unknown key",
            &[
                "--values",
                &values("unknown-key.yaml", b"bootstrap:\n  mode: ephemeral\n  maxTeir: \"1.5\"\n"),
            ],
            &["unknown-key.yaml:3:3: bootstrap.maxTeir: unknown field `maxTeir`"],
        ),
        case(
            "values: not a boolean",
            &[
                "--values",
                &values(
                    "maybe.yaml",
                    b"bootstrap:\n  mode: ephemeral\n  env: dev\n  buildId: b1\nplatform:\n  rdsAvailable: maybe\n",
                ),
            ],
            &["maybe.yaml:6:17: platform.rdsAvailable: invalid boolean"],
        ),
        case(
            "values: a list for a string",
            &["--values", &values("list.yaml", b"bootstrap:\n  mode: [ephemeral]\n")],
            &["list.yaml:2:9: bootstrap.mode: "],
        ),
        case(
            "values: not UTF-8",
            &["--values", &values("latin1.yaml", b"bootstrap:\n  env: d\xffv\n")],
            &["latin1.yaml:2:9: not UTF-8 text (byte 0xff)"],
        ),
        case(
            "values: a mode that is none",
            &[
                "--values",
                &values("sometimes.yaml", b"bootstrap:\n  mode: sometimes\n  env: dev\n"),
            ],
            &["sometimes.yaml:2: bootstrap.mode: \"sometimes\" is not a mode"],
        ),
        case(
            "config file missing",
            &["--config", &files.path("absent-config.yaml")],
            &["cannot read config file", "absent-config.yaml"],
        ),
        case(
            "config: an unknown key",
            &[
                "--config",
                &config("minready.yaml", "checks:\n  nodes-ready:\n    minready: 3\n"),
            ],
            &["minready.yaml:3:5: checks.nodes-ready.minready: unknown field `minready`"],
        ),
        case(
            "config: not a duration",
            &["--config", &config("soon.yaml", "runner:\n  attemptTimeout: soon\n")],
            &["soon.yaml:2:19: runner.attemptTimeout: \"soon\" is not a duration"],
        ),
        case(
            "config: no time at all",
            &["--config", &config("zero.yaml", "runner:\n  attemptTimeout: 0s\n")],
            &["zero.yaml:2:19: runner.attemptTimeout: must be longer than 0s"],
        ),
        case(
            "config: a port out of range",
            &[
                "--config",
                &config(
                    "port.yaml",
                    "checks:\n  postgres:\n    databases:\n      - app: backstage\n        port: 70000\n",
                ),
            ],
            &[
                "port.yaml:5:15: checks.postgres.databases[0].port: expected a whole number from 0 to 65535",
            ],
        ),
        case(
            "config: $PREFLIGHT_CONFIG",
            &[],
            &["from-variable.yaml:2:3: checks.no-such-check: unknown field `no-such-check`"],
        )
        .env(
            "PREFLIGHT_CONFIG",
            &config("from-variable.yaml", "checks:\n  no-such-check: {}\n"),
        ),
        case(
            "kubeconfig missing",
            &["--kubeconfig", &files.path("absent-kubeconfig")],
            &[
                "cannot load the kubeconfig",
                "absent-kubeconfig",
                "No such file",
            ],
        ),
        case(
            "kubeconfig: malformed YAML",
            &[
                "--kubeconfig",
                &files.write(
                    "broken-kubeconfig",
                    "apiVersion: v1\nkind: Config\nclusters: [\n",
                ),
            ],
            &[
                "cannot load the kubeconfig",
                "broken-kubeconfig",
                "line 3, column 11",
            ],
        ),
        case(
            "kubeconfig: a context it lacks",
            &["--context", "production"],
            &[
                "kubeconfig",
                "has no context \"production\" (its contexts: fake)",
            ],
        ),
        case(
            "kubeconfig: certificate-authority-data without a certificate",
            &[
                "--kubeconfig",
                &files.write(
                    "kubeconfig-data",
                    with_ca(&format!(
                        "certificate-authority-data: {}",
                        base64::engine::general_purpose::STANDARD.encode("not a certificate")
                    )),
                ),
            ],
            &[
                "kubeconfig-data: cluster \"fake\": certificate-authority-data: the CA bundle in certificate-authority-data holds no PEM certificate",
            ],
        ),
        case(
            "kubeconfig: certificate-authority-data not base64",
            &[
                "--kubeconfig",
                &files.write(
                    "kubeconfig-base64",
                    with_ca("certificate-authority-data: \"%%%\""),
                ),
            ],
            &[
                "kubeconfig-base64: cluster \"fake\": certificate-authority-data: the CA bundle in certificate-authority-data is not base64",
            ],
        ),
        case(
            "kubeconfig: certificate-authority unreadable",
            &[
                "--kubeconfig",
                &files.write(
                    "kubeconfig-file",
                    with_ca(&format!(
                        "certificate-authority: {}",
                        files.path("absent-ca.pem")
                    )),
                ),
            ],
            &[
                "kubeconfig-file: cluster \"fake\": certificate-authority: cannot read the CA bundle",
                "absent-ca.pem",
            ],
        ),
        case(
            "kubeconfig: certificate-authority in DER",
            &[
                "--kubeconfig",
                &files.write(
                    "kubeconfig-der",
                    with_ca(&format!(
                        "certificate-authority: {}",
                        files.write("ca.der", &der)
                    )),
                ),
            ],
            &[
                "kubeconfig-der: cluster \"fake\": certificate-authority: the CA bundle",
                "ca.der is not PEM text (it looks like a DER certificate",
            ],
        ),
        case(
            "$KUBECONFIG: certificate-authority cut short",
            &[],
            &[
                "$KUBECONFIG: cluster \"fake\": certificate-authority: the CA bundle",
                "is cut short: certificate 1, begun at line 1",
            ],
        )
        .env(
            "KUBECONFIG",
            &files.write(
                "kubeconfig-cut",
                with_ca(&format!(
                    "certificate-authority: {}",
                    files.write("cut.pem", &pem[..pem.len() / 2])
                )),
            ),
        ),
    ];
    for case in &cases {
        assert_refused(&cluster, case).await;
    }
}

/// A bad CA bundle is the same configuration error for every check that trusts one, found
/// before any check runs: PostgreSQL's, Keycloak's, and the HTTP client Keycloak's bundle
/// also serves for the registry checks; given in the config file or by flag.
#[tokio::test(flavor = "multi_thread")]
async fn a_bad_ca_bundle_stops_every_check_alike_before_the_run() {
    let cluster = Cluster::empty().await;
    let files = Files {
        dir: tempfile::tempdir().unwrap(),
    };
    let (pem, der) = certificate(&cluster);
    let persistent = files.write(
        "persistent.yaml",
        std::fs::read_to_string(repo("examples/values-persistent.yaml")).unwrap(),
    );
    let not_pem = files.write("not-pem.pem", "this is not a bundle\n");
    let cut = files.write("cut.pem", &pem[..pem.len() - 40]);
    let der_file = files.write("ca.der", &der);
    let absent = files.path("absent.pem");
    let good = files.write("good.pem", &pem);
    let postgres = |name: &str, bundle: &str| {
        files.write(
            name,
            format!("checks:\n  postgres:\n    databases:\n      - app: backstage\n        caBundle: {good}\n      - app: keycloak\n        caBundle: {bundle}\n"),
        )
    };
    // A Keycloak that refuses connections: the run with a good bundle fails at once.
    let keycloak = |name: &str, bundle: &str| {
        files.write(
            name,
            format!(
                "checks:\n  keycloak-realm:\n    url: https://{}\n    caBundle: {bundle}\n",
                closed_addr()
            ),
        )
    };
    let cases = [
        case(
            "postgres: a bundle without a certificate",
            &[
                "--values",
                &persistent,
                "--tier",
                "3",
                "--check",
                "postgres",
                "--config",
                &postgres("pg-not-pem.yaml", &not_pem),
            ],
            &[
                "a CA bundle cannot be used; nothing was checked",
                &format!(
                    "pg-not-pem.yaml: checks.postgres.databases[1].caBundle: the CA bundle {not_pem} holds no PEM certificate (no -----BEGIN CERTIFICATE----- line)"
                ),
            ],
        ),
        case(
            "postgres: an unreadable bundle",
            &[
                "--values",
                &persistent,
                "--tier",
                "3",
                "--check",
                "postgres",
                "--config",
                &postgres("pg-absent.yaml", &absent),
            ],
            &[&format!(
                "pg-absent.yaml: checks.postgres.databases[1].caBundle: cannot read the CA bundle {absent}: No such file"
            )],
        ),
        case(
            "postgres: a bundle cut short",
            &[
                "--values",
                &persistent,
                "--tier",
                "3",
                "--check",
                "postgres",
                "--config",
                &postgres("pg-cut.yaml", &cut),
            ],
            &[&format!(
                "checks.postgres.databases[1].caBundle: the CA bundle {cut} is cut short: certificate 1, begun at line 1, has no -----END CERTIFICATE----- line"
            )],
        ),
        case(
            "keycloak: a DER file",
            &[
                "--values",
                &persistent,
                "--app",
                "oidc-config",
                "--config",
                &keycloak("kc-der.yaml", &der_file),
            ],
            &[
                "a CA bundle cannot be used; nothing was checked",
                &format!(
                    "kc-der.yaml: checks.keycloak-realm.caBundle: the CA bundle {der_file} is not PEM text (it looks like a DER certificate"
                ),
            ],
        ),
        case(
            "the registry checks trust Keycloak's bundle too",
            &[
                "--tier",
                "1",
                "--check",
                "image-architecture",
                "--config",
                &keycloak("kc-not-pem.yaml", &not_pem),
            ],
            &[&format!(
                "kc-not-pem.yaml: checks.keycloak-realm.caBundle: the CA bundle {not_pem} holds no PEM certificate"
            )],
        ),
        case(
            "--pg-ca-bundle",
            &[
                "--values",
                &persistent,
                "--tier",
                "3",
                "--pg-host",
                "127.0.0.1",
                "--pg-ca-bundle",
                &cut,
                "--check",
                "postgres",
            ],
            &["--pg-ca-bundle: the CA bundle", "is cut short"],
        ),
        case(
            "$PREFLIGHT_PG_CA_BUNDLE",
            &[
                "--values",
                &persistent,
                "--tier",
                "3",
                "--pg-host",
                "127.0.0.1",
                "--check",
                "postgres",
            ],
            &["$PREFLIGHT_PG_CA_BUNDLE: cannot read the CA bundle"],
        )
        .env("PREFLIGHT_PG_CA_BUNDLE", &absent),
    ];
    for case in &cases {
        assert_refused(&cluster, case).await;
    }
    // The same settings with a good bundle are no error: the run goes on to the checks.
    let mut cmd = preflight_cmd();
    cmd.arg("--kubeconfig").arg(cluster.path("kubeconfig"));
    cmd.args([
        "--values",
        &persistent,
        "--app",
        "oidc-config",
        "--config",
        &keycloak("kc-good.yaml", &good),
    ]);
    cmd.args(["--attempt-timeout", "2s", "--output", "json"]);
    let run = run(cmd).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.check("keycloak-realm")["status"],
        "fail",
        "{}",
        run.stdout
    );
}

/// Values read from the cluster are placed in their ConfigMap, and nothing is checked either.
#[tokio::test(flavor = "multi_thread")]
async fn bad_values_in_the_bootstrap_configmap_name_the_configmap_and_the_place() {
    let cluster = Cluster::empty().await;
    cluster
        .kube
        .apply(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "goldenpath-bootstrap", "namespace": "kube-system"},
            "data": {"values.yaml": "bootstrap:\n  mode: ephemeral\n  maxTier: [1.5]\n"}
        }))
        .unwrap();
    let mark = cluster.kube.fake().requests().len();
    let mut cmd = preflight_cmd();
    cmd.arg("--kubeconfig").arg(cluster.path("kubeconfig"));
    let run = run(cmd).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "ConfigMap kube-system/goldenpath-bootstrap (key values.yaml, line 3, column 12): bootstrap.maxTier: "
        ),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    let requests: Vec<String> = cluster.kube.fake().requests()[mark..]
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(requests, [CONFIGMAP], "only the ConfigMap was read");
}
