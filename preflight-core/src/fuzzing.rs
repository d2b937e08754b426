//! Entry points of the fuzz targets in `fuzz/` (`cargo +nightly fuzz run values`) and of the
//! bounded property tests of the suite: each takes arbitrary bytes as preflight would take
//! them and panics only when an invariant that must hold for every input breaks. Not part of
//! the API.

use crate::config::{Config, ConfigError};
use crate::contract::{ContractRules, Origin, ValuesError, ValuesLayer};
use crate::dns::{self, DnsName};
use crate::plan::{Selection, plan};
use crate::platform::{Scope, app_named, app_names};
use crate::tier::Tier;
use crate::yaml::YamlError;

/// A values document: refused at a place inside it, or parsed, then validated under both sets
/// of contract rules without a panic, a valid contract planned at every tier it allows.
pub fn values(bytes: &[u8]) {
    match ValuesLayer::from_bytes(bytes, Origin::File("values.yaml".into())) {
        Ok(layer) => {
            for rules in [ContractRules::V1, ContractRules::Adr0180] {
                if let Ok(values) = layer.clone().validate_with(rules) {
                    assert!(values.ceiling.tier <= Tier::Three);
                    for tier in Tier::ALL.into_iter().filter(|t| *t <= values.ceiling.tier) {
                        plan(
                            &values,
                            &Config::default(),
                            Scope::Gate(tier),
                            &Selection::default(),
                        )
                        .unwrap_or_else(|e| panic!("the default config plans tier {tier}: {e}"));
                    }
                }
            }
        }
        Err(ValuesError::Parse { error, .. }) => assert_placed(bytes, &error),
        Err(other) => panic!("a document is parsed, or refused at a place in it: {other}"),
    }
}

/// A settings document: refused at a place inside it, or parsed into settings that print and
/// read back the same, and that plan every scope without a panic.
pub fn config(bytes: &[u8]) {
    let config = match Config::from_bytes(bytes, "preflight.yaml") {
        Ok(config) => config,
        Err(ConfigError::Parse { error, .. }) => return assert_placed(bytes, &error),
        Err(other) => panic!("a document is parsed, or refused at a place in it: {other}"),
    };
    let printed = serde_saphyr::to_string(&config).expect("settings always print");
    let again = Config::from_yaml(&printed, "printed.yaml")
        .unwrap_or_else(|e| panic!("the printed settings read back:\n{printed}\n{e}"));
    assert_eq!(
        again, config,
        "the printed settings read back the same:\n{printed}"
    );
    let values = ValuesLayer::from_yaml(
        "bootstrap:\n  mode: persistent\n  env: prod\nplatform:\n  rdsAvailable: true\n",
        Origin::File("values.yaml".into()),
    )
    .and_then(ValuesLayer::validate)
    .expect("a valid contract");
    let scopes = Tier::ALL.into_iter().map(Scope::Gate).chain(
        app_names()
            .into_iter()
            .filter_map(app_named)
            .map(Scope::App),
    );
    for scope in scopes {
        // Settings may name checks or apps that do not exist: a usage error, not a panic.
        let _ = plan(&values, &config, scope, &Selection::default());
    }
}

/// A DNS name as Route53 or a person writes it (two names when the input holds a NUL: a name
/// and a zone): its printed form reads back as the same name, every name is within itself,
/// and a build subdomain found lies between the name and the zone.
pub fn dns_name(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let (name, zone) = text
        .split_once('\0')
        .unwrap_or((&text, "dev.goldenpathidp.io"));
    for t in [name, zone] {
        let parsed = DnsName::parse(t);
        let printed = parsed.to_string();
        assert_eq!(
            DnsName::parse(&printed),
            parsed,
            "{t:?} printed as {printed:?}"
        );
        assert!(parsed.is_within(&parsed), "{t:?} is within itself");
        if let Some(stripped) = parsed.without_type_prefix() {
            assert!(stripped.to_string().len() <= printed.len(), "{t:?}");
        }
    }
    if let Some(build) = dns::build_subdomain(name, zone) {
        assert!(dns::is_within(name, &build), "{name:?} lies in {build:?}");
        assert!(dns::is_within(&build, zone), "{build:?} lies in {zone:?}");
    }
    let _ = dns::ownership(&text);
}

