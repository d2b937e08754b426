//! `dns-scope`: the platform's ADR-0178 rule, enforced. An ephemeral cluster's ExternalDNS
//! writes only under its build's `hostSuffix`, never into the persistent `*.{env}` zone; a
//! persistent cluster's never writes into a build subdomain. Ownership is read from
//! ExternalDNS's TXT registry in the base domain's hosted zones.

use super::route53_zone::{Zone, zones_within};
use crate::check::{Attempt, Check, Context};
use crate::check::{Built, Definition, Family, Site};
use crate::contract::Mode;
use crate::dns::{DnsName, ownership};
use crate::outcome::{Outcome, name_list};
use crate::platform::{NeededBy, Provider};
use crate::reads::{IamGrant, Reads};
use crate::tier::Tier;

use serde::{Deserialize, Serialize};

/// `checks.dns-scope`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct DnsScopeSettings {
    /// The domain whose hosted zones are read; default: the contract's base domain (set it
    /// as `checks.route53-zone.domain` is set).
    pub domain: Option<String>,
    /// Whether those zones are private.
    pub private: bool,
}

/// The DNS scope a cluster owns, from the contract.
#[derive(Clone, Debug)]
pub struct Scope {
    /// The cluster's lifecycle.
    pub mode: Mode,
    /// The ExternalDNS owner id of this cluster (`--txt-owner-id`).
    pub owner_id: String,
    /// Where this cluster's hostnames live.
    pub host_suffix: String,
    /// The environment's zone, `{env}.{baseDomain}`, owned by the persistent cluster.
    pub env_zone: String,
    /// The domain whose hosted zones are read (`checks.route53-zone.domain`, by default the
    /// contract's base domain).
    pub base_domain: String,
    /// Whether those zones are private.
    pub private: bool,
}

/// An ownership TXT record found in a zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OwnedRecord {
    /// The TXT record's name.
    pub name: DnsName,
    /// `external-dns/owner`.
    pub owner: String,
    /// `external-dns/resource`, when recorded.
    pub resource: Option<String>,
}

impl OwnedRecord {
    /// The record and the Kubernetes object behind it, for messages.
    fn describe(&self) -> String {
        match &self.resource {
            Some(r) => format!("{} (owner {}, from {r})", self.name, self.owner),
            None => format!("{} (owner {})", self.name, self.owner),
        }
    }

    /// The names the record may stand for: its own, and the record it owns under the newer
    /// registry format (`a-www…` owns `www…`), since a prefixed apex name sorts outside its
    /// zone.
    fn names(&self) -> impl Iterator<Item = DnsName> + '_ {
        std::iter::once(self.name.clone()).chain(self.name.without_type_prefix())
    }
}

/// What was read: the zones and the ownership records in them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Registry {
    pub zones: Vec<Zone>,
    pub records: Vec<OwnedRecord>,
    /// Record sets read, of every type.
    pub scanned: usize,
}

/// Why a record breaks the scope, or `None`.
fn violation(scope: &Scope, record: &OwnedRecord) -> Option<String> {
    let env_zone = DnsName::parse(&scope.env_zone);
    match scope.mode {
        Mode::Ephemeral => {
            let suffix = DnsName::parse(&scope.host_suffix);
            if record.names().any(|n| n.is_within(&suffix)) {
                return None;
            }
            let place = if record.name.is_within(&env_zone) {
                format!("the persistent zone *.{}", scope.env_zone)
            } else {
                "another zone".to_owned()
            };
            Some(format!(
                "{} lies in {place}, outside this build's {}",
                record.describe(),
                scope.host_suffix
            ))
        }
        Mode::Persistent => {
            let build = record.names().find_map(|n| n.build_label(&env_zone))?;
            Some(format!(
                "{} lies in the build subdomain {build}.{}, which belongs to an ephemeral cluster",
                record.describe(),
                scope.env_zone
            ))
        }
    }
}

