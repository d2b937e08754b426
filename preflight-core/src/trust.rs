//! CA bundles: the PEM files of the certificate authorities a check trusts (a `caBundle`
//! setting, `--pg-ca-bundle`) or the Kubernetes client does (a kubeconfig's
//! `certificate-authority`). One reader serves them all, and every bundle a run will use is
//! read before the run starts: a bundle that cannot be used is a configuration error for every
//! check alike, never a finding of one of them.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use base64::Engine as _;

/// The certificates of a CA bundle, each checked to be an X.509 certificate.
#[derive(Clone)]
pub struct CaBundle {
    der: Vec<Vec<u8>>,
    /// The same, parsed once: the RDS bundle holds over a hundred.
    parsed: Vec<native_tls::Certificate>,
}

impl fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CaBundle({} certificates)", self.der.len())
    }
}

/// Why a CA bundle cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CaBundleError {
    /// The file cannot be read.
    #[error("cannot read the CA bundle {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The bundle holds no usable certificate, or a malformed one.
    #[error("the CA bundle {name} {problem}")]
    Invalid {
        /// The file, or what else the bundle is (`the RDS CA bundle`).
        name: String,
        /// What is wrong, and where.
        problem: PemProblem,
    },
}

/// What is wrong with the text of a CA bundle; each reads after "the CA bundle FILE".
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PemProblem {
    /// Nothing in it.
    #[error("is empty")]
    Empty,
    /// Bytes that are not text: often a DER file where PEM was expected.
    #[error("is not PEM text{}", if *der {
        " (it looks like a DER certificate: convert it with `openssl x509 -inform der -in FILE -out FILE.pem`)"
    } else { "" })]
    Binary {
        /// Whether it starts like a DER certificate.
        der: bool,
    },
    /// Data embedded in another file (a kubeconfig's `certificate-authority-data`) that is
    /// not base64.
    #[error("is not base64 ({reason})")]
    NotBase64 {
        /// What the decoder said.
        reason: String,
    },
    /// Text without a single certificate.
    #[error("holds no PEM certificate (no -----BEGIN CERTIFICATE----- line){}", if found.is_empty() {
        String::new()
    } else {
        format!("; it holds {}", found.join(", "))
    })]
    NoCertificate {
        /// The other PEM blocks it holds, e.g. `PRIVATE KEY`.
        found: Vec<String>,
    },
    /// A certificate begun but never ended: a truncated copy.
    #[error(
        "is cut short: certificate {index}, begun at line {line}, has no -----END CERTIFICATE----- line"
    )]
    Unterminated {
        /// 1-based, among the bundle's certificates.
        index: usize,
        /// Where it begins.
        line: usize,
    },
    /// A certificate whose body is not base64, or not an X.509 certificate.
    #[error("has a malformed certificate {index} at line {line}: {reason}")]
    Malformed {
        /// 1-based, among the bundle's certificates.
        index: usize,
        /// Where it begins.
        line: usize,
        /// What the decoder said.
        reason: String,
    },
}

const BEGIN: &str = "-----BEGIN ";
const END: &str = "-----END ";
const DASHES: &str = "-----";

/// The bundles read so far in this process, by path: decoding a certificate is the costly
/// part of TLS set-up (see [`crate::tls`]), and the same bundle is trusted by the check of
/// the settings, by each connector and by every attempt.
static LOADED: LazyLock<Mutex<HashMap<PathBuf, Arc<CaBundle>>>> = LazyLock::new(Mutex::default);

impl CaBundle {
    /// The bundle at `path`, read and checked on first use in the process, then shared. A
    /// bundle that cannot be used is not kept: the next use reads the file again.
    pub fn load(path: &Path) -> Result<Arc<CaBundle>, CaBundleError> {
        let cached = LOADED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(path)
            .cloned();
        if let Some(bundle) = cached {
            return Ok(bundle);
        }
        let bundle = Arc::new(Self::read(path)?);
        Ok(LOADED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(path.to_owned())
            .or_insert(bundle)
            .clone())
    }

    /// Reads and checks the bundle at `path`.
    pub fn read(path: &Path) -> Result<CaBundle, CaBundleError> {
        let bytes = std::fs::read(path).map_err(|source| CaBundleError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&bytes, &path.display().to_string())
    }

    /// Checks a bundle's text; `name` says in errors what the bundle is (its file).
    pub fn parse(bytes: &[u8], name: &str) -> Result<CaBundle, CaBundleError> {
        parse_pem(bytes)
            .map(|(der, parsed)| CaBundle { der, parsed })
            .map_err(|problem| CaBundleError::Invalid {
                name: name.to_owned(),
                problem,
            })
    }

