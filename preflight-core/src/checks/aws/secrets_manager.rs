//! `secrets-manager`: each app's remote secret exists in AWS Secrets Manager and holds the
//! properties its ExternalSecret maps, before the app (and its ExternalSecret) exists.
//!
//! Only property NAMES leave this module's parsing: values are held in [`Redacted`], which never
//! prints, and reach only the caller that logs in with them ([`RemoteSecret::value`]).

use std::collections::BTreeMap;
use std::fmt;

use aws_sdk_secretsmanager::error::SdkError;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::check::{Attempt, Built, Check, Context, Definition, Family, Retry, Site};
use crate::outcome::{Outcome, name_list};
use crate::platform::{NeededBy, Provider, app_named};
use crate::reads::{IamGrant, Reads};
use crate::tier::Tier;

/// The IAM action every read here needs.
const ACTION: &str = "secretsmanager:GetSecretValue";

/// The platform's name of an app's remote database secret: `goldenpath/{env}/{app}/postgres`.
#[must_use]
pub(crate) fn remote_secret_name(env: &str, app: &str) -> String {
    format!("goldenpath/{env}/{app}/postgres")
}

/// `checks.secrets-manager`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretsManagerSettings {
    /// The remote secrets to verify, one per app.
    pub secrets: Vec<RemoteSecretSettings>,
}

impl Default for SecretsManagerSettings {
    fn default() -> Self {
        let app = |name: &str| RemoteSecretSettings {
            app: name.to_owned(),
            name: None,
            properties: default_properties(),
        };
        SecretsManagerSettings {
            secrets: vec![app("backstage"), app("keycloak")],
        }
    }
}

/// One app's remote secret, as its ExternalSecret reads it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RemoteSecretSettings {
    /// The app whose ExternalSecret syncs from the secret; named in messages and, unless
    /// `name` is set, part of the secret's name.
    pub app: String,
    /// The secret's name or ARN; none: the platform's `goldenpath/{env}/{app}/postgres`.
    #[serde(default)]
    pub name: Option<String>,
    /// The properties the ExternalSecret maps (`remoteRef.property`); only their presence is
    /// checked. Default: `username`, `password`.
    #[serde(default = "default_properties")]
    pub properties: Vec<String>,
}

fn default_properties() -> Vec<String> {
    vec!["username".to_owned(), "password".to_owned()]
}

/// A property's value: compared and sent, never shown.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Redacted(String);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A remote secret read from Secrets Manager: a JSON object of properties.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RemoteSecret {
    /// The name (or ARN) it was read by.
    pub name: String,
    /// Its properties; numbers are held as their decimal text.
    pub properties: BTreeMap<String, Redacted>,
}

impl RemoteSecret {
    /// One property's value, for the one caller that needs values (a database login).
    pub(crate) fn value(&self, property: &str) -> Option<&str> {
        self.properties.get(property).map(|v| v.0.as_str())
    }

    /// Its property names, sorted.
    pub(crate) fn property_names(&self) -> Vec<String> {
        self.properties.keys().cloned().collect()
    }
}

/// Parses a SecretString into its properties. The error says what shape the string has
/// instead of a JSON object of strings and numbers, never anything of its content.
pub(crate) fn parse_properties(secret: &str) -> Result<BTreeMap<String, Redacted>, &'static str> {
    // serde_json's errors quote no input, but they are dropped anyway: the shape is enough.
    let Ok(value) = serde_json::from_str::<Value>(secret) else {
        return Err("not JSON");
    };
    let object = match value {
        Value::Object(o) => o,
        Value::Array(_) => return Err("a JSON array"),
        Value::String(_) => return Err("a JSON string"),
        Value::Number(_) => return Err("a JSON number"),
        Value::Bool(_) => return Err("a JSON boolean"),
        Value::Null => return Err("JSON null"),
    };
    object
        .into_iter()
        .map(|(name, value)| match value {
            Value::String(s) => Ok((name, Redacted(s))),
            Value::Number(n) => Ok((name, Redacted(n.to_string()))),
            Value::Object(_) => Err("a JSON object with a nested object as a property"),
            Value::Array(_) => Err("a JSON object with an array as a property"),
            Value::Bool(_) => Err("a JSON object with a boolean property"),
            Value::Null => Err("a JSON object with a null property"),
        })
        .collect()
}

