//! TLS set up once: one connector per trust setting, built on first use and shared by every
//! client and attempt that trusts the same CAs, and the system's CAs read by OpenSSL one at a
//! time, when a chain needs them, rather than whole for every connector.
//!
//! Where the CPU of a run went before (`cargo bench -p preflight-job --bench cpu`): OpenSSL 3
//! decodes every certificate of the system's bundle (~150 on Debian, each through its provider
//! decoders) whenever a connector is built, and native-tls does it twice per connector
//! (`SslConnector::builder` loads OpenSSL's default file, then native-tls loads the file
//! `openssl-probe` found), even for a connector that then trusts only a private bundle: some
//! 250 million instructions per load, over two thirds of a tier-3 run. psql, with
//! `sslrootcert`, decodes only the one CA it is given.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use native_tls::{Protocol, TlsConnector};
use tokio::sync::OnceCell;

use crate::trust::{CaBundle, CaBundleError};

/// The variables through which OpenSSL, native-tls (`openssl-probe`) and rustls
/// (`rustls-native-certs`, the AWS SDK's client) find the system's CAs.
const CERT_FILE: &str = "SSL_CERT_FILE";
const CERT_DIR: &str = "SSL_CERT_DIR";

/// The system's CAs, read on demand from OpenSSL's hashed CA directory (the layout of
/// `update-ca-certificates` and `c_rehash`: one file per CA, found by the hash of its subject)
/// instead of from the one bundle file every connector would otherwise decode whole.
///
/// It is a setting of the process: the TLS libraries read it from `SSL_CERT_FILE` and
/// `SSL_CERT_DIR` each time they build a connector. The bundle file is replaced by an empty
/// one, so that OpenSSL's default file and native-tls's probed file cost nothing, and the
/// directory is named, so that every library still finds every system CA in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemTrust {
    /// The hashed directory of the system's CAs.
    pub dir: PathBuf,
}

impl SystemTrust {
    /// The setting to apply when the system's CAs are also kept hashed: `SSL_CERT_FILE` unset
    /// or naming the system's own bundle (as some images set it), and `SSL_CERT_DIR` unset or
    /// naming a hashed directory. A file of the operator's own choosing is left alone, and
    /// so is a system without a hashed directory: `None` leaves the libraries to their
    /// defaults, which are correct, only slower.
    #[must_use]
    pub fn on_demand() -> Option<SystemTrust> {
        let var = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let probe = openssl_probe::probe();
        // The bundles a system keeps its CAs in: OpenSSL's default file and the one
        // `openssl-probe` finds (on Debian, both are /etc/ssl/certs/ca-certificates.crt).
        let openssl_dir = openssl::version::dir()
            .strip_prefix("OPENSSLDIR: \"")
            .and_then(|d| d.strip_suffix('"'));
        let system_files = [
            openssl_dir.map(|d| Path::new(d).join("cert.pem")),
            probe.cert_file,
        ];
        let candidates = match var(CERT_DIR) {
            Some(dir) => vec![dir],
            None => probe.cert_dir,
        };
        Self::choose(var(CERT_FILE).as_deref(), &system_files, candidates)
    }

    /// The first hashed directory of `candidates`, unless `file` names a bundle other than
    /// the system's.
    fn choose(
        file: Option<&Path>,
        system_files: &[Option<PathBuf>],
        candidates: Vec<PathBuf>,
    ) -> Option<SystemTrust> {
        if let Some(file) = file {
            let canonical = |p: &Path| std::fs::canonicalize(p).ok();
            let chosen = canonical(file)?;
            if !system_files
                .iter()
                .flatten()
                .any(|s| canonical(s).as_ref() == Some(&chosen))
            {
                return None;
            }
        }
        candidates
            .into_iter()
            .find(|dir| is_hashed(dir))
            .map(|dir| SystemTrust { dir })
    }

    /// The variables to set, before any thread of the process starts: `SSL_CERT_FILE` to an
    /// empty file (it must exist: `openssl-probe` would otherwise fall back to the bundle) and
    /// `SSL_CERT_DIR` to the directory.
    #[must_use]
    pub fn variables(&self) -> [(&'static str, OsString); 2] {
        [
            (CERT_FILE, OsString::from("/dev/null")),
            (CERT_DIR, self.dir.clone().into_os_string()),
        ]
    }
}

/// Whether `dir` holds OpenSSL's subject-hash links (`5ad8a5d6.0`) to CA certificates.
fn is_hashed(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        is_hash_name(&name) && entry.path().is_file()
    })
}

