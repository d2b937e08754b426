//! `keycloak-realm`: the platform's Keycloak serves the realm apps log in with. Its OIDC
//! discovery document is served at `{url}/realms/{realm}/.well-known/openid-configuration`,
//! names the issuer clients will verify (`{url}/realms/{realm}`), a token endpoint, and a JWKS
//! with at least one signing key; optionally a client-credentials grant succeeds.

use serde::{Deserialize, Serialize};

use crate::check::ObjectRef;
use crate::check::{Attempt, Check, Context};
use crate::check::{Built, Definition, Family, Site};
use crate::checks::kubernetes::fetch::{self, SECRETS};
use crate::outcome::{Outcome, error_chain};
use crate::platform::{NeededBy, Provider};
use crate::reads::{KubeRead, Reads};

/// A client whose client-credentials grant proves the realm issues tokens.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClientCredentials {
    /// The client id.
    pub client_id: String,
    /// The Secret holding the client secret, `namespace/name`.
    pub secret: ObjectRef,
    /// Its key.
    #[serde(default = "client_secret_key")]
    pub key: String,
}

fn client_secret_key() -> String {
    "client-secret".into()
}

/// `checks.keycloak-realm`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct KeycloakSettings {
    /// Keycloak's public base URL; default `https://keycloak.{hostSuffix}`.
    pub url: Option<String>,
    /// The realm the platform's apps log in with.
    pub realm: String,
    /// A PEM bundle of CAs to trust besides the system's (a private CA).
    pub ca_bundle: Option<std::path::PathBuf>,
    /// Also obtain a token with a client-credentials grant.
    pub client_credentials: Option<ClientCredentials>,
}

impl Default for KeycloakSettings {
    fn default() -> Self {
        KeycloakSettings {
            url: None,
            realm: "goldenpath".into(),
            ca_bundle: None,
            client_credentials: None,
        }
    }
}

/// The setting of the bundle the HTTP client trusts besides the system's CAs.
pub const KEYCLOAK_CA_BUNDLE_SETTING: &str = "checks.keycloak-realm.caBundle";

/// The app whose hook checks the realm (ADR-0180: the OIDC app's PreSync hook, after
/// Keycloak's wave).
const OIDC_APP: &str = "oidc-config";

/// The largest body read from Keycloak: discovery documents and key sets are a few KiB.
const MAX_BODY: usize = 1 << 20;

/// The fields of the discovery document clients depend on.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub(crate) struct Discovery {
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    jwks_uri: Option<String>,
    #[serde(default)]
    token_endpoint: Option<String>,
}

/// One key of a JWKS.
#[derive(Clone, Debug, Default, Deserialize)]
struct Jwk {
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    /// `sig` or `enc`; absent means either.
    #[serde(default, rename = "use")]
    use_: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

/// Keycloak's error body: `{"error": "...", "error_description": "..."}`.
#[derive(Clone, Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// An HTTP answer, as far as the judges need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Answer {
    pub status: u16,
    /// The `Location` header of a redirect.
    pub location: Option<String>,
    /// The body, cut at [`MAX_BODY`].
    pub body: Vec<u8>,
}

/// The realm's endpoints under a base URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Realm {
    /// The base URL, without a trailing slash.
    pub url: String,
    /// The realm's name.
    pub realm: String,
}

impl Realm {
    /// The issuer Keycloak must announce.
    pub(crate) fn issuer(&self) -> String {
        format!("{}/realms/{}", self.url, self.realm)
    }

    /// The discovery document's URL, under `prefix` (empty, or `/auth` for Keycloak < 17).
    pub(crate) fn discovery_url(&self, prefix: &str) -> String {
        format!(
            "{}{prefix}/realms/{}/.well-known/openid-configuration",
            self.url, self.realm
        )
    }
}

fn error_text(body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) if !e.error.is_empty() => match e.error_description {
            Some(d) if !d.is_empty() => format!("{}: {d}", e.error),
            _ => e.error,
        },
        _ => {
            let text = String::from_utf8_lossy(body);
            let line = text.trim().lines().next().unwrap_or_default();
            line.chars().take(200).collect()
        }
    }
}

