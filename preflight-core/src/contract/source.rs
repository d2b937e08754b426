//! Provenance of a contract value, so that errors and the tier ceiling can name the place
//! that set it.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// Where a value of the bootstrap contract came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Source {
    /// A values file given with `--values`.
    File {
        /// The file's path as given.
        path: PathBuf,
        /// 1-based line of the value, when known.
        line: Option<u32>,
    },
    /// The bootstrap ConfigMap in the cluster.
    ConfigMap {
        /// `namespace/name` of the ConfigMap.
        object: String,
        /// The data key holding the values document.
        key: String,
        /// 1-based line of the value inside that document, when known.
        line: Option<u32>,
    },
    /// A `PREFLIGHT_*` environment variable.
    Env {
        /// The variable's name.
        var: String,
    },
    /// A command-line flag.
    Flag {
        /// The flag, e.g. `--max-tier`.
        flag: String,
    },
    /// Derived by a rule of the contract from other values.
    Derived {
        /// The rule, in words.
        rule: String,
    },
}

/// Where a raw values document came from, before individual values are located in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A file on disk.
    File(PathBuf),
    /// A key of a ConfigMap, `namespace/name`.
    ConfigMap {
        /// `namespace/name` of the ConfigMap.
        object: String,
        /// The data key.
        key: String,
    },
}

impl Origin {
    /// The source of a value found at `line` of this document.
    #[must_use]
    pub fn at(&self, line: Option<u32>) -> Source {
        match self {
            Origin::File(path) => Source::File {
                path: path.clone(),
                line,
            },
            Origin::ConfigMap { object, key } => Source::ConfigMap {
                object: object.clone(),
                key: key.clone(),
                line,
            },
        }
    }
}

impl Origin {
    /// The document with a place in it: `values.yaml:3:7`, or
    /// `ConfigMap kube-system/goldenpath-bootstrap (key values.yaml, line 3, column 7)`.
    #[must_use]
    pub fn place(&self, line: Option<u32>, column: Option<u32>) -> String {
        match (self, line, column) {
            (Origin::File(path), Some(l), Some(c)) => format!("{}:{l}:{c}", path.display()),
            (Origin::File(path), Some(l), None) => format!("{}:{l}", path.display()),
            (Origin::ConfigMap { object, key }, Some(l), Some(c)) => {
                format!("ConfigMap {object} (key {key}, line {l}, column {c})")
            }
            (Origin::ConfigMap { object, key }, Some(l), None) => {
                format!("ConfigMap {object} (key {key}, line {l})")
            }
            (_, None, _) => self.to_string(),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::ConfigMap { object, key } => write!(f, "ConfigMap {object} (key {key})"),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File {
                path,
                line: Some(l),
            } => write!(f, "{}:{l}", path.display()),
            Source::File { path, line: None } => write!(f, "{}", path.display()),
            Source::ConfigMap { object, key, line } => {
                write!(f, "ConfigMap {object} (key {key}")?;
                if let Some(l) = line {
                    write!(f, ", line {l}")?;
                }
                f.write_str(")")
            }
            Source::Env { var } => write!(f, "${var}"),
            Source::Flag { flag } => f.write_str(flag),
            Source::Derived { rule } => write!(f, "derived: {rule}"),
        }
    }
}

/// A value with the place that set it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Sourced<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub source: Source,
}

impl<T> Sourced<T> {
    /// Pairs a value with its source.
    #[must_use]
    pub fn new(value: T, source: Source) -> Self {
        Sourced { value, source }
    }

    /// Maps the value, keeping the source.
    #[must_use]
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Sourced<U> {
        Sourced {
            value: f(self.value),
            source: self.source,
        }
    }
}
