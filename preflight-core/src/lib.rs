//! preflight-core: checks that tell, before anything is deployed, whether a Kubernetes cluster
//! and its cloud dependencies are ready for the apps of a tier.
//!
//! The pieces, bottom up: the [`tier`]s, the [`platform`]'s apps and the bootstrap
//! [`contract`]; per-check [`config`]; the [`check`] abstraction, what a check [`reads`] and
//! its [`outcome`]s; the [`checks`] catalogue; the [`plan`] of a run; the [`runner`] that owns
//! time; the [`result`] of each check, which the runner sets and the [`report`] formats read;
//! the [`exit`] codes; and the [`access`] a plan needs (RBAC, IAM). This crate never prints
//! and never exits the process.
//!
//! # Running checks from another tool
//!
//! A tool built on this crate plans a set of built-in checks, adds checks of its own, runs
//! them all through the [`runner`] and writes the [`report`] in any format:
//!
//! ```
//! use std::sync::Arc;
//!
//! use preflight_core::check::{Attempt, Check, CheckMeta, Context, Family};
//! use preflight_core::config::Config;
//! use preflight_core::contract::{Origin, ValuesLayer};
//! use preflight_core::outcome::Outcome;
//! use preflight_core::plan::{Selection, plan};
//! use preflight_core::platform::{NeededBy, Provider, Scope};
//! use preflight_core::reads::Reads;
//! use preflight_core::report::{self, Report, Verdict};
//! use preflight_core::result::End;
//! use preflight_core::runner::{RunOptions, run};
//! use preflight_core::{Tier, async_trait};
//! use tokio_util::sync::CancellationToken;
//!
//! /// The tool's own check.
//! #[derive(Debug)]
//! struct TicketApproved;
//!
//! #[async_trait]
//! impl Check for TicketApproved {
//!     async fn attempt(&self, _ctx: &Context) -> Attempt {
//!         Attempt::settled(Outcome::pass("approved", "change ticket CHG-42 is approved"))
//!     }
//!     fn reads(&self) -> Reads {
//!         Reads::default()
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let values = ValuesLayer::from_yaml("bootstrap: {mode: ephemeral, env: dev, buildId: '26-01-23-01'}",
//!     Origin::File("values.yaml".into()))
//!     .and_then(ValuesLayer::validate)?;
//! let mut plan = plan(&values, &Config::default(), Scope::Gate(Tier::Zero),
//!     &Selection::only(&["kube-api"]))?;
//! plan.add(
//!     CheckMeta {
//!         id: "ticket-approved",
//!         title: "The change is approved".into(),
//!         tier: Tier::Zero,
//!         family: Family::Other,
//!         provided_by: Provider::Foundation("the change process"),
//!         needed_by: NeededBy::tier(Tier::Zero),
//!         needs: vec![],
//!         required: true,
//!         uses_kubernetes: false,
//!     },
//!     Arc::new(TicketApproved),
//! )?;
//!
//! // No Kubernetes client in this context: kube-api says so, the tool's own check passes.
//! let options = RunOptions::default();
//! let results = run(&plan, &Context::default(), &options, &CancellationToken::new()).await;
//! let report = Report::new(&plan, &values, results, Vec::new());
//!
//! assert_eq!(report.verdict, Verdict::Failed);
//! assert!(matches!(&report.checks[0].end, End::Judged(o) if o.code == "no-kubernetes-client"));
//! assert!(matches!(&report.checks[1].end, End::Judged(o) if o.code == "approved"));
//! assert!(report::junit(&report).contains("ticket-approved"));
//! assert!(report::human(&report, false).contains("FAILED"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! `preflight-core/examples/custom_gate.rs` does the same against a real cluster.

#![forbid(unsafe_code)]

pub mod access;
pub mod check;
pub mod checks;
pub mod config;
pub mod connect;
pub mod contract;
pub(crate) mod dns;
pub mod exit;
pub(crate) mod freshness;
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
pub mod tls;
pub mod trust;
pub mod yaml;

pub use tier::Tier;

/// The attribute a [`check::Check`] implementation carries (`#[preflight_core::async_trait]`),
/// re-exported so that a crate adding its own checks needs no other dependency for it.
pub use async_trait::async_trait;