/// Judges the answer to the discovery request. `legacy` is the answer at the `/auth` prefix,
/// asked for only after a 404 that does not come from a current Keycloak.
pub(crate) fn judge_discovery_answer(
    realm: &Realm,
    answer: &Answer,
    legacy: Option<&Answer>,
) -> Result<Discovery, Box<Attempt>> {
    if answer.status != 200 {
        return Err(Box::new(discovery_failure(realm, answer, legacy)));
    }
    // An object, not any JSON serde would map onto the struct (an array would do).
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&answer.body)
        .and_then(|object| serde_json::from_value::<Discovery>(object.into()))
        .map_err(|e| {
            Box::new(Attempt::settled(
                Outcome::fail("keycloak-discovery-malformed", format!("{} is not an OIDC discovery document: {e}", realm.discovery_url("")))
                    .hint("Something other than Keycloak answers at that address (a default backend, a maintenance page): check the Ingress of keycloak and checks.keycloak-realm.url."),
            ))
        })
}

/// What a discovery request answered other than 200 means.
fn discovery_failure(realm: &Realm, answer: &Answer, legacy: Option<&Answer>) -> Attempt {
    let url = realm.discovery_url("");
    match answer.status {
        300..=399 => {
            let to = answer.location.as_deref().unwrap_or("nowhere");
            Attempt::settled(
                Outcome::fail("keycloak-redirected", format!("{url} redirects ({}) to {to} instead of serving the discovery document", answer.status))
                    .hint("OIDC clients do not follow redirects to a login page: an authentication proxy or an Ingress rule in front of Keycloak must let /realms/*/.well-known/* and /realms/*/protocol/openid-connect/* through; an http to https redirect means checks.keycloak-realm.url must start with https://."),
            )
        }
        // The realm may still be imported by a job of an earlier wave: worth waiting for.
        404 if error_text(&answer.body) == "Realm does not exist" => Attempt::transient(
            Outcome::fail(
                "keycloak-realm-missing",
                format!("Keycloak answers that realm {:?} does not exist (404 at {url})", realm.realm),
            )
            .hint(format!(
                "Import the realm (the platform's realm import job, keycloak-config-cli or a KeycloakRealmImport) before tier 3's apps sync, or set checks.keycloak-realm.realm if the realm is not {:?}.",
                realm.realm
            )),
        ),
        404 if legacy.is_some_and(|l| l.status == 200) => Attempt::settled(
            Outcome::fail(
                "keycloak-legacy-path",
                format!(
                    "Keycloak serves the realm under the legacy /auth prefix ({}), not at {url}",
                    realm.discovery_url("/auth")
                ),
            )
            .hint(format!("That is Keycloak before 17 (WildFly) or http-relative-path=/auth: upgrade, or drop the relative path so that issuers are {} as the platform's clients expect; set checks.keycloak-realm.url to the /auth base only if the clients use it too.", realm.issuer())),
        ),
        404 => Attempt::settled(
            Outcome::fail("keycloak-not-found", format!("{url} answered 404: {}", error_text(&answer.body)))
                .hint("No Keycloak realm endpoint at that address: check checks.keycloak-realm.url (default https://keycloak.{hostSuffix}) and the Ingress of keycloak."),
        ),
        500..=599 => Attempt::transient(
            Outcome::fail("keycloak-server-error", format!("{url} answered {}: {}", answer.status, error_text(&answer.body)))
                .hint("Keycloak is failing or not ready (502/503 from the Ingress while its Pods start, or its database is unreachable): see its Pods' logs and /health/ready on the management port."),
        ),
        code => Attempt::settled(Outcome::fail(
            "keycloak-http-error",
            format!("{url} answered {code}: {}", error_text(&answer.body)),
        )),
    }
}

