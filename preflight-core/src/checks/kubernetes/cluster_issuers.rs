//! `cluster-issuers`: the cert-manager ClusterIssuers that sign the platform's certificates are
//! `Ready`.

use serde::{Deserialize, Serialize};

use super::conditions::{self, Condition};
use super::fetch::{self, CLUSTER_ISSUERS};
use crate::check::{Attempt, Check, Context};
use crate::check::{Built, Definition, Family, Site};
use crate::outcome::Outcome;
use crate::platform::{NeededBy, Provider};
use crate::reads::Reads;
use crate::tier::Tier;

/// `checks.cluster-issuers`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterIssuerSettings {
    /// The ClusterIssuers that must be Ready.
    pub names: Vec<String>,
    /// The first tier with TLS Ingresses, whose gate first runs the check; it must be above
    /// tier 1, which installs cert-manager.
    pub tier: Tier,
}

impl Default for ClusterIssuerSettings {
    fn default() -> Self {
        ClusterIssuerSettings {
            names: ["selfsigned", "letsencrypt-staging", "letsencrypt-prod"]
                .map(str::to_owned)
                .to_vec(),
            tier: Tier::Two,
        }
    }
}

/// API versions of `cert-manager.io` this check understands: `v1` since cert-manager 1.0.
pub(crate) const VERSIONS: [&str; 1] = ["v1"];

/// What a ClusterIssuer says of itself.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct IssuerDoc {
    #[serde(default)]
    metadata: Metadata,
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    spec: serde_json::Map<String, serde_json::Value>,
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    status: IssuerStatus,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Metadata {
    #[serde(default)]
    name: String,
    #[serde(default)]
    generation: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct IssuerStatus {
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    conditions: Vec<Condition>,
}

impl IssuerDoc {
    /// `acme`, `ca`, `selfSigned`, `vault`…: the spec's one issuer type.
    fn issuer_type(&self) -> &str {
        self.spec.keys().next().map_or("unknown", String::as_str)
    }

    /// Its name, as a list returns it.
    pub(crate) fn name(&self) -> &str {
        &self.metadata.name
    }
}

/// An object's `Ready` condition judged against its current generation, as cert-manager
/// reports on its ClusterIssuers and Certificates: `Ready=True` counts only once the
/// controller has observed the latest change to the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Readiness<'a> {
    /// `Ready=True` for the current generation.
    Ready,
    /// No `Ready` condition yet: never reconciled.
    Unreported,
    /// The `Ready` condition predates the latest change to the spec.
    Stale,
    /// `Ready` is not `True`; the condition says why.
    NotReady(&'a Condition),
}

/// Judges the `Ready` condition among `conditions` of an object at `generation`.
pub(crate) fn readiness(conditions: &[Condition], generation: Option<i64>) -> Readiness<'_> {
    let Some(condition) = conditions::find(conditions, "Ready") else {
        return Readiness::Unreported;
    };
    if condition
        .observed_generation
        .zip(generation)
        .is_some_and(|(observed, current)| observed < current)
    {
        return Readiness::Stale;
    }
    if condition.status == "True" {
        Readiness::Ready
    } else {
        Readiness::NotReady(condition)
    }
}

/// One ClusterIssuer, judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum IssuerState {
    /// Ready for its current generation: its name and type, for messages.
    Ready(String),
    /// Not found.
    Missing,
    /// Not Ready (yet): what is wrong, and what to do about it when its reason says.
    Problem {
        text: String,
        hint: Option<&'static str>,
    },
}

/// Judges the ClusterIssuer `name` (`None` when absent).
pub(crate) fn issuer_state(name: &str, doc: Option<&IssuerDoc>) -> IssuerState {
    let Some(doc) = doc else {
        return IssuerState::Missing;
    };
    match readiness(&doc.status.conditions, doc.metadata.generation) {
        Readiness::Ready => IssuerState::Ready(format!("{name} ({})", doc.issuer_type())),
        Readiness::Stale => IssuerState::Problem {
            text: format!(
                "{name}: its Ready condition predates the latest change to its spec (not reconciled yet)"
            ),
            hint: None,
        },
        Readiness::Unreported => IssuerState::Problem {
            text: format!("{name}: no Ready condition yet (not reconciled yet)"),
            hint: None,
        },
        Readiness::NotReady(c) => IssuerState::Problem {
            text: format!(
                "{name} ({}) is not Ready{}",
                doc.issuer_type(),
                conditions::explain(Some(c))
            ),
            hint: Some(not_ready_hint(doc.issuer_type(), &c.reason)),
        },
    }
}

