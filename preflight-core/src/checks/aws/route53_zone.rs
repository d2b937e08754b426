//! `route53-zone`: the base domain's hosted zone exists, public or private as configured, so
//! ExternalDNS has somewhere to write.

use crate::check::{Attempt, Check, Context};
use crate::check::{Built, Definition, Family, Site};
use crate::dns::DnsName;
use crate::outcome::Outcome;
use crate::platform::{NeededBy, Provider};
use crate::reads::{IamGrant, Reads};
use crate::tier::Tier;

use serde::{Deserialize, Serialize};

/// `checks.route53-zone`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Route53ZoneSettings {
    /// The zone's domain; default: the contract's base domain.
    pub domain: Option<String>,
    /// A private hosted zone (associated with the cluster's VPC) rather than a public one.
    pub private: bool,
}

/// A hosted zone, as `ListHostedZonesByName` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Zone {
    /// `Z…`, without the `/hostedzone/` prefix.
    pub id: String,
    /// The zone's name, decoded.
    pub name: DnsName,
    /// A private zone (associated with VPCs) rather than a public one.
    pub private: bool,
    /// How many record sets it holds, when reported.
    pub record_sets: Option<i64>,
}

impl Zone {
    fn kind(&self) -> &'static str {
        if self.private { "private" } else { "public" }
    }
}

/// Lists the hosted zones named `domain` or lying under it (delegated subzones such as
/// `dev.goldenpathidp.io`), every page. Zones come sorted by name with labels reversed, so
/// they start at `domain`; the rest of the account's zones are read and ignored.
pub(crate) async fn zones_within(
    route53: &aws_sdk_route53::Client,
    domain: &str,
) -> Result<Vec<Zone>, Box<Attempt>> {
    let parent = DnsName::parse(domain);
    let mut zones = Vec::new();
    let mut next: Option<(String, Option<String>)> = Some((domain.to_owned(), None));
    while let Some((dns_name, zone_id)) = next.take() {
        let page = route53
            .list_hosted_zones_by_name()
            .dns_name(dns_name)
            .set_hosted_zone_id(zone_id)
            .send()
            .await
            .map_err(|e| {
                Box::new(super::failure(
                    "route53:ListHostedZonesByName",
                    &format!("the hosted zones of {domain}"),
                    &e,
                ))
            })?;
        for z in page.hosted_zones() {
            let name = DnsName::parse(z.name());
            if !name.is_within(&parent) {
                continue;
            }
            zones.push(Zone {
                id: z.id().trim_start_matches("/hostedzone/").to_owned(),
                name,
                private: z.config().is_some_and(|c| c.private_zone()),
                record_sets: z.resource_record_set_count(),
            });
        }
        if page.is_truncated() {
            next = page
                .next_dns_name()
                .map(|n| (n.to_owned(), page.next_hosted_zone_id().map(str::to_owned)));
        }
    }
    Ok(zones)
}

/// Judges the zones found under the domain: the domain's own zone must exist, of the wanted
/// kind, and only once (ExternalDNS would write to whichever it finds first).
pub(crate) fn judge(domain: &str, private: bool, zones: &[Zone]) -> Outcome {
    let wanted = if private { "private" } else { "public" };
    let apex = DnsName::parse(domain);
    let named: Vec<&Zone> = zones.iter().filter(|z| z.name == apex).collect();
    let matching: Vec<&Zone> = named
        .iter()
        .copied()
        .filter(|z| z.private == private)
        .collect();
    match matching.as_slice() {
        [] if named.is_empty() => Outcome::fail(
            "route53-zone-missing",
            format!("no hosted zone for {domain} in this account"),
        )
        .hint(format!(
            "Create the {wanted} hosted zone {domain} (the platform's DNS Terraform) and delegate it from the registrar; or set checks.route53-zone.domain, or dns.baseDomain in the bootstrap values, to the domain the cluster uses."
        )),
        [] => Outcome::fail(
            "route53-zone-wrong-type",
            format!(
                "the hosted zone for {domain} is {} ({}), but a {wanted} zone is expected",
                named[0].kind(),
                named[0].id
            ),
        )
        .hint(format!(
            "Set checks.route53-zone.private to {} if that zone is the one ExternalDNS should use (its --aws-zone-type), or create the {wanted} zone.",
            !private
        )),
        [zone] => {
            let records = zone
                .record_sets
                .map(|n| format!(", {n} record sets"))
                .unwrap_or_default();
            Outcome::pass(
                "route53-zone-found",
                format!("{wanted} hosted zone {domain} is {}{records}", zone.id),
            )
            .evidence("zoneId", &zone.id)
        }
        several => {
            let ids: Vec<&str> = several.iter().map(|z| z.id.as_str()).collect();
            Outcome::warn(
                "route53-zone-duplicate",
                format!(
                    "{} {wanted} hosted zones are named {domain}: {}",
                    several.len(),
                    ids.join(", ")
                ),
            )
            .hint("Only one of them is delegated from the registrar; pin ExternalDNS to it (--zone-id-filter) and delete the others.")
        }
    }
}

