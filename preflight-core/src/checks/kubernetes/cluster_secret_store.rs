//! `cluster-secret-store`: the ClusterSecretStore External Secrets reads from is Ready.

use serde::{Deserialize, Serialize};

use super::conditions::{self, Condition};
use super::fetch::{self, CLUSTER_SECRET_STORES};
use crate::check::{Attempt, Check, Context};
use crate::check::{Built, Definition, Family, Site};
use crate::outcome::Outcome;
use crate::platform::{NeededBy, Provider};
use crate::reads::Reads;
use crate::tier::Tier;

/// `checks.cluster-secret-store`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterSecretStoreSettings {
    /// The ClusterSecretStore the apps' ExternalSecrets reference.
    pub name: String,
}

impl Default for ClusterSecretStoreSettings {
    fn default() -> Self {
        ClusterSecretStoreSettings {
            name: "aws-secretsmanager".into(),
        }
    }
}

/// API versions of `external-secrets.io` this check understands, newest first: `v1` since
/// External Secrets 0.17, `v1beta1` before. The store's status has the same shape in both.
const VERSIONS: [&str; 2] = ["v1", "v1beta1"];

/// The status of a ClusterSecretStore.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct StoreDoc {
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    status: StoreStatus,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct StoreStatus {
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    conditions: Vec<Condition>,
}

/// Judges the store found under `name`.
pub(crate) fn judge(name: &str, found: Option<&StoreDoc>) -> Outcome {
    let Some(doc) = found else {
        return Outcome::fail("secret-store-missing", format!("ClusterSecretStore {name:?} not found"))
            .hint("The store is created with the External Secrets app (tier 1); until it exists no ExternalSecret can sync. Check that app's sync in ArgoCD.");
    };
    let ready = conditions::find(&doc.status.conditions, "Ready");
    if ready.is_some_and(|c| c.status == "True") {
        return Outcome::pass(
            "secret-store-ready",
            format!(
                "ClusterSecretStore {name:?} is Ready{}",
                conditions::explain(ready)
            ),
        );
    }
    Outcome::fail("secret-store-not-ready", format!("ClusterSecretStore {name:?} is not Ready{}", conditions::explain(ready)))
        .hint("Check the IRSA role of the external-secrets ServiceAccount: it needs secretsmanager:GetSecretValue and secretsmanager:DescribeSecret on the platform's secrets. Secret names with slashes need a resource ARN ending in the full path and a wildcard (…:secret:platform/backstage/*), because AWS appends a 6-character suffix.")
}

/// The `cluster-secret-store` check.
#[derive(Debug)]
pub struct ClusterSecretStore {
    settings: ClusterSecretStoreSettings,
}

impl ClusterSecretStore {
    /// A check with these settings.
    #[must_use]
    pub fn new(settings: ClusterSecretStoreSettings) -> Self {
        ClusterSecretStore { settings }
    }
}

impl Definition for ClusterSecretStore {
    const ID: &'static str = "cluster-secret-store";
    const FAMILY: Family = Family::Kubernetes;
    type Settings = ClusterSecretStoreSettings;

    /// Tier 2's Backstage ships the first ExternalSecret.
    fn needed_by(_: &ClusterSecretStoreSettings) -> NeededBy {
        NeededBy::tier(Tier::Two)
    }

    fn provided_by(_: &ClusterSecretStoreSettings, _: &Site<'_>) -> Provider {
        Provider::app("external-secrets")
    }

    fn build(settings: &ClusterSecretStoreSettings, site: &Site<'_>) -> Result<Built, String> {
        Ok(Built::new(
            ClusterSecretStore::new(settings.clone()),
            format!("ClusterSecretStore {:?} Ready", settings.name),
            Self::provided_by(settings, site),
            &[super::Crds::ID],
        ))
    }
}

#[async_trait::async_trait]
impl Check for ClusterSecretStore {
    fn reads(&self) -> Reads {
        Reads::kube(vec![CLUSTER_SECRET_STORES.everywhere()])
    }

    async fn attempt(&self, ctx: &Context) -> Attempt {
        let resource = match fetch::served(
            ctx,
            &CLUSTER_SECRET_STORES,
            &VERSIONS,
            "secret-store-api-missing",
            "Install External Secrets with its CRDs (chart value installCRDs=true).",
        )
        .await
        {
            Ok(r) => r,
            Err(failed) => return *failed,
        };
        let version = resource.version.clone();
        let name = &self.settings.name;
        fetch::judge_object(ctx, &resource, None, name, |found| {
            judge(name, found).evidence("apiVersion", format!("external-secrets.io/{version}"))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;

    #[test]
    fn judges_the_store() {
        let ready: StoreDoc = serde_saphyr::from_str(
            "status:\n  conditions:\n  - {type: Ready, status: \"True\", reason: Valid, message: store validated}\n",
        )
        .expect("parses");
        let o = judge("aws-secretsmanager", Some(&ready));
        assert_eq!(
            (o.status, o.code.as_str()),
            (Status::Pass, "secret-store-ready")
        );

        let broken: StoreDoc = serde_saphyr::from_str(
            "status:\n  conditions:\n  - {type: Ready, status: \"False\", reason: InvalidProviderConfig, message: 'unable to validate store: AccessDeniedException'}\n",
        )
        .expect("parses");
        let o = judge("aws-secretsmanager", Some(&broken));
        assert_eq!(
            (o.status, o.code.as_str()),
            (Status::Fail, "secret-store-not-ready")
        );
        assert!(
            o.message.ends_with(
                "InvalidProviderConfig: unable to validate store: AccessDeniedException"
            ),
            "{}",
            o.message
        );

        let fresh: StoreDoc = serde_saphyr::from_str("{}").expect("parses");
        assert_eq!(judge("s", Some(&fresh)).code, "secret-store-not-ready");
        assert_eq!(judge("s", None).code, "secret-store-missing");
    }
}
