//! The settings file: the runner's time limits, which checks to leave out or make advisory,
//! and each check's settings (defined with the check, in its own module). Every default
//! follows the platform's conventions, so that `preflight --tier 2` needs no configuration on a
//! conventional cluster.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::yaml::{self, YamlError};

pub use crate::check::ObjectRef;
pub use crate::checks::CheckSettings;

/// Errors of loading the settings file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not valid YAML of the settings' shape, or an unknown key.
    #[error("{path}{}: {error}", error.place().map(|p| format!(":{p}")).unwrap_or_default())]
    Parse {
        /// The file.
        path: String,
        /// What is wrong, at which line, column and key.
        error: Box<YamlError>,
    },
    /// A setting is out of range or names something that does not exist.
    #[error("{path}: {field}: {message}")]
    Invalid {
        /// The file (or `defaults`).
        path: String,
        /// The setting, as written in the file.
        field: String,
        /// What is wrong.
        message: String,
    },
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let raw = String::deserialize(d)?;
    humantime::parse_duration(&raw).map_err(|e| {
        serde::de::Error::custom(format!(
            "{raw:?} is not a duration ({e}); write e.g. 10s, 500ms, 2m"
        ))
    })
}

/// A duration that must not be zero: an attempt given no time at all always times out.
fn positive_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let parsed = duration(d)?;
    if parsed.is_zero() {
        return Err(serde::de::Error::custom(
            "must be longer than 0s: an attempt given no time always times out",
        ));
    }
    Ok(parsed)
}

/// How the runner treats time.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct RunnerSettings {
    /// Longest a single attempt of a check may take.
    #[serde(
        deserialize_with = "positive_duration",
        serialize_with = "humantime_ser"
    )]
    pub attempt_timeout: Duration,
    /// First delay between attempts of a transient failure.
    #[serde(deserialize_with = "duration", serialize_with = "humantime_ser")]
    pub backoff_initial: Duration,
    /// Longest delay between attempts; also the longest a watch waits before re-checking.
    #[serde(deserialize_with = "duration", serialize_with = "humantime_ser")]
    pub backoff_max: Duration,
}

fn humantime_ser<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

impl Default for RunnerSettings {
    fn default() -> Self {
        RunnerSettings {
            attempt_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(15),
        }
    }
}

/// The whole settings file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// Time limits and backoff.
    pub runner: RunnerSettings,
    /// Check ids left out of every plan.
    pub disable: Vec<String>,
    /// Check ids whose failure is reported but does not fail the run.
    pub advisory: Vec<String>,
    /// Per-check settings.
    pub checks: CheckSettings,
}

impl Config {
    /// Parses a settings document; `path` names it in errors.
    pub fn from_yaml(text: &str, path: &str) -> Result<Config, ConfigError> {
        Self::from_bytes(text.as_bytes(), path)
    }

    /// Parses a settings document as read from a file: text that is not UTF-8 is reported at
    /// its first bad byte; `path` names it in errors.
    pub fn from_bytes(bytes: &[u8], path: &str) -> Result<Config, ConfigError> {
        match yaml::from_bytes(bytes, path) {
            Ok(config) => Ok(config),
            // Nothing but comments: the platform's conventions, as an empty file.
            Err(_) if std::str::from_utf8(bytes).is_ok_and(yaml::is_blank) => Ok(Config::default()),
            Err(error) => Err(ConfigError::Parse {
                path: path.to_owned(),
                error: Box::new(error),
            }),
        }
    }

