//! The app-of-apps as ArgoCD's status shows it: one reading of the child Applications a root
//! lists, shared by `tier-gating`, `lower-tiers-healthy` and `sync-waves`.
//!
//! A root creates its child Applications wave by wave. Before it creates one it lists it in
//! its own `status.resources[]` (ArgoCD's `ResourceStatus`: kind `Application`, group
//! `argoproj.io`, status `OutOfSync`, health `Missing`), with the `syncWave` of the root's
//! TARGET manifest, the wave the next sync creates or updates the child at. `syncWave` is
//! written by ArgoCD 2.6 and later, `omitempty`: absent means wave 0 there, and older versions
//! write none at all.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

/// The kind and group of a child Application.
const KIND: &str = "Application";
const GROUP: &str = "argoproj.io";

/// One entry of an Application's `status.resources`, as far as the app-of-apps is concerned.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Listed {
    /// The resource's API group (`argoproj.io` for an Application).
    pub group: String,
    /// Its kind.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its namespace; empty for a cluster-scoped resource (or one ArgoCD defaults).
    pub namespace: String,
    /// The wave the root's target manifest puts it at; `None` when absent.
    pub sync_wave: Option<i64>,
}

impl Listed {
    /// Whether this entry is an ArgoCD Application.
    fn is_application(&self) -> bool {
        self.kind == KIND && self.group == GROUP
    }
}

/// A child Application a root lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Child<'a> {
    /// The child's name.
    pub name: &'a str,
    /// The root listing it (the first by name when several do).
    pub root: &'a str,
    /// The wave the root lists it at; `None` when the listing carries none.
    pub wave: Option<i64>,
}

/// The roots of a namespace and the children they list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct AppOfApps<'a> {
    /// The children listed in the Applications' namespace (or without one), once each, by
    /// name.
    pub children: Vec<Child<'a>>,
    /// The Applications whose `status.resources` list Applications, in any namespace: an
    /// app-of-apps carries no tier of its own.
    pub roots: BTreeSet<&'a str>,
    /// For each root listing children here, whether any of them carries a `syncWave`: none at
    /// all means ArgoCD before 2.6, whose listing says nothing about waves.
    waves: BTreeMap<&'a str, bool>,
}

impl<'a> AppOfApps<'a> {
    /// Whether `name` is a root.
    pub(crate) fn is_root(&self, name: &str) -> bool {
        self.roots.contains(name)
    }

    /// The child named `name`, if a root lists it.
    pub(crate) fn child(&self, name: &str) -> Option<&Child<'a>> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Whether `root` lists a `syncWave` for any of its children here (ArgoCD 2.6 or later).
    pub(crate) fn lists_waves(&self, root: &str) -> bool {
        self.waves.get(root).copied().unwrap_or(false)
    }
}

