//! The least privilege that grants exactly what a plan's checks [read](crate::reads): the RBAC
//! of preflight's ServiceAccount (`get`, `list`, `watch` only; Secrets only by name) and the
//! IAM policy of its role (IRSA).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::plan::Plan;
use crate::platform::Scope;
use crate::reads::{KubeRead, Rules, add, rule_values};

/// Names of the objects made for a run: `preflight-tier-1-5` for a tier's gate,
/// `preflight-backstage` for an app's hook.
#[must_use]
pub fn object_name(plan: &Plan) -> String {
    match plan.scope {
        Scope::Gate(tier) => format!("preflight-tier-{}", tier.as_str().replace('.', "-")),
        Scope::App(app) => format!("preflight-{}", app.name),
    }
}

/// The RBAC a run of `plan` needs, as YAML documents: the ServiceAccount (in `namespace`, with
/// the IRSA annotation to fill in when AWS checks are planned), a ClusterRole and binding for
/// cluster-scoped reads, and a Role and binding in each namespace read. `extra` adds reads
/// of the run itself (the bootstrap ConfigMap).
#[must_use]
pub fn rbac(plan: &Plan, namespace: &str, extra: &[KubeRead]) -> String {
    let name = object_name(plan);
    let mut cluster = Rules::new();
    let mut namespaced: BTreeMap<String, Rules> = BTreeMap::new();
    let reads = plan
        .checks
        .iter()
        .flat_map(|e| e.check.reads().kube)
        .chain(extra.iter().cloned());
    for read in reads {
        match &read.namespace {
            None => add(&mut cluster, &read),
            Some(ns) => add(namespaced.entry(ns.clone()).or_default(), &read),
        }
    }
    let labels =
        json!({"app.kubernetes.io/name": "preflight", "goldenpath.idp/tier": plan.tier.as_str()});
    let labels = match plan.scope {
        Scope::App(app) => {
            let mut labels = labels;
            labels["app.kubernetes.io/part-of"] = json!(app.name);
            labels
        }
        Scope::Gate(_) => labels,
    };
    let subject = json!([{"kind": "ServiceAccount", "name": name, "namespace": namespace}]);
    let mut account = json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
    });
    if plan.checks.iter().any(|e| !e.check.reads().iam.is_empty()) {
        account["metadata"]["annotations"] = json!({
            "eks.amazonaws.com/role-arn": "arn:aws:iam::ACCOUNT_ID:role/preflight",
        });
    }
    let mut docs = vec![account];
    if !cluster.is_empty() {
        docs.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name, "labels": labels},
            "rules": rule_values(&cluster),
        }));
        docs.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": subject,
        }));
    }
    for (ns, rules) in &namespaced {
        docs.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "rules": rule_values(rules),
        }));
        docs.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": subject,
        }));
    }
    let docs: Vec<String> = docs
        .iter()
        .map(|d| serde_saphyr::to_string(d).expect("a JSON value always has a YAML form"))
        .collect();
    docs.join("---\n")
}

