//! The API server's state: the served resource types, the objects, and the history of changes
//! from which watches resume and paged lists stay consistent.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::immutable;
use crate::registry::{ResourceDef, builtins, crd_def, is_builtin};

/// An object and its JSON, serialised once at write time so that large lists are assembled by
/// concatenation.
#[derive(Debug)]
pub(crate) struct Stored {
    /// The object.
    pub(crate) value: Value,
    /// `value` as compact JSON.
    pub(crate) json: Bytes,
}

impl Stored {
    fn new(value: Value) -> anyhow::Result<Arc<Stored>> {
        let json = Bytes::from(serde_json::to_vec(&value)?);
        Ok(Arc::new(Stored { value, json }))
    }

    /// The JSON as served at `api_version`: the stored bytes, unless the request is for
    /// another of a custom resource's served versions (the fake converts by relabelling).
    pub(crate) fn json_at(&self, api_version: &str) -> Bytes {
        if self.value["apiVersion"].as_str() == Some(api_version) {
            return self.json.clone();
        }
        let mut v = self.value.clone();
        v["apiVersion"] = json!(api_version);
        Bytes::from(v.to_string())
    }
}

/// A resource type's storage key: (group, plural).
type TypeKey = (String, String);

/// An object's key within its type: (namespace, name); cluster-scoped objects have an empty
/// namespace. Sorting by it gives list order.
pub(crate) type NameKey = (String, String);

/// The identity of an object: its type and its namespace and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ObjKey {
    /// Storage type.
    pub(crate) ty: TypeKey,
    /// Namespace and name.
    pub(crate) name: NameKey,
}

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventType {
    /// Created.
    Added,
    /// Replaced.
    Modified,
    /// Removed.
    Deleted,
}

impl EventType {
    /// The watch event's `type`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, kept in the history.
#[derive(Debug)]
pub(crate) struct Change {
    /// The resource version the change made.
    pub(crate) rv: u64,
    /// Added, modified or deleted.
    pub(crate) event: EventType,
    /// Which object.
    pub(crate) key: ObjKey,
    /// The object after the change (for a deletion: its last state, at the deletion's version).
    pub(crate) object: Arc<Stored>,
    /// The object before the change; `None` for an addition. Lets a list page be served as of
    /// an older version, and a selector watch turn updates into ADDED/DELETED.
    pub(crate) previous: Option<Arc<Stored>>,
}

/// How many changes are kept: watches can resume from, and paged lists stay consistent over,
/// at least this many changes; older resource versions get 410 Gone / Expired.
const HISTORY: usize = 20_000;

/// The resource version a new server starts at (real clusters never start at 1).
const FIRST_RV: u64 = 1000;

/// The request's resource version is older than the retained history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Expired {
    /// The oldest version that can still be served.
    pub(crate) oldest: u64,
}

/// One page of a list.
#[derive(Debug, Default)]
pub(crate) struct Page {
    /// The matching objects, in (namespace, name) order.
    pub(crate) items: Vec<Arc<Stored>>,
    /// The key of the last item, when more items follow.
    pub(crate) continue_after: Option<NameKey>,
    /// How many matching items follow this page.
    pub(crate) remaining: usize,
}

/// Everything, behind one lock (never held across an await).
pub(crate) struct State {
    defs: Vec<ResourceDef>,
    objects: BTreeMap<TypeKey, BTreeMap<NameKey, Arc<Stored>>>,
    history: VecDeque<Arc<Change>>,
    /// Any version at or after this one can be resumed from (every later change is in
    /// `history`).
    oldest: u64,
    rv: u64,
    uid: u64,
    /// The latest resource version; watches wake on it and read `history` themselves, so a
    /// slow watcher never holds up a writer and never misses a change.
    latest: watch::Sender<u64>,
}

impl State {
    pub(crate) fn new() -> Self {
        State {
            defs: builtins(),
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            oldest: FIRST_RV,
            rv: FIRST_RV,
            uid: 0,
            latest: watch::Sender::new(FIRST_RV),
        }
    }

    /// The current resource version.
    pub(crate) fn resource_version(&self) -> u64 {
        self.rv
    }

    /// Every served resource type.
    pub(crate) fn defs(&self) -> &[ResourceDef] {
        &self.defs
    }

