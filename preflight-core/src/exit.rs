//! Exit codes of the `preflight` binary: an API that CI and ArgoCD hooks rely on.

/// Every required check passed (warnings allowed).
pub const PASSED: i32 = 0;
/// A required check failed.
pub const FAILED: i32 = 1;
/// Usage or configuration error: bad flags, values, config or kubeconfig; a tier above the
/// ceiling. Nothing was checked.
pub const USAGE: i32 = 2;
/// The deadline was reached, or the run was interrupted (SIGTERM/SIGINT), before every
/// required check settled.
pub const UNSETTLED: i32 = 3;
