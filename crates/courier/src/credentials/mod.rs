//! Credentials: TLS for channels and servers, through rustls.
//!
//! A server is given a certificate chain and key ([`ServerTlsConfig`]), and
//! may require client certificates (mTLS). A channel is given the roots it
//! trusts ([`ClientTlsConfig`]): the system's, or a CA of its own, and
//! optionally a certificate of its own. Both sides insist on ALPN `h2`, as
//! gRPC requires.
//!
//! A server handler reads the verified client certificate from the request's
//! extensions as [`PeerCertificates`].
//!
//! ```no_run
//! use courier::credentials::{ClientTlsConfig, ServerTlsConfig};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let server_tls = ServerTlsConfig::from_pem_files("server.pem", "server.key")?
//!     .client_ca_pem(std::fs::read("ca.pem")?)?; // require client certificates
//! let client_tls = ClientTlsConfig::new()
//!     .ca_pem(std::fs::read("ca.pem")?)?
//!     .identity_pem(std::fs::read("client.pem")?, std::fs::read("client.key")?)?;
//! let channel = courier::Channel::builder("https://localhost:50051").tls(client_tls).connect().await?;
//! # Ok(()) }
//! ```

mod peer;
mod tls;

pub use peer::PeerCertificates;
pub(crate) use tls::{ClientTls, ServerTls, negotiated_h2, tls_info};
pub use tls::{ClientTlsConfig, ServerTlsConfig};

/// A TLS configuration that cannot be used: a file that cannot be read, PEM
/// without the expected items, or a key rustls refuses.
#[derive(Debug)]
pub struct Error(String);

impl Error {
    pub(crate) fn new(message: impl Into<String>) -> Error {
        Error(message.into())
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}
