//! moto's server (from PyPI, in the virtualenv `tests/run.sh` creates) standing in for the AWS
//! APIs, on a loopback port, stopped when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The region the tests use.
pub(crate) const REGION: &str = "eu-west-1";

/// Where `tests/run.sh` installs moto; `PREFLIGHT_MOTO_SERVER` overrides.
fn moto_server() -> PathBuf {
    std::env::var_os("PREFLIGHT_MOTO_SERVER").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-venv/bin/moto_server"),
        PathBuf::from,
    )
}

/// A running moto server.
pub(crate) struct Moto {
    pub(crate) url: String,
    child: Child,
}

impl Moto {
    /// Starts moto on a free port and waits until it answers.
    pub(crate) fn start() -> Moto {
        let program = moto_server();
        assert!(
            program.exists(),
            "{} is missing: run ./tests/run.sh, which installs moto in a virtualenv",
            program.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let moto = Moto {
            url: format!("http://127.0.0.1:{port}"),
            child,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// Points an AWS SDK process (preflight) at this server with dummy credentials.
    pub(crate) fn env(&self, cmd: &mut tokio::process::Command) {
        cmd.env("AWS_ENDPOINT_URL", &self.url)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE");
    }

    /// The SDK configuration of the clients that set up the test's AWS state.
    async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.url)
            .region(aws_config::Region::new(REGION))
            .credentials_provider(aws_sdk_rds::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .load()
            .await
    }

    /// An RDS client for setting up instances.
    pub(crate) async fn rds(&self) -> aws_sdk_rds::Client {
        aws_sdk_rds::Client::new(&self.sdk_config().await)
    }

    /// A Route53 client for setting up zones and records.
    pub(crate) async fn route53(&self) -> aws_sdk_route53::Client {
        aws_sdk_route53::Client::new(&self.sdk_config().await)
    }

    /// A Secrets Manager client for setting up remote secrets.
    pub(crate) async fn secrets_manager(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.sdk_config().await)
    }

    /// Creates a secret whose SecretString is `json` (or any text: malformed ones too).
    pub(crate) async fn create_secret(&self, name: &str, json: &str) {
        self.secrets_manager()
            .await
            .create_secret()
            .name(name)
            .secret_string(json)
            .send()
            .await
            .unwrap_or_else(|e| panic!("moto creates secret {name}: {e}"));
    }

    /// Creates a hosted zone and returns its id (`Z…`).
    pub(crate) async fn create_zone(&self, name: &str, private: bool) -> String {
        use aws_sdk_route53::types::{HostedZoneConfig, Vpc, VpcRegion};
        let mut request = self
            .route53()
            .await
            .create_hosted_zone()
            .name(name)
            .caller_reference(format!("{name}-{private}"))
            .hosted_zone_config(HostedZoneConfig::builder().private_zone(private).build());
        if private {
            request = request.vpc(
                Vpc::builder()
                    .vpc_region(VpcRegion::from(REGION))
                    .vpc_id("vpc-0a1b2c3d")
                    .build(),
            );
        }
        let created = request.send().await.expect("moto creates the zone");
        created
            .hosted_zone()
            .map(|z| z.id().trim_start_matches("/hostedzone/").to_owned())
            .expect("a zone id")
    }

    /// Creates record sets `(name, type, value)` in a zone; an UPSERT counts twice against
    /// Route53's limit of 1,000 records per change batch.
    pub(crate) async fn add_records(&self, zone: &str, records: &[(String, &str, String)]) {
        use aws_sdk_route53::types::{
            Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
        };
        let route53 = self.route53().await;
        for chunk in records.chunks(500) {
            let changes = chunk
                .iter()
                .map(|(name, kind, value)| {
                    let set = ResourceRecordSet::builder()
                        .name(name)
                        .r#type(RrType::from(*kind))
                        .ttl(300)
                        .resource_records(ResourceRecord::builder().value(value).build().unwrap())
                        .build()
                        .unwrap();
                    Change::builder()
                        .action(ChangeAction::Upsert)
                        .resource_record_set(set)
                        .build()
                        .unwrap()
                })
                .collect::<Vec<_>>();
            route53
                .change_resource_record_sets()
                .hosted_zone_id(zone)
                .change_batch(
                    ChangeBatch::builder()
                        .set_changes(Some(changes))
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .expect("moto takes the records");
        }
    }

    /// Creates a DB instance and returns its endpoint address.
    pub(crate) async fn create_instance(&self, id: &str, engine: &str) -> String {
        let created = self
            .rds()
            .await
            .create_db_instance()
            .db_instance_identifier(id)
            .engine(engine)
            .db_instance_class("db.t3.micro")
            .allocated_storage(20)
            .master_username("platform")
            .master_user_password("not-a-real-password")
            .send()
            .await
            .expect("moto creates the instance");
        created
            .db_instance()
            .and_then(|d| d.endpoint())
            .and_then(|e| e.address())
            .map(str::to_owned)
            .expect("an endpoint")
    }
}

/// The TXT value ExternalDNS writes to mark a record as owned by `owner`.
pub(crate) fn ownership_txt(owner: &str, resource: &str) -> String {
    format!("\"heritage=external-dns,external-dns/owner={owner},external-dns/resource={resource}\"")
}

/// The records ExternalDNS writes for `host` in the given format: the A record and its
/// ownership TXT, under the same name (before v0.18) or with the record type prefixed.
pub(crate) fn external_dns_records(
    host: &str,
    owner: &str,
    resource: &str,
    prefixed: bool,
) -> Vec<(String, &'static str, String)> {
    let txt_name = if prefixed {
        format!("a-{host}")
    } else {
        host.to_owned()
    };
    vec![
        (txt_name, "TXT", ownership_txt(owner, resource)),
        (host.to_owned(), "A", "10.0.12.34".to_owned()),
    ]
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
