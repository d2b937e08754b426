//! The image builds: the Rust the Dockerfile builds with, the workspace's declared
//! `rust-version` and the lockfile agree.
//!
//! The minimum is derived, not written down: `cargo metadata --locked` resolves what the
//! `preflight` binary builds (preflight-job's normal and build dependencies, transitively, for
//! the platforms the image is built on), and the highest `rust-version` among those packages is
//! the oldest Rust that can build the image. A dependency bump that needs a newer Rust fails
//! here, naming the package, instead of in `docker build` at `cargo chef cook`.
//!
//! What is asserted, and why:
//! - the workspace's `rust-version` is **at least** that minimum. Not "equal": our own code may
//!   need a newer Rust than every dependency does (clippy's `incompatible_msrv`, on by default
//!   and denied in CI, holds our code to the declared version), and then the declaration must
//!   be higher. When it is higher, the message of the second assertion says by how much, so a
//!   stale declaration is visible.
//! - the Dockerfile's `ARG RUST_VERSION` **equals** the workspace's `rust-version`: the image is
//!   then built with the declared minimum itself, so every image build proves the declaration.
//!   A Dockerfile above it would leave the declaration untested; one below cannot build.
//!
//! No Docker engine is needed, and none is used: this test does not build the image.

#![allow(clippy::unwrap_used, reason = "a test stops on a broken setup")]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The platforms the image is built for (`docker build` builds natively on each): EKS's x86
/// and Graviton nodes. Their dependency sets differ only in platform-specific crates.
const IMAGE_PLATFORMS: [&str; 2] = ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"];

/// The package whose build the image runs (`cargo build --package preflight-job --bin preflight`).
const BINARY_PACKAGE: &str = "preflight-job";

/// A Rust version, `1.94` or `1.94.1`; a missing patch is 0 (as Cargo reads `rust-version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct RustVersion(u64, u64, u64);

impl RustVersion {
    fn parse(text: &str, what: &str) -> RustVersion {
        let parts: Vec<u64> = text
            .split('.')
            .map(|p| {
                p.parse()
                    .unwrap_or_else(|e| panic!("{what}: {text:?} is not a Rust version: {e}"))
            })
            .collect();
        match parts[..] {
            [major, minor] => RustVersion(major, minor, 0),
            [major, minor, patch] => RustVersion(major, minor, patch),
            _ => panic!("{what}: {text:?} is not a Rust version"),
        }
    }
}