    /// The type served at `/apis/{group}/{version}/{plural}` (or `/api/{version}/{plural}`).
    pub(crate) fn def(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceDef> {
        self.defs
            .iter()
            .find(|d| d.group == group && d.plural == plural && d.serves(version))
    }

    fn def_for_kind(&self, api_version: &str, kind: &str) -> anyhow::Result<&ResourceDef> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        self.defs
            .iter()
            .find(|d| d.group == group && d.kind == kind && d.serves(version))
            .ok_or_else(|| {
                anyhow!(
                    "the server does not serve {kind} in {api_version}: apply its CustomResourceDefinition first"
                )
            })
    }

    /// The key of an object of type `def`; a namespaced type needs a namespace.
    pub(crate) fn key(
        def: &ResourceDef,
        namespace: Option<&str>,
        name: &str,
    ) -> anyhow::Result<ObjKey> {
        let namespace = match (def.namespaced, namespace) {
            (true, Some(ns)) if !ns.is_empty() => ns.to_owned(),
            (true, _) => bail!("{} {name:?} is namespaced: give its namespace", def.kind),
            (false, _) => String::new(),
        };
        Ok(ObjKey {
            ty: (def.group.clone(), def.plural.clone()),
            name: (namespace, name.to_owned()),
        })
    }