/// Judges the ownership records of this cluster's owner id against its scope.
pub(crate) fn judge(scope: &Scope, registry: &Registry) -> Outcome {
    let zones: Vec<String> = registry
        .zones
        .iter()
        .map(|z| format!("{} ({})", z.name, z.id))
        .collect();
    if zones.is_empty() {
        return Outcome::fail(
            "dns-scope-no-zone",
            format!(
                "no hosted zone for {} to read ExternalDNS's records from",
                scope.base_domain
            ),
        )
        .hint("See the route53-zone check.");
    }
    let ours: Vec<&OwnedRecord> = registry
        .records
        .iter()
        .filter(|r| r.owner == scope.owner_id)
        .collect();
    let mut violations: Vec<String> = ours.iter().filter_map(|r| violation(scope, r)).collect();
    violations.sort();
    violations.dedup();
    let allowed = match scope.mode {
        Mode::Ephemeral => format!("under {}", scope.host_suffix),
        Mode::Persistent => format!("outside the build subdomains of {}", scope.env_zone),
    };
    if violations.is_empty() {
        return Outcome::pass(
            "dns-scope-respected",
            format!(
                "{} ExternalDNS record(s) owned by {} in {}, all {allowed}",
                ours.len(),
                scope.owner_id,
                name_list(&zones, 5)
            ),
        )
        .evidence("recordSetsRead", registry.scanned)
        .evidence("ownerId", &scope.owner_id);
    }
    let hint = match scope.mode {
        Mode::Ephemeral => format!(
            "ExternalDNS's --domain-filter must be this build's suffix ({}), not the environment's zone: fix the external-dns values (domainFilters) and delete the records listed, which it will not remove from a zone it no longer manages.",
            scope.host_suffix
        ),
        Mode::Persistent => "A persistent cluster's ExternalDNS must exclude the build subdomains (--exclude-domains or a regex domain filter); delete the records listed, which may shadow an ephemeral cluster's.".to_owned(),
    };
    Outcome::fail(
        "dns-scope-violated",
        format!(
            "{} record(s) owned by {} break the DNS scope: {}",
            violations.len(),
            scope.owner_id,
            name_list(&violations, 10)
        ),
    )
    .hint(hint)
    .evidence("recordSetsRead", registry.scanned)
}

/// Reads every record set of a zone, page by page, keeping only ownership records.
async fn read_zone(
    route53: &aws_sdk_route53::Client,
    zone: &Zone,
    registry: &mut Registry,
) -> Result<(), Box<Attempt>> {
    let mut start: Option<(String, aws_sdk_route53::types::RrType, Option<String>)> = None;
    loop {
        let mut request = route53.list_resource_record_sets().hosted_zone_id(&zone.id);
        if let Some((name, kind, identifier)) = start.take() {
            request = request
                .start_record_name(name)
                .start_record_type(kind)
                .set_start_record_identifier(identifier);
        }
        let page = request.send().await.map_err(|e| {
            Box::new(super::failure(
                "route53:ListResourceRecordSets",
                &format!("hosted zone {} ({})", zone.name, zone.id),
                &e,
            ))
        })?;
        for set in page.resource_record_sets() {
            registry.scanned += 1;
            if set.r#type().as_str() != "TXT" {
                continue;
            }
            for value in set.resource_records() {
                if let Some(o) = ownership(value.value()) {
                    registry.records.push(OwnedRecord {
                        name: DnsName::parse(set.name()),
                        owner: o.owner,
                        resource: o.resource,
                    });
                }
            }
        }
        match (
            page.is_truncated(),
            page.next_record_name(),
            page.next_record_type(),
        ) {
            (true, Some(name), Some(kind)) => {
                start = Some((
                    name.to_owned(),
                    kind.clone(),
                    page.next_record_identifier().map(str::to_owned),
                ));
            }
            _ => return Ok(()),
        }
    }
}

/// The `dns-scope` check.
#[derive(Debug)]
pub struct DnsScope {
    scope: Scope,
}

impl DnsScope {
    /// A check of this cluster's scope.
    #[must_use]
    pub fn new(scope: Scope) -> Self {
        DnsScope { scope }
    }
}

