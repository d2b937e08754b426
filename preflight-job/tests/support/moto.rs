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

/// moto's server, started as its `moto_server` script starts it, with its IAM enforcement
/// corrected where it decided otherwise than IAM for the calls preflight makes (a GET's
/// signature, the resources of the calls, IAM's `?` wildcard): see the file. Nothing changes
/// while IAM is not enforced.
const MOTO_SERVER: &str = include_str!("moto_server.py");

/// The Python interpreter of a script, from its `#!` line.
fn python_of(script: &std::path::Path) -> PathBuf {
    let text = std::fs::read_to_string(script)
        .unwrap_or_else(|e| panic!("{} is unreadable: {e}", script.display()));
    let interpreter = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("#!"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("{} has no #! line", script.display()));
    PathBuf::from(interpreter)
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
        let child = Command::new(python_of(&program))
            .arg("-c")
            .arg(MOTO_SERVER)
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

/// The account moto's resources live in.
pub(crate) const ACCOUNT: &str = "123456789012";

/// IAM, EKS and S3: the IRSA roles, the cluster's OIDC issuer and Loki's bucket.
impl Moto {
    /// An IAM client (IAM is global; moto serves it on the same endpoint).
    pub(crate) async fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.sdk_config().await)
    }

    /// An EKS client for setting up clusters.
    pub(crate) async fn eks(&self) -> aws_sdk_eks::Client {
        aws_sdk_eks::Client::new(&self.sdk_config().await)
    }

    /// An S3 client in `region` (addressed by path: the endpoint is an IP address).
    pub(crate) async fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.sdk_config().await)
            .region(aws_config::Region::new(region.to_owned()))
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// Creates a role trusting `trust_json` and returns its ARN.
    pub(crate) async fn create_role(&self, name: &str, trust_json: &str) -> String {
        let created = self
            .iam()
            .await
            .create_role()
            .role_name(name)
            .assume_role_policy_document(trust_json)
            .send()
            .await
            .unwrap_or_else(|e| panic!("moto creates role {name}: {e:?}"));
        created.role().map(|r| r.arn().to_owned()).expect("a role")
    }

    /// Replaces a role's trust policy.
    pub(crate) async fn set_trust(&self, name: &str, trust_json: &str) {
        self.iam()
            .await
            .update_assume_role_policy()
            .role_name(name)
            .policy_document(trust_json)
            .send()
            .await
            .unwrap_or_else(|e| panic!("moto updates role {name}'s trust: {e:?}"));
    }

    /// Deletes a role.
    pub(crate) async fn delete_role(&self, name: &str) {
        self.iam()
            .await
            .delete_role()
            .role_name(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("moto deletes role {name}: {e:?}"));
    }

    /// Creates an EKS cluster in the tests' region and returns its OIDC issuer URL, which moto
    /// makes up (`https://oidc.eks.{region}.amazonaws.com/id/…`), as EKS does.
    pub(crate) async fn create_cluster(&self, name: &str) -> String {
        self.create_cluster_in(name, REGION).await
    }

    /// [`Moto::create_cluster`] in `region`. moto draws one issuer id per process, so only
    /// clusters of different regions have different issuers.
    pub(crate) async fn create_cluster_in(&self, name: &str, region: &str) -> String {
        use aws_sdk_eks::types::VpcConfigRequest;
        let config = aws_sdk_eks::config::Builder::from(&self.sdk_config().await)
            .region(aws_config::Region::new(region.to_owned()))
            .build();
        let created = aws_sdk_eks::Client::from_conf(config)
            .create_cluster()
            .name(name)
            .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/{name}-cluster"))
            .resources_vpc_config(
                VpcConfigRequest::builder()
                    .subnet_ids("subnet-0a1b2c3d")
                    .build(),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("moto creates cluster {name}: {e:?}"));
        created
            .cluster()
            .and_then(|c| c.identity())
            .and_then(|i| i.oidc())
            .and_then(|o| o.issuer())
            .map(str::to_owned)
            .expect("an issuer")
    }

    /// Registers `issuer` as an IAM OIDC provider for IRSA (audience `sts.amazonaws.com`)
    /// and returns its ARN.
    pub(crate) async fn create_oidc_provider(&self, issuer: &str) -> String {
        let created = self
            .iam()
            .await
            .create_open_id_connect_provider()
            .url(issuer)
            .client_id_list("sts.amazonaws.com")
            .thumbprint_list("9e99a48a9960b14926bb7f3b02e22da2b0ab7280")
            .send()
            .await
            .unwrap_or_else(|e| panic!("moto registers {issuer}: {e:?}"));
        created
            .open_id_connect_provider_arn()
            .map(str::to_owned)
            .expect("a provider ARN")
    }

    /// Deletes an OIDC provider.
    pub(crate) async fn delete_oidc_provider(&self, arn: &str) {
        self.iam()
            .await
            .delete_open_id_connect_provider()
            .open_id_connect_provider_arn(arn)
            .send()
            .await
            .unwrap_or_else(|e| panic!("moto deletes {arn}: {e:?}"));
    }

    /// Creates a bucket in `region`.
    pub(crate) async fn create_bucket(&self, name: &str, region: &str) {
        use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
        let mut request = self.s3(region).await.create_bucket().bucket(name);
        // us-east-1 is the one region that takes no location constraint.
        if region != "us-east-1" {
            request = request.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        request
            .send()
            .await
            .unwrap_or_else(|e| panic!("moto creates bucket {name}: {e:?}"));
    }

    /// Creates an IAM user with no permissions and returns its access key id and secret.
    pub(crate) async fn user_without_permissions(&self, name: &str) -> (String, String) {
        let iam = self.iam().await;
        iam.create_user()
            .user_name(name)
            .send()
            .await
            .expect("moto creates the user");
        let key = iam
            .create_access_key()
            .user_name(name)
            .send()
            .await
            .expect("moto creates an access key");
        let key = key.access_key().expect("a key");
        (
            key.access_key_id().to_owned(),
            key.secret_access_key().to_owned(),
        )
    }

    /// From now on, moto authenticates every request and authorizes it against the caller's
    /// IAM policies (moto's `INITIAL_NO_AUTH_ACTION_COUNT`, set to 0 through its reset-auth
    /// API). Set up the AWS state first: the test's own clients have no IAM identity.
    pub(crate) fn enforce_iam(&self) {
        self.enforce_iam_after(0);
    }

    /// [`Moto::enforce_iam`] after `unauthenticated` more requests, which moto serves without
    /// looking at their signature: an unsigned STS `AssumeRoleWithWebIdentity` (which AWS
    /// authorizes by the web identity token and the role's trust policy, and moto, enforcing,
    /// would refuse for want of a signature) is then the one request let through.
    pub(crate) fn enforce_iam_after(&self, unauthenticated: u32) {
        self.reset_auth(&unauthenticated.to_string());
    }

    /// Stops authorizing requests, so that the test's own clients can change IAM again.
    pub(crate) fn stop_enforcing_iam(&self) {
        self.reset_auth("inf");
    }

    fn reset_auth(&self, count: &str) {
        use std::io::{Read, Write};
        let authority = self.url.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(authority).expect("moto answers");
        write!(
            stream,
            "POST /moto-api/reset-auth HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{count}",
            count.len()
        )
        .expect("writes");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("reads");
        assert!(answer.starts_with("HTTP/1.1 200"), "reset-auth: {answer}");
    }

    /// moto's whole state, as its `/moto-api/data.json` dumps it.
    pub(crate) fn state(&self) -> serde_json::Value {
        use std::io::{Read, Write};
        let authority = self.url.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(authority).expect("moto answers");
        write!(
            stream,
            "GET /moto-api/data.json HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
        )
        .expect("writes");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("reads");
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        serde_json::from_str(body).unwrap_or_else(|e| panic!("data.json: {e}: {answer}"))
    }

    /// The roles STS handed credentials for so far, as moto keeps them: `role_arn`,
    /// `session_name`, `access_key_id`, `secret_access_key`, `session_token`.
    pub(crate) fn assumed_roles(&self) -> Vec<serde_json::Value> {
        self.state()["sts"]["AssumedRole"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Creates an IAM user whose only permissions are the inline policy `policy` (a JSON
    /// document) and returns its access key id and secret.
    pub(crate) async fn user_with_policy(&self, name: &str, policy: &str) -> (String, String) {
        let key = self.user_without_permissions(name).await;
        self.iam()
            .await
            .put_user_policy()
            .user_name(name)
            .policy_name("preflight")
            .policy_document(policy)
            .send()
            .await
            .unwrap_or_else(|e| panic!("moto takes {name}'s policy: {e:?}"));
        key
    }

    /// Gives a role the inline policy `policy` (a JSON document).
    pub(crate) async fn put_role_policy(&self, role: &str, policy: &str) {
        self.iam()
            .await
            .put_role_policy()
            .role_name(role)
            .policy_name("preflight")
            .policy_document(policy)
            .send()
            .await
            .unwrap_or_else(|e| panic!("moto takes {role}'s policy: {e:?}"));
    }
}

/// The ServiceAccounts `irsa-roles` checks by default (namespace, name); each one's role is
/// `goldenpath-{env}-{name}`.
pub(crate) const IRSA_ACCOUNTS: [(&str, &str); 5] = [
    ("external-secrets", "external-secrets"),
    ("external-dns", "external-dns"),
    ("kube-system", "cluster-autoscaler"),
    ("kube-system", "aws-load-balancer-controller"),
    ("kube-system", "ebs-csi-controller-sa"),
];

impl Moto {
    /// What Terraform creates for IRSA in `env`: the EKS cluster `goldenpath-{env}`, its
    /// issuer registered as an OIDC provider (once: moto gives every cluster of a region the
    /// same issuer), and each controller's role trusting exactly its ServiceAccount, except
    /// where `subject` says otherwise for a ServiceAccount name.
    pub(crate) async fn create_irsa(
        &self,
        env: &str,
        subject: impl Fn(&str, &str) -> String,
    ) -> String {
        let issuer = self.create_cluster(&format!("goldenpath-{env}")).await;
        let host = issuer.trim_start_matches("https://");
        let provider = format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{host}");
        let registered = self
            .iam()
            .await
            .get_open_id_connect_provider()
            .open_id_connect_provider_arn(&provider)
            .send()
            .await
            .is_ok();
        if !registered {
            assert_eq!(self.create_oidc_provider(&issuer).await, provider);
        }
        for (namespace, name) in IRSA_ACCOUNTS {
            self.create_role(
                &format!("goldenpath-{env}-{name}"),
                &irsa_trust(&provider, &issuer, &subject(namespace, name)),
            )
            .await;
        }
        issuer
    }
}

/// A ServiceAccount's IRSA subject, `system:serviceaccount:{ns}:{name}`.
pub(crate) fn irsa_subject(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// The trust policy an IRSA role needs: `provider` may assume it with web identity for
/// exactly `subject`, with EKS's audience, as the platform's Terraform writes it.
pub(crate) fn irsa_trust(provider: &str, issuer: &str, subject: &str) -> String {
    let host = issuer.trim_start_matches("https://");
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                format!("{host}:sub"): subject,
                format!("{host}:aud"): "sts.amazonaws.com",
            }},
        }],
    })
    .to_string()
}