/// The IAM policy document the AWS checks of `plan` need, or `None` when none is planned.
#[must_use]
pub fn iam_policy(plan: &Plan) -> Option<String> {
    let mut by_resource: BTreeMap<String, BTreeSet<&'static str>> = BTreeMap::new();
    for grant in plan.checks.iter().flat_map(|e| e.check.reads().iam) {
        by_resource
            .entry(grant.resource)
            .or_default()
            .insert(grant.action);
    }
    if by_resource.is_empty() {
        return None;
    }
    // A grant another one covers (an image's repository, when images found in Applications
    // may come from any repository) adds nothing: left in, removing it would change nothing,
    // and the policy would not be the least it can be.
    let covered: Vec<(String, &'static str)> = by_resource
        .iter()
        .flat_map(|(resource, actions)| actions.iter().map(move |a| (resource, *a)))
        .filter(|(resource, action)| {
            by_resource.iter().any(|(other, actions)| {
                other != *resource
                    && actions.contains(action)
                    && iam_pattern_covers(other, resource)
            })
        })
        .map(|(resource, action)| (resource.clone(), action))
        .collect();
    for (resource, action) in covered {
        if let Some(actions) = by_resource.get_mut(&resource) {
            actions.remove(action);
        }
    }
    by_resource.retain(|_, actions| !actions.is_empty());
    let statements: Vec<Value> = by_resource
        .iter()
        .enumerate()
        .map(|(i, (resource, actions))| {
            json!({
                "Sid": format!("PreflightRead{}", i + 1),
                "Effect": "Allow",
                "Action": actions,
                "Resource": resource,
            })
        })
        .collect();
    let policy = json!({"Version": "2012-10-17", "Statement": statements});
    serde_json::to_string_pretty(&policy).ok().map(|mut s| {
        s.push('\n');
        s
    })
}

/// Whether IAM's resource pattern `pattern` (`*`: any characters, `?`: one) matches every
/// resource `other` matches, `other` being a pattern too: a character of `other` is matched
/// literally, its `?` only by `?` or `*`, its `*` only by `*`.
fn iam_pattern_covers(pattern: &str, other: &str) -> bool {
    fn covers(p: &[char], o: &[char]) -> bool {
        match (p.first(), o.first()) {
            (None, None) => true,
            (Some('*'), _) => covers(&p[1..], o) || (!o.is_empty() && covers(p, &o[1..])),
            (Some('?'), Some(c)) if *c != '*' => covers(&p[1..], &o[1..]),
            (Some(a), Some(b)) if a == b => covers(&p[1..], &o[1..]),
            _ => false,
        }
    }
    let (p, o): (Vec<char>, Vec<char>) = (pattern.chars().collect(), other.chars().collect());
    covers(&p, &o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn a_pattern_covers_what_it_matches_whatever_that_matches() {
        for (pattern, other, covers) in [
            (
                "arn:aws:ecr:*:*:repository/*",
                "arn:aws:ecr:eu-west-1:123456789012:repository/goldenpath/kong",
                true,
            ),
            (
                "arn:aws:ecr:*:*:repository/*",
                "arn:aws:ecr:*:*:repository/team/*",
                true,
            ),
            (
                "arn:aws:ecr:*:*:repository/team/*",
                "arn:aws:ecr:*:*:repository/*",
                false,
            ),
            (
                "arn:aws:secretsmanager:*:*:secret:a-??????",
                "arn:aws:secretsmanager:*:*:secret:a-??????",
                true,
            ),
            (
                "arn:aws:secretsmanager:*:*:secret:a-??????",
                "arn:aws:secretsmanager:*:*:secret:a-*",
                false,
            ),
            (
                "arn:aws:secretsmanager:*:*:secret:a-*",
                "arn:aws:secretsmanager:*:*:secret:a-??????",
                true,
            ),
            ("*", "arn:aws:s3:::goldenpath-dev-loki", true),
            (
                "arn:aws:s3:::goldenpath-dev-loki",
                "arn:aws:s3:::goldenpath-dev-loki-2",
                false,
            ),
            (
                "arn:aws:iam::*:role/goldenpath-dev-external-dns",
                "arn:aws:iam::*:role/goldenpath-dev-external-secrets",
                false,
            ),
        ] {
            assert_eq!(
                iam_pattern_covers(pattern, other),
                covers,
                "{pattern} covers {other}"
            );
        }
    }
    use crate::contract::{Origin, ValuesLayer};
    use crate::plan::{Selection, plan};
    use crate::platform::Scope;
    use crate::tier::Tier;

    fn plan_for(tier: Tier) -> Plan {
        let values = ValuesLayer::from_yaml(
            "bootstrap: {mode: persistent, env: dev}\nplatform: {rdsAvailable: true}\n",
            Origin::File("values.yaml".into()),
        )
        .and_then(ValuesLayer::validate)
        .expect("valid");
        plan(
            &values,
            &Config::default(),
            Scope::Gate(tier),
            &Selection::default(),
        )
        .expect("plans")
    }

    fn documents(text: &str) -> Vec<Value> {
        text.split("---\n")
            .map(|d| serde_saphyr::from_str(d).expect("YAML"))
            .collect()
    }

    fn app_plan(app: &str) -> Plan {
        let values = ValuesLayer::from_yaml(
            "bootstrap: {mode: persistent, env: dev}\nplatform: {rdsAvailable: true}\n",
            Origin::File("values.yaml".into()),
        )
        .and_then(ValuesLayer::validate)
        .expect("valid");
        let scope = crate::plan::app_scope(app).expect("an app");
        plan(&values, &Config::default(), scope, &Selection::default()).expect("plans")
    }

    fn rules(docs: &[Value]) -> Vec<&Value> {
        docs.iter()
            .filter_map(|d| d["rules"].as_array())
            .flatten()
            .collect()
    }

    /// Gates run before the apps' Secrets exist, so they read none; an app's hook reads its
    /// own synced Secret, by name. Every rule is read-only.
    #[test]
    fn grants_only_reads_and_secrets_only_by_name_in_app_hooks() {
        for tier in Tier::ALL {
            let docs = documents(&rbac(&plan_for(tier), "argocd", &[]));
            for rule in rules(&docs) {
                assert_eq!(rule["verbs"], json!(["get", "list", "watch"]), "{rule}");
                assert_ne!(rule["resources"], json!(["secrets"]), "tier {tier}: {rule}");
            }
            let names: BTreeSet<&str> = docs
                .iter()
                .filter_map(|d| d["metadata"]["name"].as_str())
                .collect();
            assert_eq!(
                names,
                BTreeSet::from([object_name(&plan_for(tier)).as_str()])
            );
        }
        let docs = documents(&rbac(&app_plan("backstage"), "backstage", &[]));
        let role = docs
            .iter()
            .find(|d| d["kind"] == "Role" && d["metadata"]["namespace"] == "backstage")
            .expect("a Role in backstage");
        assert_eq!(
            role["rules"],
            json!([
                {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["backstage-secrets"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["external-secrets.io"], "resources": ["externalsecrets"], "verbs": ["get", "list", "watch"]}
            ])
        );
        assert_eq!(docs[0]["metadata"]["name"], "preflight-backstage");
        assert_eq!(
            docs[0]["metadata"]["labels"]["app.kubernetes.io/part-of"],
            "backstage"
        );
        assert!(
            docs.iter().all(|d| d["kind"] != "ClusterRole"),
            "reads only in its namespace"
        );
    }

    #[test]
    fn binds_each_namespace_to_what_is_read_there() {
        let docs = documents(&rbac(&plan_for(Tier::OneAndHalf), "argocd", &[]));
        let role = |ns: &str| {
            docs.iter()
                .find(|d| d["kind"] == "Role" && d["metadata"]["namespace"] == ns)
                .cloned()
                .unwrap_or_else(|| panic!("a Role in {ns}"))
        };
        assert_eq!(
            role("external-dns")["rules"],
            json!([
                {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["cert-manager.io"], "resources": ["certificates"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": ["get", "list", "watch"]}
            ])
        );
        assert_eq!(
            role("argocd")["rules"][0]["resources"],
            json!(["applications"])
        );
        let bindings = docs.iter().filter(|d| d["kind"] == "RoleBinding").count();
        let roles = docs.iter().filter(|d| d["kind"] == "Role").count();
        assert_eq!(bindings, roles);
        assert_eq!(
            docs[0]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
            "arn:aws:iam::ACCOUNT_ID:role/preflight"
        );
        // Tier 0 reads no AWS API: no role to annotate.
        let tier0 = documents(&rbac(&plan_for(Tier::Zero), "argocd", &[]));
        assert!(tier0[0]["metadata"]["annotations"].is_null());
    }

    fn statements(policy: &str) -> Vec<(String, Vec<String>)> {
        let doc: Value = serde_json::from_str(policy).expect("JSON");
        doc["Statement"]
            .as_array()
            .expect("statements")
            .iter()
            .map(|s| {
                (
                    s["Resource"].as_str().expect("a resource").to_owned(),
                    s["Action"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|a| a.as_str().map(str::to_owned))
                        .collect(),
                )
            })
            .collect()
    }

    /// An image's own repository is granted only when no wider grant (images found in
    /// Applications may come from any repository) covers it.
    #[test]
    fn a_grant_another_covers_is_left_out() {
        let values = ValuesLayer::from_yaml(
            "bootstrap: {mode: persistent, env: dev}\nplatform: {rdsAvailable: true}\n",
            Origin::File("values.yaml".into()),
        )
        .and_then(ValuesLayer::validate)
        .expect("valid");
        let ecr = |discover: bool| {
            let config = Config::from_yaml(
                &format!("checks:\n  image-architecture:\n    discover: {discover}\n    images:\n    - {{app: kong, image: \"123456789012.dkr.ecr.eu-west-1.amazonaws.com/goldenpath/kong:3.9.1\"}}\n"),
                "preflight.yaml",
            )
            .expect("a config");
            let selection = Selection {
                only: vec!["image-architecture".into()],
                ..Selection::default()
            };
            let plan = plan(&values, &config, Scope::Gate(Tier::One), &selection).expect("plans");
            statements(&iam_policy(&plan).expect("ECR"))
        };
        let actions = vec![
            "ecr:BatchGetImage".to_owned(),
            "ecr:GetDownloadUrlForLayer".to_owned(),
        ];
        assert_eq!(
            ecr(true),
            vec![("arn:aws:ecr:*:*:repository/*".to_owned(), actions.clone())]
        );
        assert_eq!(
            ecr(false),
            vec![(
                "arn:aws:ecr:eu-west-1:123456789012:repository/goldenpath/kong".to_owned(),
                actions
            )]
        );
    }

    #[test]
    fn the_iam_policy_has_exactly_the_aws_calls_of_the_plan() {
        assert_eq!(iam_policy(&plan_for(Tier::Zero)), None);
        let get_role = |name: &str| {
            (
                format!("arn:aws:iam::*:role/goldenpath-dev-{name}"),
                vec!["iam:GetRole".to_owned()],
            )
        };
        // Tier 1's: the zone, the images in ECR, the IRSA roles with the cluster's issuer.
        let tier1 = vec![
            (
                "*".to_owned(),
                vec!["route53:ListHostedZonesByName".to_owned()],
            ),
            (
                "arn:aws:ecr:*:*:repository/*".to_owned(),
                vec![
                    "ecr:BatchGetImage".to_owned(),
                    "ecr:GetDownloadUrlForLayer".to_owned(),
                ],
            ),
            (
                "arn:aws:eks:*:*:cluster/goldenpath-dev".to_owned(),
                vec!["eks:DescribeCluster".to_owned()],
            ),
            (
                "arn:aws:iam::*:oidc-provider/oidc.eks.*.amazonaws.com/id/*".to_owned(),
                vec!["iam:GetOpenIDConnectProvider".to_owned()],
            ),
            get_role("aws-load-balancer-controller"),
            get_role("cluster-autoscaler"),
            get_role("ebs-csi-controller-sa"),
            get_role("external-dns"),
            get_role("external-secrets"),
        ];
        assert_eq!(
            statements(&iam_policy(&plan_for(Tier::One)).expect("route53")),
            tier1
        );
        // Tier 3's gate also reads Keycloak's remote secret.
        let tier3 = statements(&iam_policy(&plan_for(Tier::Three)).expect("rds"));
        assert!(tier3.contains(&(
            "arn:aws:secretsmanager:*:*:secret:goldenpath/dev/keycloak/postgres-??????".to_owned(),
            vec!["secretsmanager:GetSecretValue".to_owned()],
        )));
        // Tier 2 adds RDS, the zone's records, Loki's bucket and Backstage's remote secret.
        let tier2 = statements(&iam_policy(&plan_for(Tier::Two)).expect("rds"));
        let mut expected = tier1;
        expected.extend([
            (
                "arn:aws:rds:*:*:db:goldenpath-dev".to_owned(),
                vec!["rds:DescribeDBInstances".to_owned()],
            ),
            (
                "arn:aws:route53:::hostedzone/*".to_owned(),
                vec!["route53:ListResourceRecordSets".to_owned()],
            ),
            (
                "arn:aws:s3:::goldenpath-dev-loki".to_owned(),
                vec!["s3:ListBucket".to_owned()],
            ),
            (
                "arn:aws:secretsmanager:*:*:secret:goldenpath/dev/backstage/postgres-??????"
                    .to_owned(),
                vec!["secretsmanager:GetSecretValue".to_owned()],
            ),
        ]);
        assert_eq!(tier2, expected);
        // The app's hook reads its synced Secret, and the RDS endpoint for the host the
        // Secret does not name: no Secrets Manager.
        let backstage = statements(&iam_policy(&app_plan("backstage")).expect("rds"));
        assert_eq!(
            backstage,
            [(
                "arn:aws:rds:*:*:db:goldenpath-dev".to_owned(),
                vec!["rds:DescribeDBInstances".to_owned()]
            )]
        );
    }
}
