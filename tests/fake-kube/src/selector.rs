//! Field and label selectors, parsed and matched as the API server does for what clients
//! actually send: `metadata.name=x,metadata.namespace!=y`, and `k=v`, `k!=v`, `k`, `!k`,
//! `k in (a,b)`, `k notin (a,b)`.

use serde_json::Value;

use crate::registry::ResourceDef;

/// The fields a field selector can test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Name,
    Namespace,
    /// `spec.unschedulable` of nodes: a boolean, false when absent.
    Unschedulable,
    /// `type` of secrets.
    SecretType,
}

impl Field {
    fn of(def: &ResourceDef, label: &str) -> Option<Field> {
        match (def.group.as_str(), def.plural.as_str(), label) {
            (_, _, "metadata.name") => Some(Field::Name),
            (_, _, "metadata.namespace") if def.namespaced => Some(Field::Namespace),
            ("", "nodes", "spec.unschedulable") => Some(Field::Unschedulable),
            ("", "secrets", "type") => Some(Field::SecretType),
            _ => None,
        }
    }

    fn value(self, obj: &Value) -> String {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        match self {
            Field::Name => text(&obj["metadata"]["name"]),
            Field::Namespace => text(&obj["metadata"]["namespace"]),
            Field::Unschedulable => obj["spec"]["unschedulable"]
                .as_bool()
                .unwrap_or(false)
                .to_string(),
            Field::SecretType => text(&obj["type"]),
        }
    }
}

/// One label requirement.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Label {
    Exists(String),
    NotExists(String),
    /// `k=v` is `In(k, [v])`.
    In(String, Vec<String>),
    /// `k!=v` is `NotIn(k, [v])`; like it, it matches objects without the label.
    NotIn(String, Vec<String>),
}

/// A parsed `fieldSelector` and `labelSelector`; all requirements must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Selector {
    fields: Vec<(Field, String, bool)>,
    labels: Vec<Label>,
}

impl Selector {
    /// Parses the selectors of a request for `def`'s objects. The error is the message of the
    /// 400 Bad Request a real server answers.
    pub(crate) fn parse(
        def: &ResourceDef,
        fields: Option<&str>,
        labels: Option<&str>,
    ) -> Result<Selector, String> {
        let mut selector = Selector::default();
        for term in split_terms(fields.unwrap_or_default()) {
            let (label, value, equal) = if let Some((k, v)) = term.split_once("!=") {
                (k, v, false)
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (k, v, true)
            } else {
                return Err(format!(
                    "invalid selector: '{term}'; can't understand '{term}'"
                ));
            };
            let label = label.trim();
            let field = Field::of(def, label)
                .ok_or_else(|| format!("field label not supported: {label}"))?;
            selector
                .fields
                .push((field, value.trim().to_owned(), equal));
        }
        for term in split_terms(labels.unwrap_or_default()) {
            selector.labels.push(
                parse_label(term)
                    .ok_or_else(|| format!("unable to parse requirement: {term:?}"))?,
            );
        }
        Ok(selector)
    }

    /// Whether `obj` satisfies every requirement.
    pub(crate) fn matches(&self, obj: &Value) -> bool {
        let labels = &obj["metadata"]["labels"];
        self.fields
            .iter()
            .all(|(field, value, equal)| (field.value(obj) == *value) == *equal)
            && self.labels.iter().all(|req| {
                let actual = |k: &str| labels.get(k).and_then(Value::as_str);
                match req {
                    Label::Exists(k) => actual(k).is_some(),
                    Label::NotExists(k) => actual(k).is_none(),
                    Label::In(k, vs) => actual(k).is_some_and(|a| vs.iter().any(|v| v == a)),
                    Label::NotIn(k, vs) => actual(k).is_none_or(|a| vs.iter().all(|v| v != a)),
                }
            })
    }

    /// Whether there are no requirements.
    pub(crate) fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.labels.is_empty()
    }
}

/// Splits at the commas outside parentheses, dropping empty terms.
fn split_terms(s: &str) -> impl Iterator<Item = &str> {
    let mut depth = 0usize;
    s.split(move |c| {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        c == ',' && depth == 0
    })
    .map(str::trim)
    .filter(|t| !t.is_empty())
}