/// What one read of a secret found; the shape the judge takes, without values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// No such secret, or no current version of its value.
    Absent,
    /// Marked for deletion: unreadable until restored.
    ScheduledForDeletion,
    /// Not a JSON object of strings and numbers; says what it is instead.
    Malformed(&'static str),
    /// A JSON object with these property names.
    Properties(Vec<String>),
}

/// Reads a secret's current value. Errors other than a missing or unusable secret are
/// attempts that say why it could not be read.
async fn read(
    client: &aws_sdk_secretsmanager::Client,
    name: &str,
) -> Result<Result<RemoteSecret, Found>, Box<Attempt>> {
    let answer = client.get_secret_value().secret_id(name).send().await;
    let output = match answer {
        Ok(o) => o,
        Err(e) => return read_failure(name, &e).map(Err),
    };
    // The output's own Debug redacts the value; it is never formatted here anyway.
    let shape = if let Some(text) = output.secret_string() {
        match parse_properties(text) {
            Ok(properties) => {
                return Ok(Ok(RemoteSecret {
                    name: name.to_owned(),
                    properties,
                }));
            }
            Err(shape) => shape,
        }
    } else if output.secret_binary().is_some() {
        "binary"
    } else {
        "empty"
    };
    Ok(Err(Found::Malformed(shape)))
}

/// Maps a failed `GetSecretValue`: a missing or deleted secret is this check's own finding.
fn read_failure(name: &str, err: &SdkError<GetSecretValueError>) -> Result<Found, Box<Attempt>> {
    if let Some(e) = err.as_service_error() {
        if e.is_resource_not_found_exception() {
            return Ok(Found::Absent);
        }
        // AWS says "... because it was marked for deletion", moto "... marked deleted".
        if e.is_invalid_request_exception()
            && e.message()
                .is_some_and(|m| m.to_lowercase().contains("delet"))
        {
            return Ok(Found::ScheduledForDeletion);
        }
        if e.is_decryption_failure() {
            return Err(Box::new(Attempt::settled(
                Outcome::fail(
                    "aws-forbidden",
                    format!("Secrets Manager cannot decrypt secret {name} with its KMS key"),
                )
                .hint("Allow kms:Decrypt on the secret's KMS key to the role preflight runs as (its IRSA role in the cluster)."),
            )));
        }
    }
    Err(Box::new(super::failure(
        ACTION,
        &format!("secret {name}"),
        err,
    )))
}

/// Reads a remote secret: `Ok(None)` when it does not exist (or has no current value); a
/// failed attempt when it cannot be read, is scheduled for deletion, or is not a JSON object
/// of strings and numbers.
pub(crate) async fn fetch_remote(
    client: &aws_sdk_secretsmanager::Client,
    name: &str,
) -> Result<Option<RemoteSecret>, Box<Attempt>> {
    remote(name, read(client, name).await?)
}

/// What a caller of [`fetch_remote`] gets of a read: findings other than absence fail.
fn remote(
    name: &str,
    read: Result<RemoteSecret, Found>,
) -> Result<Option<RemoteSecret>, Box<Attempt>> {
    let found = match read {
        Ok(secret) => return Ok(Some(secret)),
        Err(Found::Absent) => return Ok(None),
        Err(found) => found,
    };
    match problem(name, None, &[], &found) {
        Some((code, message, hint)) => Err(Box::new(Attempt::settled(
            Outcome::fail(code, message).hint(hint),
        ))),
        // Deleted and malformed secrets are always problems; no other finding comes here.
        None => Ok(None),
    }
}

/// One wanted secret, its name resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Wanted {
    /// The app whose ExternalSecret syncs from it.
    pub app: String,
    /// Its name or ARN.
    pub name: String,
    /// The properties that must be present.
    pub properties: Vec<String>,
}

const MISSING: &str = "remote-secret-missing";
const MALFORMED: &str = "remote-secret-malformed";
const PROPERTIES_MISSING: &str = "remote-secret-properties-missing";

