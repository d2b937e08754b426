//! The fields a real API server refuses to change once an object exists, with its 422
//! messages, so that a test cannot do to the fake what a real cluster would refuse.

use anyhow::bail;
use serde_json::Value;

use crate::registry::ResourceDef;

/// Checks that an update of `old` into `new` (an object of type `def`) changes no field the
/// real server holds immutable; the error reads as the real server's `Invalid` answer.
pub(crate) fn check_update(def: &ResourceDef, old: &Value, new: &Value) -> anyhow::Result<()> {
    let errors = match (def.group.as_str(), def.plural.as_str()) {
        ("storage.k8s.io", "storageclasses") => storage_class(old, new),
        ("networking.k8s.io", "ingressclasses") => {
            immutable(old, new, "/spec/controller", "spec.controller")
        }
        ("apps", "deployments" | "daemonsets") => selector(old, new),
        ("", "secrets") => {
            let mut errors = sealed(old, new, &["data", "stringData"]);
            let type_of = |o: &Value| o["type"].as_str().unwrap_or("Opaque").to_owned();
            if type_of(old) != type_of(new) {
                errors.push(format!(
                    "type: Invalid value: \"{}\": field is immutable",
                    type_of(new)
                ));
            }
            errors
        }
        ("", "configmaps") => sealed(old, new, &["data", "binaryData"]),
        ("", "nodes") => provider_id(old, new),
        ("apiextensions.k8s.io", "customresourcedefinitions") => crd(old, new),
        _ => Vec::new(),
    };
    if errors.is_empty() {
        return Ok(());
    }
    let name = new["metadata"]["name"].as_str().unwrap_or_default();
    let subject = if def.group.is_empty() {
        format!("{} {name:?}", def.kind)
    } else {
        format!("{}.{} {name:?}", def.kind, def.group)
    };
    let detail = if let [one] = errors.as_slice() {
        one.clone()
    } else {
        format!("[{}]", errors.join(", "))
    };
    bail!("{subject} is invalid: {detail}")
}

/// Whether two values are equal as the server compares them (`Semantic.DeepEqual`): a
/// missing field, `null` and an empty map or list are all the same.
fn same(a: &Value, b: &Value) -> bool {
    normalize(a) == normalize(b)
}

fn normalize(v: &Value) -> Value {
    let v = match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), normalize(v)))
                .filter(|(_, v)| !v.is_null())
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        other => other.clone(),
    };
    match &v {
        Value::Object(m) if m.is_empty() => Value::Null,
        Value::Array(a) if a.is_empty() => Value::Null,
        _ => v,
    }
}

/// A field that may be set at creation only (`ValidateImmutableField`).
fn immutable(old: &Value, new: &Value, pointer: &str, field: &str) -> Vec<String> {
    let (a, b) = (
        old.pointer(pointer).unwrap_or(&Value::Null),
        new.pointer(pointer).unwrap_or(&Value::Null),
    );
    if same(a, b) {
        Vec::new()
    } else {
        vec![format!("{field}: Invalid value: {b}: field is immutable")]
    }
}

/// A StorageClass: its provisioner, parameters, reclaim policy and binding mode are fixed
/// (the last two as the server defaults them).
fn storage_class(old: &Value, new: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    for field in ["parameters", "provisioner"] {
        if !same(&old[field], &new[field]) {
            errors.push(format!(
                "{field}: Forbidden: updates to {field} are forbidden."
            ));
        }
    }
    let text =
        |o: &Value, field: &str, default: &str| o[field].as_str().unwrap_or(default).to_owned();
    if text(old, "reclaimPolicy", "Delete") != text(new, "reclaimPolicy", "Delete") {
        errors.push("reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden.".into());
    }
    let mode = text(new, "volumeBindingMode", "Immediate");
    if text(old, "volumeBindingMode", "Immediate") != mode {
        errors.push(format!(
            "volumeBindingMode: Invalid value: \"{mode}\": field is immutable"
        ));
    }
    errors
}

/// A Deployment's or DaemonSet's selector (`apps/v1`), quoted as Go writes a LabelSelector.
fn selector(old: &Value, new: &Value) -> Vec<String> {
    let (a, b) = (&old["spec"]["selector"], &new["spec"]["selector"]);
    if same(a, b) {
        return Vec::new();
    }
    let mut fields = Vec::new();
    for key in ["matchLabels", "matchExpressions"] {
        if let Some(v) = b.get(key).filter(|v| !v.is_null()) {
            fields.push(format!("\"{key}\":{v}"));
        }
    }
    vec![format!(
        "spec.selector: Invalid value: {{{}}}: field is immutable",
        fields.join(",")
    )]
}

/// A Secret's or ConfigMap's `immutable: true`: then its contents and the flag itself are
/// fixed.
fn sealed(old: &Value, new: &Value, contents: &[&str]) -> Vec<String> {
    if old["immutable"] != true {
        return Vec::new();
    }
    let mut errors: Vec<String> = contents
        .iter()
        .filter(|f| !same(&old[**f], &new[**f]))
        .map(|f| format!("{f}: Forbidden: field is immutable when `immutable` is set"))
        .collect();
    if new["immutable"] != true {
        errors.push("immutable: Forbidden: field is immutable when `immutable` is set".into());
    }
    errors
}