/// Judges the discovery document; returns the JWKS URL to read next.
pub(crate) fn judge_discovery(realm: &Realm, doc: &Discovery) -> Result<String, Outcome> {
    let expected = realm.issuer();
    let issuer = doc.issuer.as_deref().unwrap_or_default();
    if issuer != expected {
        let hint = if issuer.contains("/auth/realms/") {
            "The issuer has the legacy /auth prefix: tokens would carry an issuer the platform's clients reject. Remove http-relative-path=/auth, or upgrade Keycloak."
        } else {
            "Keycloak derives the issuer from its hostname setting: set hostname (KC_HOSTNAME) to the public URL, https://keycloak.{hostSuffix}, and run it behind the proxy with proxy-headers=xforwarded, so that tokens carry the issuer clients verify."
        };
        return Err(Outcome::fail(
            "keycloak-issuer-mismatch",
            format!("the discovery document names issuer {issuer:?}, not {expected:?}"),
        )
        .hint(hint));
    }
    if doc.token_endpoint.as_deref().is_none_or(str::is_empty) {
        return Err(Outcome::fail(
            "keycloak-discovery-malformed",
            format!("the discovery document of {expected} has no token_endpoint"),
        ));
    }
    match doc.jwks_uri.as_deref() {
        Some(uri) if !uri.is_empty() => Ok(uri.to_owned()),
        _ => Err(Outcome::fail(
            "keycloak-discovery-malformed",
            format!("the discovery document of {expected} has no jwks_uri"),
        )),
    }
}

/// Judges the realm's key set: at least one key usable for signatures.
pub(crate) fn judge_jwks(uri: &str, answer: &Answer) -> Result<Vec<String>, Outcome> {
    if answer.status != 200 {
        return Err(Outcome::fail(
            "keycloak-jwks-unavailable",
            format!(
                "{uri} answered {}: {}",
                answer.status,
                error_text(&answer.body)
            ),
        ));
    }
    let jwks: Jwks = serde_json::from_slice(&answer.body).map_err(|e| {
        Outcome::fail(
            "keycloak-jwks-malformed",
            format!("{uri} is not a JSON Web Key Set: {e}"),
        )
    })?;
    let signing: Vec<String> = jwks
        .keys
        .iter()
        .filter(|k| k.use_.as_deref() != Some("enc"))
        .map(|k| {
            format!(
                "{} ({})",
                k.kid.as_deref().unwrap_or("no kid"),
                k.alg.as_deref().unwrap_or("no alg")
            )
        })
        .collect();
    if signing.is_empty() {
        return Err(Outcome::fail(
            "keycloak-jwks-empty",
            format!("{uri} has {} key(s), none for signatures", jwks.keys.len()),
        )
        .hint("Tokens cannot be verified: give the realm an active signing key (Realm settings > Keys > Providers, e.g. rsa-generated), enabled and active."));
    }
    Ok(signing)
}

/// Judges the answer to a client-credentials grant. Names the client, never its secret or
/// the token.
pub(crate) fn judge_token(client_id: &str, answer: &Answer) -> Outcome {
    #[derive(Deserialize)]
    struct Token {
        access_token: String,
        #[serde(default)]
        token_type: Option<String>,
    }
    match answer.status {
        200 => match serde_json::from_slice::<Token>(&answer.body) {
            Ok(t) if !t.access_token.is_empty() => Outcome::pass(
                "keycloak-token-issued",
                format!(
                    "client {client_id} obtained a {} token",
                    t.token_type.as_deref().unwrap_or("bearer")
                ),
            ),
            _ => Outcome::fail(
                "keycloak-token-malformed",
                format!(
                    "the token endpoint answered 200 to client {client_id} without an access_token"
                ),
            ),
        },
        code => {
            let why = error_text(&answer.body);
            let hint = if why.contains("service account") {
                "Enable \"Service accounts roles\" (client authentication on, client credentials grant) on the client in the realm."
            } else {
                "The client id or its secret is wrong: compare the Secret with the client's credentials in the realm (Clients > Credentials), and let the ExternalSecret refresh after a rotation."
            };
            Outcome::fail(
                "keycloak-client-rejected",
                format!("the token endpoint refused client {client_id} ({code}): {why}"),
            )
            .hint(hint)
        }
    }
}