/// What to do about an issuer that is not Ready, from the reasons cert-manager's issuer
/// controllers set (`pkg/issuer/{acme,ca,selfsigned}/setup.go`).
fn not_ready_hint(issuer_type: &str, reason: &str) -> &'static str {
    match (issuer_type, reason) {
        (
            _,
            "ErrRegisterACMEAccount"
            | "ErrVerifyACMEAccount"
            | "ErrUpdateACMEAccount"
            | "InvalidURL",
        )
        | ("acme", _) => {
            "ACME registration failed: check spec.acme.server (staging and production URLs differ), the account email, and that cert-manager can reach the ACME server (egress, proxy). The account key Secret (spec.acme.privateKeySecretRef) is created on the first registration; ErrVerifyACMEAccount means it is unreadable or not an RSA key: delete it to register again."
        }
        (_, "ErrGetKeyPair" | "ErrInvalidKeyPair") | ("ca", _) => {
            "The CA key pair is missing or invalid: the Secret named in spec.ca.secretName must exist in cert-manager's namespace (the cluster resource namespace) with tls.crt and tls.key of a CA certificate."
        }
        _ => {
            "See the issuer's events (kubectl describe clusterissuer <name>) and cert-manager's logs."
        }
    }
}

/// Judges the issuers found (by name; `None` when absent).
pub(crate) fn judge(found: &[(&str, Option<&IssuerDoc>)]) -> Outcome {
    let mut ready = Vec::new();
    let mut missing = Vec::new();
    let mut problems = Vec::new();
    let mut hint = None;
    for (name, doc) in found {
        match issuer_state(name, *doc) {
            IssuerState::Ready(described) => ready.push(described),
            IssuerState::Missing => missing.push(*name),
            IssuerState::Problem { text, hint: h } => {
                problems.push(text);
                if let Some(h) = h {
                    hint.get_or_insert(h);
                }
            }
        }
    }
    if !missing.is_empty() {
        let names = missing.join(", ");
        problems.insert(0, format!("ClusterIssuer(s) not found: {names}"));
        hint = Some(
            "The ClusterIssuers were never deployed: they come with the platform's cert-manager issuers app (after cert-manager itself, whose webhook must be running to accept them). Check that app's sync in ArgoCD.",
        );
    }
    if found.is_empty() {
        return Outcome::warn(
            "cluster-issuers-none-configured",
            "no ClusterIssuer is named in checks.cluster-issuers.names",
        );
    }
    if problems.is_empty() {
        return Outcome::pass(
            "cluster-issuers-ready",
            format!("ClusterIssuer(s) Ready: {}", ready.join(", ")),
        );
    }
    let code = if missing.is_empty() {
        "cluster-issuer-not-ready"
    } else {
        "cluster-issuer-missing"
    };
    let outcome = Outcome::fail(code, problems.join("; "));
    match hint {
        Some(h) => outcome.hint(h),
        None => outcome.hint("cert-manager has not reconciled the issuer yet: wait for it (--wait), or check that the cert-manager controller is running."),
    }
}

/// The `cluster-issuers` check.
#[derive(Debug)]
pub struct ClusterIssuers {
    settings: ClusterIssuerSettings,
}

impl ClusterIssuers {
    /// A check with these settings.
    #[must_use]
    pub fn new(settings: ClusterIssuerSettings) -> Self {
        ClusterIssuers { settings }
    }
}

impl Definition for ClusterIssuers {
    const ID: &'static str = "cluster-issuers";
    const FAMILY: Family = Family::Kubernetes;
    type Settings = ClusterIssuerSettings;

    fn needed_by(settings: &ClusterIssuerSettings) -> NeededBy {
        NeededBy::tier(settings.tier)
    }

    fn provided_by(_: &ClusterIssuerSettings, _: &Site<'_>) -> Provider {
        Provider::app("cert-manager")
    }

    fn build(settings: &ClusterIssuerSettings, site: &Site<'_>) -> Result<Built, String> {
        Ok(Built::new(
            ClusterIssuers::new(settings.clone()),
            format!("ClusterIssuers {} Ready", settings.names.join(", ")),
            Self::provided_by(settings, site),
            &[super::KubeApi::ID],
        ))
    }
}

#[async_trait::async_trait]
impl Check for ClusterIssuers {
    fn reads(&self) -> Reads {
        Reads::kube(vec![CLUSTER_ISSUERS.everywhere()])
    }

