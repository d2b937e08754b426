//! `kube-api`: the API server answers, accepts preflight's credentials, and runs a supported
//! Kubernetes version.

use serde::{Deserialize, Serialize};

use super::fetch::{self, Access, ResourceType};
use crate::check::{Attempt, Built, Check, Context, Definition, Family, Site};
use crate::outcome::Outcome;
use crate::platform::{NeededBy, Provider};
use crate::reads::Reads;
use crate::tier::Tier;

/// `checks.kube-api`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct KubeApiSettings {
    /// The oldest supported Kubernetes minor version, `"1.29"`.
    pub min_version: String,
}

impl Default for KubeApiSettings {
    fn default() -> Self {
        KubeApiSettings {
            min_version: "1.29".into(),
        }
    }
}

static SELF_SUBJECT_REVIEWS: ResourceType = ResourceType::new(
    "authentication.k8s.io",
    "v1",
    "selfsubjectreviews",
    "SelfSubjectReview",
);

/// What `/version` says.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VersionInfo {
    pub major: String,
    pub minor: String,
    pub git_version: String,
}

/// A Kubernetes `major.minor`, read leniently: EKS reports minors such as `"31+"`.
fn parse_minor_version(major: &str, minor: &str) -> Option<(u32, u32)> {
    let digits = |s: &str| -> Option<u32> {
        let d: String = s.chars().take_while(char::is_ascii_digit).collect();
        d.parse().ok()
    };
    Some((digits(major)?, digits(minor)?))
}

/// Judges the server's version against the minimum; `user` is who the server says we are.
pub(crate) fn judge(info: &VersionInfo, user: Option<&str>, min: &str) -> Outcome {
    let who = user
        .map(|u| format!(", authenticated as {u}"))
        .unwrap_or_default();
    let Some((min_major, min_minor)) = min
        .split_once('.')
        .and_then(|(a, b)| parse_minor_version(a, b))
    else {
        return Outcome::fail(
            "bad-setting",
            format!("checks.kube-api.minVersion {min:?} is not major.minor"),
        );
    };
    let outcome = match parse_minor_version(&info.major, &info.minor) {
        None => Outcome::warn(
            "version-unreadable",
            format!("Kubernetes API reachable{who}, but its version {:?} cannot be read", info.git_version),
        ),
        Some(v) if v < (min_major, min_minor) => Outcome::fail(
            "version-unsupported",
            format!("Kubernetes {} is older than the supported minimum {min}{who}", info.git_version),
        )
        .hint(format!("Upgrade the cluster (aws eks update-cluster-version) to {min} or later before deploying the platform.")),
        Some(_) => Outcome::pass("api-ready", format!("Kubernetes {} reachable{who}", info.git_version)),
    };
    let outcome = outcome.evidence("version", &info.git_version);
    match user {
        Some(u) => outcome.evidence("user", u),
        None => outcome,
    }
}

#[derive(Deserialize)]
struct SelfSubjectReview {
    status: Option<ReviewStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewStatus {
    user_info: Option<UserInfo>,
}

#[derive(Deserialize)]
struct UserInfo {
    username: Option<String>,
}

/// The `kube-api` check.
#[derive(Debug)]
pub struct KubeApi {
    settings: KubeApiSettings,
}

impl KubeApi {
    /// A check with these settings.
    #[must_use]
    pub fn new(settings: KubeApiSettings) -> Self {
        KubeApi { settings }
    }
}

impl Definition for KubeApi {
    const ID: &'static str = "kube-api";
    const FAMILY: Family = Family::Kubernetes;
    type Settings = KubeApiSettings;

    fn needed_by(_: &KubeApiSettings) -> NeededBy {
        NeededBy::tier(Tier::Zero)
    }

    fn provided_by(_: &KubeApiSettings, _: &Site<'_>) -> Provider {
        Provider::Foundation("EKS")
    }

