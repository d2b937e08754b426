//! The check catalogue: every check preflight knows, with its tier and dependencies.

pub mod aws;
pub mod http;
pub mod kubernetes;
pub mod postgres;

use std::sync::Arc;

use crate::check::{Check, CheckMeta, Family};
use crate::config::Config;
use crate::contract::{Mode, Values};
use crate::tier::Tier;

/// A check with its place in the plan.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Identity, tier and dependencies.
    pub meta: CheckMeta,
    /// The check itself.
    pub check: Arc<dyn Check>,
}

/// Ids of the catalogue's checks, for dependencies and settings.
pub mod ids {
    /// API reachable, authenticated, supported version.
    pub const KUBE_API: &str = "kube-api";
    /// Enough Ready, schedulable nodes.
    pub const NODES_READY: &str = "nodes-ready";
    /// CoreDNS available.
    pub const COREDNS: &str = "coredns";
    /// CNI DaemonSet ready.
    pub const CNI: &str = "cni";
    /// Tier 1 CRDs established.
    pub const CRDS: &str = "crds";
    /// IngressClass present.
    pub const INGRESS_CLASS: &str = "ingress-class";
    /// ClusterSecretStore Ready.
    pub const CLUSTER_SECRET_STORE: &str = "cluster-secret-store";
    /// IRSA annotations present.
    pub const IRSA: &str = "irsa";
    /// Tier 1.5 CRDs established.
    pub const OBSERVABILITY_CRDS: &str = "observability-crds";
    /// A usable StorageClass.
    pub const STORAGE_CLASS: &str = "storage-class";
    /// Tier 2's ExternalSecrets synced.
    pub const EXTERNAL_SECRETS: &str = "external-secrets";
    /// Tier 2's app databases accept their logins over TLS.
    pub const POSTGRES: &str = "postgres";
    /// The RDS instance is available.
    pub const RDS_INSTANCE: &str = "rds-instance";
    /// cert-manager's ClusterIssuers Ready.
    pub const CLUSTER_ISSUERS: &str = "cluster-issuers";
    /// ArgoCD Applications labelled with a tier the cluster may run.
    pub const TIER_GATING: &str = "tier-gating";
    /// The base domain's hosted zone exists.
    pub const ROUTE53_ZONE: &str = "route53-zone";
    /// ExternalDNS's records stay inside this cluster's DNS scope.
    pub const DNS_SCOPE: &str = "dns-scope";
    /// Keycloak serves the platform's realm.
    pub const KEYCLOAK_REALM: &str = "keycloak-realm";
}

/// Whether a check's inputs come from Secrets, which ExternalSecrets write: then it depends on
/// the `external-secrets` check.
fn reads_synced_secrets(check: &dyn Check) -> bool {
    check.reads().kube.iter().any(|r| r.resource == "secrets")
}

