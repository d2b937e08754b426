//! The HTTP side: authentication, injected faults, routing, get and list, and the error
//! bodies, shaped like a real API server's.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full, combinators::BoxBody};
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::registry::ResourceDef;
use crate::selector::Selector;
use crate::store::{NameKey, State};
use crate::watch::{Start, WatchRequest};
use crate::{RequestRecord, Shared, discovery};

/// Response bodies: whole documents and watch streams alike.
pub(crate) type Body = BoxBody<Bytes, Infallible>;

/// How long a watch lasts when the client does not say (real servers: 30 to 60 minutes;
/// kube-rs asks for 290 s).
const DEFAULT_WATCH_SECONDS: u64 = 300;

fn with_type(
    mut r: Response<Body>,
    code: StatusCode,
    content_type: &'static str,
) -> Response<Body> {
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    r
}

fn json_response(code: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    with_type(
        Response::new(Full::new(body.into()).boxed()),
        code,
        "application/json",
    )
}

fn value(code: StatusCode, v: &Value) -> Response<Body> {
    json_response(code, v.to_string())
}

/// The `details` of a `Status`, fields in the real server's order.
#[derive(Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Details<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    causes: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_seconds: Option<u32>,
}

impl<'a> Details<'a> {
    /// About `def`'s objects, or the one called `name`.
    fn of(def: &'a ResourceDef, name: Option<&'a str>) -> Self {
        Details {
            name,
            group: Some(def.group.as_str()).filter(|g| !g.is_empty()),
            kind: Some(&def.plural),
            ..Details::default()
        }
    }
}

/// A `Status` failure, fields in the real server's order (clients do not care; people
/// comparing bodies with a real cluster's do).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusBody<'a> {
    kind: &'static str,
    api_version: &'static str,
    metadata: Value,
    status: &'static str,
    message: &'a str,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Details<'a>>,
    code: u16,
}

/// A `Status` failure as JSON bytes.
pub(crate) fn status_body(
    code: u16,
    reason: &str,
    message: &str,
    details: Option<Details<'_>>,
) -> Vec<u8> {
    let body = StatusBody {
        kind: "Status",
        api_version: "v1",
        metadata: json!({}),
        status: "Failure",
        message,
        reason,
        details,
        code,
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

/// A `Status` failure response.
fn status(code: u16, reason: &str, message: &str, details: Option<Details<'_>>) -> Response<Body> {
    json_response(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        status_body(code, reason, message, details),
    )
}

fn bad_request(message: &str) -> Response<Body> {
    status(400, "BadRequest", message, None)
}

/// What a real server sends for a path nothing is registered at, e.g. a group/version nobody
/// serves: not a `Status`, plain text.
fn page_not_found() -> Response<Body> {
    with_type(
        Response::new(Full::new(Bytes::from_static(b"404 page not found\n")).boxed()),
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
    )
}

/// The object or collection a path names.
#[derive(Debug, PartialEq, Eq)]
struct Target<'a> {
    group: &'a str,
    version: &'a str,
    namespace: Option<&'a str>,
    plural: &'a str,
    name: Option<&'a str>,
    subresource: Option<&'a str>,
}

/// What a path is.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Version,
    CoreVersions,
    Groups,
    Group(&'a str),
    Resources(&'a str, &'a str),
    Object(Target<'a>),
    NotFound,
}

fn route(path: &str) -> Route<'_> {
    let parts: Vec<&str> = path.split('/').skip(1).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Route::NotFound;
    }
    let (group, version, rest) = match parts.as_slice() {
        ["version"] => return Route::Version,
        ["api"] => return Route::CoreVersions,
        ["apis"] => return Route::Groups,
        ["apis", g] => return Route::Group(g),
        ["api", v] => return Route::Resources("", v),
        ["apis", g, v] => return Route::Resources(g, v),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Route::NotFound,
    };
    let (namespace, plural, name, subresource) = match rest {
        // A namespace's own subresource, not a collection called "status" in it.
        ["namespaces", ns, sub @ ("status" | "finalize")] if group.is_empty() => {
            (None, "namespaces", Some(*ns), Some(*sub))
        }
        ["namespaces", ns, plural] => (Some(*ns), *plural, None, None),
        ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name), None),
        ["namespaces", ns, plural, name, sub] => (Some(*ns), *plural, Some(*name), Some(*sub)),
        [plural] => (None, *plural, None, None),
        [plural, name] => (None, *plural, Some(*name), None),
        [plural, name, sub] => (None, *plural, Some(*name), Some(*sub)),
        _ => return Route::NotFound,
    };
    Route::Object(Target {
        group,
        version,
        namespace,
        plural,
        name,
        subresource,
    })
}

