//! Discovery documents: the legacy shapes (`/api`, `/apis`, `/apis/{group}` and the resource
//! lists), and the aggregated ones (`APIGroupDiscoveryList`) that `/api` and `/apis` answer when
//! the `Accept` header asks for them, as Kubernetes 1.30+ servers do. kubectl asks for the
//! aggregated shape first; kube-rs' `Discovery::run_aggregated` asks for nothing else, and
//! would read a legacy `APIGroupList` as an empty list.

use serde_json::{Value, json};

use crate::registry::{ResourceDef, group_version, sort_versions};
use crate::store::State;

/// The served versions of a group, most preferred first.
fn versions<'a>(state: &'a State, group: &str) -> Vec<&'a str> {
    let mut versions: Vec<&str> = Vec::new();
    for d in state.defs().iter().filter(|d| d.group == group) {
        for v in &d.versions {
            if !versions.contains(&v.as_str()) {
                versions.push(v);
            }
        }
    }
    sort_versions(&mut versions);
    versions
}

/// The served groups other than the core group, built-ins first, then CRD groups as they came.
fn group_names(state: &State) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for d in state.defs() {
        if !d.group.is_empty() && !names.contains(&d.group.as_str()) {
            names.push(&d.group);
        }
    }
    names
}

/// The aggregated discovery version an `Accept` header asks for first, if any: its content
/// type and apiVersion. Media ranges are taken in order (quality factors are not weighed).
pub(crate) fn aggregated_wanted(accept: &str) -> Option<(&'static str, &'static str)> {
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default();
        let params: Vec<(&str, &str)> = parts.filter_map(|p| p.split_once('=')).collect();
        let param = |k: &str| params.iter().find(|(pk, _)| *pk == k).map(|(_, v)| *v);
        match (media, param("g"), param("v"), param("as")) {
            (
                "application/json",
                Some("apidiscovery.k8s.io"),
                Some("v2"),
                Some("APIGroupDiscoveryList"),
            ) => {
                return Some((
                    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
                    "apidiscovery.k8s.io/v2",
                ));
            }
            (
                "application/json",
                Some("apidiscovery.k8s.io"),
                Some("v2beta1"),
                Some("APIGroupDiscoveryList"),
            ) => {
                return Some((
                    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
                    "apidiscovery.k8s.io/v2beta1",
                ));
            }
            ("application/json" | "application/*" | "*/*", _, _, None) => return None,
            _ => {}
        }
    }
    None
}

/// One resource as aggregated discovery describes it.
fn resource_v2(def: &ResourceDef, version: &str) -> Value {
    let gvk = json!({"group": def.group, "version": version, "kind": def.kind});
    let mut r = json!({
        "resource": def.plural,
        "responseKind": gvk,
        "scope": if def.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": def.singular,
        "verbs": def.verbs,
    });
    if !def.short_names.is_empty() {
        r["shortNames"] = json!(def.short_names);
    }
    if def.status {
        r["subresources"] = json!([{"subresource": "status", "responseKind": gvk, "verbs": ["get", "patch", "update"]}]);
    }
    r
}

/// `GET /api` (`core`) or `GET /apis` in the aggregated shape of `api_version`.
pub(crate) fn aggregated(state: &State, core: bool, api_version: &str) -> Value {
    let names = if core { vec![""] } else { group_names(state) };
    let items: Vec<Value> = names
        .into_iter()
        .map(|group| {
            let versions: Vec<Value> = versions(state, group)
                .into_iter()
                .map(|v| {
                    let resources: Vec<Value> = state
                        .defs()
                        .iter()
                        .filter(|d| d.group == group && d.serves(v))
                        .map(|d| resource_v2(d, v))
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let mut metadata = json!({"creationTimestamp": null});
            if !group.is_empty() {
                metadata["name"] = json!(group);
            }
            json!({"metadata": metadata, "versions": versions})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items})
}

/// `GET /api`.
pub(crate) fn core_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:443"}]
    })
}

/// One group with its served versions, most preferred first.
fn group(state: &State, name: &str) -> Option<Value> {
    let versions = versions(state, name);
    let gv = |v: &str| json!({"groupVersion": group_version(name, v), "version": v});
    let preferred = gv(versions.first()?);
    Some(json!({
        "name": name,
        "versions": versions.iter().map(|v| gv(v)).collect::<Vec<_>>(),
        "preferredVersion": preferred
    }))
}