impl Definition for DnsScope {
    const ID: &'static str = "dns-scope";
    const FAMILY: Family = Family::Aws;
    type Settings = DnsScopeSettings;

    /// ExternalDNS runs from tier 1 on: its records are checked before tier 1.5.
    fn needed_by(_: &DnsScopeSettings) -> NeededBy {
        NeededBy::tier(Tier::OneAndHalf)
    }

    fn provided_by(_: &DnsScopeSettings, _: &Site<'_>) -> Provider {
        Provider::app("external-dns")
    }

    fn build(settings: &DnsScopeSettings, site: &Site<'_>) -> Result<Built, String> {
        let values = site.values;
        let title = match values.mode.value {
            Mode::Ephemeral => format!(
                "ExternalDNS records owned by {} lie under {}",
                values.owner_id.value, values.host_suffix.value
            ),
            Mode::Persistent => format!(
                "ExternalDNS records owned by {} stay out of build subdomains",
                values.owner_id.value
            ),
        };
        let check = DnsScope::new(Scope {
            mode: values.mode.value,
            owner_id: values.owner_id.value.clone(),
            host_suffix: values.host_suffix.value.clone(),
            env_zone: format!("{}.{}", values.env.value, values.base_domain.value),
            base_domain: settings
                .domain
                .clone()
                .unwrap_or_else(|| values.base_domain.value.clone()),
            private: settings.private,
        });
        Ok(Built::new(
            check,
            title,
            Self::provided_by(settings, site),
            &[super::Route53Zone::ID],
        ))
    }
}

#[async_trait::async_trait]
impl Check for DnsScope {
    fn reads(&self) -> Reads {
        Reads {
            kube: Vec::new(),
            iam: vec![
                IamGrant {
                    action: "route53:ListHostedZonesByName",
                    resource: "*".into(),
                },
                // Zone ids are known only at run time.
                IamGrant {
                    action: "route53:ListResourceRecordSets",
                    resource: "arn:aws:route53:::hostedzone/*".into(),
                },
            ],
        }
    }