/// Handles one request.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    shared.record(RequestRecord {
        method: req.method().to_string(),
        path: path.clone(),
        query: query.clone(),
    });
    if shared.blackhole.load(Ordering::SeqCst) {
        // Never answer (until the server stops), like a server behind a dropping firewall.
        shared.cancel.cancelled().await;
        return Ok(page_not_found());
    }
    if !shared.authorized(req.headers().get(header::AUTHORIZATION)) {
        return Ok(status(401, "Unauthorized", "Unauthorized", None));
    }
    if let Some(code) = shared.take_failure() {
        return Ok(injected_failure(code));
    }
    let q: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let response = match route(&path) {
        Route::Version => value(StatusCode::OK, &shared.version()),
        Route::CoreVersions => discovery_root(&shared, &req, true),
        Route::Groups => discovery_root(&shared, &req, false),
        Route::Group(g) => match discovery::api_group(&shared.state(), g) {
            Some(group) => value(StatusCode::OK, &group),
            None => page_not_found(),
        },
        Route::Resources(g, v) => match discovery::resources(&shared.state(), g, v) {
            Some(list) => value(StatusCode::OK, &list),
            None => page_not_found(),
        },
        Route::Object(t) => object(&shared, req, &t, &q).await,
        Route::NotFound => page_not_found(),
    };
    Ok(response)
}

/// `GET /api` (`core`) or `GET /apis`, aggregated if the client asks for it.
fn discovery_root(shared: &Shared, req: &Request<Incoming>, core: bool) -> Response<Body> {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .unwrap_or_default();
    let state = shared.state();
    match discovery::aggregated_wanted(accept) {
        Some((content_type, api_version)) => {
            let list = discovery::aggregated(&state, core, api_version);
            with_type(
                Response::new(Full::new(Bytes::from(list.to_string())).boxed()),
                StatusCode::OK,
                content_type,
            )
        }
        None if core => value(StatusCode::OK, &discovery::core_versions()),
        None => value(StatusCode::OK, &discovery::groups(&state)),
    }
}

/// The `Status` of an injected failure, as the API server words that code.
fn injected_failure(code: u16) -> Response<Body> {
    let (reason, message, details) = match code {
        429 => (
            "TooManyRequests",
            "Too many requests, please try again later.",
            Some(Details {
                retry_after_seconds: Some(1),
                ..Details::default()
            }),
        ),
        500 => (
            "InternalError",
            "Internal error occurred: injected failure",
            Some(Details {
                causes: Some(json!([{"message": "injected failure"}])),
                ..Details::default()
            }),
        ),
        503 => (
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
            None,
        ),
        504 => (
            "Timeout",
            "the server was unable to return a response in the time allotted, but may still be processing the request",
            None,
        ),
        _ => ("InternalError", "injected failure", None),
    };
    let mut r = status(code, reason, message, details);
    if code == 429 {
        // API priority and fairness tells clients when to come back.
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    r
}

/// The RBAC verb of a request, as authorization sees it.
fn verb_of(method: &Method, t: &Target<'_>, q: &HashMap<String, String>) -> &'static str {
    let watch = q
        .get("watch")
        .is_some_and(|w| matches!(w.as_str(), "1" | "t" | "T" | "true" | "True" | "TRUE"));
    match (method.as_str(), t.name) {
        ("GET" | "HEAD", Some(_)) => "get",
        ("GET" | "HEAD", None) if watch => "watch",
        ("GET" | "HEAD", None) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", Some(_)) => "delete",
        ("DELETE", None) => "deletecollection",
        _ => "unknown",
    }
}

/// The 403 a real server sends when RBAC denies `verb`.
fn forbidden(shared: &Shared, def: &ResourceDef, t: &Target<'_>, verb: &str) -> Response<Body> {
    let resource = match t.subresource {
        Some(sub) => format!("{}/{sub}", def.plural),
        None => def.plural.clone(),
    };
    let scope = match t.namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_owned(),
    };
    let subject = match t.name {
        Some(n) => format!("{} \"{n}\"", def.qualified()),
        None => def.qualified(),
    };
    let message = format!(
        "{subject} is forbidden: User \"{}\" cannot {verb} resource \"{resource}\" in API group \"{}\" {scope}",
        shared.user(),
        def.group
    );
    status(403, "Forbidden", &message, Some(Details::of(def, t.name)))
}

async fn object(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    t: &Target<'_>,
    q: &HashMap<String, String>,
) -> Response<Body> {
    let Some(def) = shared.state().def(t.group, t.version, t.plural).cloned() else {
        return page_not_found();
    };
    // Paths a real server has no handler for: a namespace on a cluster-scoped type, a named
    // object of a namespaced type without its namespace, an unknown subresource.
    if (t.namespace.is_some() && !def.namespaced)
        || (t.namespace.is_none() && def.namespaced && t.name.is_some())
        || t.subresource.is_some_and(|s| s != "status" || !def.status)
    {
        return page_not_found();
    }
    let verb = verb_of(req.method(), t, q);
    let resource = match t.subresource {
        Some(sub) => format!("{}/{sub}", def.plural),
        None => def.plural.clone(),
    };
    if shared.is_denied(verb, &def.group, &resource) {
        return forbidden(shared, &def, t, verb);
    }
    let method_allowed = match verb {
        "get" | "list" | "watch" => def.verbs.contains(&verb),
        "create" => def.plural == "selfsubjectreviews" && t.name.is_none(),
        _ => false,
    };
    if !method_allowed {
        return status(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
            Some(Details::of(&def, t.name)),
        );
    }
    match verb {
        "create" => {
            // The body (a SelfSubjectReview with nothing in it) says nothing we need.
            let _ = req.into_body().collect().await;
            let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview", "metadata": {"creationTimestamp": null},
                "status": {"userInfo": {"username": shared.user(), "groups": ["system:serviceaccounts", "system:authenticated"]}}});
            value(StatusCode::CREATED, &review)
        }
        "get" => get(&shared.state(), &def, t),
        "list" => list(shared, &def, t, q),
        _ => watch(shared, def, t, q),
    }
}

