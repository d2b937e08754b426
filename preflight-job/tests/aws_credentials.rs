//! AWS as production hands it to preflight, through the real binary against moto: IRSA's web
//! identity (`AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN`, no static keys) exchanged with
//! STS `AssumeRoleWithWebIdentity` for the role's credentials; moto's IAM enforcement deciding
//! what those credentials may do, which proves that `preflight iam-policy` grants exactly what
//! the checks of a tier need (`aws-forbidden` naming the action otherwise); and a throttling
//! endpoint in front of moto, retried with backoff (`aws-throttled` when it never stops).

#![allow(clippy::unwrap_used, reason = "a test stops on a broken setup")]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::moto::{ACCOUNT, Moto, REGION, ThrottleStub};
use support::platform::{PERSISTENT_VALUES, Platform};
use support::registry::{self, Auth, EcrFront, ImageDocs, Registry};
use support::*;

/// The contract of the AWS runs: a persistent cluster (ceiling 3), declaring S3.
const VALUES: &str = "bootstrap:\n  mode: persistent\n  env: dev\nplatform:\n  rdsAvailable: true\n  s3Available: true\n";

/// The web identity token the kubelet projects into a Pod for IRSA (a JWT; STS, here moto,
/// takes it as it is).
const WEB_IDENTITY_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6Imlyc2EifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YXJnb2NkOnByZWZsaWdodCJ9.c2lnbmF0dXJl";

/// The trust policy of an IRSA role for preflight's ServiceAccount.
fn irsa_role_trust() -> String {
    let host = "oidc.eks.eu-west-1.amazonaws.com/id/5C6F3A0E";
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{host}")},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                format!("{host}:sub"): "system:serviceaccount:argocd:preflight",
                format!("{host}:aud"): "sts.amazonaws.com",
            }},
        }],
    })
    .to_string()
}

/// A policy as moto evaluates it: moto calls S3's `HEAD /{bucket}` `s3:HeadBucket`, where IAM
/// authorizes it as `s3:ListBucket`, so `s3:ListBucket` is also granted under moto's name.
/// Every other action and every resource is the policy's own (moto, as the tests start it,
/// checks the resource of each call preflight makes: `support/moto_server.py`).
fn as_moto_evaluates(policy: &Value) -> Value {
    let mut policy = policy.clone();
    for statement in policy["Statement"].as_array_mut().unwrap() {
        let actions = statement["Action"].as_array_mut().unwrap();
        if actions.iter().any(|a| a == "s3:ListBucket") {
            actions.push(json!("s3:HeadBucket"));
        }
    }
    policy
}

