//! TLS configurations for servers and channels, and the rustls objects built
//! from them.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;

use super::Error;

/// The ALPN protocol gRPC runs on.
const ALPN_H2: &[u8] = b"h2";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::new(format!("cannot read {what} {}: {e}", path.display())))
}

fn parse_certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::new(format!("invalid PEM in {what}: {e}")))?;
    if certs.is_empty() {
        return Err(Error::new(format!("no CERTIFICATE found in {what}")));
    }
    Ok(certs)
}

fn parse_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| Error::new(format!("no usable private key in the key PEM: {e}")))
}

fn root_store(certs: &[CertificateDer<'static>], what: &str) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert.clone())
            .map_err(|e| Error::new(format!("unusable certificate in {what}: {e}")))?;
    }
    Ok(roots)
}

/// A certificate chain and its private key.
struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("certificates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl Identity {
    fn from_pem(chain: &[u8], key: &[u8]) -> Result<Identity, Error> {
        let identity = Identity {
            chain: parse_certs(chain, "the certificate chain")?,
            key: parse_key(key)?,
        };
        // Refuse a key rustls cannot use, or one that does not match.
        let provider = provider();
        let signer = provider
            .key_provider
            .load_private_key(identity.key.clone_key())
            .map_err(|e| Error::new(format!("unusable private key: {e}")))?;
        rustls::sign::CertifiedKey::new(identity.chain.clone(), signer)
            .keys_match()
            .map_err(|e| Error::new(format!("the private key does not match the certificate: {e}")))?;
        Ok(identity)
    }
}

/// TLS for a server: its certificate chain and key, and optionally the CA
/// that client certificates must chain to (mTLS).
///
/// Given to [`Server::tls`](crate::Server::tls).
#[derive(Clone, Debug)]
pub struct ServerTlsConfig {
    identity: Identity,
    client_ca: Vec<CertificateDer<'static>>,
    client_auth_optional: bool,
}

