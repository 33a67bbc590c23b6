//! The server, end to end: one request over a real in-memory HTTP/2
//! connection to a `Server` hosting health and reflection (receive limit
//! 16 KiB, responses gzip-compressed when the client accepts it).
//!
//! The input picks each part of the request head – method, path,
//! content-type, te, grpc-timeout, grpc-encoding, grpc-accept-encoding,
//! custom metadata – from typical values or raw bytes, and the body as
//! framed messages (compressed or not) plus raw bytes, cut into DATA frames
//! anywhere. Checks that the server answers every request that ends (no
//! hang, no panic, no reset), with the HTTP status and gRPC status the
//! request head calls for – 405, 415, then INTERNAL or UNIMPLEMENTED for a
//! bad te, path, timeout or encoding, as a trailers-only response – and for
//! a valid head, a well-formed response whose status fits the body.

#![no_main]

use courier::__fuzz::{FrameReader, parse_timeout};
use courier::Encoding;
use courier::health::pb::HealthCheckRequest;
use courier_fuzz::{Call, Outcome, SERVER_RECV_LIMIT, cut, frame, run};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use prost::Message as _;

#[derive(Arbitrary, Debug)]
enum Part<T> {
    Typical(u8),
    Raw(T),
    Absent,
}

impl<T: Clone> Part<T> {
    fn pick(&self, typical: &[T]) -> Option<T> {
        match self {
            Part::Typical(i) => Some(typical[*i as usize % typical.len()].clone()),
            Part::Raw(v) => Some(v.clone()),
            Part::Absent => None,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Body {
    Raw(Vec<u8>),
    Health(String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    method: Part<String>,
    path: Part<String>,
    content_type: Part<Vec<u8>>,
    te: Part<Vec<u8>>,
    timeout: Part<Vec<u8>>,
    encoding: Part<Vec<u8>>,
    accept_encoding: Part<Vec<u8>>,
    metadata: Vec<(String, Vec<u8>)>,
    messages: Vec<(Body, bool)>,
    tail: Vec<u8>,
    cuts: Vec<u16>,
}

const CHECK: &str = "/grpc.health.v1.Health/Check";
const WATCH: &str = "/grpc.health.v1.Health/Watch";
const LIST: &str = "/grpc.health.v1.Health/List";
const INFO: &str = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
const INFO_ALPHA: &str = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn b(v: &[&str]) -> Vec<Vec<u8>> {
    v.iter().map(|s| s.as_bytes().to_vec()).collect()
}

/// The server's content-type rule, restated.
fn grpc_content_type(ct: &[u8]) -> bool {
    ct == b"application/grpc" || ct.starts_with(b"application/grpc+") || ct.starts_with(b"application/grpc;")
}

/// The server's path rule, restated: `/service/method`, both non-empty.
fn valid_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    parts.len() == 2 && parts.iter().all(|p| !p.is_empty())
}

fuzz_target!(|input: Input| {
    let method = input
        .method
        .pick(&s(&["POST", "GET", "PUT"]))
        .unwrap_or_else(|| "POST".into());
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return;
    };
    let path = input
        .path
        .pick(&s(&[
            CHECK,
            WATCH,
            LIST,
            INFO,
            INFO_ALPHA,
            "/grpc.health.v1.Health/Nope",
            "/x/",
            "/",
            "/a/b/c",
        ]))
        .unwrap_or_else(|| "/".into());
    // The path as the server sees it, once it is part of a URI.
    let Ok(uri) = format!("http://localhost{path}").parse::<http::Uri>() else {
        return;
    };
    let Some(path) = uri.path_and_query().map(|p| p.path().to_owned()) else {
        return;
    };
    let content_type = input.content_type.pick(&b(&[
        "application/grpc",
        "application/grpc+proto",
        "application/grpc;charset=utf-8",
        "application/json",
        "application/grpcx",
    ]));
    let te = input.te.pick(&b(&["trailers", "gzip"]));
    let timeout = input
        .timeout
        .pick(&b(&["1S", "100m", "99999999H", "0n", "1", "S", "123456789S"]));
    let encoding = input.encoding.pick(&b(&["identity", "gzip", "deflate", "zstd", "br"]));
    let accept = input.accept_encoding.pick(&b(&["gzip", "identity", "zstd,gzip"]));

    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("content-type", &content_type),
        ("te", &te),
        ("grpc-timeout", &timeout),
        ("grpc-encoding", &encoding),
        ("grpc-accept-encoding", &accept),
    ] {
        if let Some(v) = value {
            let Ok(v) = HeaderValue::from_bytes(v) else { return };
            headers.insert(name, v);
        }
    }
    for (name, value) in &input.metadata {
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value)) else {
            continue;
        };
        let protocol = [
            "content-type",
            "te",
            "grpc-timeout",
            "grpc-encoding",
            "grpc-accept-encoding",
        ];
        if protocol.contains(&name.as_str()) {
            continue;
        }
        headers.append(name, value);
    }