    /// A receiver that changes whenever the resource version does.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.latest.subscribe()
    }

    /// Records a change: keeps it in the history and wakes the watches.
    fn record(
        &mut self,
        event: EventType,
        key: ObjKey,
        object: Arc<Stored>,
        previous: Option<Arc<Stored>>,
    ) {
        if self.history.len() == HISTORY
            && let Some(evicted) = self.history.pop_front()
        {
            self.oldest = evicted.rv;
        }
        self.history.push_back(Arc::new(Change {
            rv: self.rv,
            event,
            key,
            object,
            previous,
        }));
        self.latest.send_replace(self.rv);
    }

    /// Creates or replaces an object, as `kubectl apply` would: the server sets its resource
    /// version, and keeps its uid and creation time across updates. A namespaced object
    /// without a namespace goes to `default`; a cluster-scoped one loses any namespace.
    pub(crate) fn apply(&mut self, mut obj: Value) -> anyhow::Result<()> {
        let text = |obj: &Value, field: &str| {
            obj.pointer(field)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .with_context(|| format!("the object has no {}", &field[1..].replace('/', ".")))
        };
        let api_version = text(&obj, "/apiVersion")?;
        let kind = text(&obj, "/kind")?;
        let name = text(&obj, "/metadata/name")?;
        let def = self.def_for_kind(&api_version, &kind)?.clone();
        if def.plural == "selfsubjectreviews" {
            bail!("SelfSubjectReviews are not stored: the server answers them");
        }
        let meta = obj["metadata"]
            .as_object_mut()
            .context("metadata is not an object")?;
        if def.namespaced {
            meta.entry("namespace")
                .and_modify(|ns| {
                    if ns.as_str().is_none_or(str::is_empty) {
                        *ns = json!("default");
                    }
                })
                .or_insert_with(|| json!("default"));
        } else {
            meta.remove("namespace");
        }
        let namespace = meta
            .get("namespace")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let key = Self::key(&def, namespace.as_deref(), &name)?;
        let previous = self.object(&key);
        // Validate before anything changes.
        if let Some(p) = &previous {
            immutable::check_update(&def, &p.value, &obj)?;
        }
        let declared = if def.is_crd() {
            let declared = crd_def(&obj)?;
            if is_builtin(&crd_type(&obj)) {
                bail!("{name} would replace a built-in resource");
            }
            establish(&mut obj, previous.as_deref().map(|p| &p.value));
            Some(declared)
        } else {
            None
        };

        self.rv += 1;
        let meta = obj["metadata"]
            .as_object_mut()
            .context("metadata is not an object")?;
        meta.insert("resourceVersion".into(), json!(self.rv.to_string()));
        match &previous {
            Some(p) => {
                for field in ["uid", "creationTimestamp"] {
                    meta.insert(field.into(), p.value["metadata"][field].clone());
                }
            }
            None => {
                self.uid += 1;
                meta.entry("uid")
                    .or_insert_with(|| json!(format!("00000000-0000-4000-8000-{:012x}", self.uid)));
                meta.entry("creationTimestamp")
                    .or_insert_with(|| json!(now_rfc3339()));
            }
        }
        let stored = Stored::new(obj)?;
        self.objects
            .entry(key.ty.clone())
            .or_default()
            .insert(key.name.clone(), stored.clone());
        if let Some(declared) = declared {
            self.serve_crd(&stored.value, declared);
        }
        let event = if previous.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(event, key, stored, previous);
        Ok(())
    }

    /// Serves what a CRD declares, in place of what an earlier version of it declared.
    fn serve_crd(&mut self, crd: &Value, declared: Option<ResourceDef>) {
        let ty = crd_type(crd);
        if !is_builtin(&ty) {
            self.defs
                .retain(|d| (&d.group, &d.plural) != (&ty.0, &ty.1));
            self.defs.extend(declared);
        }
    }

    /// The stored object, if any.
    pub(crate) fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let def = self.def_for_kind(api_version, kind).ok()?;
        let key = Self::key(def, namespace, name).ok()?;
        self.object(&key).map(|s| s.value.clone())
    }

    /// The stored object, if any.
    pub(crate) fn object(&self, key: &ObjKey) -> Option<Arc<Stored>> {
        self.objects.get(&key.ty)?.get(&key.name).cloned()
    }

    /// Deletes an object. Deleting a CRD deletes its custom resources too (watchers see each
    /// one go) and stops serving them, as on a real cluster.
    pub(crate) fn delete(
        &mut self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> anyhow::Result<()> {
        let def = self.def_for_kind(api_version, kind)?.clone();
        let key = Self::key(&def, namespace, name)?;
        let removed = self
            .objects
            .get_mut(&key.ty)
            .and_then(|b| b.remove(&key.name))
            .with_context(|| format!("{} {name:?} does not exist", def.kind))?;
        if def.is_crd() {
            let ty = crd_type(&removed.value);
            for (name, object) in self.objects.remove(&ty).unwrap_or_default() {
                self.record_deletion(
                    ObjKey {
                        ty: ty.clone(),
                        name,
                    },
                    &object,
                )?;
            }
            self.serve_crd(&removed.value, None);
        }
        self.record_deletion(key, &removed)
    }

    fn record_deletion(&mut self, key: ObjKey, removed: &Arc<Stored>) -> anyhow::Result<()> {
        self.rv += 1;
        let mut last = removed.value.clone();
        last["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.record(
            EventType::Deleted,
            key,
            Stored::new(last)?,
            Some(removed.clone()),
        );
        Ok(())
    }

    /// One page of a type's objects, in (namespace, name) order after `after`, that are in
    /// `namespace` (all if `None`) and pass `filter`; at most `limit` of them.
    ///
    /// `at` serves the page as the objects were at that resource version (the version of a
    /// list's first page, so that its pages add up to one consistent list even while objects
    /// change); `None` serves them as they are now.
    pub(crate) fn list(
        &self,
        def: &ResourceDef,
        namespace: Option<&str>,
        after: Option<&NameKey>,
        at: Option<u64>,
        limit: usize,
        filter: impl Fn(&Value) -> bool,
    ) -> Result<Page, Expired> {
        let ty: TypeKey = (def.group.clone(), def.plural.clone());
        // The objects changed since `at`, each as it was then (`None`: it did not exist).
        let mut then: BTreeMap<&NameKey, Option<&Arc<Stored>>> = BTreeMap::new();
        if let Some(at) = at.filter(|at| *at < self.rv) {
            for change in self.changes_after(at)? {
                if change.key.ty == ty {
                    then.entry(&change.key.name)
                        .or_insert(change.previous.as_ref());
                }
            }
        }
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let now = self
            .objects
            .get(&ty)
            .into_iter()
            .flat_map(|bucket| bucket.range::<NameKey, _>((start, Bound::Unbounded)))
            .filter(|(k, _)| !then.contains_key(k));
        let before = then
            .range::<NameKey, _>((start, Bound::Unbounded))
            .filter_map(|(k, v)| v.map(|v| (*k, v)));
        let mut page = Page::default();
        for (k, object) in merge_sorted(now, before) {
            if namespace.is_some_and(|ns| ns != k.0) || !filter(&object.value) {
                continue;
            }
            if page.items.len() < limit {
                page.items.push(object.clone());
                page.continue_after = Some(k.clone());
            } else {
                page.remaining += 1;
            }
        }
        if page.remaining == 0 {
            page.continue_after = None;
        }
        Ok(page)
    }

    /// The retained changes after `rv`, oldest first.
    pub(crate) fn changes_after(
        &self,
        rv: u64,
    ) -> Result<impl Iterator<Item = &Arc<Change>>, Expired> {
        if rv < self.oldest {
            return Err(Expired {
                oldest: self.oldest,
            });
        }
        // Resource versions grow along the history, so the first newer change is found by
        // bisection rather than by a scan of up to HISTORY entries.
        let first = self.history.partition_point(|c| c.rv <= rv);
        Ok(self.history.range(first..))
    }
}

