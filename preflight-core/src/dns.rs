//! DNS names as Route53 returns them, ExternalDNS's ownership TXT records, and the platform's
//! rules on names: containment in a domain and the build subdomains of ephemeral clusters
//! (ADR-0178), shared by the contract, `dns-scope`, `external-dns-confined` and
//! `ingress-hosts` so that the rule is written once.
//!
//! Route53 returns every character of a name other than `a-z`, `0-9`, `-` and `_` as a
//! three-digit octal escape (`*` as `\052`), and stores letters in lowercase. A name is
//! therefore compared label by label after decoding: an escaped dot (`\056`) is part of a
//! label, not a separator.

use std::fmt;

/// A decoded DNS name: its labels, leftmost first, lowercase, without the root.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct DnsName {
    labels: Vec<Vec<u8>>,
}

impl DnsName {
    /// Decodes a name as Route53 (or a person) writes it: `\NNN` octal and `\c` escapes, an
    /// optional trailing dot. Never fails: a malformed escape is kept as written, empty labels
    /// are dropped.
    pub(crate) fn parse(text: &str) -> DnsName {
        let bytes = text.as_bytes();
        let mut labels = Vec::new();
        let mut label = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => {
                    let digits = bytes.get(i + 1..i + 4);
                    match digits.and_then(octal) {
                        Some(byte) => {
                            label.push(byte);
                            i += 4;
                        }
                        None => match bytes.get(i + 1) {
                            Some(&c) => {
                                label.push(c);
                                i += 2;
                            }
                            None => {
                                label.push(b'\\');
                                i += 1;
                            }
                        },
                    }
                }
                // An empty label (`a..b`) is not a name anyone can own: skipped, so that every
                // name has one normal form.
                b'.' => {
                    if !label.is_empty() {
                        labels.push(std::mem::take(&mut label));
                    }
                    i += 1;
                }
                c => {
                    label.push(c);
                    i += 1;
                }
            }
        }
        if !label.is_empty() {
            labels.push(label);
        }
        for l in &mut labels {
            l.make_ascii_lowercase();
        }
        DnsName { labels }
    }

    /// Whether this name is `parent` or lies under it.
    pub(crate) fn is_within(&self, parent: &DnsName) -> bool {
        self.labels.len() >= parent.labels.len()
            && self.labels[self.labels.len() - parent.labels.len()..] == parent.labels[..]
    }

    /// The labels between this name and `parent`, rightmost (nearest the parent) first, when
    /// it lies strictly under `parent`.
    pub(crate) fn labels_under<'a>(&'a self, parent: &DnsName) -> Option<Vec<&'a [u8]>> {
        if !self.is_within(parent) || self.labels.len() == parent.labels.len() {
            return None;
        }
        let n = self.labels.len() - parent.labels.len();
        Some(self.labels[..n].iter().rev().map(Vec::as_slice).collect())
    }

    /// The name without its leftmost label's `{type}-` prefix, which ExternalDNS's newer TXT
    /// registry puts on ownership records (`a-www.example.com` owns `www.example.com`).
    pub(crate) fn without_type_prefix(&self) -> Option<DnsName> {
        let first = self.labels.first()?;
        let rest = RECORD_TYPE_PREFIXES
            .iter()
            .find_map(|p| first.strip_prefix(p.as_bytes()))?;
        let mut labels = self.labels.clone();
        if rest.is_empty() {
            // `a-.example.com` cannot be written; a bare `a-example.com` is the apex form.
            labels.remove(0);
        } else {
            labels[0] = rest.to_vec();
        }
        Some(DnsName { labels })
    }
}

/// Whether a label names a build subdomain, `b-{buildId}`. The contract takes any DNS label as
/// a build id (the platform's are dated, `26-01-23-01`, but `b1` or `pr-42` are valid too), so
/// every `b-` label right under the environment's zone is one: a persistent cluster must not
/// use such a name for itself.
pub(crate) fn is_build_label(label: &[u8]) -> bool {
    label
        .strip_prefix(b"b-")
        .is_some_and(|rest| !rest.is_empty())
}

impl DnsName {
    /// The build subdomain this name lies in, `b-{buildId}` right under the environment's
    /// zone `env_zone` (the build subdomain itself included), as its label.
    pub(crate) fn build_label(&self, env_zone: &DnsName) -> Option<String> {
        let under = self.labels_under(env_zone)?;
        under
            .first()
            .filter(|l| is_build_label(l))
            .map(|l| String::from_utf8_lossy(l).into_owned())
    }
}

/// Whether the name `name` is the domain `parent` or lies under it, compared label by label
/// (case, a trailing dot and a filter's leading dot aside; a wildcard `*.` is a label).
pub(crate) fn is_within(name: &str, parent: &str) -> bool {
    DnsName::parse(name).is_within(&DnsName::parse(parent))
}

