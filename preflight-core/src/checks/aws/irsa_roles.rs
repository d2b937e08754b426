//! `irsa-roles`: every IRSA ServiceAccount the platform needs names an IAM role that exists and
//! whose trust policy lets this cluster's OIDC provider assume it for exactly that
//! ServiceAccount (`system:serviceaccount:{namespace}:{name}`), and the provider itself is
//! registered in IAM.
//!
//! At tier 1's gate the ServiceAccounts do not exist yet (their charts are tier 1), so each
//! one's role comes from the settings, not from its `eks.amazonaws.com/role-arn` annotation
//! (the `irsa` check reads those once the charts are in). By default the role of a
//! ServiceAccount is named `goldenpath-{env}-{service account name}`: a naming convention of
//! this platform's Terraform, not of AWS or EKS. Where Terraform names the roles otherwise,
//! set `role` (a name, with `{env}` substituted, or a full role ARN).
//!
//! The cluster's OIDC issuer is configured (`oidcIssuer`) or read from EKS (`DescribeCluster`
//! on `clusterName`). A trust policy must name the provider
//! `arn:aws:iam::{account}:oidc-provider/{issuer without https://}`, in the role's account.
//!
//! The trust policy is evaluated as IAM evaluates it for the ServiceAccount's token: each
//! statement about `sts:AssumeRoleWithWebIdentity` by that provider is a predicate on the
//! token's claims `{sub, aud}` (conditions ANDed across operators and keys, ORed across a
//! key's values); the role trusts the ServiceAccount when an Allow statement holds and no Deny
//! statement does (an explicit Deny wins). It is too broad when it also lets in a made-up
//! other ServiceAccount (another in the namespace, the name in another namespace). Operators
//! and keys preflight does not evaluate fail the check naming them, rather than be guessed.

use aws_sdk_eks::error::SdkError;
use aws_sdk_eks::operation::describe_cluster::DescribeClusterError;
use aws_sdk_iam::operation::get_open_id_connect_provider::GetOpenIDConnectProviderError;
use aws_sdk_iam::operation::get_role::GetRoleError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::check::ObjectRef;
use crate::check::{Attempt, Check, Context};
use crate::check::{Built, Definition, Family, Site};
use crate::contract::PlatformFlag;
use crate::outcome::{Outcome, name_list};
use crate::platform::{NeededBy, Provider};
use crate::reads::{IamGrant, Reads};
use crate::tier::Tier;

/// The action a pod's IRSA credentials come from.
const WEB_IDENTITY: &str = "sts:AssumeRoleWithWebIdentity";

/// The audience of the tokens EKS's pod identity webhook projects for IRSA.
const AUDIENCE: &str = "sts.amazonaws.com";

/// `checks.irsa-roles`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct IrsaRolesSettings {
    /// The ServiceAccounts that assume an IAM role, each with its role.
    pub service_accounts: Vec<IrsaRoleSettings>,
    /// The cluster's OIDC issuer URL (`https://oidc.eks.{region}.amazonaws.com/id/…`); none
    /// (the default): read from EKS.
    pub oidc_issuer: Option<String>,
    /// The EKS cluster whose issuer is read when `oidcIssuer` is not set; `{env}` is
    /// substituted. Default: the platform's `goldenpath-{env}`.
    pub cluster_name: Option<String>,
}

impl Default for IrsaRolesSettings {
    /// The tier-1 controllers that call AWS: External Secrets, ExternalDNS, cluster-autoscaler,
    /// the AWS load balancer controller and the EBS CSI driver, each with the platform's
    /// conventional role.
    fn default() -> Self {
        let sa = |namespace: &str, name: &str| IrsaRoleSettings {
            service_account: ObjectRef::new(namespace, name),
            role: Some(format!("goldenpath-{{env}}-{name}")),
        };
        IrsaRolesSettings {
            service_accounts: vec![
                sa("external-secrets", "external-secrets"),
                sa("external-dns", "external-dns"),
                sa("kube-system", "cluster-autoscaler"),
                sa("kube-system", "aws-load-balancer-controller"),
                sa("kube-system", "ebs-csi-controller-sa"),
            ],
            oidc_issuer: None,
            cluster_name: None,
        }
    }
}

/// One ServiceAccount and the role it assumes.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IrsaRoleSettings {
    /// The ServiceAccount, `namespace/name`.
    pub service_account: ObjectRef,
    /// The role's name (`{env}` substituted) or ARN; none: `goldenpath-{env}-{name}`.
    #[serde(default)]
    pub role: Option<String>,
}

/// A ServiceAccount with its role resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Binding {
    pub service_account: ObjectRef,
    /// The role's name or ARN.
    pub role: String,
}

impl Binding {
    fn resolve(settings: &IrsaRoleSettings, env: &str) -> Self {
        let sa = &settings.service_account;
        Binding {
            service_account: sa.clone(),
            role: settings.role.as_ref().map_or_else(
                || format!("goldenpath-{env}-{}", sa.name),
                |r| r.replace("{env}", env),
            ),
        }
    }

    /// The role's name: `GetRole` takes names, and a role ARN ends in its path and name.
    fn role_name(&self) -> &str {
        self.role.rsplit('/').next().unwrap_or(&self.role)
    }

    /// The `sub` claim of the ServiceAccount's tokens.
    fn subject(&self) -> String {
        format!(
            "system:serviceaccount:{}:{}",
            self.service_account.namespace, self.service_account.name
        )
    }

    /// The role's ARN pattern for the IAM policy of preflight itself.
    fn resource(&self) -> String {
        if self.role.starts_with("arn:") {
            self.role.clone()
        } else {
            format!("arn:aws:iam::*:role/{}", self.role)
        }
    }
}

/// The cluster's OIDC issuer, as the trust policies name it: without `https://`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Issuer(String);

impl Issuer {
    pub(crate) fn parse(url: &str) -> Self {
        let url = url.trim();
        let host = url.strip_prefix("https://").unwrap_or(url);
        Issuer(host.trim_end_matches('/').to_owned())
    }

    /// The issuer as the provider's ARN and the condition keys name it.
    fn host(&self) -> &str {
        &self.0
    }

    /// The provider's ARN in the account (and partition) of `role_arn`.
    fn provider_in(&self, role_arn: &str) -> Option<String> {
        match role_arn.splitn(6, ':').collect::<Vec<_>>().as_slice() {
            ["arn", partition, "iam", "", account, _] => Some(format!(
                "arn:{partition}:iam::{account}:oidc-provider/{}",
                self.0
            )),
            _ => None,
        }
    }
}

/// One statement of a trust policy, reduced to what IRSA depends on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Statement {
    /// Its place in the policy, from 1, to name it when it has no `Sid`.
    pub position: usize,
    /// `Sid`, when it has one.
    pub sid: Option<String>,
    /// `Effect: Allow`; otherwise `Deny`.
    pub allow: bool,
    /// `Action`, one or several (patterns allowed); `NotAction`'s with `not_action`.
    pub actions: Vec<String>,
    /// The statement is about every action but `actions` (`NotAction`).
    pub not_action: bool,
    /// `Principal.Federated`, one or several; `NotPrincipal`'s with `not_principal`.
    pub federated: Vec<String>,
    /// `Principal: "*"` or `{"AWS": "*"}`: every principal.
    pub anyone: bool,
    /// The statement is about every principal but those named (`NotPrincipal`).
    pub not_principal: bool,
    /// `Condition`, one entry per operator and key.
    pub conditions: Vec<Condition>,
}

/// One key of one condition operator, e.g. `StringEquals` on `{issuer}:sub`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Condition {
    pub operator: String,
    pub key: String,
    pub values: Vec<String>,
}

/// A JSON value that may be one string or a list: its strings (other scalars as text).
fn strings(value: &Value) -> Vec<String> {
    let one = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(_) | Value::Number(_) => Some(v.to_string()),
        _ => None,
    };
    match value {
        Value::Array(items) => items.iter().filter_map(one).collect(),
        v => one(v).into_iter().collect(),
    }
}

/// A `Principal` (or `NotPrincipal`): its federated providers, and whether it is everyone.
fn principals(value: &Value) -> (Vec<String>, bool) {
    match value {
        Value::String(s) => (Vec::new(), s == "*"),
        Value::Object(p) => (
            p.get("Federated").map(strings).unwrap_or_default(),
            p.get("AWS")
                .is_some_and(|a| strings(a).iter().any(|a| a == "*")),
        ),
        _ => (Vec::new(), false),
    }
}

