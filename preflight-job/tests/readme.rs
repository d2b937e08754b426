//! Every command README.md shows works as written, or the README says what it needs.
//!
//! The commands are read from the README itself: each line of its `sh` code blocks (`\`
//! continuations joined, trailing comments dropped), and each inline code span that starts a
//! command (`preflight …`, `cargo …`, `kubectl …`, `aws …`, `./…`). Each must be listed in
//! [`COMMANDS`], either to run or as exempt with the reason, so that a command added to the
//! README without being classified here fails this test, and so does a listed one the README no
//! longer shows.
//!
//! The commands that need no real cluster or cloud account are run by `sh -c`, exactly as
//! written, from a scratch directory that has the repository's `examples/` and `hooks/` (so
//! that what they write, like `> preflight-policy.json`, stays out of the repository), with
//! `preflight` on the PATH being the binary under test (`cargo run -q -p preflight-job --`,
//! which builds that same binary, is mapped to it), `kubectl` the test virtualenv's, and no
//! kubeconfig, `PREFLIGHT_*` variable or AWS credentials of the caller.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use support::{repo, venv_tool};

/// What a README command is held to.
enum Class {
    /// Run it: it exits `code`, its stdout holds each of `shows`, and the file it writes (when
    /// it redirects into one) holds each of `writes`.
    Run {
        code: i32,
        shows: &'static [&'static str],
        writes: Option<(&'static str, &'static [&'static str])>,
    },
    /// Not run here, and why.
    Exempt(&'static str),
}

use Class::{Exempt, Run};

const NEEDS_A_CLUSTER: &str = "needs a real cluster (the current kubeconfig or a Pod's \
     ServiceAccount); the same runs against the test clusters are in the end-to-end tests";
const TEMPLATE: &str = "a template with placeholders (N, NAME, NS, ENV) in the prose; its \
     instances in the code blocks are run";
const PROSE: &str = "names a command in the prose, not an invocation; its invocations in the \
     code blocks are run";

/// Every command the README shows, with what it is held to.
const COMMANDS: &[(&str, Class)] = &[
    // The quick start.
    (
        "cargo run -q -p preflight-job -- plan --tier 1.5 --values examples/values.yaml",
        Run {
            code: 0,
            shows: &["kube-api", "storage-class", "route53-zone"],
            writes: None,
        },
    ),
    (
        "./scripts/demo.sh --tier 1.5",
        Exempt(
            "starts the fake API server and moto (installing moto from PyPI on its first run) \
             and takes minutes; run by hand, and its pieces are the end-to-end tests",
        ),
    ),
    (
        "./scripts/demo.sh --tier 1",
        Exempt("the demo again, for tier 1: see ./scripts/demo.sh --tier 1.5"),
    ),
    (
        "./tests/run.sh",
        Exempt("the whole test suite, this test included: running it here would recurse"),
    ),
    (
        "cargo run -q -p preflight-job -- --tier 1.5 --values examples/values.yaml",
        Exempt(NEEDS_A_CLUSTER),
    ),
    ("preflight --tier 1.5", Exempt(NEEDS_A_CLUSTER)),
    (
        "cargo install --locked --path preflight-job",
        Exempt(
            "installs into ~/.cargo/bin, a release build of minutes; this test runs the same \
             binary, built by cargo for it",
        ),
    ),
    // Who runs it, where.
    (
        "preflight --tier 2 --output human --output junit=preflight.xml --output github",
        Exempt(NEEDS_A_CLUSTER),
    ),
    ("preflight --tier 2", Exempt(NEEDS_A_CLUSTER)),
    ("preflight --tier N", Exempt(TEMPLATE)),
    ("preflight --app NAME", Exempt(TEMPLATE)),
    ("preflight plan", Exempt(PROSE)),
    ("kubectl wait", Exempt(PROSE)),
    ("kubectl logs", Exempt(PROSE)),
    ("aws eks get-token", Exempt(PROSE)),
    ("cargo fuzz", Exempt(PROSE)),
    (
        "cargo run -p preflight-core --example custom_gate",
        Exempt(
            "runs against the current kubeconfig's cluster; the same code runs in the crate's \
             doc test against no cluster, and the example is built and its judge tested by the \
             suite",
        ),
    ),
    // Run as an ArgoCD hook.
    (
        "kubectl kustomize hooks/tier-2/job",
        Run {
            code: 0,
            shows: &["kind: Job", "name: preflight-tier-2", "- --tier"],
            writes: None,
        },
    ),
    (
        "kubectl kustomize hooks/tier-2/pod",
        Run {
            code: 0,
            shows: &["kind: Pod", "name: preflight-tier-2"],
            writes: None,
        },
    ),
    (
        "kubectl kustomize hooks/apps/backstage/job",
        Run {
            code: 0,
            shows: &[
                "kind: Job",
                "name: preflight-backstage",
                "namespace: backstage",
            ],
            writes: None,
        },
    ),
    (
        "kubectl kustomize hooks/apps/oidc-config/pod",
        Run {
            code: 0,
            shows: &[
                "kind: Pod",
                "name: preflight-oidc-config",
                "namespace: keycloak",
            ],
            writes: None,
        },
    ),
    ("kubectl kustomize", Exempt(PROSE)),
    ("preflight rbac --tier N", Exempt(TEMPLATE)),
    (
        "scripts/update-hooks.sh",
        Exempt(
            "rewrites hooks/*/rbac/rbac.yaml in place; hooks.rs (the_committed_rbac_is_what_preflight_prints) \
         holds the committed files equal to what it would write",
        ),
    ),
    ("preflight iam-policy --tier N --env ENV", Exempt(TEMPLATE)),
    (
        "preflight rbac --tier 2 --namespace argocd",
        Run {
            code: 0,
            shows: &[
                "# The RBAC of preflight's tier-2 gate on a persistent cluster",
                "kind: ServiceAccount",
                "name: preflight-tier-2\n  namespace: argocd",
                "kind: ClusterRoleBinding",
            ],
            writes: None,
        },
    ),
    (
        "preflight iam-policy --tier 2 --env prod > preflight-policy.json",
        Run {
            code: 0,
            shows: &[],
            writes: Some((
                "preflight-policy.json",
                &[
                    "\"Version\": \"2012-10-17\"",
                    "rds:DescribeDBInstances",
                    "goldenpath-prod",
                ],
            )),
        },
    ),
    (
        "aws iam put-role-policy --role-name preflight --policy-name preflight --policy-document file://preflight-policy.json",
        Exempt("changes a role in a real AWS account"),
    ),
    (
        "preflight iam-policy --app backstage --env ENV",
        Exempt(TEMPLATE),
    ),
    (
        "kubectl -n argocd logs job/preflight-tier-1-5",
        Exempt(NEEDS_A_CLUSTER),
    ),
    // Run in CI.
    (
        "preflight --tier \"$TIER\" --wait 5m --output human --output github --output junit=preflight-junit.xml --output json=preflight.json",
        Exempt(
            "the CI workflow's step, against the cluster CI reaches; the workflow is linted \
             and its step run by ci_example.rs",
        ),
    ),
    // Run locally.
    (
        "preflight plan --tier 2 --values examples/values-persistent.yaml",
        Run {
            code: 0,
            shows: &["postgres", "rds-instance", "cluster-secret-store"],
            writes: None,
        },
    ),
    (
        "preflight --tier 1 --skip route53-zone --skip dns-scope",
        Exempt(NEEDS_A_CLUSTER),
    ),
    (
        "PREFLIGHT_PG_PASSWORD=… preflight --no-cluster-values --values examples/values-persistent.yaml --tier 2 --check postgres --pg-host goldenpath-prod.abc.eu-west-1.rds.amazonaws.com --pg-user backstage_app --pg-database backstage_plugin_catalog --pg-require-createdb",
        Exempt(
            "logs in to a real RDS instance with a real password; postgres.rs runs the same \
             flags against its own PostgreSQL",
        ),
    ),
    // Benchmark.
    (
        "cargo bench -p preflight-job --bench cluster",
        Exempt("a benchmark of minutes; its ratios are reported, not asserted here"),
    ),
    (
        "cargo bench -p preflight-job --bench tiers",
        Exempt("a benchmark of minutes, after ./tests/run.sh installed moto, curl and netcat"),
    ),
    (
        "cargo bench -p preflight-job --bench cpu",
        Exempt("a benchmark of minutes under valgrind; its counts are reported, not asserted"),
    ),
    ("kubectl get nodes -o name", Exempt(NEEDS_A_CLUSTER)),
    ("kubectl get nodes -o json", Exempt(NEEDS_A_CLUSTER)),
    (
        "kubectl -n argocd describe pod -l job-name=preflight-tier-1-5",
        Exempt(NEEDS_A_CLUSTER),
    ),
    ("preflight --tier N --wait 5m", Exempt(TEMPLATE)),
    ("preflight rbac", Exempt(PROSE)),
    ("preflight iam-policy", Exempt(PROSE)),
    // Layout.
    ("./scripts/test-venv.sh", Exempt(TEST_VENV)),
    ("scripts/test-venv.sh", Exempt(TEST_VENV)),
    (
        "scripts/kube-control-plane.sh",
        Exempt(
            "builds kube-apiserver and etcd with Go (minutes, once per machine); \
             tests/run.sh runs it before the tests",
        ),
    ),
];

const TEST_VENV: &str = "installs the test tools from PyPI into target/test-venv; tests/run.sh \
     runs it before the tests, and this test's kubectl comes from it";

/// Languages of the code blocks that hold commands; a block without a language is output.
const SHELL: [&str; 4] = ["sh", "bash", "shell", "console"];

/// Drops a trailing `# comment` (a `#` after whitespace, outside quotes).
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double, mut prev_space) = (false, false, true);
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev_space => return line[..i].trim_end(),
            _ => {}
        }
        prev_space = c.is_whitespace();
    }
    line.trim_end()
}

