//! hooks/: every overlay rendered offline with `kubectl kustomize`, and checked for what an
//! ArgoCD PreSync hook must be: the hook annotations and a wave before its tier's first app,
//! the tier passed to preflight, a deadline above preflight's own, a restrictive security
//! context, small resources, and exactly the RBAC `preflight rbac` prints for that tier.

mod support;

use std::process::Command;

use serde_json::{Value, json};
use support::*;

fn documents(yaml: &str) -> Vec<Value> {
    yaml.split("\n---\n")
        .map(|d| {
            d.lines()
                .filter(|l| !l.starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_saphyr::from_str(&d).unwrap_or_else(|e| panic!("{e}\n{d}")))
        .collect()
}

fn render(dir: &str) -> Vec<Value> {
    let kubectl = venv_tool("kubectl", "PREFLIGHT_KUBECTL");
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(repo(dir))
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "{dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    documents(&String::from_utf8_lossy(&out.stdout))
}

/// Each tier, its directory and the first sync wave of its apps (brief, section 1).
const TIERS: [(&str, &str, i64); 5] = [
    ("0", "tier-0", 0),
    ("1", "tier-1", 10),
    ("1.5", "tier-1-5", 50),
    ("2", "tier-2", 100),
    ("3", "tier-3", 200),
];

fn wave_of(doc: &Value) -> i64 {
    doc["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]
        .as_str()
        .and_then(|w| w.parse().ok())
        .expect("a sync wave")
}

fn sorted(mut docs: Vec<Value>) -> Vec<Value> {
    docs.sort_by_key(|d| d.to_string());
    docs
}

#[tokio::test(flavor = "multi_thread")]
async fn every_overlay_renders_a_restricted_hook_with_the_rbac_of_its_tier() {
    for (tier, dir, first_wave) in TIERS {
        let mut cmd = preflight_cmd();
        cmd.args(["rbac", "--tier", tier, "--values"])
            .arg(repo("examples/values-persistent.yaml"));
        let rbac = run(cmd).await;
        assert_eq!(rbac.code, 0, "{}", rbac.stderr);
        let expected_rbac = sorted(documents(&rbac.stdout));
        let account = format!("preflight-{dir}");

        for kind in ["Job", "Pod"] {
            let docs = render(&format!("hooks/{dir}/{}", kind.to_lowercase()));
            let (workloads, rest): (Vec<Value>, Vec<Value>) =
                docs.into_iter().partition(|d| d["kind"] == kind);
            let [hook] = workloads.as_slice() else {
                panic!("{dir}/{kind}: one {kind}")
            };
            let hook_wave = wave_of(hook);
            // The RBAC is a PreSync hook too, one wave earlier: it exists when the hook starts.
            let rbac: Vec<Value> = rest
                .into_iter()
                .map(|mut d| {
                    let notes = d["metadata"]["annotations"]
                        .as_object_mut()
                        .expect("annotations");
                    assert_eq!(
                        notes.remove("argocd.argoproj.io/hook"),
                        Some(json!("PreSync")),
                        "{d}"
                    );
                    let wave: i64 = notes
                        .remove("argocd.argoproj.io/sync-wave")
                        .and_then(|w| w.as_str()?.parse().ok())
                        .expect("a wave");
                    assert!(
                        wave < hook_wave,
                        "{dir}: RBAC at wave {wave}, before the hook's {hook_wave}"
                    );
                    notes.remove("argocd.argoproj.io/hook-delete-policy");
                    if notes.is_empty() {
                        d["metadata"]
                            .as_object_mut()
                            .expect("metadata")
                            .remove("annotations");
                    }
                    d
                })
                .collect();
            assert_eq!(
                sorted(rbac),
                expected_rbac,
                "{dir}/{kind}: the RBAC is exactly `preflight rbac --tier {tier}`"
            );
            let meta = &hook["metadata"];
            assert_eq!(meta["name"], account);
            assert_eq!(meta["namespace"], "argocd");
            let notes = &meta["annotations"];
            assert_eq!(notes["argocd.argoproj.io/hook"], "PreSync");
            assert_eq!(
                notes["argocd.argoproj.io/hook-delete-policy"],
                "BeforeHookCreation,HookSucceeded"
            );
            let wave = hook_wave;
            assert!(
                wave < first_wave,
                "{dir}: wave {wave} runs before the tier's first app at {first_wave}"
            );

            let pod = if kind == "Job" {
                assert_eq!(hook["spec"]["backoffLimit"], 0, "preflight retries inside");
                &hook["spec"]["template"]["spec"]
            } else {
                &hook["spec"]
            };
            let deadline = if kind == "Job" {
                &hook["spec"]["activeDeadlineSeconds"]
            } else {
                &pod["activeDeadlineSeconds"]
            };
            let container = &pod["containers"][0];
            let args: Vec<&str> = container["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            assert_eq!(&args[..2], ["--tier", tier], "{dir}/{kind}");
            let wait = args
                .iter()
                .position(|a| *a == "--wait")
                .map(|i| humantime::parse_duration(args[i + 1]).unwrap())
                .expect("--wait");
            assert!(
                deadline.as_u64().unwrap() > wait.as_secs(),
                "{dir}/{kind}: the deadline is above preflight's --wait"
            );

            assert_eq!(pod["serviceAccountName"], account);
            assert_eq!(pod["restartPolicy"], "Never");
            assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
            assert_eq!(
                pod["securityContext"]["seccompProfile"]["type"],
                "RuntimeDefault"
            );
            let security = &container["securityContext"];
            assert_eq!(security["allowPrivilegeEscalation"], false);
            assert_eq!(security["readOnlyRootFilesystem"], true);
            assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
            for (what, key) in [
                ("requests", "cpu"),
                ("requests", "memory"),
                ("limits", "cpu"),
                ("limits", "memory"),
            ] {
                assert!(
                    container["resources"][what][key].is_string(),
                    "{dir}/{kind}: resources.{what}.{key}"
                );
            }
            assert_eq!(container["terminationMessagePath"], "/dev/termination-log");
        }
    }
}

/// The committed RBAC files are the generator's output, so `scripts/update-hooks.sh` is the
/// only way to change them.
#[tokio::test(flavor = "multi_thread")]
async fn the_committed_rbac_is_what_preflight_prints() {
    for (tier, dir, _) in TIERS {
        let mut cmd = preflight_cmd();
        cmd.args(["rbac", "--tier", tier, "--values"])
            .arg(repo("examples/values-persistent.yaml"));
        let rbac = run(cmd).await;
        let committed =
            std::fs::read_to_string(repo(&format!("hooks/{dir}/rbac/rbac.yaml"))).unwrap();
        let body: String = committed
            .lines()
            .skip(1)
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            body, rbac.stdout,
            "hooks/{dir}/rbac/rbac.yaml is stale: run scripts/update-hooks.sh"
        );
    }
}