/// Parses a role's trust policy as `GetRole` returns it: URL-encoded (percent-encoding) JSON.
/// The error says what is wrong with it; a trust policy is not a secret.
pub(crate) fn parse_trust(document: &str) -> Result<Vec<Statement>, String> {
    let document = document.trim();
    // AWS always encodes it; a plain document (a proxy that decoded it) is taken as it is.
    let decoded = if document.starts_with('{') {
        document.to_owned()
    } else {
        percent_encoding::percent_decode_str(document)
            .decode_utf8()
            .map_err(|_| "not UTF-8 once URL-decoded".to_owned())?
            .into_owned()
    };
    let doc: Value =
        serde_json::from_str(&decoded).map_err(|e| format!("not a JSON document: {e}"))?;
    let statements = match doc.get("Statement") {
        Some(Value::Array(items)) => items.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        Some(_) => return Err("its Statement is neither an object nor a list".to_owned()),
        None => return Err("it has no Statement".to_owned()),
    };
    statements
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let Value::Object(s) = s else {
                return Err("a Statement is not an object".to_owned());
            };
            let (principal, not_principal) = match (s.get("Principal"), s.get("NotPrincipal")) {
                (Some(p), _) => (Some(p), false),
                (None, not) => (not, not.is_some()),
            };
            let (federated, anyone) = principal.map(principals).unwrap_or_default();
            let (actions, not_action) = match (s.get("Action"), s.get("NotAction")) {
                (Some(a), _) => (strings(a), false),
                (None, Some(a)) => (strings(a), true),
                (None, None) => (Vec::new(), false),
            };
            let mut conditions = Vec::new();
            if let Some(Value::Object(operators)) = s.get("Condition") {
                for (operator, keys) in operators {
                    let Value::Object(keys) = keys else {
                        return Err(format!("its {operator} condition is not an object"));
                    };
                    for (key, values) in keys {
                        conditions.push(Condition {
                            operator: operator.clone(),
                            key: key.clone(),
                            values: strings(values),
                        });
                    }
                }
            }
            let allow = match s.get("Effect").and_then(Value::as_str) {
                Some("Allow") => true,
                Some("Deny") => false,
                _ => return Err("a Statement's Effect is neither Allow nor Deny".to_owned()),
            };
            Ok(Statement {
                position: i + 1,
                sid: s.get("Sid").and_then(Value::as_str).map(str::to_owned),
                allow,
                actions,
                not_action,
                federated,
                anyone,
                not_principal,
                conditions,
            })
        })
        .collect()
}

/// Whether `text` matches an IAM pattern (`*` any run, `?` one character).
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn has_wildcard(pattern: &str) -> bool {
    pattern.contains('*') || pattern.contains('?')
}

/// The claims of an IRSA web identity token that trust conditions test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Claim {
    Sub,
    Aud,
}

/// A condition key, as IAM sees it in an `AssumeRoleWithWebIdentity` request carrying a
/// token of this cluster's provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    /// `{issuer}:sub` or `{issuer}:aud` (keys are case-insensitive).
    Claim(Claim),
    /// Another provider's key (`{other issuer}:sub`): not in this request.
    Absent,
    /// Any other key (`aws:…`, `sts:…`, another claim): its value is not known here.
    Unknown,
}

fn key(issuer: &Issuer, key: &str) -> Key {
    let Some((prefix, name)) = key.rsplit_once(':') else {
        return Key::Unknown;
    };
    if prefix.eq_ignore_ascii_case(issuer.host()) {
        match name.to_ascii_lowercase().as_str() {
            "sub" => Key::Claim(Claim::Sub),
            "aud" => Key::Claim(Claim::Aud),
            _ => Key::Unknown,
        }
    } else if prefix.contains('.') {
        // Provider keys are named after the issuer's host; service keys (`aws:`) have no dot.
        Key::Absent
    } else {
        Key::Unknown
    }
}

/// A string condition operator preflight evaluates, on a single-valued key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Operator {
    /// `StringLike`/`StringNotLike`: `*` and `?` are wildcards (elsewhere they are literal).
    like: bool,
    /// The `Not` forms: none of the values may match.
    negated: bool,
    /// The `IgnoreCase` forms.
    ignore_case: bool,
    /// The `IfExists` forms: an absent key passes.
    if_exists: bool,
    /// `ForAllValues:` (`Some(true)`) or `ForAnyValue:` (`Some(false)`).
    for_all_values: Option<bool>,
}

impl Operator {
    /// `StringEquals`, `StringNotEquals`, `StringLike`, `StringNotLike`,
    /// `StringEqualsIgnoreCase`, `StringNotEqualsIgnoreCase`, each also with `IfExists` and a
    /// `ForAnyValue:`/`ForAllValues:` prefix; `None` for any other operator.
    fn parse(name: &str) -> Option<Operator> {
        let (for_all_values, rest) = if let Some(rest) = name.strip_prefix("ForAnyValue:") {
            (Some(false), rest)
        } else if let Some(rest) = name.strip_prefix("ForAllValues:") {
            (Some(true), rest)
        } else {
            (None, name)
        };
        let (base, if_exists) = rest
            .strip_suffix("IfExists")
            .map_or((rest, false), |base| (base, true));
        let (like, negated, ignore_case) = match base {
            "StringEquals" => (false, false, false),
            "StringNotEquals" => (false, true, false),
            "StringEqualsIgnoreCase" => (false, false, true),
            "StringNotEqualsIgnoreCase" => (false, true, true),
            "StringLike" => (true, false, false),
            "StringNotLike" => (true, true, false),
            _ => return None,
        };
        Some(Operator {
            like,
            negated,
            ignore_case,
            if_exists,
            for_all_values,
        })
    }

    /// Whether a key whose value is `value` (`None`: absent from the request) meets the
    /// condition: one of `values` must match (none, for a `Not` form).
    ///
    /// The set prefixes are for multivalued keys; `sub` and `aud` hold one value, for which
    /// `ForAnyValue:`/`ForAllValues:` test that value like the base operator. They differ only
    /// on an absent key, as IAM documents: `ForAllValues:` then holds, `ForAnyValue:` does
    /// not. `IfExists` holds on an absent key, the base operators do not, their `Not` forms do.
    fn holds(self, value: Option<&str>, values: &[String]) -> bool {
        let Some(value) = value else {
            return self.if_exists || self.for_all_values.unwrap_or(self.negated);
        };
        let matched = values.iter().any(|v| {
            if self.like {
                glob(v, value)
            } else if self.ignore_case {
                v.to_lowercase() == value.to_lowercase()
            } else {
                v == value
            }
        });
        matched != self.negated
    }
}

/// A token of this cluster's provider, as far as trust conditions see it.
#[derive(Clone, Copy, Debug)]
struct Token<'a> {
    sub: &'a str,
    aud: &'a str,
}

/// What a statement's conditions say of a token.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Holds {
    Yes,
    No,
    /// None is false, and this one (an operator or key, described) cannot be evaluated.
    Unknown(String),
}

impl Statement {
    /// Whether it applies to the web identities of `provider` (`Federated` names providers by
    /// ARN, exactly).
    fn names(&self, provider: &str) -> bool {
        let named = self.anyone || self.federated.iter().any(|f| f == provider);
        if self.not_principal { !named } else { named }
    }

    /// Whether it applies to `sts:AssumeRoleWithWebIdentity` (actions are case-insensitive).
    fn covers_web_identity(&self) -> bool {
        let action = WEB_IDENTITY.to_lowercase();
        let named = self
            .actions
            .iter()
            .any(|a| glob(&a.to_lowercase(), &action));
        if self.not_action { !named } else { named }
    }

    /// Its conditions on `token`, all of them (AND across operators and keys); `skip` leaves
    /// the conditions on one claim out.
    fn holds(&self, issuer: &Issuer, token: Token<'_>, skip: Option<Claim>) -> Holds {
        let mut unknown = None;
        for c in &self.conditions {
            let Some(operator) = Operator::parse(&c.operator) else {
                unknown.get_or_insert_with(|| format!("the condition operator {}", c.operator));
                continue;
            };
            let value = match key(issuer, &c.key) {
                Key::Claim(claim) if Some(claim) == skip => continue,
                Key::Claim(Claim::Sub) => Some(token.sub),
                Key::Claim(Claim::Aud) => Some(token.aud),
                Key::Absent => None,
                Key::Unknown => {
                    unknown.get_or_insert_with(|| format!("the condition key {}", c.key));
                    continue;
                }
            };
            if !operator.holds(value, &c.values) {
                return Holds::No;
            }
        }
        unknown.map_or(Holds::Yes, Holds::Unknown)
    }

    /// Its conditions on `claim`.
    fn on<'a>(&'a self, issuer: &'a Issuer, claim: Claim) -> impl Iterator<Item = &'a Condition> {
        self.conditions
            .iter()
            .filter(move |c| key(issuer, &c.key) == Key::Claim(claim))
    }

    /// The values its positive conditions (not `Not…`) on `claim` match.
    fn named(&self, issuer: &Issuer, claim: Claim) -> Vec<String> {
        self.on(issuer, claim)
            .filter(|c| Operator::parse(&c.operator).is_some_and(|o| !o.negated))
            .flat_map(|c| c.values.iter().cloned())
            .collect()
    }

