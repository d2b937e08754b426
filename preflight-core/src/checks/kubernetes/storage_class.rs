//! `storage-class`: persistent volumes can be provisioned: the named class exists, or exactly
//! one class is the default.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::fetch::{self, STORAGE_CLASSES};
use crate::check::{Attempt, Check, Context};
use crate::check::{Built, Definition, Family, Site};
use crate::contract::PlatformFlag;
use crate::outcome::Outcome;
use crate::platform::{NeededBy, Provider};
use crate::reads::Reads;
use crate::tier::Tier;

/// `checks.storage-class`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct StorageClassSettings {
    /// A class that must exist (e.g. `gp3`); when unset, exactly one default class must exist.
    pub name: Option<String>,
}

/// The default-class annotation, and its beta form that older tooling still writes.
const DEFAULT_ANNOTATIONS: [&str; 2] = [
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
];

/// The in-tree EBS provisioner, deprecated since the EBS CSI migration.
const IN_TREE_EBS: &str = "kubernetes.io/aws-ebs";

/// A StorageClass, reduced to what the judgement needs.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct StorageClassDoc {
    metadata: Metadata,
    #[serde(default)]
    provisioner: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Metadata {
    name: String,
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    annotations: BTreeMap<String, String>,
}

impl StorageClassDoc {
    fn describe(&self) -> String {
        format!("{} ({})", self.metadata.name, self.provisioner)
    }

    fn is_default(&self) -> bool {
        DEFAULT_ANNOTATIONS.iter().any(|a| {
            self.metadata
                .annotations
                .get(*a)
                .is_some_and(|v| v == "true")
        })
    }
}

/// The class PersistentVolumeClaims will use, with the pass code and its description, or the
/// failure that there is no such single class.
fn select<'a>(
    classes: &'a [StorageClassDoc],
    settings: &StorageClassSettings,
) -> Result<(&'a StorageClassDoc, &'static str), Outcome> {
    if let Some(name) = &settings.name {
        return classes.iter().find(|c| &c.metadata.name == name).map(|c| (c, "storage-class-present")).ok_or_else(|| {
            Outcome::fail("storage-class-missing", format!("StorageClass {name:?} not found")).hint(format!(
                "Create it with the EBS CSI driver (provisioner ebs.csi.aws.com, parameters.type {name}), or set checks.storage-class.name."
            ))
        });
    }
    let defaults: Vec<&StorageClassDoc> = classes.iter().filter(|c| c.is_default()).collect();
    match defaults.as_slice() {
        [one] => Ok((one, "default-storage-class")),
        [] => Err(Outcome::fail(
            "no-default-storage-class",
            format!("none of the {} StorageClasses is the default; PersistentVolumeClaims without storageClassName stay Pending", classes.len()),
        )
        .hint("Since EKS 1.30 gp2 is no longer annotated as default. Install the aws-ebs-csi-driver add-on with defaultStorageClass.enabled=true, or annotate a gp3 class with storageclass.kubernetes.io/is-default-class=true.")),
        many => Err(Outcome::fail(
            "several-default-storage-classes",
            format!("{} StorageClasses are marked default: {}", many.len(), many.iter().map(|c| c.describe()).collect::<Vec<_>>().join(", ")),
        )
        .hint("Keep the annotation storageclass.kubernetes.io/is-default-class=true on one class only (kubectl annotate storageclass <name> storageclass.kubernetes.io/is-default-class-).")),
    }
}

/// Judges the cluster's StorageClasses.
pub(crate) fn judge(classes: &[StorageClassDoc], settings: &StorageClassSettings) -> Outcome {
    let what = if settings.name.is_some() {
        "StorageClass"
    } else {
        "default StorageClass"
    };
    match select(classes, settings) {
        Err(failure) => failure,
        Ok((class, _)) if class.provisioner == IN_TREE_EBS => Outcome::warn(
            "in-tree-ebs-provisioner",
            format!("{what} {} uses the deprecated in-tree EBS provisioner", class.describe()),
        )
        .hint("Use a class with provisioner ebs.csi.aws.com (gp3) and the aws-ebs-csi-driver add-on; in-tree volumes only work through CSI migration."),
        Ok((class, code)) => Outcome::pass(code, format!("{what} {}", class.describe())),
    }
    .evidence("classes", classes.len())
}

/// The `storage-class` check.
#[derive(Debug)]
pub struct StorageClass {
    settings: StorageClassSettings,
}

