//! hooks/: every overlay rendered offline with `kubectl kustomize`, and checked for what an
//! ArgoCD hook must be: the hook annotations and a wave between what it checks and what needs
//! it, the tier or app passed to preflight, namespaces that exist at its moment, a deadline above preflight's own, a restrictive security
//! context, small resources, and exactly the RBAC `preflight rbac` prints for that hook.

mod support;

use serde_json::{Value, json};
use support::*;

/// One hook: its directory under hooks/, the arguments it passes preflight, the `preflight
/// rbac` arguments of its RBAC, its namespace, its phase, and the waves it must lie between in
/// its Application: after `after` (what it checks is there), before `before` (what needs it).
struct Hook {
    dir: &'static str,
    args: [&'static str; 2],
    rbac: &'static [&'static str],
    namespace: &'static str,
    phase: &'static str,
    after: i64,
    before: i64,
}

/// Every hook. A tier's gate goes in the app-of-apps at the wave before the tier's first app
/// and after the last app of the tiers below (brief §1: tier 1 10–40, tier 1.5 50–52, tier 2
/// 100–102, tier 3 200–201). An app's own hook goes in the app's Application: backstage's
/// after its ExternalSecret (wave -2) and before its workloads (0); oidc-config's is a
/// PreSync hook, which runs before everything it syncs.
const HOOKS: [Hook; 7] = [
    gate("tier-0", "0", i64::MIN, 10),
    gate("tier-1", "1", i64::MIN, 10),
    gate("tier-1-5", "1.5", 40, 50),
    gate("tier-2", "2", 52, 100),
    gate("tier-3", "3", 102, 200),
    Hook {
        dir: "apps/backstage",
        args: ["--app", "backstage"],
        rbac: &["--app", "backstage", "--namespace", "backstage"],
        namespace: "backstage",
        phase: "Sync",
        after: -2,
        before: 0,
    },
    Hook {
        dir: "apps/oidc-config",
        args: ["--app", "oidc-config"],
        rbac: &["--app", "oidc-config", "--namespace", "keycloak"],
        namespace: "keycloak",
        phase: "PreSync",
        after: i64::MIN,
        before: i64::MAX,
    },
];

const fn gate(dir: &'static str, tier: &'static str, after: i64, before: i64) -> Hook {
    Hook {
        dir,
        args: ["--tier", tier],
        rbac: &[],
        namespace: "argocd",
        phase: "PreSync",
        after,
        before,
    }
}

impl Hook {
    /// `preflight rbac` for this hook.
    fn rbac_command(&self) -> tokio::process::Command {
        let mut cmd = preflight_cmd();
        cmd.arg("rbac");
        if self.rbac.is_empty() {
            cmd.args(self.args);
        } else {
            cmd.args(self.rbac);
        }
        cmd.arg("--values")
            .arg(repo("examples/values-persistent.yaml"));
        cmd
    }

    fn account(&self) -> String {
        format!("preflight-{}", self.dir.trim_start_matches("apps/"))
    }
}

/// Namespaces and the sync wave of the app that creates each, as the platform lays them out;
/// `None`: there before ArgoCD syncs anything.
const NAMESPACES: [(&str, Option<i64>); 10] = [
    ("default", None),
    ("kube-system", None),
    ("argocd", None),
    ("external-secrets", Some(10)),
    ("cert-manager", Some(10)),
    ("external-dns", Some(20)),
    ("kong", Some(30)),
    ("monitoring", Some(50)),
    ("backstage", Some(100)),
    ("keycloak", Some(200)),
];

/// Whether `namespace` exists when `hook` runs on a first sync: it is foundation, or an app of
/// an earlier wave created it; an app's Sync-phase hook also has the app's own namespace,
/// which ArgoCD creates when the app's sync starts.
fn exists_at(hook: &Hook, namespace: &str) -> bool {
    let Some((_, created)) = NAMESPACES.iter().find(|(ns, _)| *ns == namespace) else {
        panic!(
            "{}: namespace {namespace} is not one the platform creates",
            hook.dir
        )
    };
    let Some(wave) = created else {
        return true;
    };
    if hook.phase == "Sync" && namespace == hook.namespace {
        return true;
    }
    match hook.args {
        // A gate runs before its tier's first wave.
        ["--tier", _] => *wave < hook.before,
        ["--app", app] => {
            let app_wave = match app {
                "backstage" => 100,
                "oidc-config" => 201,
                other => panic!("no wave known for app {other}"),
            };
            *wave < app_wave
        }
        _ => unreachable!(),
    }
}

