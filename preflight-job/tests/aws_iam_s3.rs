//! The IRSA roles and Loki's S3 bucket against moto's IAM, EKS and S3, through the real binary
//! pointed at moto the way a user points it at any AWS-compatible endpoint
//! (`AWS_ENDPOINT_URL`, or one variable per service). Each incident is reproduced: a role
//! missing, trusting another ServiceAccount, another cluster's provider, a wildcard, denying it;
//! the OIDC provider never registered; the bucket missing, in another region, redirected, new,
//! or denied. S3's redirects, which moto never sends, come from a stub ([`S3Stub`]).

mod support;

use support::moto::{ACCOUNT, Moto, REGION, S3Answer, S3Stub, irsa_trust};
use support::*;

/// The ServiceAccounts `irsa-roles` checks by default, `(namespace, name)`.
const SERVICE_ACCOUNTS: [(&str, &str); 5] = [
    ("external-secrets", "external-secrets"),
    ("external-dns", "external-dns"),
    ("kube-system", "cluster-autoscaler"),
    ("kube-system", "aws-load-balancer-controller"),
    ("kube-system", "ebs-csi-controller-sa"),
];

const ESO_ROLE: &str = "goldenpath-dev-external-secrets";
const ESO_SUBJECT: &str = "system:serviceaccount:external-secrets:external-secrets";
const DNS_SUBJECT: &str = "system:serviceaccount:external-dns:external-dns";

