//! The example CI workflow (examples/ci/preflight.yml): actionlint passes, and it runs preflight
//! with JUnit and GitHub outputs, uploads the reports whatever happened, and fails the job
//! when preflight did not pass.

mod support;

use serde_json::Value;
use support::{assert_lint_passes, repo, venv_tool};

const WORKFLOW: &str = "examples/ci/preflight.yml";

#[test]
fn actionlint_passes() {
    let actionlint = venv_tool("actionlint", "PREFLIGHT_ACTIONLINT");
    assert_lint_passes(&actionlint, &[], WORKFLOW);
}

#[test]
fn it_reports_uploads_and_fails_on_a_failed_check() {
    let text = std::fs::read_to_string(repo(WORKFLOW)).expect("the workflow");
    let workflow: Value = serde_saphyr::from_str(&text).expect("YAML");
    let steps = workflow["jobs"]["preflight"]["steps"]
        .as_array()
        .expect("steps");
    let run_of = |id: &str| {
        steps
            .iter()
            .find(|s| s["id"] == id)
            .and_then(|s| s["run"].as_str())
            .unwrap_or_default()
    };
    let run = run_of("preflight");
    for flag in [
        "--tier \"$TIER\"",
        "--output github",
        "--output junit=preflight-junit.xml",
    ] {
        assert!(run.contains(flag), "{flag} in {run}");
    }
    assert!(
        run.contains("exit-code=$?"),
        "the exit code is kept for the last step: {run}"
    );

    let upload = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
        })
        .expect("an upload step");
    assert_eq!(upload["if"], "always()");
    assert!(
        upload["with"]["path"]
            .as_str()
            .unwrap()
            .contains("preflight-junit.xml")
    );

    let last = steps.last().expect("steps");
    assert_eq!(last["if"], "steps.preflight.outputs.exit-code != '0'");
    let script = last["run"].as_str().expect("a script");
    assert!(
        script.contains("1) echo \"::error") && script.trim_end().ends_with("exit 1"),
        "{script}"
    );
}