fn get(state: &State, def: &ResourceDef, t: &Target<'_>) -> Response<Body> {
    let name = t.name.unwrap_or_default();
    let found = State::key(def, t.namespace, name)
        .ok()
        .and_then(|key| state.object(&key));
    match found {
        Some(s) => json_response(StatusCode::OK, s.json_at(&def.group_version(t.version))),
        None => status(
            404,
            "NotFound",
            &format!("{} \"{name}\" not found", def.qualified()),
            Some(Details::of(def, Some(name))),
        ),
    }
}

/// A continue token, shaped like the real server's: base64 of
/// `{"v":"meta.k8s.io/v1","rv":N,"start":"<namespace>/<name>\u0000"}`.
#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    v: String,
    rv: u64,
    start: String,
}

impl ContinueToken {
    fn encode(rv: u64, (ns, name): &NameKey) -> String {
        let start = if ns.is_empty() {
            format!("{name}\u{0}")
        } else {
            format!("{ns}/{name}\u{0}")
        };
        let token = ContinueToken {
            v: "meta.k8s.io/v1".into(),
            rv,
            start,
        };
        STANDARD.encode(serde_json::to_vec(&token).unwrap_or_default())
    }

    /// The token's version and the key after which its list goes on.
    fn decode(token: &str, def: &ResourceDef) -> Result<(u64, NameKey), String> {
        let bytes = STANDARD
            .decode(token)
            .map_err(|e| format!("continue key is not valid: {e}"))?;
        let token: ContinueToken = serde_json::from_slice(&bytes)
            .map_err(|e| format!("continue key is not valid: {e}"))?;
        if token.v != "meta.k8s.io/v1" {
            return Err("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1 required)".into());
        }
        let start = token.start.trim_end_matches('\u{0}');
        let key =
            match start.split_once('/') {
                Some((ns, name)) if def.namespaced => (ns.to_owned(), name.to_owned()),
                None if !def.namespaced => (String::new(), start.to_owned()),
                _ => return Err(
                    "continue key is not valid: the start key does not name an object of this type"
                        .into(),
                ),
            };
        Ok((token.rv, key))
    }
}