/// `8 hex digits . digits`, as `openssl rehash` names its links.
fn is_hash_name(name: &str) -> bool {
    name.split_once('.').is_some_and(|(hash, n)| {
        hash.len() == 8
            && hash.bytes().all(|b| b.is_ascii_hexdigit())
            && !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
    })
}

/// A bundle of CAs to trust.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Bundle {
    /// A PEM file (a `caBundle` setting, `--pg-ca-bundle`), read once per process.
    File(PathBuf),
    /// A bundle preflight carries (the RDS CAs), named for messages.
    Shipped {
        /// What it is, e.g. `shipped for RDS`.
        name: &'static str,
        /// Its PEM text.
        pem: Arc<str>,
    },
    /// A bundle read from the cluster (a webhook's `caBundle`), by its PEM text.
    Inline(Arc<[u8]>),
}

impl Bundle {
    fn load(&self) -> Result<Arc<CaBundle>, CaBundleError> {
        match self {
            Bundle::File(path) => CaBundle::load(path),
            Bundle::Shipped { name, pem } => CaBundle::parse(pem.as_bytes(), name).map(Arc::new),
            Bundle::Inline(pem) => CaBundle::parse(pem, "inline").map(Arc::new),
        }
    }
}

/// The CAs a connector trusts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Roots {
    /// The system's.
    System,
    /// The system's and a bundle's (a private CA next to public ones).
    SystemAnd(Bundle),
    /// A bundle's only, as libpq's `sslrootcert`: a certificate from a public CA must not pass
    /// for a private server's.
    Only(Bundle),
}

/// What a connector verifies of the server's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verify {
    /// The chain to a trusted CA, and the host name (libpq's `verify-full`).
    Full,
    /// The chain only (`verify-ca`).
    Chain,
    /// Nothing: encryption without authentication (`require`).
    Nothing,
}

/// A trust setting: what one shared connector does.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TlsSettings {
    /// The CAs trusted.
    pub roots: Roots,
    /// What is verified.
    pub verify: Verify,
}

impl TlsSettings {
    /// Full verification against `roots`.
    #[must_use]
    pub fn verified(roots: Roots) -> TlsSettings {
        TlsSettings {
            roots,
            verify: Verify::Full,
        }
    }
}

/// Why a connector could not be built.
#[derive(Clone, Debug, thiserror::Error)]
pub enum TlsError {
    /// Its bundle cannot be used (the run checks every bundle file before it starts, so this
    /// is met only when a file changed meanwhile, or with an inline bundle).
    #[error(transparent)]
    Bundle(Arc<CaBundleError>),
    /// The TLS library failed.
    #[error("cannot set up TLS: {0}")]
    Setup(Arc<str>),
}

/// The connectors of a run, one per trust setting, each built once on a blocking thread
/// (building one is CPU work) and then cloned (a reference count) by every user.
#[derive(Default)]
pub struct Connectors(Mutex<HashMap<TlsSettings, Arc<OnceCell<TlsConnector>>>>);

impl fmt::Debug for Connectors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let built = self.0.lock().map_or(0, |m| m.len());
        write!(f, "Connectors({built} settings)")
    }
}

impl Connectors {
    /// The connector for `settings`, built on first use. A failure is not kept: the next
    /// caller tries again (a bundle file being replaced, say).
    pub async fn get(&self, settings: &TlsSettings) -> Result<TlsConnector, TlsError> {
        let cell = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(settings.clone())
            .or_default()
            .clone();
        let settings = settings.clone();
        cell.get_or_try_init(|| async move {
            tokio::task::spawn_blocking(move || build(&settings))
                .await
                .map_err(|e| TlsError::Setup(Arc::from(e.to_string())))?
        })
        .await
        .cloned()
    }
}

