//! Where the report goes: parsing `--output FORMAT[=PATH]` and writing each output.

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

/// Parses the `--output` values; the default is the human report on stdout.
pub(crate) fn parse(specs: &[String]) -> anyhow::Result<Vec<Output>> {
    if specs.is_empty() {
        return Ok(vec![Output {
            format: Format::Human,
            path: None,
        }]);
    }
    let mut outputs = Vec::new();
    for spec in specs {
        let (name, path) = match spec.split_once('=') {
            Some((n, p)) if !p.is_empty() => (n, Some(PathBuf::from(p))),
            Some(_) => bail!("--output {spec}: the path after '=' is empty"),
            None => (spec.as_str(), None),
        };
        let format = match name {
            "human" => Format::Human,
            "json" => Format::Json,
            "junit" => Format::Junit,
            "github" if path.is_none() => Format::Github,
            "github" => bail!(
                "--output {spec}: github writes annotations to stdout and the summary to $GITHUB_STEP_SUMMARY; it takes no path"
            ),
            other => bail!(
                "--output {spec}: unknown format {other:?} (expected human, json, junit or github)"
            ),
        };
        outputs.push(Output { format, path });
    }
    let on_stdout = outputs
        .iter()
        .filter(|o| o.path.is_none() && o.format != Format::Github)
        .count();
    if on_stdout > 1 {
        bail!(
            "--output: at most one of human, json and junit can go to standard output; give the others a path (json=report.json)"
        );
    }
    Ok(outputs)
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text)
        .with_context(|| format!("cannot write the report to {}", path.display()))
}

/// Writes every output of a finished report.
pub(crate) fn write(report: &Report, outputs: &[Output]) -> anyhow::Result<()> {
    for output in outputs {
        match (output.format, &output.path) {
            (Format::Human, None) => {
                // anstream strips the colours when stdout is not a terminal or NO_COLOR is set.
                let mut out = anstream::stdout();
                out.write_all(report::human(report, true).as_bytes())?;
                out.flush()?;
            }
            (Format::Human, Some(path)) => write_file(path, &report::human(report, false))?,
            (Format::Json, path) => emit(path.as_deref(), &report::json(report))?,
            (Format::Junit, path) => emit(path.as_deref(), &report::junit(report))?,
            (Format::Github, _) => {
                emit(None, &report::github_annotations(report))?;
                if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY") {
                    let mut file = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&summary)
                        .with_context(|| {
                            format!(
                                "cannot open $GITHUB_STEP_SUMMARY ({})",
                                Path::new(&summary).display()
                            )
                        })?;
                    file.write_all(report::github_step_summary(report).as_bytes())?;
                }
            }
        }
    }
    Ok(())
}

fn emit(path: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match path {
        Some(p) => write_file(p, text),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
            Ok(())
        }
    }
}

/// Kubernetes' default `terminationMessagePath`.
const DEFAULT_TERMINATION_PATH: &str = "/dev/termination-log";

/// Writes the termination message: to the given path, or to Kubernetes' default one when it
/// exists (inside a Pod), never creating it elsewhere.
pub(crate) fn write_termination_message(
    report: &Report,
    path: Option<&Path>,
) -> anyhow::Result<()> {
    let default = Path::new(DEFAULT_TERMINATION_PATH);
    let path = match path {
        Some(p) => p,
        None if default.exists() => default,
        None => return Ok(()),
    };
    write_file(path, &report::termination_message(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_output_specs() {
        let specs = |s: &[&str]| parse(&s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>());
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
        for bad in [&["xml"][..], &["human", "json"], &["junit="], &["github=x"]] {
            assert!(specs(bad).is_err(), "{bad:?}");
        }
    }
}