    /// How messages name it: its `Sid`, or its place.
    fn label(&self) -> String {
        self.sid
            .as_ref()
            .map_or_else(|| format!("#{}", self.position), |sid| format!("{sid:?}"))
    }

    /// Its conditions as a reader would say them: `StringLike "…" on {key} and …`.
    fn describe(&self) -> String {
        if self.conditions.is_empty() {
            return "no condition".to_owned();
        }
        self.conditions
            .iter()
            .map(|c| {
                let values = match c.values.as_slice() {
                    [one] => format!("{one:?}"),
                    many => format!("{many:?}"),
                };
                format!("{} {values} on {}", c.operator, c.key)
            })
            .collect::<Vec<_>>()
            .join(" and ")
    }
}

/// What a trust policy decides for one token of this cluster's provider, as IAM does: an
/// explicit Deny wins; otherwise some Allow must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Decision<'a> {
    /// Allowed by these statements, denied by none.
    Allowed(Vec<&'a Statement>),
    /// Denied by this statement, whatever allows it.
    Denied(&'a Statement),
    /// No Allow statement holds.
    NotAllowed,
    /// The decision hangs on this statement, whose condition (described) preflight does not
    /// evaluate.
    Unknown(&'a Statement, String),
}

/// Decides a token with the statements about web identities of this cluster's provider.
fn decide<'a>(
    statements: &[&'a Statement],
    issuer: &Issuer,
    token: Token<'_>,
    skip: Option<Claim>,
) -> Decision<'a> {
    let judged: Vec<(&Statement, Holds)> = statements
        .iter()
        .map(|s| (*s, s.holds(issuer, token, skip)))
        .collect();
    let unknown = |allow: bool| {
        judged.iter().find_map(|(s, h)| match h {
            Holds::Unknown(what) if s.allow == allow => Some(Decision::Unknown(s, what.clone())),
            _ => None,
        })
    };
    if let Some((deny, _)) = judged.iter().find(|(s, h)| !s.allow && *h == Holds::Yes) {
        return Decision::Denied(deny);
    }
    if let Some(unknown) = unknown(false) {
        return unknown;
    }
    let allowed: Vec<&Statement> = judged
        .iter()
        .filter(|(s, h)| s.allow && *h == Holds::Yes)
        .map(|(s, _)| *s)
        .collect();
    if !allowed.is_empty() {
        return Decision::Allowed(allowed);
    }
    unknown(true).unwrap_or(Decision::NotAllowed)
}

/// Subjects of ServiceAccounts other than `subject`'s, which a role for it must not let in:
/// another in its namespace, its name in another namespace, one elsewhere, and one made up
/// for each pattern the policy's subject conditions hold.
fn probes(subject: &str, patterns: &[String]) -> Vec<String> {
    const OTHER: &str = "preflight-probe-other";
    let mut probes = Vec::new();
    if let Some((namespace, name)) = subject
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
    {
        probes.push(format!("system:serviceaccount:{namespace}:{OTHER}"));
        probes.push(format!("system:serviceaccount:{OTHER}:{name}"));
    }
    probes.push(format!("system:serviceaccount:{OTHER}:{OTHER}"));
    probes.extend(
        patterns
            .iter()
            .filter(|p| has_wildcard(p))
            .map(|p| p.replace('*', OTHER).replace('?', "x"))
            .filter(|p| p != subject),
    );
    probes
}

/// What a role's trust policy grants one ServiceAccount of this cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Trust {
    /// This cluster's provider, exactly this subject.
    Exact,
    /// This subject, and these others named too.
    Shared(Vec<String>),
    /// No Allow statement for `sts:AssumeRoleWithWebIdentity`.
    NoWebIdentity,
    /// Web identity, but from these providers only.
    OtherProvider(Vec<String>),
    /// This cluster's provider, for these subjects only.
    OtherSubject(Vec<String>),
    /// This cluster's provider under conditions (described) the subject's tokens do not meet
    /// all together.
    Unsatisfied(String),
    /// The subject, with an audience condition `sts.amazonaws.com` does not meet.
    WrongAudience(Vec<String>),
    /// An Allow statement's `StringLike` pattern on the subject lets other ServiceAccounts
    /// in; `ours`: the ServiceAccount itself is let in.
    Wildcard { pattern: String, ours: bool },
    /// An Allow statement with no condition on the subject.
    NoSubject,
    /// An Allow statement whose conditions (described) let other ServiceAccounts in.
    Broad { conditions: String, ours: bool },
    /// A Deny statement (named, with its conditions) holds for the subject's tokens.
    Denied(String),
    /// A statement (named) deciding it has a condition preflight does not evaluate.
    Unreadable { statement: String, what: String },
}

/// How an Allow statement that let in `probe` is too broad.
fn broad(s: &Statement, issuer: &Issuer, probe: &str, ours: bool) -> Trust {
    if s.on(issuer, Claim::Sub).next().is_none() {
        return Trust::NoSubject;
    }
    let pattern = s
        .on(issuer, Claim::Sub)
        .filter(|c| Operator::parse(&c.operator).is_some_and(|o| o.like && !o.negated))
        .flat_map(|c| c.values.iter())
        .find(|p| has_wildcard(p) && glob(p, probe));
    match pattern {
        Some(pattern) => Trust::Wildcard {
            pattern: pattern.clone(),
            ours,
        },
        None => Trust::Broad {
            conditions: s.describe(),
            ours,
        },
    }
}

/// Judges a trust policy for one ServiceAccount (`subject`) of the cluster whose provider is
/// `provider`: each statement about that provider's web identities is a predicate on the
/// token's `sub` and `aud` claims. A policy that also lets in another ServiceAccount is too
/// broad even when it names this one exactly.
pub(crate) fn trust(
    statements: &[Statement],
    provider: &str,
    issuer: &Issuer,
    subject: &str,
) -> Trust {
    let web_identity: Vec<&Statement> = statements
        .iter()
        .filter(|s| s.covers_web_identity())
        .collect();
    if !web_identity.iter().any(|s| s.allow) {
        return Trust::NoWebIdentity;
    }
    let ours: Vec<&Statement> = web_identity
        .iter()
        .copied()
        .filter(|s| s.names(provider))
        .collect();
    let allows: Vec<&Statement> = ours.iter().copied().filter(|s| s.allow).collect();
    if allows.is_empty() {
        let mut others: Vec<String> = web_identity
            .iter()
            .filter(|s| s.allow)
            .flat_map(|s| s.federated.iter().cloned())
            .collect();
        others.sort_unstable();
        others.dedup();
        return Trust::OtherProvider(others);
    }
    let decide = |sub: &str, skip| decide(&ours, issuer, Token { sub, aud: AUDIENCE }, skip);
    let unreadable = |s: &Statement, what: String| Trust::Unreadable {
        statement: s.label(),
        what,
    };
    let decision = decide(subject, None);
    if let Decision::Unknown(s, what) = decision {
        return unreadable(s, what);
    }
    let admitted = matches!(decision, Decision::Allowed(_));
    let named: Vec<String> = allows
        .iter()
        .flat_map(|s| s.named(issuer, Claim::Sub))
        .collect();
    for probe in probes(subject, &named) {
        match decide(&probe, None) {
            Decision::Allowed(by) => return broad(by[0], issuer, &probe, admitted),
            Decision::Unknown(s, what) => return unreadable(s, what),
            Decision::Denied(_) | Decision::NotAllowed => {}
        }
    }
    match decision {
        Decision::Allowed(_) => {
            let mut others: Vec<String> = named
                .into_iter()
                .filter(|n| !has_wildcard(n) && !n.eq_ignore_ascii_case(subject))
                .filter(|n| matches!(decide(n, None), Decision::Allowed(_)))
                .collect();
            others.dedup();
            if others.is_empty() {
                Trust::Exact
            } else {
                Trust::Shared(others)
            }
        }
        Decision::Denied(deny) => Trust::Denied(format!("{} ({})", deny.label(), deny.describe())),
        Decision::NotAllowed | Decision::Unknown(..) => {
            // Named audiences other than EKS's (a negated one is described as it is, below).
            if matches!(decide(subject, Some(Claim::Aud)), Decision::Allowed(_)) {
                let mut audiences: Vec<String> = allows
                    .iter()
                    .flat_map(|s| s.named(issuer, Claim::Aud))
                    .collect();
                audiences.dedup();
                if !audiences.is_empty() && !audiences.iter().any(|a| a == AUDIENCE) {
                    return Trust::WrongAudience(audiences);
                }
            }
            if !named.is_empty() && !named.iter().any(|n| n == subject) {
                let mut subjects = named;
                subjects.dedup();
                return Trust::OtherSubject(subjects);
            }
            Trust::Unsatisfied(
                allows
                    .iter()
                    .map(|s| s.describe())
                    .collect::<Vec<_>>()
                    .join(", or "),
            )
        }
    }
}

/// What `GetRole` found of a role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// No such role (`NoSuchEntity`).
    Missing,
    /// The role, with its trust policy parsed (or why it could not be).
    Found {
        arn: String,
        trust: Result<Vec<Statement>, String>,
    },
}