    /// The certificates, DER-encoded, in the bundle's order.
    #[must_use]
    pub fn certificates(&self) -> &[Vec<u8>] {
        &self.der
    }

    /// The certificates as the TLS library (OpenSSL, through `native-tls`) holds them.
    #[must_use]
    pub fn native_certificates(&self) -> &[native_tls::Certificate] {
        &self.parsed
    }
}

/// The DER of every certificate in a PEM text; blocks of other kinds are skipped, and every
/// certificate must be an X.509 certificate.
fn parse_pem(bytes: &[u8]) -> Result<(Vec<Vec<u8>>, Vec<native_tls::Certificate>), PemProblem> {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) if !text.contains('\0') => text,
        _ => {
            return Err(PemProblem::Binary {
                der: bytes.first() == Some(&0x30),
            });
        }
    };
    if text.trim().is_empty() {
        return Err(PemProblem::Empty);
    }
    let mut certificates = Vec::new();
    let mut parsed = Vec::new();
    let mut others = Vec::new();
    // The certificate being read: its index, first line and base64 body so far.
    let mut open: Option<(usize, usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        let line = line.trim();
        if let Some((index, start, body)) = &mut open {
            if line.starts_with(END) {
                let (index, start) = (*index, *start);
                let body = std::mem::take(body);
                open = None;
                let (der, certificate) = certificate(&body, index, start)?;
                certificates.push(der);
                parsed.push(certificate);
            } else if line.starts_with(BEGIN) {
                return Err(PemProblem::Unterminated {
                    index: *index,
                    line: *start,
                });
            } else {
                body.push_str(line);
            }
        } else if let Some(label) = line
            .strip_prefix(BEGIN)
            .and_then(|rest| rest.strip_suffix(DASHES))
        {
            if label == "CERTIFICATE" {
                open = Some((certificates.len() + 1, number, String::new()));
            } else if !others.iter().any(|o| o == label) {
                others.push(label.to_owned());
            }
        }
    }
    if let Some((index, line, _)) = open {
        return Err(PemProblem::Unterminated { index, line });
    }
    if certificates.is_empty() {
        return Err(PemProblem::NoCertificate { found: others });
    }
    Ok((certificates, parsed))
}

/// A certificate's DER from its PEM body, checked to be X.509.
fn certificate(
    body: &str,
    index: usize,
    line: usize,
) -> Result<(Vec<u8>, native_tls::Certificate), PemProblem> {
    let malformed = |reason: String| PemProblem::Malformed {
        index,
        line,
        reason,
    };
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| malformed(format!("its body is not base64 ({e})")))?;
    let certificate = native_tls::Certificate::from_der(&der)
        .map_err(|e| malformed(format!("not an X.509 certificate ({e})")))?;
    Ok((der, certificate))
}

/// A CA bundle a check will trust, with the setting that names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleSetting {
    /// The setting's key path, e.g. `checks.postgres.databases[0].caBundle`.
    pub setting: String,
    /// The file.
    pub path: PathBuf,
}

/// A CA bundle setting whose bundle cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{setting}")]
pub struct BundleSettingError {
    /// The setting's key path.
    pub setting: String,
    /// Why its bundle cannot be used.
    #[source]
    pub source: CaBundleError,
}

