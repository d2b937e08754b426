//! The API server's state: the resource types it serves (built-ins, plus whatever the applied
//! CustomResourceDefinitions declare), the objects, and the history of changes that watches
//! replay from a resource version.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// A resource type, as discovery describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResourceDef {
    pub group: String,
    /// Served versions, preferred (storage) first.
    pub versions: Vec<String>,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub verbs: Vec<&'static str>,
    pub short_names: Vec<&'static str>,
    /// Whether a `/status` subresource exists (it is listed in discovery, as real servers do).
    pub status: bool,
}

const READ_WRITE: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn builtin(
    group: &str,
    version: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    short: &[&'static str],
    status: bool,
) -> ResourceDef {
    ResourceDef {
        group: group.into(),
        versions: vec![version.into()],
        plural: plural.into(),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        namespaced,
        verbs: READ_WRITE.to_vec(),
        short_names: short.to_vec(),
        status,
    }
}

fn builtins() -> Vec<ResourceDef> {
    let mut review = builtin(
        "authentication.k8s.io",
        "v1",
        "selfsubjectreviews",
        "SelfSubjectReview",
        false,
        &[],
        false,
    );
    review.verbs = vec!["create"];
    vec![
        builtin("", "v1", "nodes", "Node", false, &["no"], true),
        builtin("", "v1", "namespaces", "Namespace", false, &["ns"], true),
        builtin("", "v1", "configmaps", "ConfigMap", true, &["cm"], false),
        builtin("", "v1", "secrets", "Secret", true, &[], false),
        builtin(
            "",
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            true,
            &["sa"],
            false,
        ),
        builtin(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            true,
            &["deploy"],
            true,
        ),
        builtin("apps", "v1", "daemonsets", "DaemonSet", true, &["ds"], true),
        builtin(
            "storage.k8s.io",
            "v1",
            "storageclasses",
            "StorageClass",
            false,
            &["sc"],
            false,
        ),
        builtin(
            "networking.k8s.io",
            "v1",
            "ingressclasses",
            "IngressClass",
            false,
            &[],
            false,
        ),
        builtin(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            &["crd", "crds"],
            true,
        ),
        review,
    ]
}

/// The resource types a CRD declares: one per served version set.
fn crd_def(crd: &Value) -> anyhow::Result<ResourceDef> {
    let spec = &crd["spec"];
    let text = |v: &Value, what: &str| {
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("CRD has no {what}"))
    };
    let versions: Vec<String> = spec["versions"]
        .as_array()
        .context("CRD has no spec.versions")?
        .iter()
        .filter(|v| v["served"].as_bool().unwrap_or(false))
        .filter_map(|v| v["name"].as_str().map(str::to_owned))
        .collect();
    let kind = text(&spec["names"]["kind"], "spec.names.kind")?;
    Ok(ResourceDef {
        group: text(&spec["group"], "spec.group")?,
        versions,
        plural: text(&spec["names"]["plural"], "spec.names.plural")?,
        singular: spec["names"]["singular"]
            .as_str()
            .map_or_else(|| kind.to_lowercase(), str::to_owned),
        kind,
        namespaced: spec["scope"].as_str() != Some("Cluster"),
        verbs: READ_WRITE.to_vec(),
        short_names: Vec::new(),
        status: true,
    })
}

/// An object and its JSON, serialised once at write time so that large lists are assembled by
/// concatenation.
#[derive(Debug)]
pub(crate) struct Stored {
    pub value: Value,
    pub json: Bytes,
}

/// The identity of an object: resource type (group, plural), namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ObjKey {
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub name: String,
}

/// One change, as watches deliver it.
#[derive(Debug)]
pub(crate) struct Change {
    pub rv: u64,
    pub kind: &'static str,
    pub key: ObjKey,
    pub object: Arc<Stored>,
}

/// How many changes a watch can be resumed from; older resource versions get 410 Gone.
const HISTORY: usize = 20_000;

