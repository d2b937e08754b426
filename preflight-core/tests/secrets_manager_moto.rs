//! The `secrets-manager` check against moto's Secrets Manager (moto's server from PyPI, in the
//! virtualenv `scripts/test-venv.sh` creates): present, incomplete, malformed, binary, deleted
//! and missing secrets, read through the real SDK, and no value in any outcome.

use preflight_core::check::{Check, Context, Retry};
use preflight_core::checks::aws::{RemoteSecretSettings, SecretsManager, SecretsManagerSettings};
use preflight_core::outcome::Status;

// The same moto harness as the binary's end-to-end tests.
#[allow(
    dead_code,
    clippy::unwrap_used,
    reason = "the shared harness: only its Secrets Manager part is used here, and it stops on a broken setup"
)]
#[path = "../../preflight-job/tests/support/moto.rs"]
mod moto;

use moto::{Moto, REGION};

/// A value no message may show.
const VALUE: &str = "s3cr3t-value";

/// The SDK configuration preflight itself would load, pointed at moto.
async fn sdk_config(moto: &Moto) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&moto.url)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await
}

/// A check of one app's secret under the platform's naming convention in `dev`.
fn check_of(app: &str) -> SecretsManager {
    let settings = SecretsManagerSettings {
        secrets: vec![RemoteSecretSettings {
            app: app.to_owned(),
            name: None,
            properties: vec!["username".to_owned(), "password".to_owned()],
        }],
    };
    SecretsManager::new(&settings, "dev")
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_manager_judges_secrets_read_from_moto_without_showing_values() {
    let moto = Moto::start();
    let config = sdk_config(&moto).await;
    let sm = aws_sdk_secretsmanager::Client::new(&config);
    let create = |name: &'static str, text: &'static str| {
        sm.create_secret().name(name).secret_string(text).send()
    };
    for (name, text) in [
        (
            "goldenpath/dev/backstage/postgres",
            r#"{"username":"backstage_app","password":"s3cr3t-value","host":"db.internal","port":5432}"#,
        ),
        (
            "goldenpath/dev/grafana/postgres",
            r#"{"username":"grafana","pasword":"s3cr3t-value"}"#,
        ),
        ("goldenpath/dev/keycloak/postgres", "password=s3cr3t-value"),
        (
            "goldenpath/dev/loki/postgres",
            r#"["backstage_app","s3cr3t-value"]"#,
        ),
        (
            "goldenpath/dev/oidc/postgres",
            r#"{"username":"oidc","password":"s3cr3t-value"}"#,
        ),
    ] {
        create(name, text)
            .await
            .unwrap_or_else(|e| panic!("moto creates {name}: {e}"));
    }
    sm.create_secret()
        .name("goldenpath/dev/argocd/postgres")
        .secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(
            VALUE.as_bytes(),
        ))
        .send()
        .await
        .expect("moto creates the binary secret");
    sm.delete_secret()
        .secret_id("goldenpath/dev/oidc/postgres")
        .send()
        .await
        .expect("moto schedules the deletion");

    let ctx = Context::default().with_aws(&config);
    for (app, status, code, says) in [
        (
            "backstage",
            Status::Pass,
            "remote-secrets-present",
            "goldenpath/dev/backstage/postgres (backstage: username, password)",
        ),
        (
            "grafana",
            Status::Fail,
            "remote-secret-properties-missing",
            "lacks property password (it has only pasword, username)",
        ),
        (
            "keycloak",
            Status::Fail,
            "remote-secret-malformed",
            "it is not JSON",
        ),
        (
            "loki",
            Status::Fail,
            "remote-secret-malformed",
            "it is a JSON array",
        ),
        (
            "argocd",
            Status::Fail,
            "remote-secret-malformed",
            "it is binary",
        ),
        (
            "oidc",
            Status::Fail,
            "remote-secret-missing",
            "scheduled for deletion",
        ),
        (
            "nobody",
            Status::Fail,
            "remote-secret-missing",
            "goldenpath/dev/nobody/postgres (app nobody) does not exist",
        ),
    ] {
        let attempt = check_of(app).attempt(&ctx).await;
        let outcome = &attempt.outcome;
        assert_eq!(
            (outcome.status, outcome.code.as_str(), &attempt.retry),
            (status, code, &Retry::Never),
            "{app}: {outcome:?}"
        );
        assert!(outcome.message.contains(says), "{app}: {}", outcome.message);
        let shown = format!(
            "{} {} {:?} {attempt:?}",
            outcome.message,
            outcome.hint.clone().unwrap_or_default(),
            outcome.evidence
        );
        assert!(!shown.contains(VALUE), "{app}: a value leaked: {shown}");
        assert!(!shown.contains("5432"), "{app}: a value leaked: {shown}");
    }

    // Two apps' secrets, read concurrently: one outcome that names the incomplete secret.
    let settings = SecretsManagerSettings {
        secrets: ["backstage", "grafana"]
            .map(|app| RemoteSecretSettings {
                app: app.to_owned(),
                name: None,
                properties: vec!["username".to_owned(), "password".to_owned()],
            })
            .to_vec(),
    };
    let both = SecretsManager::new(&settings, "dev").attempt(&ctx).await;
    assert_eq!(
        both.outcome.code, "remote-secret-properties-missing",
        "{both:?}"
    );
    assert!(
        both.outcome
            .message
            .contains("goldenpath/dev/grafana/postgres")
    );
    assert!(!both.outcome.message.contains("backstage"), "{both:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_manager_unreachable_api_is_transient() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let attempt = check_of("backstage")
        .attempt(&Context::default().with_aws(&config))
        .await;
    assert_eq!(
        (attempt.outcome.code.as_str(), &attempt.retry),
        ("aws-unreachable", &Retry::Backoff),
        "{attempt:?}"
    );
}
