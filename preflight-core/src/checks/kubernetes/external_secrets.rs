//! `external-secrets`: each named ExternalSecret is synced (`Ready=True`, `SecretSynced`) and
//! its target Secret holds the keys the app reads. Secret values are never read here: only the
//! names of the keys.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::conditions::{self, Condition};
use super::fetch::{self, EXTERNAL_SECRETS, SECRETS};
use crate::check::ObjectRef;
use crate::check::{Attempt, Check, Context};
use crate::check::{Built, Definition, Family, Site};
use crate::outcome::{Outcome, name_list};
use crate::platform::Scope;
use crate::platform::{NeededBy, Provider};
use crate::reads::{KubeRead, Reads};
use crate::tier::Tier;

/// One ExternalSecret of an app and the keys its target Secret must hold.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SyncedSecret {
    /// The app that ships it: its hook (`preflight --app NAME`) checks it.
    pub app: String,
    /// The ExternalSecret, `namespace/name`.
    pub external_secret: ObjectRef,
    /// The Secret it writes (its `spec.target.name`), when not named like the ExternalSecret.
    /// preflight reads Secrets only by name, so the name is known before the run.
    #[serde(default)]
    pub secret: Option<String>,
    /// Keys the app reads from the synced Secret.
    pub keys: Vec<String>,
}

impl SyncedSecret {
    /// The name of the Secret it writes.
    #[must_use]
    pub fn target(&self) -> &str {
        self.secret.as_deref().unwrap_or(&self.external_secret.name)
    }
}

/// `checks.external-secrets`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ExternalSecretSettings {
    /// The ExternalSecrets the platform's apps ship.
    pub secrets: Vec<SyncedSecret>,
}

impl Default for ExternalSecretSettings {
    /// Backstage's `backstage-secrets`: its database login and its GitHub token.
    fn default() -> Self {
        ExternalSecretSettings {
            secrets: vec![SyncedSecret {
                app: "backstage".into(),
                external_secret: ObjectRef::new("backstage", "backstage-secrets"),
                secret: None,
                keys: ["POSTGRES_USER", "POSTGRES_PASSWORD", "GITHUB_TOKEN"]
                    .map(str::to_owned)
                    .to_vec(),
            }],
        }
    }
}

/// `external-secrets.io` versions understood: `v1` (External Secrets 0.17+) and `v1beta1`
/// before it; an ExternalSecret's status has the same shape in both.
const VERSIONS: [&str; 2] = ["v1", "v1beta1"];

/// An ExternalSecret: its target Secret's name and its Ready condition.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ExternalSecretDoc {
    metadata: Metadata,
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    spec: Spec,
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    status: Status,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Metadata {
    name: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Spec {
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    target: Target,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Target {
    name: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Status {
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    conditions: Vec<Condition>,
}

impl ExternalSecretDoc {
    /// The Secret it writes: `spec.target.name`, defaulting to its own name.
    fn target(&self) -> &str {
        self.spec
            .target
            .name
            .as_deref()
            .unwrap_or(&self.metadata.name)
    }
}

/// The key names of a Secret's `data`. The values are skipped by the parser and so never held
/// in memory, let alone printed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyNames(BTreeSet<String>);

impl<'de> Deserialize<'de> for KeyNames {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> Visitor<'de> for Keys {
            type Value = KeyNames;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of Secret data")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<KeyNames, M::Error> {
                let mut keys = BTreeSet::new();
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<IgnoredAny>()?;
                    keys.insert(key);
                }
                Ok(KeyNames(keys))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyNames, E> {
                Ok(KeyNames::default())
            }
        }
        d.deserialize_any(Keys)
    }
}

/// A Secret, reduced to the names of its keys.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct SecretKeysDoc {
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    data: KeyNames,
}

/// What was found for one ExternalSecret.
#[derive(Clone, Debug, Default)]
pub(crate) struct Found {
    pub external_secret: Option<ExternalSecretDoc>,
    /// The target Secret's keys, when it exists.
    pub secret: Option<SecretKeysDoc>,
}

