//! A throwaway certificate authority and a server certificate for 127.0.0.1 and localhost,
//! made fresh for every server so no key ever lives in the repository.

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslMethod};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509, X509NameBuilder};

/// The CA certificate (PEM) and an acceptor serving a certificate it signed.
pub(crate) struct Tls {
    pub ca_pem: String,
    pub acceptor: SslAcceptor,
}

/// A throwaway CA and a server certificate it signed, all PEM, for tests of other TLS servers
/// (PostgreSQL, an HTTPS stub).
#[derive(Clone, Debug)]
pub struct TestCertificates {
    /// The CA certificate clients trust.
    pub ca_pem: String,
    /// The server certificate (SANs: 127.0.0.1, localhost, kubernetes.default.svc).
    pub cert_pem: String,
    /// The server's private key (PKCS#8).
    pub key_pem: String,
}

/// Makes a fresh CA and server certificate.
pub fn test_certificates() -> anyhow::Result<TestCertificates> {
    let (ca, cert, key) = ca_and_server()?;
    Ok(TestCertificates {
        ca_pem: String::from_utf8(ca.to_pem()?)?,
        cert_pem: String::from_utf8(cert.to_pem()?)?,
        key_pem: String::from_utf8(key.private_key_to_pem_pkcs8()?)?,
    })
}

fn key() -> anyhow::Result<PKey<Private>> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
}

fn serial() -> anyhow::Result<openssl::asn1::Asn1Integer> {
    let mut n = BigNum::new()?;
    n.rand(128, MsbOption::MAYBE_ZERO, false)?;
    Ok(n.to_asn1_integer()?)
}

fn name(cn: &str) -> anyhow::Result<openssl::x509::X509Name> {
    let mut b = X509NameBuilder::new()?;
    b.append_entry_by_nid(Nid::COMMONNAME, cn)?;
    Ok(b.build())
}

fn ca_and_server() -> anyhow::Result<(X509, X509, PKey<Private>)> {
    let ca_key = key()?;
    let (not_before, not_after) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(2)?);
    let ca_name = name("fake-kube CA")?;
    let mut ca = X509::builder()?;
    ca.set_version(2)?;
    ca.set_serial_number(serial()?.as_ref())?;
    ca.set_subject_name(&ca_name)?;
    ca.set_issuer_name(&ca_name)?;
    ca.set_pubkey(&ca_key)?;
    ca.set_not_before(&not_before)?;
    ca.set_not_after(&not_after)?;
    ca.append_extension(BasicConstraints::new().critical().ca().build()?)?;
    ca.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()?,
    )?;
    ca.sign(&ca_key, MessageDigest::sha256())?;
    let ca = ca.build();

    let server_key = key()?;
    let mut cert = X509::builder()?;
    cert.set_version(2)?;
    cert.set_serial_number(serial()?.as_ref())?;
    cert.set_subject_name(name("kube-apiserver")?.as_ref())?;
    cert.set_issuer_name(ca.subject_name())?;
    cert.set_pubkey(&server_key)?;
    cert.set_not_before(&not_before)?;
    cert.set_not_after(&not_after)?;
    let san = SubjectAlternativeName::new()
        .ip("127.0.0.1")
        .dns("localhost")
        .dns("kubernetes.default.svc")
        .build(&cert.x509v3_context(Some(&ca), None))?;
    cert.append_extension(san)?;
    cert.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .key_encipherment()
            .build()?,
    )?;
    cert.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
    cert.sign(&ca_key, MessageDigest::sha256())?;
    Ok((ca, cert.build(), server_key))
}

/// Makes the CA, the server certificate and the TLS acceptor (TLS 1.2+, HTTP/1.1 only).
pub(crate) fn generate() -> anyhow::Result<Tls> {
    let (ca, cert, server_key) = ca_and_server()?;
    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    acceptor.set_private_key(&server_key)?;
    acceptor.set_certificate(&cert)?;
    acceptor.add_extra_chain_cert(ca.clone())?;
    acceptor.check_private_key()?;
    Ok(Tls {
        ca_pem: String::from_utf8(ca.to_pem()?)?,
        acceptor: acceptor.build(),
    })
}
