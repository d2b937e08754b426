//! Property tests of the parsers that read operator input: whatever the bytes, they return a
//! value or an error that names the file (and the place in it), and never panic.

use std::path::PathBuf;

use preflight_core::Tier;
use preflight_core::config::Config;
use preflight_core::contract::{Origin, ValuesLayer};
use proptest::prelude::*;

/// YAML-ish text: the contract's own keys and values mixed with YAML punctuation, so that the
/// generator reaches deep into the schema instead of failing on the first byte.
fn yamlish() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "bootstrap:",
        "platform:",
        "dns:",
        "runner:",
        "checks:",
        "mode:",
        "maxTier:",
        "env:",
        "buildId:",
        "hostSuffix:",
        "ephemeral",
        "persistent",
        "\"1.5\"",
        "1.5",
        "2.5",
        "-1",
        "abc",
        "dev",
        "prod",
        "nodes-ready:",
        "minReady:",
        "attemptTimeout:",
        "10s",
        "[",
        "]",
        "{",
        "}",
        "- ",
        ",",
        ": ",
        "\n",
        "\n  ",
        "\n    ",
        "&a ",
        "*a",
        "!!str ",
        "'",
        "\"",
        "#",
        "~",
        "null",
        "true",
        "é",
        "\u{0}",
    ]);
    prop::collection::vec(atoms, 0..40).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn values_documents_never_panic(text in yamlish()) {
        match ValuesLayer::from_yaml(&text, Origin::File(PathBuf::from("fuzz.yaml"))) {
            // Validation errors name their fields; only that it returns matters here.
            Ok(layer) => drop(layer.validate()),
            // The file, then its line and column when the parser knows them.
            Err(e) => prop_assert!(e.to_string().starts_with("fuzz.yaml:"), "{}", e),
        }
    }

    #[test]
    fn config_documents_never_panic(text in yamlish()) {
        if let Err(e) = Config::from_yaml(&text, "fuzz.yaml") {
            prop_assert!(e.to_string().starts_with("fuzz.yaml:"), "{}", e);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = ValuesLayer::from_yaml(&text, Origin::File(PathBuf::from("fuzz.yaml"))).map(ValuesLayer::validate);
        let _ = Config::from_yaml(&text, "fuzz.yaml");
        let _ = text.parse::<Tier>();
    }
}