/// What `GetOpenIDConnectProvider` found of this cluster's provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Registered {
    /// Registered, with these audiences (client IDs).
    Yes(Vec<String>),
    /// Not registered in IAM: no role can trust it.
    No,
}

/// The trust statement a role needs, for hints.
fn statement(provider: &str, issuer: &Issuer, subject: &str) -> String {
    let host = issuer.host();
    format!(
        r#"{{"Effect": "Allow", "Principal": {{"Federated": "{provider}"}}, "Action": "{WEB_IDENTITY}", "Condition": {{"StringEquals": {{"{host}:sub": "{subject}", "{host}:aud": "{AUDIENCE}"}}}}}}"#
    )
}

/// One problem found, with its code and the fix.
struct Problem {
    code: &'static str,
    message: String,
    hint: String,
}

const NOT_FOUND: &str = "irsa-role-not-found";
const MISMATCH: &str = "irsa-trust-mismatch";
const TOO_BROAD: &str = "irsa-trust-too-broad";

/// Who a too broad trust lets in.
fn let_in(ours: bool, subject: &str) -> String {
    if ours {
        format!("{subject} and others")
    } else {
        format!("others, not even {subject}")
    }
}

/// The problem with one role, if any; `Ok(Some(..))` for a warning-level finding.
fn role_problem(
    binding: &Binding,
    role: &Role,
    issuer: &Issuer,
    provider_hint: &str,
) -> Result<Option<String>, Problem> {
    let sa = &binding.service_account;
    let name = binding.role_name();
    let subject = binding.subject();
    let (arn, statements) = match role {
        Role::Missing => {
            let fix = statement(provider_hint, issuer, &subject);
            return Err(Problem {
                code: NOT_FOUND,
                message: format!("IAM role {name} (for ServiceAccount {sa}) does not exist"),
                hint: format!(
                    "Create role {name} (the platform's Terraform names IRSA roles goldenpath-{{env}}-{{service account}}) with the trust statement {fix}; or set the role of {sa} in checks.irsa-roles.serviceAccounts to the one its chart's eks.amazonaws.com/role-arn names."
                ),
            });
        }
        Role::Found { arn, trust } => (arn, trust),
    };
    let provider = issuer
        .provider_in(arn)
        .unwrap_or_else(|| provider_hint.to_owned());
    let fix = statement(&provider, issuer, &subject);
    let statements = match statements {
        Ok(s) => s,
        Err(why) => {
            return Err(Problem {
                code: MISMATCH,
                message: format!("IAM role {name}'s trust policy cannot be read: {why}"),
                hint: format!(
                    "Rewrite its trust policy as a JSON policy document with the statement {fix}."
                ),
            });
        }
    };
    let (code, message, hint) = match trust(statements, &provider, issuer, &subject) {
        Trust::Exact => return Ok(None),
        Trust::Shared(others) => {
            return Ok(Some(format!(
                "IAM role {name} (for {sa}) is also trusted for {}",
                name_list(&others, 5)
            )));
        }
        Trust::NoWebIdentity => (
            MISMATCH,
            format!(
                "IAM role {name} (for {sa}) has no Allow statement for {WEB_IDENTITY}: no ServiceAccount can assume it"
            ),
            format!("Add the trust statement {fix}."),
        ),
        Trust::OtherProvider(others) => (
            MISMATCH,
            format!(
                "IAM role {name} (for {sa}) trusts {}, not this cluster's OIDC provider {provider}",
                name_list(&others, 3)
            ),
            format!(
                "The role trusts another cluster's issuer (a recreated cluster gets a new one): re-apply the platform's IRSA Terraform with this cluster's OIDC provider, so that the role's trust statement reads {fix}."
            ),
        ),
        Trust::OtherSubject(subjects) => (
            MISMATCH,
            format!(
                "IAM role {name} trusts {}, not {subject} (ServiceAccount {sa})",
                name_list(&subjects, 3)
            ),
            format!(
                "Make the role's trust statement name the ServiceAccount: {fix}; or set the role of {sa} in checks.irsa-roles.serviceAccounts to the role meant for it."
            ),
        ),
        Trust::WrongAudience(audiences) => (
            MISMATCH,
            format!(
                "IAM role {name} (for {sa}) requires the audience {}, but EKS's IRSA tokens carry {AUDIENCE}",
                name_list(&audiences, 3)
            ),
            format!("Set the :aud condition to {AUDIENCE}: {fix}."),
        ),
        Trust::Unsatisfied(conditions) => (
            MISMATCH,
            format!(
                "IAM role {name} (for {sa}) trusts this cluster's OIDC provider only under conditions no token of {subject} meets all together: {conditions}"
            ),
            format!("Make the role's trust statement name the ServiceAccount: {fix}."),
        ),
        Trust::Denied(deny) => (
            MISMATCH,
            format!(
                "IAM role {name} (for {sa}) has a Deny trust statement {deny} that matches {subject}: an explicit Deny overrides any Allow, so the ServiceAccount's pods cannot assume the role"
            ),
            format!(
                "Remove that Deny statement, or narrow its condition so that it no longer matches {subject}; the Allow the role needs is {fix}."
            ),
        ),
        Trust::Unreadable { statement, what } => (
            MISMATCH,
            format!(
                "IAM role {name}'s trust statement {statement} uses {what}, which preflight does not evaluate: whether it lets {subject} (ServiceAccount {sa}) assume the role is unknown"
            ),
            format!(
                "preflight evaluates StringEquals, StringNotEquals, StringLike, StringNotLike, StringEqualsIgnoreCase and StringNotEqualsIgnoreCase (also with IfExists and ForAnyValue:/ForAllValues:) on {host}:sub and {host}:aud: write the trust statement with those, e.g. {fix}.",
                host = issuer.host()
            ),
        ),
        Trust::Wildcard { pattern, ours } => (
            TOO_BROAD,
            format!(
                "IAM role {name} (for {sa}) trusts StringLike {pattern:?} on {}:sub: it lets {} assume it",
                issuer.host(),
                let_in(ours, &subject)
            ),
            format!("Pin the subject with StringEquals instead of a pattern: {fix}."),
        ),
        Trust::Broad { conditions, ours } => (
            TOO_BROAD,
            format!(
                "IAM role {name} (for {sa}) trusts {conditions}: it lets {} assume it",
                let_in(ours, &subject)
            ),
            format!("Pin the subject with StringEquals: {fix}."),
        ),
        Trust::NoSubject => (
            TOO_BROAD,
            format!(
                "IAM role {name} (for {sa}) trusts this cluster's OIDC provider with no condition on {}:sub: every ServiceAccount of the cluster may assume it",
                issuer.host()
            ),
            format!("Add a StringEquals condition on the subject: {fix}."),
        ),
    };
    Err(Problem {
        code,
        message,
        hint,
    })
}

/// Judges the roles found for each ServiceAccount, and the provider (`None` when no role was
/// found to say in which account to look for it).
pub(crate) fn judge(
    issuer: &Issuer,
    roles: &[(Binding, Role)],
    provider: Option<(&str, &Registered)>,
) -> Outcome {
    let provider_hint = provider.map_or_else(
        || {
            roles
                .iter()
                .find_map(|(_, r)| match r {
                    Role::Found { arn, .. } => issuer.provider_in(arn),
                    Role::Missing => None,
                })
                .unwrap_or_else(|| {
                    format!("arn:aws:iam::<account>:oidc-provider/{}", issuer.host())
                })
        },
        |(arn, _)| arn.to_owned(),
    );
    let mut problems = Vec::new();
    match provider {
        Some((arn, Registered::No)) => problems.push(Problem {
            code: "irsa-oidc-provider-missing",
            message: format!(
                "this cluster's OIDC provider {arn} is not registered in IAM: no role can trust its tokens"
            ),
            hint: format!(
                "Register it: aws iam create-open-id-connect-provider --url https://{} --client-id-list {AUDIENCE} --thumbprint-list <the issuer's CA thumbprint> (the EKS Terraform module's enable_irsa, or eksctl utils associate-iam-oidc-provider).",
                issuer.host()
            ),
        }),
        Some((arn, Registered::Yes(audiences))) if !audiences.iter().any(|a| a == AUDIENCE) => {
            problems.push(Problem {
                code: "irsa-oidc-provider-audience",
                message: format!(
                    "OIDC provider {arn} does not accept the audience {AUDIENCE} (its client IDs: {})",
                    if audiences.is_empty() { "none".to_owned() } else { name_list(audiences, 5) }
                ),
                hint: format!("aws iam add-client-id-to-open-id-connect-provider --open-id-connect-provider-arn {arn} --client-id {AUDIENCE}"),
            });
        }
        _ => {}
    }
    let mut warnings = Vec::new();
    for (binding, role) in roles {
        match role_problem(binding, role, issuer, &provider_hint) {
            Ok(None) => {}
            Ok(Some(warning)) => warnings.push(warning),
            Err(problem) => problems.push(problem),
        }
    }
    if let Some(first) = problems.first() {
        let mut hint = first.hint.clone();
        if problems.len() > 1 {
            hint.push_str(" Likewise for the other roles named, each with its own ServiceAccount as the subject.");
        }
        let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        return Outcome::fail(first.code, messages.join("; "))
            .hint(hint)
            .evidence("issuer", format!("https://{}", issuer.host()));
    }
    if !warnings.is_empty() {
        return Outcome::warn("irsa-trust-shared", warnings.join("; "))
            .hint("A role shared by several ServiceAccounts gives each the others' permissions: give each ServiceAccount its own role, trusted for its subject only.")
            .evidence("issuer", format!("https://{}", issuer.host()));
    }
    let pairs: Vec<String> = roles
        .iter()
        .map(|(b, _)| format!("{} → {}", b.service_account, b.role_name()))
        .collect();
    Outcome::pass(
        "irsa-roles-trusted",
        format!(
            "{} IAM role(s) trust this cluster's OIDC provider for exactly their ServiceAccount: {}",
            roles.len(),
            pairs.join(", ")
        ),
    )
    .evidence("issuer", format!("https://{}", issuer.host()))
    .evidence("provider", provider_hint)
}