impl StorageClass {
    /// A check with these settings.
    #[must_use]
    pub fn new(settings: StorageClassSettings) -> Self {
        StorageClass { settings }
    }
}

impl Definition for StorageClass {
    const ID: &'static str = "storage-class";
    const FAMILY: Family = Family::Kubernetes;
    const DECLARED_BY: Option<PlatformFlag> = Some(PlatformFlag::StorageClassReady);
    type Settings = StorageClassSettings;

    /// Prometheus and Alertmanager (tier 1.5) are the first apps with volumes.
    fn needed_by(_: &StorageClassSettings) -> NeededBy {
        NeededBy::tier(Tier::OneAndHalf)
    }

    fn provided_by(_: &StorageClassSettings, _: &Site<'_>) -> Provider {
        Provider::Foundation("EKS and Terraform (StorageClass, EBS CSI driver)")
    }

    fn build(settings: &StorageClassSettings, site: &Site<'_>) -> Result<Built, String> {
        Ok(Built::new(
            StorageClass::new(settings.clone()),
            match &settings.name {
                Some(n) => format!("StorageClass {n:?} exists"),
                None => "exactly one default StorageClass".to_owned(),
            },
            Self::provided_by(settings, site),
            &[super::KubeApi::ID],
        ))
    }
}

#[async_trait::async_trait]
impl Check for StorageClass {
    fn reads(&self) -> Reads {
        Reads::kube(vec![STORAGE_CLASSES.everywhere()])
    }

    async fn attempt(&self, ctx: &Context) -> Attempt {
        match fetch::list_all::<StorageClassDoc>(ctx, &STORAGE_CLASSES, None).await {
            Ok((classes, watch)) => {
                Attempt::until_changed(judge(&classes, &self.settings), vec![watch])
            }
            Err(failed) => *failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;

    fn classes(yaml: &str) -> Vec<StorageClassDoc> {
        serde_saphyr::from_str(yaml).expect("parses")
    }

    const GP2_EKS: &str = "- metadata: {name: gp2}\n  provisioner: kubernetes.io/aws-ebs\n";
    const GP3_DEFAULT: &str = "- metadata: {name: gp3, annotations: {storageclass.kubernetes.io/is-default-class: 'true'}}\n  provisioner: ebs.csi.aws.com\n";
    const GP2_BETA_DEFAULT: &str = "- metadata: {name: gp2, annotations: {storageclass.beta.kubernetes.io/is-default-class: 'true'}}\n  provisioner: kubernetes.io/aws-ebs\n";

    #[test]
    fn judges_defaults_names_and_provisioners() {
        let unnamed = StorageClassSettings::default();
        let gp3 = StorageClassSettings {
            name: Some("gp3".into()),
        };
        for (yaml, settings, status, code) in [
            (
                format!("{GP2_EKS}{GP3_DEFAULT}"),
                &unnamed,
                Status::Pass,
                "default-storage-class",
            ),
            (
                GP2_EKS.to_owned(),
                &unnamed,
                Status::Fail,
                "no-default-storage-class",
            ),
            (
                "[]".to_owned(),
                &unnamed,
                Status::Fail,
                "no-default-storage-class",
            ),
            (
                format!("{GP2_BETA_DEFAULT}{GP3_DEFAULT}"),
                &unnamed,
                Status::Fail,
                "several-default-storage-classes",
            ),
            (
                GP2_BETA_DEFAULT.to_owned(),
                &unnamed,
                Status::Warn,
                "in-tree-ebs-provisioner",
            ),
            (
                format!("{GP2_EKS}{GP3_DEFAULT}"),
                &gp3,
                Status::Pass,
                "storage-class-present",
            ),
            (
                GP2_EKS.to_owned(),
                &gp3,
                Status::Fail,
                "storage-class-missing",
            ),
        ] {
            let o = judge(&classes(&yaml), settings);
            assert_eq!((o.status, o.code.as_str()), (status, code), "{yaml}");
        }
    }

    #[test]
    fn names_every_default_class() {
        let o = judge(
            &classes(&format!("{GP2_BETA_DEFAULT}{GP3_DEFAULT}")),
            &StorageClassSettings::default(),
        );
        assert_eq!(
            o.message,
            "2 StorageClasses are marked default: gp2 (kubernetes.io/aws-ebs), gp3 (ebs.csi.aws.com)"
        );
    }
}