/// The build subdomain `b-{buildId}.{env_zone}` that `name` lies in, if any: such a
/// subdomain belongs to an ephemeral cluster, never to the environment's persistent one.
pub(crate) fn build_subdomain(name: &str, env_zone: &str) -> Option<String> {
    let zone = DnsName::parse(env_zone);
    let name = DnsName::parse(name);
    let label = name.labels_under(&zone)?.first().copied()?;
    // Printed as a name, so that a label holding a dot or an unprintable byte (escaped by
    // Route53) reads back as the same label.
    is_build_label(label).then(|| {
        let mut labels = vec![label.to_vec()];
        labels.extend(zone.labels.iter().cloned());
        DnsName { labels }.to_string()
    })
}

/// `{type}-` prefixes of ExternalDNS's newer ownership names, for the record types it manages.
const RECORD_TYPE_PREFIXES: [&str; 8] = [
    "a-", "aaaa-", "cname-", "mx-", "ns-", "srv-", "txt-", "naptr-",
];

fn octal(digits: &[u8]) -> Option<u8> {
    let mut value: u16 = 0;
    for &d in digits {
        if !(b'0'..=b'7').contains(&d) {
            return None;
        }
        value = value * 8 + u16::from(d - b'0');
    }
    u8::try_from(value).ok()
}

impl fmt::Display for DnsName {
    /// Printable names as they are; a dot inside a label as `\.`, other bytes as `\NNN`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, label) in self.labels.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            for &b in label {
                match b {
                    b'.' => f.write_str("\\.")?,
                    b'!'..=b'~' if b != b'\\' => write!(f, "{}", char::from(b))?,
                    _ => write!(f, "\\{b:03o}")?,
                }
            }
        }
        Ok(())
    }
}

/// What an ExternalDNS ownership TXT record says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Ownership {
    /// `external-dns/owner`: the `--txt-owner-id` of the ExternalDNS that wrote it.
    pub owner: String,
    /// `external-dns/resource`, e.g. `ingress/backstage/backstage`, when recorded.
    pub resource: Option<String>,
}

/// Reads a TXT record's value as ExternalDNS writes it:
/// `"heritage=external-dns,external-dns/owner=<id>,external-dns/resource=<kind>/<ns>/<name>"`.
/// Route53 returns the value quoted, possibly as several quoted strings; anything else
/// (SPF, verification tokens, encrypted registries) is not an ownership record.
pub(crate) fn ownership(value: &str) -> Option<Ownership> {
    let text = unquote(value);
    let mut heritage = false;
    let mut owner = None;
    let mut resource = None;
    for pair in text.split(',') {
        match pair.trim().split_once('=') {
            Some(("heritage", "external-dns")) => heritage = true,
            Some(("external-dns/owner", o)) => owner = Some(o.to_owned()),
            Some(("external-dns/resource", r)) => resource = Some(r.to_owned()),
            _ => {}
        }
    }
    Some(Ownership {
        owner: owner.filter(|_| heritage)?,
        resource,
    })
}

