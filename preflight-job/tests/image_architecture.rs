//! `image-architecture`: the images of the apps a gate admits exist and are built for the
//! Ready nodes' architectures. The incident: an app image pushed to ECR for arm64 only while
//! the nodes are amd64, so its pods crash with `exec format error`.
//!
//! The registries are real parts on loopback: moto's ECR (`BatchGetImage` on real Docker
//! schema-2 manifests, OCI indexes and Docker manifest lists, pushed with `PutImage` under
//! their real digests), and a local OCI distribution endpoint (`support::registry`) with the
//! bearer-token flow. moto does not implement `GetDownloadUrlForLayer` (it raises
//! `NotImplementedError`), which ECR's single-platform images need for their config blob: a
//! minimal stub in front of moto (`support::registry::EcrFront`, reached through
//! `AWS_ENDPOINT_URL_ECR`) answers that one operation with AWS's documented response shape
//! (`downloadUrl`, `layerDigest`) pointing at the local registry's storage, and forwards
//! every other request to moto unchanged. No test reaches Docker Hub: its warnings are
//! covered by the judge's table tests.
//!
//! Discovery sees only the Applications that exist when a gate runs: on a first sync a tier's
//! own Applications are created after its gate, so the scenarios that name a tier's images
//! configure them (`images`), as CI would from the platform repository; a gate whose own
//! tier's apps have no image found or configured warns, naming them, instead of passing.

#![allow(
    clippy::unwrap_used,
    reason = "the scenarios run by on_both_servers! are not #[test] functions, which clippy's allow-unwrap-in-tests covers"
)]

mod support;

use serde_json::{Value, json};
use support::moto::Moto;
use support::registry::{self, Auth, EcrFront, ImageDocs, Registry};
use support::*;

const ID: &str = "image-architecture";

/// A config file for the check: `images` as `(app, reference)`, the local registry spoken
/// to over plain HTTP, and `extra` lines under the check's settings.
fn config(
    cluster: &Cluster,
    registry: Option<&Registry>,
    images: &[(&str, String)],
    extra: &str,
) -> String {
    let mut text = format!("checks:\n  {ID}:\n");
    if let Some(r) = registry {
        text.push_str(&format!("    insecureRegistries: [\"{}\"]\n", r.host()));
    }
    if !images.is_empty() {
        text.push_str("    images:\n");
        for (app, image) in images {
            text.push_str(&format!("    - {{app: {app}, image: \"{image}\"}}\n"));
        }
    }
    text.push_str(extra);
    let path = cluster.write("image-architecture.yaml", &text);
    path.to_str().unwrap().to_owned()
}

/// The check alone at the gate of `tier`, with a JSON report.
fn args<'a>(tier: &'a str, config: &'a str) -> Vec<&'a str> {
    let base = ["--check", ID, "--output", "json", "--config", config];
    if tier == "2" {
        tier_2_adr(&base)
    } else {
        [&["--tier", tier][..], &base].concat()
    }
}

/// A run against moto (and the stub in front of its ECR).
async fn run_aws(
    cluster: &Cluster,
    moto: &Moto,
    front: &EcrFront,
    tier: &str,
    config: &str,
) -> Run {
    run(aws_cmd(cluster, moto, front, tier, config)).await
}

fn aws_cmd(
    cluster: &Cluster,
    moto: &Moto,
    front: &EcrFront,
    tier: &str,
    config: &str,
) -> tokio::process::Command {
    let mut cmd = cluster.preflight_aws(moto, &args(tier, config));
    front.env(&mut cmd);
    cmd
}

/// A run that reaches no AWS API: the region is set and instance metadata off, so the SDK's
/// setup looks nowhere but the environment (`Cluster::preflight` would skip the check: it is
/// among the AWS checks, as its IAM reads make the binary set up AWS's SDK).
async fn run_local(cluster: &Cluster, tier: &str, config: &str) -> Run {
    run(local_cmd(cluster, tier, config)).await
}

