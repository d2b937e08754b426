//! `rds-instance`: the app database's RDS instance is `available`, runs PostgreSQL, and its
//! endpoint is the host the app's synced Secret names.

use aws_sdk_rds::error::SdkError;
use aws_sdk_rds::operation::describe_db_instances::DescribeDBInstancesError;

use crate::check::ObjectRef;
use crate::check::{Attempt, Check, Context};
use crate::check::{Built, Definition, Family, Site};
use crate::checks::kubernetes::fetch::{self, SECRETS};
use crate::contract::PlatformFlag;
use crate::outcome::Outcome;
use crate::platform::{NeededBy, Provider};
use crate::reads::{IamGrant, KubeRead, Reads};
use crate::tier::Tier;

use serde::{Deserialize, Serialize};

/// Where a Secret names the database host, to compare with the instance's endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HostInSecret {
    /// The Secret, `namespace/name`.
    pub secret: ObjectRef,
    /// Its key holding the host.
    pub key: String,
}

/// `checks.rds-instance`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct RdsSettings {
    /// The DB instance identifier; default: the platform's `goldenpath-{env}`.
    pub identifier: Option<String>,
    /// A Secret whose host must equal the instance's endpoint; none (the default): no
    /// comparison. Before tier 2 the apps' Secrets do not exist yet, so a gate cannot read one.
    pub host_secret: Option<HostInSecret>,
}

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

/// Describes the instance `id`: what the `rds-instance` check judges, and where the
/// `postgres` check finds the database host when nothing else names it.
pub(crate) async fn describe(
    rds: &aws_sdk_rds::Client,
    id: &str,
) -> Result<DbInstance, Box<Attempt>> {
    let output = rds
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .map_err(|e| Box::new(failure(id, &e)))?;
    let Some(db) = output.db_instances().first() else {
        return Err(Box::new(Attempt::settled(Outcome::fail(
            "rds-instance-not-found",
            format!("RDS instance {id} does not exist"),
        ))));
    };
    Ok(DbInstance {
        status: db.db_instance_status().unwrap_or("unknown").to_owned(),
        engine: db.engine().unwrap_or("unknown").to_owned(),
        engine_version: db.engine_version().unwrap_or_default().to_owned(),
        address: db.endpoint().and_then(|e| e.address()).map(str::to_owned),
        port: db.endpoint().and_then(|e| e.port()),
    })
}

/// The platform's RDS instance of an environment: `goldenpath-{env}`.
#[must_use]
pub(crate) fn instance_identifier(configured: Option<&str>, env: &str) -> String {
    configured.map_or_else(|| format!("goldenpath-{env}"), str::to_owned)
}

/// The `rds-instance` check.
#[derive(Debug)]
pub struct RdsInstance {
    identifier: String,
    host_secret: Option<HostInSecret>,
}

impl RdsInstance {
    /// A check of the instance `identifier`.
    #[must_use]
    pub fn new(identifier: String, host_secret: Option<HostInSecret>) -> Self {
        RdsInstance {
            identifier,
            host_secret,
        }
    }
}

/// The host the app's Secret names (decoded; a host is not a secret, the Secret's other keys
/// are never decoded).
async fn expected_host(
    ctx: &Context,
    host_secret: Option<&HostInSecret>,
) -> Result<Option<String>, Box<Attempt>> {
    let Some(source) = host_secret else {
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

impl Definition for RdsInstance {
    const ID: &'static str = "rds-instance";
    const FAMILY: Family = Family::Aws;
    const DECLARED_BY: Option<PlatformFlag> = Some(PlatformFlag::RdsAvailable);
    type Settings = RdsSettings;

    /// Tier 2's apps (Backstage, Grafana on PostgreSQL) are the first with a database.
    fn needed_by(_: &RdsSettings) -> NeededBy {
        NeededBy::tier(Tier::Two)
    }

    fn provided_by(_: &RdsSettings, _: &Site<'_>) -> Provider {
        Provider::Foundation("Terraform (RDS)")
    }

    fn build(settings: &RdsSettings, site: &Site<'_>) -> Result<Built, String> {
        let id = instance_identifier(settings.identifier.as_deref(), &site.values.env.value);
        let title = format!("RDS instance {id} available, PostgreSQL");
        Ok(Built::new(
            RdsInstance::new(id, settings.host_secret.clone()),
            title,
            Self::provided_by(settings, site),
            &[],
        ))
    }
}

#[async_trait::async_trait]
impl Check for RdsInstance {
    fn reads(&self) -> Reads {
        Reads {
            kube: self
                .host_secret
                .iter()
                .map(|h| KubeRead::secret(&h.secret.namespace, &h.secret.name))
                .collect(),
            iam: vec![IamGrant {
                action: "rds:DescribeDBInstances",
                resource: format!("arn:aws:rds:*:*:db:{}", self.identifier),
            }],
        }
    }

    async fn attempt(&self, ctx: &Context) -> Attempt {
        let Some(rds) = ctx.rds() else {
            return super::no_client();
        };
        let id = &self.identifier;
        let instance = match describe(rds, id).await {
            Ok(i) => i,
            Err(failed) => return *failed,
        };
        let host = match expected_host(ctx, self.host_secret.as_ref()).await {
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