impl std::fmt::Display for RustVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `cargo metadata --locked` for the image's platforms: fails if the lockfile does not match
/// the manifests.
fn metadata() -> Value {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(repo())
        .args(["metadata", "--format-version", "1", "--locked"]);
    for platform in IMAGE_PLATFORMS {
        cmd.args(["--filter-platform", platform]);
    }
    let out = cmd.output().expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata --locked failed (is Cargo.lock out of date?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// What the binary builds, as computed from the metadata.
struct Build {
    /// Package id → (name, version, declared rust-version).
    packages: HashMap<String, (String, String, Option<String>)>,
    /// Every package the binary's build compiles, with the id of the package that first pulled
    /// it in (for the chain shown in messages); the binary's own package maps to `None`.
    reached: BTreeMap<String, Option<String>>,
    /// The workspace's members.
    members: Vec<String>,
    /// The id of preflight-job.
    root: String,
}

impl Build {
    fn of(meta: &Value) -> Build {
        let packages: HashMap<String, (String, String, Option<String>)> = meta["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["id"].as_str().unwrap().to_owned(),
                    (
                        p["name"].as_str().unwrap().to_owned(),
                        p["version"].as_str().unwrap().to_owned(),
                        p["rust_version"].as_str().map(str::to_owned),
                    ),
                )
            })
            .collect();
        let members: Vec<String> = meta["workspace_members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().to_owned())
            .collect();
        let root = members
            .iter()
            .find(|id| packages[*id].0 == BINARY_PACKAGE)
            .expect("preflight-job is a workspace member")
            .clone();
        let nodes: HashMap<&str, &Value> = meta["resolve"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| (n["id"].as_str().unwrap(), n))
            .collect();

        // Breadth first, so that each package's recorded parent gives a shortest chain.
        let mut reached = BTreeMap::from([(root.clone(), None)]);
        let mut queue = VecDeque::from([root.clone()]);
        while let Some(id) = queue.pop_front() {
            for dep in nodes[id.as_str()]["deps"].as_array().unwrap() {
                // Normal (`kind: null`) and build dependencies are compiled into or for the
                // binary; dev-dependencies only into preflight-job's tests and benches (those of
                // other packages are never in the resolve graph).
                let builds = dep["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"].is_null() || k["kind"] == "build");
                let pkg = dep["pkg"].as_str().unwrap().to_owned();
                if builds && !reached.contains_key(&pkg) {
                    reached.insert(pkg.clone(), Some(id.clone()));
                    queue.push_back(pkg);
                }
            }
        }
        Build {
            packages,
            reached,
            members,
            root,
        }
    }

    fn name(&self, id: &str) -> String {
        let (name, version, _) = &self.packages[id];
        format!("{name} {version}")
    }

    /// `preflight-job → kube → … → id`.
    fn chain(&self, id: &str) -> String {
        let mut names = vec![self.name(id)];
        let mut at = id;
        while let Some(Some(parent)) = self.reached.get(at) {
            names.push(self.name(parent));
            at = parent;
        }
        names.reverse();
        names.join(" → ")
    }

    /// The highest `rust-version` among the dependencies the binary builds (the workspace's own
    /// packages left out: they declare the version under test), and the packages declaring it.
    fn minimum(&self) -> (RustVersion, Vec<String>) {
        let declared: Vec<(RustVersion, &str)> = self
            .reached
            .keys()
            .filter(|id| !self.members.contains(id))
            .filter_map(|id| {
                let (name, _, rv) = &self.packages[id];
                rv.as_deref()
                    .map(|rv| (RustVersion::parse(rv, name), id.as_str()))
            })
            .collect();
        let max = declared
            .iter()
            .map(|(v, _)| *v)
            .max()
            .expect("some dependency declares a rust-version");
        let setters = declared
            .iter()
            .filter(|(v, _)| *v == max)
            .map(|(_, id)| self.chain(id))
            .collect();
        (max, setters)
    }

    /// The `rust-version` every workspace member declares (they inherit the workspace's).
    fn workspace_rust_version(&self) -> RustVersion {
        let declared: BTreeMap<String, Option<&String>> = self
            .members
            .iter()
            .map(|id| (self.name(id), self.packages[id].2.as_ref()))
            .collect();
        let first = declared[&self.name(&self.root)]
            .expect("preflight-job declares a rust-version (rust-version.workspace = true)");
        assert!(
            declared.values().all(|v| *v == Some(first)),
            "every workspace member inherits [workspace.package] rust-version: {declared:?}"
        );
        RustVersion::parse(first, "[workspace.package] rust-version")
    }
}

/// The Dockerfile's `ARG RUST_VERSION=…`, the tag of the `rust:…-slim-bookworm` build image.
fn dockerfile_rust_version() -> RustVersion {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let args: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("ARG RUST_VERSION="))
        .collect();
    assert_eq!(args.len(), 1, "one ARG RUST_VERSION=… in the Dockerfile");
    assert!(
        text.contains("FROM rust:${RUST_VERSION}-"),
        "the build stage's image is rust:${{RUST_VERSION}}-…"
    );
    RustVersion::parse(args[0].trim(), "the Dockerfile's ARG RUST_VERSION")
}

#[test]
fn the_dockerfile_and_the_workspace_declare_the_rust_the_locked_dependencies_need() {
    let build = Build::of(&metadata());
    assert!(
        build.reached.len() > 100,
        "the binary's build graph was read ({} packages): kube, tokio, the AWS SDK…",
        build.reached.len()
    );
    let (minimum, setters) = build.minimum();
    let workspace = build.workspace_rust_version();
    let docker = dockerfile_rust_version();
    let why = format!(
        "the locked dependencies of the preflight binary need Rust {minimum}, set by:\n  {}",
        setters.join("\n  ")
    );

    assert!(
        workspace >= minimum,
        "Cargo.toml's [workspace.package] rust-version is {workspace}, below what the build \
         needs: {why}\nRaise rust-version (and the Dockerfile's RUST_VERSION) to {minimum}, or \
         pin those dependencies to releases that support {workspace}."
    );
    assert_eq!(
        docker, workspace,
        "the Dockerfile builds with Rust {docker} (ARG RUST_VERSION) but the workspace declares \
         rust-version {workspace}: the image must build with the declared minimum, so that \
         every image build proves it ({why})"
    );
}

/// Versions compare as numbers, and a patch level outranks the bare minor version (the AWS SDK
/// declares `1.94.1`).
#[test]
fn versions_compare_as_cargo_reads_them() {
    let v = |s| RustVersion::parse(s, "test");
    assert!(v("1.94.1") > v("1.94"));
    assert!(v("1.95") > v("1.94.1"));
    assert!(v("1.100") > v("1.95"));
    assert_eq!(v("1.95"), v("1.95.0"));
}