/// `GET /apis`: every served group (the built-ins first, then CRD groups as they came).
pub(crate) fn groups(state: &State) -> Value {
    let groups: Vec<Value> = group_names(state)
        .iter()
        .filter_map(|g| group(state, g))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/{group}`, if the group is served.
pub(crate) fn api_group(state: &State, name: &str) -> Option<Value> {
    let mut g = group(state, name)?;
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    Some(g)
}

/// `GET /api/v1` or `GET /apis/{group}/{version}`, if anything is served there.
pub(crate) fn resources(state: &State, group: &str, version: &str) -> Option<Value> {
    let mut list = Vec::new();
    for d in state
        .defs()
        .iter()
        .filter(|d| d.group == group && d.serves(version))
    {
        let mut r = json!({"name": d.plural, "singularName": d.singular, "namespaced": d.namespaced, "kind": d.kind, "verbs": d.verbs});
        if !d.short_names.is_empty() {
            r["shortNames"] = json!(d.short_names);
        }
        list.push(r);
        if d.status {
            list.push(json!({"name": format!("{}/status", d.plural), "singularName": "", "namespaced": d.namespaced, "kind": d.kind, "verbs": ["get", "patch", "update"]}));
        }
    }
    if list.is_empty() {
        return None;
    }
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version(group, version),
        "resources": list
    }))
}

/// `GET /version`.
pub(crate) fn version_info(git_version: &str, major: &str, minor: &str) -> Value {
    json!({
        "major": major, "minor": minor, "gitVersion": git_version,
        "gitCommit": "1e4f2c5d0d7b1c4a0f1e9e1b2d3c4a5b6c7d8e9f", "gitTreeState": "clean",
        "buildDate": "2025-10-22T09:12:33Z", "goVersion": "go1.22.5", "compiler": "gc",
        "platform": "linux/amd64"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_header_chooses_aggregated_discovery() {
        let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(
            aggregated_wanted(kubectl).map(|w| w.1),
            Some("apidiscovery.k8s.io/v2")
        );
        let beta = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList, application/json";
        assert_eq!(
            aggregated_wanted(beta).map(|w| w.1),
            Some("apidiscovery.k8s.io/v2beta1")
        );
        for legacy in [
            "application/json",
            "*/*",
            "",
            "application/json, application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
            "application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList",
        ] {
            assert_eq!(aggregated_wanted(legacy), None, "{legacy}");
        }
    }

    #[test]
    fn aggregated_discovery_describes_every_resource() {
        let state = State::new();
        let core = aggregated(&state, true, "apidiscovery.k8s.io/v2");
        assert_eq!(core["items"].as_array().map(Vec::len), Some(1));
        assert!(core["items"][0]["metadata"].get("name").is_none());
        let nodes = &core["items"][0]["versions"][0]["resources"][0];
        assert_eq!(
            nodes,
            &json!({"resource": "nodes", "responseKind": {"group": "", "version": "v1", "kind": "Node"},
                "scope": "Cluster", "singularResource": "node", "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                "shortNames": ["no"], "subresources": [{"subresource": "status", "responseKind": {"group": "", "version": "v1", "kind": "Node"}, "verbs": ["get", "patch", "update"]}]})
        );
        let apis = aggregated(&state, false, "apidiscovery.k8s.io/v2");
        assert_eq!(apis["items"][0]["metadata"]["name"], "apps");
        assert_eq!(apis["items"][0]["versions"][0]["freshness"], "Current");
    }

    #[test]
    fn built_in_discovery_has_the_usual_shapes() {
        let mut state = State::new();
        let core = resources(&state, "", "v1").unwrap();
        let nodes = &core["resources"][0];
        assert_eq!(
            (
                &nodes["name"],
                &nodes["singularName"],
                &nodes["namespaced"],
                &nodes["kind"],
                &nodes["shortNames"]
            ),
            (
                &json!("nodes"),
                &json!("node"),
                &json!(false),
                &json!("Node"),
                &json!(["no"])
            )
        );
        assert_eq!(core["resources"][1]["name"], "nodes/status");
        let apps = resources(&state, "apps", "v1").unwrap();
        assert!(
            apps["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["name"] == "deployments/status")
        );
        assert!(resources(&state, "apps", "v2").is_none());
        assert!(api_group(&state, "example.io").is_none());

        state
            .apply(json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": "widgets.example.io"},
                "spec": {"group": "example.io", "scope": "Namespaced", "names": {"plural": "widgets", "kind": "Widget"},
                    "versions": [{"name": "v1beta1", "served": true, "storage": true}, {"name": "v1", "served": true, "storage": false}]}}))
            .unwrap();
        let group = api_group(&state, "example.io").unwrap();
        assert_eq!(group["preferredVersion"]["groupVersion"], "example.io/v1");
        assert_eq!(group["versions"][1]["version"], "v1beta1");
        let all = groups(&state);
        let names: Vec<&str> = all["groups"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|g| g["name"].as_str())
            .collect();
        assert_eq!(names.last(), Some(&"example.io"));
        assert!(names.contains(&"authentication.k8s.io"));
    }
}
