//! Reading the YAML documents preflight is given (the bootstrap values, the settings file): a
//! document that does not fit is reported with its line, its column and the key path of the
//! offending value (`runner.attemptTimeout`), so that whoever wrote it can find it.

use std::fmt;

use serde::de::DeserializeOwned;
use serde_saphyr::{MessageFormatter as _, UserMessageFormatter};

/// Why a YAML document does not fit the shape expected of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YamlError {
    /// 1-based line of the problem, when known.
    pub line: Option<u32>,
    /// 1-based column of the problem, when known.
    pub column: Option<u32>,
    /// The key path of the value at fault, e.g. `checks.postgres.databases[0].port`; empty
    /// when the problem is the document itself.
    pub path: String,
    /// What is wrong, without the place.
    pub message: String,
    /// The lines around the problem with a marker under it, headed by the document's name;
    /// empty when there is nothing to show.
    pub snippet: String,
}

impl YamlError {
    /// `line:column`, the line alone, or nothing.
    #[must_use]
    pub fn place(&self) -> Option<String> {
        match (self.line, self.column) {
            (Some(l), Some(c)) => Some(format!("{l}:{c}")),
            (Some(l), None) => Some(l.to_string()),
            _ => None,
        }
    }
}

impl fmt::Display for YamlError {
    /// `checks.nodes-ready.minReady: …`, then the snippet on the lines below. The document's
    /// name and the place are for the caller to put in front.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if !self.snippet.is_empty() {
            write!(f, "\n{}", self.snippet)?;
        }
        Ok(())
    }
}

/// Parses a document (bytes as read from a file) as a `T`; `name` heads the snippet of an
/// error (a file's path). Text that is not UTF-8 is reported at its first bad byte.
pub(crate) fn from_bytes<T: DeserializeOwned>(bytes: &[u8], name: &str) -> Result<T, YamlError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => from_str(text, name),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            // Lines break at LF, CR and CRLF, as the YAML parser counts them.
            let is_break = |i: usize| {
                good[i] == b'\n' || (good[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n'))
            };
            let line = (0..good.len()).filter(|&i| is_break(i)).count() + 1;
            let line_start = (0..good.len())
                .rev()
                .find(|&i| is_break(i))
                .map_or(0, |i| i + 1);
            let column = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
            Err(YamlError {
                line: u32::try_from(line).ok(),
                column: u32::try_from(column).ok(),
                path: String::new(),
                message: format!(
                    "not UTF-8 text (byte 0x{:02x}): YAML files are UTF-8",
                    bytes[e.valid_up_to()]
                ),
                snippet: String::new(),
            })
        }
    }
}

/// Parses one YAML document as a `T`; `name` heads the snippet of an error (a file's path).
pub(crate) fn from_str<T: DeserializeOwned>(text: &str, name: &str) -> Result<T, YamlError> {
    let mut path = None;
    serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            path = Some(e.path().to_string());
            e.into_inner()
        })
    })
    .map_err(|e| {
        let location = e.location().filter(|l| l.line() > 0);
        let formatter = UserMessageFormatter;
        let message = plain(&formatter.format_message(e.without_snippet()));
        let rendered = e.render_with_options(serde_saphyr::render_options! {
            formatter: &formatter,
            source_name: Some(name),
        });
        // The first line repeats the message; the snippet follows it.
        let snippet = rendered
            .split_once('\n')
            .map(|(_, rest)| rest.trim_end().to_owned())
            .unwrap_or_default();
        YamlError {
            line: location.and_then(|l| u32::try_from(l.line()).ok()),
            column: location.and_then(|l| u32::try_from(l.column()).ok()),
            path: key_path(path.as_deref().unwrap_or_default()),
            message: explain(message),
            snippet,
        }
    })
}

/// Whether a document holds nothing but blank lines and comments: it says nothing, which is not
/// an error, but the parser sees no document in it at all.
pub(crate) fn is_blank(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#')
    })
}

/// The path as the document's author wrote it: serde_path_to_error writes `.` for the root
/// and `?` for a key it could not read (a duplicate one).
fn key_path(path: &str) -> String {
    path.split('.')
        .filter(|segment| !segment.is_empty() && *segment != "?")
        .collect::<Vec<_>>()
        .join(".")
}

/// Control characters of a message escaped: a message may quote the document, and the document
/// may hold anything.
fn plain(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for c in message.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The parser's words for a number out of range (`invalid u16`) say which Rust type failed,
/// not what the setting takes.
fn explain(message: String) -> String {
    let range = match message.as_str() {
        "invalid u8" => Some((0, i128::from(u8::MAX))),
        "invalid u16" => Some((0, i128::from(u16::MAX))),
        "invalid u32" => Some((0, i128::from(u32::MAX))),
        "invalid u64" => Some((0, i128::from(u64::MAX))),
        "invalid usize" => Some((0, i128::from(u64::MAX))),
        "invalid i32" => Some((i128::from(i32::MIN), i128::from(i32::MAX))),
        "invalid i64" => Some((i128::from(i64::MIN), i128::from(i64::MAX))),
        _ => None,
    };
    match range {
        Some((min, max)) => format!("expected a whole number from {min} to {max}"),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[expect(dead_code, reason = "read only to be parsed")]
    struct Doc {
        #[serde(default)]
        port: Option<u16>,
        #[serde(default)]
        list: Vec<BTreeMap<String, u8>>,
    }

    #[test]
    fn names_the_line_the_column_and_the_key_path() {
        for (yaml, place, path, message) in [
            (
                "port: 70000\n",
                "1:7",
                "port",
                "expected a whole number from 0 to 65535",
            ),
            (
                "list:\n  - a: 1\n  - b: -1\n",
                "3:8",
                "list[1].b",
                "expected a whole number from 0 to 255",
            ),
            ("colour: blue\n", "1:1", "colour", "unknown field `colour`"),
            ("- a\n", "1:1", "", "expected mapping start"),
            (
                "port: 1\nport: 2\n",
                "2:1",
                "",
                "duplicate mapping key `port` is not allowed here",
            ),
            ("list: [\n", "1:7", "list", ""),
        ] {
            let e = from_str::<Doc>(yaml, "doc.yaml").expect_err(yaml);
            assert_eq!(e.place().as_deref(), Some(place), "{yaml:?}: {e}");
            assert_eq!(e.path, path, "{yaml:?}: {e}");
            assert!(e.message.starts_with(message), "{yaml:?}: {e}");
            assert!(
                e.snippet.contains(&format!("doc.yaml:{place}")),
                "{yaml:?}: {e}"
            );
        }
    }

    #[test]
    fn text_that_is_not_utf8_is_placed_at_its_first_bad_byte() {
        let e = from_bytes::<Doc>(b"port: 1\nli\xffst: []\n", "doc.yaml").expect_err("not UTF-8");
        assert_eq!(e.place().as_deref(), Some("2:3"));
        let e = from_bytes::<Doc>(b"port: 1\r\n\rl\xffist: []\n", "doc.yaml").expect_err("CR");
        assert_eq!(
            e.place().as_deref(),
            Some("3:2"),
            "CRLF and CR break lines: {e}"
        );
        assert!(e.message.contains("byte 0xff"), "{e}");
    }

    #[test]
    fn control_characters_in_a_message_are_escaped() {
        let e = from_str::<Doc>("\"po\\u0007rt\": 1\n", "doc.yaml").expect_err("unknown key");
        assert!(
            !e.message.contains('\u{7}') && e.message.contains("\\u{7}"),
            "{e}"
        );
    }
}