/// The problem with one secret, if any: code, message and hint. Only names appear in them.
fn problem(
    name: &str,
    app: Option<&str>,
    wanted: &[String],
    found: &Found,
) -> Option<(&'static str, String, String)> {
    let subject = match app {
        Some(app) => format!("secret {name} (app {app})"),
        None => format!("secret {name}"),
    };
    let synced = match app {
        Some(app) => format!("the ExternalSecret of {app} syncs its Kubernetes Secret from it"),
        None => "the app's ExternalSecret syncs its Kubernetes Secret from it".to_owned(),
    };
    match found {
        Found::Absent => Some((
            MISSING,
            format!("{subject} does not exist in Secrets Manager (or has no current value)"),
            format!(
                "Create it in Terraform (or aws secretsmanager create-secret --name {name} --secret-string file://properties.json) as a JSON object{}: {synced}.",
                if wanted.is_empty() {
                    String::new()
                } else {
                    format!(" with {}", name_list(wanted, 10))
                }
            ),
        )),
        Found::ScheduledForDeletion => Some((
            MISSING,
            format!("{subject} is scheduled for deletion in Secrets Manager"),
            format!(
                "Restore it (aws secretsmanager restore-secret --secret-id {name}) or recreate it in Terraform: {synced}."
            ),
        )),
        Found::Malformed(shape) => Some((
            MALFORMED,
            format!("{subject} is not a JSON object of string properties: it is {shape}"),
            format!(
                "Store it as a JSON object of properties (\"username\", \"password\", ...), in Terraform or with aws secretsmanager put-secret-value: {synced}, one property per key."
            ),
        )),
        Found::Properties(present) => {
            let missing: Vec<&String> = wanted.iter().filter(|p| !present.contains(p)).collect();
            if missing.is_empty() {
                return None;
            }
            let mut present = present.clone();
            present.sort();
            let has = if present.is_empty() {
                "no properties".to_owned()
            } else {
                format!("only {}", name_list(&present, 20))
            };
            Some((
                PROPERTIES_MISSING,
                format!(
                    "{subject} lacks {} {} (it has {has})",
                    if missing.len() == 1 {
                        "property"
                    } else {
                        "properties"
                    },
                    name_list(&missing, 20)
                ),
                format!(
                    "Add the missing properties to the secret's JSON (in Terraform, or aws secretsmanager put-secret-value), or correct checks.secrets-manager if the ExternalSecret maps other names: {synced} (remoteRef.property)."
                ),
            ))
        }
    }
}

/// Judges what was found of every wanted secret. A missing secret outranks a malformed one,
/// which outranks missing properties; the message names every problem.
pub(crate) fn judge(results: &[(Wanted, Found)]) -> Outcome {
    let problems: Vec<(&'static str, String, String)> = results
        .iter()
        .filter_map(|(w, found)| problem(&w.name, Some(&w.app), &w.properties, found))
        .collect();
    let names: Vec<&str> = results.iter().map(|(w, _)| w.name.as_str()).collect();
    let Some(code) = [MISSING, MALFORMED, PROPERTIES_MISSING]
        .into_iter()
        .find(|c| problems.iter().any(|(code, _, _)| code == c))
    else {
        if results.is_empty() {
            return Outcome::pass(
                "remote-secrets-present",
                "no remote secrets are configured to verify",
            );
        }
        let described: Vec<String> = results
            .iter()
            .map(|(w, _)| format!("{} ({}: {})", w.name, w.app, name_list(&w.properties, 10)))
            .collect();
        return Outcome::pass(
            "remote-secrets-present",
            format!(
                "the remote secrets hold the mapped properties: {}",
                described.join(", ")
            ),
        )
        .evidence("secrets", names.join(", "));
    };
    let message: Vec<&str> = problems.iter().map(|(_, m, _)| m.as_str()).collect();
    let mut hints: Vec<&str> = Vec::new();
    for (_, _, hint) in &problems {
        if !hints.contains(&hint.as_str()) {
            hints.push(hint);
        }
    }
    Outcome::fail(code, message.join("; "))
        .hint(hints.join(" "))
        .evidence("secrets", names.join(", "))
}

/// The `secrets-manager` check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretsManager {
    secrets: Vec<Wanted>,
}

impl SecretsManager {
    /// A check of these secrets; names left unset follow the platform's convention for `env`.
    #[must_use]
    pub fn new(settings: &SecretsManagerSettings, env: &str) -> Self {
        SecretsManager {
            secrets: settings
                .secrets
                .iter()
                .map(|s| Wanted {
                    app: s.app.clone(),
                    name: s
                        .name
                        .clone()
                        .unwrap_or_else(|| remote_secret_name(env, &s.app)),
                    properties: s.properties.clone(),
                })
                .collect(),
        }
    }
}

