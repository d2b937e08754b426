//! The bootstrap ConfigMap: Terraform writes the contract into the cluster, and preflight
//! reads it as one layer of values.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use serde::Serialize;

use super::source::Origin;
use super::values::{ValuesError, ValuesLayer};

/// Where the bootstrap values live in the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ValuesConfigMap {
    /// The ConfigMap's namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The data key holding the values document.
    pub key: String,
}

impl Default for ValuesConfigMap {
    fn default() -> Self {
        ValuesConfigMap {
            namespace: "kube-system".into(),
            name: "goldenpath-bootstrap".into(),
            key: "values.yaml".into(),
        }
    }
}

/// Why the ConfigMap could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigMapError {
    /// The API refused or failed the read (forbidden, unreachable…).
    #[error("cannot read ConfigMap {object}")]
    Read {
        /// `namespace/name`.
        object: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The ConfigMap exists but lacks the key.
    #[error("ConfigMap {object} has no key {key:?} (keys: {keys})")]
    MissingKey {
        /// `namespace/name`.
        object: String,
        /// The expected key.
        key: String,
        /// The keys it has.
        keys: String,
    },
    /// The document under the key is not a valid values document.
    #[error(transparent)]
    Invalid(#[from] ValuesError),
}

impl ValuesConfigMap {
    /// `namespace/name`.
    #[must_use]
    pub fn object(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Reads the layer; `Ok(None)` when the ConfigMap does not exist (a cluster that was not
    /// bootstrapped by Terraform, or a local run against another cluster).
    pub async fn read(&self, client: &kube::Client) -> Result<Option<ValuesLayer>, ConfigMapError> {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &self.namespace);
        let found = api
            .get_opt(&self.name)
            .await
            .map_err(|source| ConfigMapError::Read {
                object: self.object(),
                source,
            })?;
        let Some(cm) = found else { return Ok(None) };
        let data: BTreeMap<String, String> = cm.data.unwrap_or_default();
        let Some(text) = data.get(&self.key) else {
            return Err(ConfigMapError::MissingKey {
                object: self.object(),
                key: self.key.clone(),
                keys: data.keys().cloned().collect::<Vec<_>>().join(", "),
            });
        };
        let origin = Origin::ConfigMap {
            object: self.object(),
            key: self.key.clone(),
        };
        Ok(Some(ValuesLayer::from_yaml(text, origin)?))
    }
}
