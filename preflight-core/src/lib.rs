//! preflight-core: checks that tell, before anything is deployed, whether a Kubernetes cluster
//! and its cloud dependencies are ready for the apps of a tier.
//!
//! The pieces, bottom up: the [`tier`]s, the [`platform`]'s apps and the bootstrap
//! [`contract`]; per-check
//! [`config`]; the [`check`] abstraction and its [`outcome`]s; the [`checks`] catalogue; the
//! [`plan`] of a run; the [`runner`] that owns time; the [`report`] and its formats; the
//! [`exit`] codes; and the [`access`] a plan needs (RBAC, IAM). This crate never prints and
//! never exits the process.

pub mod access;
pub mod check;
pub mod checks;
pub mod config;
pub mod connect;
pub mod contract;
pub(crate) mod dns;
pub mod exit;
#[doc(hidden)]
pub mod fuzzing;
pub mod outcome;
pub mod plan;
pub mod platform;
pub mod reads;
pub mod report;
pub mod result;
pub mod runner;
pub mod tier;
pub mod trust;
pub mod yaml;

pub use tier::Tier;