fn list(
    shared: &Shared,
    def: &ResourceDef,
    t: &Target<'_>,
    q: &HashMap<String, String>,
) -> Response<Body> {
    let param = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let selector = match Selector::parse(def, param("fieldSelector"), param("labelSelector")) {
        Ok(s) => s,
        Err(e) => return bad_request(&e),
    };
    let limit = match param("limit").map(str::parse::<i64>) {
        None => usize::MAX,
        Some(Ok(n)) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
        Some(Ok(_)) => usize::MAX,
        Some(Err(_)) => return bad_request("limit: Invalid value: must be an integer"),
    };
    let (version, matching, token) = (
        param("resourceVersion"),
        param("resourceVersionMatch"),
        param("continue"),
    );
    if let Some(problem) = invalid_list_options(version, matching, token) {
        return problem;
    }
    let requested = match version.map(str::parse::<u64>) {
        None => None,
        Some(Ok(rv)) => Some(rv),
        Some(Err(_)) => {
            return bad_request(&format!(
                "invalid resource version {:?}",
                version.unwrap_or_default()
            ));
        }
    };
    let (at, after) = match token {
        Some(token) => match ContinueToken::decode(token, def) {
            Ok((rv, key)) => (Some(rv), Some(key)),
            Err(e) => return bad_request(&e),
        },
        // An exact version asks for the list as it was then.
        None if matching == Some("Exact") => (requested, None),
        None => (None, None),
    };
    // A watch cache serves version 0 from memory, whole: it ignores `limit` there.
    let limit = if token.is_none() && requested == Some(0) && shared.has_watch_cache() {
        usize::MAX
    } else {
        limit
    };
    // The lock is held to pick the items, not to assemble the body.
    let picked = {
        let state = shared.state();
        // A version the server has not reached yet: a real one waits three seconds for it
        // to arrive (its watch cache, or etcd), then gives up.
        let current = state.resource_version();
        if let Some(rv) = requested.filter(|rv| *rv > current && token.is_none()) {
            return too_large_resource_version(rv, current);
        }
        state
            .list(def, t.namespace, after.as_ref(), at, limit, |o| {
                selector.matches(o)
            })
            .map(|page| (page, at.unwrap_or(state.resource_version())))
    };
    let (page, rv) = match picked {
        Ok(picked) => picked,
        Err(gone) => {
            let message = if after.is_some() {
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.".to_owned()
            } else {
                format!(
                    "too old resource version: {} ({})",
                    at.unwrap_or_default(),
                    gone.oldest
                )
            };
            return status(410, "Expired", &message, None);
        }
    };
    let api_version = def.group_version(t.version);
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(last) = &page.continue_after {
        meta["continue"] = json!(ContinueToken::encode(rv, last));
        // Real servers cannot count what a selector would keep, so they say nothing then.
        if selector.is_empty() {
            meta["remainingItemCount"] = json!(page.remaining);
        }
    }
    let items: Vec<Bytes> = page.items.iter().map(|s| s.json_at(&api_version)).collect();
    // Concatenate the stored JSON: a page of 500 real nodes is ~2.5 MB that needs no
    // serialising.
    let head = format!(
        r#"{{"kind":"{}","apiVersion":"{api_version}","metadata":{meta},"items":["#,
        def.list_kind
    );
    let total = head.len() + items.iter().map(|i| i.len() + 1).sum::<usize>() + 2;
    let mut body = Vec::with_capacity(total);
    body.extend_from_slice(head.as_bytes());
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(item);
    }
    body.extend_from_slice(b"]}");
    json_response(StatusCode::OK, body)
}

/// What the API server answers to list options it rejects before reading anything
/// (apimachinery's `ValidateListOptions`, then the storage layer's rule for `continue`).
fn invalid_list_options(
    version: Option<&str>,
    matching: Option<&str>,
    token: Option<&str>,
) -> Option<Response<Body>> {
    let forbidden = |why: &str| {
        let message = format!(
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: {why}"
        );
        let details = Details {
            group: Some("meta.k8s.io"),
            kind: Some("ListOptions"),
            causes: Some(
                json!([{"reason": "FieldValueForbidden", "message": format!("Forbidden: {why}"), "field": "resourceVersionMatch"}]),
            ),
            ..Details::default()
        };
        Some(status(422, "Invalid", &message, Some(details)))
    };
    if let Some(matching) = matching {
        if version.is_none() {
            return forbidden(
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            );
        }
        if token.is_some() {
            return forbidden("resourceVersionMatch is forbidden when continue is provided");
        }
        if matching != "Exact" && matching != "NotOlderThan" {
            let message = format!(
                "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Unsupported value: {matching:?}: supported values: \"Exact\", \"NotOlderThan\", \"\""
            );
            return Some(status(422, "Invalid", &message, None));
        }
        if matching == "Exact" && version == Some("0") {
            return forbidden(
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            );
        }
    }
    if token.is_some() && version.is_some_and(|v| v != "0") {
        return Some(bad_request(
            "specifying resource version is not allowed when using continue",
        ));
    }
    None
}

/// The `504` of a list at a resource version the server has not reached.
fn too_large_resource_version(requested: u64, current: u64) -> Response<Body> {
    let details = Details {
        causes: Some(
            json!([{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}]),
        ),
        retry_after_seconds: Some(1),
        ..Details::default()
    };
    status(
        504,
        "Timeout",
        &format!("Timeout: Too large resource version: {requested}, current: {current}"),
        Some(details),
    )
}

