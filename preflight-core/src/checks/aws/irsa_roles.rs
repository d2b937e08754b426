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

use aws_sdk_eks::error::SdkError;
use aws_sdk_eks::operation::describe_cluster::DescribeClusterError;
use aws_sdk_iam::operation::get_open_id_connect_provider::GetOpenIDConnectProviderError;
use aws_sdk_iam::operation::get_role::GetRoleError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::access::{IamGrant, Reads};
use crate::check::{Attempt, Check, Context};
use crate::check::{Built, Definition, Family, Site};
use crate::config::ObjectRef;
use crate::contract::PlatformFlag;
use crate::outcome::{Outcome, name_list};
use crate::platform::{NeededBy, Provider};
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
    /// `Effect: Allow` (rather than `Deny`).
    pub allow: bool,
    /// `Action`, one or several (patterns allowed).
    pub actions: Vec<String>,
    /// `Principal.Federated`, one or several.
    pub federated: Vec<String>,
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
        .map(|s| {
            let Value::Object(s) = s else {
                return Err("a Statement is not an object".to_owned());
            };
            let federated = match s.get("Principal") {
                Some(Value::Object(p)) => p.get("Federated").map(strings).unwrap_or_default(),
                _ => Vec::new(),
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
            Ok(Statement {
                allow: s.get("Effect").and_then(Value::as_str) == Some("Allow"),
                actions: s.get("Action").map(strings).unwrap_or_default(),
                federated,
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

/// What a role's trust policy grants one ServiceAccount of this cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Trust {
    /// This cluster's provider, exactly this subject.
    Exact,
    /// This subject, and these others too.
    Shared(Vec<String>),
    /// No Allow statement for `sts:AssumeRoleWithWebIdentity`.
    NoWebIdentity,
    /// Web identity, but from these providers only.
    OtherProvider(Vec<String>),
    /// This cluster's provider, for these subjects only.
    OtherSubject(Vec<String>),
    /// The subject, with an audience condition other than `sts.amazonaws.com`.
    WrongAudience(Vec<String>),
    /// A `StringLike` pattern on the subject.
    Wildcard(String),
    /// This cluster's provider with no condition on the subject.
    NoSubject,
}

impl Trust {
    /// Lower is better, among the statements for this cluster's provider.
    fn rank(&self) -> u8 {
        match self {
            Trust::Exact => 0,
            Trust::Shared(_) => 1,
            Trust::WrongAudience(_) => 2,
            Trust::OtherSubject(_) => 3,
            _ => 4,
        }
    }
}

/// The values of the conditions of `operator` on `key` (condition keys are case-insensitive).
fn condition<'a>(s: &'a Statement, operator: &str, key: &str) -> Vec<&'a str> {
    s.conditions
        .iter()
        .filter(|c| c.operator == operator && c.key.eq_ignore_ascii_case(key))
        .flat_map(|c| c.values.iter().map(String::as_str))
        .collect()
}

/// Judges one statement naming this cluster's provider.
fn statement_trust(s: &Statement, issuer: &Issuer, subject: &str) -> Trust {
    let sub = format!("{}:sub", issuer.host());
    let aud = format!("{}:aud", issuer.host());
    let equals = condition(s, "StringEquals", &sub);
    let like = condition(s, "StringLike", &sub);
    // Operators are ANDed: a StringEquals on the subject confines a StringLike beside it.
    if equals.is_empty() {
        if let Some(pattern) = like.iter().find(|p| has_wildcard(p)) {
            return Trust::Wildcard((*pattern).to_owned());
        }
        if like.is_empty() {
            return Trust::NoSubject;
        }
    }
    let subjects = if equals.is_empty() { like } else { equals };
    if !subjects.contains(&subject) {
        return Trust::OtherSubject(subjects.iter().map(|s| (*s).to_owned()).collect());
    }
    let audiences: Vec<&str> = condition(s, "StringEquals", &aud)
        .into_iter()
        .chain(condition(s, "StringLike", &aud))
        .collect();
    if !audiences.is_empty() && !audiences.iter().any(|a| glob(a, AUDIENCE)) {
        return Trust::WrongAudience(audiences.iter().map(|a| (*a).to_owned()).collect());
    }
    let others: Vec<String> = subjects
        .iter()
        .filter(|s| **s != subject)
        .map(|s| (*s).to_owned())
        .collect();
    if others.is_empty() {
        Trust::Exact
    } else {
        Trust::Shared(others)
    }
}

/// Judges a trust policy for one ServiceAccount of the cluster whose provider is `provider`.
/// A statement that lets other ServiceAccounts in (a wildcard, no subject) is reported even
/// when another statement names the subject exactly: it still lets them in.
pub(crate) fn trust(
    statements: &[Statement],
    provider: &str,
    issuer: &Issuer,
    subject: &str,
) -> Trust {
    let web_identity: Vec<&Statement> = statements
        .iter()
        .filter(|s| {
            s.allow
                && s.actions
                    .iter()
                    .any(|a| glob(&a.to_lowercase(), &WEB_IDENTITY.to_lowercase()))
        })
        .collect();
    if web_identity.is_empty() {
        return Trust::NoWebIdentity;
    }
    let ours: Vec<Trust> = web_identity
        .iter()
        .filter(|s| s.federated.iter().any(|f| f == provider))
        .map(|s| statement_trust(s, issuer, subject))
        .collect();
    if ours.is_empty() {
        let mut others: Vec<String> = web_identity
            .iter()
            .flat_map(|s| s.federated.iter().cloned())
            .collect();
        others.sort_unstable();
        others.dedup();
        return Trust::OtherProvider(others);
    }
    if let Some(broad) = ours
        .iter()
        .find(|t| matches!(t, Trust::Wildcard(_) | Trust::NoSubject))
    {
        return broad.clone();
    }
    ours.into_iter()
        .min_by_key(Trust::rank)
        .unwrap_or(Trust::NoWebIdentity)
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
        Trust::Wildcard(pattern) => {
            let ours = if glob(&pattern, &subject) {
                format!("{subject} and others")
            } else {
                format!("others, not even {subject}")
            };
            (
                TOO_BROAD,
                format!(
                    "IAM role {name} (for {sa}) trusts StringLike {pattern:?} on {}:sub: it lets {ours} assume it",
                    issuer.host()
                ),
                format!("Pin the subject with StringEquals instead of a pattern: {fix}."),
            )
        }
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

/// Maps a failed call the way every AWS check does, except that an HTTP 403 is a denial even
/// when its body names no error code: moto answers denied IAM calls in an envelope
/// (`ErrorResponse/Errors/Error`) the SDK does not read, and a 403 means nothing else.
fn failed<E>(action: &str, what: &str, err: &SdkError<E>) -> Attempt
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let unread = err.as_service_error().is_some_and(|e| e.code().is_none());
    if unread
        && err
            .raw_response()
            .is_some_and(|r| r.status().as_u16() == 403)
    {
        return Attempt::settled(
            Outcome::fail(
                "aws-forbidden",
                format!("not allowed to {action} for {what} (HTTP 403)"),
            )
            .hint(format!(
                "Allow {action} to the role preflight runs as (its IRSA role in the cluster)."
            )),
        );
    }
    super::failure(action, what, err)
}

/// Maps a failed `GetRole`: a missing role is this check's own finding.
fn role_failure(name: &str, err: &SdkError<GetRoleError>) -> Result<Role, Box<Attempt>> {
    if err
        .as_service_error()
        .is_some_and(GetRoleError::is_no_such_entity_exception)
    {
        return Ok(Role::Missing);
    }
    Err(Box::new(failed(
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
        Err(e) => Err(Box::new(failed(
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
    failed("eks:DescribeCluster", &format!("EKS cluster {name}"), err)
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

    #[test]
    fn judges_trust_policies() {
        let like = |pattern: &str| {
            policy(
                HOST,
                &format!(r#"{{"StringLike": {{"{HOST}:sub": "{pattern}"}}}}"#),
            )
        };
        let two_subjects = policy(
            HOST,
            &format!(
                r#"{{"StringEquals": {{"{HOST}:sub": ["{ESO}", "system:serviceaccount:default:default"]}}}}"#
            ),
        );
        let wrong_aud = policy(
            HOST,
            &format!(r#"{{"StringEquals": {{"{HOST}:sub": "{ESO}", "{HOST}:aud": "vault"}}}}"#),
        );
        let constrained_like = policy(
            HOST,
            &format!(
                r#"{{"StringEquals": {{"{HOST}:sub": "{ESO}"}}, "StringLike": {{"{HOST}:sub": "system:serviceaccount:*"}}}}"#
            ),
        );
        let not_web = r#"{"Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}"#;
        let denied = exact(HOST, ESO).replace("\"Allow\"", "\"Deny\"");
        let exact_and_wildcard = format!(
            r#"{{"Statement": [{}, {}]}}"#,
            statement_for(HOST, &exact_condition(HOST, ESO)),
            statement_for(HOST, &format!(r#"{{"StringLike": {{"{HOST}:sub": "*"}}}}"#)),
        );
        // Condition keys are case-insensitive, their string values are not.
        let upper_key = policy(
            HOST,
            &format!(
                r#"{{"StringEquals": {{"{}:SUB": "{ESO}"}}}}"#,
                HOST.to_uppercase()
            ),
        );
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
                Trust::Wildcard("system:serviceaccount:*".into()),
            ),
            (exact_and_wildcard, Trust::Wildcard("*".into())),
            (policy(HOST, "{}"), Trust::NoSubject),
            (
                policy(
                    HOST,
                    &format!(r#"{{"StringEquals": {{"{HOST}:aud": "sts.amazonaws.com"}}}}"#),
                ),
                Trust::NoSubject,
            ),
            (wrong_aud, Trust::WrongAudience(vec!["vault".into()])),
            (not_web.to_owned(), Trust::NoWebIdentity),
            (denied, Trust::NoWebIdentity),
        ] {
            assert_eq!(judged(&doc), want, "{doc}");
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