/// No hook creates a namespaced object in a namespace that its own tier, or a later one,
/// creates: on a first sync that namespace does not exist yet and ArgoCD cannot create the hook.
#[test]
fn every_hook_creates_objects_only_in_namespaces_that_exist_at_its_moment() {
    for hook in &HOOKS {
        for kind in ["job", "pod"] {
            for doc in render(&format!("hooks/{}/{kind}", hook.dir)) {
                let Some(ns) = doc["metadata"]["namespace"].as_str() else {
                    continue;
                };
                assert!(
                    exists_at(hook, ns),
                    "hooks/{}/{kind}: {} {} in namespace {ns}, which does not exist yet when the hook runs",
                    hook.dir,
                    doc["kind"],
                    doc["metadata"]["name"]
                );
            }
        }
    }
    // The rule has teeth: tier 1's gate may not touch tier 1's namespaces.
    assert!(!exists_at(&HOOKS[1], "external-secrets"));
    assert!(exists_at(&HOOKS[2], "external-secrets"));
    assert!(exists_at(&HOOKS[5], "backstage"));
    assert!(
        !exists_at(&HOOKS[4], "keycloak"),
        "tier 3's gate runs before Keycloak"
    );
}

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
async fn every_overlay_renders_a_restricted_hook_with_the_rbac_of_its_plan() {
    for hook in &HOOKS {
        let dir = hook.dir;
        let rbac = run(hook.rbac_command()).await;
        assert_eq!(rbac.code, 0, "{}", rbac.stderr);
        let expected_rbac = sorted(documents(&rbac.stdout));
        let account = hook.account();

        for kind in ["Job", "Pod"] {
            let docs = render(&format!("hooks/{dir}/{}", kind.to_lowercase()));
            let (workloads, rest): (Vec<Value>, Vec<Value>) =
                docs.into_iter().partition(|d| d["kind"] == kind);
            let [workload] = workloads.as_slice() else {
                panic!("{dir}/{kind}: one {kind}")
            };
            let hook_wave = wave_of(workload);
            // The RBAC is a hook of the same phase, one wave earlier: it exists when the hook
            // starts.
            let rbac: Vec<Value> = rest
                .into_iter()
                .map(|mut d| {
                    let notes = d["metadata"]["annotations"]
                        .as_object_mut()
                        .expect("annotations");
                    assert_eq!(
                        notes.remove("argocd.argoproj.io/hook"),
                        Some(json!(hook.phase)),
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
                "{dir}/{kind}: the RBAC is exactly `preflight rbac {}`",
                hook.args.join(" ")
            );
            let meta = &workload["metadata"];
            assert_eq!(meta["name"], account);
            assert_eq!(meta["namespace"], hook.namespace);
            let notes = &meta["annotations"];
            assert_eq!(notes["argocd.argoproj.io/hook"], hook.phase);
            assert_eq!(
                notes["argocd.argoproj.io/hook-delete-policy"],
                "BeforeHookCreation,HookSucceeded"
            );
            assert!(
                hook.after < hook_wave && hook_wave < hook.before,
                "{dir}: wave {hook_wave} lies after {} and before {}",
                hook.after,
                hook.before
            );

            let pod = if kind == "Job" {
                assert_eq!(
                    workload["spec"]["backoffLimit"], 0,
                    "preflight retries inside"
                );
                &workload["spec"]["template"]["spec"]
            } else {
                &workload["spec"]
            };
            let deadline = if kind == "Job" {
                &workload["spec"]["activeDeadlineSeconds"]
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
            assert_eq!(&args[..2], hook.args, "{dir}/{kind}");
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
    for hook in &HOOKS {
        let rbac = run(hook.rbac_command()).await;
        assert_eq!(rbac.code, 0, "{}", rbac.stderr);
        let committed =
            std::fs::read_to_string(repo(&format!("hooks/{}/rbac/rbac.yaml", hook.dir))).unwrap();
        let body: String = committed
            .lines()
            .skip(1)
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            body, rbac.stdout,
            "hooks/{}/rbac/rbac.yaml is stale: run scripts/update-hooks.sh",
            hook.dir
        );
    }
}