fn normalized(command: &str) -> String {
    command.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether an inline code span is a command, as opposed to a name, a path or an id.
fn is_command(span: &str) -> bool {
    let mut words = span.split_whitespace();
    let (Some(first), second) = (words.next(), words.next()) else {
        return false;
    };
    match first {
        "preflight" => second.is_some_and(|w| {
            w.starts_with('-') || ["plan", "run", "rbac", "iam-policy"].contains(&w)
        }),
        "cargo" | "kubectl" | "aws" => second.is_some(),
        _ => first.starts_with("./") || (first.starts_with("scripts/") && first.ends_with(".sh")),
    }
}

/// The commands of README.md: every line of its shell code blocks, then every inline command.
fn readme_commands(readme: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut prose = String::new();
    let mut block: Option<String> = None;
    let mut pending = String::new();
    for line in readme.lines() {
        if let Some(fence) = line.trim_start().strip_prefix("```") {
            block = match block {
                None => Some(fence.trim().to_owned()),
                Some(_) => None,
            };
            continue;
        }
        match &block {
            None => {
                prose.push_str(line);
                prose.push('\n');
            }
            Some(lang) if SHELL.contains(&lang.as_str()) => {
                let line = strip_comment(line.trim());
                if line.is_empty() && pending.is_empty() {
                    continue;
                }
                match line.strip_suffix('\\') {
                    Some(part) => {
                        pending.push_str(part);
                        pending.push(' ');
                    }
                    None => {
                        pending.push_str(line);
                        commands.push(normalized(&pending));
                        pending.clear();
                    }
                }
            }
            Some(lang) => assert!(
                lang.is_empty(),
                "README.md: a code block in {lang:?}: neither shell commands nor plain output"
            ),
        }
    }
    assert!(block.is_none(), "README.md: a code block is not closed");
    // Inline code spans may wrap across lines: the odd pieces between backticks.
    for span in prose.split('`').skip(1).step_by(2) {
        let span = normalized(span);
        if is_command(&span) {
            commands.push(span);
        }
    }
    commands
}

/// Runs one README command as written, from `dir`, with `preflight` and `kubectl` on the PATH.
fn run_as_written(command: &str, dir: &Path) -> std::process::Output {
    let script = match command.strip_prefix("cargo run -q -p preflight-job -- ") {
        Some(rest) => format!("preflight {rest}"),
        None => command.to_owned(),
    };
    let path = format!(
        "{}:{}",
        dir.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(&script).current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("PREFLIGHT_")
            || key.starts_with("AWS_")
            || key.starts_with("GITHUB_")
            || key == "KUBECONFIG"
        {
            cmd.env_remove(key);
        }
    }
    cmd.env("PATH", path)
        .env("HOME", dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("sh -c {script:?}: {e}"))
}

#[test]
fn every_readme_command_works_as_written_or_is_exempt_with_its_reason() {
    let readme = std::fs::read_to_string(repo("README.md")).expect("README.md");
    let shown = readme_commands(&readme);
    let known: Vec<&str> = COMMANDS.iter().map(|(c, _)| *c).collect();

    let unknown: BTreeSet<&String> = shown
        .iter()
        .filter(|c| !known.contains(&c.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "README.md shows commands this test does not know: add each to COMMANDS, to run or as \
         exempt with the reason:\n  {}",
        unknown
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join("\n  ")
    );
    let stale: Vec<&str> = known
        .iter()
        .copied()
        .filter(|c| !shown.iter().any(|s| s == c))
        .collect();
    assert!(
        stale.is_empty(),
        "COMMANDS lists commands README.md no longer shows: {stale:?}"
    );

    // The scratch directory the commands run from.
    let dir = tempfile::tempdir().unwrap();
    for name in ["examples", "hooks"] {
        std::os::unix::fs::symlink(repo(name), dir.path().join(name)).unwrap();
    }
    std::fs::create_dir(dir.path().join("bin")).unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_preflight"),
        dir.path().join("bin/preflight"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        venv_tool("kubectl", "PREFLIGHT_KUBECTL"),
        dir.path().join("bin/kubectl"),
    )
    .unwrap();

    let mut ran = 0;
    for (command, class) in COMMANDS {
        if let Exempt(reason) = class {
            assert!(
                !reason.trim().is_empty(),
                "`{command}` is exempt without a reason"
            );
        }
        let Run {
            code,
            shows,
            writes,
        } = class
        else {
            continue;
        };
        let out = run_as_written(command, dir.path());
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(
            out.status.code(),
            Some(*code),
            "README.md: `{command}` exited {} (expected {code}):\n{stderr}",
            out.status
        );
        for text in *shows {
            assert!(
                stdout.contains(text),
                "README.md: `{command}` printed no {text:?}:\n{stdout}"
            );
        }
        if let Some((file, texts)) = writes {
            let written = std::fs::read_to_string(dir.path().join(file))
                .unwrap_or_else(|e| panic!("README.md: `{command}` wrote no {file}: {e}"));
            for text in *texts {
                assert!(
                    written.contains(text),
                    "README.md: `{command}` wrote no {text:?} into {file}:\n{written}"
                );
            }
        }
        ran += 1;
    }
    assert!(ran >= 8, "only {ran} commands ran");
}

/// The reader itself: continuations joined, comments dropped (not `#` inside quotes or words),
/// output blocks skipped, inline commands found across line breaks, names and paths not taken
/// for commands.
#[test]
fn the_readme_reader_finds_commands_and_only_commands() {
    let text = "Run `preflight --tier N` (or `--app\nNAME`), see `preflight` and `tests/`.\n\
        ```sh\n\
        # a comment\n\
        preflight rbac --tier 2   # trailing\n\
        preflight --tier \"$T\" \\\n  --output json  # x\n\
        echo 'a # b'\n\
        ```\n\
        ```\n\
        preflight tier 1.5: FAILED (exit 1)\n\
        ```\n\
        `./scripts/demo.sh --tier 1` and `preflight ingress-class (ingress-class-missing)`\n";
    assert_eq!(
        readme_commands(text),
        [
            "preflight rbac --tier 2",
            "preflight --tier \"$T\" --output json",
            "echo 'a # b'",
            "preflight --tier N",
            "./scripts/demo.sh --tier 1",
        ]
    );
}