impl ServerTlsConfig {
    /// The server's certificate chain (its own certificate first) and its
    /// private key (PKCS#8, PKCS#1 or SEC1), both PEM.
    pub fn from_pem(cert_chain: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> Result<ServerTlsConfig, Error> {
        Ok(ServerTlsConfig {
            identity: Identity::from_pem(cert_chain.as_ref(), key.as_ref())?,
            client_ca: Vec::new(),
            client_auth_optional: false,
        })
    }

    /// [`ServerTlsConfig::from_pem`], reading both from files.
    pub fn from_pem_files(cert_chain: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<ServerTlsConfig, Error> {
        let chain = read_file(cert_chain.as_ref(), "certificate chain file")?;
        let key = read_file(key.as_ref(), "private key file")?;
        ServerTlsConfig::from_pem(chain, key)
    }

    /// Requires clients to present a certificate that chains to one of the
    /// CA certificates in `pem` (mTLS). May be called more than once.
    pub fn client_ca_pem(mut self, pem: impl AsRef<[u8]>) -> Result<ServerTlsConfig, Error> {
        let certs = parse_certs(pem.as_ref(), "the client CA")?;
        root_store(&certs, "the client CA")?;
        self.client_ca.extend(certs);
        Ok(self)
    }

    /// With a client CA set: also accept clients that present no
    /// certificate (a certificate that is presented must still verify).
    pub fn client_auth_optional(mut self, optional: bool) -> ServerTlsConfig {
        self.client_auth_optional = optional;
        self
    }

    pub(crate) fn build(&self) -> Result<ServerTls, Error> {
        let provider = provider();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::new(format!("TLS setup failed: {e}")))?;
        let builder = if self.client_ca.is_empty() {
            builder.with_no_client_auth()
        } else {
            let roots = Arc::new(root_store(&self.client_ca, "the client CA")?);
            let mut verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
            if self.client_auth_optional {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier
                .build()
                .map_err(|e| Error::new(format!("invalid client CA: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        };
        let identity = self.identity.clone();
        let certificate = leaf(&identity.chain);
        let mut config = builder
            .with_single_cert(identity.chain, identity.key)
            .map_err(|e| Error::new(format!("invalid server certificate or key: {e}")))?;
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(ServerTls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            certificate,
        })
    }
}

/// TLS for a channel: the roots that the server's certificate must chain to,
/// the name to verify it against, and optionally a client certificate.
///
/// Given to [`ChannelBuilder::tls`](crate::client::ChannelBuilder::tls).
/// Without [`ClientTlsConfig::ca_pem`], the system's root certificates are
/// trusted.
#[derive(Clone, Debug, Default)]
pub struct ClientTlsConfig {
    roots: Vec<CertificateDer<'static>>,
    server_name: Option<String>,
    identity: Option<Identity>,
    skip_verify: bool,
}

impl ClientTlsConfig {
    /// Trusts the system's root certificates, and verifies the target's host
    /// name.
    pub fn new() -> ClientTlsConfig {
        ClientTlsConfig::default()
    }

    /// Trusts the CA certificates in `pem` instead of the system's roots.
    /// May be called more than once.
    pub fn ca_pem(mut self, pem: impl AsRef<[u8]>) -> Result<ClientTlsConfig, Error> {
        let certs = parse_certs(pem.as_ref(), "the CA")?;
        root_store(&certs, "the CA")?;
        self.roots.extend(certs);
        Ok(self)
    }

    /// [`ClientTlsConfig::ca_pem`], reading a file.
    pub fn ca_pem_file(self, path: impl AsRef<Path>) -> Result<ClientTlsConfig, Error> {
        let pem = read_file(path.as_ref(), "CA file")?;
        self.ca_pem(pem)
    }

    /// Verifies the server's certificate against `name` (and sends it as
    /// SNI) instead of the target's host.
    pub fn server_name(mut self, name: impl Into<String>) -> ClientTlsConfig {
        self.server_name = Some(name.into());
        self
    }

    /// Presents this certificate chain and key to servers that ask for one
    /// (mTLS). Both PEM.
    pub fn identity_pem(
        mut self,
        cert_chain: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
    ) -> Result<ClientTlsConfig, Error> {
        self.identity = Some(Identity::from_pem(cert_chain.as_ref(), key.as_ref())?);
        Ok(self)
    }

    /// Accepts any server certificate, without checking who signed it or
    /// whom it names. The connection is encrypted but not authenticated:
    /// anyone on the path can impersonate the server. For trying out a
    /// server with a self-signed certificate (the CLI's
    /// `--insecure-skip-verify`), never for production.
    pub fn insecure_skip_verify(mut self) -> ClientTlsConfig {
        self.skip_verify = true;
        self
    }

    pub(crate) fn build(&self, host: &str) -> Result<ClientTls, Error> {
        let roots = if self.skip_verify {
            RootCertStore::empty()
        } else if self.roots.is_empty() {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                let why = found.errors.first().map(|e| format!(": {e}")).unwrap_or_default();
                return Err(Error::new(format!(
                    "no system root certificates found{why}; give a CA with ca_pem"
                )));
            }
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(found.certs);
            roots
        } else {
            root_store(&self.roots, "the CA")?
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::new(format!("TLS setup failed: {e}")))?
            .with_root_certificates(roots);
        let certificate = self.identity.as_ref().map(|id| leaf(&id.chain)).unwrap_or_default();
        let mut config = match &self.identity {
            None => builder.with_no_client_auth(),
            Some(id) => {
                let id = id.clone();
                builder
                    .with_client_auth_cert(id.chain, id.key)
                    .map_err(|e| Error::new(format!("invalid client certificate or key: {e}")))?
            }
        };
        if self.skip_verify {
            config
                .dangerous()
                .set_certificate_verifier(Arc::new(AcceptAnyServer(provider())));
        }
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        let name = self.server_name.as_deref().unwrap_or(host);
        let name = name.trim_start_matches('[').trim_end_matches(']');
        let server_name = ServerName::try_from(name.to_string())
            .map_err(|_| Error::new(format!("{name:?} is not a valid TLS server name")))?;
        Ok(ClientTls {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name,
            certificate,
        })
    }
}

/// The verifier of [`ClientTlsConfig::insecure_skip_verify`]: every
/// certificate passes; handshake signatures are still checked, so the
/// session keys belong to whoever holds the certificate's key.
#[derive(Debug)]
struct AcceptAnyServer(Arc<CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// What a server needs to accept TLS connections.
#[derive(Clone)]
pub(crate) struct ServerTls {
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
    /// The server's own certificate (DER), for channelz.
    pub(crate) certificate: Arc<[u8]>,
}

/// What a channel needs to open TLS connections.
#[derive(Clone)]
pub(crate) struct ClientTls {
    pub(crate) connector: tokio_rustls::TlsConnector,
    pub(crate) server_name: ServerName<'static>,
    /// The client's own certificate (DER), if it has one, for channelz.
    pub(crate) certificate: Arc<[u8]>,
}

/// The first certificate of a chain, the end entity's (DER).
fn leaf(chain: &[CertificateDer<'static>]) -> Arc<[u8]> {
    chain
        .first()
        .map(|cert| Arc::from(cert.as_ref()))
        .unwrap_or_else(|| Arc::from(&[][..]))
}

/// What channelz reports of a finished TLS handshake: the cipher suite, this
/// side's certificate (`local`, DER) and the peer's.
pub(crate) fn tls_info(session: &rustls::CommonState, local: &[u8]) -> crate::channelz::socket::TlsInfo {
    crate::channelz::socket::TlsInfo {
        cipher_suite: session
            .negotiated_cipher_suite()
            .and_then(|suite| suite.suite().as_str())
            .map(crate::channelz::socket::standard_cipher_name),
        local_certificate: local.to_vec(),
        remote_certificate: session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|cert| cert.as_ref().to_vec())
            .unwrap_or_default(),
    }
}

/// Whether a finished handshake agreed on `h2`.
pub(crate) fn negotiated_h2(alpn: Option<&[u8]>) -> bool {
    alpn == Some(ALPN_H2)
}
