//! Realistic nodes in bulk, cloned from one real node.

use serde_json::{Value, json};

/// The availability zones nodes are spread over, with their AWS zone ids.
const ZONES: [(&str, &str); 3] = [
    ("us-east-1a", "use1-az1"),
    ("us-east-1b", "use1-az2"),
    ("us-east-1c", "use1-az4"),
];

/// Builds `n` realistic Node objects from `template` (e.g. the item of the real EKS NodeList
/// fixture): each has its own name and hostname, internal IP, provider id, uid, machine and boot
/// ids, and a zone among three; `ready` sets the status of every node's `Ready` condition.
///
/// Names are deterministic: node `i` is `ip-10-0-{i / 250}-{i % 250 + 1}.ec2.internal`, so the
/// first is `ip-10-0-0-1.ec2.internal`. The nodes carry `apiVersion` and `kind`, ready for
/// [`FakeKube::apply`](crate::FakeKube::apply).
#[must_use]
pub fn nodes_from_template(template: &Value, n: usize, ready: bool) -> Vec<Value> {
    (0..n).map(|i| node(template, i, ready)).collect()
}

fn node(template: &Value, i: usize, ready: bool) -> Value {
    let ip = format!("10.0.{}.{}", i / 250, i % 250 + 1);
    let name = format!("ip-{}.ec2.internal", ip.replace('.', "-"));
    let (zone, zone_id) = ZONES[i % ZONES.len()];
    let mut node = template.clone();
    // Items of a NodeList carry no type; a stored object must.
    node["apiVersion"] = json!("v1");
    node["kind"] = json!("Node");

    let meta = &mut node["metadata"];
    if let Some(m) = meta.as_object_mut() {
        // The server sets these.
        m.remove("resourceVersion");
        m.remove("managedFields");
    }
    meta["name"] = json!(name);
    meta["uid"] = json!(format!("d06a4e91-b2e9-4907-a60a-{i:012x}"));
    let labels = &mut meta["labels"];
    labels["kubernetes.io/hostname"] = json!(name);
    for key in [
        "topology.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/zone",
    ] {
        if labels.get(key).is_some() {
            labels[key] = json!(zone);
        }
    }
    if labels.get("topology.k8s.aws/zone-id").is_some() {
        labels["topology.k8s.aws/zone-id"] = json!(zone_id);
    }
    meta["annotations"]["alpha.kubernetes.io/provided-node-ip"] = json!(ip);

    node["spec"]["providerID"] = json!(format!("aws:///{zone}/i-{i:017x}"));
    let status = &mut node["status"];
    status["addresses"] = json!([
        {"type": "InternalIP", "address": ip},
        {"type": "InternalDNS", "address": name},
        {"type": "Hostname", "address": name}
    ]);
    let info = &mut status["nodeInfo"];
    info["machineID"] = json!(format!("{i:032x}"));
    info["systemUUID"] = json!(format!("ec2b3bde-c96c-7af6-1cce-{i:012x}"));
    info["bootID"] = json!(format!("3c2f687e-27bd-4642-bee9-{i:012x}"));
    if let Some(conditions) = status["conditions"].as_array_mut() {
        for c in conditions.iter_mut().filter(|c| c["type"] == "Ready") {
            let (state, reason, message) = if ready {
                ("True", "KubeletReady", "kubelet is posting ready status")
            } else {
                (
                    "False",
                    "KubeletNotReady",
                    "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized",
                )
            };
            c["status"] = json!(state);
            c["reason"] = json!(reason);
            c["message"] = json!(message);
        }
    }
    node
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn template() -> Value {
        let text = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/k8s-nodelist-eks-real.json"
        ));
        let list: Value = serde_json::from_str(text).unwrap();
        list["items"][0].clone()
    }

    #[test]
    fn every_node_is_distinct_and_realistic() {
        let nodes = nodes_from_template(&template(), 5000, true);
        for field in [
            "/metadata/name",
            "/metadata/uid",
            "/spec/providerID",
            "/status/addresses/0/address",
            "/status/nodeInfo/machineID",
        ] {
            let distinct: HashSet<&str> = nodes
                .iter()
                .map(|n| n.pointer(field).and_then(Value::as_str).unwrap())
                .collect();
            assert_eq!(distinct.len(), 5000, "{field}");
        }
        let first = &nodes[0];
        assert_eq!(first["metadata"]["name"], "ip-10-0-0-1.ec2.internal");
        assert_eq!(
            first["metadata"]["labels"]["kubernetes.io/hostname"],
            "ip-10-0-0-1.ec2.internal"
        );
        assert_eq!(
            nodes[4999]["status"]["addresses"][0]["address"],
            "10.0.19.250"
        );
        assert_eq!(
            nodes[1]["metadata"]["labels"]["topology.kubernetes.io/zone"],
            "us-east-1b"
        );
        assert_eq!(
            (first["apiVersion"].as_str(), first["kind"].as_str()),
            (Some("v1"), Some("Node"))
        );
        assert!(first["metadata"].get("resourceVersion").is_none());
        let size = serde_json::to_vec(first).unwrap().len();
        assert!(
            (3_000..8_000).contains(&size),
            "a node is about 5 KB, not {size}"
        );
    }

    #[test]
    fn ready_sets_the_ready_condition() {
        let ready_of = |ready| {
            let nodes = nodes_from_template(&template(), 1, ready);
            nodes[0]["status"]["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == "Ready")
                .map(|c| c["status"].clone())
                .unwrap()
        };
        assert_eq!(
            (ready_of(true), ready_of(false)),
            (json!("True"), json!("False"))
        );
    }
}
