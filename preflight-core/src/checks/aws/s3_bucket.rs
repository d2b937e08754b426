//! `s3-bucket`: Loki's S3 bucket exists, in the region Loki's client uses, and the role
//! preflight runs as may reach it (`HeadBucket`, whose IAM action is `s3:ListBucket`).
//!
//! The bucket is named `goldenpath-{env}-loki` by default: a naming convention of this
//! platform's Terraform, not an AWS one; set `bucket` where Terraform names it otherwise.
//!
//! The request is sent in the region the bucket must be in (a per-request override of the
//! shared client's region), so S3 answers the way it answers Loki: 200 where the bucket is, a
//! 301 naming the bucket's region (`x-amz-bucket-region`) where it is not, a 307 while a new
//! bucket's name propagates. The region S3 reports is compared with the expected one in every
//! case: a redirect naming the expected region is no wrong region. A 400 is a wrong signing
//! region only when it names a region other than the one the request was signed for; one
//! naming that region is another refusal (an expired or invalid token), mapped as any AWS
//! error.

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::head_bucket::HeadBucketError;
use serde::{Deserialize, Serialize};

use crate::check::{Attempt, Check, Context};
use crate::check::{Built, Definition, Family, Site};
use crate::contract::PlatformFlag;
use crate::outcome::Outcome;
use crate::platform::{NeededBy, Provider};
use crate::reads::{IamGrant, Reads};
use crate::tier::Tier;

/// `HeadBucket`'s IAM action.
const ACTION: &str = "s3:ListBucket";

/// The header S3 names a bucket's region in, on success and on a redirect alike.
const REGION_HEADER: &str = "x-amz-bucket-region";

/// `checks.s3-bucket`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct S3BucketSettings {
    /// The bucket's name, `{env}` substituted; default: the platform's `goldenpath-{env}-loki`.
    pub bucket: Option<String>,
    /// The region the bucket must be in (Loki's `storage.s3.region`); default: the region
    /// preflight's AWS configuration uses (`AWS_REGION`, the profile, the pod's IRSA setup).
    pub region: Option<String>,
    /// Address the bucket in the URL's path rather than its host name. AWS needs none; an
    /// S3-compatible endpoint named by a host name (`AWS_ENDPOINT_URL=http://localhost:…`
    /// for moto, LocalStack or MinIO) does, since `{bucket}.localhost` does not resolve. An
    /// endpoint given as an IP address is addressed by path anyway.
    pub force_path_style: bool,
}

/// What `HeadBucket` said of the bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Head {
    /// 200: it exists and may be read; its region, when reported.
    Found { region: Option<String> },
    /// 301, or 400 naming a region other than the one the request was signed for: the
    /// endpoint asked serves another region; the status, for messages.
    Moved { status: u16, region: Option<String> },
    /// 307 Temporary Redirect: S3 has not yet propagated a new bucket's name to every
    /// endpoint; its region, when reported.
    Propagating { region: Option<String> },
    /// 404.
    Missing,
    /// 403: not allowed, or the name belongs to another account's bucket.
    Forbidden,
}