fn subject(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// The test cluster's contract, declaring IRSA and S3 ready: a failure must say the
/// declaration is false.
fn declared_values() -> String {
    EPHEMERAL_VALUES.replace(
        "platform:\n",
        "platform:\n  irsaConfigured: true\n  s3Available: true\n",
    )
}

/// What Terraform leaves for IRSA on a healthy platform.
struct Irsa {
    issuer: String,
    provider: String,
}

impl Irsa {
    fn host(&self) -> &str {
        self.issuer.trim_start_matches("https://")
    }
}

/// The EKS cluster `goldenpath-dev`, its issuer registered as an OIDC provider, and one role
/// per ServiceAccount, `goldenpath-dev-{name}`, trusting that provider for exactly it.
async fn irsa_foundation(moto: &Moto) -> Irsa {
    let issuer = moto.create_cluster("goldenpath-dev").await;
    let provider = moto.create_oidc_provider(&issuer).await;
    assert_eq!(
        provider,
        format!(
            "arn:aws:iam::{ACCOUNT}:oidc-provider/{}",
            issuer.trim_start_matches("https://")
        )
    );
    for (namespace, name) in SERVICE_ACCOUNTS {
        moto.create_role(
            &format!("goldenpath-dev-{name}"),
            &irsa_trust(&provider, &issuer, &subject(namespace, name)),
        )
        .await;
    }
    Irsa { issuer, provider }
}

/// Runs `args` (plus `--no-cluster-values --output json`) against moto on an empty cluster with
/// the declared values, an optional config, and environment changes (`None` removes).
async fn aws_run(
    moto: &Moto,
    args: &[&str],
    config: Option<&str>,
    env: &[(&str, Option<&str>)],
) -> Run {
    let cluster = Cluster::empty().await;
    cluster.write("values.yaml", &declared_values());
    let mut args: Vec<&str> = args.to_vec();
    args.extend(["--no-cluster-values", "--output", "json"]);
    let path;
    if let Some(c) = config {
        path = cluster.write("preflight.yaml", c).display().to_string();
        args.extend(["--config", &path]);
    }
    let mut cmd = cluster.preflight_aws(moto, &args);
    for (key, value) in env {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    run(cmd).await
}

/// Tier 1's gate, irsa-roles alone.
async fn irsa_run(moto: &Moto, config: Option<&str>) -> Run {
    aws_run(moto, &["--tier", "1", "--check", "irsa-roles"], config, &[]).await
}

/// Tier 2's gate, s3-bucket alone.
async fn s3_run(moto: &Moto, config: Option<&str>, env: &[(&str, Option<&str>)]) -> Run {
    aws_run(moto, &tier_2_adr(&["--check", "s3-bucket"]), config, env).await
}

fn text(run: &Run, id: &str, field: &str) -> String {
    run.check(id)[field]
        .as_str()
        .unwrap_or_else(|| panic!("{id} has no {field}: {}", run.check(id)))
        .to_owned()
}

/// A failed declaration reads `platform.X is declared true in the bootstrap contract
/// (values.yaml:N), but …`.
fn assert_declared(run: &Run, id: &str, flag: &str, finding: &str) {
    let message = text(run, id, "message");
    let (declared, found) = message
        .split_once("), but ")
        .unwrap_or_else(|| panic!("no declaration in {message}"));
    assert!(
        declared.starts_with(&format!(
            "{flag} is declared true in the bootstrap contract ("
        )) && declared.contains("values.yaml:"),
        "{message}"
    );
    assert!(found.starts_with(finding), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_role_trusting_exactly_its_service_account_passes() {
    let moto = Moto::start();
    let irsa = irsa_foundation(&moto).await;
    let run = irsa_run(&moto, None).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_check(&run, "irsa-roles", "pass", "irsa-roles-trusted");
    let message = text(&run, "irsa-roles", "message");
    for (namespace, name) in SERVICE_ACCOUNTS {
        assert!(
            message.contains(&format!("{namespace}/{name} → goldenpath-dev-{name}")),
            "{message}"
        );
    }
    // The issuer came from EKS: moto made it up when the cluster was created.
    let evidence = &run.check("irsa-roles")["evidence"];
    assert_eq!(evidence["issuer"], irsa.issuer.as_str());
    assert_eq!(evidence["provider"], irsa.provider.as_str());

    // One endpoint per service, as a user may configure them: IAM's is global, and the
    // binary reaches moto for it (and EKS) with no AWS_ENDPOINT_URL at all.
    let per_service = aws_run(
        &moto,
        &["--tier", "1", "--check", "irsa-roles"],
        None,
        &[
            ("AWS_ENDPOINT_URL", None),
            ("AWS_ENDPOINT_URL_IAM", Some(&moto.url)),
            ("AWS_ENDPOINT_URL_EKS", Some(&moto.url)),
        ],
    )
    .await;
    assert_eq!(
        per_service.code, 0,
        "{}\n{}",
        per_service.stdout, per_service.stderr
    );
    assert_check(&per_service, "irsa-roles", "pass", "irsa-roles-trusted");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_role_fails_naming_it_and_the_statement_to_write() {
    let moto = Moto::start();
    let irsa = irsa_foundation(&moto).await;
    moto.delete_role("goldenpath-dev-external-dns").await;
    let run = irsa_run(&moto, None).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_check(&run, "irsa-roles", "fail", "irsa-role-not-found");
    assert_declared(
        &run,
        "irsa-roles",
        "platform.irsaConfigured",
        "IAM role goldenpath-dev-external-dns (for ServiceAccount external-dns/external-dns) does not exist",
    );
    let hint = text(&run, "irsa-roles", "hint");
    for needed in [
        "Create role goldenpath-dev-external-dns".to_owned(),
        format!(r#""Federated": "{}""#, irsa.provider),
        format!(r#""{}:sub": "{DNS_SUBJECT}""#, irsa.host()),
        format!(r#""{}:aud": "sts.amazonaws.com""#, irsa.host()),
    ] {
        assert!(hint.contains(&needed), "{needed} in {hint}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_trusting_another_service_account_fails_naming_both_subjects() {
    let moto = Moto::start();
    let irsa = irsa_foundation(&moto).await;
    // Copied from ExternalDNS's role: External Secrets' pods get AccessDenied on
    // sts:AssumeRoleWithWebIdentity.
    moto.set_trust(
        ESO_ROLE,
        &irsa_trust(&irsa.provider, &irsa.issuer, DNS_SUBJECT),
    )
    .await;
    let run = irsa_run(&moto, None).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_check(&run, "irsa-roles", "fail", "irsa-trust-mismatch");
    assert_declared(
        &run,
        "irsa-roles",
        "platform.irsaConfigured",
        &format!(
            "IAM role {ESO_ROLE} trusts {DNS_SUBJECT}, not {ESO_SUBJECT} (ServiceAccount external-secrets/external-secrets)"
        ),
    );
    let hint = text(&run, "irsa-roles", "hint");
    assert!(
        hint.contains(&format!(r#""{}:sub": "{ESO_SUBJECT}""#, irsa.host())),
        "{hint}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_trusting_another_clusters_provider_fails() {
    let moto = Moto::start();
    let irsa = irsa_foundation(&moto).await;
    // The role trusts another cluster's issuer (one in another region: moto gives all
    // clusters of a region the same issuer).
    let old_issuer = moto.create_cluster_in("goldenpath-dev", "us-east-2").await;
    assert_ne!(old_issuer, irsa.issuer);
    let old_provider = moto.create_oidc_provider(&old_issuer).await;
    moto.set_trust(
        ESO_ROLE,
        &irsa_trust(&old_provider, &old_issuer, ESO_SUBJECT),
    )
    .await;
    let run = irsa_run(&moto, None).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_check(&run, "irsa-roles", "fail", "irsa-trust-mismatch");
    assert_declared(
        &run,
        "irsa-roles",
        "platform.irsaConfigured",
        &format!(
            "IAM role {ESO_ROLE} (for external-secrets/external-secrets) trusts {old_provider}, not this cluster's OIDC provider {}",
            irsa.provider
        ),
    );
    assert!(text(&run, "irsa-roles", "hint").contains("another cluster's issuer"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wildcard_or_missing_subject_fails_as_too_broad() {
    let moto = Moto::start();
    let irsa = irsa_foundation(&moto).await;
    let host = irsa.host().to_owned();
    let with_condition = |condition: serde_json::Value| {
        serde_json::json!({
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Allow",
                "Principal": {"Federated": [irsa.provider.as_str()]},
                "Action": ["sts:AssumeRoleWithWebIdentity"],
                "Condition": condition,
            },
        })
        .to_string()
    };
    let pattern = "system:serviceaccount:external-secrets:*";
    moto.set_trust(
        ESO_ROLE,
        &with_condition(serde_json::json!({"StringLike": {format!("{host}:sub"): pattern}})),
    )
    .await;
    let wildcard = irsa_run(&moto, None).await;
    assert_eq!(wildcard.code, 1, "{}\n{}", wildcard.stdout, wildcard.stderr);
    assert_check(&wildcard, "irsa-roles", "fail", "irsa-trust-too-broad");
    let message = text(&wildcard, "irsa-roles", "message");
    assert!(
        message.contains(&format!(
            "IAM role {ESO_ROLE} (for external-secrets/external-secrets) trusts StringLike \"{pattern}\" on {host}:sub: it lets {ESO_SUBJECT} and others assume it"
        )),
        "{message}"
    );
    assert!(text(&wildcard, "irsa-roles", "hint").contains("Pin the subject with StringEquals"));

    moto.set_trust(
        ESO_ROLE,
        &with_condition(
            serde_json::json!({"StringEquals": {format!("{host}:aud"): "sts.amazonaws.com"}}),
        ),
    )
    .await;
    let any = irsa_run(&moto, None).await;
    assert_check(&any, "irsa-roles", "fail", "irsa-trust-too-broad");
    assert!(
        text(&any, "irsa-roles", "message")
            .contains("every ServiceAccount of the cluster may assume it"),
        "{}",
        any.check("irsa-roles")
    );
}

/// IAM's explicit Deny wins over the Allow beside it: a Deny meant for other ServiceAccounts
/// whose pattern also matches this one locks it out.
#[tokio::test(flavor = "multi_thread")]
async fn a_deny_statement_next_to_a_correct_allow_fails_naming_the_deny() {
    let moto = Moto::start();
    let irsa = irsa_foundation(&moto).await;
    let host = irsa.host().to_owned();
    let mut trust: serde_json::Value =
        serde_json::from_str(&irsa_trust(&irsa.provider, &irsa.issuer, ESO_SUBJECT)).unwrap();
    let pattern = "system:serviceaccount:external-secrets:*";
    trust["Statement"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "Sid": "DenyExternalSecretsNamespace",
            "Effect": "Deny",
            "Principal": {"Federated": irsa.provider.as_str()},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringLike": {format!("{host}:sub"): pattern}},
        }));
    moto.set_trust(ESO_ROLE, &trust.to_string()).await;
    let run = irsa_run(&moto, None).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_check(&run, "irsa-roles", "fail", "irsa-trust-mismatch");
    assert_declared(
        &run,
        "irsa-roles",
        "platform.irsaConfigured",
        &format!(
            "IAM role {ESO_ROLE} (for external-secrets/external-secrets) has a Deny trust statement \"DenyExternalSecretsNamespace\" (StringLike \"{pattern}\" on {host}:sub) that matches {ESO_SUBJECT}: an explicit Deny overrides any Allow"
        ),
    );
    let hint = text(&run, "irsa-roles", "hint");
    assert!(hint.contains("Remove that Deny statement"), "{hint}");

    // The same Deny, confined to another namespace, leaves the role trusted.
    trust["Statement"][1]["Condition"]["StringLike"][format!("{host}:sub")] =
        "system:serviceaccount:kube-system:*".into();
    moto.set_trust(ESO_ROLE, &trust.to_string()).await;
    let confined = irsa_run(&moto, None).await;
    assert_eq!(confined.code, 0, "{}\n{}", confined.stdout, confined.stderr);
    assert_check(&confined, "irsa-roles", "pass", "irsa-roles-trusted");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_issuer_is_read_from_eks_unless_configured() {
    let moto = Moto::start();
    let irsa = irsa_foundation(&moto).await;
    // A cluster of the same name in another region, where preflight runs by mistake: EKS
    // gives it another issuer (moto: another region), which the roles do not trust.
    let other = moto.create_cluster_in("goldenpath-dev", "us-east-2").await;
    moto.create_oidc_provider(&other).await;
    let other_host = other.trim_start_matches("https://");
    let elsewhere = aws_run(
        &moto,
        &["--tier", "1", "--check", "irsa-roles"],
        None,
        &[("AWS_REGION", Some("us-east-2"))],
    )
    .await;
    assert_check(&elsewhere, "irsa-roles", "fail", "irsa-trust-mismatch");
    assert!(
        text(&elsewhere, "irsa-roles", "message").contains(&format!(
            "not this cluster's OIDC provider arn:aws:iam::{ACCOUNT}:oidc-provider/{other_host}"
        )),
        "{}",
        elsewhere.check("irsa-roles")
    );
    assert_eq!(
        elsewhere.check("irsa-roles")["evidence"]["issuer"],
        other.as_str()
    );

    // A configured issuer wins over EKS's.
    let configured_other = irsa_run(
        &moto,
        Some(&format!(
            "checks:\n  irsa-roles:\n    oidcIssuer: {other}\n"
        )),
    )
    .await;
    assert_check(
        &configured_other,
        "irsa-roles",
        "fail",
        "irsa-trust-mismatch",
    );
    assert_eq!(
        configured_other.check("irsa-roles")["evidence"]["issuer"],
        other.as_str()
    );

    // EKS is not asked when the issuer is configured (the cluster named does not exist).
    let configured = irsa_run(
        &moto,
        Some(&format!(
            "checks:\n  irsa-roles:\n    clusterName: no-such-cluster\n    oidcIssuer: {}\n",
            irsa.issuer
        )),
    )
    .await;
    assert_eq!(
        configured.code, 0,
        "{}\n{}",
        configured.stdout, configured.stderr
    );
    assert_check(&configured, "irsa-roles", "pass", "irsa-roles-trusted");

    let absent = irsa_run(
        &moto,
        Some("checks:\n  irsa-roles:\n    clusterName: no-such-cluster\n"),
    )
    .await;
    assert_eq!(absent.code, 1);
    assert_check(&absent, "irsa-roles", "fail", "eks-cluster-not-found");
    assert!(text(&absent, "irsa-roles", "hint").contains("checks.irsa-roles.oidcIssuer"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unregistered_oidc_provider_fails() {
    let moto = Moto::start();
    let irsa = irsa_foundation(&moto).await;
    moto.delete_oidc_provider(&irsa.provider).await;
    let run = irsa_run(&moto, None).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_check(&run, "irsa-roles", "fail", "irsa-oidc-provider-missing");
    assert_declared(
        &run,
        "irsa-roles",
        "platform.irsaConfigured",
        &format!(
            "this cluster's OIDC provider {} is not registered in IAM",
            irsa.provider
        ),
    );
    assert!(text(&run, "irsa-roles", "hint").contains(&format!(
        "aws iam create-open-id-connect-provider --url {}",
        irsa.issuer
    )));
}

/// moto authorizes IAM requests against the caller's policies once told to: a role without
/// `iam:GetRole` cannot look, which says nothing of the declaration.
#[tokio::test(flavor = "multi_thread")]
async fn get_role_denied_is_aws_forbidden_naming_iam_get_role() {
    let moto = Moto::start();
    let irsa = irsa_foundation(&moto).await;
    let (key, secret) = moto.user_without_permissions("preflight").await;
    moto.enforce_iam();
    let run = aws_run(
        &moto,
        &["--tier", "1", "--check", "irsa-roles"],
        Some(&format!(
            "checks:\n  irsa-roles:\n    oidcIssuer: {}\n",
            irsa.issuer
        )),
        &[
            ("AWS_ACCESS_KEY_ID", Some(&key)),
            ("AWS_SECRET_ACCESS_KEY", Some(&secret)),
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_check(&run, "irsa-roles", "fail", "aws-forbidden");
    let message = text(&run, "irsa-roles", "message");
    assert!(
        message.starts_with(&format!(
            "not allowed to iam:GetRole for IAM role {ESO_ROLE}"
        )),
        "{message}"
    );
    assert!(text(&run, "irsa-roles", "hint").contains("Allow iam:GetRole"));
}

#[tokio::test(flavor = "multi_thread")]
async fn lokis_bucket_passes_when_present_and_fails_the_declaration_when_absent() {
    let moto = Moto::start();
    let absent = s3_run(&moto, None, &[]).await;
    assert_eq!(absent.code, 1, "{}\n{}", absent.stdout, absent.stderr);
    assert_check(&absent, "s3-bucket", "fail", "s3-bucket-not-found");
    assert_declared(
        &absent,
        "s3-bucket",
        "platform.s3Available",
        "S3 bucket goldenpath-dev-loki does not exist",
    );
    assert!(text(&absent, "s3-bucket", "hint").contains("checks.s3-bucket.bucket"));

    moto.create_bucket("goldenpath-dev-loki", REGION).await;
    let present = s3_run(&moto, None, &[]).await;
    assert_eq!(present.code, 0, "{}\n{}", present.stdout, present.stderr);
    assert_check(&present, "s3-bucket", "pass", "s3-bucket-found");
    assert_eq!(
        text(&present, "s3-bucket", "message"),
        "S3 bucket goldenpath-dev-loki exists in eu-west-1"
    );
    assert_eq!(present.check("s3-bucket")["evidence"]["region"], REGION);

    // S3's own endpoint variable, as a user points only S3 somewhere else.
    let per_service = s3_run(
        &moto,
        None,
        &[
            ("AWS_ENDPOINT_URL", None),
            ("AWS_ENDPOINT_URL_S3", Some(&moto.url)),
        ],
    )
    .await;
    assert_check(&per_service, "s3-bucket", "pass", "s3-bucket-found");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_in_another_region_fails_until_that_region_is_configured() {
    let moto = Moto::start();
    moto.create_bucket("goldenpath-dev-loki", "us-east-2").await;
    let run = s3_run(&moto, None, &[]).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_check(&run, "s3-bucket", "fail", "s3-bucket-wrong-region");
    assert_declared(
        &run,
        "s3-bucket",
        "platform.s3Available",
        "S3 bucket goldenpath-dev-loki is in us-east-2, not eu-west-1",
    );
    assert!(text(&run, "s3-bucket", "hint").contains("to us-east-2"));

    let configured = s3_run(
        &moto,
        Some("checks:\n  s3-bucket:\n    region: us-east-2\n"),
        &[],
    )
    .await;
    assert_eq!(
        configured.code, 0,
        "{}\n{}",
        configured.stdout, configured.stderr
    );
    assert_check(&configured, "s3-bucket", "pass", "s3-bucket-found");
}

/// Runs s3-bucket with S3 (only) pointed at `stub`, the client's region `client_region`.
async fn stubbed_s3_run(
    moto: &Moto,
    stub: &S3Stub,
    client_region: &str,
    config: Option<&str>,
) -> Run {
    s3_run(
        moto,
        config,
        &[
            ("AWS_ENDPOINT_URL_S3", Some(&stub.url)),
            ("AWS_REGION", Some(client_region)),
        ],
    )
    .await
}

/// The bucket is asked for in the region it must be in, not the client's: a regional S3
/// endpoint (the stub) answers 200 only to a request signed for the bucket's region, 301
/// naming that region to any other.
#[tokio::test(flavor = "multi_thread")]
async fn the_bucket_is_asked_for_in_the_configured_region_not_the_clients() {
    let moto = Moto::start();
    let stub = S3Stub::start(S3Answer::Regional("eu-west-1"));
    let configured = stubbed_s3_run(
        &moto,
        &stub,
        "us-east-1",
        Some("checks:\n  s3-bucket:\n    region: eu-west-1\n"),
    )
    .await;
    assert_eq!(stub.signed_regions(), ["eu-west-1"]);
    assert_eq!(
        configured.code, 0,
        "{}\n{}",
        configured.stdout, configured.stderr
    );
    assert_check(&configured, "s3-bucket", "pass", "s3-bucket-found");
    assert_eq!(
        text(&configured, "s3-bucket", "message"),
        "S3 bucket goldenpath-dev-loki exists in eu-west-1"
    );

    // With no region configured, the client's is expected, and S3 redirects to the bucket's.
    let client_region = stubbed_s3_run(&moto, &stub, "us-east-1", None).await;
    assert_eq!(stub.signed_regions(), ["eu-west-1", "us-east-1"]);
    assert_eq!(client_region.code, 1, "{}", client_region.stdout);
    assert_check(
        &client_region,
        "s3-bucket",
        "fail",
        "s3-bucket-wrong-region",
    );
    assert_declared(
        &client_region,
        "s3-bucket",
        "platform.s3Available",
        "S3 bucket goldenpath-dev-loki is in eu-west-1, not us-east-1",
    );
    assert!(text(&client_region, "s3-bucket", "hint").contains("to eu-west-1"));
    assert_eq!(client_region.check("s3-bucket")["settled"], true);
}

/// A 301 is judged by the region it names: the expected one is no wrong region (the endpoint
/// preflight was given serves another), another one is.
#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_is_judged_by_the_region_it_names() {
    let moto = Moto::start();
    let expected = S3Stub::start(S3Answer::Moved(REGION));
    let run = stubbed_s3_run(&moto, &expected, REGION, None).await;
    assert_eq!(expected.signed_regions(), [REGION]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_check(&run, "s3-bucket", "warn", "s3-bucket-redirected");
    let message = text(&run, "s3-bucket", "message");
    assert!(
        message.contains(
            "S3 bucket goldenpath-dev-loki is in eu-west-1 as expected, but the S3 endpoint preflight used redirected the request there (301)"
        ),
        "{message}"
    );
    assert!(text(&run, "s3-bucket", "hint").contains("AWS_ENDPOINT_URL_S3"));

    let elsewhere = S3Stub::start(S3Answer::Moved("us-east-2"));
    let run = stubbed_s3_run(&moto, &elsewhere, REGION, None).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_check(&run, "s3-bucket", "fail", "s3-bucket-wrong-region");
    assert_declared(
        &run,
        "s3-bucket",
        "platform.s3Available",
        "S3 bucket goldenpath-dev-loki is in us-east-2, not eu-west-1",
    );
}

/// A 400 naming the region the request was signed for is no redirect (S3's 400 for a wrong
/// signing region names another): it is S3 refusing the request (an expired or invalid
/// token), which must not pass as `s3-bucket-redirected`.
#[tokio::test(flavor = "multi_thread")]
async fn a_bad_request_naming_the_signed_region_is_not_a_redirect() {
    let moto = Moto::start();
    let stub = S3Stub::start(S3Answer::BadRequest(REGION));
    let run = stubbed_s3_run(&moto, &stub, REGION, None).await;
    assert_eq!(
        stub.signed_regions().first().map(String::as_str),
        Some(REGION)
    );
    // Mapped as any AWS error: S3 named no error code (a HEAD answer has no body).
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_check(&run, "s3-bucket", "fail", "aws-error");
    let message = text(&run, "s3-bucket", "message");
    assert!(
        message.contains("S3 bucket goldenpath-dev-loki (HTTP 400)"),
        "{message}"
    );

    // A 400 naming another region than the one signed for is S3's wrong-region answer.
    let elsewhere = S3Stub::start(S3Answer::BadRequest("us-east-2"));
    let run = stubbed_s3_run(&moto, &elsewhere, REGION, None).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_check(&run, "s3-bucket", "fail", "s3-bucket-wrong-region");
    assert_eq!(run.check("s3-bucket")["evidence"]["status"], "400");
}

/// A 307 is S3 propagating a new bucket's name: transient, retried until `--wait` runs out,
/// not a wrong region.
#[tokio::test(flavor = "multi_thread")]
async fn a_temporary_redirect_is_a_new_bucket_still_propagating() {
    let moto = Moto::start();
    let stub = S3Stub::start(S3Answer::Temporary(REGION));
    let run = aws_run(
        &moto,
        &tier_2_adr(&["--check", "s3-bucket", "--wait", "3s"]),
        None,
        &[("AWS_ENDPOINT_URL_S3", Some(&stub.url))],
    )
    .await;
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert_check(&run, "s3-bucket", "fail", "s3-bucket-propagating");
    let message = text(&run, "s3-bucket", "message");
    assert!(
        message.contains(
            "S3 bucket goldenpath-dev-loki (in eu-west-1) answered 307 Temporary Redirect: S3 is still propagating the new bucket's name"
        ),
        "{message}"
    );
    assert!(text(&run, "s3-bucket", "hint").contains("--wait"));
    assert_eq!(run.check("s3-bucket")["settled"], false);
    assert!(
        stub.signed_regions().len() > 1,
        "retried: {:?}",
        stub.signed_regions()
    );
}

/// moto authorizes S3 requests against the caller's IAM policies once told to: a role with no
/// `s3:ListBucket` gets 403 on HeadBucket, which says nothing of the declaration.
#[tokio::test(flavor = "multi_thread")]
async fn head_bucket_denied_is_aws_forbidden_naming_s3_list_bucket() {
    let moto = Moto::start();
    moto.create_bucket("goldenpath-dev-loki", REGION).await;
    let (key, secret) = moto.user_without_permissions("preflight").await;
    moto.enforce_iam();
    let run = s3_run(
        &moto,
        None,
        &[
            ("AWS_ACCESS_KEY_ID", Some(&key)),
            ("AWS_SECRET_ACCESS_KEY", Some(&secret)),
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_check(&run, "s3-bucket", "fail", "aws-forbidden");
    assert_eq!(
        text(&run, "s3-bucket", "message"),
        "not allowed to s3:ListBucket for S3 bucket goldenpath-dev-loki (HeadBucket answered 403 Forbidden)"
    );
    assert!(
        text(&run, "s3-bucket", "hint")
            .contains("Allow s3:ListBucket on arn:aws:s3:::goldenpath-dev-loki")
    );
}

/// An endpoint named by host name addresses buckets by host (`goldenpath-dev-loki.localhost`,
/// which does not resolve) unless `forcePathStyle` is set.
#[tokio::test(flavor = "multi_thread")]
async fn a_host_named_endpoint_needs_path_style() {
    let moto = Moto::start();
    moto.create_bucket("goldenpath-dev-loki", REGION).await;
    let localhost = moto.url.replace("127.0.0.1", "localhost");
    let env = [("AWS_ENDPOINT_URL", Some(localhost.as_str()))];
    let virtual_hosted = s3_run(&moto, None, &env).await;
    assert_eq!(virtual_hosted.code, 1, "{}", virtual_hosted.stdout);
    assert_check(&virtual_hosted, "s3-bucket", "fail", "aws-unreachable");

    let path_style = s3_run(
        &moto,
        Some("checks:\n  s3-bucket:\n    forcePathStyle: true\n"),
        &env,
    )
    .await;
    assert_eq!(
        path_style.code, 0,
        "{}\n{}",
        path_style.stdout, path_style.stderr
    );
    assert_check(&path_style, "s3-bucket", "pass", "s3-bucket-found");
}

/// irsa-roles is tier 1's (the foundation's roles, before the controllers start); s3-bucket is
/// tier 2's (Loki); `iam-policy` grants exactly their reads.
#[tokio::test(flavor = "multi_thread")]
async fn the_checks_are_placed_by_need_and_their_iam_reads_declared() {
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    std::fs::write(&values, declared_values()).unwrap();
    let values = values.to_str().unwrap();
    let command = |args: &[&str]| {
        let mut cmd = preflight_cmd();
        cmd.args(args);
        cmd
    };
    let ids = |plan: &serde_json::Value| -> Vec<String> {
        plan["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    };

    let tier1 = run(command(&[
        "plan", "--tier", "1", "--values", values, "--output", "json",
    ]))
    .await;
    assert_eq!(tier1.code, 0, "{}", tier1.stderr);
    let plan = tier1.report();
    assert!(ids(&plan).contains(&"irsa-roles".to_owned()), "{plan:#}");
    let s3 = plan["leftOut"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == "s3-bucket")
        .cloned()
        .unwrap_or_else(|| panic!("s3-bucket left out: {plan:#}"));
    assert_eq!(s3["reason"], "above the requested tier 1");

    let tier_2 = [
        "--contract-rules",
        "adr-0180",
        "--max-tier",
        "2",
        "--tier",
        "2",
        "--values",
        values,
    ];
    let tier2 = run(command(
        &[&["plan"][..], &tier_2, &["--output", "json"]].concat(),
    ))
    .await;
    assert_eq!(tier2.code, 0, "{}", tier2.stderr);
    let planned = ids(&tier2.report());
    assert!(planned.contains(&"s3-bucket".to_owned()), "{planned:?}");
    assert!(planned.contains(&"irsa-roles".to_owned()), "{planned:?}");

    let policy = run(command(&[&["iam-policy"][..], &tier_2].concat())).await;
    assert_eq!(policy.code, 0, "{}", policy.stderr);
    let policy: serde_json::Value = serde_json::from_str(&policy.stdout).unwrap();
    let grants: Vec<(String, String)> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            let resource = s["Resource"].as_str().unwrap().to_owned();
            s["Action"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |a| (a.as_str().unwrap().to_owned(), resource.clone()))
        })
        .collect();
    let mut wanted: Vec<(String, String)> = SERVICE_ACCOUNTS
        .iter()
        .map(|(_, name)| {
            (
                "iam:GetRole".to_owned(),
                format!("arn:aws:iam::*:role/goldenpath-dev-{name}"),
            )
        })
        .collect();
    wanted.extend([
        (
            "eks:DescribeCluster".to_owned(),
            "arn:aws:eks:*:*:cluster/goldenpath-dev".to_owned(),
        ),
        (
            "iam:GetOpenIDConnectProvider".to_owned(),
            "arn:aws:iam::*:oidc-provider/oidc.eks.*.amazonaws.com/id/*".to_owned(),
        ),
        (
            "s3:ListBucket".to_owned(),
            "arn:aws:s3:::goldenpath-dev-loki".to_owned(),
        ),
    ]);
    for grant in wanted {
        assert!(grants.contains(&grant), "{grant:?} in {grants:?}");
    }
}