fn local_cmd(cluster: &Cluster, tier: &str, config: &str) -> tokio::process::Command {
    let mut cmd = preflight_cmd();
    cmd.arg("--kubeconfig")
        .arg(cluster.path("kubeconfig"))
        .arg("--values")
        .arg(cluster.path("values.yaml"))
        .args(args(tier, config))
        .env("HOME", cluster.dir.path());
    cmd.env("AWS_REGION", support::moto::REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", format!("http://{}", closed_addr()));
    cmd
}

/// What a gate adds when no image of `apps` of its own `tier` was found or configured.
fn uncovered(tier: &str, apps: &str) -> String {
    format!(
        "no image of tier {tier}'s own apps {apps} was looked at: none is listed for them in checks.image-architecture.images or found in their Applications"
    )
}

/// The same at tier 1's gate when only kong's image is named.
fn all_but_kong() -> String {
    uncovered(
        "1",
        "external-secrets, cert-manager, external-dns, cluster-autoscaler",
    )
}

/// The warning for the apps of the gate's tier none of whose images was looked at: its
/// hint says to list them, and the evidence names them.
fn assert_uncovered(run: &Run, apps: &str) {
    assert!(
        hint(run).contains("List their images in checks.image-architecture.images (CI can generate it from the platform repository): on a first sync their Applications do not exist yet when this gate runs."),
        "{}",
        hint(run)
    );
    assert_eq!(
        run.check(ID)["evidence"]["uncovered"],
        apps,
        "{}",
        run.stdout
    );
}

fn message(run: &Run) -> String {
    run.check(ID)["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn hint(run: &Run) -> String {
    run.check(ID)["hint"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Multi-arch images pass, once every app of the gate's tier has its image listed: while
/// only some are, the gate warns, naming the others.
#[tokio::test(flavor = "multi_thread")]
async fn multi_arch_ecr_images_pass_on_amd64_nodes() {
    let moto = Moto::start();
    let local = Registry::start(Auth::AnonymousToken).await;
    let front = EcrFront::start(&moto.url, &local).await;
    let host = registry::create_repository(&moto, "goldenpath/kong").await;
    registry::create_repository(&moto, "goldenpath/external-dns").await;
    registry::put_image(
        &moto,
        "goldenpath/kong",
        "3.9.1",
        &ImageDocs::multi(&["amd64", "arm64"], true),
    )
    .await;
    registry::put_image(
        &moto,
        "goldenpath/external-dns",
        "v0.15.1",
        &ImageDocs::multi(&["arm64", "amd64"], false),
    )
    .await;
    let cluster = Cluster::healthy().await;
    let cfg = config(
        &cluster,
        None,
        &[
            ("kong", format!("{host}/goldenpath/kong:3.9.1")),
            (
                "external-dns",
                format!("{host}/goldenpath/external-dns:v0.15.1"),
            ),
        ],
        "",
    );
    let some = run_aws(&cluster, &moto, &front, "1", &cfg).await;
    assert_eq!(
        some.code, 0,
        "a warning does not fail the gate: {}\n{}",
        some.stdout, some.stderr
    );
    assert_check(&some, ID, "warn", "image-architecture-tier-uncovered");
    let m = message(&some);
    assert!(
        m.starts_with("2 image(s) run on the Ready nodes' linux/amd64 (3): ")
            && m.contains(&format!(
                "{host}/goldenpath/kong:3.9.1 (linux/amd64, linux/arm64)"
            ))
            && m.contains(&format!(
                "{host}/goldenpath/external-dns:v0.15.1 (linux/amd64, linux/arm64)"
            ))
            && m.ends_with(&format!(
                "; {}",
                uncovered("1", "external-secrets, cert-manager, cluster-autoscaler")
            )),
        "{m}"
    );
    assert_uncovered(&some, "external-secrets, cert-manager, cluster-autoscaler");

    let mut images = vec![
        ("kong", format!("{host}/goldenpath/kong:3.9.1")),
        (
            "external-dns",
            format!("{host}/goldenpath/external-dns:v0.15.1"),
        ),
    ];
    for app in ["external-secrets", "cert-manager", "cluster-autoscaler"] {
        let repository = format!("goldenpath/{app}");
        registry::create_repository(&moto, &repository).await;
        registry::put_image(
            &moto,
            &repository,
            "1.0.0",
            &ImageDocs::multi(&["amd64", "arm64"], true),
        )
        .await;
        images.push((app, format!("{host}/{repository}:1.0.0")));
    }
    let cfg = config(&cluster, None, &images, "");
    let run = run_aws(&cluster, &moto, &front, "1", &cfg).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_check(&run, ID, "pass", "image-architecture-matches");
    let m = message(&run);
    assert!(
        m.starts_with("5 image(s) run on the Ready nodes' linux/amd64 (3): ")
            && m.contains(&format!(
                "{host}/goldenpath/cert-manager:1.0.0 (linux/amd64, linux/arm64)"
            )),
        "{m}"
    );
    assert!(run.check(ID)["evidence"].get("uncovered").is_none(), "{m}");
    assert_eq!(
        front.download_urls(),
        0,
        "an index names its platforms: no blob is read"
    );
}

/// The incident: a single-platform arm64 image (a laptop's `docker build`) on amd64 nodes.
#[tokio::test(flavor = "multi_thread")]
async fn an_arm64_only_ecr_image_fails_on_amd64_nodes() {
    let moto = Moto::start();
    let local = Registry::start(Auth::AnonymousToken).await;
    let front = EcrFront::start(&moto.url, &local).await;
    let host = registry::create_repository(&moto, "backstage").await;
    let image = ImageDocs::single("arm64", false);
    // ECR keeps the config blob; the stub hands out a storage URL for it.
    local.add_blob(&image.blobs[0]);
    registry::put_image(&moto, "backstage", "1.4.2", &image).await;
    let cluster = Cluster::healthy().await;
    let reference = format!("{host}/backstage:1.4.2");
    assert_eq!(
        reference,
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/backstage:1.4.2"
    );
    let cfg = config(&cluster, None, &[("backstage", reference.clone())], "");

    let run = run_aws(&cluster, &moto, &front, "2", &cfg).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_check(&run, ID, "fail", "image-architecture-mismatch");
    assert_eq!(
        message(&run),
        format!(
            "backstage image 123456789012.dkr.ecr.eu-west-1.amazonaws.com/backstage:1.4.2 is built for linux/arm64 only; the Ready nodes are linux/amd64 (3): pods would crash with `exec format error`; {}",
            uncovered("2", "loki, grafana-postgresql")
        ),
        "the failure stands, and says what was not looked at"
    );
    assert!(
        hint(&run).contains(&format!(
            "docker buildx build --platform linux/amd64,linux/arm64 -t {reference} --push ."
        )),
        "{}",
        hint(&run)
    );
    assert_eq!(
        front.download_urls(),
        1,
        "the config blob was read through GetDownloadUrlForLayer"
    );

    // The same image rebuilt for amd64 and pushed under the tag runs; loki's and
    // grafana-postgresql's images are still not looked at.
    let fixed = ImageDocs::single("amd64", true);
    local.add_blob(&fixed.blobs[0]);
    registry::put_image(&moto, "backstage", "1.4.2", &fixed).await;
    let rebuilt = run_aws(&cluster, &moto, &front, "2", &cfg).await;
    assert_eq!(rebuilt.code, 0, "{}\n{}", rebuilt.stdout, rebuilt.stderr);
    assert_check(&rebuilt, ID, "warn", "image-architecture-tier-uncovered");
    assert_uncovered(&rebuilt, "loki, grafana-postgresql");
    assert!(
        message(&rebuilt).contains("backstage:1.4.2 (linux/amd64)"),
        "{}",
        message(&rebuilt)
    );

    // backstage is a tier-2 app: the gate of tier 1 does not check it, and with nothing
    // else to check it claims no pass.
    let tier1 = run_aws(&cluster, &moto, &front, "1", &cfg).await;
    assert_eq!(tier1.code, 0, "{}\n{}", tier1.stdout, tier1.stderr);
    assert_check(&tier1, ID, "skip", "no-images");
    assert!(
        hint(&tier1).contains("checks.image-architecture.images"),
        "{}",
        hint(&tier1)
    );
}

/// A failed download of a presigned URL (ECR's `GetDownloadUrlForLayer`, a registry's
/// redirect to its storage) names the host only: the query (`X-Amz-Signature`,
/// `X-Amz-Security-Token`) is a bearer credential, and reaches no report or log, not even at
/// debug level.
#[tokio::test(flavor = "multi_thread")]
async fn presigned_storage_urls_reach_no_report_or_log() {
    const CANARY: &str = "canary7f3a9c";
    let closed = closed_addr();
    let presigned = |path: &str| {
        format!(
            "http://{closed}/{path}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIA{CANARY}%2F20261203%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Date=20261203T100000Z&X-Amz-Expires=3600&X-Amz-Security-Token={CANARY}-token&X-Amz-SignedHeaders=host&X-Amz-Signature={CANARY}-signature"
        )
    };
    let moto = Moto::start();
    let local = Registry::start(Auth::AnonymousToken).await;
    let front = EcrFront::start(&moto.url, &local).await;
    let host = registry::create_repository(&moto, "backstage").await;
    let image = ImageDocs::single("amd64", false);
    local.add_blob(&image.blobs[0]);
    registry::put_image(&moto, "backstage", "1.4.2", &image).await;
    front.hand_out(&presigned("prod-eu-west-1-starport-layer-bucket/config"));
    let cluster = Cluster::healthy().await;

    let cfg = config(
        &cluster,
        None,
        &[("backstage", format!("{host}/backstage:1.4.2"))],
        "",
    );
    let mut cmd = aws_cmd(&cluster, &moto, &front, "2", &cfg);
    cmd.env("PREFLIGHT_LOG", "debug");
    let ecr = run(cmd).await;
    assert_eq!(ecr.code, 1, "{}\n{}", ecr.stdout, ecr.stderr);
    assert_check(&ecr, ID, "fail", "registry-unreachable");
    assert!(
        message(&ecr).starts_with(&format!(
            "backstage image {host}/backstage:1.4.2: cannot reach 127.0.0.1: "
        )),
        "{}",
        message(&ecr)
    );
    assert_eq!(front.download_urls(), 1, "ECR handed out the URL");

    local.push("team/api", "1.0.0", &ImageDocs::single("amd64", true));
    local.redirect_storage_to(&presigned(
        "registry-storage/docker/registry/v2/blobs/config",
    ));
    let cfg = config(
        &cluster,
        Some(&local),
        &[("kong", format!("{}/team/api:1.0.0", local.host()))],
        "",
    );
    let mut cmd = local_cmd(&cluster, "1", &cfg);
    cmd.env("PREFLIGHT_LOG", "debug");
    let redirected = run(cmd).await;
    assert_eq!(
        redirected.code, 1,
        "{}\n{}",
        redirected.stdout, redirected.stderr
    );
    assert_check(&redirected, ID, "fail", "registry-unreachable");
    assert!(
        message(&redirected).contains(": cannot reach 127.0.0.1: "),
        "{}",
        message(&redirected)
    );
    assert!(
        local.log().iter().any(|l| l.status == 307),
        "the registry redirected the blob download"
    );

    for run in [&ecr, &redirected] {
        assert!(
            run.stderr.contains("DEBUG"),
            "debug logging is on: {}",
            run.stderr
        );
        for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            assert!(
                !text.contains(CANARY) && !text.contains("X-Amz-"),
                "a presigned URL leaked into {name}:\n{text}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tag_or_repository_missing_in_ecr_fails_image_not_found() {
    let moto = Moto::start();
    let local = Registry::start(Auth::AnonymousToken).await;
    let front = EcrFront::start(&moto.url, &local).await;
    let host = registry::create_repository(&moto, "goldenpath/kong").await;
    registry::put_image(
        &moto,
        "goldenpath/kong",
        "3.9.0",
        &ImageDocs::multi(&["amd64"], true),
    )
    .await;
    let cluster = Cluster::healthy().await;

    let cfg = config(
        &cluster,
        None,
        &[("kong", format!("{host}/goldenpath/kong:3.9.1"))],
        "",
    );
    let tag = run_aws(&cluster, &moto, &front, "1", &cfg).await;
    assert_eq!(tag.code, 1, "{}\n{}", tag.stdout, tag.stderr);
    assert_check(&tag, ID, "fail", "image-not-found");
    assert_eq!(
        message(&tag),
        format!(
            "kong image {host}/goldenpath/kong:3.9.1 does not exist: ECR answered ImageNotFound: Requested image not found; {}",
            all_but_kong()
        )
    );
    assert!(
        hint(&tag).contains("aws ecr describe-images --registry-id 123456789012 --region eu-west-1 --repository-name goldenpath/kong"),
        "{}",
        hint(&tag)
    );

    let cfg = config(
        &cluster,
        None,
        &[("kong", format!("{host}/goldenpath/kong-gateway:3.9.1"))],
        "",
    );
    let repo = run_aws(&cluster, &moto, &front, "1", &cfg).await;
    assert_check(&repo, ID, "fail", "image-not-found");
    assert!(
        message(&repo).contains("RepositoryNotFoundException"),
        "{}",
        message(&repo)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn single_arch_oci_images_are_read_through_the_registrys_token_flow() {
    let local = Registry::start(Auth::AnonymousToken).await;
    local.push("team/api", "1.0.0", &ImageDocs::single("amd64", true));
    local.push("team/worker", "1.0.0", &ImageDocs::single("arm64", true));
    let host = local.host();
    let cluster = Cluster::healthy().await;

    let cfg = config(
        &cluster,
        Some(&local),
        &[("kong", format!("{host}/team/api:1.0.0"))],
        "",
    );
    let ok = run_local(&cluster, "1", &cfg).await;
    assert_eq!(ok.code, 0, "{}\n{}", ok.stdout, ok.stderr);
    assert_check(&ok, ID, "warn", "image-architecture-tier-uncovered");
    assert!(
        message(&ok).contains(&format!("{host}/team/api:1.0.0 (linux/amd64)")),
        "{}",
        message(&ok)
    );
    // 401 with the challenge, an anonymous token, the manifest with it, the config blob
    // through the redirect to storage.
    let log: Vec<(String, u16, bool)> = local
        .log()
        .into_iter()
        .map(|l| {
            (
                l.path,
                l.status,
                l.authorization
                    .is_some_and(|a| a.starts_with("Bearer tok-")),
            )
        })
        .collect();
    let config_digest = registry::digest(&ImageDocs::single("amd64", true).blobs[0]);
    assert_eq!(
        log,
        [
            ("/v2/team/api/manifests/1.0.0".to_owned(), 401, false),
            ("/token".to_owned(), 200, false),
            ("/v2/team/api/manifests/1.0.0".to_owned(), 200, true),
            (format!("/v2/team/api/blobs/{config_digest}"), 307, true),
            (format!("/storage/{config_digest}"), 200, false),
        ]
    );

    let cfg = config(
        &cluster,
        Some(&local),
        &[("kong", format!("{host}/team/worker:1.0.0"))],
        "",
    );
    let arm = run_local(&cluster, "1", &cfg).await;
    assert_eq!(arm.code, 1, "{}\n{}", arm.stdout, arm.stderr);
    assert_check(&arm, ID, "fail", "image-architecture-mismatch");
    assert_eq!(
        message(&arm),
        format!(
            "kong image {host}/team/worker:1.0.0 is built for linux/arm64 only; the Ready nodes are linux/amd64 (3): pods would crash with `exec format error`; {}",
            all_but_kong()
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tag_missing_from_the_registry_fails_image_not_found() {
    let local = Registry::start(Auth::AnonymousToken).await;
    local.push("team/api", "1.0.0", &ImageDocs::single("amd64", false));
    let host = local.host();
    let cluster = Cluster::healthy().await;
    let cfg = config(
        &cluster,
        Some(&local),
        &[("kong", format!("{host}/team/api:1.0.1"))],
        "",
    );
    let run = run_local(&cluster, "1", &cfg).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_check(&run, ID, "fail", "image-not-found");
    assert_eq!(
        message(&run),
        format!(
            "kong image {host}/team/api:1.0.1 does not exist: {host} answered 404 Not Found MANIFEST_UNKNOWN: manifest unknown; {}",
            all_but_kong()
        )
    );
    assert!(hint(&run).contains("Push the tag"), "{}", hint(&run));
}

#[tokio::test(flavor = "multi_thread")]
async fn latest_and_untagged_images_warn() {
    let local = Registry::start(Auth::AnonymousToken).await;
    local.push(
        "team/api",
        "latest",
        &ImageDocs::multi(&["amd64", "arm64"], true),
    );
    let host = local.host();
    let cluster = Cluster::healthy().await;
    for image in [
        format!("{host}/team/api:latest"),
        format!("{host}/team/api"),
    ] {
        let cfg = config(&cluster, Some(&local), &[("kong", image.clone())], "");
        let run = run_local(&cluster, "1", &cfg).await;
        assert_eq!(
            run.code, 0,
            "a warning does not fail the run: {}\n{}",
            run.stdout, run.stderr
        );
        // What is said of the image comes first, then the apps none was found for.
        assert_check(&run, ID, "warn", "image-tag-latest");
        assert!(
            message(&run).starts_with(&format!("kong image {image}"))
                && message(&run).ends_with(&format!("; {}", all_but_kong())),
            "{}",
            message(&run)
        );
        assert_uncovered(
            &run,
            "external-secrets, cert-manager, external-dns, cluster-autoscaler",
        );
        assert!(
            hint(&run).contains("Pin a version tag or a digest"),
            "{}",
            hint(&run)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_registry_is_read_with_the_pull_secrets_credentials() {
    const PASSWORD: &str = "pull-secret-Xq9w";
    let local = Registry::start(Auth::User("robot$ci".into(), PASSWORD.into())).await;
    local.push("private/api", "2.1.0", &ImageDocs::single("amd64", false));
    let host = local.host();
    let cluster = Cluster::healthy().await;
    let image = [("kong", format!("{host}/private/api:2.1.0"))];

    let anonymous = run_local(&cluster, "1", &config(&cluster, Some(&local), &image, "")).await;
    assert_eq!(
        anonymous.code, 1,
        "{}\n{}",
        anonymous.stdout, anonymous.stderr
    );
    assert_check(&anonymous, ID, "fail", "registry-auth-failed");
    assert!(
        message(&anonymous).contains("anonymously"),
        "{}",
        message(&anonymous)
    );
    assert!(
        hint(&anonymous).contains("checks.image-architecture.pullSecrets"),
        "{}",
        hint(&anonymous)
    );

    let secret = |password: &str| {
        let docker_config = json!({"auths": {host.clone(): {"username": "robot$ci", "password": password, "auth": b64(&format!("robot$ci:{password}"))}}});
        json!({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": "registry-credentials", "namespace": "kong"},
            "data": {".dockerconfigjson": b64(&docker_config.to_string())}
        })
    };
    let with_secret = config(
        &cluster,
        Some(&local),
        &image,
        "    pullSecrets: [kong/registry-credentials]\n",
    );
    let missing = run_local(&cluster, "1", &with_secret).await;
    assert_check(&missing, ID, "fail", "pull-secret-missing");
    assert!(
        message(&missing).contains("kong/registry-credentials"),
        "{}",
        message(&missing)
    );

    cluster.kube.apply(secret(PASSWORD)).unwrap();
    let ok = run_local(&cluster, "1", &with_secret).await;
    assert_eq!(ok.code, 0, "{}\n{}", ok.stdout, ok.stderr);
    assert_check(&ok, ID, "warn", "image-architecture-tier-uncovered");
    assert!(
        message(&ok).contains(&format!("{host}/private/api:2.1.0 (linux/amd64)")),
        "{}",
        message(&ok)
    );

    cluster.kube.apply(secret("an-old-password")).unwrap();
    let wrong = run_local(&cluster, "1", &with_secret).await;
    assert_check(&wrong, ID, "fail", "registry-auth-failed");
    assert!(
        message(&wrong).contains("with the pull secret's credentials"),
        "{}",
        message(&wrong)
    );
    for run in [&anonymous, &missing, &ok, &wrong] {
        for secret in [PASSWORD, "an-old-password"] {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "a password leaked:\n{}\n{}",
                run.stdout,
                run.stderr
            );
        }
    }
}

on_both_servers!(
    images_are_discovered_in_the_applications_of_the_gates_tiers,
    node_pools_of_another_architecture_warn_fail_or_are_left_out,
);

/// On a re-sync every Application exists when a gate runs (on a first sync, those of the
/// lower tiers): each gate checks the images of its tiers' Applications, from their Helm
/// parameters and valuesObject, and not those of a higher tier; the apps of the gate's own tier
/// whose Application names no image are said to be unchecked. A values map that is no image
/// (a Git repository and tag) is skipped with a warning, never a failure.
async fn images_are_discovered_in_the_applications_of_the_gates_tiers(backend: Backend) {
    let local = Registry::start(Auth::AnonymousToken).await;
    local.push(
        "kong/kong-gateway",
        "3.9.1",
        &ImageDocs::single("amd64", false),
    );
    local.push(
        "prometheus/prometheus",
        "v3.0.1",
        &ImageDocs::single("arm64", true),
    );
    let host = local.host();
    let cluster = Cluster::healthy_on(backend).await;
    let cfg = config(&cluster, Some(&local), &[], "");

    // The healthy platform's Applications name no image: nothing was checked, so no pass, and
    // it says where it looked and what to configure.
    let none = run_local(&cluster, "1.5", &cfg).await;
    assert_eq!(none.code, 0, "{}\n{}", none.stdout, none.stderr);
    assert_check(&none, ID, "skip", "no-images");
    assert!(
        hint(&none)
            .contains("List the images of the tier's apps in checks.image-architecture.images"),
        "{}",
        hint(&none)
    );
    assert!(
        message(&none).contains(
            "the Helm parameters and values of 4 Application(s) of tiers 1 to 1.5 in argocd"
        ),
        "{}",
        message(&none)
    );

    let app = |name: &str| {
        (
            "argoproj.io/v1alpha1",
            "Application",
            Some("argocd"),
            name.to_owned(),
        )
    };
    let (v, k, ns, name) = app("kong");
    cluster
        .kube
        .update(v, k, ns, &name, |a| {
            a["spec"]["source"]["helm"] = json!({"parameters": [
                {"name": "image.repository", "value": format!("{host}/kong/kong-gateway")},
                {"name": "image.tag", "value": "3.9.1"},
                {"name": "replicaCount", "value": "2"}
            ]});
        })
        .unwrap();
    let (v, k, ns, name) = app("kube-prometheus-stack");
    cluster
        .kube
        .update(v, k, ns, &name, |a| {
            a["spec"]["source"]["helm"] = json!({"valuesObject": {"prometheus": {"prometheusSpec": {"image": {
                "registry": host, "repository": "prometheus/prometheus", "tag": "v3.0.1"
            }}}}});
        })
        .unwrap();

    let tier1 = run_local(&cluster, "1", &cfg).await;
    assert_eq!(tier1.code, 0, "{}\n{}", tier1.stdout, tier1.stderr);
    assert_check(&tier1, ID, "warn", "image-architecture-tier-uncovered");
    let m = message(&tier1);
    assert!(
        m.contains(&format!("{host}/kong/kong-gateway:3.9.1 (linux/amd64)"))
            && m.ends_with(&format!("; {}", all_but_kong())),
        "the image found in Application kong counts for kong: {m}"
    );
    assert_uncovered(
        &tier1,
        "external-secrets, cert-manager, external-dns, cluster-autoscaler",
    );
    assert!(
        !m.contains("prometheus"),
        "tier 1.5's image is not tier 1's business: {m}"
    );

    let tier15 = run_local(&cluster, "1.5", &cfg).await;
    assert_eq!(tier15.code, 1, "{}\n{}", tier15.stdout, tier15.stderr);
    assert_check(&tier15, ID, "fail", "image-architecture-mismatch");
    assert_eq!(
        message(&tier15),
        format!(
            "kube-prometheus-stack image {host}/prometheus/prometheus:v3.0.1 is built for linux/arm64 only; the Ready nodes are linux/amd64 (3): pods would crash with `exec format error`; {}",
            // An image counts for the app its Application is named after.
            uncovered("1.5", "prometheus, alertmanager, grafana-sqlite")
        )
    );
    assert!(
        hint(&tier15).contains("It is set in Application kube-prometheus-stack (spec.source.helm: prometheus.prometheusSpec.image)."),
        "{}",
        hint(&tier15)
    );

    // A values map with `repository` and `tag` that is a Git repository: skipped, not failed.
    let (v, k, ns, name) = app("kong");
    cluster
        .kube
        .update(v, k, ns, &name, |a| {
            let parameters = a["spec"]["source"]["helm"]["parameters"].as_array_mut().unwrap();
            parameters.push(json!({"name": "gitops.repository", "value": "https://github.com/goldenpath/platform"}));
            parameters.push(json!({"name": "gitops.tag", "value": "v1"}));
        })
        .unwrap();
    let git = run_local(&cluster, "1", &cfg).await;
    assert_eq!(git.code, 0, "{}\n{}", git.stdout, git.stderr);
    // The apps none was found for outrank a value skipped as no image.
    assert_check(&git, ID, "warn", "image-architecture-tier-uncovered");
    assert!(
        message(&git).starts_with(
            "skipped Application kong (spec.source.helm: gitops): \"https://github.com/goldenpath/platform:v1\" is not an image reference"
        ),
        "{}",
        message(&git)
    );
    assert!(
        message(&git).ends_with(&format!("; {}", all_but_kong())),
        "{}",
        message(&git)
    );
    assert!(
        hint(&git).contains("need not be an image"),
        "{}",
        hint(&git)
    );
    assert_eq!(
        git.check(ID)["evidence"]["images"],
        "1",
        "kong's image is still checked"
    );
}

/// Node pools of another architecture and an amd64-only image: an untainted arm64 node among
/// amd64 ones warns (its pods crash only where the scheduler puts them there); a tainted arm64
/// pool runs only what tolerates it, so it is left out (and said so) and the image passes; a
/// cluster whose only untainted nodes are arm64 fails.
async fn node_pools_of_another_architecture_warn_fail_or_are_left_out(backend: Backend) {
    let local = Registry::start(Auth::AnonymousToken).await;
    local.push(
        "kong/kong-gateway",
        "3.9.1",
        &ImageDocs::single("amd64", false),
    );
    let host = local.host();
    let image = format!("{host}/kong/kong-gateway:3.9.1");
    let cluster = Cluster::healthy_on(backend).await;
    let cfg = config(&cluster, Some(&local), &[("kong", image.clone())], "");
    let nodes: Vec<Value> = fake_kube::nodes_from_template(&eks_node(), 3, true);
    let name = |i: usize| nodes[i]["metadata"]["name"].as_str().unwrap().to_owned();
    let to_arm64 = |i: usize| {
        cluster
            .kube
            .update("v1", "Node", None, &name(i), |n| {
                n["status"]["nodeInfo"]["architecture"] = json!("arm64");
                n["metadata"]["labels"]["kubernetes.io/arch"] = json!("arm64");
            })
            .unwrap();
    };
    let taint = |i: usize, effect: &str| {
        cluster
            .kube
            .update("v1", "Node", None, &name(i), |n| {
                n["spec"]["taints"] =
                    json!([{"key": "goldenpath.idp/pool", "value": "dedicated", "effect": effect}]);
            })
            .unwrap();
    };

    to_arm64(2);
    let mixed = run_local(&cluster, "1", &cfg).await;
    assert_eq!(
        mixed.code, 0,
        "a warning does not fail the gate: {}\n{}",
        mixed.stdout, mixed.stderr
    );
    assert_check(&mixed, ID, "warn", "image-architecture-partial");
    assert_eq!(
        message(&mixed),
        format!(
            "kong image {image} is built for linux/amd64 only; the Ready nodes are linux/amd64 (2), linux/arm64 (1): pods the scheduler puts on linux/arm64 nodes would crash with `exec format error`; {}",
            all_but_kong()
        )
    );
    assert!(
        hint(&mixed).contains(
            "Pin the app to the nodes it runs on with a nodeSelector on kubernetes.io/arch (amd64)"
        ) && hint(&mixed).contains(&format!(
            "docker buildx build --platform linux/amd64,linux/arm64 -t {image} --push ."
        )),
        "{}",
        hint(&mixed)
    );

    taint(2, "NoSchedule");
    let pool = run_local(&cluster, "1", &cfg).await;
    assert_eq!(pool.code, 0, "{}\n{}", pool.stdout, pool.stderr);
    assert_check(&pool, ID, "warn", "image-architecture-tier-uncovered");
    assert_eq!(
        message(&pool),
        format!(
            "1 image(s) run on the Ready nodes' linux/amd64 (2): {image} (linux/amd64) (1 tainted node(s) not counted); {}",
            all_but_kong()
        )
    );

    // The only untainted node left is arm64.
    to_arm64(0);
    taint(1, "NoExecute");
    let arm_only = run_local(&cluster, "1", &cfg).await;
    assert_eq!(arm_only.code, 1, "{}\n{}", arm_only.stdout, arm_only.stderr);
    assert_check(&arm_only, ID, "fail", "image-architecture-mismatch");
    assert_eq!(
        message(&arm_only),
        format!(
            "kong image {image} is built for linux/amd64 only; the Ready nodes are linux/arm64 (1): pods would crash with `exec format error` (2 tainted node(s) not counted); {}",
            all_but_kong()
        )
    );
    assert!(
        hint(&arm_only).contains("Rebuild and push it for the nodes' architectures")
            && hint(&arm_only).contains("or run it on the tainted amd64 nodes"),
        "{}",
        hint(&arm_only)
    );
}

/// `plan` places the check at tier 1 (left out of tier 0), and `iam-policy` grants ECR's
/// reads on exactly the configured repositories.
#[tokio::test(flavor = "multi_thread")]
async fn the_plan_places_it_at_tier_1_and_iam_policy_names_the_repositories() {
    let cluster = Cluster::empty().await;
    let ecr = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
    let cfg = config(
        &cluster,
        None,
        &[
            ("kong", format!("{ecr}/goldenpath/kong:3.9.1")),
            ("backstage", format!("{ecr}/backstage:1.4.2")),
        ],
        "    discover: false\n    pullSecrets: [kong/registry-credentials]\n",
    );
    let values = cluster.path("values.yaml");
    let values = values.to_str().unwrap();
    let command = |args: &[&str]| {
        let mut cmd = preflight_cmd();
        cmd.args(args).args(["--values", values, "--config", &cfg]);
        cmd
    };
    let tier0 = run(command(&["plan", "--tier", "0", "--output", "json"])).await;
    let plan = tier0.report();
    let left = plan["leftOut"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == ID)
        .cloned();
    assert_eq!(
        left.map(|l| l["reason"].clone()),
        Some(json!("above the requested tier 0")),
        "{plan:#}"
    );

    let policy = run(command(&["iam-policy", "--tier", "1", "--check", ID])).await;
    assert_eq!(policy.code, 0, "{}", policy.stderr);
    let policy: Value = serde_json::from_str(&policy.stdout).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1, "{policy:#}");
    assert_eq!(
        statements[0]["Action"],
        json!(["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"])
    );
    assert_eq!(
        statements[0]["Resource"],
        "arn:aws:ecr:eu-west-1:123456789012:repository/goldenpath/kong"
    );

    let rbac = run(command(&["rbac", "--tier", "1", "--check", ID])).await;
    assert_eq!(rbac.code, 0, "{}", rbac.stderr);
    assert!(
        rbac.stdout.contains("registry-credentials"),
        "{}",
        rbac.stdout
    );
    assert!(
        !rbac.stdout.contains("applications"),
        "discovery is off: {}",
        rbac.stdout
    );
}