/// Maps a request that got no answer.
fn unreachable(url: &str, err: &reqwest::Error) -> Box<Attempt> {
    let chain = error_chain(err);
    let lower = chain.to_lowercase();
    if lower.contains("certificate") || lower.contains("ssl") || lower.contains("tls") {
        // cert-manager may still be issuing the certificate: worth waiting for.
        return Box::new(Attempt::transient(
            Outcome::fail("keycloak-tls", format!("TLS to {url} failed: {chain}"))
                .hint("The certificate is not trusted or does not name the host: if the platform's own CA issues it, give its bundle in checks.keycloak-realm.caBundle; if cert-manager is still issuing it (see the cluster-issuers check and the Certificate of the keycloak Ingress), wait (--wait); Kong's default certificate means the Ingress's TLS Secret is missing."),
        ));
    }
    Box::new(Attempt::transient(
        Outcome::fail("keycloak-unreachable", format!("cannot reach {url}: {chain}"))
            .hint("Check that keycloak.{hostSuffix} resolves (ExternalDNS), that the Ingress routes to Keycloak, and the network path from where preflight runs."),
    ))
}

/// Sends a request and reads its answer, at most [`MAX_BODY`] of it.
async fn answer(request: reqwest::RequestBuilder, url: &str) -> Result<Answer, Box<Attempt>> {
    let mut response = request
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| unreachable(url, &e))?;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| unreachable(url, &e))? {
        let room = MAX_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    Ok(Answer {
        status,
        location,
        body,
    })
}

/// The `keycloak-realm` check.
#[derive(Debug)]
pub struct KeycloakRealm {
    realm: Realm,
    client: Option<ClientCredentials>,
    /// The private CA's bundle the HTTP client trusts, checked before the run.
    ca_bundle: Option<std::path::PathBuf>,
}

impl KeycloakRealm {
    /// A check of the realm at `settings.url`, or at `https://keycloak.{hostSuffix}`.
    #[must_use]
    pub fn new(settings: &KeycloakSettings, host_suffix: &str) -> Self {
        let url = settings
            .url
            .clone()
            .unwrap_or_else(|| format!("https://keycloak.{host_suffix}"));
        KeycloakRealm {
            realm: Realm {
                url: url.trim_end_matches('/').to_owned(),
                realm: settings.realm.clone(),
            },
            client: settings.client_credentials.clone(),
            ca_bundle: settings.ca_bundle.clone(),
        }
    }

    /// The base URL it checks.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.realm.url
    }

    /// A client-credentials grant with the secret from the cluster.
    async fn grant(
        &self,
        ctx: &Context,
        http: &reqwest::Client,
        token_endpoint: &str,
        client: &ClientCredentials,
    ) -> Attempt {
        // The secret goes only to this Keycloak, over TLS: a discovery document naming another
        // host (a proxy's rewrite, a misconfiguration) or plain HTTP gets nothing.
        let own = format!("{}/", self.realm.url);
        if !token_endpoint.starts_with(&own) || !own.starts_with("https://") {
            return Attempt::settled(
                Outcome::fail(
                    "keycloak-token-endpoint-untrusted",
                    format!("the token endpoint {token_endpoint} is not an HTTPS address under {}: the client secret is not sent there", self.realm.url),
                )
                .hint("Set Keycloak's hostname (KC_HOSTNAME) to its public HTTPS URL, and checks.keycloak-realm.url to the same."),
            );
        }
        let secret_ref = &client.secret;
        let (doc, watch) = match fetch::get_watchable::<fetch::SecretDoc>(
            ctx,
            &SECRETS,
            Some(&secret_ref.namespace),
            &secret_ref.name,
        )
        .await
        {
            Ok(found) => found,
            Err(failed) => return *failed,
        };
        let secret = match doc.map(|d| fetch::secret_text(&d.data, &client.key)) {
            Some(Ok(Some(s))) if !s.is_empty() => s,
            Some(Err(outcome)) => return Attempt::settled(outcome),
            _ => {
                return Attempt::until_changed(
                    Outcome::fail(
                        "keycloak-client-secret-missing",
                        format!("Secret {secret_ref} has no non-empty key {} with the secret of client {}", client.key, client.client_id),
                    )
                    .hint("It is written by the client's ExternalSecret; or name the key in checks.keycloak-realm.clientCredentials.key."),
                    vec![watch],
                );
            }
        };
        let request = http.post(token_endpoint).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client.client_id.as_str()),
            ("client_secret", secret.as_str()),
        ]);
        match answer(request, token_endpoint).await {
            // A rejected client is permanent: the secret will not change by asking again.
            Ok(a) if a.status >= 500 => Attempt::transient(Outcome::fail(
                "keycloak-server-error",
                format!(
                    "{token_endpoint} answered {}: {}",
                    a.status,
                    error_text(&a.body)
                ),
            )),
            Ok(a) => Attempt::settled(judge_token(&client.client_id, &a)),
            Err(failed) => *failed,
        }
    }
}