/// The `route53-zone` check.
#[derive(Debug)]
pub struct Route53Zone {
    domain: String,
    private: bool,
}

impl Route53Zone {
    /// A check for the zone of `settings.domain`, or of the contract's base domain.
    #[must_use]
    pub fn new(settings: &Route53ZoneSettings, base_domain: &str) -> Self {
        Route53Zone {
            domain: settings
                .domain
                .clone()
                .unwrap_or_else(|| base_domain.to_owned()),
            private: settings.private,
        }
    }

    /// The domain whose zone it looks for.
    #[must_use]
    pub fn domain(&self) -> &str {
        &self.domain
    }
}

impl Definition for Route53Zone {
    const ID: &'static str = "route53-zone";
    const FAMILY: Family = Family::Aws;
    type Settings = Route53ZoneSettings;

    /// ExternalDNS (tier 1) writes into it.
    fn needed_by(_: &Route53ZoneSettings) -> NeededBy {
        NeededBy::tier(Tier::One)
    }

    fn provided_by(_: &Route53ZoneSettings, _: &Site<'_>) -> Provider {
        Provider::Foundation("Terraform (Route53)")
    }

    fn build(settings: &Route53ZoneSettings, site: &Site<'_>) -> Result<Built, String> {
        let check = Route53Zone::new(settings, &site.values.base_domain.value);
        let title = format!(
            "{} hosted zone {} exists",
            if settings.private {
                "private"
            } else {
                "public"
            },
            check.domain()
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
impl Check for Route53Zone {
    fn reads(&self) -> Reads {
        Reads {
            kube: Vec::new(),
            // Listing zones has no resource-level permissions.
            iam: vec![IamGrant {
                action: "route53:ListHostedZonesByName",
                resource: "*".into(),
            }],
        }
    }

    async fn attempt(&self, ctx: &Context) -> Attempt {
        let Some(route53) = ctx.route53() else {
            return super::no_client();
        };
        match zones_within(route53, &self.domain).await {
            Ok(zones) => Attempt::settled(judge(&self.domain, self.private, &zones)),
            Err(failed) => *failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;

    fn zone(id: &str, name: &str, private: bool) -> Zone {
        Zone {
            id: id.into(),
            name: DnsName::parse(name),
            private,
            record_sets: Some(4),
        }
    }

    #[test]
    fn judges_the_zone_of_the_domain() {
        let d = "goldenpathidp.io";
        let public = zone("Z1", "goldenpathidp.io.", false);
        let private = zone("Z2", "goldenpathidp.io.", true);
        let sub = zone("Z3", "dev.goldenpathidp.io.", false);
        for (zones, want_private, status, code) in [
            (
                vec![public.clone(), sub.clone()],
                false,
                Status::Pass,
                "route53-zone-found",
            ),
            (
                vec![public.clone(), private.clone()],
                true,
                Status::Pass,
                "route53-zone-found",
            ),
            (
                vec![sub.clone()],
                false,
                Status::Fail,
                "route53-zone-missing",
            ),
            (vec![], false, Status::Fail, "route53-zone-missing"),
            (
                vec![private.clone()],
                false,
                Status::Fail,
                "route53-zone-wrong-type",
            ),
            (
                vec![public.clone(), zone("Z4", "goldenpathidp.io", false)],
                false,
                Status::Warn,
                "route53-zone-duplicate",
            ),
        ] {
            let o = judge(d, want_private, &zones);
            assert_eq!((o.status, o.code.as_str()), (status, code), "{zones:?}");
        }
        let o = judge(d, false, &[public]);
        assert_eq!(
            o.message,
            "public hosted zone goldenpathidp.io is Z1, 4 record sets"
        );
    }
}