/// Judges every configured ExternalSecret and its Secret.
pub(crate) fn judge(found: &[(SyncedSecret, Found)]) -> Outcome {
    let mut problems = Vec::new();
    let mut synced = Vec::new();
    for (want, f) in found {
        let name = &want.external_secret;
        let Some(es) = &f.external_secret else {
            problems.push(format!("ExternalSecret {name} not found"));
            continue;
        };
        let ready = conditions::find(&es.status.conditions, "Ready");
        if ready.is_none_or(|c| c.status != "True") {
            problems.push(format!(
                "ExternalSecret {name} is not synced{}",
                conditions::explain(ready)
            ));
            continue;
        }
        let target = format!("{}/{}", want.external_secret.namespace, want.target());
        if es.target() != want.target() {
            problems.push(format!(
                "ExternalSecret {name} writes Secret {}, not {} as configured (checks.external-secrets.secrets[].secret)",
                es.target(),
                want.target()
            ));
            continue;
        }
        let Some(secret) = &f.secret else {
            problems.push(format!(
                "ExternalSecret {name} is Ready but its Secret {target} does not exist"
            ));
            continue;
        };
        let missing: Vec<&str> = want
            .keys
            .iter()
            .filter(|k| !secret.data.0.contains(*k))
            .map(String::as_str)
            .collect();
        if missing.is_empty() {
            synced.push(name.to_string());
        } else {
            problems.push(format!(
                "Secret {target} lacks the key(s) {}",
                name_list(&missing, 10)
            ));
        }
    }
    if problems.is_empty() {
        return Outcome::pass(
            "secrets-synced",
            format!(
                "{} ExternalSecret(s) synced with the expected keys: {}",
                synced.len(),
                synced.join(", ")
            ),
        );
    }
    Outcome::fail("secret-not-synced", problems.join("; ")).hint(
        "kubectl describe externalsecret <name> shows the provider's error. SecretSyncedError usually means the remote key does not exist in Secrets Manager or the IRSA role may not read it; missing keys mean the ExternalSecret's data/dataFrom does not map them (check property names).",
    )
}

/// The `external-secrets` check.
#[derive(Debug)]
pub struct ExternalSecretsSynced {
    secrets: Vec<SyncedSecret>,
}

impl ExternalSecretsSynced {
    /// A check of these ExternalSecrets.
    #[must_use]
    pub fn new(secrets: Vec<SyncedSecret>) -> Self {
        ExternalSecretsSynced { secrets }
    }
}

impl Definition for ExternalSecretsSynced {
    const ID: &'static str = "external-secrets";
    const FAMILY: Family = Family::Kubernetes;
    type Settings = ExternalSecretSettings;

    /// An app ships its own ExternalSecret: only its own hook, after the ExternalSecret and
    /// before its workloads, can check it.
    fn needed_by(settings: &ExternalSecretSettings) -> NeededBy {
        NeededBy::apps(settings.secrets.iter().map(|s| &s.app))
    }

    fn provided_by(_: &ExternalSecretSettings, site: &Site<'_>) -> Provider {
        match site.scope {
            Scope::App(app) => Provider::App(app),
            Scope::Gate(_) => Provider::Tier(Tier::Two, "each app's own ExternalSecret"),
        }
    }

    fn build(settings: &ExternalSecretSettings, site: &Site<'_>) -> Result<Built, String> {
        let Scope::App(app) = site.scope else {
            return Err("checked in each app's own hook".to_owned());
        };
        let secrets: Vec<SyncedSecret> = settings
            .secrets
            .iter()
            .filter(|s| s.app == app.name)
            .cloned()
            .collect();
        if secrets.is_empty() {
            return Err(format!("no ExternalSecret of {} is configured", app.name));
        }
        let names: Vec<String> = secrets
            .iter()
            .map(|s| s.external_secret.to_string())
            .collect();
        Ok(Built::new(
            ExternalSecretsSynced::new(secrets),
            format!(
                "ExternalSecret(s) {} synced with the keys {} reads",
                names.join(", "),
                app.name
            ),
            Self::provided_by(settings, site),
            &[],
        ))
    }
}

#[async_trait::async_trait]
impl Check for ExternalSecretsSynced {
    fn reads(&self) -> Reads {
        let mut reads = Vec::new();
        for want in &self.secrets {
            let es = &want.external_secret;
            reads.push(EXTERNAL_SECRETS.within(&es.namespace));
            reads.push(KubeRead::secret(&es.namespace, want.target()));
        }
        Reads::kube(reads)
    }