/// The storage type a CRD declares: (spec.group, spec.names.plural).
fn crd_type(crd: &Value) -> TypeKey {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    (
        text(&crd["spec"]["group"]),
        text(&crd["spec"]["names"]["plural"]),
    )
}

/// Two iterators sorted by key merged into one sorted iterator (keys are disjoint).
fn merge_sorted<'a, A, B>(a: A, b: B) -> impl Iterator<Item = (&'a NameKey, &'a Arc<Stored>)>
where
    A: Iterator<Item = (&'a NameKey, &'a Arc<Stored>)>,
    B: Iterator<Item = (&'a NameKey, &'a Arc<Stored>)>,
{
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some((ka, _)), Some((kb, _))) if kb < ka => b.next(),
        (Some(_), _) => a.next(),
        (None, _) => b.next(),
    })
}

/// The current time as Kubernetes writes timestamps: `2026-01-02T20:02:19Z`.
fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

/// What a real API server writes into a CRD's status within milliseconds of its creation:
/// its names accepted, its storage version, `NamesAccepted` and `Established`. A CRD applied
/// with a status of its own (a test's CRD that is still installing) keeps it. The versions
/// stored are the server's record: an update adds its storage version to those of `previous`.
fn establish(crd: &mut Value, previous: Option<&Value>) {
    if crd.get("status").is_some_and(|s| !s.is_null()) {
        return;
    }
    let mut storage = previous.map(immutable::stored_versions).unwrap_or_default();
    for v in crd["spec"]["versions"].as_array().into_iter().flatten() {
        if let Some(name) = v["name"].as_str().filter(|_| v["storage"] == true)
            && !storage.iter().any(|s| s == name)
        {
            storage.push(name.to_owned());
        }
    }
    let now = now_rfc3339();
    crd["status"] = json!({
        "acceptedNames": crd["spec"]["names"].clone(),
        "storedVersions": storage,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm(name: &str, data: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "ns"}, "data": {"k": data}})
    }

    fn names(page: &Page) -> Vec<String> {
        page.items
            .iter()
            .map(|s| s.value["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    }

    fn configmaps(state: &State) -> ResourceDef {
        state.def("", "v1", "configmaps").unwrap().clone()
    }

    #[test]
    fn apply_sets_server_fields_and_keeps_identity_across_updates() {
        let mut state = State::new();
        state.apply(cm("a", "1")).unwrap();
        let first = state.get("v1", "ConfigMap", Some("ns"), "a").unwrap();
        state.apply(cm("a", "2")).unwrap();
        let second = state.get("v1", "ConfigMap", Some("ns"), "a").unwrap();
        assert_eq!(first["metadata"]["uid"], second["metadata"]["uid"]);
        assert_eq!(
            first["metadata"]["creationTimestamp"],
            second["metadata"]["creationTimestamp"]
        );
        assert_eq!(
            (
                first["metadata"]["resourceVersion"].as_str(),
                second["metadata"]["resourceVersion"].as_str()
            ),
            (Some("1001"), Some("1002"))
        );
        let stamp = first["metadata"]["creationTimestamp"].as_str().unwrap();
        assert!(
            stamp.len() == 20 && stamp.starts_with("20") && stamp.ends_with('Z'),
            "{stamp}"
        );
        let kinds: Vec<_> = state
            .changes_after(1000)
            .unwrap()
            .map(|c| c.event)
            .collect();
        assert_eq!(kinds, [EventType::Added, EventType::Modified]);
    }

    #[test]
    fn namespaces_default_for_namespaced_objects_and_vanish_for_cluster_ones() {
        let mut state = State::new();
        state
            .apply(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}))
            .unwrap();
        assert!(state.get("v1", "Secret", Some("default"), "s").is_some());
        state
            .apply(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n", "namespace": "x"}}))
            .unwrap();
        let node = state.get("v1", "Node", None, "n").unwrap();
        assert!(node["metadata"].get("namespace").is_none());
        assert!(
            state
                .apply(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}))
                .is_err()
        );
    }

    #[test]
    fn pages_are_consistent_with_the_first_pages_version() {
        let mut state = State::new();
        for n in ["a", "b", "c", "d"] {
            state.apply(cm(n, "1")).unwrap();
        }
        let def = configmaps(&state);
        let at = state.resource_version();
        let first = state.list(&def, None, None, Some(at), 2, |_| true).unwrap();
        assert_eq!(
            (names(&first), first.remaining),
            (vec!["a".into(), "b".into()], 2)
        );
        // Between pages: c is deleted, d changed, e created, a changed.
        state.delete("v1", "ConfigMap", Some("ns"), "c").unwrap();
        state.apply(cm("d", "2")).unwrap();
        state.apply(cm("e", "1")).unwrap();
        state.apply(cm("a", "2")).unwrap();
        let second = state
            .list(
                &def,
                None,
                first.continue_after.as_ref(),
                Some(at),
                2,
                |_| true,
            )
            .unwrap();
        assert_eq!(names(&second), ["c", "d"]);
        assert_eq!(second.items[1].value["data"]["k"], "1");
        assert_eq!((second.remaining, second.continue_after), (0, None));
        let now = state.list(&def, None, None, None, 10, |_| true).unwrap();
        assert_eq!(names(&now), ["a", "b", "d", "e"]);
    }

    #[test]
    fn old_versions_expire_with_the_history() {
        let mut state = State::new();
        assert!(state.changes_after(999).is_err());
        for i in 0..=HISTORY {
            state.apply(cm("a", &i.to_string())).unwrap();
        }
        let rv = state.resource_version();
        assert_eq!(
            state.changes_after(1000).err(),
            Some(Expired { oldest: 1001 })
        );
        assert_eq!(state.changes_after(1001).unwrap().count(), HISTORY);
        assert_eq!(state.changes_after(rv).unwrap().count(), 0);
        let def = configmaps(&state);
        assert!(
            state
                .list(&def, None, None, Some(1000), 1, |_| true)
                .is_err()
        );
    }

    #[test]
    fn deleting_a_crd_deletes_its_resources_and_stops_serving_them() {
        let mut state = State::new();
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.io"},
            "spec": {"group": "example.io", "scope": "Cluster", "names": {"plural": "widgets", "kind": "Widget"},
                     "versions": [{"name": "v1", "served": true, "storage": true}]}});
        state.apply(crd).unwrap();
        let widget =
            json!({"apiVersion": "example.io/v1", "kind": "Widget", "metadata": {"name": "w"}});
        state.apply(widget.clone()).unwrap();
        assert!(state.def("example.io", "v1", "widgets").is_some());
        state
            .delete(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                None,
                "widgets.example.io",
            )
            .unwrap();
        assert!(state.def("example.io", "v1", "widgets").is_none());
        let events: Vec<_> = state
            .changes_after(1002)
            .unwrap()
            .map(|c| (c.event, c.key.ty.1.clone()))
            .collect();
        assert_eq!(
            events,
            [
                (EventType::Deleted, "widgets".to_owned()),
                (EventType::Deleted, "customresourcedefinitions".to_owned())
            ]
        );
        assert!(state.apply(widget).is_err());
    }

    #[test]
    fn a_crd_cannot_replace_a_built_in() {
        let mut state = State::new();
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "deployments.apps"},
            "spec": {"group": "apps", "scope": "Namespaced", "names": {"plural": "deployments", "kind": "Deployment"},
                     "versions": [{"name": "v2", "served": true, "storage": true}]}});
        assert!(state.apply(crd).is_err());
        assert!(state.def("apps", "v1", "deployments").is_some());
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let now = now_rfc3339();
        assert_eq!(now.len(), 20, "{now}");
        assert_eq!(&now[4..5], "-");
        assert_eq!(&now[10..11], "T");
    }
}