    let request_encoding = match encoding.as_deref() {
        None | Some(b"identity") => Ok(None),
        Some(name) => std::str::from_utf8(name)
            .ok()
            .and_then(Encoding::from_name)
            .map(Some)
            .ok_or(()),
    };
    let messages: Vec<(Vec<u8>, bool)> = input
        .messages
        .iter()
        .map(|(body, compress)| {
            let bytes = match body {
                Body::Raw(raw) => raw.clone(),
                Body::Health(service) => HealthCheckRequest {
                    service: service.clone(),
                }
                .encode_to_vec(),
            };
            (bytes, *compress)
        })
        .collect();
    let mut body = frame(&messages, request_encoding.unwrap_or(None));
    body.extend_from_slice(&input.tail);

    let call = Call {
        method: method.clone(),
        uri,
        headers: headers.clone(),
        body: cut(&body, &input.cuts),
    };
    let answer = match run(call) {
        Outcome::Refused => return,
        Outcome::Hung => {
            // A Watch stream rightly goes on until the client leaves.
            assert!(path == WATCH, "the server did not answer {path:?} {headers:?}");
            return;
        }
        Outcome::Answered(a) => a,
    };

    if method != Method::POST {
        assert_eq!(answer.status, 405, "{answer:?}");
        return;
    }
    if !content_type.as_deref().is_some_and(grpc_content_type) {
        assert_eq!(answer.status, 415, "{answer:?}");
        return;
    }
    assert_eq!(answer.status, 200, "{answer:?}");
    let ct = answer.headers.get("content-type").expect("a content-type");
    assert!(grpc_content_type(ct.as_bytes()), "{answer:?}");
    let code = answer.code().expect("a grpc-status");
    assert!((0..=16).contains(&code), "{answer:?}");

    let parsed_timeout = timeout.as_deref().map(parse_timeout);
    let early = if te.as_deref() != Some(b"trailers") {
        Some(13)
    } else if !valid_path(&path) {
        Some(12)
    } else if let Some(None) = parsed_timeout {
        Some(13)
    } else if request_encoding.is_err() {
        Some(12)
    } else {
        None
    };
    if let Some(expected) = early {
        assert_eq!(code, expected, "{answer:?}");
        assert!(
            answer.trailers.is_none() && answer.body.is_empty(),
            "not trailers-only: {answer:?}"
        );
        return;
    }
    // A valid head: the response frames are well formed.
    let responses = answer.messages();
    // The deadline may end any call.
    if code == 4 && timeout.is_some() {
        return;
    }

    // What the server must have read: the body's messages, if it frames
    // well.
    let mut reader = FrameReader::new(SERVER_RECV_LIMIT, request_encoding.unwrap());
    reader.push(body.clone().into());
    let mut received = Vec::new();
    let framing_ok = loop {
        match reader.next() {
            Ok(Some(m)) => received.push(m),
            Ok(None) => break reader.finish().is_ok(),
            Err(_) => break false,
        }
    };
    match path.as_str() {
        CHECK => {
            let request = received.first().map(|m| HealthCheckRequest::decode(m.clone()));
            match request {
                Some(Ok(request)) => {
                    let known = request.service.is_empty() || request.service == "grpc.health.v1.Health";
                    if known {
                        assert_eq!(code, 0, "{request:?}: {answer:?}");
                        assert_eq!(responses.len(), 1);
                    } else {
                        assert_eq!(code, 5, "{request:?}: {answer:?}");
                    }
                }
                // No message, or one that does not decode, or the framing
                // failed before the first message.
                _ => assert_ne!(code, 0, "{answer:?}"),
            }
        }
        INFO | INFO_ALPHA => {
            if framing_ok {
                let decoded: Result<Vec<_>, _> = received
                    .iter()
                    .map(|m| courier::reflection::pb::v1::ServerReflectionRequest::decode(m.clone()))
                    .collect();
                if let Ok(requests) = decoded {
                    assert_eq!(code, 0, "{answer:?}");
                    assert_eq!(responses.len(), requests.len(), "one answer per request");
                } else {
                    assert_ne!(code, 0, "{answer:?}");
                }
            } else {
                assert_ne!(code, 0, "{answer:?}");
            }
        }
        LIST | WATCH => {}
        _ => assert_eq!(code, 12, "{path:?}: {answer:?}"),
    }
});
