//! The job image, without a Docker engine: the Dockerfile passes hadolint, has the shape the
//! hooks rely on (multi-stage, dependencies cached apart from the sources, distroless runtime,
//! a fixed non-root UID, no shell needed, OCI labels), and every shared library the binary
//! links is shipped by the runtime base.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use support::{assert_lint_passes, repo, venv_tool};

fn dockerfile() -> String {
    std::fs::read_to_string(repo("Dockerfile")).expect("the Dockerfile")
}

/// The Debian 12 packages of `gcr.io/distroless/cc-debian12`: the base image's libc6 and
/// libssl3, and cc's libgcc-s1, libstdc++6 and libgomp1 (GoogleContainerTools/distroless,
/// base/config.bzl and cc/config.bzl).
const RUNTIME_PACKAGES: [&str; 5] = ["libc6", "libssl3", "libgcc-s1", "libstdc++6", "libgomp1"];

#[test]
fn hadolint_passes() {
    let hadolint = venv_tool("hadolint", "PREFLIGHT_HADOLINT");
    assert_lint_passes(&hadolint, &["--failure-threshold", "style"], "Dockerfile");
}

#[test]
fn the_runtime_stage_is_small_non_root_and_shell_free() {
    let text = dockerfile();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    let froms: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert!(froms.len() >= 2, "multi-stage: {froms:?}");
    assert!(
        froms
            .last()
            .is_some_and(|f| f.starts_with("FROM gcr.io/distroless/cc-debian12:nonroot")),
        "{froms:?}"
    );

    let runtime: Vec<&str> =
        lines[lines.iter().position(|l| Some(l) == froms.last()).unwrap()..].to_vec();
    let user = runtime
        .iter()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER");
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("a numeric UID");
    assert_ne!(uid, 0);
    let job = std::fs::read_to_string(repo("hooks/base/job/job.yaml")).unwrap();
    assert!(
        job.contains(&format!("runAsUser: {uid}")),
        "the hooks run as the image's UID {uid}"
    );
    let entrypoint = runtime
        .iter()
        .find_map(|l| l.strip_prefix("ENTRYPOINT "))
        .expect("an ENTRYPOINT");
    let exec: Vec<String> = serde_json::from_str(entrypoint).expect("exec form: no shell needed");
    assert_eq!(exec, ["/usr/local/bin/preflight"]);
    assert!(
        !runtime.iter().any(|l| l.starts_with("RUN ")),
        "nothing runs in the runtime stage: it has no shell"
    );
    // The system's CAs in OpenSSL's hashed layout, so that preflight reads a CA only when a
    // chain needs it (preflight_core::tls), from the build stage's Debian store, dereferenced.
    assert!(
        runtime.contains(&"COPY --from=build /trust/ /etc/ssl/certs/"),
        "a hashed CA directory: {runtime:?}"
    );
    assert!(
        lines.contains(&"RUN mkdir /trust && cp -L /etc/ssl/certs/*.[0-9] /trust/"),
        "the hash links, copied as files"
    );
    for label in ["title", "description", "version", "licenses", "source"] {
        assert!(
            text.contains(&format!("org.opencontainers.image.{label}=")),
            "OCI label {label}"
        );
    }

    // Dependencies are built in a layer of their own, before the sources are copied.
    let cook = lines
        .iter()
        .position(|l| l.contains("cargo chef cook"))
        .expect("a dependency layer");
    let sources = lines
        .iter()
        .rposition(|l| *l == "COPY . .")
        .expect("the sources");
    assert!(
        cook < sources,
        "dependencies are cooked before the sources arrive"
    );
}

#[test]
fn every_library_the_binary_links_is_in_the_runtime_base() {
    let shipped: BTreeSet<String> = RUNTIME_PACKAGES
        .iter()
        .flat_map(|package| {
            let out = Command::new("dpkg")
                .args(["-L", package])
                .output()
                .expect("dpkg runs");
            assert!(
                out.status.success(),
                "{package} is a Debian 12 package installed here"
            );
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| {
                    Path::new(l)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let out = Command::new("ldd")
        .arg(env!("CARGO_BIN_EXE_preflight"))
        .output()
        .expect("ldd runs");
    let needed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|lib| !lib.starts_with("linux-vdso"))
        .map(|lib| {
            Path::new(lib)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert!(needed.iter().any(|l| l == "libssl.so.3"), "{needed:?}");
    let missing: Vec<&String> = needed.iter().filter(|l| !shipped.contains(*l)).collect();
    assert!(
        missing.is_empty(),
        "not in {RUNTIME_PACKAGES:?}: {missing:?}"
    );
}
