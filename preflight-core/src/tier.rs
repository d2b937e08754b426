//! Tiers: the ordered stages in which the platform deploys its apps.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One of the platform's deployment tiers. Only the exact values 0, 1, 1.5, 2 and 3 exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// Cluster viability: EKS, nodes, CNI, CoreDNS.
    Zero,
    /// Delivery plane: ArgoCD, Kong, ExternalDNS, External Secrets.
    One,
    /// Core observability: Prometheus, Grafana (SQLite), Alertmanager.
    OneAndHalf,
    /// Platform experience: Backstage, Loki, Grafana (PostgreSQL).
    Two,
    /// Production identity: Keycloak, OIDC. Persistent clusters only.
    Three,
}

impl Tier {
    /// Every tier, lowest first.
    pub const ALL: [Tier; 5] = [
        Tier::Zero,
        Tier::One,
        Tier::OneAndHalf,
        Tier::Two,
        Tier::Three,
    ];

    /// The tier as written in the contract: `"0"`, `"1"`, `"1.5"`, `"2"` or `"3"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Tier::Zero => "0",
            Tier::One => "1",
            Tier::OneAndHalf => "1.5",
            Tier::Two => "2",
            Tier::Three => "3",
        }
    }

    /// The platform's name for the tier.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Tier::Zero => "Cluster viability",
            Tier::One => "Delivery plane",
            Tier::OneAndHalf => "Core observability",
            Tier::Two => "Platform experience",
            Tier::Three => "Production identity",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the five tiers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a tier (expected one of 0, 1, 1.5, 2, 3)")]
pub struct InvalidTier(pub String);

impl FromStr for Tier {
    type Err = InvalidTier;

    /// Exact match only: "1.50", "2.0", " 2" and "-1" are rejected, because a tier that is
    /// almost right is a typo in the contract, not a value to round.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tier::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| InvalidTier(s.to_owned()))
    }
}

impl Serialize for Tier {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Tier {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly_the_five_tiers() {
        for tier in Tier::ALL {
            assert_eq!(tier.as_str().parse::<Tier>(), Ok(tier));
        }
        for bad in ["2.5", "-1", "abc", "", "1.50", "2.0", " 2", "4", "01"] {
            assert_eq!(
                bad.parse::<Tier>(),
                Err(InvalidTier(bad.to_owned())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn orders_numerically() {
        assert!(Tier::One < Tier::OneAndHalf && Tier::OneAndHalf < Tier::Two);
        let mut sorted = Tier::ALL;
        sorted.sort();
        assert_eq!(sorted, Tier::ALL);
    }
}
