//! Certificates and TLS settings for the secure transports (TLS over TCP, `wss://`, QUIC).
//!
//! A server presents an [`Identity`]: a certificate chain and its private key, loaded from
//! PEM files in production ([`Identity::from_pem_files`]) or generated on the spot for
//! development ([`Identity::self_signed`]). A client decides whom to trust with
//! [`ClientTls`]: the CA (or the very certificate) it was given, or, for development only and
//! only when asked explicitly, anything ([`ClientTls::danger_accept_any_certificate`]).
//!
//! Both ends speak TLS 1.3 with the ALPN protocol [`ALPN`] (`magicnet/3`), as the protocol's
//! transport mappings say.
//!
//! ```
//! use magicnet::tls::{ClientTls, Identity};
//!
//! // A development server's identity, and a client that trusts exactly that certificate.
//! let identity = Identity::self_signed(&["localhost"])?;
//! let client = ClientTls::trusting_der(identity.certificate_der())?;
//! # let _ = client;
//! # Ok::<(), magicnet::tls::TlsError>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// The ALPN protocol of MagicNet v3 over TLS and QUIC.
pub const ALPN: &[u8] = b"magicnet/3";

/// Why a certificate, a key or a TLS setting could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// No usable certificate in the PEM input.
    #[error("no certificate found in {0}: expected `-----BEGIN CERTIFICATE-----` blocks")]
    NoCertificate(String),
    /// No usable private key in the PEM input.
    #[error("no private key found in {0}: expected a PKCS#8, PKCS#1 or SEC1 `PRIVATE KEY` block")]
    NoKey(String),
    /// The name to check the certificate against is not a DNS name or an IP address.
    #[error("`{0}` is not a valid server name or IP address: give one with ClientTls::with_server_name")]
    BadServerName(String),
    /// A certificate could not be added to the trusted roots.
    #[error("certificate not usable as a trust anchor: {0}")]
    BadRoot(String),
    /// A development certificate could not be generated.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
    /// rustls refused the configuration (for example a key that does not match the
    /// certificate).
    #[error("TLS configuration refused: {0}")]
    Rustls(#[from] rustls::Error),
}

#[cfg(feature = "tokio")]
impl From<TlsError> for crate::transport::TransportError {
    fn from(e: TlsError) -> Self {
        Self::Tls(e.to_string())
    }
}

/// The crypto provider every MagicNet TLS configuration uses (ring).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate chain and its private key: what a TLS or QUIC server presents.
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Self { chain: self.chain.clone(), key: self.key.clone_key() }
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("certificates", &self.chain.len()).finish_non_exhaustive()
    }
}

impl Identity {
    /// A fresh self-signed certificate for `names` (DNS names or IP addresses), for
    /// development: clients must be told to trust it ([`ClientTls::trusting_der`]) or to
    /// skip verification ([`ClientTls::danger_accept_any_certificate`]).
    pub fn self_signed(names: &[&str]) -> Result<Self, TlsError> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let ck = rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
        let key =
            PrivateKeyDer::try_from(ck.signing_key.serialize_der()).map_err(|e| TlsError::Generate(e.to_owned()))?;
        Ok(Self { chain: vec![ck.cert.der().clone()], key })
    }

    /// An identity from PEM text: the certificate chain (leaf first) and the private key.
    pub fn from_pem(certificates: &[u8], key: &[u8]) -> Result<Self, TlsError> {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(certificates).filter_map(Result::ok).collect();
        if chain.is_empty() {
            return Err(TlsError::NoCertificate("the certificate PEM".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|_| TlsError::NoKey("the key PEM".into()))?;
        Ok(Self { chain, key })
    }

    /// An identity from PEM files: the certificate chain (leaf first) and the private key.
    pub fn from_pem_files(certificates: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self, TlsError> {
        let read = |p: &Path| std::fs::read(p).map_err(|source| TlsError::Io { path: p.to_owned(), source });
        let (cp, kp) = (certificates.as_ref(), key.as_ref());
        let (c, k) = (read(cp)?, read(kp)?);
        Self::from_pem(&c, &k).map_err(|e| match e {
            TlsError::NoCertificate(_) => TlsError::NoCertificate(cp.display().to_string()),
            TlsError::NoKey(_) => TlsError::NoKey(kp.display().to_string()),
            e => e,
        })
    }

    /// The leaf certificate (DER), for a client to trust.
    pub fn certificate_der(&self) -> &[u8] {
        &self.chain[0]
    }

    /// The leaf certificate as PEM, for a client to trust (`--ca` of the examples).
    pub fn certificate_pem(&self) -> String {
        use std::fmt::Write as _;
        let b64 = base64_encode(&self.chain[0]);
        let mut s = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            let _ = writeln!(s, "{}", String::from_utf8_lossy(line));
        }
        s.push_str("-----END CERTIFICATE-----\n");
        s
    }

    /// A rustls server configuration presenting this identity, TLS 1.3 with ALPN
    /// `magicnet/3`.
    pub fn server_config(&self) -> Result<rustls::ServerConfig, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(config)
    }
}

