//! The certificates a TLS peer presented, as a handler sees them.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;

/// The certificate chain a client presented over mTLS, verified against the
/// server's client CA. A server puts it in each request's extensions.
///
/// ```
/// use courier::credentials::PeerCertificates;
/// fn who(request: &courier::Request<()>) -> Vec<String> {
///     request
///         .extensions()
///         .get::<PeerCertificates>()
///         .map(|peer| peer.identities())
///         .unwrap_or_default()
/// }
/// ```
#[derive(Clone, Debug)]
pub struct PeerCertificates {
    chain: Arc<[CertificateDer<'static>]>,
}

impl PeerCertificates {
    pub(crate) fn new(chain: &[CertificateDer<'_>]) -> Option<PeerCertificates> {
        if chain.is_empty() {
            return None;
        }
        let chain: Vec<_> = chain.iter().map(|c| c.clone().into_owned()).collect();
        Some(PeerCertificates { chain: chain.into() })
    }

    /// The peer's own certificate, DER-encoded.
    pub fn end_entity(&self) -> &[u8] {
        &self.chain[0]
    }

    /// The whole chain the peer sent, its own certificate first, DER-encoded.
    pub fn chain(&self) -> impl Iterator<Item = &[u8]> {
        self.chain.iter().map(|c| c.as_ref())
    }

    /// The identities in the peer's certificate: its subject alternative
    /// names (DNS names, URIs such as SPIFFE IDs, e-mail addresses and IP
    /// addresses, as text), then its subject's common names.
    pub fn identities(&self) -> Vec<String> {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(self.end_entity()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(s) | GeneralName::URI(s) | GeneralName::RFC822Name(s) => {
                        out.push((*s).to_string())
                    }
                    GeneralName::IPAddress(ip) => {
                        if let Ok(v4) = <[u8; 4]>::try_from(*ip) {
                            out.push(std::net::Ipv4Addr::from(v4).to_string());
                        } else if let Ok(v6) = <[u8; 16]>::try_from(*ip) {
                            out.push(std::net::Ipv6Addr::from(v6).to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        for cn in cert.subject().iter_common_name() {
            if let Ok(s) = cn.as_str() {
                out.push(s.to_string());
            }
        }
        out
    }
}
