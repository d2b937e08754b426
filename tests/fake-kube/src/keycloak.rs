//! A fake Keycloak over HTTPS: the OIDC endpoints preflight reads, answering as Keycloak 17+
//! (Quarkus) does, or as a legacy Keycloak under `/auth`, with faults a test can switch on.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use bytes::Bytes;
use http::{Method, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::api::Body;
use crate::{lock, server, tls};

/// A confidential client of a realm.
#[derive(Clone, Debug)]
pub struct Client {
    /// Its secret.
    pub secret: String,
    /// Whether "service accounts roles" is on (the client-credentials grant).
    pub service_accounts: bool,
}

/// What the fake serves; tests change it while it runs.
#[derive(Clone, Debug)]
pub struct Realms {
    /// Realms that exist.
    pub realms: BTreeSet<String>,
    /// Serve under `/auth`, as Keycloak before 17 did.
    pub legacy: bool,
    /// The base URL the issuer names, when not the server's own (a wrong `hostname`).
    pub issuer_base: Option<String>,
    /// The JWKS keys.
    pub keys: Vec<Value>,
    /// Answer discovery requests with this status and body instead (a proxy's error page, a
    /// malformed document).
    pub discovery_override: Option<(u16, String)>,
    /// Redirect discovery requests here (an authentication proxy's login page).
    pub redirect_to: Option<String>,
    /// Confidential clients by id.
    pub clients: BTreeMap<String, Client>,
    /// The base URL the token endpoint is announced under, when not the server's own (a
    /// proxy rewriting it to plain HTTP, another host).
    pub token_base: Option<String>,
}

impl Default for Realms {
    /// The platform's realm with one RSA signing key and one encryption key, as Keycloak
    /// generates them.
    fn default() -> Self {
        Realms {
            realms: BTreeSet::from(["goldenpath".to_owned()]),
            legacy: false,
            issuer_base: None,
            keys: vec![
                json!({"kid": "Jb1cV9wYpZ3q", "kty": "RSA", "alg": "RSA-OAEP", "use": "enc", "n": "sXchGVVQ", "e": "AQAB"}),
                json!({"kid": "k6oA8NfLq2bR", "kty": "RSA", "alg": "RS256", "use": "sig", "n": "xYz0p3Q1", "e": "AQAB", "x5t": "dGVzdA", "x5t#S256": "dGVzdDI1Ng"}),
            ],
            discovery_override: None,
            redirect_to: None,
            clients: BTreeMap::new(),
            token_base: None,
        }
    }
}

#[derive(Clone)]
struct KeycloakHandler {
    url: String,
    realms: Arc<Mutex<Realms>>,
}

fn json(code: StatusCode, body: &Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

fn text(code: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)).boxed());
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    r
}

/// What Quarkus answers for a path nothing serves (HTML, not Keycloak's JSON error).
fn resource_not_found() -> Response<Body> {
    text(
        StatusCode::NOT_FOUND,
        "text/html;charset=UTF-8",
        "<!doctype html><html lang=\"en\"><head><title>Resource not found</title></head><body><h1>Resource not found</h1></body></html>".into(),
    )
}

