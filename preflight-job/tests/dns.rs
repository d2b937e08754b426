//! The Route53 zone and the DNS scope guard against moto's server: zones public and private,
//! ExternalDNS's ownership records in both TXT formats, escaped names, a zone of thousands of
//! records read page by page, and every violation named with its owner.

mod support;

use support::moto::{Moto, external_dns_records, ownership_txt};
use support::platform::{
    BUILD_OWNER, BUILD_SUFFIX, PERSISTENT_OWNER, PERSISTENT_VALUES, seed_zone,
};
use support::*;

/// `--tier 1.5 --check route53-zone --check dns-scope` on a cluster described by `values`:
/// the zone is tier 1's need, the scope of ExternalDNS's records the first gate's after it.
async fn dns_run(moto: &Moto, values: &str, config: Option<&str>) -> Run {
    let cluster = Cluster::empty().await;
    cluster.write("values.yaml", values);
    let mut args = vec![
        "--tier",
        "1.5",
        "--check",
        "route53-zone",
        "--check",
        "dns-scope",
        "--no-cluster-values",
        "--output",
        "json",
    ];
    let path;
    if let Some(c) = config {
        path = cluster.write("preflight.yaml", c).display().to_string();
        args.extend(["--config", &path]);
    }
    run(cluster.preflight_aws(moto, &args)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_zone_must_exist_and_be_of_the_configured_kind() {
    let moto = Moto::start();
    let missing = dns_run(&moto, EPHEMERAL_VALUES, None).await;
    assert_eq!(missing.code, 1, "{}", missing.stderr);
    assert_check(&missing, "route53-zone", "fail", "route53-zone-missing");
    assert_eq!(missing.check("dns-scope")["blockedBy"], "route53-zone");

    // A zone for another domain, and one under ours, are not the zone.
    moto.create_zone("goldenpathidp.dev", false).await;
    moto.create_zone("dev.goldenpathidp.io", true).await;
    let still = dns_run(&moto, EPHEMERAL_VALUES, None).await;
    assert_check(&still, "route53-zone", "fail", "route53-zone-missing");

    let zone = seed_zone(&moto).await;
    let found = dns_run(&moto, EPHEMERAL_VALUES, None).await;
    assert_eq!(found.code, 0, "{}\n{}", found.stdout, found.stderr);
    assert_check(&found, "route53-zone", "pass", "route53-zone-found");
    assert_eq!(found.check("route53-zone")["evidence"]["zoneId"], zone);

    let private = dns_run(
        &moto,
        EPHEMERAL_VALUES,
        Some("checks:\n  route53-zone:\n    private: true\n"),
    )
    .await;
    assert_check(&private, "route53-zone", "fail", "route53-zone-wrong-type");
    let hint = private.check("route53-zone")["hint"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(hint.contains("checks.route53-zone.private"), "{hint}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ephemeral_build_writing_into_the_persistent_zone_is_named_with_its_owner() {
    let moto = Moto::start();
    let zone = seed_zone(&moto).await;
    let fine = dns_run(&moto, EPHEMERAL_VALUES, None).await;
    assert_eq!(fine.code, 0, "{}\n{}", fine.stdout, fine.stderr);
    assert_check(&fine, "dns-scope", "pass", "dns-scope-respected");

    // A domain filter of `dev.goldenpathidp.io` instead of the build's suffix: the wildcard
    // lands in the persistent zone (Route53 returns `*` as \052), in the newer TXT format, and
    // a plain record in the older one.
    let mut leaked = external_dns_records(
        "*.dev.goldenpathidp.io",
        BUILD_OWNER,
        "ingress/kong/proxy",
        true,
    );
    leaked.extend(external_dns_records(
        "backstage.dev.goldenpathidp.io",
        BUILD_OWNER,
        "ingress/backstage/backstage",
        false,
    ));
    // And a name that only looks like the build's: its dot is escaped (\056), so it is one
    // label directly under the persistent zone.
    leaked.extend(external_dns_records(
        &format!("grafana\\056{BUILD_SUFFIX}"),
        BUILD_OWNER,
        "ingress/monitoring/grafana",
        true,
    ));
    moto.add_records(&zone, &leaked).await;
    let run = dns_run(&moto, EPHEMERAL_VALUES, None).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_check(&run, "dns-scope", "fail", "dns-scope-violated");
    let check = run.check("dns-scope");
    let message = check["message"].as_str().unwrap();
    for needle in [
        "3 record(s) owned by goldenpath-dev-26-01-23-01 break the DNS scope",
        "a-grafana\\.b-26-01-23-01.dev.goldenpathidp.io (owner goldenpath-dev-26-01-23-01, from ingress/monitoring/grafana) lies in the persistent zone",
        "a-*.dev.goldenpathidp.io (owner goldenpath-dev-26-01-23-01, from ingress/kong/proxy) lies in the persistent zone *.dev.goldenpathidp.io, outside this build's b-26-01-23-01.dev.goldenpathidp.io",
        "backstage.dev.goldenpathidp.io (owner goldenpath-dev-26-01-23-01, from ingress/backstage/backstage) lies in the persistent zone",
    ] {
        assert!(message.contains(needle), "{needle:?} in {message}");
    }
    assert!(check["hint"].as_str().unwrap().contains(BUILD_SUFFIX));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_persistent_cluster_writing_into_a_build_subdomain_is_named() {
    let moto = Moto::start();
    let zone = seed_zone(&moto).await;
    let fine = dns_run(&moto, PERSISTENT_VALUES, None).await;
    assert_eq!(fine.code, 0, "{}\n{}", fine.stdout, fine.stderr);
    moto.add_records(
        &zone,
        &external_dns_records(
            &format!("keycloak.{BUILD_SUFFIX}"),
            PERSISTENT_OWNER,
            "ingress/keycloak/keycloak",
            true,
        ),
    )
    .await;
    let run = dns_run(&moto, PERSISTENT_VALUES, None).await;
    assert_check(&run, "dns-scope", "fail", "dns-scope-violated");
    let message = run.check("dns-scope")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains(&format!("a-keycloak.{BUILD_SUFFIX} (owner goldenpath-dev, from ingress/keycloak/keycloak) lies in the build subdomain {BUILD_SUFFIX}, which belongs to an ephemeral cluster")),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn thousands_of_records_are_read_page_by_page() {
    let moto = Moto::start();
    let zone = seed_zone(&moto).await;
    // 3,000 record sets of the build, then one leaked record sorting after all of them: only
    // a reader that follows every page finds it.
    let mut many = Vec::new();
    for i in 0..1500 {
        many.extend(external_dns_records(
            &format!("svc-{i:04}.{BUILD_SUFFIX}"),
            BUILD_OWNER,
            "service/apps/svc",
            true,
        ));
    }
    many.push((
        "zzz-last.dev.goldenpathidp.io".to_owned(),
        "TXT",
        ownership_txt(BUILD_OWNER, "service/apps/last"),
    ));
    moto.add_records(&zone, &many).await;
    let run = dns_run(&moto, EPHEMERAL_VALUES, None).await;
    assert_check(&run, "dns-scope", "fail", "dns-scope-violated");
    let check = run.check("dns-scope");
    assert!(
        check["message"]
            .as_str()
            .unwrap()
            .starts_with("1 record(s)"),
        "{check:#}"
    );
    assert!(
        check["message"]
            .as_str()
            .unwrap()
            .contains("zzz-last.dev.goldenpathidp.io"),
        "{check:#}"
    );
    let read: usize = check["evidence"]["recordSetsRead"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(read > 3000, "read {read} record sets");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_route53_is_a_clear_failure() {
    let moto = Moto::start();
    let closed = closed_addr();
    let cluster = Cluster::empty().await;
    let mut cmd = cluster.preflight_aws(
        &moto,
        &[
            "--tier",
            "1",
            "--check",
            "route53-zone",
            "--no-cluster-values",
            "--output",
            "json",
        ],
    );
    cmd.env("AWS_ENDPOINT_URL", format!("http://{closed}"));
    let run = run(cmd).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_check(&run, "route53-zone", "fail", "aws-unreachable");
}
