//! Machine-readable output: the report (schema [`SCHEMA`](super::SCHEMA)) and the plan (schema
//! [`PLAN_SCHEMA`]). Both are APIs: fields are camelCase and only ever added to within a
//! schema version.

use serde::Serialize;

use super::{ClusterSummary, Report};
use crate::check::Family;
use crate::contract::Values;
use crate::plan::{LeftOut, Plan};
use crate::platform::{NeededBy, Provider, Scope};
use crate::tier::Tier;

/// The plan's schema id; bumped on any incompatible change.
const PLAN_SCHEMA: &str = "preflight.plan/v1";

/// Pretty JSON with a final newline, so the file ends like any text file.
fn pretty<T: Serialize>(value: &T) -> String {
    // These types hold only strings, numbers, booleans and string-keyed maps, which
    // serde_json always serialises; the fallback is unreachable, and an empty document is
    // better than a panic after a run whose verdict is already known.
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// The report as pretty JSON (schema [`SCHEMA`](super::SCHEMA)).
#[must_use]
pub fn json(report: &Report) -> String {
    pretty(report)
}

/// One planned check. `Plan` holds the checks themselves (trait objects), so the document
/// copies the parts a reader needs.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PlannedCheck<'a> {
    id: &'static str,
    tier: Tier,
    title: &'a str,
    /// The system it talks to, so a reader can tell what access the run needs.
    family: Family,
    /// What makes what it verifies true: the foundation, or an app of a lower tier.
    provided_by: &'a Provider,
    /// The tiers whose gates and the apps whose hooks need it.
    needed_by: &'a NeededBy,
    /// Planned checks that must pass first; a failure of one blocks this check.
    needs: &'a [&'static str],
    /// False for an advisory check, whose failure does not fail the run.
    required: bool,
}

/// The plan document (schema [`PLAN_SCHEMA`]).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PlanDoc<'a> {
    schema: &'static str,
    /// A tier's gate, or an app's hook.
    scope: Scope,
    tier: Tier,
    tier_name: &'static str,
    /// The same cluster object as the report's, ceiling and its rule included.
    cluster: ClusterSummary,
    checks: Vec<PlannedCheck<'a>>,
    left_out: &'a [LeftOut],
}