/// Judges what `HeadBucket` said of `bucket`, which must be in `expected` when known.
pub(crate) fn judge(bucket: &str, expected: Option<&str>, head: &Head) -> Attempt {
    let wrong_region = |actual: &str, expected: &str| {
        Attempt::settled(
            Outcome::fail(
                "s3-bucket-wrong-region",
                format!("S3 bucket {bucket} is in {actual}, not {expected}: Loki's S3 client in {expected} would be redirected"),
            )
            .hint(format!("Set checks.s3-bucket.region and Loki's storage region (loki.storage.s3.region) to {actual}, or recreate the bucket in {expected} (the platform's Terraform)."))
            .evidence("region", actual),
        )
    };
    match head {
        Head::Found { region } => match (region.as_deref(), expected) {
            (Some(actual), Some(expected)) if actual != expected => wrong_region(actual, expected),
            (Some(actual), _) => Attempt::settled(
                Outcome::pass(
                    "s3-bucket-found",
                    format!("S3 bucket {bucket} exists in {actual}"),
                )
                .evidence("region", actual),
            ),
            (None, _) => Attempt::settled(Outcome::pass(
                "s3-bucket-found",
                format!("S3 bucket {bucket} exists (its region was not reported)"),
            )),
        },
        Head::Moved { status, region } => match (region.as_deref(), expected) {
            // The bucket is where it should be, yet S3 redirected the request: the endpoint
            // preflight was given serves another region, so access was not confirmed.
            (Some(actual), Some(expected)) if actual == expected => Attempt::settled(
                Outcome::warn(
                    "s3-bucket-redirected",
                    format!("S3 bucket {bucket} is in {actual} as expected, but the S3 endpoint preflight used redirected the request there ({status}): it serves another region, so access to the bucket ({ACTION}) was not confirmed"),
                )
                .hint(format!("Point preflight's S3 endpoint (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL) at {actual}'s, or unset it to use the regional endpoint of checks.s3-bucket.region."))
                .evidence("region", actual)
                .evidence("status", status.to_string()),
            ),
            (actual, expected) => {
                let mut wrong = wrong_region(
                    actual.unwrap_or("another region"),
                    expected.unwrap_or("the configured region"),
                );
                wrong.outcome = wrong.outcome.evidence("status", status.to_string());
                wrong
            }
        },
        Head::Propagating { region } => match (region.as_deref(), expected) {
            (Some(actual), Some(expected)) if actual != expected => wrong_region(actual, expected),
            (actual, _) => Attempt::transient(
                Outcome::fail(
                    "s3-bucket-propagating",
                    format!(
                        "S3 bucket {bucket}{} answered 307 Temporary Redirect: S3 is still propagating the new bucket's name to its endpoints",
                        actual.map(|r| format!(" (in {r})")).unwrap_or_default()
                    ),
                )
                .hint("A new bucket is reachable everywhere within minutes to hours: wait (preflight --wait retries), and recreate the bucket only if the redirect persists for a day."),
            ),
        },
        Head::Missing => Attempt::settled(
            Outcome::fail(
                "s3-bucket-not-found",
                format!("S3 bucket {bucket} does not exist"),
            )
            .hint(format!("Create it (the platform's Terraform creates goldenpath-{{env}}-loki for Loki, tier 2, wave 101), or set checks.s3-bucket.bucket to the bucket Loki's values name. {bucket} is free: no account owns it.")),
        ),
        Head::Forbidden => Attempt::settled(
            Outcome::fail(
                "aws-forbidden",
                format!("not allowed to {ACTION} for S3 bucket {bucket} (HeadBucket answered 403 Forbidden)"),
            )
            .hint(format!("Allow {ACTION} on arn:aws:s3:::{bucket} to the role preflight runs as (its IRSA role in the cluster). If it is allowed, the name belongs to a bucket of another account: S3 bucket names are global.")),
        ),
    }
}

/// What a failed `HeadBucket` says of the bucket, from its status and headers: HEAD answers
/// carry no body, so the SDK has no error code but "NotFound" to go by.
fn classify(err: &SdkError<HeadBucketError>, signed_for: Option<&str>) -> Option<Head> {
    let raw = err.raw_response()?;
    let region = raw.headers().get(REGION_HEADER);
    classify_status(raw.status().as_u16(), region, signed_for)
}

/// [`classify`] from the answer's status and `x-amz-bucket-region`, for a request signed for
/// `signed_for`; `None` for what the shared AWS error mapping judges.
fn classify_status(status: u16, region: Option<&str>, signed_for: Option<&str>) -> Option<Head> {
    let region = region.map(str::to_owned);
    match status {
        404 => Some(Head::Missing),
        403 => Some(Head::Forbidden),
        301 => Some(Head::Moved { status, region }),
        307 => Some(Head::Propagating { region }),
        // S3 answers 400 to a request signed for the wrong region, naming the right one. A
        // 400 naming the very region it was signed for is something else (an expired or
        // invalid token): not a redirect.
        400 if region.is_some() && region.as_deref() != signed_for => {
            Some(Head::Moved { status, region })
        }
        _ => None,
    }
}

/// The `s3-bucket` check.
#[derive(Debug)]
pub struct S3Bucket {
    bucket: String,
    region: Option<String>,
    force_path_style: bool,
}