fn parse_label(term: &str) -> Option<Label> {
    let key = |k: &str| {
        let k = k.trim();
        valid_key(k).then(|| k.to_owned())
    };
    let value = |v: &str| {
        let v = v.trim();
        valid_value(v).then(|| v.to_owned())
    };
    if let Some(k) = term.strip_prefix('!') {
        return key(k).map(Label::NotExists);
    }
    if let Some((head, rest)) = term.split_once('(') {
        let values = rest.strip_suffix(')')?;
        let values: Option<Vec<String>> = values.split(',').map(value).collect();
        let mut words = head.split_whitespace();
        let (k, op) = (key(words.next()?)?, words.next()?);
        if words.next().is_some() {
            return None;
        }
        return match op {
            "in" => Some(Label::In(k, values?)),
            "notin" => Some(Label::NotIn(k, values?)),
            _ => None,
        };
    }
    if let Some((k, v)) = term.split_once("!=") {
        return Some(Label::NotIn(key(k)?, vec![value(v)?]));
    }
    if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return Some(Label::In(key(k)?, vec![value(v)?]));
    }
    key(term).map(Label::Exists)
}

/// `[prefix/]name`: a DNS-subdomain prefix and a name of letters, digits, `-`, `_`, `.`.
fn valid_key(k: &str) -> bool {
    let (prefix, name) = k.rsplit_once('/').unwrap_or(("", k));
    let prefix_ok = prefix.len() <= 253
        && prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    (!k.contains('/') || !prefix.is_empty()) && prefix_ok && !name.is_empty() && valid_value(name)
}

/// Empty, or up to 63 letters, digits, `-`, `_`, `.` starting and ending alphanumeric.
fn valid_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric())
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::registry::builtins;

    fn def(plural: &str) -> ResourceDef {
        builtins().into_iter().find(|d| d.plural == plural).unwrap()
    }

    fn node(name: &str, labels: Value, unschedulable: bool) -> Value {
        json!({"metadata": {"name": name, "labels": labels}, "spec": {"unschedulable": unschedulable}})
    }

    fn matching(fields: Option<&str>, labels: Option<&str>) -> Vec<&'static str> {
        let nodes = [
            ("a", json!({"zone": "a", "role": "worker"}), false),
            ("b", json!({"zone": "b"}), true),
            ("c", json!({}), false),
        ];
        let selector = Selector::parse(&def("nodes"), fields, labels).unwrap();
        nodes
            .into_iter()
            .filter(|(n, l, u)| selector.matches(&node(n, l.clone(), *u)))
            .map(|(n, _, _)| n)
            .collect()
    }

    #[test]
    fn field_selectors() {
        assert_eq!(matching(Some("metadata.name=b"), None), ["b"]);
        assert_eq!(matching(Some("metadata.name==b"), None), ["b"]);
        assert_eq!(matching(Some("metadata.name!=b"), None), ["a", "c"]);
        assert_eq!(
            matching(Some("metadata.name!=b,metadata.name!=c"), None),
            ["a"]
        );
        assert_eq!(matching(Some("spec.unschedulable=false"), None), ["a", "c"]);
        assert_eq!(matching(Some(""), None), ["a", "b", "c"]);
    }

    #[test]
    fn label_selectors() {
        assert_eq!(matching(None, Some("zone=a")), ["a"]);
        assert_eq!(matching(None, Some("zone!=a")), ["b", "c"]);
        assert_eq!(matching(None, Some("zone")), ["a", "b"]);
        assert_eq!(matching(None, Some("!zone")), ["c"]);
        assert_eq!(matching(None, Some("zone in (a, b),role")), ["a"]);
        assert_eq!(matching(None, Some("zone notin (a)")), ["b", "c"]);
        assert_eq!(
            matching(Some("metadata.name!=a"), Some("zone")),
            ["b"],
            "fields and labels AND together"
        );
    }

    #[test]
    fn unsupported_or_malformed_selectors_are_bad_requests() {
        let nodes = def("nodes");
        assert_eq!(
            Selector::parse(&nodes, Some("status.phase=Running"), None),
            Err("field label not supported: status.phase".into())
        );
        assert!(Selector::parse(&nodes, Some("metadata.namespace=x"), None).is_err());
        assert!(
            Selector::parse(
                &def("secrets"),
                Some("metadata.namespace=x,type=Opaque"),
                None
            )
            .is_ok()
        );
        for bad in [
            "a b",
            "zone in (a",
            "zone within (a)",
            "=x",
            "app=a b",
            "/x",
        ] {
            assert!(
                Selector::parse(&nodes, None, Some(bad)).is_err(),
                "{bad:?} should not parse"
            );
        }
        assert!(Selector::parse(&nodes, None, Some("app.kubernetes.io/name=coredns")).is_ok());
    }
}
