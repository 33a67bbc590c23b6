//! TLS and mTLS over real sockets, with certificates made at test time.

use std::sync::Arc;
use std::time::Duration;

use courier::credentials::{ClientTlsConfig, ServerTlsConfig};
use courier::{Channel, Code};
use courier_tests::{EchoClient, start_with, text};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// A CA and the PEM of what it signed.
struct Pki {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate chain and key, PEM.
struct Leaf {
    cert: String,
    key: String,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Pki {
            ca_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    fn leaf(&self, names: &[&str], common_name: &str) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, common_name);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

fn server_tls(leaf: &Leaf) -> ServerTlsConfig {
    ServerTlsConfig::from_pem(&leaf.cert, &leaf.key).unwrap()
}

async fn call(channel: Result<Channel, courier::Status>) -> Result<String, courier::Status> {
    let client = EchoClient::new(channel?);
    Ok(client.unary(text("over tls")).await?.into_inner().identity)
}

fn builder(port: u16) -> courier::client::ChannelBuilder {
    Channel::builder(format!("https://127.0.0.1:{port}")).connect_timeout(Duration::from_secs(30))
}

#[tokio::test]
async fn tls_with_custom_ca_and_server_name_override() {
    let pki = Pki::new("test CA");
    let leaf = pki.leaf(&["*.test.example.com", "localhost"], "server");
    let server = start_with(|b| {
        b.tls(server_tls(&leaf))
            .unwrap()
            .add_service(courier_tests::echo_with(Default::default()))
    })
    .await;
    let port = server.addr.port();

    // The certificate does not name 127.0.0.1: the override is what matches.
    let tls = ClientTlsConfig::new()
        .ca_pem(&pki.ca_pem)
        .unwrap()
        .server_name("foo.test.example.com");
    let channel = builder(port).tls(tls).authority("foo.test.example.com").connect().await;
    assert_eq!(call(channel).await.unwrap(), "", "no client certificate, no identity");

    // An http:// target with TLS settings uses TLS too.
    let tls = ClientTlsConfig::new()
        .ca_pem(&pki.ca_pem)
        .unwrap()
        .server_name("localhost");
    let channel = Channel::builder(format!("http://127.0.0.1:{port}"))
        .tls(tls)
        .connect()
        .await;
    call(channel).await.unwrap();

    // Many concurrent calls on one TLS channel.
    let tls = ClientTlsConfig::new()
        .ca_pem(&pki.ca_pem)
        .unwrap()
        .server_name("localhost");
    let client = EchoClient::new(builder(port).tls(tls).connect().await.unwrap());
    let calls = (0..50).map(|i| {
        let client = client.clone();
        async move { client.unary(text(&format!("m{i}"))).await.map(|r| r.into_inner().text) }
    });
    let replies = futures_util::future::join_all(calls).await;
    for (i, r) in replies.into_iter().enumerate() {
        assert_eq!(r.unwrap(), format!("m{i}"));
    }
}

#[tokio::test]
async fn verification_failures_are_unavailable_and_the_server_keeps_serving() {
    let pki = Pki::new("test CA");
    let leaf = pki.leaf(&["localhost"], "server");
    let server = start_with(|b| {
        b.tls(server_tls(&leaf))
            .unwrap()
            .add_service(courier_tests::echo_with(Default::default()))
    })
    .await;
    let port = server.addr.port();

    // A CA that did not sign the server's certificate.
    let other = Pki::new("other CA");
    let tls = ClientTlsConfig::new()
        .ca_pem(&other.ca_pem)
        .unwrap()
        .server_name("localhost");
    let err = builder(port).tls(tls).connect().await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("TLS handshake"), "{err}");

    // The right CA, the wrong name.
    let tls = ClientTlsConfig::new()
        .ca_pem(&pki.ca_pem)
        .unwrap()
        .server_name("evil.example.com");
    let err = builder(port).tls(tls).connect().await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("TLS handshake"), "{err}");

    // Skipping verification connects despite the unknown CA and name.
    let tls = ClientTlsConfig::new().insecure_skip_verify();
    call(builder(port).tls(tls).connect().await).await.unwrap();

    // A plaintext call to a TLS port fails; it does not hang.
    let plain = Channel::builder(format!("http://127.0.0.1:{port}")).connect_lazy();
    let mut request = courier::Request::new(text("plaintext"));
    request.set_timeout(Duration::from_secs(10));
    let err = EchoClient::new(plain.unwrap()).unary(request).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");

    // A TLS client that does not offer ALPN h2 is turned away.
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(pki.ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let outcome = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await;
    if let Ok(mut stream) = outcome {
        // The handshake may finish on the client's side; the server then
        // closes without speaking HTTP/2.
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .unwrap();
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "server spoke to a client without ALPN h2: {read:?}"
        );
    }

    // Bad configuration is reported before any connection.
    let err = ClientTlsConfig::new().ca_pem("not a certificate").unwrap_err();
    assert!(err.to_string().contains("CERTIFICATE"), "{err}");
    assert!(ServerTlsConfig::from_pem(&leaf.cert, &pki.leaf(&["x"], "x").key).is_err());

