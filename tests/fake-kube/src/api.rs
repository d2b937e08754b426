//! The HTTP side: authentication, fault injection, discovery, get, list, watch and the error
//! bodies, shaped like a real API server's.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use crate::store::{Change, ResourceDef, State};
use crate::{RequestRecord, Shared};

pub(crate) type Body = BoxBody<Bytes, Infallible>;

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

fn json_response(code: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

fn value(code: StatusCode, v: &Value) -> Response<Body> {
    json_response(code, serde_json::to_vec(v).unwrap_or_default())
}

/// A `Status` error body.
fn status(code: u16, reason: &str, message: &str, details: Option<Value>) -> Response<Body> {
    let mut body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code});
    if let Some(d) = details {
        body["details"] = d;
    }
    value(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &body,
    )
}

/// What a real server sends for a path nothing is registered at (e.g. a group/version not served).
fn page_not_found() -> Response<Body> {
    let mut r = Response::new(full("404 page not found\n"));
    *r.status_mut() = StatusCode::NOT_FOUND;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn query_map(query: &str) -> HashMap<String, String> {
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// `resource.group` as error messages write a grouped resource.
fn qualified(def: &ResourceDef) -> String {
    if def.group.is_empty() {
        def.plural.clone()
    } else {
        format!("{}.{}", def.plural, def.group)
    }
}

fn details(def: &ResourceDef, name: Option<&str>) -> Value {
    let mut d = json!({"kind": def.plural});
    if let Some(n) = name {
        d["name"] = json!(n);
    }
    if !def.group.is_empty() {
        d["group"] = json!(def.group);
    }
    d
}

/// The request's target, once the path is understood.
struct Target<'a> {
    group: &'a str,
    version: &'a str,
    namespace: Option<&'a str>,
    plural: &'a str,
    name: Option<&'a str>,
}

/// Splits `/api/v1/...` or `/apis/{g}/{v}/...`; `Err(path kind)` for discovery paths.
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
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
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
    let (namespace, plural, name) = match rest {
        ["namespaces", ns, plural] => (Some(*ns), *plural, None),
        ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name)),
        [plural] => (None, *plural, None),
        [plural, name] => (None, *plural, Some(*name)),
        _ => return Route::NotFound,
    };
    Route::Object(Target {
        group,
        version,
        namespace,
        plural,
        name,
    })
}

/// Handles one request.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    shared
        .requests
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(RequestRecord {
            method: req.method().to_string(),
            path: path.clone(),
            query: query.clone(),
        });
    if shared.blackhole.load(Ordering::SeqCst) {
        shared.cancel.cancelled().await;
        return Ok(status(503, "ServiceUnavailable", "shutting down", None));
    }
    let expected = format!("Bearer {}", shared.token);
    let authorized = !shared.revoked.load(Ordering::SeqCst)
        && req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            == Some(expected.as_str());
    if !authorized {
        return Ok(status(401, "Unauthorized", "Unauthorized", None));
    }
    let failing = shared
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        let code = shared.fail_code.load(Ordering::SeqCst);
        let reason = if code == 429 {
            "TooManyRequests"
        } else {
            "InternalError"
        };
        return Ok(status(
            code,
            reason,
            &format!("injected failure ({code})"),
            None,
        ));
    }
    let method = req.method().clone();
    let response = match route(&path) {
        Route::Version => value(StatusCode::OK, &shared.version()),
        Route::CoreVersions => value(
            StatusCode::OK,
            &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:443"}]}),
        ),
        Route::Groups => value(StatusCode::OK, &groups(&shared.state())),
        Route::Group(g) => match groups(&shared.state())["groups"]
            .as_array()
            .and_then(|gs| gs.iter().find(|x| x["name"] == g))
        {
            Some(group) => {
                let mut group = group.clone();
                group["kind"] = json!("APIGroup");
                group["apiVersion"] = json!("v1");
                value(StatusCode::OK, &group)
            }
            None => page_not_found(),
        },
        Route::Resources(g, v) => {
            let state = shared.state();
            if state.serves(g, v) {
                value(StatusCode::OK, &resources(&state, g, v))
            } else {
                page_not_found()
            }
        }
        Route::Object(t) => object(&shared, &method, t, &query, req).await,
        Route::NotFound => page_not_found(),
    };
    Ok(response)
}

