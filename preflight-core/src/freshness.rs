//! How fresh a read must be: the newest resource version a run's watches have seen on each
//! collection, below which no later list of that collection may go.
//!
//! The runner raises a collection's floor as its watches see bookmarks and events; the
//! Kubernetes reads ask for lists "not older than" it. A check woken by a change therefore
//! judges the change, even when a server's watch cache answers its list, and a run never reads
//! a collection older than it has already seen it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The floors of a run, shared by every clone of its [`Context`](crate::check::Context).
#[derive(Clone, Debug, Default)]
pub(crate) struct Floors(Arc<Mutex<HashMap<String, String>>>);

impl Floors {
    /// The floor of the collection at `path` (e.g. `/api/v1/nodes`), if a watch has seen it.
    pub(crate) fn get(&self, path: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(path)
            .cloned()
    }

    /// Records that a watch on `path` has seen `resource_version`. The floor never goes down:
    /// several checks may watch one collection, and one watch's older bookmark must not lower
    /// what another has seen. Resource versions are opaque by contract but etcd revisions (a
    /// decimal `u64`) in practice, and the API server compares them so; one that does not parse
    /// replaces the floor, as the newest seen.
    pub(crate) fn raise(&self, path: &str, resource_version: &str) {
        if resource_version.is_empty() {
            return;
        }
        let mut floors = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match floors.get_mut(path) {
            Some(floor) => {
                let lower = match (floor.parse::<u64>(), resource_version.parse::<u64>()) {
                    (Ok(old), Ok(new)) => new < old,
                    _ => false,
                };
                if !lower {
                    resource_version.clone_into(floor);
                }
            }
            None => {
                floors.insert(path.to_owned(), resource_version.to_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_floor_only_rises_and_is_kept_per_collection() {
        let floors = Floors::default();
        let shared = floors.clone();
        assert_eq!(floors.get("/api/v1/nodes"), None);
        floors.raise("/api/v1/nodes", "");
        assert_eq!(floors.get("/api/v1/nodes"), None, "no version, no floor");
        floors.raise("/api/v1/nodes", "120");
        shared.raise("/api/v1/nodes", "95");
        assert_eq!(floors.get("/api/v1/nodes").as_deref(), Some("120"));
        shared.raise("/api/v1/nodes", "1000");
        assert_eq!(floors.get("/api/v1/nodes").as_deref(), Some("1000"));
        assert_eq!(
            floors.get("/apis/apps/v1/namespaces/kube-system/deployments"),
            None
        );
        floors.raise("/api/v1/nodes", "opaque");
        assert_eq!(floors.get("/api/v1/nodes").as_deref(), Some("opaque"));
    }
}
