//! `observability-crds`: the Prometheus operator's CRDs, which tier 1.5 installs and tier 2's
//! apps ship objects of (ServiceMonitors, PrometheusRules), exist and are Established.

use serde::{Deserialize, Serialize};

use super::crds::CrdsEstablished;
use crate::check::{Built, Definition, Family, Site};
use crate::platform::{NeededBy, Provider};
use crate::tier::Tier;

/// `checks.observability-crds`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ObservabilityCrdSettings {
    /// CRD names, `plural.group`.
    pub names: Vec<String>,
}

impl Default for ObservabilityCrdSettings {
    fn default() -> Self {
        ObservabilityCrdSettings {
            names: [
                "prometheuses.monitoring.coreos.com",
                "alertmanagers.monitoring.coreos.com",
                "servicemonitors.monitoring.coreos.com",
                "podmonitors.monitoring.coreos.com",
                "prometheusrules.monitoring.coreos.com",
            ]
            .map(str::to_owned)
            .to_vec(),
        }
    }
}

/// The `observability-crds` check's definition.
#[derive(Debug)]
pub struct ObservabilityCrds;

impl Definition for ObservabilityCrds {
    const ID: &'static str = "observability-crds";
    const FAMILY: Family = Family::Kubernetes;
    type Settings = ObservabilityCrdSettings;

    /// Tier 2's apps (Loki, Backstage) ship ServiceMonitors.
    fn needed_by(_: &ObservabilityCrdSettings) -> NeededBy {
        NeededBy::tier(Tier::Two)
    }

    fn provided_by(_: &ObservabilityCrdSettings, _: &Site<'_>) -> Provider {
        Provider::app("prometheus")
    }

    fn build(settings: &ObservabilityCrdSettings, site: &Site<'_>) -> Result<Built, String> {
        Ok(Built::new(
            CrdsEstablished::new(settings.names.clone()),
            format!(
                "{} Prometheus operator CRDs established",
                settings.names.len()
            ),
            Self::provided_by(settings, site),
            &[super::KubeApi::ID],
        ))
    }
}