/// The objects of one resource type by (namespace, name); cluster-scoped ones have an empty
/// namespace.
type Bucket = BTreeMap<(String, String), Arc<Stored>>;

/// Everything, behind one lock (never held across an await).
pub(crate) struct State {
    defs: Vec<ResourceDef>,
    objects: BTreeMap<(String, String), Bucket>,
    history: VecDeque<Arc<Change>>,
    rv: u64,
    uid: u64,
    changes: broadcast::Sender<Arc<Change>>,
}

impl State {
    pub(crate) fn new() -> Self {
        State {
            defs: builtins(),
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            rv: 1000,
            uid: 0,
            changes: broadcast::channel(4096).0,
        }
    }

    pub(crate) fn resource_version(&self) -> u64 {
        self.rv
    }

    /// Every served resource type.
    pub(crate) fn defs(&self) -> &[ResourceDef] {
        &self.defs
    }

    /// The type served at `/apis/{group}/{version}/{plural}` (or `/api/v1/{plural}`).
    pub(crate) fn def(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceDef> {
        self.defs.iter().find(|d| {
            d.group == group && d.plural == plural && d.versions.iter().any(|v| v == version)
        })
    }

    /// Whether any resource is served at this group/version.
    pub(crate) fn serves(&self, group: &str, version: &str) -> bool {
        self.defs
            .iter()
            .any(|d| d.group == group && d.versions.iter().any(|v| v == version))
    }

    fn def_for_kind(&self, api_version: &str, kind: &str) -> anyhow::Result<ResourceDef> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        self.defs
            .iter()
            .find(|d| d.group == group && d.kind == kind && d.versions.iter().any(|v| v == version))
            .cloned()
            .ok_or_else(|| anyhow!("the server does not serve {kind} in {api_version}: apply its CustomResourceDefinition first"))
    }

    fn key(def: &ResourceDef, namespace: Option<&str>, name: &str) -> anyhow::Result<ObjKey> {
        let namespace = match (def.namespaced, namespace) {
            (true, Some(ns)) if !ns.is_empty() => ns.to_owned(),
            (true, _) => bail!("{} {name} needs a namespace", def.kind),
            (false, _) => String::new(),
        };
        Ok(ObjKey {
            group: def.group.clone(),
            plural: def.plural.clone(),
            namespace,
            name: name.to_owned(),
        })
    }

    /// Records a change: bumps the resource version, keeps history, tells the watches.
    fn record(&mut self, kind: &'static str, key: ObjKey, object: Arc<Stored>) {
        let change = Arc::new(Change {
            rv: self.rv,
            kind,
            key,
            object,
        });
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(change.clone());
        // No receivers is fine: nobody is watching.
        let _ = self.changes.send(change);
    }

    /// Creates or replaces an object, as `kubectl apply` would, keeping its uid and creation
    /// time across updates.
    pub(crate) fn apply(&mut self, mut obj: Value) -> anyhow::Result<()> {
        let api_version = obj["apiVersion"]
            .as_str()
            .context("object has no apiVersion")?
            .to_owned();
        let kind = obj["kind"]
            .as_str()
            .context("object has no kind")?
            .to_owned();
        let def = self.def_for_kind(&api_version, &kind)?;
        let name = obj["metadata"]["name"]
            .as_str()
            .context("object has no metadata.name")?
            .to_owned();
        let namespace = obj["metadata"]["namespace"].as_str().map(str::to_owned);
        let key = Self::key(&def, namespace.as_deref(), &name)?;
        let bucket = self
            .objects
            .entry((key.group.clone(), key.plural.clone()))
            .or_default();
        let previous = bucket
            .get(&(key.namespace.clone(), key.name.clone()))
            .cloned();

        self.rv += 1;
        let meta = obj["metadata"]
            .as_object_mut()
            .context("metadata is not an object")?;
        meta.insert("resourceVersion".into(), json!(self.rv.to_string()));
        match &previous {
            Some(p) => {
                meta.insert("uid".into(), p.value["metadata"]["uid"].clone());
                meta.insert(
                    "creationTimestamp".into(),
                    p.value["metadata"]["creationTimestamp"].clone(),
                );
            }
            None => {
                self.uid += 1;
                meta.entry("uid")
                    .or_insert_with(|| json!(format!("00000000-0000-4000-8000-{:012x}", self.uid)));
                meta.entry("creationTimestamp")
                    .or_insert_with(|| json!("2026-01-02T20:02:19Z"));
            }
        }
        let json = Bytes::from(serde_json::to_vec(&obj)?);
        let stored = Arc::new(Stored { value: obj, json });
        bucket.insert((key.namespace.clone(), key.name.clone()), stored.clone());

        if def.group == "apiextensions.k8s.io" && def.plural == "customresourcedefinitions" {
            let served = crd_def(&stored.value)?;
            self.defs
                .retain(|d| !(d.group == served.group && d.plural == served.plural));
            self.defs.push(served);
        }
        self.record(
            if previous.is_some() {
                "MODIFIED"
            } else {
                "ADDED"
            },
            key,
            stored,
        );
        Ok(())
    }

