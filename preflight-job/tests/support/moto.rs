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

    /// An RDS client for setting up instances.
    pub(crate) async fn rds(&self) -> aws_sdk_rds::Client {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.url)
            .region(aws_config::Region::new(REGION))
            .credentials_provider(aws_sdk_rds::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .load()
            .await;
        aws_sdk_rds::Client::new(&config)
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

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
