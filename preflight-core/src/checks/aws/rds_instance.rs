//! `rds-instance`: the app database's RDS instance is `available`, runs PostgreSQL, and its
//! endpoint is the host the app's synced Secret names.

use aws_sdk_rds::error::SdkError;
use aws_sdk_rds::operation::describe_db_instances::DescribeDBInstancesError;

use crate::access::{IamGrant, KubeRead, Reads};
use crate::check::{Attempt, Check, Context};
use crate::checks::kubernetes::fetch::{self, SECRETS};
use crate::config::RdsSettings;
use crate::outcome::Outcome;

/// What `DescribeDBInstances` says of the instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DbInstance {
    pub status: String,
    pub engine: String,
    pub engine_version: String,
    pub address: Option<String>,
    pub port: Option<i32>,
}

/// States that pass by themselves: waited on while `--wait` allows.
const TRANSITIONAL: [&str; 12] = [
    "creating",
    "modifying",
    "backing-up",
    "rebooting",
    "starting",
    "upgrading",
    "maintenance",
    "renaming",
    "resetting-master-credentials",
    "configuring-enhanced-monitoring",
    "configuring-iam-database-auth",
    "configuring-log-exports",
];

/// Judges the instance; `expected_host` is the host the app's Secret names, when known.
pub(crate) fn judge(id: &str, instance: &DbInstance, expected_host: Option<&str>) -> Attempt {
    let status = instance.status.as_str();
    let describe = format!(
        "RDS instance {id} ({} {}) is {status}",
        instance.engine, instance.engine_version
    );
    if TRANSITIONAL.contains(&status) {
        return Attempt::transient(Outcome::fail("rds-not-available", describe).hint(
            "The instance is changing state; wait for it (--wait) or follow it in the RDS console.",
        ));
    }
    if status != "available" {
        let hint = match status {
            "stopped" | "stopping" => {
                "Start it: aws rds start-db-instance --db-instance-identifier <id> (stopped instances restart by themselves after 7 days)."
            }
            "storage-full" => "Increase its allocated storage (or enable storage autoscaling).",
            "inaccessible-encryption-credentials" => {
                "Its KMS key is disabled or its grant revoked: restore access to the key."
            }
            _ => {
                "The instance cannot serve: see its events (aws rds describe-events --source-type db-instance --source-identifier <id>)."
            }
        };
        return Attempt::settled(Outcome::fail("rds-not-available", describe).hint(hint));
    }
    if !instance.engine.contains("postgres") {
        return Attempt::settled(
            Outcome::fail(
                "rds-engine-mismatch",
                format!("RDS instance {id} runs {}, not PostgreSQL", instance.engine),
            )
            .hint("Point checks.rds-instance.identifier at the platform's PostgreSQL instance."),
        );
    }
    let address = instance.address.clone().unwrap_or_default();
    if let Some(host) = expected_host.filter(|h| !h.eq_ignore_ascii_case(&address)) {
        return Attempt::settled(
            Outcome::fail("rds-endpoint-mismatch", format!("the app's Secret names host {host}, but RDS instance {id}'s endpoint is {address}"))
                .hint("Update the secret in Secrets Manager to the instance's endpoint (Terraform output), then let the ExternalSecret refresh."),
        );
    }
    let port = instance.port.map(|p| format!(":{p}")).unwrap_or_default();
    Attempt::settled(
        Outcome::pass(
            "rds-available",
            format!(
                "RDS instance {id} ({} {}) is available at {address}{port}",
                instance.engine, instance.engine_version
            ),
        )
        .evidence("endpoint", format!("{address}{port}"))
        .evidence("engineVersion", &instance.engine_version),
    )
}

/// Maps a failed `DescribeDBInstances`: a missing instance is this check's own finding.
fn failure(id: &str, err: &SdkError<DescribeDBInstancesError>) -> Attempt {
    if err
        .as_service_error()
        .is_some_and(DescribeDBInstancesError::is_db_instance_not_found_fault)
    {
        return Attempt::settled(
            Outcome::fail("rds-instance-not-found", format!("RDS instance {id} does not exist in this account and region"))
                .hint("Check checks.rds-instance.identifier and the region (AWS_REGION); tier 2 needs the database Terraform creates."),
        );
    }
    super::failure(
        "rds:DescribeDBInstances",
        &format!("RDS instance {id}"),
        err,
    )
}

/// The `rds-instance` check.
#[derive(Debug)]
pub struct RdsInstance {
    settings: RdsSettings,
}