impl Definition for KeycloakRealm {
    const ID: &'static str = "keycloak-realm";
    const FAMILY: Family = Family::Http;
    type Settings = KeycloakSettings;

    /// Keycloak is tier 3 itself: the realm can only be checked after it, by the OIDC app.
    fn needed_by(_: &KeycloakSettings) -> NeededBy {
        NeededBy::apps([OIDC_APP])
    }

    fn provided_by(_: &KeycloakSettings, _: &Site<'_>) -> Provider {
        Provider::app("keycloak")
    }

    fn build(settings: &KeycloakSettings, site: &Site<'_>) -> Result<Built, String> {
        let check = KeycloakRealm::new(settings, &site.values.host_suffix.value);
        let title = format!(
            "Keycloak at {} serves realm {} with a signing key",
            check.url(),
            settings.realm
        );
        Ok(Built::new(
            check,
            title,
            Self::provided_by(settings, site),
            &[],
        ))
    }
}

#[async_trait::async_trait]
impl Check for KeycloakRealm {
    fn ca_bundles(&self) -> Vec<crate::trust::BundleSetting> {
        self.ca_bundle
            .iter()
            .map(|path| crate::trust::BundleSetting {
                setting: KEYCLOAK_CA_BUNDLE_SETTING.to_owned(),
                path: path.clone(),
            })
            .collect()
    }

    fn reads(&self) -> Reads {
        Reads::kube(
            self.client
                .iter()
                .map(|c| KubeRead::secret(&c.secret.namespace, &c.secret.name))
                .collect(),
        )
    }