/// What [`S3Stub`] answers to `HEAD /{bucket}`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum S3Answer {
    /// As a regional S3 endpoint does for a bucket in this region: 200 to a request signed
    /// for it, 301 Moved Permanently naming it to a request signed for another.
    Regional(&'static str),
    /// 301 Moved Permanently naming this region, whatever the request.
    Moved(&'static str),
    /// 307 Temporary Redirect naming this region: a new bucket whose name S3 is still
    /// propagating.
    Temporary(&'static str),
    /// 400 Bad Request naming this region, whatever the request: what S3 answers a request
    /// it refuses for another reason than its signing region (an expired or invalid token)
    /// when the request was signed for the bucket's own region.
    BadRequest(&'static str),
}

/// A minimal stand-in for an S3 endpoint that answers HeadBucket with the redirects moto never
/// sends (moto answers 200, with the bucket's region, to a request for any region). Built
/// from the response shape AWS documents for HeadBucket (status, `x-amz-bucket-region`,
/// `x-amz-request-id`, `x-amz-id-2`, `Server: AmazonS3`, no body), on a loopback port; reached
/// by pointing the binary at it with `AWS_ENDPOINT_URL_S3`. It records the region each request
/// was signed for (the SigV4 credential scope), stopped when dropped.
pub(crate) struct S3Stub {
    pub(crate) url: String,
    signed: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    port: u16,
}

impl S3Stub {
    /// Starts the stub on a free loopback port.
    pub(crate) fn start(answer: S3Answer) -> S3Stub {
        use std::io::{BufRead, BufReader, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().expect("an address").port();
        let signed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (log, stopped) = (signed.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("a stream"));
                let mut region = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    // Authorization: AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/s3/aws4_request, …
                    let scope = line.split("Credential=").nth(1);
                    if let (true, Some(scope)) = (
                        line.to_ascii_lowercase().starts_with("authorization:"),
                        scope,
                    ) {
                        region = scope.split('/').nth(2).unwrap_or_default().to_owned();
                    }
                }
                log.lock().unwrap().push(region.clone());
                let (status, bucket_region) = match answer {
                    S3Answer::Regional(r) if r == region => ("200 OK", r),
                    S3Answer::Regional(r) | S3Answer::Moved(r) => ("301 Moved Permanently", r),
                    S3Answer::Temporary(r) => ("307 Temporary Redirect", r),
                    S3Answer::BadRequest(r) => ("400 Bad Request", r),
                };
                let location = if status.starts_with("307") {
                    format!("Location: https://s3.{bucket_region}.amazonaws.com/\r\n")
                } else {
                    String::new()
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nx-amz-bucket-region: {bucket_region}\r\nx-amz-request-id: 4442587FB7D0A2F9\r\nx-amz-id-2: stub\r\nContent-Type: application/xml\r\n{location}Server: AmazonS3\r\nConnection: close\r\n\r\n"
                );
            }
        });
        S3Stub {
            url: format!("http://127.0.0.1:{port}"),
            signed,
            stop,
            port,
        }
    }

    /// The regions the requests so far were signed for, in order.
    pub(crate) fn signed_regions(&self) -> Vec<String> {
        self.signed.lock().unwrap().clone()
    }
}