fn watch(
    shared: &Arc<Shared>,
    def: ResourceDef,
    t: &Target<'_>,
    q: &HashMap<String, String>,
) -> Response<Body> {
    let param = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let flag = |k: &str| param(k).is_some_and(|v| matches!(v, "1" | "true" | "True"));
    let selector = match Selector::parse(&def, param("fieldSelector"), param("labelSelector")) {
        Ok(s) => s,
        Err(e) => return bad_request(&e),
    };
    let start = match param("resourceVersion") {
        None | Some("0") => Start::Now,
        Some(rv) => match rv.parse() {
            Ok(rv) => Start::After(rv),
            Err(_) => return bad_request(&format!("invalid resource version {rv:?}")),
        },
    };
    let timeout = match param("timeoutSeconds").map(str::parse::<u64>) {
        None | Some(Ok(0)) => Duration::from_secs(DEFAULT_WATCH_SECONDS),
        Some(Ok(s)) => Duration::from_secs(s),
        Some(Err(_)) => return bad_request("timeoutSeconds: Invalid value: must be an integer"),
    };
    let timeout = shared.watch_limit().map_or(timeout, |cap| cap.min(timeout));
    let initial_events = flag("sendInitialEvents");
    crate::watch::watch(
        shared,
        WatchRequest {
            def,
            version: t.version.to_owned(),
            namespace: t.namespace.map(str::to_owned),
            selector,
            // Streaming lists start with the current objects whatever the version.
            start: if initial_events { Start::Now } else { start },
            timeout,
            expired: shared.take_expiring_watch(),
            bookmarks: flag("allowWatchBookmarks"),
            initial_events,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::builtins;

    fn target<'a>(
        group: &'a str,
        namespace: Option<&'a str>,
        plural: &'a str,
        name: Option<&'a str>,
        subresource: Option<&'a str>,
    ) -> Route<'a> {
        Route::Object(Target {
            group,
            version: "v1",
            namespace,
            plural,
            name,
            subresource,
        })
    }

    #[test]
    fn routes_paths_like_the_api_server() {
        assert_eq!(route("/version"), Route::Version);
        assert_eq!(route("/api"), Route::CoreVersions);
        assert_eq!(route("/apis"), Route::Groups);
        assert_eq!(route("/apis/apps"), Route::Group("apps"));
        assert_eq!(route("/api/v1"), Route::Resources("", "v1"));
        assert_eq!(route("/apis/apps/v1"), Route::Resources("apps", "v1"));
        assert_eq!(
            route("/api/v1/nodes"),
            target("", None, "nodes", None, None)
        );
        assert_eq!(
            route("/api/v1/nodes/n1/status"),
            target("", None, "nodes", Some("n1"), Some("status"))
        );
        assert_eq!(
            route("/api/v1/namespaces/kube-system"),
            target("", None, "namespaces", Some("kube-system"), None)
        );
        assert_eq!(
            route("/api/v1/namespaces/kube-system/status"),
            target("", None, "namespaces", Some("kube-system"), Some("status"))
        );
        assert_eq!(
            route("/apis/apps/v1/namespaces/kube-system/deployments/coredns"),
            target(
                "apps",
                Some("kube-system"),
                "deployments",
                Some("coredns"),
                None
            )
        );
        for nowhere in [
            "/",
            "/apis/",
            "/api/v1/nodes/",
            "/healthz",
            "/api/v1/a/b/c/d",
            "/apisx",
        ] {
            assert_eq!(route(nowhere), Route::NotFound, "{nowhere}");
        }
    }

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let defs = builtins();
        let nodes = defs.iter().find(|d| d.plural == "nodes").unwrap();
        let secrets = defs.iter().find(|d| d.plural == "secrets").unwrap();
        let key = (String::new(), "ip-10-0-0-1.ec2.internal".to_owned());
        let token = ContinueToken::encode(1234, &key);
        assert_eq!(ContinueToken::decode(&token, nodes), Ok((1234, key)));
        let key = ("backstage".to_owned(), "db".to_owned());
        let token = ContinueToken::encode(7, &key);
        assert_eq!(ContinueToken::decode(&token, secrets), Ok((7, key)));
        for bad in [
            "garbage",
            "",
            "e30=",
            &STANDARD.encode("{\"v\":\"x\",\"rv\":1,\"start\":\"a\"}"),
        ] {
            assert!(ContinueToken::decode(bad, nodes).is_err(), "{bad}");
        }
    }

    #[test]
    fn status_bodies_keep_the_real_field_order() {
        let body =
            String::from_utf8(status_body(401, "Unauthorized", "Unauthorized", None)).unwrap();
        assert_eq!(
            body,
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#
        );
    }
}