/// The resource of a secret in an IAM policy: an ARN as given, a name with the six
/// characters AWS appends to it in the secret's ARN.
/// The grant to read one remote secret.
pub(crate) fn remote_secret_grant(name: &str) -> IamGrant {
    IamGrant {
        action: ACTION,
        resource: iam_resource(name),
    }
}

fn iam_resource(name: &str) -> String {
    if name.starts_with("arn:") {
        name.to_owned()
    } else {
        format!("arn:aws:secretsmanager:*:*:secret:{name}-??????")
    }
}

impl Definition for SecretsManager {
    const ID: &'static str = "secrets-manager";
    const FAMILY: Family = Family::Aws;
    type Settings = SecretsManagerSettings;

    /// The gate of each app's tier: before the app's ExternalSecret exists, its source must.
    fn needed_by(settings: &SecretsManagerSettings) -> NeededBy {
        NeededBy {
            tier: settings.secrets.iter().map(|s| app_tier(&s.app)).min(),
            ..NeededBy::default()
        }
    }

    fn provided_by(_: &SecretsManagerSettings, _: &Site<'_>) -> Provider {
        Provider::Foundation("Terraform (Secrets Manager)")
    }

    fn build(settings: &SecretsManagerSettings, site: &Site<'_>) -> Result<Built, String> {
        let tier = site.scope.tier();
        let wanted = SecretsManagerSettings {
            secrets: settings
                .secrets
                .iter()
                .filter(|s| app_tier(&s.app) <= tier)
                .cloned()
                .collect(),
        };
        if wanted.secrets.is_empty() {
            return Err(format!(
                "no remote secret of an app of tier {tier} or below is configured"
            ));
        }
        let apps: Vec<&str> = wanted.secrets.iter().map(|s| s.app.as_str()).collect();
        Ok(Built::new(
            SecretsManager::new(&wanted, &site.values.env.value),
            format!(
                "remote secrets of {} exist in Secrets Manager with the properties their ExternalSecrets map",
                apps.join(", ")
            ),
            Self::provided_by(settings, site),
            &[],
        ))
    }
}

/// The tier of an app: its gate checks the app's remote secret (tier 2 for an app the platform
/// does not list).
fn app_tier(app: &str) -> Tier {
    app_named(app).map_or(Tier::Two, |a| a.tier)
}

#[async_trait::async_trait]
impl Check for SecretsManager {
    fn reads(&self) -> Reads {
        let mut iam: Vec<IamGrant> = self
            .secrets
            .iter()
            .map(|w| IamGrant {
                action: ACTION,
                resource: iam_resource(&w.name),
            })
            .collect();
        iam.sort();
        iam.dedup();
        Reads { kube: vec![], iam }
    }