/// A refusal points inside the document: a line it has (or the one after its last), a column
/// from 1.
fn assert_placed(bytes: &[u8], error: &YamlError) {
    // YAML breaks lines at LF, CR and CRLF alike.
    let breaks = bytes.iter().filter(|&&b| b == b'\n').count()
        + bytes
            .iter()
            .enumerate()
            .filter(|&(i, &b)| b == b'\r' && bytes.get(i + 1) != Some(&b'\n'))
            .count();
    let lines = breaks + 1;
    if let Some(line) = error.line {
        assert!(
            (1..=lines + 1).contains(&(line as usize)),
            "line {line} of a document of {lines} lines: {error}"
        );
    }
    if let Some(column) = error.column {
        assert!(column >= 1, "column {column}: {error}");
    }
    assert!(!error.message.is_empty(), "a refusal says why");
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Text made of the words the parsers meet: keys of both documents, values of every kind,
    /// YAML's punctuation, indentation, anchors, tags, and arbitrary characters.
    fn yamlish() -> impl Strategy<Value = Vec<u8>> {
        let words = prop_oneof![
            4 => proptest::sample::select(vec![
                "bootstrap", "mode", "maxTier", "env", "buildId", "platform", "rdsAvailable",
                "storageClassReady", "dns", "hostSuffix", "baseDomain", "ownerId", "runner",
                "attemptTimeout", "backoffInitial", "backoffMax", "disable", "advisory", "checks",
                "nodes-ready", "minReady", "architectures", "postgres", "databases", "app",
                "port", "caBundle", "sync-waves", "bands", "keycloak-realm", "url", "irsa",
                "serviceAccounts", "storage-class", "name",
            ]),
            4 => proptest::sample::select(vec![
                "ephemeral", "persistent", "dev", "prod", "\"1.5\"", "1.5", "3", "2.0", "-1",
                "70000", "true", "false", "maybe", "~", "null", "10s", "0s", "soon", "b1",
                "26-01-23-01", "kube-system/x", "[10, 40]", "backstage", "keycloak",
            ]),
            6 => proptest::sample::select(vec![
                ": ", ":", "\n", "\n  ", "\n    ", "  ", "- ", "[", "]", "{", "}", ", ", "\"",
                "'", "#", "---\n", "...\n", "&a ", "*a", "!!binary ", "!!str ", "<<: ", "|\n",
                ">\n", "\t", "\r\n", "? ", "%YAML 1.2\n",
            ]),
            1 => any::<char>().prop_map(|c| Box::leak(c.to_string().into_boxed_str()) as &str),
        ];
        proptest::collection::vec(words, 0..48).prop_map(|w| w.concat().into_bytes())
    }

    /// Inputs the fuzz targets found, each once a failure.
    #[test]
    fn what_the_fuzzers_found() {
        // Lines broken by a lone CR, as YAML allows: the refusal's line counts them.
        values(b"e:ev\r(ev\rn :sls\rn :slseecretjanagebuild(ev\rn :sls\rn :slseecretj\0eanagebuildIdr:GetSecpIdr:GetSecpeo ");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// No values document panics the parser, the validation or the plan.
        #[test]
        fn any_values_document_is_parsed_or_refused_at_a_place(bytes in yamlish()) {
            values(&bytes);
        }

        /// No settings document panics the parser or the plan; parsed settings read back.
        #[test]
        fn any_settings_document_is_parsed_or_refused_at_a_place(bytes in yamlish()) {
            config(&bytes);
        }

        /// Bytes of any kind, not only text.
        #[test]
        fn any_bytes_are_parsed_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            values(&bytes);
            config(&bytes);
            dns_name(&bytes);
        }

        /// Names as Route53 escapes them, and zones, hold the DNS invariants.
        #[test]
        fn any_name_and_zone_hold_the_dns_invariants(
            name in "(\\\\[0-9]{0,3}|[a-zA-Z0-9*_ .\\-]|b-|\\PC){0,24}",
            zone in "(dev\\.goldenpathidp\\.io|[a-z.\\\\]{0,12}|\\PC{0,4})",
        ) {
            dns_name(format!("{name}\0{zone}").as_bytes());
            dns_name(format!("{name}.b-1.{zone}\0{zone}").as_bytes());
        }
    }
}
