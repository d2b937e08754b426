//! Checks against the Kubernetes API, one file per check, named after its id. Each file holds
//! the check's definition and settings, the facts it reads, a pure `judge` function, and the
//! check that fetches the facts and calls it.

mod admission_webhooks;
mod app_of_apps;
mod cluster_issuers;
mod cluster_secret_store;
mod cni;
mod conditions;
mod coredns;
mod crds;
mod external_dns_confined;
mod external_secrets;
pub(crate) mod fetch;
mod ingress_class;
mod ingress_hosts;
mod irsa;
mod kube_api;
mod list_body;
mod lower_tiers_healthy;
mod nodes_ready;
mod observability_crds;
mod storage_class;
mod sync_waves;
mod tier_gating;

pub use admission_webhooks::{AdmissionWebhookSettings, AdmissionWebhooks};
pub use cluster_issuers::{ClusterIssuerSettings, ClusterIssuers};
pub use cluster_secret_store::{ClusterSecretStore, ClusterSecretStoreSettings};
pub use cni::{Cni, CniSettings};
pub use coredns::{CoreDns, CoreDnsSettings};
pub use crds::{CrdSettings, Crds, CrdsEstablished};
pub use external_dns_confined::{Confinement, ExternalDnsConfined, ExternalDnsConfinedSettings};
pub use external_secrets::{ExternalSecretSettings, ExternalSecretsSynced, SyncedSecret};
pub use ingress_class::{IngressClass, IngressClassSettings};
pub use ingress_hosts::{IngressHosts, IngressHostsSettings};
pub use irsa::{Irsa, IrsaSettings};
pub use kube_api::{KubeApi, KubeApiSettings};
pub use lower_tiers_healthy::{LowerTiersHealthy, LowerTiersSettings};
pub use nodes_ready::{NodesReady, NodesSettings};
pub use observability_crds::{ObservabilityCrdSettings, ObservabilityCrds};
pub use storage_class::{StorageClass, StorageClassSettings};
pub use sync_waves::{Band, SyncWaves, SyncWavesSettings};
pub use tier_gating::{Gate, TierGating, TierGatingSettings};