    async fn attempt(&self, ctx: &Context) -> Attempt {
        let http = match ctx.http().map(|h| h.client()) {
            Some(pending) => match pending.await {
                Ok(client) => client,
                Err(why) => {
                    return Attempt::settled(Outcome::fail("http-client-failed", why.to_string()));
                }
            },
            None => {
                return Attempt::settled(Outcome::fail(
                    "no-http-client",
                    "no HTTP client is configured",
                ));
            }
        };
        let http = &http;
        let url = self.realm.discovery_url("");
        let first = match answer(http.get(&url), &url).await {
            Ok(a) => a,
            Err(failed) => return *failed,
        };
        // A 404 that is not Keycloak's own "Realm does not exist" may be an old Keycloak
        // serving under /auth: ask there once, to say so rather than "not found".
        let legacy = if first.status == 404 && error_text(&first.body) != "Realm does not exist" {
            let legacy_url = self.realm.discovery_url("/auth");
            answer(http.get(&legacy_url), &legacy_url).await.ok()
        } else {
            None
        };
        let doc = match judge_discovery_answer(&self.realm, &first, legacy.as_ref()) {
            Ok(doc) => doc,
            Err(failed) => return *failed,
        };
        let jwks_uri = match judge_discovery(&self.realm, &doc) {
            Ok(uri) => uri,
            Err(outcome) => return Attempt::settled(outcome),
        };
        let keys = match answer(http.get(&jwks_uri), &jwks_uri).await {
            Ok(a) => match judge_jwks(&jwks_uri, &a) {
                Ok(keys) => keys,
                Err(outcome) if a.status >= 500 => return Attempt::transient(outcome),
                Err(outcome) => return Attempt::settled(outcome),
            },
            Err(failed) => return *failed,
        };
        let served = Outcome::pass(
            "keycloak-realm-served",
            format!(
                "realm {} is served at {} with {} signing key(s): {}",
                self.realm.realm,
                self.realm.issuer(),
                keys.len(),
                keys.join(", ")
            ),
        )
        .evidence("issuer", self.realm.issuer())
        .evidence("jwksUri", &jwks_uri);
        let (Some(client), Some(token_endpoint)) = (&self.client, doc.token_endpoint.as_deref())
        else {
            return Attempt::settled(served);
        };
        let mut granted = self.grant(ctx, http, token_endpoint, client).await;
        if granted.outcome.status == crate::outcome::Status::Pass {
            granted.outcome = served.evidence("token", &granted.outcome.message);
        }
        granted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Retry;
    use crate::outcome::Status;

    fn realm() -> Realm {
        Realm {
            url: "https://keycloak.dev.goldenpathidp.io".into(),
            realm: "goldenpath".into(),
        }
    }

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            location: None,
            body: body.as_bytes().to_vec(),
        }
    }

    const DOC: &str = r#"{"issuer":"https://keycloak.dev.goldenpathidp.io/realms/goldenpath","authorization_endpoint":"https://keycloak.dev.goldenpathidp.io/realms/goldenpath/protocol/openid-connect/auth","token_endpoint":"https://keycloak.dev.goldenpathidp.io/realms/goldenpath/protocol/openid-connect/token","jwks_uri":"https://keycloak.dev.goldenpathidp.io/realms/goldenpath/protocol/openid-connect/certs"}"#;

    #[test]
    fn judges_the_discovery_answer() {
        let doc = judge_discovery_answer(&realm(), &answer(200, DOC), None).expect("served");
        assert_eq!(
            judge_discovery(&realm(), &doc).as_deref(),
            Ok(
                "https://keycloak.dev.goldenpathidp.io/realms/goldenpath/protocol/openid-connect/certs"
            )
        );

        // shared/fixtures/keycloak-missing-realm-404.txt
        let missing = answer(404, r#"{"error":"Realm does not exist"}"#);
        let a = judge_discovery_answer(&realm(), &missing, None).expect_err("missing");
        assert_eq!(
            (a.outcome.code.as_str(), a.retry),
            ("keycloak-realm-missing", Retry::Backoff)
        );

        let old = answer(404, "<html><body>Not Found</body></html>");
        let a =
            judge_discovery_answer(&realm(), &old, Some(&answer(200, DOC))).expect_err("legacy");
        assert_eq!(a.outcome.code, "keycloak-legacy-path");
        let a = judge_discovery_answer(&realm(), &old, Some(&old)).expect_err("nothing");
        assert_eq!(a.outcome.code, "keycloak-not-found");
        assert!(
            a.outcome
                .message
                .ends_with("<html><body>Not Found</body></html>"),
            "{}",
            a.outcome.message
        );

        let mut login = answer(302, "");
        login.location = Some("https://sso.example.com/login?rd=%2Frealms".into());
        let a = judge_discovery_answer(&realm(), &login, None).expect_err("redirect");
        assert_eq!(a.outcome.code, "keycloak-redirected");
        assert!(a.outcome.message.contains("https://sso.example.com/login"));

        let a = judge_discovery_answer(&realm(), &answer(503, "no healthy upstream"), None)
            .expect_err("5xx");
        assert_eq!(
            (a.outcome.code.as_str(), a.retry),
            ("keycloak-server-error", Retry::Backoff)
        );
        for malformed in ["<html>login</html>", "[]", "{\"issuer\": 3}", ""] {
            let a = judge_discovery_answer(&realm(), &answer(200, malformed), None)
                .expect_err(malformed);
            assert_eq!(
                a.outcome.code, "keycloak-discovery-malformed",
                "{malformed}"
            );
        }
    }

    #[test]
    fn judges_the_document() {
        let legacy = Discovery {
            issuer: Some("https://keycloak.dev.goldenpathidp.io/auth/realms/goldenpath".into()),
            jwks_uri: Some("x".into()),
            token_endpoint: Some("y".into()),
        };
        let o = judge_discovery(&realm(), &legacy).expect_err("legacy issuer");
        assert_eq!(o.code, "keycloak-issuer-mismatch");
        assert!(o.hint.expect("hint").contains("/auth prefix"));
        let internal = Discovery {
            issuer: Some("http://keycloak.keycloak.svc:8080/realms/goldenpath".into()),
            ..legacy.clone()
        };
        assert!(
            judge_discovery(&realm(), &internal)
                .expect_err("internal")
                .hint
                .expect("hint")
                .contains("KC_HOSTNAME")
        );
        let no_jwks = Discovery {
            issuer: Some(realm().issuer()),
            jwks_uri: None,
            token_endpoint: Some("y".into()),
        };
        assert!(
            judge_discovery(&realm(), &no_jwks)
                .expect_err("no jwks")
                .message
                .ends_with("no jwks_uri")
        );
        let no_token = Discovery {
            token_endpoint: Some(String::new()),
            jwks_uri: Some("x".into()),
            ..no_jwks
        };
        assert!(
            judge_discovery(&realm(), &no_token)
                .expect_err("no token")
                .message
                .ends_with("no token_endpoint")
        );
    }

    #[test]
    fn judges_the_key_set() {
        let keys = r#"{"keys":[{"kid":"enc-1","kty":"RSA","alg":"RSA-OAEP","use":"enc","n":"x","e":"AQAB"},{"kid":"sig-1","kty":"RSA","alg":"RS256","use":"sig","n":"x","e":"AQAB"}]}"#;
        assert_eq!(
            judge_jwks("u", &answer(200, keys)),
            Ok(vec!["sig-1 (RS256)".to_owned()])
        );
        let only_enc = r#"{"keys":[{"kid":"enc-1","kty":"RSA","alg":"RSA-OAEP","use":"enc"}]}"#;
        assert_eq!(
            judge_jwks("u", &answer(200, only_enc))
                .expect_err("enc only")
                .code,
            "keycloak-jwks-empty"
        );
        assert_eq!(
            judge_jwks("u", &answer(200, r#"{"keys":[]}"#))
                .expect_err("empty")
                .code,
            "keycloak-jwks-empty"
        );
        for bad in ["{}", "{\"keys\": {}}", "nope"] {
            assert_eq!(
                judge_jwks("u", &answer(200, bad)).expect_err(bad).code,
                "keycloak-jwks-malformed"
            );
        }
        assert_eq!(
            judge_jwks("u", &answer(404, "")).expect_err("404").code,
            "keycloak-jwks-unavailable"
        );
    }

    #[test]
    fn judges_the_grant_without_showing_the_token() {
        let o = judge_token(
            "backstage",
            &answer(
                200,
                r#"{"access_token":"eyJhbGciOi.secret.token","expires_in":300,"token_type":"Bearer"}"#,
            ),
        );
        assert_eq!(
            (o.status, o.code.as_str()),
            (Status::Pass, "keycloak-token-issued")
        );
        assert!(!o.message.contains("eyJ"));
        let o = judge_token(
            "backstage",
            &answer(
                401,
                r#"{"error":"unauthorized_client","error_description":"Invalid client or Invalid client credentials"}"#,
            ),
        );
        assert_eq!(o.code, "keycloak-client-rejected");
        assert!(
            o.message.ends_with(
                "(401): unauthorized_client: Invalid client or Invalid client credentials"
            ),
            "{}",
            o.message
        );
        let o = judge_token("backstage", &answer(200, "{}"));
        assert_eq!(o.code, "keycloak-token-malformed");
    }

    proptest::proptest! {
        /// Whatever a server answers, the judges return an outcome: never a panic.
        #[test]
        fn any_answer_is_judged(status in 100u16..600, body in proptest::collection::vec(proptest::num::u8::ANY, 0..300), json_ish in "[{}\\[\\]\":, a-z0-9]{0,120}") {
            for body in [body.clone(), json_ish.clone().into_bytes()] {
                let a = Answer { status, location: None, body };
                if let Ok(doc) = judge_discovery_answer(&realm(), &a, Some(&a)) {
                    let _ = judge_discovery(&realm(), &doc);
                }
                let _ = judge_jwks("u", &a);
                let _ = judge_token("c", &a);
            }
        }
    }
}