    async fn attempt(&self, ctx: &Context) -> Attempt {
        let Some(client) = ctx.secrets_manager() else {
            return super::no_client();
        };
        let reads =
            futures::future::join_all(self.secrets.iter().map(|w| read(client, &w.name))).await;
        let mut results = Vec::with_capacity(reads.len());
        let mut failed: Vec<Box<Attempt>> = Vec::new();
        for (wanted, read) in self.secrets.iter().zip(reads) {
            match read {
                Ok(Ok(secret)) => {
                    results.push((wanted.clone(), Found::Properties(secret.property_names())));
                }
                Ok(Err(found)) => results.push((wanted.clone(), found)),
                Err(attempt) => failed.push(attempt),
            }
        }
        // A read that failed outright says nothing of the secret: report it, a permanent
        // failure (forbidden, no credentials) before one that may pass on retry.
        if let Some(first) = failed
            .iter()
            .position(|a| a.retry == Retry::Never)
            .or((!failed.is_empty()).then_some(0))
        {
            return *failed.swap_remove(first);
        }
        Attempt::settled(judge(&results))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;

    const VALUE: &str = "s3cr3t-value";

    fn wanted(app: &str, properties: &[&str]) -> Wanted {
        Wanted {
            app: app.to_owned(),
            name: remote_secret_name("dev", app),
            properties: properties.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    fn present(names: &[&str]) -> Found {
        Found::Properties(names.iter().map(|p| (*p).to_owned()).collect())
    }

    fn assert_no_value(outcome: &Outcome) {
        let shown = format!(
            "{} {} {:?} {:?}",
            outcome.message,
            outcome.hint.clone().unwrap_or_default(),
            outcome.evidence,
            outcome
        );
        assert!(!shown.contains(VALUE), "a value leaked: {shown}");
    }

    #[test]
    fn parses_objects_of_strings_and_numbers_and_names_other_shapes() {
        for (text, expected) in [
            (
                r#"{"username":"backstage_app","password":"s3cr3t-value"}"#,
                Ok(vec!["password", "username"]),
            ),
            (r#"{"port":5432,"host":"db"}"#, Ok(vec!["host", "port"])),
            ("{}", Ok(vec![])),
            ("s3cr3t-value", Err("not JSON")),
            ("", Err("not JSON")),
            (r#"{"password":"s3cr3t-value""#, Err("not JSON")),
            (r#"["s3cr3t-value"]"#, Err("a JSON array")),
            (r#""s3cr3t-value""#, Err("a JSON string")),
            ("42", Err("a JSON number")),
            ("true", Err("a JSON boolean")),
            ("null", Err("JSON null")),
            (
                r#"{"password":{"v":"s3cr3t-value"}}"#,
                Err("a JSON object with a nested object as a property"),
            ),
            (
                r#"{"password":["s3cr3t-value"]}"#,
                Err("a JSON object with an array as a property"),
            ),
            (
                r#"{"ssl":true}"#,
                Err("a JSON object with a boolean property"),
            ),
            (
                r#"{"password":null}"#,
                Err("a JSON object with a null property"),
            ),
        ] {
            let parsed = parse_properties(text).map(|p| p.into_keys().collect::<Vec<_>>());
            let expected = expected.map(|e| e.into_iter().map(str::to_owned).collect::<Vec<_>>());
            assert_eq!(parsed, expected, "{text}");
        }
    }

    #[test]
    fn numbers_become_their_decimal_text() {
        let properties =
            parse_properties(r#"{"port":5432,"ratio":1.5,"big":18446744073709551615}"#)
                .expect("an object");
        let secret = RemoteSecret {
            name: "n".into(),
            properties,
        };
        assert_eq!(secret.value("port"), Some("5432"));
        assert_eq!(secret.value("ratio"), Some("1.5"));
        assert_eq!(secret.value("big"), Some("18446744073709551615"));
        assert_eq!(secret.value("absent"), None);
    }

    #[test]
    fn a_remote_secret_never_shows_its_values() {
        let secret = RemoteSecret {
            name: remote_secret_name("dev", "backstage"),
            properties: parse_properties(
                r#"{"username":"s3cr3t-value","password":"s3cr3t-value","port":5432}"#,
            )
            .expect("an object"),
        };
        assert_eq!(secret.value("password"), Some(VALUE));
        let debug = format!("{secret:?} {secret:#?}");
        assert!(!debug.contains(VALUE), "{debug}");
        assert!(!debug.contains("5432"), "{debug}");
        assert!(debug.contains("<redacted>") && debug.contains("password"));
    }

    #[test]
    fn judges_present_missing_malformed_and_incomplete_secrets() {
        let both = ["username", "password"];
        for (results, status, code, says) in [
            (
                vec![
                    (
                        wanted("backstage", &both),
                        present(&["password", "username", "host"]),
                    ),
                    (wanted("grafana", &both), present(&["password", "username"])),
                ],
                Status::Pass,
                "remote-secrets-present",
                vec![
                    "goldenpath/dev/backstage/postgres",
                    "goldenpath/dev/grafana/postgres",
                ],
            ),
            (
                vec![],
                Status::Pass,
                "remote-secrets-present",
                vec!["no remote secrets"],
            ),
            (
                vec![(wanted("backstage", &[]), present(&[]))],
                Status::Pass,
                "remote-secrets-present",
                vec!["backstage"],
            ),
            (
                vec![(wanted("backstage", &both), Found::Absent)],
                Status::Fail,
                "remote-secret-missing",
                vec![
                    "goldenpath/dev/backstage/postgres",
                    "app backstage",
                    "does not exist",
                ],
            ),
            (
                vec![(wanted("backstage", &both), Found::ScheduledForDeletion)],
                Status::Fail,
                "remote-secret-missing",
                vec!["scheduled for deletion"],
            ),
            (
                vec![(wanted("grafana", &both), Found::Malformed("a JSON array"))],
                Status::Fail,
                "remote-secret-malformed",
                vec!["goldenpath/dev/grafana/postgres", "it is a JSON array"],
            ),
            (
                vec![(wanted("grafana", &both), present(&["username", "pasword"]))],
                Status::Fail,
                "remote-secret-properties-missing",
                vec!["lacks property password", "it has only pasword, username"],
            ),
            (
                vec![(wanted("grafana", &both), present(&[]))],
                Status::Fail,
                "remote-secret-properties-missing",
                vec!["lacks properties username, password", "no properties"],
            ),
            (
                vec![
                    (wanted("grafana", &both), present(&["username"])),
                    (wanted("keycloak", &both), Found::Malformed("not JSON")),
                    (wanted("backstage", &both), Found::Absent),
                ],
                Status::Fail,
                "remote-secret-missing",
                vec![
                    "lacks property password",
                    "not JSON",
                    "backstage/postgres (app backstage) does not exist",
                ],
            ),
        ] {
            let outcome = judge(&results);
            assert_eq!(
                (outcome.status, outcome.code.as_str()),
                (status, code),
                "{results:?}"
            );
            for s in says {
                assert!(outcome.message.contains(s), "{s:?} in {}", outcome.message);
            }
            assert_eq!(
                outcome.hint.is_some(),
                status == Status::Fail,
                "{outcome:?}"
            );
            assert_no_value(&outcome);
        }
    }

    #[test]
    fn hints_say_how_to_fix_and_what_syncs_from_it() {
        let missing = judge(&[(
            wanted("backstage", &["username", "password"]),
            Found::Absent,
        )]);
        let hint = missing.hint.expect("a hint");
        assert!(hint.contains("Terraform"), "{hint}");
        assert!(
            hint.contains(
                "aws secretsmanager create-secret --name goldenpath/dev/backstage/postgres"
            ),
            "{hint}"
        );
        assert!(hint.contains("ExternalSecret of backstage"), "{hint}");
        let incomplete = judge(&[(
            wanted("grafana", &["username", "password"]),
            present(&["username"]),
        )]);
        assert!(
            incomplete
                .hint
                .expect("a hint")
                .contains("remoteRef.property")
        );
    }

    #[test]
    fn outcomes_built_from_a_parsed_secret_never_show_its_values() {
        let secret = RemoteSecret {
            name: remote_secret_name("dev", "backstage"),
            properties: parse_properties(r#"{"username":"s3cr3t-value","pw":"s3cr3t-value"}"#)
                .expect("an object"),
        };
        let outcome = judge(&[(
            wanted("backstage", &["username", "password"]),
            Found::Properties(secret.property_names()),
        )]);
        assert_eq!(outcome.code, "remote-secret-properties-missing");
        assert_no_value(&outcome);
        for text in [
            "s3cr3t-value",
            r#"["s3cr3t-value"]"#,
            r#"{"p":{"x":"s3cr3t-value"}}"#,
        ] {
            let shape = parse_properties(text).expect_err("malformed");
            let outcome = judge(&[(wanted("backstage", &["password"]), Found::Malformed(shape))]);
            assert_no_value(&outcome);
        }
    }

    #[test]
    fn settings_resolve_names_by_the_platform_convention() {
        let settings = SecretsManagerSettings {
            secrets: ["backstage", "grafana"]
                .map(|app| RemoteSecretSettings {
                    app: app.into(),
                    name: None,
                    properties: default_properties(),
                })
                .to_vec(),
        };
        let check = SecretsManager::new(&settings, "staging");
        let names: Vec<&str> = check.secrets.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "goldenpath/staging/backstage/postgres",
                "goldenpath/staging/grafana/postgres"
            ]
        );
        let settings = SecretsManagerSettings {
            secrets: vec![RemoteSecretSettings {
                app: "keycloak".into(),
                name: Some("platform/keycloak-db".into()),
                properties: vec!["password".into()],
            }],
        };
        let check = SecretsManager::new(&settings, "dev");
        assert_eq!(check.secrets[0].name, "platform/keycloak-db");
    }

    #[test]
    fn settings_default_properties_and_reject_unknown_keys() {
        let parsed: SecretsManagerSettings =
            serde_json::from_str(r#"{"secrets":[{"app":"backstage"}]}"#).expect("valid");
        assert_eq!(
            parsed.secrets,
            [RemoteSecretSettings {
                app: "backstage".into(),
                name: None,
                properties: default_properties(),
            }]
        );
        let empty: SecretsManagerSettings = serde_json::from_str("{}").expect("valid");
        assert_eq!(empty, SecretsManagerSettings::default());
        assert!(
            serde_json::from_str::<SecretsManagerSettings>(
                r#"{"secrets":[{"app":"backstage","propertys":["x"]}]}"#
            )
            .is_err()
        );
        assert!(serde_json::from_str::<RemoteSecretSettings>(r#"{"name":"x"}"#).is_err());
    }

    #[test]
    fn reads_grant_get_secret_value_on_each_secret_only() {
        let settings = SecretsManagerSettings {
            secrets: vec![
                RemoteSecretSettings {
                    app: "backstage".into(),
                    name: None,
                    properties: default_properties(),
                },
                RemoteSecretSettings {
                    app: "keycloak".into(),
                    name: Some(
                        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kc-AbCdEf".into(),
                    ),
                    properties: default_properties(),
                },
            ],
        };
        let reads = SecretsManager::new(&settings, "dev").reads();
        assert!(reads.kube.is_empty());
        assert_eq!(
            reads.iam,
            [
                IamGrant {
                    action: "secretsmanager:GetSecretValue",
                    resource:
                        "arn:aws:secretsmanager:*:*:secret:goldenpath/dev/backstage/postgres-??????"
                            .into(),
                },
                IamGrant {
                    action: "secretsmanager:GetSecretValue",
                    resource: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kc-AbCdEf"
                        .into(),
                },
            ]
        );
    }

    #[test]
    fn fetch_remote_fails_on_deleted_and_malformed_secrets_only() {
        let name = remote_secret_name("dev", "backstage");
        let secret = RemoteSecret {
            name: name.clone(),
            properties: parse_properties(r#"{"password":"s3cr3t-value"}"#).expect("an object"),
        };
        assert_eq!(remote(&name, Ok(secret.clone())), Ok(Some(secret)));
        assert_eq!(remote(&name, Err(Found::Absent)), Ok(None));
        for (found, code, says) in [
            (
                Found::ScheduledForDeletion,
                "remote-secret-missing",
                "scheduled for deletion",
            ),
            (
                Found::Malformed("binary"),
                "remote-secret-malformed",
                "it is binary",
            ),
        ] {
            let failed = remote(&name, Err(found)).expect_err("a failed attempt");
            assert_eq!(failed.retry, Retry::Never);
            assert_eq!(failed.outcome.code, code);
            assert!(
                failed.outcome.message.contains(&name),
                "{}",
                failed.outcome.message
            );
            assert!(
                failed.outcome.message.contains(says),
                "{}",
                failed.outcome.message
            );
        }
    }

    #[tokio::test]
    async fn fetch_remote_maps_an_unreachable_api_to_a_transient_failure() {
        use aws_sdk_secretsmanager::config::{
            BehaviorVersion, Credentials, Region, retry::RetryConfig,
        };
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .endpoint_url("http://127.0.0.1:1")
            .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
            .retry_config(RetryConfig::disabled())
            .build();
        let client = aws_sdk_secretsmanager::Client::from_conf(config);
        let failed = fetch_remote(&client, "goldenpath/dev/backstage/postgres")
            .await
            .expect_err("no API there");
        assert_eq!(
            (failed.outcome.code.as_str(), &failed.retry),
            ("aws-unreachable", &Retry::Backoff),
            "{failed:?}"
        );
    }

    #[tokio::test]
    async fn without_a_client_it_fails_as_no_client() {
        let check = SecretsManager::new(&SecretsManagerSettings::default(), "dev");
        let attempt = check.attempt(&Context::default()).await;
        assert_eq!(attempt.outcome.code, "no-aws-client");
    }
}