impl S3Bucket {
    /// A check of the bucket `settings` names, in environment `env`.
    #[must_use]
    pub fn new(settings: &S3BucketSettings, env: &str) -> Self {
        S3Bucket {
            bucket: settings.bucket.as_ref().map_or_else(
                || format!("goldenpath-{env}-loki"),
                |b| b.replace("{env}", env),
            ),
            region: settings.region.clone(),
            force_path_style: settings.force_path_style,
        }
    }
}

impl Definition for S3Bucket {
    const ID: &'static str = "s3-bucket";
    const FAMILY: Family = Family::Aws;
    const DECLARED_BY: Option<PlatformFlag> = Some(PlatformFlag::S3Available);
    type Settings = S3BucketSettings;

    /// Loki (tier 2, wave 101) stores its chunks and index there.
    fn needed_by(_: &S3BucketSettings) -> NeededBy {
        NeededBy::tier(Tier::Two)
    }

    fn provided_by(_: &S3BucketSettings, _: &Site<'_>) -> Provider {
        Provider::Foundation("Terraform (S3)")
    }

    fn build(settings: &S3BucketSettings, site: &Site<'_>) -> Result<Built, String> {
        let check = S3Bucket::new(settings, &site.values.env.value);
        let title = match &check.region {
            Some(region) => format!("Loki's S3 bucket {} exists in {region}", check.bucket),
            None => format!("Loki's S3 bucket {} exists in this region", check.bucket),
        };
        Ok(Built::new(
            check,
            title,
            Self::provided_by(settings, site),
            &[],
        ))
    }
}

#[async_trait::async_trait]
impl Check for S3Bucket {
    fn reads(&self) -> Reads {
        Reads {
            kube: Vec::new(),
            iam: vec![IamGrant {
                action: ACTION,
                resource: format!("arn:aws:s3:::{}", self.bucket),
            }],
        }
    }