    /// Reads and parses a settings file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::from_bytes(&bytes, &shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_means_the_platforms_conventions() {
        let c = Config::from_yaml("", "c.yaml").expect("empty is fine");
        assert_eq!(c, Config::default());
        assert_eq!(c.checks.ingress_class.name, "kong");
        assert_eq!(c.checks.cni.workload.to_string(), "kube-system/aws-node");
    }

    #[test]
    fn overrides_only_what_is_written() {
        let c = Config::from_yaml(
            "runner:\n  attemptTimeout: 3s\nchecks:\n  nodes-ready:\n    minReady: 3\n  storage-class:\n    name: gp3\n",
            "c.yaml",
        )
        .expect("valid");
        assert_eq!(c.runner.attempt_timeout, Duration::from_secs(3));
        assert_eq!(c.runner.backoff_max, Duration::from_secs(15));
        assert_eq!(c.checks.nodes_ready.min_ready, 3);
        assert_eq!(c.checks.nodes_ready.architectures, ["amd64"]);
        assert_eq!(c.checks.storage_class.name.as_deref(), Some("gp3"));
    }

    #[test]
    fn rejects_unknown_keys_bad_durations_and_bad_refs_with_their_place() {
        for (yaml, start) in [
            (
                "checks:\n  nodes-ready:\n    minready: 3\n",
                "c.yaml:3:5: checks.nodes-ready.minready: unknown field `minready`",
            ),
            (
                "runner:\n  attemptTimeout: soon\n",
                "c.yaml:2:19: runner.attemptTimeout: \"soon\" is not a duration",
            ),
            (
                "runner:\n  attemptTimeout: 0s\n",
                "c.yaml:2:19: runner.attemptTimeout: must be longer than 0s",
            ),
            (
                "checks:\n  irsa:\n    serviceAccounts: [just-a-name]\n",
                "c.yaml:3:23: checks.irsa.serviceAccounts[0]: \"just-a-name\" is not namespace/name",
            ),
            (
                "checks:\n  no-such-check: {}\n",
                "c.yaml:2:3: checks.no-such-check: unknown field `no-such-check`",
            ),
            (
                "checks:\n  postgres:\n    databases:\n      - app: backstage\n        port: 70000\n",
                "c.yaml:5:15: checks.postgres.databases[0].port: expected a whole number from 0 to 65535",
            ),
        ] {
            let err = Config::from_yaml(yaml, "c.yaml")
                .expect_err(yaml)
                .to_string();
            assert!(err.starts_with(start), "{yaml:?} -> {err}");
            assert!(err.contains("--> c.yaml:"), "a snippet: {err}");
        }
        let err = Config::from_bytes(b"runner:\n  attempt\xc0Timeout: 1s\n", "c.yaml")
            .expect_err("not UTF-8")
            .to_string();
        assert!(err.starts_with("c.yaml:2:10: not UTF-8 text"), "{err}");
    }

    #[test]
    fn a_file_of_comments_means_the_platforms_conventions() {
        let c = Config::from_yaml("# nothing to change\n\n  # yet\n", "c.yaml").expect("valid");
        assert_eq!(c, Config::default());
    }

    /// The documented example must stay exactly the defaults it claims to show.
    #[test]
    fn the_example_config_shows_the_defaults() {
        let example = Config::from_yaml(
            include_str!("../../examples/preflight.yaml"),
            "examples/preflight.yaml",
        )
        .expect("parses");
        assert_eq!(example, Config::default());
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(128))]

        /// Settings written in a file read back as written, and print and read back the same.
        #[test]
        fn written_settings_read_back(
            attempt in 1u64..1_000_000,
            backoff in 0u64..1_000_000,
            min_ready in 0usize..10_000,
            disable in proptest::sample::subsequence(crate::checks::ids(), 0..4),
            namespace in "[a-z][a-z0-9-]{0,10}",
        ) {
            let text = format!(
                "runner:\n  attemptTimeout: {attempt}ms\n  backoffInitial: {backoff}ms\ndisable: [{}]\nchecks:\n  nodes-ready:\n    minReady: {min_ready}\n  coredns:\n    workload: {namespace}/coredns\n",
                disable.join(", ")
            );
            let c = Config::from_yaml(&text, "c.yaml").expect("valid settings");
            proptest::prop_assert_eq!(c.runner.attempt_timeout, Duration::from_millis(attempt));
            proptest::prop_assert_eq!(c.runner.backoff_initial, Duration::from_millis(backoff));
            proptest::prop_assert_eq!(&c.disable, &disable);
            proptest::prop_assert_eq!(c.checks.nodes_ready.min_ready, min_ready);
            proptest::prop_assert_eq!(c.checks.coredns.workload.to_string(), format!("{namespace}/coredns"));
            crate::fuzzing::config(text.as_bytes());
        }
    }
}