/// The plan as pretty JSON (schema `preflight.plan/v1`): every check that would run, by tier,
/// with what it needs and whether it is advisory; every check left out, with the reason; and
/// the cluster with its ceiling and the rule that set it.
#[must_use]
pub fn plan_json(plan: &Plan, values: &Values) -> String {
    let mut cluster = ClusterSummary::from(values);
    // The plan's ceiling is the one it was checked against; today it is a copy of the
    // values', but the document must say what the plan used.
    cluster.ceiling = plan.ceiling.clone();
    pretty(&PlanDoc {
        schema: PLAN_SCHEMA,
        scope: plan.scope,
        tier: plan.tier,
        tier_name: plan.tier.name(),
        cluster,
        checks: plan
            .checks
            .iter()
            .map(|e| PlannedCheck {
                id: e.meta.id,
                tier: e.meta.tier,
                title: &e.meta.title,
                family: e.meta.family,
                provided_by: &e.meta.provided_by,
                needed_by: &e.meta.needed_by,
                needs: &e.meta.needs,
                required: e.meta.required,
            })
            .collect(),
        left_out: &plan.left_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::platform::Scope;
    use crate::report::SCHEMA;
    use crate::report::tests::{failing_report, test_values};

    #[test]
    fn the_report_carries_the_schema_and_the_verdict() {
        let text = json(&failing_report());
        assert!(text.ends_with("}\n"));
        let value: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(value["schema"], SCHEMA);
        assert_eq!(
            (value["verdict"].as_str(), value["exitCode"].as_i64()),
            (Some("failed"), Some(1))
        );
        assert_eq!(value["checks"][3]["blockedBy"], "crds");
        assert_eq!(value["checks"][2]["code"], "crds-missing");
        assert_eq!(value["checks"][5]["settled"], false);
        assert_eq!(value["durationMs"], 1234);
        assert_eq!(value["startedAt"], "2026-01-23T10:00:00Z");
        assert_eq!(
            value["leftOut"][0]["reason"],
            "disabled in the config (disable)"
        );
    }

    #[test]
    fn the_plan_is_a_stable_camel_case_document() {
        let values = test_values();
        let plan = crate::plan::plan(
            &values,
            &Config::default(),
            Scope::Gate(Tier::One),
            &crate::plan::Selection::default(),
        )
        .expect("plans");
        let text = plan_json(&plan, &values);
        insta::assert_snapshot!(text);
        let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(doc["schema"], PLAN_SCHEMA);
        assert_eq!(doc["tier"], "1");
        assert_eq!(doc["cluster"]["ceiling"]["tier"], "1.5");
        assert_eq!(
            doc["cluster"]["hostSuffix"],
            "b-26-01-23-01.dev.goldenpathidp.io"
        );
        assert_eq!(doc["checks"].as_array().map(Vec::len), Some(10));
        assert_eq!(doc["checks"][1]["needs"][0], "kube-api");
        assert_eq!(doc["checks"][1]["required"], true);
        assert_eq!(doc["checks"][4]["providedBy"]["kind"], "foundation");
        assert_eq!(doc["checks"][4]["neededBy"]["tier"], "1");
        let crds = doc["leftOut"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["id"] == "crds"))
            .expect("crds left out");
        assert_eq!(crds["reason"], "above the requested tier 1");
        assert_eq!(crds["neededBy"]["tier"], "1.5");
    }

    /// Closes every object schema that lists its properties.
    fn closed(schema: &mut serde_json::Value) {
        if let Some(object) = schema.as_object_mut() {
            if object.contains_key("properties") && object.get("type") == Some(&"object".into()) {
                object.insert("additionalProperties".into(), false.into());
            }
            object.values_mut().for_each(closed);
        } else if let Some(items) = schema.as_array_mut() {
            items.iter_mut().for_each(closed);
        }
    }

    /// Every way a check can end, in one report, is valid under the published schema; and
    /// the schema is strict enough to reject a state without the field that goes with it.
    #[test]
    fn reports_follow_the_published_json_schema() {
        use std::time::Duration;

        use crate::result::{CheckResult, Cut, End};

        let mut schema: serde_json::Value =
            serde_json::from_str(crate::report::JSON_SCHEMA).expect("the schema is JSON");
        // The published schema is open, as readers of a growing v1 need; closed here, so that
        // a field the report writes but the schema does not describe fails this test.
        closed(&mut schema);
        let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
        let mut report = failing_report();
        let template = report.checks[0].clone();
        for end in [
            End::TimedOut {
                limit: Duration::from_secs(10),
            },
            End::Crashed,
            End::Unsettled {
                last: None,
                cut_by: Cut::Interruption,
            },
            End::Blocked {
                by: "crds",
                settled: false,
            },
        ] {
            report.checks.push(CheckResult {
                end,
                ..template.clone()
            });
        }
        report.app = Some("backstage");
        let value: serde_json::Value = serde_json::from_str(&json(&report)).expect("json");
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        let passing: serde_json::Value =
            serde_json::from_str(&json(&crate::report::tests::passing_report())).expect("json");
        assert!(validator.is_valid(&passing));

        for (path, broken) in [
            ("/checks/3/blockedBy", serde_json::Value::Null),
            ("/checks/5/cutBy", serde_json::Value::Null),
            ("/checks/6/timeoutMs", serde_json::Value::Null),
            ("/checks/0/state", "finished".into()),
            ("/checks/0/undocumented", true.into()),
            ("/exitCode", 2.into()),
        ] {
            let mut doc = value.clone();
            let (parent, key) = path.rsplit_once('/').expect("a path");
            let object = doc
                .pointer_mut(parent)
                .and_then(serde_json::Value::as_object_mut)
                .expect("an object");
            if broken.is_null() {
                object.remove(key);
            } else {
                object.insert(key.to_owned(), broken);
            }
            assert!(!validator.is_valid(&doc), "{path} broken, still valid");
        }
    }
}