/// The environment of a Pod whose ServiceAccount has an IRSA role, as EKS's webhook sets it,
/// with every endpoint moto's and no static key.
fn irsa_env(
    cmd: &mut tokio::process::Command,
    moto: &Moto,
    token_file: &std::path::Path,
    role: &str,
) {
    cmd.env("AWS_ENDPOINT_URL", &moto.url)
        .env("AWS_REGION", REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", token_file)
        .env("AWS_ROLE_ARN", role)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE");
}

/// `preflight --tier 2 --check s3-bucket` on an empty cluster, without static AWS keys.
fn s3_bucket_run(cluster: &Cluster) -> tokio::process::Command {
    let mut cmd = preflight_cmd();
    cmd.arg("--kubeconfig").arg(cluster.path("kubeconfig"));
    cmd.arg("--values").arg(cluster.path("values.yaml"));
    cmd.args([
        "--tier",
        "2",
        "--check",
        "s3-bucket",
        "--no-cluster-values",
        "--output",
        "json",
    ]);
    cmd.env("HOME", cluster.dir.path());
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn irsa_web_identity_assumes_the_role_and_acts_with_its_permissions() {
    let moto = Moto::start();
    moto.create_bucket("goldenpath-dev-loki", REGION).await;
    let allowed = moto.create_role("preflight", &irsa_role_trust()).await;
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": "arn:aws:s3:::goldenpath-dev-loki"}]});
    moto.put_role_policy("preflight", &as_moto_evaluates(&policy).to_string())
        .await;
    let other = moto
        .create_role("preflight-other", &irsa_role_trust())
        .await;
    let cluster = Cluster::empty().await;
    cluster.write("values.yaml", VALUES);
    let token = cluster.write("web-identity-token", WEB_IDENTITY_TOKEN);
    assert!(moto.assumed_roles().is_empty());

    // The role's permission is what lets the check through: moto now authorizes every
    // request but the web identity exchange itself.
    moto.enforce_iam_after(1);
    let mut cmd = s3_bucket_run(&cluster);
    irsa_env(&mut cmd, &moto, &token, &allowed);
    let passed = run(cmd).await;
    assert_eq!(passed.code, 0, "{}\n{}", passed.stdout, passed.stderr);
    assert_check(&passed, "s3-bucket", "pass", "s3-bucket-found");
    let assumed = moto.assumed_roles();
    assert_eq!(assumed.len(), 1, "{assumed:#?}");
    assert_eq!(assumed[0]["role_arn"], allowed.as_str());

    // The same run assuming a role without that permission is refused, naming the action.
    moto.enforce_iam_after(1);
    let mut cmd = s3_bucket_run(&cluster);
    irsa_env(&mut cmd, &moto, &token, &other);
    let refused = run(cmd).await;
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert_check(&refused, "s3-bucket", "fail", "aws-forbidden");
    assert!(
        refused.check("s3-bucket")["message"]
            .as_str()
            .unwrap()
            .starts_with("not allowed to s3:ListBucket for S3 bucket goldenpath-dev-loki"),
        "{}",
        refused.stdout
    );
    let assumed = moto.assumed_roles();
    assert_eq!(assumed.len(), 2, "{assumed:#?}");
    assert_eq!(assumed[1]["role_arn"], other.as_str());

    // Without the web identity (and without keys), there are no credentials at all.
    let mut cmd = s3_bucket_run(&cluster);
    irsa_env(&mut cmd, &moto, &token, &allowed);
    cmd.env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .env_remove("AWS_ROLE_ARN");
    let none = run(cmd).await;
    assert_eq!(none.code, 1, "{}\n{}", none.stdout, none.stderr);
    assert_check(&none, "s3-bucket", "fail", "aws-credentials");
    assert_eq!(moto.assumed_roles().len(), 2);
}

/// The checks of tier 3's gate that call AWS, each with the IAM actions it needs.
const AWS_CHECKS: [&str; 8] = [
    "route53-zone",
    "image-architecture",
    "irsa-roles",
    "dns-scope",
    "rds-instance",
    "s3-bucket",
    "secrets-manager",
    "postgres",
];

/// One run of tier 3's gate on the whole platform, with the AWS credentials of a user.
async fn tier_3_as(platform: &Platform, front: &EcrFront, key: &(String, String)) -> Run {
    let mut cmd = platform.preflight(&["--tier", "3", "--output", "json"]);
    front.env(&mut cmd);
    cmd.env("AWS_ACCESS_KEY_ID", &key.0)
        .env("AWS_SECRET_ACCESS_KEY", &key.1);
    run(cmd).await
}

#[tokio::test(flavor = "multi_thread")]
async fn iam_policy_grants_exactly_what_the_checks_of_the_tier_need() {
    let platform = Platform::start(PERSISTENT_VALUES).await;
    let moto = &platform.moto;
    // A single-platform image, whose config blob ECR serves through GetDownloadUrlForLayer
    // (moto does not implement it: a stub in front of moto's ECR does, once moto has
    // authorized the caller), listed for backstage.
    let local = Registry::start(Auth::AnonymousToken).await;
    let front = EcrFront::start(&moto.url, &local).await;
    let host = registry::create_repository(moto, "goldenpath/backstage").await;
    let image = ImageDocs::single("amd64", true);
    local.add_blob(&image.blobs[0]);
    registry::put_image(moto, "goldenpath/backstage", "1.4.2", &image).await;
    let settings = std::fs::read_to_string(&platform.config).unwrap();
    let kong = format!("{{app: backstage, image: \"{host}/goldenpath/kong:3.9.1\"}}");
    assert!(settings.contains(&kong), "{settings}");
    std::fs::write(
        &platform.config,
        settings.replace(
            &kong,
            &format!("{{app: backstage, image: \"{host}/goldenpath/backstage:1.4.2\"}}"),
        ),
    )
    .unwrap();

    // The policy, as an operator gets it for the tier.
    let mut cmd = preflight_cmd();
    cmd.args(["iam-policy", "--tier", "3", "--values"])
        .arg(platform.cluster.path("values.yaml"))
        .args(["--config", &platform.config]);
    let printed = run(cmd).await;
    assert_eq!(printed.code, 0, "{}", printed.stderr);
    let policy: Value = serde_json::from_str(&printed.stdout).unwrap();

    // One user with all of it, and one per action with all but that action.
    let mut variants: Vec<(String, String, Value)> = Vec::new();
    let statements = policy["Statement"].as_array().unwrap();
    for (i, statement) in statements.iter().enumerate() {
        for action in statement["Action"].as_array().unwrap() {
            let mut without = policy.clone();
            let list = without["Statement"][i]["Action"].as_array_mut().unwrap();
            list.retain(|a| a != action);
            if list.is_empty() {
                without["Statement"].as_array_mut().unwrap().remove(i);
            }
            variants.push((
                action.as_str().unwrap().to_owned(),
                statement["Resource"].as_str().unwrap().to_owned(),
                without,
            ));
        }
    }
    let all = moto
        .user_with_policy("preflight", &as_moto_evaluates(&policy).to_string())
        .await;
    let mut users = Vec::new();
    for (n, (_, _, without)) in variants.iter().enumerate() {
        users.push(
            moto.user_with_policy(
                &format!("preflight-{n}"),
                &as_moto_evaluates(without).to_string(),
            )
            .await,
        );
    }
    moto.enforce_iam();

    let full = tier_3_as(&platform, &front, &all).await;
    assert_eq!(full.code, 0, "{}\n{}", full.stdout, full.stderr);
    for id in AWS_CHECKS {
        assert_eq!(full.check(id)["status"], "pass", "{:#}", full.check(id));
    }
    assert_eq!(
        front.download_urls(),
        1,
        "the single-platform image was read"
    );

    for ((action, resource, _), user) in variants.iter().zip(&users) {
        let run = tier_3_as(&platform, &front, user).await;
        assert_eq!(
            run.code, 1,
            "without {action} on {resource}:\n{}\n{}",
            run.stdout, run.stderr
        );
        let forbidden: Vec<Value> = run.report()["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["code"] == "aws-forbidden")
            .cloned()
            .collect();
        assert!(
            !forbidden.is_empty(),
            "without {action} on {resource}, no check was refused:\n{}",
            run.stdout
        );
        // Every refusal names that action (and, for a role, that role): the rest of the
        // policy was enough for everything else.
        let named = resource.rsplit('/').next().unwrap_or_default();
        for c in &forbidden {
            let message = c["message"].as_str().unwrap();
            assert!(
                message.contains(&format!("not allowed to {action} for ")),
                "without {action} on {resource}: {c:#}"
            );
            if action == "iam:GetRole" {
                assert!(
                    message.contains(named),
                    "without {action} on {resource}: {c:#}"
                );
            }
            assert!(
                c["hint"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("Allow {action}")),
                "{c:#}"
            );
        }
        // And every check that failed, failed for want of it, or was blocked by one that did.
        for c in run.report()["checks"].as_array().unwrap() {
            if c["status"] == "fail" {
                assert_eq!(c["code"], "aws-forbidden", "without {action}: {c:#}");
            }
        }
    }
}

/// `--tier 2 --check secrets-manager` against the throttling stub in front of moto, backing
/// off from `initial` between attempts.
async fn secrets_manager_through(
    moto: &Moto,
    stub: &ThrottleStub,
    initial: &str,
    wait: Option<&str>,
) -> Run {
    let cluster = Cluster::empty().await;
    cluster.write("values.yaml", VALUES);
    let config = cluster.write(
        "preflight.yaml",
        &format!("runner:\n  backoffInitial: {initial}\n  backoffMax: 30s\n"),
    );
    let mut args = vec![
        "--tier",
        "2",
        "--check",
        "secrets-manager",
        "--no-cluster-values",
        "--output",
        "json",
    ];
    if let Some(wait) = wait {
        args.extend(["--wait", wait]);
    }
    let mut cmd = cluster.preflight_aws(moto, &args);
    cmd.arg("--config").arg(config);
    cmd.env("AWS_ENDPOINT_URL_SECRETS_MANAGER", &stub.url);
    run(cmd).await
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_is_retried_with_backoff_until_it_stops() {
    let moto = Moto::start();
    moto.create_secret(
        "goldenpath/dev/backstage/postgres",
        r#"{"username": "backstage_app", "password": "p", "host": "db", "port": 5432, "dbname": "backstage"}"#,
    )
    .await;
    let stub = ThrottleStub::start(&moto, 3);
    let run = secrets_manager_through(&moto, &stub, "200ms", Some("30s")).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_check(&run, "secrets-manager", "pass", "remote-secrets-present");
    let c = run.check("secrets-manager");
    assert_eq!(c["attempts"], 4, "{c:#}");
    let requests = stub.requests();
    assert_eq!(
        requests.iter().map(|(_, t)| *t).collect::<Vec<_>>(),
        [true, true, true, false],
        "three throttled requests, then one through to moto"
    );
    // Exponential backoff from 200 ms: at least 200, 400, 800 ms between the attempts (the
    // jitter only adds).
    for (k, pair) in requests.windows(2).enumerate() {
        let gap = pair[1].0 - pair[0].0;
        let least = Duration::from_millis(200 << k);
        assert!(
            gap >= least,
            "attempt {} came {gap:?} after the one before, less than {least:?}",
            k + 2
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_that_never_stops_ends_aws_throttled() {
    let moto = Moto::start();
    moto.create_secret(
        "goldenpath/dev/backstage/postgres",
        r#"{"username": "backstage_app", "password": "p", "host": "db", "port": 5432, "dbname": "backstage"}"#,
    )
    .await;
    let stub = ThrottleStub::start(&moto, usize::MAX);

    // One attempt: the throttled answer is the outcome.
    let once = secrets_manager_through(&moto, &stub, "200ms", None).await;
    assert_eq!(once.code, 1, "{}\n{}", once.stdout, once.stderr);
    assert_check(&once, "secrets-manager", "fail", "aws-throttled");
    let message = once.check("secrets-manager")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("SECRETSMANAGER throttled the request")
            && message.contains("Rate exceeded"),
        "{message}"
    );
    assert_eq!(stub.requests().len(), 1);

    // While waiting, retried until the deadline, which ends the run unsettled.
    let waited = secrets_manager_through(&moto, &stub, "200ms", Some("3s")).await;
    assert_eq!(waited.code, 3, "{}\n{}", waited.stdout, waited.stderr);
    assert_check(&waited, "secrets-manager", "fail", "aws-throttled");
    assert_eq!(waited.check("secrets-manager")["settled"], false);
    assert!(stub.requests().len() > 2, "{:?}", stub.requests());
}