fn groups(state: &State) -> Value {
    let mut names: Vec<&str> = Vec::new();
    for d in state.defs() {
        if !d.group.is_empty() && !names.contains(&d.group.as_str()) {
            names.push(&d.group);
        }
    }
    let groups: Vec<Value> = names
        .iter()
        .map(|g| {
            let mut versions: Vec<&str> = Vec::new();
            for d in state.defs().iter().filter(|d| d.group == *g) {
                for v in &d.versions {
                    if !versions.contains(&v.as_str()) {
                        versions.push(v);
                    }
                }
            }
            let gv = |v: &str| json!({"groupVersion": format!("{g}/{v}"), "version": v});
            json!({"name": g, "versions": versions.iter().map(|v| gv(v)).collect::<Vec<_>>(), "preferredVersion": gv(versions[0])})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn resources(state: &State, group: &str, version: &str) -> Value {
    let mut list = Vec::new();
    for d in state
        .defs()
        .iter()
        .filter(|d| d.group == group && d.versions.iter().any(|v| v == version))
    {
        let mut r = json!({"name": d.plural, "singularName": d.singular, "namespaced": d.namespaced, "kind": d.kind, "verbs": d.verbs});
        if !d.short_names.is_empty() {
            r["shortNames"] = json!(d.short_names);
        }
        list.push(r);
        if d.status {
            list.push(json!({"name": format!("{}/status", d.plural), "singularName": "", "namespaced": d.namespaced, "kind": d.kind, "verbs": ["get", "patch", "update"]}));
        }
    }
    let gv = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list})
}

/// Field and label selectors, as far as the tests need them.
struct Selector {
    fields: Vec<(String, String)>,
    labels: Vec<(String, Option<String>, bool)>,
}

impl Selector {
    fn parse(q: &HashMap<String, String>) -> Result<Selector, String> {
        let mut fields = Vec::new();
        for term in q
            .get("fieldSelector")
            .map(String::as_str)
            .unwrap_or_default()
            .split(',')
            .filter(|t| !t.is_empty())
        {
            let (k, v) = term
                .split_once("==")
                .or_else(|| term.split_once('='))
                .ok_or(format!("invalid field selector {term:?}"))?;
            if k != "metadata.name" && k != "metadata.namespace" {
                return Err(format!("field label not supported: {k}"));
            }
            fields.push((k.to_owned(), v.to_owned()));
        }
        let mut labels = Vec::new();
        for term in q
            .get("labelSelector")
            .map(String::as_str)
            .unwrap_or_default()
            .split(',')
            .filter(|t| !t.is_empty())
        {
            let parsed = if let Some((k, v)) = term.split_once("!=") {
                (k.to_owned(), Some(v.to_owned()), false)
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (k.to_owned(), Some(v.to_owned()), true)
            } else if let Some(k) = term.strip_prefix('!') {
                (k.to_owned(), None, false)
            } else {
                (term.to_owned(), None, true)
            };
            labels.push(parsed);
        }
        Ok(Selector { fields, labels })
    }

    fn matches(&self, obj: &Value) -> bool {
        let meta = &obj["metadata"];
        let fields_ok = self.fields.iter().all(|(k, v)| {
            let actual = if k == "metadata.name" {
                &meta["name"]
            } else {
                &meta["namespace"]
            };
            actual.as_str().unwrap_or_default() == v
        });
        let labels_ok = self.labels.iter().all(|(k, v, positive)| {
            let actual = meta["labels"][k].as_str();
            match (v, positive) {
                (Some(v), true) => actual == Some(v.as_str()),
                (Some(v), false) => actual != Some(v.as_str()),
                (None, true) => actual.is_some(),
                (None, false) => actual.is_none(),
            }
        });
        fields_ok && labels_ok
    }
}

fn verb_of(method: &Method, t: &Target<'_>, q: &HashMap<String, String>) -> &'static str {
    match (method, t.name) {
        (&Method::POST, _) => "create",
        (_, Some(_)) => "get",
        _ if matches!(q.get("watch").map(String::as_str), Some("true" | "1")) => "watch",
        _ => "list",
    }
}

async fn object(
    shared: &Arc<Shared>,
    method: &Method,
    t: Target<'_>,
    query: &str,
    req: Request<Incoming>,
) -> Response<Body> {
    let q = query_map(query);
    let def = {
        let state = shared.state();
        if !state.serves(t.group, t.version) {
            return page_not_found();
        }
        match state.def(t.group, t.version, t.plural) {
            Some(d) => d.clone(),
            None => return page_not_found(),
        }
    };
    if t.namespace.is_some() && !def.namespaced {
        return page_not_found();
    }
    let verb = verb_of(method, &t, &q);
    if shared.is_denied(verb, &def.group, &def.plural) {
        let scope = match t.namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_owned(),
        };
        let subject = match t.name {
            Some(n) => format!("{} \"{n}\"", qualified(&def)),
            None => qualified(&def),
        };
        let message = format!(
            "{subject} is forbidden: User \"{}\" cannot {verb} resource \"{}\" in API group \"{}\" {scope}",
            shared.user(),
            def.plural,
            def.group
        );
        return status(403, "Forbidden", &message, Some(details(&def, t.name)));
    }
    if !def.verbs.contains(&verb)
        || !matches!(*method, Method::GET | Method::POST)
        || (*method == Method::POST && def.plural != "selfsubjectreviews")
    {
        return status(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
            Some(details(&def, t.name)),
        );
    }
    match verb {
        "create" => {
            // Only SelfSubjectReview is creatable: it reports who the caller is.
            let _ = req.into_body().collect().await;
            let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview", "metadata": {"creationTimestamp": null},
                "status": {"userInfo": {"username": shared.user(), "groups": ["system:serviceaccounts", "system:authenticated"]}}});
            value(StatusCode::CREATED, &review)
        }
        "get" => get(shared, &def, &t),
        "list" => list(shared, &def, &t, &q),
        _ => watch(shared, def, &t, &q),
    }
}

