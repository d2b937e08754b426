//! `ingress-class`: the IngressClass the platform's Ingresses name exists.

use serde::{Deserialize, Serialize};

use super::fetch::{self, INGRESS_CLASSES};
use crate::check::{Attempt, Check, Context};
use crate::check::{Built, Definition, Family, Site};
use crate::outcome::Outcome;
use crate::platform::{NeededBy, Provider};
use crate::reads::Reads;
use crate::tier::Tier;

/// `checks.ingress-class`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct IngressClassSettings {
    /// The IngressClass the platform's Ingresses name.
    pub name: String,
}

impl Default for IngressClassSettings {
    fn default() -> Self {
        IngressClassSettings {
            name: "kong".into(),
        }
    }
}

/// The parts of an IngressClass worth reporting.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct IngressClassDoc {
    #[serde(default)]
    spec: IngressClassSpec,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct IngressClassSpec {
    #[serde(default)]
    controller: String,
}

/// Judges the IngressClass found under `name`.
pub(crate) fn judge(name: &str, found: Option<&IngressClassDoc>) -> Outcome {
    match found {
        None => Outcome::fail(
            "ingress-class-missing",
            format!("IngressClass {name:?} not found: Ingresses with ingressClassName {name} are rejected"),
        )
        .hint(format!(
            "Install the ingress controller that provides it (for Kong: the kong/ingress chart, which creates IngressClass {name}) in a wave before the apps, or set checks.ingress-class.name."
        )),
        Some(doc) => Outcome::pass(
            "ingress-class-present",
            format!("IngressClass {name:?} exists (controller {})", doc.spec.controller),
        )
        .evidence("controller", &doc.spec.controller),
    }
}

/// The `ingress-class` check.
#[derive(Debug)]
pub struct IngressClass {
    settings: IngressClassSettings,
}

impl IngressClass {
    /// A check with these settings.
    #[must_use]
    pub fn new(settings: IngressClassSettings) -> Self {
        IngressClass { settings }
    }
}

impl Definition for IngressClass {
    const ID: &'static str = "ingress-class";
    const FAMILY: Family = Family::Kubernetes;
    type Settings = IngressClassSettings;

    /// Tier 1.5's Grafana is the first app with an Ingress.
    fn needed_by(_: &IngressClassSettings) -> NeededBy {
        NeededBy::tier(Tier::OneAndHalf)
    }

    fn provided_by(_: &IngressClassSettings, _: &Site<'_>) -> Provider {
        Provider::app("kong")
    }

    fn build(settings: &IngressClassSettings, site: &Site<'_>) -> Result<Built, String> {
        Ok(Built::new(
            IngressClass::new(settings.clone()),
            format!("IngressClass {:?} exists", settings.name),
            Self::provided_by(settings, site),
            &[super::KubeApi::ID],
        ))
    }
}

#[async_trait::async_trait]
impl Check for IngressClass {
    fn reads(&self) -> Reads {
        Reads::kube(vec![INGRESS_CLASSES.everywhere()])
    }

    async fn attempt(&self, ctx: &Context) -> Attempt {
        let name = &self.settings.name;
        fetch::judge_object(ctx, &INGRESS_CLASSES, None, name, |found| {
            judge(name, found)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;

    #[test]
    fn judges_presence() {
        let doc: IngressClassDoc =
            serde_saphyr::from_str("spec: {controller: ingress-controllers.konghq.com/kong}")
                .expect("parses");
        let o = judge("kong", Some(&doc));
        assert_eq!(
            (o.status, o.code.as_str()),
            (Status::Pass, "ingress-class-present")
        );
        assert!(o.message.contains("ingress-controllers.konghq.com/kong"));
        let o = judge("kong", None);
        assert_eq!(
            (o.status, o.code.as_str()),
            (Status::Fail, "ingress-class-missing")
        );
        assert!(o.message.starts_with("IngressClass \"kong\" not found"));
    }
}
