//! Checks against the Kubernetes API, one file per check. Each file holds the facts it reads,
//! a pure `judge` function, and the check that fetches the facts and calls it.

mod api;
mod cluster_issuers;
mod conditions;
mod crds;
mod external_secrets;
pub(crate) mod fetch;
mod ingress_class;
mod irsa;
mod nodes;
mod secret_store;
mod storage_class;
mod tier_gating;
mod workloads;

pub use api::KubeApi;
pub use cluster_issuers::ClusterIssuers;
pub use crds::CrdsEstablished;
pub use external_secrets::ExternalSecretsSynced;
pub use ingress_class::IngressClass;
pub use irsa::{Irsa, ROLE_ARN_ANNOTATION};
pub use nodes::NodesReady;
pub use secret_store::ClusterSecretStore;
pub use storage_class::StorageClass;
pub use tier_gating::{Gate, TierGating};
pub use workloads::{Cni, CoreDns};
