//! Where the report goes: parsing `--output FORMAT[=PATH]` and writing each output.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use preflight_core::report::{self, Report};

/// A report format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Human,
    Json,
    Junit,
    /// Annotations on stdout (GitHub turns them into check annotations) and the step summary
    /// appended to `$GITHUB_STEP_SUMMARY`.
    Github,
}

/// One requested output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Output {
    pub format: Format,
    /// `None`: standard output.
    pub path: Option<PathBuf>,
}

/// One `--output` value, `FORMAT[=PATH]`: the parser clap runs on each, so that a bad one is
/// reported with the flag (or the variable) it came from.
pub(crate) fn spec(spec: &str) -> Result<Output, String> {
    let (name, path) = match spec.split_once('=') {
        Some((n, p)) if !p.is_empty() => (n, Some(PathBuf::from(p))),
        Some(_) => return Err("the path after '=' is empty".to_owned()),
        None => (spec, None),
    };
    let format = match name {
        "human" => Format::Human,
        "json" => Format::Json,
        "junit" => Format::Junit,
        "github" if path.is_none() => Format::Github,
        "github" => {
            return Err(
                "github writes annotations to stdout and the summary to $GITHUB_STEP_SUMMARY; it takes no path"
                    .to_owned(),
            );
        }
        other => {
            return Err(format!(
                "unknown format {other:?} (expected human, json, junit or github, each optionally =PATH)"
            ));
        }
    };
    Ok(Output { format, path })
}

/// The outputs asked for, the human report on stdout when none was; `source` names where
/// they were asked for (`--output` or `$PREFLIGHT_OUTPUT`).
pub(crate) fn resolve(outputs: &[Output], source: &str) -> anyhow::Result<Vec<Output>> {
    if outputs.is_empty() {
        return Ok(vec![Output {
            format: Format::Human,
            path: None,
        }]);
    }
    let on_stdout = outputs
        .iter()
        .filter(|o| o.path.is_none() && o.format != Format::Github)
        .count();
    if on_stdout > 1 {
        bail!(
            "{source}: at most one of human, json and junit can go to standard output; give the others a path (json=report.json)"
        );
    }
    Ok(outputs.to_vec())
}

/// A destination opened before anything was checked: standard output or a file.
#[derive(Debug)]
enum Sink {
    Stdout,
    File(PathBuf, File),
}

impl Sink {
    /// Opens `path` for the report (created, or emptied), or standard output.
    fn open(path: Option<&Path>, what: &str) -> anyhow::Result<Sink> {
        match path {
            None => Ok(Sink::Stdout),
            Some(p) => File::create(p)
                .map(|f| Sink::File(p.to_owned(), f))
                .with_context(|| format!("cannot write {what} to {}", p.display())),
        }
    }

    fn write(&mut self, text: &str) -> anyhow::Result<()> {
        match self {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())?;
                out.flush()?;
                Ok(())
            }
            Sink::File(path, file) => file
                .write_all(text.as_bytes())
                .and_then(|()| file.flush())
                .with_context(|| format!("cannot write the report to {}", path.display())),
        }
    }
}

/// Every requested output, opened: a destination that cannot be written is a usage error
/// (exit 2) before any check runs, not a surprise after the whole run.
#[derive(Debug)]
pub(crate) struct Sinks {
    outputs: Vec<(Format, Sink)>,
    /// `$GITHUB_STEP_SUMMARY`, opened for appending, when a github output was asked for.
    summary: Option<Sink>,
    termination: Option<Sink>,
}

/// Kubernetes' default `terminationMessagePath`.
const DEFAULT_TERMINATION_PATH: &str = "/dev/termination-log";

/// Opens every output, the step summary of a github output, and the termination message
/// (the given path, or Kubernetes' default one when it exists, inside a Pod; never created
/// elsewhere).
pub(crate) fn open(outputs: &[Output], termination: Option<&Path>) -> anyhow::Result<Sinks> {
    let mut sinks = Sinks {
        outputs: Vec::new(),
        summary: None,
        termination: None,
    };
    for output in outputs {
        let what = match output.format {
            Format::Human => "the human report",
            Format::Json => "the JSON report",
            Format::Junit => "the JUnit report",
            Format::Github => "the GitHub annotations",
        };
        sinks
            .outputs
            .push((output.format, Sink::open(output.path.as_deref(), what)?));
        if output.format == Format::Github
            && let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY")
        {
            let path = PathBuf::from(summary);
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| {
                    format!("cannot open $GITHUB_STEP_SUMMARY ({})", path.display())
                })?;
            sinks.summary = Some(Sink::File(path, file));
        }
    }
    let default = Path::new(DEFAULT_TERMINATION_PATH);
    let termination = match termination {
        Some(p) => Some(p),
        None if default.exists() => Some(default),
        None => None,
    };
    if let Some(path) = termination {
        sinks.termination = Some(Sink::open(Some(path), "the termination message")?);
    }
    Ok(sinks)
}

impl Sinks {
    /// Writes the finished report everywhere; returns what could not be written (a full
    /// disk), which must not change the run's verdict.
    pub(crate) fn write(self, report: &Report) -> Vec<anyhow::Error> {
        let mut failed = Vec::new();
        for (format, mut sink) in self.outputs {
            let written = match (format, &sink) {
                // anstream strips the colours when stdout is not a terminal or NO_COLOR is set.
                (Format::Human, Sink::Stdout) => {
                    let mut out = anstream::stdout();
                    out.write_all(report::human(report, true).as_bytes())
                        .and_then(|()| out.flush())
                        .map_err(anyhow::Error::from)
                }
                (Format::Human, Sink::File(..)) => sink.write(&report::human(report, false)),
                (Format::Json, _) => sink.write(&report::json(report)),
                (Format::Junit, _) => sink.write(&report::junit(report)),
                (Format::Github, _) => sink.write(&report::github_annotations(report)),
            };
            failed.extend(written.err());
        }
        if let Some(mut summary) = self.summary {
            failed.extend(summary.write(&report::github_step_summary(report)).err());
        }
        if let Some(mut termination) = self.termination {
            failed.extend(
                termination
                    .write(&report::termination_message(report))
                    .err(),
            );
        }
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_output_specs() {
        let specs = |s: &[&str]| -> Result<Vec<Output>, String> {
            let parsed = s.iter().map(|x| spec(x)).collect::<Result<Vec<_>, _>>()?;
            resolve(&parsed, "--output").map_err(|e| e.to_string())
        };
        assert_eq!(
            specs(&[]).expect("default"),
            [Output {
                format: Format::Human,
                path: None
            }]
        );
        let many = specs(&["human", "junit=r.xml", "json=r.json", "github"]).expect("valid");
        assert_eq!(many.len(), 4);
        assert_eq!(many[1].path.as_deref(), Some(Path::new("r.xml")));
        for (bad, message) in [
            (&["xml"][..], "unknown format \"xml\""),
            (
                &["human", "json"],
                "--output: at most one of human, json and junit",
            ),
            (&["junit="], "the path after '=' is empty"),
            (&["github=x"], "github writes annotations to stdout"),
        ] {
            let e = specs(bad).expect_err(message);
            assert!(e.starts_with(message), "{bad:?}: {e}");
        }
    }
}