    async fn attempt(&self, ctx: &Context) -> Attempt {
        let resource = match fetch::served(
            ctx,
            &EXTERNAL_SECRETS,
            &VERSIONS,
            "external-secret-api-missing",
            "Install External Secrets with its CRDs (chart value installCRDs=true) in tier 1.",
        )
        .await
        {
            Ok(r) => r,
            Err(failed) => return *failed,
        };
        let version = resource.version.clone();
        let mut found = Vec::with_capacity(self.secrets.len());
        let mut watches = Vec::new();
        for want in &self.secrets {
            let ns = want.external_secret.namespace.as_str();
            let (es, watch) = match fetch::get_watchable::<ExternalSecretDoc>(
                ctx,
                &resource,
                Some(ns),
                &want.external_secret.name,
            )
            .await
            {
                Ok(read) => read,
                Err(failed) => return *failed,
            };
            watches.push(watch);
            // The Secret preflight may read (by name) is the configured one; a different
            // spec.target.name is reported by the judge.
            let secret = match &es {
                Some(_) => match fetch::get_watchable::<SecretKeysDoc>(
                    ctx,
                    &SECRETS,
                    Some(ns),
                    want.target(),
                )
                .await
                {
                    Ok((secret, watch)) => {
                        watches.push(watch);
                        secret
                    }
                    Err(failed) => return *failed,
                },
                None => None,
            };
            found.push((
                want.clone(),
                Found {
                    external_secret: es,
                    secret,
                },
            ));
        }
        let outcome =
            judge(&found).evidence("apiVersion", format!("external-secrets.io/{version}"));
        Attempt::until_changed(outcome, watches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::ObjectRef;
    use crate::outcome::Status as Verdict;

    fn want(keys: &[&str]) -> SyncedSecret {
        SyncedSecret {
            app: "backstage".into(),
            external_secret: ObjectRef::new("backstage", "backstage-postgres"),
            secret: Some("backstage-db".into()),
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        }
    }

    fn es(yaml: &str) -> Option<ExternalSecretDoc> {
        Some(serde_saphyr::from_str(yaml).expect("parses"))
    }

    fn secret(yaml: &str) -> Option<SecretKeysDoc> {
        Some(serde_saphyr::from_str(yaml).expect("parses"))
    }

    const SYNCED: &str = "metadata: {name: backstage-postgres}\nspec: {target: {name: backstage-db}}\nstatus:\n  conditions:\n  - {type: Ready, status: \"True\", reason: SecretSynced, message: Secret was synced}\n";

    #[test]
    fn reads_key_names_without_values() {
        let doc: SecretKeysDoc = serde_saphyr::from_str(
            "data: {POSTGRES_USER: YmFja3N0YWdl, POSTGRES_PASSWORD: c2VjcmV0}",
        )
        .expect("parses");
        assert_eq!(
            doc.data.0.into_iter().collect::<Vec<_>>(),
            ["POSTGRES_PASSWORD", "POSTGRES_USER"]
        );
        let empty: SecretKeysDoc = serde_saphyr::from_str("data: ~").expect("parses");
        assert!(empty.data.0.is_empty());
    }

    #[test]
    fn judges_sync_state_and_keys() {
        let keys = ["POSTGRES_USER", "POSTGRES_PASSWORD"];
        let full = "data: {POSTGRES_USER: eA==, POSTGRES_PASSWORD: eA==}";
        for (found, status, needle) in [
            (
                Found {
                    external_secret: es(SYNCED),
                    secret: secret(full),
                },
                Verdict::Pass,
                "1 ExternalSecret(s) synced",
            ),
            (
                Found::default(),
                Verdict::Fail,
                "ExternalSecret backstage/backstage-postgres not found",
            ),
            (
                Found {
                    external_secret: es(
                        "metadata: {name: backstage-postgres}\nstatus:\n  conditions:\n  - {type: Ready, status: \"False\", reason: SecretSyncedError, message: 'could not get secret data from provider: Secret does not exist'}\n",
                    ),
                    secret: None,
                },
                Verdict::Fail,
                "is not synced: SecretSyncedError: could not get secret data from provider: Secret does not exist",
            ),
            (
                Found {
                    external_secret: es(SYNCED),
                    secret: None,
                },
                Verdict::Fail,
                "its Secret backstage/backstage-db does not exist",
            ),
            (
                Found {
                    external_secret: es(SYNCED),
                    secret: secret("data: {POSTGRES_USER: eA==}"),
                },
                Verdict::Fail,
                "Secret backstage/backstage-db lacks the key(s) POSTGRES_PASSWORD",
            ),
            (
                Found {
                    external_secret: es("metadata: {name: backstage-postgres}\n"),
                    secret: None,
                },
                Verdict::Fail,
                "is not synced",
            ),
            (
                Found {
                    external_secret: es(&SYNCED.replace("backstage-db", "backstage-creds")),
                    secret: secret(full),
                },
                Verdict::Fail,
                "writes Secret backstage-creds, not backstage-db as configured",
            ),
        ] {
            let o = judge(&[(want(&keys), found)]);
            assert_eq!(o.status, status, "{}", o.message);
            assert!(
                o.message.contains(needle),
                "{:?} lacks {needle:?}",
                o.message
            );
        }
    }
}
