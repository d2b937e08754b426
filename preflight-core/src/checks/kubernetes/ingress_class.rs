//! `ingress-class`: the IngressClass the platform's Ingresses name exists.

use serde::Deserialize;

use super::fetch::{self, INGRESS_CLASSES};
use crate::access::Reads;
use crate::check::{Attempt, Check, Context};
use crate::config::NamedSettings;
use crate::outcome::Outcome;

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
    settings: NamedSettings,
}

impl IngressClass {
    /// A check with these settings.
    #[must_use]
    pub fn new(settings: NamedSettings) -> Self {
        IngressClass { settings }
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
