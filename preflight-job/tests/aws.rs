//! The RDS instance against moto's server: available, not found, stopped, the wrong engine,
//! an endpoint the app's Secret does not name, an unreachable API.

mod support;

use support::moto::Moto;
use support::*;

async fn rds_run(cluster: &Cluster, moto: &Moto, config: Option<&str>, extra: &[&str]) -> Run {
    let mut args = tier_2_adr(&["--check", "rds-instance", "--output", "json"]);
    if let Some(c) = config {
        args.extend(["--config", c]);
    }
    args.extend_from_slice(extra);
    run(cluster.preflight_aws(moto, &args)).await
}

fn set_host(cluster: &Cluster, host: &str) {
    cluster.set_secret_key("backstage", "backstage-postgres", "POSTGRES_HOST", host);
}

/// With no settings, the instance is the platform's `goldenpath-{env}`.
#[tokio::test(flavor = "multi_thread")]
async fn the_platforms_instance_is_found_by_its_conventional_name() {
    let moto = Moto::start();
    let address = moto.create_instance("goldenpath-dev", "postgres").await;
    let cluster = Cluster::healthy().await;
    let run = rds_run(&cluster, &moto, None, &[]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_check(&run, "rds-instance", "pass", "rds-available");
    assert!(
        run.check("rds-instance")["message"]
            .as_str()
            .unwrap()
            .contains(&address)
    );
    moto.rds()
        .await
        .delete_db_instance()
        .db_instance_identifier("goldenpath-dev")
        .skip_final_snapshot(true)
        .send()
        .await
        .expect("deletes");
    let gone = rds_run(&cluster, &moto, None, &[]).await;
    assert_eq!(gone.code, 1, "{}", gone.stdout);
    assert_check(&gone, "rds-instance", "fail", "rds-instance-not-found");
    assert!(
        gone.check("rds-instance")["message"]
            .as_str()
            .unwrap()
            .starts_with("platform.rdsAvailable is declared true in the bootstrap contract ("),
        "the declaration is verified, not trusted: {}",
        gone.check("rds-instance")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rds_instance_is_available_with_the_secrets_endpoint() {
    let moto = Moto::start();
    let address = moto
        .create_instance("goldenpath-platform", "postgres")
        .await;
    let cluster = Cluster::healthy().await;
    set_host(&cluster, &address);
    let compare = cluster.write(
        "compare.yaml",
        "checks:\n  rds-instance:\n    identifier: goldenpath-platform\n    hostSecret: {secret: backstage/backstage-postgres, key: POSTGRES_HOST}\n",
    );
    let compare = compare.to_str().unwrap();
    let run = rds_run(&cluster, &moto, Some(compare), &[]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_check(&run, "rds-instance", "pass", "rds-available");
    assert!(
        run.check("rds-instance")["message"]
            .as_str()
            .unwrap()
            .contains(&address)
    );

    set_host(
        &cluster,
        "old-instance.abcdefghij.eu-west-1.rds.amazonaws.com",
    );
    let mismatch = rds_run(&cluster, &moto, Some(compare), &[]).await;
    assert_eq!(mismatch.code, 1);
    assert_check(&mismatch, "rds-instance", "fail", "rds-endpoint-mismatch");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_stopped_and_foreign_instances_fail_with_hints() {
    let moto = Moto::start();
    let cluster = Cluster::healthy().await;
    let without_secret = cluster.write(
        "no-host.yaml",
        "checks:\n  rds-instance:\n    identifier: goldenpath-platform\n",
    );
    let cfg = without_secret.to_str().unwrap();

    let missing = rds_run(&cluster, &moto, Some(cfg), &[]).await;
    assert_eq!(missing.code, 1, "{}\n{}", missing.stdout, missing.stderr);
    assert_check(&missing, "rds-instance", "fail", "rds-instance-not-found");

    moto.create_instance("goldenpath-platform", "postgres")
        .await;
    moto.rds()
        .await
        .stop_db_instance()
        .db_instance_identifier("goldenpath-platform")
        .send()
        .await
        .expect("stops");
    let stopped = rds_run(&cluster, &moto, Some(cfg), &["--wait", "20s"]).await;
    assert_eq!(
        stopped.code, 1,
        "a stopped instance does not start by waiting"
    );
    assert_check(&stopped, "rds-instance", "fail", "rds-not-available");
    assert_eq!(stopped.check("rds-instance")["attempts"], 1);
    assert!(
        stopped.check("rds-instance")["hint"]
            .as_str()
            .unwrap()
            .contains("start-db-instance")
    );

    let mysql = cluster.write(
        "mysql.yaml",
        "checks:\n  rds-instance:\n    identifier: shop-mysql\n",
    );
    moto.create_instance("shop-mysql", "mysql").await;
    let foreign = rds_run(&cluster, &moto, Some(mysql.to_str().unwrap()), &[]).await;
    assert_check(&foreign, "rds-instance", "fail", "rds-engine-mismatch");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_aws_api_is_a_clear_failure() {
    let moto = Moto::start();
    let cluster = Cluster::healthy().await;
    let closed = closed_addr();
    let mut cmd = cluster.preflight_aws(
        &moto,
        &tier_2_adr(&["--check", "rds-instance", "--output", "json"]),
    );
    cmd.env("AWS_ENDPOINT_URL", format!("http://{closed}"));
    let run = run(cmd).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_check(&run, "rds-instance", "fail", "aws-unreachable");
}