impl Drop for S3Stub {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wakes the accepting thread, which then sees the flag.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// A stand-in for an AWS JSON service that throttles: it answers the first `throttled`
/// requests as AWS does when a caller exceeds its rate (400 `ThrottlingException`, with a
/// request id and no other effect), then forwards every request to moto as it came and
/// moto's answer back as it went. It records when each request arrived and whether it was
/// throttled; reached with a per-service endpoint variable (`AWS_ENDPOINT_URL_SECRETS_MANAGER`);
/// stopped when dropped.
pub(crate) struct ThrottleStub {
    pub(crate) url: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<(Instant, bool)>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    port: u16,
}

impl ThrottleStub {
    /// Starts the stub in front of `moto`, throttling the first `throttled` requests
    /// (`usize::MAX`: every one).
    pub(crate) fn start(moto: &Moto, throttled: usize) -> ThrottleStub {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().expect("an address").port();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (log, stopped) = (requests.clone(), stop.clone());
        let upstream = moto.url.trim_start_matches("http://").to_owned();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let throttle = {
                    let mut log = log.lock().unwrap();
                    let throttle = log.len() < throttled;
                    log.push((Instant::now(), throttle));
                    throttle
                };
                let upstream = upstream.clone();
                std::thread::spawn(move || serve_throttled(stream, &upstream, throttle));
            }
        });
        ThrottleStub {
            url: format!("http://127.0.0.1:{port}"),
            requests,
            stop,
            port,
        }
    }

    /// When each request arrived, and whether it was throttled, in order.
    pub(crate) fn requests(&self) -> Vec<(Instant, bool)> {
        self.requests.lock().unwrap().clone()
    }
}

/// One request to [`ThrottleStub`]: read whole, then throttled or forwarded.
fn serve_throttled(mut stream: std::net::TcpStream, upstream: &str, throttle: bool) {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut reader = BufReader::new(stream.try_clone().expect("a stream"));
    let mut head = Vec::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(n) = lower.strip_prefix("content-length:") {
            length = n.trim().parse().unwrap_or(0);
        }
        // One request per connection: both sides are told so.
        if !lower.starts_with("connection:") {
            head.push(line);
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let answer = if throttle {
        let body = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
        format!(
            "HTTP/1.1 400 Bad Request\r\nx-amzn-RequestId: 6d4f1c2e-throttled\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    } else {
        let Ok(mut moto) = std::net::TcpStream::connect(upstream) else {
            return;
        };
        let mut request = head.concat().into_bytes();
        request.extend_from_slice(b"Connection: close\r\n\r\n");
        request.extend_from_slice(&body);
        let mut answer = Vec::new();
        if moto.write_all(&request).is_err() || moto.read_to_end(&mut answer).is_err() {
            return;
        }
        answer
    };
    let _ = stream.write_all(&answer);
}

impl Drop for ThrottleStub {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}