    async fn attempt(&self, ctx: &Context) -> Attempt {
        let resource = match fetch::served(
            ctx,
            &CLUSTER_ISSUERS,
            &VERSIONS,
            "cluster-issuer-api-missing",
            "Install cert-manager with its CRDs (chart value crds.enabled=true; installCRDs=true before v1.15).",
        )
        .await
        {
            Ok(r) => r,
            Err(failed) => return *failed,
        };
        let refs: Vec<(Option<&str>, &str)> = self
            .settings
            .names
            .iter()
            .map(|n| (None, n.as_str()))
            .collect();
        fetch::judge_objects(ctx, &resource, &refs, |found: Vec<Option<IssuerDoc>>| {
            let pairs: Vec<(&str, Option<&IssuerDoc>)> = self
                .settings
                .names
                .iter()
                .map(String::as_str)
                .zip(found.iter().map(Option::as_ref))
                .collect();
            judge(&pairs)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;

    fn doc(yaml: &str) -> IssuerDoc {
        serde_saphyr::from_str(yaml).expect("parses")
    }

    /// The ACME issuer's status as `kubectl describe` shows it in cert-manager's tutorial
    /// (shared/fixtures/certmanager-clusterissuer-acme-status-describe.txt).
    const ACME_READY: &str = "metadata: {generation: 1}\nspec:\n  acme: {server: 'https://acme-staging-v02.api.letsencrypt.org/directory'}\nstatus:\n  acme: {lastRegisteredEmail: firstname.lastname@example.com, uri: 'https://acme-staging-v02.api.letsencrypt.org/acme/acct/77882854'}\n  conditions:\n  - {lastTransitionTime: '2024-09-04T15:41:18Z', message: The ACME account was registered with the ACME server, observedGeneration: 1, reason: ACMEAccountRegistered, status: 'True', type: Ready}\n";

    #[test]
    fn judges_ready_missing_failing_and_stale_issuers() {
        let acme = doc(ACME_READY);
        let selfsigned = doc(
            "spec: {selfSigned: {}}\nstatus:\n  conditions:\n  - {type: Ready, status: 'True', reason: IsReady}\n",
        );
        let o = judge(&[
            ("letsencrypt-staging", Some(&acme)),
            ("selfsigned", Some(&selfsigned)),
        ]);
        assert_eq!(
            (o.status, o.code.as_str()),
            (Status::Pass, "cluster-issuers-ready")
        );
        assert!(
            o.message.contains("letsencrypt-staging (acme)"),
            "{}",
            o.message
        );

        let o = judge(&[
            ("selfsigned", Some(&selfsigned)),
            ("letsencrypt-prod", None),
        ]);
        assert_eq!(o.code, "cluster-issuer-missing");
        assert!(
            o.message.contains("not found: letsencrypt-prod"),
            "{}",
            o.message
        );
        assert!(o.hint.expect("hint").contains("never deployed"));

        let acme_failed = doc(
            "spec: {acme: {}}\nstatus:\n  conditions:\n  - {type: Ready, status: 'False', reason: ErrRegisterACMEAccount, message: 'Failed to register ACME account: 400 urn:ietf:params:acme:error:invalidContact'}\n",
        );
        let o = judge(&[("letsencrypt-prod", Some(&acme_failed))]);
        assert_eq!(
            (o.status, o.code.as_str()),
            (Status::Fail, "cluster-issuer-not-ready")
        );
        assert!(
            o.message
                .contains("ErrRegisterACMEAccount: Failed to register"),
            "{}",
            o.message
        );
        assert!(
            o.hint
                .expect("hint")
                .starts_with("ACME registration failed")
        );

        let ca_missing = doc(
            "spec: {ca: {secretName: platform-ca}}\nstatus:\n  conditions:\n  - {type: Ready, status: 'False', reason: ErrGetKeyPair, message: 'Error getting keypair for CA issuer: secrets \"platform-ca\" not found'}\n",
        );
        let o = judge(&[("platform-ca", Some(&ca_missing))]);
        assert!(
            o.hint
                .expect("hint")
                .starts_with("The CA key pair is missing")
        );

        let stale = doc(
            "metadata: {generation: 3}\nspec: {acme: {}}\nstatus:\n  conditions:\n  - {type: Ready, status: 'True', reason: ACMEAccountRegistered, observedGeneration: 2}\n",
        );
        let o = judge(&[("letsencrypt-prod", Some(&stale))]);
        assert_eq!(o.code, "cluster-issuer-not-ready");
        assert!(o.message.contains("not reconciled yet"), "{}", o.message);

        let fresh = doc("spec: {acme: {}}\n");
        assert!(
            judge(&[("x", Some(&fresh))])
                .message
                .contains("no Ready condition")
        );
    }
}