    // After all that, a good client is still served.
    let tls = ClientTlsConfig::new()
        .ca_pem(&pki.ca_pem)
        .unwrap()
        .server_name("localhost");
    call(builder(port).tls(tls).connect().await).await.unwrap();
}

#[tokio::test]
async fn mutual_tls_requires_and_exposes_the_client_identity() {
    let server_pki = Pki::new("server CA");
    let client_pki = Pki::new("client CA");
    let leaf = server_pki.leaf(&["localhost"], "server");
    let tls = server_tls(&leaf).client_ca_pem(&client_pki.ca_pem).unwrap();
    let server = start_with(|b| {
        b.tls(tls)
            .unwrap()
            .add_service(courier_tests::echo_with(Default::default()))
    })
    .await;
    let port = server.addr.port();
    let base = || {
        ClientTlsConfig::new()
            .ca_pem(&server_pki.ca_pem)
            .unwrap()
            .server_name("localhost")
    };

    // Without a client certificate the call fails.
    let outcome = call(builder(port).tls(base()).connect().await).await;
    assert_eq!(outcome.unwrap_err().code(), Code::Unavailable);

    // A certificate from a CA the server does not trust fails too.
    let stranger = server_pki.leaf(&["spiffe://example.org/stranger"], "stranger");
    let tls = base().identity_pem(&stranger.cert, &stranger.key).unwrap();
    let outcome = call(builder(port).tls(tls).connect().await).await;
    assert_eq!(outcome.unwrap_err().code(), Code::Unavailable);

    // A trusted client certificate: the handler sees its identity.
    let client = client_pki.leaf(&["spiffe://example.org/billing"], "billing-client");
    let tls = base().identity_pem(&client.cert, &client.key).unwrap();
    let identity = call(builder(port).tls(tls).connect().await).await.unwrap();
    assert_eq!(identity, "spiffe://example.org/billing,billing-client");
}

#[tokio::test]
async fn optional_client_auth_accepts_both() {
    let pki = Pki::new("CA");
    let leaf = pki.leaf(&["localhost"], "server");
    let tls = server_tls(&leaf)
        .client_ca_pem(&pki.ca_pem)
        .unwrap()
        .client_auth_optional(true);
    let server = start_with(|b| {
        b.tls(tls)
            .unwrap()
            .add_service(courier_tests::echo_with(Default::default()))
    })
    .await;
    let port = server.addr.port();
    let base = || {
        ClientTlsConfig::new()
            .ca_pem(&pki.ca_pem)
            .unwrap()
            .server_name("localhost")
    };
    assert_eq!(call(builder(port).tls(base()).connect().await).await.unwrap(), "");
    let client = pki.leaf(&["client.example.com"], "c");
    let tls = base().identity_pem(&client.cert, &client.key).unwrap();
    assert_eq!(
        call(builder(port).tls(tls).connect().await).await.unwrap(),
        "client.example.com,c"
    );
}

#[tokio::test]
async fn https_targets_trust_the_system_roots_by_default() {
    let pki = Pki::new("private CA");
    let leaf = pki.leaf(&["localhost"], "server");
    let server = start_with(|b| {
        b.tls(server_tls(&leaf))
            .unwrap()
            .add_service(courier_tests::echo_with(Default::default()))
    })
    .await;
    // No TLS settings: an https:// target uses TLS with the system's roots,
    // which do not include this test's private CA.
    let err = Channel::builder(format!("https://localhost:{}", server.addr.port()))
        .connect()
        .await
        .unwrap_err();
    if std::path::Path::new("/etc/ssl/certs/ca-certificates.crt").exists() {
        assert_eq!(err.code(), Code::Unavailable, "{err}");
        assert!(err.message().contains("UnknownIssuer"), "{err}");
    } else {
        assert_eq!(err.code(), Code::InvalidArgument, "{err}");
        assert!(err.message().contains("no system root certificates"), "{err}");
    }
}

#[tokio::test]
async fn a_plaintext_client_to_a_tls_server_is_told_to_use_tls() {
    let pki = Pki::new("mismatch CA");
    let leaf = pki.leaf(&["localhost"], "server");
    let server = start_with(|b| {
        b.tls(server_tls(&leaf))
            .unwrap()
            .add_service(courier_tests::echo_with(Default::default()))
    })
    .await;
    let connect = Channel::builder(format!("http://127.0.0.1:{}", server.addr.port()))
        .connect_timeout(Duration::from_secs(5))
        .connect();
    let err = connect.await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(err.message().contains("answered with TLS"), "{err}");
    assert!(err.message().contains("https://"), "{err}");
}

#[tokio::test]
async fn a_tls_client_to_a_plaintext_server_is_told_the_server_does_not_speak_tls() {
    let pki = Pki::new("mismatch CA");
    let server = courier_tests::start_server().await;
    let tls = ClientTlsConfig::new().ca_pem(&pki.ca_pem).unwrap();
    let err = builder(server.addr.port()).tls(tls).connect().await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(err.message().contains("does not speak TLS"), "{err}");
    assert!(err.message().contains("http://"), "{err}");
}