/// Every check, in the order reports list them (by tier, then by what depends on what). The
/// contract supplies what the platform's conventions derive: hostnames, owner id, ceiling.
#[must_use]
pub fn catalogue(values: &Values, config: &Config) -> Vec<Entry> {
    use kubernetes as k;
    let s = &config.checks;
    let keycloak = http::KeycloakRealm::new(&s.keycloak_realm, &values.host_suffix.value);
    let entry = |id: &'static str,
                 tier: Tier,
                 title: String,
                 needs: &[&'static str],
                 check: Arc<dyn Check>| Entry {
        meta: CheckMeta {
            id,
            title,
            tier,
            family: match id {
                ids::POSTGRES => Family::Postgres,
                ids::RDS_INSTANCE | ids::ROUTE53_ZONE | ids::DNS_SCOPE => Family::Aws,
                ids::KEYCLOAK_REALM => Family::Http,
                _ => Family::Kubernetes,
            },
            needs: needs.to_vec(),
            required: !config.advisory.iter().any(|a| a == id),
            // Checks of other systems may still read a Secret for their inputs.
            uses_kubernetes: !matches!(
                id,
                ids::POSTGRES
                    | ids::RDS_INSTANCE
                    | ids::ROUTE53_ZONE
                    | ids::DNS_SCOPE
                    | ids::KEYCLOAK_REALM
            ) || !check.reads().kube.is_empty(),
        },
        check,
    };
    let mut all = vec![
        entry(
            ids::KUBE_API,
            Tier::Zero,
            format!(
                "Kubernetes API reachable, authenticated, version {} or later",
                s.kube_api.min_version
            ),
            &[],
            Arc::new(k::KubeApi::new(s.kube_api.clone())),
        ),
        entry(
            ids::NODES_READY,
            Tier::Zero,
            format!(
                "at least {} Ready, schedulable node(s)",
                s.nodes_ready.min_ready
            ),
            &[ids::KUBE_API],
            Arc::new(k::NodesReady::new(s.nodes_ready.clone())),
        ),
        entry(
            ids::COREDNS,
            Tier::Zero,
            format!("CoreDNS Deployment {} available", s.coredns.workload),
            &[ids::KUBE_API],
            Arc::new(k::CoreDns::new(s.coredns.clone())),
        ),
        entry(
            ids::CNI,
            Tier::Zero,
            format!("CNI DaemonSet {} ready", s.cni.workload),
            &[ids::KUBE_API],
            Arc::new(k::Cni::new(s.cni.clone())),
        ),
        entry(
            ids::CRDS,
            Tier::One,
            format!(
                "{} CRDs of External Secrets, ArgoCD and cert-manager established",
                s.crds.names.len()
            ),
            &[ids::KUBE_API],
            Arc::new(k::CrdsEstablished::new(s.crds.clone())),
        ),
        entry(
            ids::INGRESS_CLASS,
            Tier::One,
            format!("IngressClass {:?} exists", s.ingress_class.name),
            &[ids::KUBE_API],
            Arc::new(k::IngressClass::new(s.ingress_class.clone())),
        ),
        entry(
            ids::CLUSTER_SECRET_STORE,
            Tier::One,
            format!("ClusterSecretStore {:?} Ready", s.cluster_secret_store.name),
            &[ids::CRDS],
            Arc::new(k::ClusterSecretStore::new(s.cluster_secret_store.clone())),
        ),
        entry(
            ids::IRSA,
            Tier::One,
            format!(
                "{} ServiceAccount(s) carry {}",
                s.irsa.service_accounts.len(),
                k::ROLE_ARN_ANNOTATION
            ),
            &[ids::KUBE_API],
            Arc::new(k::Irsa::new(s.irsa.clone())),
        ),
        entry(
            ids::TIER_GATING,
            Tier::One,
            format!(
                "ArgoCD Applications in {} carry {} at or below the ceiling {}",
                s.tier_gating.namespace, s.tier_gating.label, values.ceiling.tier
            ),
            &[ids::KUBE_API],
            Arc::new(k::TierGating::new(
                s.tier_gating.clone(),
                k::Gate {
                    ceiling: values.ceiling.clone(),
                    mode: values.mode.value,
                },
            )),
        ),
        {
            let check = aws::Route53Zone::new(&s.route53_zone, &values.base_domain.value);
            entry(
                ids::ROUTE53_ZONE,
                Tier::One,
                format!(
                    "{} hosted zone {} exists",
                    if s.route53_zone.private {
                        "private"
                    } else {
                        "public"
                    },
                    check.domain()
                ),
                &[],
                Arc::new(check),
            )
        },
        entry(
            ids::DNS_SCOPE,
            Tier::One,
            match values.mode.value {
                Mode::Ephemeral => format!(
                    "ExternalDNS records owned by {} lie under {}",
                    values.owner_id.value, values.host_suffix.value
                ),
                Mode::Persistent => format!(
                    "ExternalDNS records owned by {} stay out of build subdomains",
                    values.owner_id.value
                ),
            },
            &[ids::ROUTE53_ZONE],
            Arc::new(aws::DnsScope::new(aws::Scope {
                mode: values.mode.value,
                owner_id: values.owner_id.value.clone(),
                host_suffix: values.host_suffix.value.clone(),
                env_zone: format!("{}.{}", values.env.value, values.base_domain.value),
                base_domain: s
                    .route53_zone
                    .domain
                    .clone()
                    .unwrap_or_else(|| values.base_domain.value.clone()),
                private: s.route53_zone.private,
            })),
        ),
        entry(
            ids::OBSERVABILITY_CRDS,
            Tier::OneAndHalf,
            format!(
                "{} Prometheus operator CRDs established",
                s.observability_crds.names.len()
            ),
            &[ids::KUBE_API],
            Arc::new(k::CrdsEstablished::new(s.observability_crds.clone())),
        ),
        entry(
            ids::STORAGE_CLASS,
            Tier::OneAndHalf,
            match &s.storage_class.name {
                Some(n) => format!("StorageClass {n:?} exists"),
                None => "exactly one default StorageClass".to_owned(),
            },
            &[ids::KUBE_API],
            Arc::new(k::StorageClass::new(s.storage_class.clone())),
        ),
        entry(
            ids::EXTERNAL_SECRETS,
            Tier::Two,
            format!(
                "{} ExternalSecret(s) synced with the keys their apps read",
                s.external_secrets.secrets.len()
            ),
            &[ids::CLUSTER_SECRET_STORE],
            Arc::new(k::ExternalSecretsSynced::new(s.external_secrets.clone())),
        ),
        {
            let check = postgres::PostgresLogin::new(s.postgres.clone());
            let needs: &[&'static str] = if reads_synced_secrets(&check) {
                &[ids::EXTERNAL_SECRETS]
            } else {
                &[]
            };
            let apps: Vec<&str> = s
                .postgres
                .databases
                .iter()
                .map(|d| d.app.as_str())
                .collect();
            entry(
                ids::POSTGRES,
                Tier::Two,
                format!(
                    "PostgreSQL login over TLS with the app's own credentials ({})",
                    apps.join(", ")
                ),
                needs,
                Arc::new(check),
            )
        },
        {
            let check = aws::RdsInstance::new(s.rds_instance.clone());
            let needs: &[&'static str] = if reads_synced_secrets(&check) {
                &[ids::EXTERNAL_SECRETS]
            } else {
                &[]
            };
            entry(
                ids::RDS_INSTANCE,
                Tier::Two,
                format!(
                    "RDS instance {} available, PostgreSQL, endpoint as the app's Secret says",
                    s.rds_instance.identifier
                ),
                needs,
                Arc::new(check),
            )
        },
        entry(
            ids::CLUSTER_ISSUERS,
            s.cluster_issuers.tier,
            format!(
                "ClusterIssuers {} Ready",
                s.cluster_issuers.names.join(", ")
            ),
            &[ids::KUBE_API],
            Arc::new(k::ClusterIssuers::new(s.cluster_issuers.clone())),
        ),
        entry(
            ids::KEYCLOAK_REALM,
            Tier::Three,
            format!(
                "Keycloak at {} serves realm {} with a signing key",
                keycloak.url(),
                s.keycloak_realm.realm
            ),
            &[],
            Arc::new(keycloak),
        ),
    ];
    // A configured tier (cluster-issuers) moves a check; reports still list by tier.
    all.sort_by_key(|e| e.meta.tier);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values {
        crate::contract::ValuesLayer::from_yaml(
            "bootstrap: {mode: persistent, env: dev}\n",
            crate::contract::Origin::File("values.yaml".into()),
        )
        .and_then(crate::contract::ValuesLayer::validate)
        .expect("valid")
    }

    #[test]
    fn each_check_names_the_system_it_talks_to() {
        let config = Config::default();
        let families: Vec<(&str, Family, bool)> = catalogue(&values(), &config)
            .iter()
            .map(|e| (e.meta.id, e.meta.family, e.meta.uses_kubernetes))
            .collect();
        assert!(
            families.contains(&(ids::POSTGRES, Family::Postgres, true)),
            "reads its Secret: {families:?}"
        );
        assert!(families.contains(&(ids::RDS_INSTANCE, Family::Aws, true)));
        assert!(families.contains(&(ids::NODES_READY, Family::Kubernetes, true)));
        assert!(families.contains(&(ids::DNS_SCOPE, Family::Aws, false)));
        assert!(families.contains(&(ids::KEYCLOAK_REALM, Family::Http, false)));
        let mut direct = Config::default();
        direct.checks.postgres.databases[0].secret = None;
        direct.checks.postgres.databases.truncate(1);
        direct.checks.rds_instance.host_secret = None;
        direct.checks.keycloak_realm.client_credentials = None;
        for e in catalogue(&values(), &direct)
            .iter()
            .filter(|e| e.meta.family != Family::Kubernetes)
        {
            assert!(
                !e.meta.uses_kubernetes && e.meta.needs.iter().all(|n| *n == ids::ROUTE53_ZONE),
                "{}: no Secret, no cluster",
                e.meta.id
            );
        }
    }
}

#[cfg(test)]
mod order_tests {
    use super::*;

    #[test]
    fn lists_by_tier_even_when_a_tier_is_configured() {
        let values = crate::contract::ValuesLayer::from_yaml(
            "bootstrap: {mode: persistent, env: dev}\n",
            crate::contract::Origin::File("values.yaml".into()),
        )
        .and_then(crate::contract::ValuesLayer::validate)
        .expect("valid");
        let mut config = Config::default();
        config.checks.cluster_issuers.tier = Tier::One;
        let all = catalogue(&values, &config);
        let tiers: Vec<Tier> = all.iter().map(|e| e.meta.tier).collect();
        assert!(tiers.is_sorted(), "{tiers:?}");
        let issuers = all.iter().position(|e| e.meta.id == ids::CLUSTER_ISSUERS);
        let first_of_1_5 = all.iter().position(|e| e.meta.tier == Tier::OneAndHalf);
        assert!(issuers < first_of_1_5);
        let ids: Vec<&str> = all.iter().map(|e| e.meta.id).collect();
        let mut unique = ids.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "ids are unique: {ids:?}");
    }
}
