//! The check catalogue. Each check is one unit in a file named after its id, holding its
//! [`Definition`] (id, family, settings with the platform's defaults, who needs it, what
//! provides it), what it reads, its fetch and its judge. This module only registers them:
//! adding a check adds one line to the `register!` list below.

pub mod aws;
pub mod http;
pub mod kubernetes;
pub mod postgres;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::check::{Built, Check, CheckMeta, Definition, Family, Site};
use crate::contract::PlatformFlag;
use crate::platform::{NeededBy, Provider};

/// A check with its place in the plan.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Identity, tier and dependencies.
    pub meta: CheckMeta,
    /// The check itself.
    pub check: Arc<dyn Check>,
}

type ProvidedBy<'a> = Box<dyn Fn(&Site<'_>) -> Provider + 'a>;
type Build<'a> = Box<dyn Fn(&Site<'_>) -> Result<Built, String> + 'a>;

/// A registered check's definition bound to its settings: what the plan needs to place it and
/// make it.
pub struct Registered<'a> {
    /// Its id.
    pub id: &'static str,
    /// The system it talks to.
    pub family: Family,
    /// The contract's declaration it verifies.
    pub declared_by: Option<PlatformFlag>,
    /// Who needs it.
    pub needed_by: NeededBy,
    provided_by: ProvidedBy<'a>,
    build: Build<'a>,
}

impl std::fmt::Debug for Registered<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registered")
            .field("id", &self.id)
            .field("needed_by", &self.needed_by)
            .finish_non_exhaustive()
    }
}

impl<'a> Registered<'a> {
    fn of<D: Definition>(settings: &'a D::Settings) -> Self {
        Registered {
            id: D::ID,
            family: D::FAMILY,
            declared_by: D::DECLARED_BY,
            needed_by: D::needed_by(settings),
            provided_by: Box::new(move |site| D::provided_by(settings, site)),
            build: Box::new(move |site| D::build(settings, site)),
        }
    }

    /// What provides what it verifies at `site`.
    #[must_use]
    pub fn provided_by(&self, site: &Site<'_>) -> Provider {
        (self.provided_by)(site)
    }

    /// The check for `site`, or why it has nothing to verify there.
    pub fn build(&self, site: &Site<'_>) -> Result<Built, String> {
        (self.build)(site)
    }
}

/// Lists every check once: generates the settings of all checks (each under its id, with its
/// own defaults) and the registry the plan draws from, in the order reports list them within
/// a tier.
macro_rules! register {
    ($($field:ident: $check:ty),* $(,)?) => {
        /// Settings of every check, each under its id (`checks.<id>` in the config file).
        #[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
        #[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
        pub struct CheckSettings {
            $(
                #[doc = concat!("Settings of [`", stringify!($check), "`].")]
                pub $field: <$check as Definition>::Settings,
            )*
        }

        /// Every check bound to its settings, in registration order.
        #[must_use]
        pub fn registry(settings: &CheckSettings) -> Vec<Registered<'_>> {
            vec![$(Registered::of::<$check>(&settings.$field)),*]
        }
    };
}

register! {
    kube_api: kubernetes::KubeApi,
    nodes_ready: kubernetes::NodesReady,
    coredns: kubernetes::CoreDns,
    cni: kubernetes::Cni,
    route53_zone: aws::Route53Zone,
    image_architecture: aws::ImageArchitecture,
    irsa_roles: aws::IrsaRoles,
    tier_gating: kubernetes::TierGating,
    sync_waves: kubernetes::SyncWaves,
    lower_tiers_healthy: kubernetes::LowerTiersHealthy,
    admission_webhooks: kubernetes::AdmissionWebhooks,
    crds: kubernetes::Crds,
    ingress_class: kubernetes::IngressClass,
    ingress_hosts: kubernetes::IngressHosts,
    cluster_secret_store: kubernetes::ClusterSecretStore,
    irsa: kubernetes::Irsa,
    external_dns_confined: kubernetes::ExternalDnsConfined,
    dns_scope: aws::DnsScope,
    storage_class: kubernetes::StorageClass,
    observability_crds: kubernetes::ObservabilityCrds,
    rds_instance: aws::RdsInstance,
    s3_bucket: aws::S3Bucket,
    secrets_manager: aws::SecretsManager,
    cluster_issuers: kubernetes::ClusterIssuers,
    external_secrets: kubernetes::ExternalSecretsSynced,
    postgres: postgres::PostgresLogin,
    keycloak_realm: http::KeycloakRealm,
}

/// The ids of every check, in registration order.
#[must_use]
pub fn ids() -> Vec<&'static str> {
    registry(&CheckSettings::default())
        .iter()
        .map(|r| r.id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A check's settings live under its id: the field the macro generates must serialize to
    /// the id its definition declares.
    #[test]
    fn settings_keys_are_the_check_ids() {
        let settings = CheckSettings::default();
        let doc = serde_json::to_value(&settings).expect("serializes");
        let keys: Vec<&str> = doc
            .as_object()
            .expect("a map")
            .keys()
            .map(String::as_str)
            .collect();
        let mut ids = ids();
        ids.sort_unstable();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, ids);
        let mut unique = ids.clone();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "ids are unique");
    }
}