/// Maps a failed `GetRole`: a missing role is this check's own finding.
fn role_failure(name: &str, err: &SdkError<GetRoleError>) -> Result<Role, Box<Attempt>> {
    if err
        .as_service_error()
        .is_some_and(GetRoleError::is_no_such_entity_exception)
    {
        return Ok(Role::Missing);
    }
    Err(Box::new(super::failure(
        "iam:GetRole",
        &format!("IAM role {name}"),
        err,
    )))
}

async fn get_role(iam: &aws_sdk_iam::Client, name: &str) -> Result<Role, Box<Attempt>> {
    match iam.get_role().role_name(name).send().await {
        Ok(output) => Ok(output.role().map_or(Role::Missing, |r| Role::Found {
            arn: r.arn().to_owned(),
            trust: r
                .assume_role_policy_document()
                .map_or_else(|| Err("it is empty".to_owned()), parse_trust),
        })),
        Err(e) => role_failure(name, &e),
    }
}

async fn get_provider(iam: &aws_sdk_iam::Client, arn: &str) -> Result<Registered, Box<Attempt>> {
    match iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(arn)
        .send()
        .await
    {
        Ok(output) => Ok(Registered::Yes(output.client_id_list().to_vec())),
        Err(e)
            if e.as_service_error()
                .is_some_and(GetOpenIDConnectProviderError::is_no_such_entity_exception) =>
        {
            Ok(Registered::No)
        }
        Err(e) => Err(Box::new(super::failure(
            "iam:GetOpenIDConnectProvider",
            &format!("OIDC provider {arn}"),
            &e,
        ))),
    }
}

/// Maps a failed `DescribeCluster`: a missing cluster is this check's own finding.
fn cluster_failure(name: &str, err: &SdkError<DescribeClusterError>) -> Attempt {
    if err
        .as_service_error()
        .is_some_and(DescribeClusterError::is_resource_not_found_exception)
    {
        return Attempt::settled(
            Outcome::fail("eks-cluster-not-found", format!("EKS cluster {name} does not exist in this account and region, so its OIDC issuer is unknown"))
                .hint("Set checks.irsa-roles.clusterName to the cluster's name, or checks.irsa-roles.oidcIssuer to its issuer URL (aws eks describe-cluster --name <name> --query cluster.identity.oidc.issuer)."),
        );
    }
    super::failure("eks:DescribeCluster", &format!("EKS cluster {name}"), err)
}

/// The `irsa-roles` check.
#[derive(Debug)]
pub struct IrsaRoles {
    bindings: Vec<Binding>,
    issuer: Option<Issuer>,
    cluster: String,
}

impl IrsaRoles {
    /// A check of the roles `settings` names, in environment `env`.
    #[must_use]
    pub fn new(settings: &IrsaRolesSettings, env: &str) -> Self {
        IrsaRoles {
            bindings: settings
                .service_accounts
                .iter()
                .map(|s| Binding::resolve(s, env))
                .collect(),
            issuer: settings.oidc_issuer.as_deref().map(Issuer::parse),
            cluster: settings
                .cluster_name
                .as_ref()
                .map_or_else(|| format!("goldenpath-{env}"), |c| c.replace("{env}", env)),
        }
    }

    async fn issuer(&self, ctx: &Context) -> Result<Issuer, Attempt> {
        if let Some(issuer) = &self.issuer {
            return Ok(issuer.clone());
        }
        let Some(eks) = ctx.eks() else {
            return Err(super::no_client());
        };
        let name = &self.cluster;
        let output = eks
            .describe_cluster()
            .name(name)
            .send()
            .await
            .map_err(|e| cluster_failure(name, &e))?;
        output
            .cluster()
            .and_then(|c| c.identity())
            .and_then(|i| i.oidc())
            .and_then(|o| o.issuer())
            .map(Issuer::parse)
            .ok_or_else(|| {
                Attempt::settled(
                    Outcome::fail(
                        "irsa-oidc-issuer-missing",
                        format!("EKS cluster {name} reports no OIDC issuer"),
                    )
                    .hint("EKS gives every cluster an issuer once it is active: wait for the cluster, or set checks.irsa-roles.oidcIssuer."),
                )
            })
    }
}

impl Definition for IrsaRoles {
    const ID: &'static str = "irsa-roles";
    const FAMILY: Family = Family::Aws;
    const DECLARED_BY: Option<PlatformFlag> = Some(PlatformFlag::IrsaConfigured);
    type Settings = IrsaRolesSettings;

    /// Tier 1's controllers (External Secrets, ExternalDNS, cluster-autoscaler…) assume them
    /// from their first pod.
    fn needed_by(_: &IrsaRolesSettings) -> NeededBy {
        NeededBy::tier(Tier::One)
    }

    fn provided_by(_: &IrsaRolesSettings, _: &Site<'_>) -> Provider {
        Provider::Foundation("Terraform (IAM roles, the EKS OIDC provider)")
    }