    async fn attempt(&self, ctx: &Context) -> Attempt {
        let Some(route53) = ctx.route53() else {
            return super::no_client();
        };
        let mut registry = Registry::default();
        match zones_within(route53, &self.scope.base_domain).await {
            Ok(zones) => {
                registry.zones = zones
                    .into_iter()
                    .filter(|z| z.private == self.scope.private)
                    .collect();
            }
            Err(failed) => return *failed,
        }
        for zone in registry.zones.clone() {
            if let Err(failed) = read_zone(route53, &zone, &mut registry).await {
                return *failed;
            }
        }
        Attempt::settled(judge(&self.scope, &registry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;

    fn scope(mode: Mode) -> Scope {
        let (owner, suffix) = match mode {
            Mode::Ephemeral => (
                "goldenpath-dev-26-01-23-01",
                "b-26-01-23-01.dev.goldenpathidp.io",
            ),
            Mode::Persistent => ("goldenpath-dev", "dev.goldenpathidp.io"),
        };
        Scope {
            mode,
            owner_id: owner.into(),
            host_suffix: suffix.into(),
            env_zone: "dev.goldenpathidp.io".into(),
            base_domain: "goldenpathidp.io".into(),
            private: false,
        }
    }

    fn registry(records: &[(&str, &str)]) -> Registry {
        Registry {
            zones: vec![Zone {
                id: "Z1".into(),
                name: DnsName::parse("goldenpathidp.io."),
                private: false,
                record_sets: None,
            }],
            records: records
                .iter()
                .map(|(name, owner)| OwnedRecord {
                    name: DnsName::parse(name),
                    owner: (*owner).into(),
                    resource: Some("ingress/backstage/backstage".into()),
                })
                .collect(),
            scanned: records.len(),
        }
    }

    const BUILD: &str = "goldenpath-dev-26-01-23-01";

    #[test]
    fn an_ephemeral_cluster_writes_only_under_its_build() {
        let s = scope(Mode::Ephemeral);
        let fine = registry(&[
            ("backstage.b-26-01-23-01.dev.goldenpathidp.io.", BUILD),
            ("a-backstage.b-26-01-23-01.dev.goldenpathidp.io.", BUILD),
            ("\\052.b-26-01-23-01.dev.goldenpathidp.io.", BUILD),
            ("a-\\052.b-26-01-23-01.dev.goldenpathidp.io.", BUILD),
            // The apex of the build, in the newer format: the prefix lands on the build label.
            ("cname-b-26-01-23-01.dev.goldenpathidp.io.", BUILD),
            // Other owners are not this check's business.
            ("grafana.dev.goldenpathidp.io.", "goldenpath-dev"),
        ]);
        let o = judge(&s, &fine);
        assert_eq!(
            (o.status, o.code.as_str()),
            (Status::Pass, "dns-scope-respected"),
            "{}",
            o.message
        );
        assert!(
            o.message
                .starts_with("5 ExternalDNS record(s) owned by goldenpath-dev-26-01-23-01"),
            "{}",
            o.message
        );

        let leaked = registry(&[
            ("a-\\052.dev.goldenpathidp.io.", BUILD),
            ("backstage.dev.goldenpathidp.io.", BUILD),
            ("backstage\\056b-26-01-23-01.dev.goldenpathidp.io.", BUILD),
            ("b-26-01-23-01.goldenpathidp.io.", BUILD),
        ]);
        let o = judge(&s, &leaked);
        assert_eq!(
            (o.status, o.code.as_str()),
            (Status::Fail, "dns-scope-violated")
        );
        for needle in [
            "4 record(s) owned by goldenpath-dev-26-01-23-01",
            "a-*.dev.goldenpathidp.io (owner goldenpath-dev-26-01-23-01, from ingress/backstage/backstage) lies in the persistent zone *.dev.goldenpathidp.io",
            "backstage\\.b-26-01-23-01.dev.goldenpathidp.io",
            "b-26-01-23-01.goldenpathidp.io (owner goldenpath-dev-26-01-23-01, from ingress/backstage/backstage) lies in another zone",
        ] {
            assert!(o.message.contains(needle), "{needle:?} in {}", o.message);
        }
        assert!(o.hint.expect("hint").contains("domainFilters"));
    }

    #[test]
    fn a_persistent_cluster_stays_out_of_build_subdomains() {
        let s = scope(Mode::Persistent);
        let fine = registry(&[
            ("keycloak.dev.goldenpathidp.io.", "goldenpath-dev"),
            ("a-keycloak.dev.goldenpathidp.io.", "goldenpath-dev"),
            ("builds.dev.goldenpathidp.io.", "goldenpath-dev"),
            ("broll.dev.goldenpathidp.io.", "goldenpath-dev"),
            ("www.b-26-01-23-01.dev.goldenpathidp.io.", BUILD),
        ]);
        assert_eq!(judge(&s, &fine).status, Status::Pass);
        let leaked = registry(&[
            (
                "a-www.b-26-01-23-01.dev.goldenpathidp.io.",
                "goldenpath-dev",
            ),
            ("a-b-26-01-24-02.dev.goldenpathidp.io.", "goldenpath-dev"),
            // Build ids are any DNS label: `b-roll` is a build's subdomain too.
            ("b-roll.dev.goldenpathidp.io.", "goldenpath-dev"),
        ]);
        let o = judge(&s, &leaked);
        assert_eq!(o.code, "dns-scope-violated");
        assert!(
            o.message
                .contains("lies in the build subdomain b-26-01-23-01.dev.goldenpathidp.io"),
            "{}",
            o.message
        );
        assert!(o.message.contains("b-26-01-24-02.dev"), "{}", o.message);
    }

    #[test]
    fn no_zone_is_a_failure() {
        let o = judge(&scope(Mode::Ephemeral), &Registry::default());
        assert_eq!(o.code, "dns-scope-no-zone");
    }
}