    fn build(settings: &KubeApiSettings, site: &Site<'_>) -> Result<Built, String> {
        Ok(Built::new(
            KubeApi::new(settings.clone()),
            format!(
                "Kubernetes API reachable, authenticated, version {} or later",
                settings.min_version
            ),
            Self::provided_by(settings, site),
            &[],
        ))
    }
}

/// Asks the server who the credentials belong to. `/version` may be open to anonymous users,
/// so this is what proves the credentials work. Servers older than 1.28 do not serve the
/// review: then the identity is unknown but not a failure.
async fn whoami(client: &kube::Client) -> fetch::Fetched<Option<String>> {
    let body = br#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#.to_vec();
    let request = http::Request::post(SELF_SUBJECT_REVIEWS.collection_path(None))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body)
        .map_err(|e| {
            Box::new(Attempt::settled(Outcome::fail(
                "bad-request",
                e.to_string(),
            )))
        })?;
    match client.request::<SelfSubjectReview>(request).await {
        Ok(review) => Ok(review
            .status
            .and_then(|s| s.user_info)
            .and_then(|u| u.username)),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(e) => Err(Box::new(fetch::failure(
            &e,
            Access {
                verb: "create",
                resource: &SELF_SUBJECT_REVIEWS,
                namespace: None,
                name: None,
            },
        ))),
    }
}

#[async_trait::async_trait]
impl Check for KubeApi {
    fn reads(&self) -> Reads {
        // /version and SelfSubjectReview are open to every authenticated user
        // (system:discovery, system:basic-user).
        Reads::default()
    }

    async fn attempt(&self, ctx: &Context) -> Attempt {
        let client = match fetch::client(ctx) {
            Ok(c) => c,
            Err(failed) => return *failed,
        };
        let version_request = match fetch::http_get("/version") {
            Ok(r) => r,
            Err(failed) => return *failed,
        };
        let (version, user) = tokio::join!(
            client.request::<VersionInfo>(version_request),
            whoami(client)
        );
        let version = match version {
            Ok(v) => v,
            // `/version` is a non-resource URL: its permission is not a resource rule.
            Err(kube::Error::Api(status)) if status.code == 403 => {
                return Attempt::settled(
                    Outcome::fail("forbidden", format!("missing permission: cannot get /version; the server said: {}", status.message))
                        .hint("Bind the ClusterRole system:public-info-viewer, or grant\n  - nonResourceURLs: [\"/version\"]\n    verbs: [\"get\"]"),
                );
            }
            Err(e) => {
                const VERSION: ResourceType = ResourceType::new("", "", "/version", "version");
                return fetch::failure(
                    &e,
                    Access {
                        verb: "get",
                        resource: &VERSION,
                        namespace: None,
                        name: None,
                    },
                );
            }
        };
        match user {
            Ok(user) => {
                Attempt::settled(judge(&version, user.as_deref(), &self.settings.min_version))
            }
            Err(failed) => *failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;

    fn info(git: &str, major: &str, minor: &str) -> VersionInfo {
        VersionInfo {
            major: major.into(),
            minor: minor.into(),
            git_version: git.into(),
        }
    }

    #[test]
    fn judges_versions_including_eks_minors() {
        for (i, min, status, code) in [
            (
                info("v1.31.13-eks-ecaa3a6", "1", "31+"),
                "1.29",
                Status::Pass,
                "api-ready",
            ),
            (
                info("v1.29.0", "1", "29"),
                "1.29",
                Status::Pass,
                "api-ready",
            ),
            (
                info("v1.28.4-eks-1", "1", "28+"),
                "1.29",
                Status::Fail,
                "version-unsupported",
            ),
            (
                info("weird", "", ""),
                "1.29",
                Status::Warn,
                "version-unreadable",
            ),
            (
                info("v1.31.0", "1", "31"),
                "latest",
                Status::Fail,
                "bad-setting",
            ),
        ] {
            let o = judge(&i, Some("system:serviceaccount:argocd:preflight"), min);
            assert_eq!(
                (o.status, o.code.as_str()),
                (status, code),
                "{i:?} vs {min}"
            );
        }
        let o = judge(
            &info("v1.31.13-eks-ecaa3a6", "1", "31+"),
            Some("arn:aws:iam::1:role/x"),
            "1.29",
        );
        assert_eq!(
            o.message,
            "Kubernetes v1.31.13-eks-ecaa3a6 reachable, authenticated as arn:aws:iam::1:role/x"
        );
    }
}