    pub(crate) fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let def = self.def_for_kind(api_version, kind).ok()?;
        let key = Self::key(&def, namespace, name).ok()?;
        self.object(&key).map(|s| s.value.clone())
    }

    pub(crate) fn object(&self, key: &ObjKey) -> Option<Arc<Stored>> {
        self.objects
            .get(&(key.group.clone(), key.plural.clone()))?
            .get(&(key.namespace.clone(), key.name.clone()))
            .cloned()
    }

    pub(crate) fn delete(
        &mut self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> anyhow::Result<()> {
        let def = self.def_for_kind(api_version, kind)?;
        let key = Self::key(&def, namespace, name)?;
        let removed = self
            .objects
            .get_mut(&(key.group.clone(), key.plural.clone()))
            .and_then(|b| b.remove(&(key.namespace.clone(), key.name.clone())))
            .with_context(|| format!("{kind} {name} does not exist"))?;
        self.rv += 1;
        let mut value = removed.value.clone();
        value["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        if let (true, Ok(served)) = (
            def.plural == "customresourcedefinitions",
            crd_def(&removed.value),
        ) {
            self.defs
                .retain(|d| !(d.group == served.group && d.plural == served.plural));
        }
        let json = Bytes::from(serde_json::to_vec(&value)?);
        self.record("DELETED", key, Arc::new(Stored { value, json }));
        Ok(())
    }

    /// The objects of a type, in a namespace or all, in (namespace, name) order, starting
    /// after `after`.
    pub(crate) fn list<'a>(
        &'a self,
        def: &ResourceDef,
        namespace: Option<&'a str>,
        after: Option<(String, String)>,
    ) -> impl Iterator<Item = (&'a (String, String), &'a Arc<Stored>)> + 'a {
        let bucket = self.objects.get(&(def.group.clone(), def.plural.clone()));
        let range = bucket.into_iter().flat_map(move |b| {
            let start = match &after {
                Some(k) => std::ops::Bound::Excluded(k.clone()),
                None => std::ops::Bound::Unbounded,
            };
            b.range((start, std::ops::Bound::Unbounded))
        });
        range.filter(move |((ns, _), _)| namespace.is_none_or(|n| n == ns))
    }

    /// A receiver of future changes and the retained changes after `rv`, taken together under
    /// the lock so that nothing falls between them. `None` when `rv` is older than the history.
    pub(crate) fn watch_from(
        &self,
        rv: u64,
    ) -> (broadcast::Receiver<Arc<Change>>, Option<Vec<Arc<Change>>>) {
        let receiver = self.changes.subscribe();
        let oldest = self.history.front().map_or(self.rv, |c| c.rv);
        if rv + 1 < oldest && rv < self.rv {
            return (receiver, None);
        }
        let replay = self.history.iter().filter(|c| c.rv > rv).cloned().collect();
        (receiver, Some(replay))
    }

    /// A receiver of future changes, for a watch that starts with the current objects.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.changes.subscribe()
    }
}