impl KeycloakHandler {
    fn answer(
        &self,
        method: &Method,
        path: &str,
        form: &BTreeMap<String, String>,
    ) -> Response<Body> {
        let realms = lock(&self.realms).clone();
        let prefix = if realms.legacy { "/auth" } else { "" };
        let Some(rest) = path.strip_prefix(&format!("{prefix}/realms/")) else {
            return resource_not_found();
        };
        let (realm, endpoint) = rest.split_once('/').unwrap_or((rest, ""));
        let base = realms
            .issuer_base
            .clone()
            .unwrap_or_else(|| self.url.clone());
        let issuer = format!("{base}{prefix}/realms/{realm}");
        let own = format!("{}{prefix}/realms/{realm}", self.url);
        if endpoint == ".well-known/openid-configuration" {
            if let Some(to) = &realms.redirect_to {
                let mut r = text(StatusCode::FOUND, "text/html", String::new());
                if let Ok(v) = header::HeaderValue::from_str(to) {
                    r.headers_mut().insert(header::LOCATION, v);
                }
                return r;
            }
            if let Some((code, body)) = &realms.discovery_override {
                let code = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return text(code, "application/json", body.clone());
            }
        }
        if !realms.realms.contains(realm) {
            // KeycloakErrorHandler: a NotFoundException's message, no description for 4xx.
            return json(
                StatusCode::NOT_FOUND,
                &json!({"error": "Realm does not exist"}),
            );
        }
        match (method, endpoint) {
            // The realm's public representation (Keycloak's PublishedRealmRepresentation,
            // without its public key), which a script curls to see the realm is there.
            (&Method::GET, "") => json(
                StatusCode::OK,
                &json!({
                    "realm": realm,
                    "token-service": format!("{issuer}/protocol/openid-connect"),
                    "account-service": format!("{issuer}/account"),
                    "tokens-not-before": 0,
                }),
            ),
            (&Method::GET, ".well-known/openid-configuration") => json(
                StatusCode::OK,
                &json!({
                    "issuer": issuer,
                    "authorization_endpoint": format!("{issuer}/protocol/openid-connect/auth"),
                    "token_endpoint": format!("{}{prefix}/realms/{realm}/protocol/openid-connect/token", realms.token_base.as_deref().unwrap_or(&self.url)),
                    "introspection_endpoint": format!("{own}/protocol/openid-connect/token/introspect"),
                    "userinfo_endpoint": format!("{own}/protocol/openid-connect/userinfo"),
                    "end_session_endpoint": format!("{issuer}/protocol/openid-connect/logout"),
                    "jwks_uri": format!("{own}/protocol/openid-connect/certs"),
                    "grant_types_supported": ["authorization_code", "implicit", "refresh_token", "password", "client_credentials"],
                    "response_types_supported": ["code", "none", "id_token", "token", "id_token token", "code id_token", "code token", "code id_token token"],
                    "subject_types_supported": ["public", "pairwise"],
                    "id_token_signing_alg_values_supported": ["PS384", "RS384", "EdDSA", "ES384", "HS256", "HS512", "ES256", "RS256", "HS384", "ES512", "PS256", "PS512", "RS512"],
                    "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "client_secret_post", "tls_client_auth", "client_secret_jwt"],
                }),
            ),
            (&Method::GET, "protocol/openid-connect/certs") => {
                json(StatusCode::OK, &json!({"keys": realms.keys}))
            }
            (&Method::POST, "protocol/openid-connect/token") => token(&realms, form),
            _ => resource_not_found(),
        }
    }
}

/// The token endpoint's answers to a client-credentials grant (Keycloak's
/// `ClientCredentialsGrantType` and `AuthorizeClientUtil`).
fn token(realms: &Realms, form: &BTreeMap<String, String>) -> Response<Body> {
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "client_credentials" {
        return json(
            StatusCode::BAD_REQUEST,
            &json!({"error": "unsupported_grant_type", "error_description": "Unsupported grant_type"}),
        );
    }
    match realms.clients.get(field("client_id")) {
        Some(c) if c.secret == field("client_secret") && c.service_accounts => json(
            StatusCode::OK,
            &json!({"access_token": "eyJhbGciOiJSUzI1NiJ9.fake.token", "expires_in": 300, "refresh_expires_in": 0, "token_type": "Bearer", "not-before-policy": 0, "scope": "profile email"}),
        ),
        Some(c) if c.secret == field("client_secret") => json(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "unauthorized_client", "error_description": "Client not enabled to retrieve service account"}),
        ),
        _ => json(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "unauthorized_client", "error_description": "Invalid client or Invalid client credentials"}),
        ),
    }
}

impl server::Handler for KeycloakHandler {
    async fn handle(self, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let form: BTreeMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
        Ok(self.answer(&method, &path, &form))
    }
}

/// A running fake Keycloak on an ephemeral port of 127.0.0.1, stopped when dropped.
pub struct FakeKeycloak {
    addr: SocketAddr,
    ca_pem: String,
    realms: Arc<Mutex<Realms>>,
    _stop: DropGuard,
}

impl FakeKeycloak {
    /// Starts it with [`Realms::default`], a fresh CA and server certificate. Call it inside a
    /// Tokio runtime.
    pub async fn start() -> anyhow::Result<FakeKeycloak> {
        let tls = tls::generate().context("cannot make the test certificates")?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot listen on 127.0.0.1")?;
        let addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let realms = Arc::new(Mutex::new(Realms::default()));
        let handler = KeycloakHandler {
            url: format!("https://{addr}"),
            realms: realms.clone(),
        };
        tokio::spawn(server::serve(
            listener,
            Arc::new(tls.acceptor),
            cancel.clone(),
            handler,
        ));
        Ok(FakeKeycloak {
            addr,
            ca_pem: tls.ca_pem,
            realms,
            _stop: cancel.drop_guard(),
        })
    }

    /// `https://127.0.0.1:PORT`, the base URL preflight is pointed at.
    #[must_use]
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The CA certificate (PEM) that signed the server's certificate.
    #[must_use]
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Changes what it serves.
    pub fn update(&self, change: impl FnOnce(&mut Realms)) {
        change(&mut lock(&self.realms));
    }
}
