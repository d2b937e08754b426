//! `irsa`: the ServiceAccounts of AWS-facing controllers carry an IAM role (IRSA).

use serde::{Deserialize, Serialize};

use super::fetch::{self, SERVICE_ACCOUNTS};
use crate::check::ObjectRef;
use crate::check::{Attempt, Check, Context};
use crate::check::{Built, Definition, Family, Site};
use crate::outcome::Outcome;
use crate::platform::{NeededBy, Provider};
use crate::reads::Reads;
use crate::tier::Tier;

/// `checks.irsa`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct IrsaSettings {
    /// Service accounts that must carry `eks.amazonaws.com/role-arn`.
    pub service_accounts: Vec<ObjectRef>,
}

impl Default for IrsaSettings {
    fn default() -> Self {
        IrsaSettings {
            service_accounts: vec![
                ObjectRef::new("external-secrets", "external-secrets"),
                ObjectRef::new("external-dns", "external-dns"),
            ],
        }
    }
}

/// The annotation EKS's pod identity webhook reads.
const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";

/// A ServiceAccount's annotations.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ServiceAccountDoc {
    #[serde(default)]
    metadata: Metadata,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Metadata {
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    annotations: std::collections::BTreeMap<String, String>,
}

/// Whether `arn` names an IAM role: `arn:{partition}:iam::{12 digits}:role/{path and name}`.
fn is_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", partition, "iam", "", account, resource]
        if partition.starts_with("aws")
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && resource.strip_prefix("role/").is_some_and(|r| !r.is_empty()))
}

/// Judges each ServiceAccount (by reference; `None` when absent).
pub(crate) fn judge(found: &[(ObjectRef, Option<ServiceAccountDoc>)]) -> Outcome {
    let mut problems = Vec::new();
    for (sa, doc) in found {
        match doc
            .as_ref()
            .map(|d| d.metadata.annotations.get(ROLE_ARN_ANNOTATION))
        {
            None => problems.push(format!("ServiceAccount {sa} not found")),
            Some(None) => problems.push(format!(
                "ServiceAccount {sa} has no {ROLE_ARN_ANNOTATION} annotation"
            )),
            Some(Some(arn)) if !is_role_arn(arn) => {
                problems.push(format!(
                    "ServiceAccount {sa}: {ROLE_ARN_ANNOTATION} {arn:?} is not an IAM role ARN"
                ));
            }
            Some(Some(_)) => {}
        }
    }
    if problems.is_empty() {
        let names: Vec<String> = found.iter().map(|(sa, _)| sa.to_string()).collect();
        return Outcome::pass(
            "irsa-configured",
            format!(
                "{} ServiceAccount(s) carry an IAM role: {}",
                names.len(),
                names.join(", ")
            ),
        );
    }
    Outcome::fail("irsa-missing", problems.join("; ")).hint(format!(
        "Set the controller's chart value serviceAccount.annotations.\"{ROLE_ARN_ANNOTATION}\" to the role Terraform created (arn:aws:iam::<account>:role/<name>); without it the controller falls back to the node's role and AWS calls fail with AccessDenied."
    ))
}

/// The `irsa` check.
#[derive(Debug)]
pub struct Irsa {
    settings: IrsaSettings,
}

impl Irsa {
    /// A check with these settings.
    #[must_use]
    pub fn new(settings: IrsaSettings) -> Self {
        Irsa { settings }
    }
}

impl Definition for Irsa {
    const ID: &'static str = "irsa";
    const FAMILY: Family = Family::Kubernetes;
    type Settings = IrsaSettings;

    /// The tier-1 controllers' ServiceAccounts, verified before anything above relies on them.
    fn needed_by(_: &IrsaSettings) -> NeededBy {
        NeededBy::tier(Tier::OneAndHalf)
    }

    fn provided_by(_: &IrsaSettings, _: &Site<'_>) -> Provider {
        Provider::Tier(Tier::One, "the External Secrets and ExternalDNS charts")
    }

    fn build(settings: &IrsaSettings, site: &Site<'_>) -> Result<Built, String> {
        Ok(Built::new(
            Irsa::new(settings.clone()),
            format!(
                "{} ServiceAccount(s) carry {ROLE_ARN_ANNOTATION}",
                settings.service_accounts.len()
            ),
            Self::provided_by(settings, site),
            &[super::KubeApi::ID],
        ))
    }
}

#[async_trait::async_trait]
impl Check for Irsa {
    fn reads(&self) -> Reads {
        Reads::kube(
            self.settings
                .service_accounts
                .iter()
                .map(|sa| SERVICE_ACCOUNTS.within(&sa.namespace))
                .collect(),
        )
    }

    async fn attempt(&self, ctx: &Context) -> Attempt {
        let accounts = &self.settings.service_accounts;
        let refs: Vec<(Option<&str>, &str)> = accounts
            .iter()
            .map(|sa| (Some(sa.namespace.as_str()), sa.name.as_str()))
            .collect();
        fetch::judge_objects(ctx, &SERVICE_ACCOUNTS, &refs, |found| {
            judge(&accounts.iter().cloned().zip(found).collect::<Vec<_>>())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;

    fn sa(annotations: &str) -> Option<ServiceAccountDoc> {
        Some(
            serde_saphyr::from_str(&format!("metadata:\n  annotations: {annotations}\n"))
                .expect("parses"),
        )
    }

    #[test]
    fn recognises_role_arns() {
        assert!(is_role_arn("arn:aws:iam::123456789012:role/eso"));
        assert!(is_role_arn(
            "arn:aws-us-gov:iam::123456789012:role/path/eso"
        ));
        for bad in [
            "",
            "arn:aws:iam::123:role/eso",
            "arn:aws:iam::123456789012:user/eso",
            "arn:aws:iam::123456789012:role/",
            "role/eso",
        ] {
            assert!(!is_role_arn(bad), "{bad}");
        }
    }

    #[test]
    fn judges_each_service_account() {
        let eso = ObjectRef::new("external-secrets", "external-secrets");
        let dns = ObjectRef::new("external-dns", "external-dns");
        let good = "{eks.amazonaws.com/role-arn: 'arn:aws:iam::123456789012:role/x'}";
        let o = judge(&[(eso.clone(), sa(good)), (dns.clone(), sa(good))]);
        assert_eq!(
            (o.status, o.code.as_str()),
            (Status::Pass, "irsa-configured")
        );

        let o = judge(&[(eso.clone(), sa("{}")), (dns.clone(), None)]);
        assert_eq!((o.status, o.code.as_str()), (Status::Fail, "irsa-missing"));
        assert_eq!(
            o.message,
            "ServiceAccount external-secrets/external-secrets has no eks.amazonaws.com/role-arn annotation; ServiceAccount external-dns/external-dns not found"
        );
        let o = judge(&[(eso, sa("{eks.amazonaws.com/role-arn: 'TODO'}"))]);
        assert!(o.message.contains("\"TODO\" is not an IAM role ARN"));
    }
}