/// Reads every bundle the settings name, reporting every one that cannot be used.
#[must_use]
pub fn check_all(settings: &[BundleSetting]) -> Vec<BundleSettingError> {
    settings
        .iter()
        .filter_map(|s| {
            CaBundle::load(&s.path)
                .err()
                .map(|source| BundleSettingError {
                    setting: s.setting.clone(),
                    source,
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first certificate of the RDS global bundle preflight ships.
    fn real_certificate() -> String {
        let bundle = include_str!("../certs/rds-global-bundle.pem");
        let end = bundle
            .find("-----END CERTIFICATE-----")
            .expect("a certificate")
            + 25;
        bundle[bundle.find(BEGIN).expect("a certificate")..end].to_owned()
    }

    #[test]
    fn reads_every_certificate_of_a_bundle() {
        let bundle = include_str!("../certs/rds-global-bundle.pem");
        let parsed = CaBundle::parse(bundle.as_bytes(), "rds.pem").expect("the RDS bundle");
        assert_eq!(
            parsed.certificates().len(),
            bundle.matches("BEGIN CERTIFICATE").count()
        );
        // A key next to the certificate, comments and CRLF line ends are fine.
        let mixed = format!(
            "# the platform CA\r\n-----BEGIN PRIVATE KEY-----\r\nAAAA\r\n-----END PRIVATE KEY-----\r\n{}\r\n",
            real_certificate().replace('\n', "\r\n")
        );
        assert_eq!(
            CaBundle::parse(mixed.as_bytes(), "ca.pem")
                .expect("one certificate")
                .certificates()
                .len(),
            1
        );
    }

    #[test]
    fn says_what_is_wrong_with_a_bundle_and_where() {
        let cert = real_certificate();
        let truncated = &cert[..cert.len() / 2];
        let garbled = cert.replacen("MII", "M!I", 1);
        let not_x509 = format!("{BEGIN}CERTIFICATE-----\nAAAA\n{END}CERTIFICATE-----\n");
        for (text, message) in [
            ("".as_bytes().to_vec(), "the CA bundle ca.pem is empty".to_owned()),
            (b"  \n\n".to_vec(), "the CA bundle ca.pem is empty".into()),
            (
                vec![0x30, 0x82, 0x01, 0x0a, 0xff],
                "the CA bundle ca.pem is not PEM text (it looks like a DER certificate".into(),
            ),
            (b"\x00\x01".to_vec(), "the CA bundle ca.pem is not PEM text".into()),
            (
                b"just some text\n".to_vec(),
                "the CA bundle ca.pem holds no PEM certificate (no -----BEGIN CERTIFICATE----- line)"
                    .into(),
            ),
            (
                b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n".to_vec(),
                "the CA bundle ca.pem holds no PEM certificate (no -----BEGIN CERTIFICATE----- line); it holds RSA PRIVATE KEY".into(),
            ),
            (
                format!("\n{truncated}").into_bytes(),
                "the CA bundle ca.pem is cut short: certificate 1, begun at line 2, has no -----END CERTIFICATE----- line".into(),
            ),
            (
                format!("{cert}\n{truncated}\n{cert}").into_bytes(),
                "the CA bundle ca.pem is cut short: certificate 2, begun at line".into(),
            ),
            (
                garbled.into_bytes(),
                "the CA bundle ca.pem has a malformed certificate 1 at line 1: its body is not base64".into(),
            ),
            (
                format!("{cert}\n{not_x509}").into_bytes(),
                "the CA bundle ca.pem has a malformed certificate 2 at line".into(),
            ),
        ] {
            let e = CaBundle::parse(&text, "ca.pem").expect_err(&message).to_string();
            assert!(e.starts_with(&message), "{e}\nwanted {message}");
        }
    }

    #[test]
    fn checks_each_setting_and_names_the_ones_at_fault() {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let good = dir.path().join("good.pem");
        std::fs::write(&good, real_certificate()).expect("written");
        let bad = dir.path().join("bad.pem");
        std::fs::write(&bad, "not a bundle").expect("written");
        let setting = |key: &str, path: &Path| BundleSetting {
            setting: key.into(),
            path: path.to_owned(),
        };
        let errors = check_all(&[
            setting("a.caBundle", &good),
            setting("b.caBundle", &bad),
            setting("c.caBundle", &dir.path().join("missing.pem")),
            setting("d.caBundle", &good),
        ]);
        let shown: Vec<String> = errors
            .iter()
            .map(|e| format!("{e}: {}", e.source))
            .collect();
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert!(
            shown[0].starts_with("b.caBundle: the CA bundle "),
            "{shown:?}"
        );
        assert!(
            shown[0].ends_with(
                "bad.pem holds no PEM certificate (no -----BEGIN CERTIFICATE----- line)"
            )
        );
        assert!(
            shown[1].starts_with("c.caBundle: cannot read the CA bundle "),
            "{shown:?}"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(256))]

        /// Any bytes: a bundle or a reason, never a panic.
        #[test]
        fn any_text_is_a_bundle_or_a_reason(
            text in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(b"-----BEGIN CERTIFICATE-----\n".to_vec()),
                    proptest::strategy::Just(b"-----END CERTIFICATE-----\n".to_vec()),
                    proptest::strategy::Just(b"MIIB\n".to_vec()),
                    proptest::collection::vec(proptest::num::u8::ANY, 0..8),
                ],
                0..12,
            )
        ) {
            let bytes = text.concat();
            let _ = CaBundle::parse(&bytes, "fuzz.pem");
        }
    }
}
