//! Checks against AWS APIs, one file per check, through clients built from `aws-config`'s
//! default chain (IRSA web identity in the cluster, the usual variables and profiles
//! elsewhere). Failed calls map to outcomes here, the same way for every AWS API.

mod dns_scope;
mod image_architecture;
mod irsa_roles;
mod rds_instance;
mod route53_zone;
mod s3_bucket;
mod secrets_manager;

pub use dns_scope::{DnsScope, DnsScopeSettings, Scope};
pub use image_architecture::{ConfiguredImage, ImageArchitecture, ImageArchitectureSettings};
pub use irsa_roles::{IrsaRoleSettings, IrsaRoles, IrsaRolesSettings};
pub(crate) use rds_instance::describe as describe_instance;
pub(crate) use rds_instance::instance_identifier;
pub use rds_instance::{HostInSecret, RdsInstance, RdsSettings};
pub use route53_zone::{Route53Zone, Route53ZoneSettings};
pub use s3_bucket::{S3Bucket, S3BucketSettings};
#[cfg(test)]
pub(crate) use secrets_manager::parse_properties;
pub(crate) use secrets_manager::{
    RemoteSecret, fetch_remote, remote_secret_grant, remote_secret_name,
};
pub use secrets_manager::{RemoteSecretSettings, SecretsManager, SecretsManagerSettings};

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::check::Attempt;
use crate::outcome::{Outcome, error_chain};

/// Maps a failed AWS call to an attempt. `action` is the IAM action the call needs (named in
/// the hint when it is denied), `what` the object it was about, for messages. Service errors
/// that mean "not found" are the caller's to handle before this.
///
/// An HTTP 403 whose body names no error code is a denial too: AWS's own 403s carry a code
/// (`AccessDenied`), but an answer without a readable body (a proxy answering for the API,
/// moto's REST services, which wrap or omit the error) can only mean the same.
pub(crate) fn failure<E>(action: &str, what: &str, err: &SdkError<E, HttpResponse>) -> Attempt
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let service = action.split(':').next().unwrap_or(action).to_uppercase();
    let unread = err
        .as_service_error()
        .is_some_and(|e| e.code().is_none_or(str::is_empty));
    if unread
        && err
            .raw_response()
            .is_some_and(|r| r.status().as_u16() == 403)
    {
        return Attempt::settled(
            Outcome::fail(
                "aws-forbidden",
                format!("not allowed to {action} for {what} (HTTP 403)"),
            )
            .hint(format!(
                "Allow {action} to the role preflight runs as (its IRSA role in the cluster)."
            )),
        );
    }
    if let Some(e) = err.as_service_error() {
        let code = e.code().unwrap_or("Unknown");
        let message = e.message().unwrap_or_default();
        return match code {
            "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" => Attempt::settled(
                Outcome::fail(
                    "aws-forbidden",
                    format!("not allowed to {action} for {what}: {message}"),
                )
                .hint(format!(
                    "Allow {action} to the role preflight runs as (its IRSA role in the cluster)."
                )),
            ),
            "Throttling"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "PriorRequestNotComplete" => Attempt::transient(Outcome::fail(
                "aws-throttled",
                format!("{service} throttled the request for {what}: {message}"),
            )),
            _ => Attempt::transient(Outcome::fail(
                "aws-error",
                format!("{service} answered {code} for {what}: {message}"),
            )),
        };
    }
    let chain = error_chain(err);
    if chain.to_lowercase().contains("credentials") {
        return Attempt::settled(
            Outcome::fail("aws-credentials", format!("no AWS credentials to {action} for {what}: {chain}"))
                .hint("In the cluster, annotate preflight's ServiceAccount with eks.amazonaws.com/role-arn (IRSA); elsewhere, provide credentials the usual way (AWS_PROFILE, variables)."),
        );
    }
    Attempt::transient(
        Outcome::fail("aws-unreachable", format!("cannot reach the {service} API: {chain}"))
            .hint(format!("Check the region and the network path to the AWS API (NAT gateway, or a VPC endpoint for {service} where one exists).")),
    )
}

/// The failed attempt of a check planned without an AWS client.
pub(crate) fn no_client() -> Attempt {
    Attempt::settled(Outcome::fail(
        "no-aws-client",
        "no AWS client is configured",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Retry;
    use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn answered(status: u16, code: Option<&str>) -> SdkError<GetSecretValueError, HttpResponse> {
        let mut meta = ErrorMetadata::builder().message("m");
        if let Some(code) = code {
            meta = meta.code(code);
        }
        let status = StatusCode::try_from(status).expect("a status");
        SdkError::service_error(
            GetSecretValueError::generic(meta.build()),
            HttpResponse::new(status, SdkBody::empty()),
        )
    }

    /// A 403 is a denial whether or not its body could be read; other unread answers stay
    /// errors to retry.
    #[test]
    fn maps_denials_throttling_and_the_rest() {
        for (status, code, outcome, retry) in [
            (
                400,
                Some("AccessDeniedException"),
                "aws-forbidden",
                Retry::Never,
            ),
            (403, None, "aws-forbidden", Retry::Never),
            (403, Some(""), "aws-forbidden", Retry::Never),
            (
                400,
                Some("ThrottlingException"),
                "aws-throttled",
                Retry::Backoff,
            ),
            (400, Some("Throttling"), "aws-throttled", Retry::Backoff),
            (500, None, "aws-error", Retry::Backoff),
        ] {
            let attempt = failure(
                "secretsmanager:GetSecretValue",
                "secret s",
                &answered(status, code),
            );
            assert_eq!(
                (attempt.outcome.code.as_str(), attempt.retry),
                (outcome, retry),
                "{status} {code:?}"
            );
        }
    }
}