    fn build(settings: &IrsaRolesSettings, site: &Site<'_>) -> Result<Built, String> {
        if settings.service_accounts.is_empty() {
            return Err("no ServiceAccounts configured (checks.irsa-roles.serviceAccounts)".into());
        }
        let check = IrsaRoles::new(settings, &site.values.env.value);
        let title = format!(
            "{} IRSA role(s) exist and trust this cluster's OIDC provider for their ServiceAccount",
            check.bindings.len()
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
impl Check for IrsaRoles {
    fn reads(&self) -> Reads {
        let mut iam: Vec<IamGrant> = self
            .bindings
            .iter()
            .map(|b| IamGrant {
                action: "iam:GetRole",
                resource: b.resource(),
            })
            .collect();
        let provider = match &self.issuer {
            Some(issuer) => issuer.host().to_owned(),
            None => {
                iam.push(IamGrant {
                    action: "eks:DescribeCluster",
                    resource: format!("arn:aws:eks:*:*:cluster/{}", self.cluster),
                });
                "oidc.eks.*.amazonaws.com/id/*".to_owned()
            }
        };
        iam.push(IamGrant {
            action: "iam:GetOpenIDConnectProvider",
            resource: format!("arn:aws:iam::*:oidc-provider/{provider}"),
        });
        Reads {
            kube: Vec::new(),
            iam,
        }
    }

    async fn attempt(&self, ctx: &Context) -> Attempt {
        let Some(iam) = ctx.iam() else {
            return super::no_client();
        };
        let issuer = match self.issuer(ctx).await {
            Ok(i) => i,
            Err(failed) => return failed,
        };
        let found =
            futures::future::join_all(self.bindings.iter().map(|b| get_role(iam, b.role_name())))
                .await;
        let mut roles = Vec::with_capacity(found.len());
        for (binding, role) in self.bindings.iter().zip(found) {
            match role {
                Ok(r) => roles.push((binding.clone(), r)),
                Err(failed) => return *failed,
            }
        }
        // The provider lives in the roles' account, which only a found role's ARN tells.
        let provider_arn = roles.iter().find_map(|(_, r)| match r {
            Role::Found { arn, .. } => issuer.provider_in(arn),
            Role::Missing => None,
        });
        let registered = match &provider_arn {
            Some(arn) => match get_provider(iam, arn).await {
                Ok(r) => Some(r),
                Err(failed) => return *failed,
            },
            None => None,
        };
        let provider = provider_arn.as_deref().zip(registered.as_ref());
        Attempt::settled(judge(&issuer, &roles, provider))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;

    const HOST: &str = "oidc.eks.eu-west-1.amazonaws.com/id/ABC123";
    const OTHER_HOST: &str = "oidc.eks.eu-west-1.amazonaws.com/id/OLDCLUSTER";
    const PROVIDER: &str =
        "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC123";
    const ESO: &str = "system:serviceaccount:external-secrets:external-secrets";

    fn issuer() -> Issuer {
        Issuer::parse(&format!("https://{HOST}"))
    }

    /// A web identity statement for `host`'s provider, with these conditions (JSON).
    fn statement_for(host: &str, conditions: &str) -> String {
        format!(
            r#"{{"Effect": "Allow", "Principal": {{"Federated": "arn:aws:iam::123456789012:oidc-provider/{host}"}}, "Action": "sts:AssumeRoleWithWebIdentity", "Condition": {conditions}}}"#
        )
    }

    /// A trust policy with one statement for `host`, with these conditions (JSON).
    fn policy(host: &str, conditions: &str) -> String {
        format!(
            r#"{{"Version": "2012-10-17", "Statement": [{}]}}"#,
            statement_for(host, conditions)
        )
    }

    fn exact_condition(host: &str, subject: &str) -> String {
        format!(
            r#"{{"StringEquals": {{"{host}:sub": "{subject}", "{host}:aud": "sts.amazonaws.com"}}}}"#
        )
    }

    fn exact(host: &str, subject: &str) -> String {
        policy(host, &exact_condition(host, subject))
    }

    fn judged(doc: &str) -> Trust {
        trust(&parse_trust(doc).expect("parses"), PROVIDER, &issuer(), ESO)
    }

    #[test]
    fn parses_encoded_and_plain_policies_of_every_shape() {
        let plain = exact(HOST, ESO);
        let encoded: String =
            percent_encoding::utf8_percent_encode(&plain, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        assert_eq!(
            parse_trust(&encoded).expect("decodes"),
            parse_trust(&plain).expect("parses")
        );
        // A single Statement object, Action and Federated as lists.
        let one = format!(
            r#"{{"Statement": {{"Effect": "Allow", "Principal": {{"Federated": ["{PROVIDER}"]}}, "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"], "Condition": {{"StringEquals": {{"{HOST}:sub": ["{ESO}"]}}}}}}}}"#
        );
        let s = parse_trust(&one).expect("parses");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].federated, vec![PROVIDER.to_owned()]);
        assert_eq!(s[0].actions.len(), 2);
        assert_eq!(judged(&one), Trust::Exact);
        for (bad, why) in [
            ("%7Bnot json", "not a JSON document"),
            (r#"{"Version": "2012-10-17"}"#, "it has no Statement"),
            (r#"{"Statement": "x"}"#, "neither an object nor a list"),
            (
                r#"{"Statement": [{"Condition": {"StringEquals": "x"}}]}"#,
                "StringEquals condition is not an object",
            ),
        ] {
            let err = parse_trust(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn globs_like_iam() {
        for (p, t, m) in [
            ("system:serviceaccount:*", ESO, true),
            ("system:serviceaccount:external-secrets:*", ESO, true),
            ("system:serviceaccount:kube-system:*", ESO, false),
            ("sts:assume*", "sts:assumerolewithwebidentity", true),
            ("*", "", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("abc", "abc", true),
        ] {
            assert_eq!(glob(p, t), m, "{p} {t}");
        }
    }

    /// A policy with one Allow statement for `HOST` whose conditions are `conditions` (JSON).
    fn allow(conditions: &str) -> String {
        policy(HOST, conditions)
    }

    /// A Deny statement for `HOST`'s provider with these conditions (JSON).
    fn deny_for(conditions: &str) -> String {
        statement_for(HOST, conditions)
            .replace("\"Allow\"", "\"Deny\"")
            .replacen('{', r#"{"Sid": "DenyPattern", "#, 1)
    }

    /// A policy of these statements.
    fn policy_of(statements: &[String]) -> String {
        format!(r#"{{"Statement": [{}]}}"#, statements.join(", "))
    }

    #[test]
    fn judges_trust_policies() {
        let like = |pattern: &str| {
            allow(&format!(
                r#"{{"StringLike": {{"{HOST}:sub": "{pattern}"}}}}"#
            ))
        };
        let two_subjects = allow(&format!(
            r#"{{"StringEquals": {{"{HOST}:sub": ["{ESO}", "system:serviceaccount:default:default"]}}}}"#
        ));
        let wrong_aud = allow(&format!(
            r#"{{"StringEquals": {{"{HOST}:sub": "{ESO}", "{HOST}:aud": "vault"}}}}"#
        ));
        let constrained_like = allow(&format!(
            r#"{{"StringEquals": {{"{HOST}:sub": "{ESO}"}}, "StringLike": {{"{HOST}:sub": "system:serviceaccount:*"}}}}"#
        ));
        let not_web = r#"{"Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}"#;
        let denied = exact(HOST, ESO).replace("\"Allow\"", "\"Deny\"");
        let exact_and_wildcard = policy_of(&[
            statement_for(HOST, &exact_condition(HOST, ESO)),
            statement_for(HOST, &format!(r#"{{"StringLike": {{"{HOST}:sub": "*"}}}}"#)),
        ]);
        // Condition keys are case-insensitive, their string values are not.
        let upper_key = allow(&format!(
            r#"{{"StringEquals": {{"{}:SUB": "{ESO}"}}}}"#,
            HOST.to_uppercase()
        ));
        for (doc, want) in [
            (exact(HOST, ESO), Trust::Exact),
            (upper_key, Trust::Exact),
            (
                exact(HOST, &ESO.to_uppercase()),
                Trust::OtherSubject(vec![ESO.to_uppercase()]),
            ),
            (like(ESO), Trust::Exact),
            (constrained_like, Trust::Exact),
            (
                two_subjects,
                Trust::Shared(vec!["system:serviceaccount:default:default".into()]),
            ),
            (
                exact(HOST, "system:serviceaccount:external-dns:external-dns"),
                Trust::OtherSubject(vec![
                    "system:serviceaccount:external-dns:external-dns".into(),
                ]),
            ),
            (
                exact(OTHER_HOST, ESO),
                Trust::OtherProvider(vec![format!(
                    "arn:aws:iam::123456789012:oidc-provider/{OTHER_HOST}"
                )]),
            ),
            (
                like("system:serviceaccount:*"),
                Trust::Wildcard {
                    pattern: "system:serviceaccount:*".into(),
                    ours: true,
                },
            ),
            // A pattern the made-up names of the namespace's other accounts meet, too.
            (
                like("system:serviceaccount:external-secrets:external-secrets*"),
                Trust::Wildcard {
                    pattern: "system:serviceaccount:external-secrets:external-secrets*".into(),
                    ours: true,
                },
            ),
            (
                like("system:serviceaccount:kube-system:*"),
                Trust::Wildcard {
                    pattern: "system:serviceaccount:kube-system:*".into(),
                    ours: false,
                },
            ),
            (
                exact_and_wildcard,
                Trust::Wildcard {
                    pattern: "*".into(),
                    ours: true,
                },
            ),
            (allow("{}"), Trust::NoSubject),
            (
                allow(&format!(
                    r#"{{"StringEquals": {{"{HOST}:aud": "sts.amazonaws.com"}}}}"#
                )),
                Trust::NoSubject,
            ),
            (wrong_aud, Trust::WrongAudience(vec!["vault".into()])),
            (not_web.to_owned(), Trust::NoWebIdentity),
            (denied, Trust::NoWebIdentity),
        ] {
            assert_eq!(judged(&doc), want, "{doc}");
        }
    }

    /// Operators as IAM evaluates them on the token's single-valued `sub` and `aud`.
    #[test]
    fn evaluates_condition_operators_like_iam() {
        let sub = format!("{HOST}:sub");
        let aud = format!("{HOST}:aud");
        let on_sub = |op: &str, v: &str| allow(&format!(r#"{{"{op}": {{"{sub}": "{v}"}}}}"#));
        let with_aud = |op: &str, v: &str| {
            allow(&format!(
                r#"{{"StringEquals": {{"{sub}": "{ESO}"}}, "{op}": {{"{aud}": "{v}"}}}}"#
            ))
        };
        let broad = |conditions: String| Trust::Broad {
            conditions,
            ours: true,
        };
        let other = "system:serviceaccount:default:default";
        for (doc, want) in [
            // IfExists: sub and aud are always in an EKS token, so the base operator decides.
            (on_sub("StringEqualsIfExists", ESO), Trust::Exact),
            (
                on_sub("StringEqualsIfExists", other),
                Trust::OtherSubject(vec![other.into()]),
            ),
            (on_sub("StringLikeIfExists", ESO), Trust::Exact),
            // ForAnyValue:/ForAllValues: on a single-valued key test its one value.
            (on_sub("ForAnyValue:StringEquals", ESO), Trust::Exact),
            (on_sub("ForAllValues:StringEquals", ESO), Trust::Exact),
            (
                on_sub("ForAnyValue:StringLike", "system:serviceaccount:*"),
                Trust::Wildcard {
                    pattern: "system:serviceaccount:*".into(),
                    ours: true,
                },
            ),
            (
                on_sub("StringEqualsIgnoreCase", &ESO.to_uppercase()),
                Trust::Exact,
            ),
            // Negated operators let in everyone but the values named.
            (
                on_sub("StringNotEquals", other),
                broad(format!(r#"StringNotEquals "{other}" on {sub}"#)),
            ),
            (
                on_sub("StringNotLike", "system:serviceaccount:kube-system:*"),
                broad(format!(
                    r#"StringNotLike "system:serviceaccount:kube-system:*" on {sub}"#
                )),
            ),
            (
                on_sub("StringNotEqualsIgnoreCase", &ESO.to_uppercase()),
                Trust::Broad {
                    conditions: format!(
                        r#"StringNotEqualsIgnoreCase "{}" on {sub}"#,
                        ESO.to_uppercase()
                    ),
                    ours: false,
                },
            ),
            // StringEquals takes `*` literally; StringLike does not.
            (
                with_aud("StringEquals", "sts.*"),
                Trust::WrongAudience(vec!["sts.*".into()]),
            ),
            (with_aud("StringLike", "sts.*"), Trust::Exact),
            (
                with_aud("StringEqualsIgnoreCase", "STS.amazonaws.com"),
                Trust::Exact,
            ),
            (
                with_aud("StringNotEquals", "sts.amazonaws.com"),
                Trust::Unsatisfied(format!(
                    r#"StringEquals "{ESO}" on {sub} and StringNotEquals "sts.amazonaws.com" on {aud}"#
                )),
            ),
            // Operators and keys preflight does not evaluate are named, never guessed.
            (
                on_sub("NumericLessThan", "5"),
                Trust::Unreadable {
                    statement: "#1".into(),
                    what: "the condition operator NumericLessThan".into(),
                },
            ),
            (
                on_sub("StringEqualsAnything", ESO),
                Trust::Unreadable {
                    statement: "#1".into(),
                    what: "the condition operator StringEqualsAnything".into(),
                },
            ),
            (
                allow(&format!(
                    r#"{{"StringEquals": {{"{sub}": "{ESO}", "aws:SourceIp": "10.0.0.0/8"}}}}"#
                )),
                Trust::Unreadable {
                    statement: "#1".into(),
                    what: "the condition key aws:SourceIp".into(),
                },
            ),
            // ...unless another condition of the statement already rules it out.
            (
                policy_of(&[
                    statement_for(HOST, &exact_condition(HOST, ESO)),
                    statement_for(
                        HOST,
                        &format!(
                            r#"{{"StringEquals": {{"{sub}": "{other}"}}, "DateLessThan": {{"aws:CurrentTime": "2030-01-01T00:00:00Z"}}}}"#
                        ),
                    ),
                ]),
                Trust::Exact,
            ),
            // Another provider's keys are absent from this cluster's tokens.
            (
                allow(&format!(
                    r#"{{"StringEquals": {{"{OTHER_HOST}:sub": "{ESO}"}}}}"#
                )),
                Trust::Unsatisfied(format!(r#"StringEquals "{ESO}" on {OTHER_HOST}:sub"#)),
            ),
        ] {
            assert_eq!(judged(&doc), want, "{doc}");
        }
    }

    /// Conditions are ANDed across operators and keys, ORed across values.
    #[test]
    fn ands_conditions_across_operators() {
        let sub = format!("{HOST}:sub");
        let both = |like: &str| {
            allow(&format!(
                r#"{{"StringEquals": {{"{sub}": "{ESO}"}}, "StringLike": {{"{sub}": "{like}"}}}}"#
            ))
        };
        assert_eq!(
            judged(&both("system:serviceaccount:external-secrets:*")),
            Trust::Exact
        );
        // No token is both ESO's and kube-system's.
        assert_eq!(
            judged(&both("system:serviceaccount:kube-system:*")),
            Trust::Unsatisfied(format!(
                r#"StringEquals "{ESO}" on {sub} and StringLike "system:serviceaccount:kube-system:*" on {sub}"#
            ))
        );
        // A negation that keeps some others out leaves the pattern too broad.
        assert_eq!(
            judged(&allow(&format!(
                r#"{{"StringLike": {{"{sub}": "system:serviceaccount:*"}}, "StringNotLike": {{"{sub}": "system:serviceaccount:*:preflight-*"}}}}"#
            ))),
            Trust::Wildcard {
                pattern: "system:serviceaccount:*".into(),
                ours: true
            }
        );
    }

    /// An explicit Deny wins over any Allow, as in IAM.
    #[test]
    fn an_explicit_deny_wins() {
        let sub = format!("{HOST}:sub");
        let exact_allow = statement_for(HOST, &exact_condition(HOST, ESO));
        let deny_like =
            |pattern: &str| deny_for(&format!(r#"{{"StringLike": {{"{sub}": "{pattern}"}}}}"#));
        let wildcard_allow = statement_for(
            HOST,
            &format!(r#"{{"StringLike": {{"{sub}": "system:serviceaccount:*"}}}}"#),
        );
        for (statements, want) in [
            (
                vec![
                    exact_allow.clone(),
                    deny_like("system:serviceaccount:external-secrets:*"),
                ],
                Trust::Denied(format!(
                    r#""DenyPattern" (StringLike "system:serviceaccount:external-secrets:*" on {sub})"#
                )),
            ),
            // A Deny with no condition denies everyone.
            (
                vec![exact_allow.clone(), deny_for("{}")],
                Trust::Denied(r#""DenyPattern" (no condition)"#.into()),
            ),
            // A Deny of other subjects leaves this one alone.
            (
                vec![
                    exact_allow.clone(),
                    deny_like("system:serviceaccount:kube-system:*"),
                ],
                Trust::Exact,
            ),
            // A Deny of every other subject pins a wildcard Allow to this one.
            (
                vec![
                    wildcard_allow.clone(),
                    deny_for(&format!(r#"{{"StringNotEquals": {{"{sub}": "{ESO}"}}}}"#)),
                ],
                Trust::Exact,
            ),
            // A too broad Allow is reported even when a Deny keeps this subject out.
            (
                vec![
                    wildcard_allow,
                    deny_like("system:serviceaccount:external-secrets:external-*"),
                ],
                Trust::Wildcard {
                    pattern: "system:serviceaccount:*".into(),
                    ours: false,
                },
            ),
            // A Deny about another provider, or another action, does not apply.
            (
                vec![
                    exact_allow.clone(),
                    statement_for(OTHER_HOST, "{}").replace("\"Allow\"", "\"Deny\""),
                    deny_for("{}").replace("sts:AssumeRoleWithWebIdentity", "sts:TagSession"),
                ],
                Trust::Exact,
            ),
            // A Deny for every principal, or every action but another, does.
            (
                vec![
                    exact_allow.clone(),
                    r#"{"Effect": "Deny", "Principal": "*", "NotAction": "sts:AssumeRole"}"#
                        .to_owned(),
                ],
                Trust::Denied("#2 (no condition)".into()),
            ),
            // A Deny preflight cannot evaluate leaves the decision unknown.
            (
                vec![
                    exact_allow,
                    deny_for(r#"{"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}"#),
                ],
                Trust::Unreadable {
                    statement: r#""DenyPattern""#.into(),
                    what: "the condition operator IpAddress".into(),
                },
            ),
        ] {
            let doc = policy_of(&statements);
            assert_eq!(judged(&doc), want, "{doc}");
        }
    }

    #[test]
    fn operators_parse_with_their_prefixes_and_suffixes() {
        let op = Operator::parse("ForAllValues:StringNotLikeIfExists").expect("known");
        assert!(op.like && op.negated && op.if_exists && !op.ignore_case);
        assert_eq!(op.for_all_values, Some(true));
        for unknown in [
            "Bool",
            "Null",
            "ArnLike",
            "stringequals",
            "ForAnyValue:Bool",
        ] {
            assert_eq!(Operator::parse(unknown), None, "{unknown}");
        }
        // An absent key: only negated, IfExists and ForAllValues conditions hold.
        for (name, holds) in [
            ("StringEquals", false),
            ("StringNotEquals", true),
            ("StringEqualsIfExists", true),
            ("ForAnyValue:StringNotEquals", false),
            ("ForAllValues:StringEquals", true),
        ] {
            let op = Operator::parse(name).expect("known");
            assert_eq!(op.holds(None, &["x".to_owned()]), holds, "{name}");
        }
    }

    fn binding(ns: &str, name: &str) -> Binding {
        Binding::resolve(
            &IrsaRoleSettings {
                service_account: ObjectRef::new(ns, name),
                role: None,
            },
            "dev",
        )
    }

    fn found(subject_host: &str, subject: &str) -> Role {
        Role::Found {
            arn: "arn:aws:iam::123456789012:role/goldenpath-dev-x".into(),
            trust: parse_trust(&exact(subject_host, subject)),
        }
    }

    #[test]
    fn judges_roles_and_the_provider() {
        let eso = binding("external-secrets", "external-secrets");
        let dns = binding("external-dns", "external-dns");
        let dns_sub = "system:serviceaccount:external-dns:external-dns";
        let registered = Registered::Yes(vec![AUDIENCE.into()]);
        let provider = Some((PROVIDER, &registered));
        let good = vec![
            (eso.clone(), found(HOST, ESO)),
            (dns.clone(), found(HOST, dns_sub)),
        ];
        let no_audience = Registered::Yes(vec![]);
        for (roles, provider, status, code) in [
            (good.clone(), provider, Status::Pass, "irsa-roles-trusted"),
            (
                vec![
                    (eso.clone(), found(HOST, ESO)),
                    (dns.clone(), Role::Missing),
                ],
                provider,
                Status::Fail,
                NOT_FOUND,
            ),
            (
                vec![(eso.clone(), Role::Missing), (dns.clone(), Role::Missing)],
                None,
                Status::Fail,
                NOT_FOUND,
            ),
            (
                vec![(eso.clone(), found(HOST, dns_sub))],
                provider,
                Status::Fail,
                MISMATCH,
            ),
            (
                vec![(eso.clone(), found(OTHER_HOST, ESO))],
                provider,
                Status::Fail,
                MISMATCH,
            ),
            (
                vec![(
                    eso.clone(),
                    Role::Found {
                        arn: "arn:aws:iam::123456789012:role/goldenpath-dev-x".into(),
                        trust: Err("not a JSON document".into()),
                    },
                )],
                provider,
                Status::Fail,
                MISMATCH,
            ),
            (
                good.clone(),
                Some((PROVIDER, &Registered::No)),
                Status::Fail,
                "irsa-oidc-provider-missing",
            ),
            (
                good.clone(),
                Some((PROVIDER, &no_audience)),
                Status::Fail,
                "irsa-oidc-provider-audience",
            ),
        ] {
            let o = judge(&issuer(), &roles, provider);
            assert_eq!((o.status, o.code.as_str()), (status, code), "{roles:?}");
            if status == Status::Fail {
                assert!(o.hint.is_some(), "{o:?}");
            }
        }

        let o = judge(&issuer(), &good, provider);
        assert_eq!(
            o.message,
            "2 IAM role(s) trust this cluster's OIDC provider for exactly their ServiceAccount: external-secrets/external-secrets → goldenpath-dev-external-secrets, external-dns/external-dns → goldenpath-dev-external-dns"
        );

        let missing = judge(&issuer(), &[(dns.clone(), Role::Missing)], None);
        assert_eq!(
            missing.message,
            "IAM role goldenpath-dev-external-dns (for ServiceAccount external-dns/external-dns) does not exist"
        );
        let hint = missing.hint.expect("hint");
        assert!(
            hint.contains(&format!(r#""{HOST}:sub": "{dns_sub}""#)),
            "the hint writes the statement: {hint}"
        );

        let wrong = judge(&issuer(), &[(eso.clone(), found(HOST, dns_sub))], provider);
        assert_eq!(
            wrong.message,
            format!(
                "IAM role goldenpath-dev-external-secrets trusts {dns_sub}, not {ESO} (ServiceAccount external-secrets/external-secrets)"
            )
        );
        assert!(
            wrong
                .hint
                .expect("hint")
                .contains(&format!(r#""Federated": "{PROVIDER}""#))
        );
    }

    #[test]
    fn names_the_deny_the_unknown_operator_and_the_broad_condition() {
        let eso = binding("external-secrets", "external-secrets");
        let registered = Registered::Yes(vec![AUDIENCE.into()]);
        let role = |doc: String| {
            vec![(
                eso.clone(),
                Role::Found {
                    arn: "arn:aws:iam::123456789012:role/goldenpath-dev-external-secrets".into(),
                    trust: parse_trust(&doc),
                },
            )]
        };
        let sub = format!("{HOST}:sub");
        let exact_allow = statement_for(HOST, &exact_condition(HOST, ESO));
        for (doc, code, message, hint) in [
            (
                policy_of(&[
                    exact_allow.clone(),
                    deny_for(&format!(
                        r#"{{"StringLike": {{"{sub}": "system:serviceaccount:external-secrets:*"}}}}"#
                    )),
                ]),
                MISMATCH,
                format!(
                    r#"IAM role goldenpath-dev-external-secrets (for external-secrets/external-secrets) has a Deny trust statement "DenyPattern" (StringLike "system:serviceaccount:external-secrets:*" on {sub}) that matches {ESO}: an explicit Deny overrides any Allow, so the ServiceAccount's pods cannot assume the role"#
                ),
                "Remove that Deny statement",
            ),
            (
                allow(&format!(
                    r#"{{"StringEqualsIfExistsOrNot": {{"{sub}": "{ESO}"}}}}"#
                )),
                MISMATCH,
                format!(
                    "IAM role goldenpath-dev-external-secrets's trust statement #1 uses the condition operator StringEqualsIfExistsOrNot, which preflight does not evaluate: whether it lets {ESO} (ServiceAccount external-secrets/external-secrets) assume the role is unknown"
                ),
                "preflight evaluates StringEquals, StringNotEquals, StringLike",
            ),
            (
                allow(&format!(
                    r#"{{"StringNotEquals": {{"{sub}": "system:serviceaccount:default:default"}}}}"#
                )),
                TOO_BROAD,
                format!(
                    r#"IAM role goldenpath-dev-external-secrets (for external-secrets/external-secrets) trusts StringNotEquals "system:serviceaccount:default:default" on {sub}: it lets {ESO} and others assume it"#
                ),
                "Pin the subject with StringEquals",
            ),
            (
                allow(&format!(
                    r#"{{"StringEquals": {{"{sub}": "{ESO}"}}, "StringLike": {{"{sub}": "system:serviceaccount:kube-system:*"}}}}"#
                )),
                MISMATCH,
                format!(
                    r#"IAM role goldenpath-dev-external-secrets (for external-secrets/external-secrets) trusts this cluster's OIDC provider only under conditions no token of {ESO} meets all together: StringEquals "{ESO}" on {sub} and StringLike "system:serviceaccount:kube-system:*" on {sub}"#
                ),
                "Make the role's trust statement name the ServiceAccount",
            ),
        ] {
            let o = judge(&issuer(), &role(doc.clone()), Some((PROVIDER, &registered)));
            assert_eq!((o.status, o.code.as_str()), (Status::Fail, code), "{doc}");
            assert_eq!(o.message, message);
            let h = o.hint.expect("hint");
            assert!(h.contains(hint), "{h}");
            assert!(h.contains(&format!(r#""{sub}": "{ESO}""#)), "the fix: {h}");
        }
    }

    #[test]
    fn resolves_roles_issuers_and_providers() {
        let b = binding("kube-system", "ebs-csi-controller-sa");
        assert_eq!(b.role, "goldenpath-dev-ebs-csi-controller-sa");
        assert_eq!(
            b.resource(),
            "arn:aws:iam::*:role/goldenpath-dev-ebs-csi-controller-sa"
        );
        let arn = Binding::resolve(
            &IrsaRoleSettings {
                service_account: ObjectRef::new("a", "b"),
                role: Some("arn:aws:iam::123456789012:role/platform/{env}-b".into()),
            },
            "prod",
        );
        assert_eq!(arn.role_name(), "prod-b");
        assert_eq!(
            arn.resource(),
            "arn:aws:iam::123456789012:role/platform/prod-b"
        );
        let defaults = IrsaRoles::new(&IrsaRolesSettings::default(), "dev");
        assert_eq!(defaults.bindings.len(), 5);
        assert_eq!(defaults.cluster, "goldenpath-dev");
        assert_eq!(defaults.bindings[0].role, "goldenpath-dev-external-secrets");
        assert_eq!(Issuer::parse(&format!(" https://{HOST}/ ")), issuer());
        assert_eq!(
            issuer().provider_in("arn:aws-cn:iam::210987654321:role/x"),
            Some(format!("arn:aws-cn:iam::210987654321:oidc-provider/{HOST}"))
        );
        assert_eq!(issuer().provider_in("goldenpath-dev-x"), None);
        let reads = defaults.reads().iam;
        assert!(reads.iter().any(|g| g.action == "eks:DescribeCluster"
            && g.resource == "arn:aws:eks:*:*:cluster/goldenpath-dev"));
        let configured = IrsaRoles::new(
            &IrsaRolesSettings {
                oidc_issuer: Some(format!("https://{HOST}")),
                ..IrsaRolesSettings::default()
            },
            "dev",
        );
        let reads = configured.reads().iam;
        assert!(!reads.iter().any(|g| g.action == "eks:DescribeCluster"));
        assert!(
            reads
                .iter()
                .any(|g| g.action == "iam:GetOpenIDConnectProvider"
                    && g.resource == format!("arn:aws:iam::*:oidc-provider/{HOST}"))
        );
    }
}