/// Reads the app-of-apps from the Applications of `namespace`, each given as its name and the
/// entries of its `status.resources`. A child is an entry of kind `Application`, group
/// `argoproj.io`, in `namespace` or without a namespace; a child several roots list is kept
/// once, with the first root by name and that root's wave.
pub(crate) fn read<'a, I, R>(apps: I, namespace: &str) -> AppOfApps<'a>
where
    I: IntoIterator<Item = (&'a str, R)>,
    R: IntoIterator<Item = &'a Listed>,
{
    let mut apps: Vec<(&'a str, Vec<&'a Listed>)> = apps
        .into_iter()
        .map(|(name, listed)| (name, listed.into_iter().collect()))
        .collect();
    apps.sort_by_key(|(name, _)| *name);
    let mut out = AppOfApps::default();
    for (root, listed) in &apps {
        for entry in listed.iter().filter(|e| e.is_application()) {
            out.roots.insert(root);
            if !(entry.namespace.is_empty() || entry.namespace == namespace) {
                continue;
            }
            *out.waves.entry(root).or_default() |= entry.sync_wave.is_some();
            if out.child(&entry.name).is_none() {
                out.children.push(Child {
                    name: &entry.name,
                    root,
                    wave: entry.sync_wave,
                });
            }
        }
    }
    out.children.sort_by_key(|c| c.name);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &str, group: &str, name: &str, namespace: &str, wave: Option<i64>) -> Listed {
        Listed {
            group: group.into(),
            kind: kind.into(),
            name: name.into(),
            namespace: namespace.into(),
            sync_wave: wave,
        }
    }

    fn app(name: &str, wave: Option<i64>) -> Listed {
        entry("Application", "argoproj.io", name, "argocd", wave)
    }

    #[test]
    fn reads_the_children_each_root_lists() {
        struct Case {
            name: &'static str,
            apps: Vec<(&'static str, Vec<Listed>)>,
            children: &'static [(&'static str, &'static str, Option<i64>)],
            roots: &'static [&'static str],
            with_waves: &'static [&'static str],
        }
        let cases = [
            Case {
                name: "a root and its children, by name",
                apps: vec![
                    (
                        "kong",
                        vec![entry("Deployment", "apps", "kong", "kong", None)],
                    ),
                    (
                        "platform-root",
                        vec![
                            app("loki", Some(101)),
                            app("kong", Some(30)),
                            entry("ConfigMap", "", "platform-values", "argocd", None),
                        ],
                    ),
                ],
                children: &[
                    ("kong", "platform-root", Some(30)),
                    ("loki", "platform-root", Some(101)),
                ],
                roots: &["platform-root"],
                with_waves: &["platform-root"],
            },
            Case {
                name: "not an Application, or of another group: no child, no root",
                apps: vec![(
                    "platform-root",
                    vec![
                        entry("Application", "example.com", "loki", "argocd", Some(1)),
                        entry("ApplicationSet", "argoproj.io", "loki", "argocd", Some(1)),
                    ],
                )],
                children: &[],
                roots: &[],
                with_waves: &[],
            },
            Case {
                name: "another namespace is no child here, but its lister is a root",
                apps: vec![(
                    "team-root",
                    vec![
                        entry("Application", "argoproj.io", "loki", "team", Some(5)),
                        entry("Application", "argoproj.io", "kong", "", Some(30)),
                    ],
                )],
                children: &[("kong", "team-root", Some(30))],
                roots: &["team-root"],
                with_waves: &["team-root"],
            },
            Case {
                name: "listed twice: once, by the first root by name",
                apps: vec![
                    ("b-root", vec![app("loki", Some(45))]),
                    ("a-root", vec![app("loki", Some(101))]),
                ],
                children: &[("loki", "a-root", Some(101))],
                roots: &["a-root", "b-root"],
                with_waves: &["a-root", "b-root"],
            },
            Case {
                name: "ArgoCD before 2.6: no wave listed at all",
                apps: vec![
                    ("old-root", vec![app("loki", None), app("kong", None)]),
                    (
                        "new-root",
                        vec![app("grafana", None), app("tempo", Some(101))],
                    ),
                ],
                children: &[
                    ("grafana", "new-root", None),
                    ("kong", "old-root", None),
                    ("loki", "old-root", None),
                    ("tempo", "new-root", Some(101)),
                ],
                roots: &["new-root", "old-root"],
                with_waves: &["new-root"],
            },
        ];
        for case in cases {
            let read = read(case.apps.iter().map(|(n, l)| (*n, l.iter())), "argocd");
            let children: Vec<(&str, &str, Option<i64>)> = read
                .children
                .iter()
                .map(|c| (c.name, c.root, c.wave))
                .collect();
            assert_eq!(children, case.children, "{}", case.name);
            assert_eq!(
                read.roots.iter().copied().collect::<Vec<_>>(),
                case.roots,
                "{}",
                case.name
            );
            for (root, _) in &case.apps {
                assert_eq!(
                    read.lists_waves(root),
                    case.with_waves.contains(root),
                    "{}: {root}",
                    case.name
                );
                assert_eq!(read.is_root(root), case.roots.contains(root));
            }
        }
    }
}