    async fn attempt(&self, ctx: &Context) -> Attempt {
        let Some(s3) = ctx.s3() else {
            return super::no_client();
        };
        let expected = self
            .region
            .clone()
            .or_else(|| s3.config().region().map(ToString::to_string));
        // Asked in the expected region, with the shared client (its credentials, endpoint and
        // HTTP client), re-addressed for this request only.
        let mut this_request = aws_sdk_s3::config::Builder::default();
        this_request.set_region(expected.clone().map(aws_sdk_s3::config::Region::new));
        this_request.set_force_path_style(self.force_path_style.then_some(true));
        let bucket = &self.bucket;
        let sent = s3
            .head_bucket()
            .bucket(bucket)
            .customize()
            .config_override(this_request)
            .send()
            .await;
        let head = match sent {
            Ok(output) => Head::Found {
                region: output.bucket_region().map(str::to_owned),
            },
            Err(e) => match classify(&e, expected.as_deref()) {
                Some(head) => head,
                // HEAD answers carry no body, hence no error code: the status names it.
                None => {
                    let status = e
                        .raw_response()
                        .map(|r| format!(" (HTTP {})", r.status().as_u16()))
                        .unwrap_or_default();
                    return super::failure(ACTION, &format!("S3 bucket {bucket}{status}"), &e);
                }
            },
        };
        judge(bucket, expected.as_deref(), &head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Retry;
    use crate::outcome::Status;

    #[test]
    fn judges_what_head_bucket_said() {
        let b = "goldenpath-dev-loki";
        let r = |r: Option<&str>| r.map(str::to_owned);
        let found = |region| Head::Found { region: r(region) };
        let moved = |region| Head::Moved {
            status: 301,
            region: r(region),
        };
        let propagating = |region| Head::Propagating { region: r(region) };
        let (eu, us) = (Some("eu-west-1"), Some("us-east-2"));
        let pass = || (Status::Pass, "s3-bucket-found", Retry::Never);
        let wrong = || (Status::Fail, "s3-bucket-wrong-region", Retry::Never);
        let redirected = || (Status::Warn, "s3-bucket-redirected", Retry::Never);
        let new = || (Status::Fail, "s3-bucket-propagating", Retry::Backoff);
        for (head, expected, (status, code, retry)) in [
            (found(eu), eu, pass()),
            (found(eu), None, pass()),
            (found(None), eu, pass()),
            (found(us), eu, wrong()),
            // A redirect is judged by the region it names, not by being a redirect.
            (moved(us), eu, wrong()),
            (moved(eu), eu, redirected()),
            (moved(None), eu, wrong()),
            (moved(None), None, wrong()),
            // 307: a new bucket; a wrong region only when it names another one.
            (propagating(eu), eu, new()),
            (propagating(None), eu, new()),
            (propagating(us), eu, wrong()),
            (
                Head::Missing,
                eu,
                (Status::Fail, "s3-bucket-not-found", Retry::Never),
            ),
            (
                Head::Forbidden,
                eu,
                (Status::Fail, "aws-forbidden", Retry::Never),
            ),
        ] {
            let a = judge(b, expected, &head);
            assert_eq!(
                (a.outcome.status, a.outcome.code.as_str(), a.retry),
                (status, code, retry),
                "{head:?} expecting {expected:?}"
            );
            if status != Status::Pass {
                assert!(a.outcome.hint.is_some(), "{head:?}");
            }
        }
        let elsewhere = judge(b, eu, &found(us)).outcome;
        assert_eq!(
            elsewhere.message,
            "S3 bucket goldenpath-dev-loki is in us-east-2, not eu-west-1: Loki's S3 client in eu-west-1 would be redirected"
        );
        assert_eq!(judge(b, eu, &moved(us)).outcome.message, elsewhere.message);
        let same = judge(b, eu, &moved(eu)).outcome;
        assert!(
            same.message
                .starts_with("S3 bucket goldenpath-dev-loki is in eu-west-1 as expected"),
            "{}",
            same.message
        );
        assert!(same.hint.expect("hint").contains("AWS_ENDPOINT_URL_S3"));
        let new = judge(b, eu, &propagating(eu)).outcome;
        assert_eq!(
            new.message,
            "S3 bucket goldenpath-dev-loki (in eu-west-1) answered 307 Temporary Redirect: S3 is still propagating the new bucket's name to its endpoints"
        );
        let forbidden = judge(b, None, &Head::Forbidden).outcome;
        assert!(
            forbidden
                .hint
                .expect("hint")
                .contains("s3:ListBucket on arn:aws:s3:::goldenpath-dev-loki")
        );
    }

    #[test]
    fn a_400_is_a_redirect_only_when_it_names_another_region_than_signed_for() {
        let (eu, us) = (Some("eu-west-1"), Some("us-east-2"));
        let moved = |status, region: Option<&str>| {
            Some(Head::Moved {
                status,
                region: region.map(str::to_owned),
            })
        };
        for (status, region, signed_for, head) in [
            (400, us, eu, moved(400, us)),
            (400, us, None, moved(400, us)),
            // Signed for the region it names: an expired or invalid token, not a redirect.
            (400, eu, eu, None),
            (400, None, eu, None),
            (301, eu, eu, moved(301, eu)),
            (301, us, eu, moved(301, us)),
            (404, None, eu, Some(Head::Missing)),
            (403, eu, eu, Some(Head::Forbidden)),
            (
                307,
                eu,
                eu,
                Some(Head::Propagating {
                    region: Some("eu-west-1".into()),
                }),
            ),
            (500, eu, eu, None),
        ] {
            assert_eq!(
                classify_status(status, region, signed_for),
                head,
                "{status} naming {region:?}, signed for {signed_for:?}"
            );
        }
        // The message keeps the status S3 answered.
        let b = "goldenpath-dev-loki";
        for status in [301, 400] {
            let o = judge(
                b,
                eu,
                &Head::Moved {
                    status,
                    region: Some("eu-west-1".into()),
                },
            )
            .outcome;
            assert!(
                o.message
                    .contains(&format!("redirected the request there ({status})")),
                "{}",
                o.message
            );
        }
    }

    #[test]
    fn names_the_bucket_by_convention() {
        let check = S3Bucket::new(&S3BucketSettings::default(), "dev");
        assert_eq!(check.bucket, "goldenpath-dev-loki");
        assert_eq!(
            check.reads().iam,
            vec![IamGrant {
                action: "s3:ListBucket",
                resource: "arn:aws:s3:::goldenpath-dev-loki".into()
            }]
        );
        let named = S3Bucket::new(
            &S3BucketSettings {
                bucket: Some("logs-{env}".into()),
                ..S3BucketSettings::default()
            },
            "prod",
        );
        assert_eq!(named.bucket, "logs-prod");
    }
}