/// How a client checks the server it connects to.
#[derive(Clone)]
pub struct ClientTls {
    verify: Verify,
    server_name: Option<String>,
}

#[derive(Clone)]
enum Verify {
    Roots(Arc<RootCertStore>),
    Anything,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verify = match &self.verify {
            Verify::Roots(r) => format!("{} trusted roots", r.len()),
            Verify::Anything => "DANGER: accepts any certificate".into(),
        };
        f.debug_struct("ClientTls").field("verify", &verify).field("server_name", &self.server_name).finish()
    }
}

impl ClientTls {
    /// Trusts the certificates (CAs, or the server's own certificate) in PEM text.
    pub fn trusting_pem(pem: &[u8]) -> Result<Self, TlsError> {
        let mut roots = RootCertStore::empty();
        let mut n = 0;
        for cert in CertificateDer::pem_slice_iter(pem).filter_map(Result::ok) {
            roots.add(cert).map_err(|e| TlsError::BadRoot(e.to_string()))?;
            n += 1;
        }
        if n == 0 {
            return Err(TlsError::NoCertificate("the trusted certificates".into()));
        }
        Ok(Self { verify: Verify::Roots(Arc::new(roots)), server_name: None })
    }

    /// Trusts the certificates in a PEM file.
    pub fn trusting_pem_file(path: impl AsRef<Path>) -> Result<Self, TlsError> {
        let p = path.as_ref();
        let pem = std::fs::read(p).map_err(|source| TlsError::Io { path: p.to_owned(), source })?;
        Self::trusting_pem(&pem).map_err(|e| match e {
            TlsError::NoCertificate(_) => TlsError::NoCertificate(p.display().to_string()),
            e => e,
        })
    }

    /// Trusts one certificate given as DER (a development server's own certificate).
    pub fn trusting_der(der: &[u8]) -> Result<Self, TlsError> {
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from(der.to_vec())).map_err(|e| TlsError::BadRoot(e.to_string()))?;
        Ok(Self { verify: Verify::Roots(Arc::new(roots)), server_name: None })
    }

    /// Accepts any certificate: no protection against an attacker in the middle. For
    /// development against a server with a self-signed certificate only; every connection
    /// made this way logs a warning.
    pub fn danger_accept_any_certificate() -> Self {
        Self { verify: Verify::Anything, server_name: None }
    }

    /// Checks the certificate against this name instead of the host the client connects
    /// to (an IP address, or a name that differs from the address).
    pub fn with_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// True if this configuration skips certificate verification.
    pub fn is_insecure(&self) -> bool {
        matches!(self.verify, Verify::Anything)
    }

    /// The name to verify as text: the configured one, else `host`.
    #[cfg_attr(not(feature = "quic"), allow(dead_code))]
    pub(crate) fn name_str<'a>(&'a self, host: &'a str) -> &'a str {
        self.server_name.as_deref().unwrap_or(host)
    }

    /// The name to verify: the configured one, else `host`.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub(crate) fn name_for(&self, host: &str) -> Result<ServerName<'static>, TlsError> {
        let name = self.server_name.as_deref().unwrap_or(host);
        ServerName::try_from(name.to_owned()).map_err(|_| TlsError::BadServerName(name.to_owned()))
    }

    /// A rustls client configuration: TLS 1.3, ALPN `magicnet/3`.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, TlsError> {
        let provider = provider();
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?;
        let mut config = match &self.verify {
            Verify::Roots(roots) => builder.with_root_certificates(roots.clone()).with_no_client_auth(),
            Verify::Anything => {
                tracing::warn!("TLS certificate verification is OFF (development mode): do not use this in production");
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
                    .with_no_client_auth()
            }
        };
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(config)
    }
}

/// Accepts any certificate, but still checks that the server holds its key.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn base64_encode(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_of_a_self_signed_identity() {
        let id = Identity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
        let pem = id.certificate_pem();
        let parsed: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<_, _>>().unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].as_ref(), id.certificate_der());
        assert!(ClientTls::trusting_pem(pem.as_bytes()).is_ok());
        assert!(id.server_config().is_ok());
    }

    #[test]
    fn bad_inputs_are_clear_errors() {
        assert!(matches!(Identity::from_pem(b"nothing", b"nothing"), Err(TlsError::NoCertificate(_))));
        assert!(matches!(ClientTls::trusting_pem(b""), Err(TlsError::NoCertificate(_))));
        let e = Identity::from_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem").unwrap_err();
        assert!(e.to_string().contains("/nonexistent/cert.pem"), "{e}");
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
    }
}