/// Builds a connector: TLS 1.2 at least, the roots and the verification asked for.
fn build(settings: &TlsSettings) -> Result<TlsConnector, TlsError> {
    let mut builder = TlsConnector::builder();
    builder.min_protocol_version(Some(Protocol::Tlsv12));
    let bundle = match &settings.roots {
        Roots::System => None,
        Roots::SystemAnd(bundle) => Some(bundle),
        Roots::Only(bundle) => {
            builder.disable_built_in_roots(true);
            Some(bundle)
        }
    };
    if let Some(bundle) = bundle {
        let bundle = bundle.load().map_err(|e| TlsError::Bundle(Arc::new(e)))?;
        for certificate in bundle.native_certificates() {
            builder.add_root_certificate(certificate.clone());
        }
    }
    match settings.verify {
        Verify::Full => {}
        Verify::Chain => {
            builder.danger_accept_invalid_hostnames(true);
        }
        Verify::Nothing => {
            builder
                .danger_accept_invalid_certs(true)
                .danger_accept_invalid_hostnames(true);
        }
    }
    builder
        .build()
        .map_err(|e| TlsError::Setup(Arc::from(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_openssl_hash_links() {
        for name in ["5ad8a5d6.0", "0A1B2C3D.12"] {
            assert!(is_hash_name(name), "{name}");
        }
        for name in [
            "ca-certificates.crt",
            "5ad8a5d6",
            "5ad8a5d6.",
            "5ad8a5d.0",
            "5ad8a5d6.r0",
            "ISRG_Root_X1.pem",
        ] {
            assert!(!is_hash_name(name), "{name}");
        }
    }

    #[test]
    fn a_directory_is_hashed_only_with_a_link_to_a_file() {
        let dir = tempfile::tempdir().expect("a directory");
        assert!(!is_hashed(dir.path()));
        std::fs::write(dir.path().join("ca.pem"), "x").expect("written");
        assert!(!is_hashed(dir.path()));
        // A dangling link is no CA.
        std::os::unix::fs::symlink("gone.pem", dir.path().join("5ad8a5d6.0")).expect("linked");
        assert!(!is_hashed(dir.path()));
        std::os::unix::fs::symlink("ca.pem", dir.path().join("0a1b2c3d.0")).expect("linked");
        assert!(is_hashed(dir.path()));
        assert!(!is_hashed(&dir.path().join("missing")));
    }

    #[test]
    fn chooses_the_first_hashed_directory_unless_another_bundle_was_chosen() {
        let plain = tempfile::tempdir().expect("a directory");
        let hashed = tempfile::tempdir().expect("a directory");
        std::fs::write(hashed.path().join("5ad8a5d6.0"), "x").expect("written");
        let system = hashed.path().join("ca-certificates.crt");
        std::fs::write(&system, "x").expect("written");
        let own = plain.path().join("corporate.pem");
        std::fs::write(&own, "x").expect("written");
        // The system's bundle under another name, as /usr/lib/ssl/cert.pem links to it.
        let link = plain.path().join("cert.pem");
        std::os::unix::fs::symlink(&system, &link).expect("linked");
        let systems = [Some(link.clone()), None];
        let candidates = vec![plain.path().to_owned(), hashed.path().to_owned()];
        let on_demand = Some(SystemTrust {
            dir: hashed.path().to_owned(),
        });
        assert_eq!(
            SystemTrust::choose(None, &systems, candidates.clone()),
            on_demand
        );
        assert_eq!(
            SystemTrust::choose(Some(&system), &systems, candidates.clone()),
            on_demand
        );
        assert_eq!(
            SystemTrust::choose(Some(&own), &systems, candidates.clone()),
            None
        );
        assert_eq!(
            SystemTrust::choose(
                Some(&plain.path().join("missing.pem")),
                &systems,
                candidates
            ),
            None
        );
        assert_eq!(
            SystemTrust::choose(None, &systems, vec![plain.path().to_owned()]),
            None
        );
    }

    #[tokio::test]
    async fn builds_each_setting_once_and_shares_it() {
        let connectors = Connectors::default();
        let rds = TlsSettings::verified(Roots::Only(Bundle::Shipped {
            name: "shipped for RDS",
            pem: Arc::from(include_str!("../certs/rds-global-bundle.pem")),
        }));
        connectors.get(&rds).await.expect("built");
        connectors.get(&rds).await.expect("shared");
        connectors
            .get(&TlsSettings {
                verify: Verify::Chain,
                ..rds.clone()
            })
            .await
            .expect("built");
        assert_eq!(connectors.0.lock().expect("not poisoned").len(), 2);
        let broken =
            TlsSettings::verified(Roots::Only(Bundle::Inline(Arc::from(&b"not a bundle"[..]))));
        assert!(matches!(
            connectors.get(&broken).await,
            Err(TlsError::Bundle(_))
        ));
    }
}
