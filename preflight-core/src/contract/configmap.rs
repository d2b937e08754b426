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

/// A `NAMESPACE/NAME[:KEY]` that names no ConfigMap key the API could hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidConfigMapRef {
    /// No `/` between a namespace and a name.
    #[error(
        "{0:?} is not NAMESPACE/NAME[:KEY] (e.g. kube-system/goldenpath-bootstrap:values.yaml)"
    )]
    Shape(String),
    /// The part before the `/` cannot be a namespace.
    #[error(
        "namespace {0:?} is not a namespace name (lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)"
    )]
    Namespace(String),
    /// The part after the `/` cannot be a ConfigMap's name.
    #[error(
        "name {0:?} is not a ConfigMap name (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters)"
    )]
    Name(String),
    /// The part after the `:` cannot be a key of a ConfigMap's data.
    #[error(
        "key {0:?} is not a ConfigMap key (letters, digits, '-', '_' and '.', at most 253 characters, not '.' or '..')"
    )]
    Key(String),
}

/// RFC 1123 labels as Kubernetes checks names: lowercase alphanumerics and `-` (and `.` between
/// labels when `dots`), starting and ending with an alphanumeric.
fn is_rfc1123(text: &str, max: usize, dots: bool) -> bool {
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !text.is_empty()
        && text.len() <= max
        && (dots || !text.contains('.'))
        && text.split('.').all(|label| {
            let bytes = label.as_bytes();
            bytes.first().copied().is_some_and(edge)
                && bytes.last().copied().is_some_and(edge)
                && bytes.iter().all(|&b| edge(b) || b == b'-')
        })
}

/// A key of a ConfigMap's data, as Kubernetes accepts it.
fn is_configmap_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key != "."
        && !key.starts_with("..")
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl std::str::FromStr for ValuesConfigMap {
    type Err = InvalidConfigMapRef;

    /// `NAMESPACE/NAME[:KEY]`, the key `values.yaml` when absent.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let (object, key) = spec.split_once(':').unwrap_or((spec, "values.yaml"));
        let Some((namespace, name)) = object.split_once('/') else {
            return Err(InvalidConfigMapRef::Shape(spec.to_owned()));
        };
        if !is_rfc1123(namespace, 63, false) {
            return Err(InvalidConfigMapRef::Namespace(namespace.to_owned()));
        }
        if !is_rfc1123(name, 253, true) {
            return Err(InvalidConfigMapRef::Name(name.to_owned()));
        }
        if !is_configmap_key(key) {
            return Err(InvalidConfigMapRef::Key(key.to_owned()));
        }
        Ok(ValuesConfigMap {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            key: key.to_owned(),
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_namespace_name_and_key_and_says_which_part_is_wrong() {
        let parsed = |s: &str| s.parse::<ValuesConfigMap>();
        assert_eq!(
            parsed("kube-system/goldenpath-bootstrap"),
            Ok(ValuesConfigMap::default())
        );
        assert_eq!(
            parsed("platform/boot.strap:bootstrap_values.YAML").map(|c| (c.object(), c.key)),
            Ok(("platform/boot.strap".into(), "bootstrap_values.YAML".into()))
        );
        for (spec, wrong) in [
            (
                "goldenpath-bootstrap",
                InvalidConfigMapRef::Shape("goldenpath-bootstrap".into()),
            ),
            ("", InvalidConfigMapRef::Shape(String::new())),
            ("/name", InvalidConfigMapRef::Namespace(String::new())),
            (
                "Kube-System/name",
                InvalidConfigMapRef::Namespace("Kube-System".into()),
            ),
            ("a.b/name", InvalidConfigMapRef::Namespace("a.b".into())),
            ("ns/", InvalidConfigMapRef::Name(String::new())),
            ("ns/a/b", InvalidConfigMapRef::Name("a/b".into())),
            ("ns/-name", InvalidConfigMapRef::Name("-name".into())),
            ("ns/name.", InvalidConfigMapRef::Name("name.".into())),
            ("ns/name:", InvalidConfigMapRef::Key(String::new())),
            ("ns/name:a b", InvalidConfigMapRef::Key("a b".into())),
            ("ns/name:..", InvalidConfigMapRef::Key("..".into())),
            ("ns/name:a:b", InvalidConfigMapRef::Key("a:b".into())),
        ] {
            assert_eq!(parsed(spec), Err(wrong), "{spec:?}");
        }
        let long = "a".repeat(64);
        assert_eq!(
            parsed(&format!("{long}/name")),
            Err(InvalidConfigMapRef::Namespace(long))
        );
    }
}