/// A Node's provider id, once set.
fn provider_id(old: &Value, new: &Value) -> Vec<String> {
    let id = |o: &Value| {
        o["spec"]["providerID"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    if id(old).is_empty() || id(old) == id(new) {
        return Vec::new();
    }
    vec!["spec.providerID: Forbidden: node updates may not change providerID except from \"\" to valid".into()]
}

/// A CRD: its scope is fixed, and every version it ever stored objects at must stay in
/// `spec.versions` until a storage migration removes it from `status.storedVersions`.
fn crd(old: &Value, new: &Value) -> Vec<String> {
    let mut errors = immutable(old, new, "/spec/scope", "spec.scope");
    let declared: Vec<&str> = new["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str())
        .collect();
    for (i, stored) in stored_versions(old).iter().enumerate() {
        if !declared.contains(&stored.as_str()) {
            errors.push(format!(
                "status.storedVersions[{i}]: Invalid value: \"{stored}\": missing from spec.versions; {stored} was previously a storage version, and must remain in spec.versions until a storage migration ensures no data remains persisted in {stored} and removes {stored} from status.storedVersions"
            ));
        }
    }
    errors
}

/// The versions a CRD has stored objects at.
pub(crate) fn stored_versions(crd: &Value) -> Vec<String> {
    crd["status"]["storedVersions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::registry::builtins;

    fn def(plural: &str) -> ResourceDef {
        builtins()
            .into_iter()
            .find(|d| d.plural == plural)
            .expect("a built-in")
    }

    #[test]
    fn a_storage_class_keeps_its_parameters_but_takes_annotations() {
        let old = json!({"metadata": {"name": "gp2"}, "provisioner": "kubernetes.io/aws-ebs",
            "parameters": {"type": "gp2"}, "volumeBindingMode": "WaitForFirstConsumer"});
        let mut annotated = old.clone();
        annotated["metadata"]["annotations"] =
            json!({"storageclass.kubernetes.io/is-default-class": "true"});
        annotated["reclaimPolicy"] = json!("Delete");
        assert!(check_update(&def("storageclasses"), &old, &annotated).is_ok());
        let mut changed = old.clone();
        changed.as_object_mut().unwrap().remove("parameters");
        changed["volumeBindingMode"] = json!("Immediate");
        assert_eq!(
            check_update(&def("storageclasses"), &old, &changed)
                .unwrap_err()
                .to_string(),
            "StorageClass.storage.k8s.io \"gp2\" is invalid: [parameters: Forbidden: updates to parameters are forbidden., volumeBindingMode: Invalid value: \"Immediate\": field is immutable]"
        );
    }

    #[test]
    fn a_workload_keeps_its_selector() {
        let old = json!({"metadata": {"name": "coredns"}, "spec": {"selector": {"matchLabels": {"k8s-app": "kube-dns"}}, "replicas": 2}});
        let mut scaled = old.clone();
        scaled["spec"]["replicas"] = json!(3);
        assert!(check_update(&def("deployments"), &old, &scaled).is_ok());
        let mut changed = old.clone();
        changed["spec"]["selector"]["matchLabels"]["x"] = json!("y");
        assert_eq!(
            check_update(&def("deployments"), &old, &changed)
                .unwrap_err()
                .to_string(),
            "Deployment.apps \"coredns\" is invalid: spec.selector: Invalid value: {\"matchLabels\":{\"k8s-app\":\"kube-dns\",\"x\":\"y\"}}: field is immutable"
        );
    }

    #[test]
    fn an_immutable_secret_keeps_its_data_and_every_secret_its_type() {
        let old = json!({"metadata": {"name": "s"}, "data": {"a": "eA=="}});
        let mut typed = old.clone();
        typed["type"] = json!("Opaque");
        assert!(check_update(&def("secrets"), &old, &typed).is_ok());
        typed["type"] = json!("kubernetes.io/tls");
        assert_eq!(
            check_update(&def("secrets"), &old, &typed)
                .unwrap_err()
                .to_string(),
            "Secret \"s\" is invalid: type: Invalid value: \"kubernetes.io/tls\": field is immutable"
        );
        let mut sealed = old.clone();
        sealed["immutable"] = json!(true);
        assert!(check_update(&def("secrets"), &old, &sealed).is_ok());
        let mut changed = sealed.clone();
        changed["data"]["b"] = json!("eQ==");
        assert_eq!(
            check_update(&def("secrets"), &sealed, &changed)
                .unwrap_err()
                .to_string(),
            "Secret \"s\" is invalid: data: Forbidden: field is immutable when `immutable` is set"
        );
    }

    #[test]
    fn a_crd_keeps_its_scope_and_its_stored_versions() {
        let old = json!({"metadata": {"name": "widgets.example.io"},
            "spec": {"scope": "Cluster", "versions": [{"name": "v1"}]},
            "status": {"storedVersions": ["v1"]}});
        let mut more = old.clone();
        more["spec"]["versions"] = json!([{"name": "v2"}, {"name": "v1"}]);
        assert!(check_update(&def("customresourcedefinitions"), &old, &more).is_ok());
        let mut older = old.clone();
        older["spec"]["versions"] = json!([{"name": "v1beta1"}]);
        older["spec"]["scope"] = json!("Namespaced");
        assert_eq!(
            check_update(&def("customresourcedefinitions"), &old, &older)
                .unwrap_err()
                .to_string(),
            "CustomResourceDefinition.apiextensions.k8s.io \"widgets.example.io\" is invalid: [spec.scope: Invalid value: \"Namespaced\": field is immutable, status.storedVersions[0]: Invalid value: \"v1\": missing from spec.versions; v1 was previously a storage version, and must remain in spec.versions until a storage migration ensures no data remains persisted in v1 and removes v1 from status.storedVersions]"
        );
    }
}