/// The text of a TXT value: its quoted strings concatenated, `\"` and `\\` unescaped. A value
/// without quotes is taken as it is.
fn unquote(value: &str) -> String {
    let value = value.trim();
    if !value.starts_with('"') {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len());
    let mut quoted = false;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            c if quoted => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_route53_escapes_label_by_label() {
        let wildcard = DnsName::parse("\\052.b-26-01-23-01.dev.goldenpathidp.io.");
        assert_eq!(wildcard.to_string(), "*.b-26-01-23-01.dev.goldenpathidp.io");
        assert_eq!(
            wildcard,
            DnsName::parse("*.B-26-01-23-01.dev.goldenpathidp.io")
        );
        let suffix = DnsName::parse("b-26-01-23-01.dev.goldenpathidp.io");
        assert!(wildcard.is_within(&suffix));
        assert!(suffix.is_within(&suffix));
        assert!(!DnsName::parse("xb-26-01-23-01.dev.goldenpathidp.io").is_within(&suffix));

        // An escaped dot is part of a label: this name is one label under dev.goldenpathidp.io.
        let dotted = DnsName::parse("www\\056b-26-01-23-01.dev.goldenpathidp.io.");
        assert!(!dotted.is_within(&suffix));
        assert_eq!(
            dotted.to_string(),
            "www\\.b-26-01-23-01.dev.goldenpathidp.io"
        );
        assert_eq!(
            DnsName::parse("\\100home\\040page\\134.dev.goldenpathidp.io").to_string(),
            "@home\\040page\\134.dev.goldenpathidp.io"
        );
        // Malformed escapes are kept, never a panic.
        for odd in ["\\", "a\\9", "\\08", "\\777.x", "..", ".", "", "\\\\\\"] {
            let _ = DnsName::parse(odd).to_string();
        }
    }

    #[test]
    fn finds_the_labels_under_a_zone() {
        let env = DnsName::parse("dev.goldenpathidp.io");
        let name = DnsName::parse("a-www.b-26-01-23-01.dev.goldenpathidp.io");
        let under = name.labels_under(&env).expect("under");
        assert_eq!(under, [b"b-26-01-23-01".as_slice(), b"a-www".as_slice()]);
        assert_eq!(env.labels_under(&env), None);
        assert_eq!(
            name.without_type_prefix().map(|n| n.to_string()).as_deref(),
            Some("www.b-26-01-23-01.dev.goldenpathidp.io")
        );
        assert_eq!(
            DnsName::parse("cname-b-26-01-23-01.dev.goldenpathidp.io")
                .without_type_prefix()
                .map(|n| n.to_string())
                .as_deref(),
            Some("b-26-01-23-01.dev.goldenpathidp.io")
        );
        assert_eq!(
            DnsName::parse("www.dev.goldenpathidp.io").without_type_prefix(),
            None
        );
    }

    #[test]
    fn tells_build_subdomains_and_containment_apart() {
        let env = "dev.goldenpathidp.io";
        for (name, build) in [
            (
                "grafana.b-26-01-23-01.dev.goldenpathidp.io",
                Some("b-26-01-23-01.dev.goldenpathidp.io"),
            ),
            (
                "*.B-26-01-23-01.dev.goldenpathidp.io.",
                Some("b-26-01-23-01.dev.goldenpathidp.io"),
            ),
            (
                "b-26-01-24-02.dev.goldenpathidp.io",
                Some("b-26-01-24-02.dev.goldenpathidp.io"),
            ),
            ("b-1.dev.goldenpathidp.io", Some("b-1.dev.goldenpathidp.io")),
            // Build ids are any DNS label (`buildId: b1`, `pr-42`).
            (
                "backstage.b-b1.dev.goldenpathidp.io",
                Some("b-b1.dev.goldenpathidp.io"),
            ),
            (
                "b-roll.dev.goldenpathidp.io",
                Some("b-roll.dev.goldenpathidp.io"),
            ),
            // Ordinary names: no build id, or not right under the environment's zone.
            ("b-.dev.goldenpathidp.io", None),
            ("grafana.dev.goldenpathidp.io", None),
            ("b-26.apps.dev.goldenpathidp.io", None),
            ("dev.goldenpathidp.io", None),
            ("grafana.b-26-01-23-01.test.goldenpathidp.io", None),
            // An escaped dot is part of a label: not a build label.
            ("www\\056b-26-01-23-01.dev.goldenpathidp.io", None),
        ] {
            assert_eq!(build_subdomain(name, env).as_deref(), build, "{name}");
        }
        // A build label holding an escaped dot is printed escaped, so that it reads back.
        let odd = "app.b-x\\056y.dev.goldenpathidp.io";
        let build = build_subdomain(odd, env).expect("a build subdomain");
        assert_eq!(build, "b-x\\.y.dev.goldenpathidp.io");
        assert!(is_within(odd, &build) && is_within(&build, env));
        assert!(is_within("Grafana.dev.goldenpathidp.io.", env));
        assert!(is_within("*.dev.goldenpathidp.io", env));
        assert!(is_within(env, ".dev.goldenpathidp.io"));
        assert!(!is_within("xdev.goldenpathidp.io", env));
        assert!(!is_within("goldenpathidp.io", env));
        assert!(is_build_label(b"b-2"));
        assert!(is_build_label(b"b-b1") && is_build_label(b"b-pr-42"));
        assert!(!is_build_label(b"b2") && !is_build_label(b"b-") && !is_build_label(b"bx-1"));
    }

    #[test]
    fn reads_ownership_records_old_and_new() {
        // Both from ExternalDNS's AWS tutorials (shared/fixtures/externaldns-txt-registry-records.txt).
        let legacy = ownership("\"heritage=external-dns,external-dns/owner=external-dns,external-dns/resource=service/default/nginx\"").expect("ownership");
        assert_eq!(legacy.owner, "external-dns");
        assert_eq!(legacy.resource.as_deref(), Some("service/default/nginx"));
        let newer = ownership("\"heritage=external-dns,external-dns/owner=aws-localstack,external-dns/resource=crd/default/cname-example\"").expect("ownership");
        assert_eq!(newer.owner, "aws-localstack");
        // Split into several strings, as DNS does for long values.
        let split = ownership(
            "\"heritage=external-dns,external-dns/ow\" \"ner=goldenpath-dev-26-01-23-01\"",
        )
        .expect("ownership");
        assert_eq!(split.owner, "goldenpath-dev-26-01-23-01");
        for other in [
            "\"v=spf1 include:amazonses.com ~all\"",
            "\"external-dns/owner=x\"",
            "\"heritage=external-dns\"",
            "",
            "\"",
            "\"\\",
        ] {
            assert_eq!(ownership(other), None, "{other:?}");
        }
    }

    proptest::proptest! {
        /// Whatever Route53 (or a fuzzer) returns, parsing never panics and the printed form
        /// reads back as the same name.
        #[test]
        fn names_print_and_read_back(text in "(\\\\[0-9]{0,3}|[a-zA-Z0-9*_@ .\\-]|\\PC){0,40}") {
            let name = DnsName::parse(&text);
            proptest::prop_assert_eq!(DnsName::parse(&name.to_string()), name);
        }

        /// Any TXT value: an ownership record or none, never a panic.
        #[test]
        fn any_txt_value_is_read_or_ignored(value in "\\PC{0,80}") {
            let _ = ownership(&value);
        }
    }
}