/// The object's JSON at the version requested (custom resources are served at several).
fn at_version(json: &Bytes, value: &Value, def: &ResourceDef, version: &str) -> Bytes {
    let wanted = if def.group.is_empty() {
        version.to_owned()
    } else {
        format!("{}/{version}", def.group)
    };
    if value["apiVersion"].as_str() == Some(wanted.as_str()) {
        return json.clone();
    }
    let mut v = value.clone();
    v["apiVersion"] = json!(wanted);
    Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
}

fn get(shared: &Shared, def: &ResourceDef, t: &Target<'_>) -> Response<Body> {
    let name = t.name.unwrap_or_default();
    let key = crate::store::ObjKey {
        group: def.group.clone(),
        plural: def.plural.clone(),
        namespace: t.namespace.unwrap_or_default().to_owned(),
        name: name.to_owned(),
    };
    match shared.state().object(&key) {
        Some(s) => json_response(
            StatusCode::OK,
            at_version(&s.json, &s.value, def, t.version),
        ),
        None => status(
            404,
            "NotFound",
            &format!("{} \"{name}\" not found", qualified(def)),
            Some(details(def, Some(name))),
        ),
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    rv: u64,
    ns: String,
    name: String,
}

fn list(
    shared: &Shared,
    def: &ResourceDef,
    t: &Target<'_>,
    q: &HashMap<String, String>,
) -> Response<Body> {
    let selector = match Selector::parse(q) {
        Ok(s) => s,
        Err(e) => return status(400, "BadRequest", &e, None),
    };
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let token = match q.get("continue").filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => match URL_SAFE_NO_PAD
            .decode(c)
            .ok()
            .and_then(|b| serde_json::from_slice::<ContinueToken>(&b).ok())
        {
            Some(tok) => Some(tok),
            None => return status(400, "BadRequest", "invalid continue token", None),
        },
    };
    let state = shared.state();
    let rv = token
        .as_ref()
        .map_or(state.resource_version(), |tok| tok.rv);
    let after = token.map(|tok| (tok.ns, tok.name));
    let mut items: Vec<Bytes> = Vec::new();
    let mut last = None;
    let mut remaining = 0usize;
    for ((ns, name), stored) in state.list(def, t.namespace, after) {
        if !selector.matches(&stored.value) {
            continue;
        }
        if items.len() == limit {
            remaining += 1;
            continue;
        }
        items.push(at_version(&stored.json, &stored.value, def, t.version));
        last = Some((ns.clone(), name.clone()));
    }
    drop(state);
    let gv = if def.group.is_empty() {
        t.version.to_owned()
    } else {
        format!("{}/{}", def.group, t.version)
    };
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let (true, Some((ns, name))) = (remaining > 0, last) {
        let token = serde_json::to_vec(&ContinueToken { rv, ns, name }).unwrap_or_default();
        meta["continue"] = json!(URL_SAFE_NO_PAD.encode(token));
        meta["remainingItemCount"] = json!(remaining);
    }
    let head = format!(
        r#"{{"kind":"{}List","apiVersion":"{gv}","metadata":{meta},"items":["#,
        def.kind
    );
    let total: usize = head.len() + items.iter().map(|i| i.len() + 1).sum::<usize>() + 2;
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

fn event_line(kind: &str, object: &[u8]) -> Bytes {
    let mut line = Vec::with_capacity(object.len() + 32);
    line.extend_from_slice(format!(r#"{{"type":"{kind}","object":"#).as_bytes());
    line.extend_from_slice(object);
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
}

fn watch(
    shared: &Arc<Shared>,
    def: ResourceDef,
    t: &Target<'_>,
    q: &HashMap<String, String>,
) -> Response<Body> {
    let selector = match Selector::parse(q) {
        Ok(s) => s,
        Err(e) => return status(400, "BadRequest", &e, None),
    };
    let timeout = Duration::from_secs(
        q.get("timeoutSeconds")
            .and_then(|s| s.parse().ok())
            .unwrap_or(300),
    );
    let from: Option<u64> = q
        .get("resourceVersion")
        .and_then(|s| s.parse().ok())
        .filter(|rv| *rv > 0);
    let namespace = t.namespace.map(str::to_owned);
    let version = t.version.to_owned();

    let (receiver, first) = {
        let state = shared.state();
        match from {
            Some(rv) => {
                let (receiver, replay) = state.watch_from(rv);
                let first: Result<Vec<Bytes>, u64> = match replay {
                    Some(changes) => Ok(changes
                        .iter()
                        .filter(|c| c.key.group == def.group && c.key.plural == def.plural)
                        .filter(|c| namespace.as_deref().is_none_or(|n| n == c.key.namespace))
                        .filter(|c| selector.matches(&c.object.value))
                        .map(|c| {
                            event_line(
                                c.kind,
                                &at_version(&c.object.json, &c.object.value, &def, &version),
                            )
                        })
                        .collect()),
                    None => Err(rv),
                };
                (receiver, first)
            }
            None => {
                let receiver = state.subscribe();
                let added = state
                    .list(&def, namespace.as_deref(), None)
                    .filter(|(_, s)| selector.matches(&s.value))
                    .map(|(_, s)| {
                        event_line("ADDED", &at_version(&s.json, &s.value, &def, &version))
                    })
                    .collect();
                (receiver, Ok(added))
            }
        }
    };

    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let cancel = shared.cancel.clone();
    let current = shared.state().resource_version();
    tokio::spawn(async move {
        let mut receiver = receiver;
        let lines = match first {
            Ok(lines) => lines,
            Err(rv) => {
                let gone = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": format!("too old resource version: {rv} ({current})"), "reason": "Expired", "code": 410});
                let _ = tx
                    .send(event_line(
                        "ERROR",
                        &serde_json::to_vec(&gone).unwrap_or_default(),
                    ))
                    .await;
                return;
            }
        };
        for line in lines {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            let change: Arc<Change> = tokio::select! {
                () = cancel.cancelled() => return,
                () = &mut deadline => return,
                () = tx.closed() => return,
                next = receiver.recv() => match next {
                    Ok(c) => c,
                    Err(RecvError::Lagged(_)) => {
                        let gone = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": "watch fell behind; start again from a new list", "reason": "Expired", "code": 410});
                        let _ = tx.send(event_line("ERROR", &serde_json::to_vec(&gone).unwrap_or_default())).await;
                        return;
                    }
                    Err(RecvError::Closed) => return,
                },
            };
            let relevant = change.key.group == def.group
                && change.key.plural == def.plural
                && namespace
                    .as_deref()
                    .is_none_or(|n| n == change.key.namespace)
                && selector.matches(&change.object.value);
            if relevant
                && tx
                    .send(event_line(
                        change.kind,
                        &at_version(&change.object.json, &change.object.value, &def, &version),
                    ))
                    .await
                    .is_err()
            {
                return;
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    let mut r = Response::new(StreamBody::new(stream).boxed());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}