impl RdsInstance {
    /// A check with these settings.
    #[must_use]
    pub fn new(settings: RdsSettings) -> Self {
        RdsInstance { settings }
    }
}

/// The host the app's Secret names (decoded; a host is not a secret, the Secret's other keys
/// are never decoded).
async fn expected_host(
    ctx: &Context,
    settings: &RdsSettings,
) -> Result<Option<String>, Box<Attempt>> {
    let Some(source) = &settings.host_secret else {
        return Ok(None);
    };
    let (doc, _) = fetch::get_watchable::<fetch::SecretDoc>(
        ctx,
        &SECRETS,
        Some(&source.secret.namespace),
        &source.secret.name,
    )
    .await?;
    // An unreadable host is the postgres check's finding; here it only skips the comparison.
    Ok(doc.and_then(|d| fetch::secret_text(&d.data, &source.key).ok().flatten()))
}

#[async_trait::async_trait]
impl Check for RdsInstance {
    fn reads(&self) -> Reads {
        Reads {
            kube: self
                .settings
                .host_secret
                .iter()
                .map(|h| KubeRead::secret(&h.secret.namespace, &h.secret.name))
                .collect(),
            iam: vec![IamGrant {
                action: "rds:DescribeDBInstances",
                resource: format!("arn:aws:rds:*:*:db:{}", self.settings.identifier),
            }],
        }
    }

    async fn attempt(&self, ctx: &Context) -> Attempt {
        let Some(rds) = ctx.rds() else {
            return super::no_client();
        };
        let id = &self.settings.identifier;
        let described = rds
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await;
        let output = match described {
            Ok(o) => o,
            Err(e) => return failure(id, &e),
        };
        let Some(db) = output.db_instances().first() else {
            return Attempt::settled(Outcome::fail(
                "rds-instance-not-found",
                format!("RDS instance {id} does not exist"),
            ));
        };
        let instance = DbInstance {
            status: db.db_instance_status().unwrap_or("unknown").to_owned(),
            engine: db.engine().unwrap_or("unknown").to_owned(),
            engine_version: db.engine_version().unwrap_or_default().to_owned(),
            address: db.endpoint().and_then(|e| e.address()).map(str::to_owned),
            port: db.endpoint().and_then(|e| e.port()),
        };
        let host = match expected_host(ctx, &self.settings).await {
            Ok(h) => h,
            Err(failed) => return *failed,
        };
        judge(id, &instance, host.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Retry;
    use crate::outcome::Status;

    fn instance(status: &str, engine: &str) -> DbInstance {
        DbInstance {
            status: status.into(),
            engine: engine.into(),
            engine_version: "15.8".into(),
            address: Some("goldenpath-dev.abc123.eu-west-1.rds.amazonaws.com".into()),
            port: Some(5432),
        }
    }

    #[test]
    fn judges_states_engines_and_endpoints() {
        let host = Some("goldenpath-dev.abc123.eu-west-1.rds.amazonaws.com");
        for (i, expected, status, code, retry) in [
            (
                instance("available", "postgres"),
                host,
                Status::Pass,
                "rds-available",
                Retry::Never,
            ),
            (
                instance("available", "aurora-postgresql"),
                None,
                Status::Pass,
                "rds-available",
                Retry::Never,
            ),
            (
                instance("creating", "postgres"),
                host,
                Status::Fail,
                "rds-not-available",
                Retry::Backoff,
            ),
            (
                instance("backing-up", "postgres"),
                host,
                Status::Fail,
                "rds-not-available",
                Retry::Backoff,
            ),
            (
                instance("stopped", "postgres"),
                host,
                Status::Fail,
                "rds-not-available",
                Retry::Never,
            ),
            (
                instance("failed", "postgres"),
                host,
                Status::Fail,
                "rds-not-available",
                Retry::Never,
            ),
            (
                instance("available", "mysql"),
                host,
                Status::Fail,
                "rds-engine-mismatch",
                Retry::Never,
            ),
            (
                instance("available", "postgres"),
                Some("old.abc123.eu-west-1.rds.amazonaws.com"),
                Status::Fail,
                "rds-endpoint-mismatch",
                Retry::Never,
            ),
        ] {
            let a = judge("goldenpath-dev", &i, expected);
            assert_eq!(
                (a.outcome.status, a.outcome.code.as_str(), a.retry),
                (status, code, retry),
                "{i:?}"
            );
        }
        let stopped = judge("goldenpath-dev", &instance("stopped", "postgres"), None);
        assert!(
            stopped
                .outcome
                .hint
                .expect("hint")
                .contains("start-db-instance")
        );
    }
}
