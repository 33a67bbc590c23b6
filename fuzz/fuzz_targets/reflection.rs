//! Reflection requests, decoded from bytes and answered against the
//! library's own descriptors (the reflection and health services), over the
//! same in-memory server as the `server` target.
//!
//! The input is a stream of requests, each either raw bytes (any protobuf,
//! or none) or a `ServerReflectionRequest` built from typical file and
//! symbol names and raw strings, sent to v1 or v1alpha. Checks that the
//! server decodes what it can and answers each request once, in order,
//! echoing it; that a list names exactly the hosted services; that file
//! answers are `FileDescriptorProto`s, the one asked for first, never
//! repeating a file the stream already carried; that errors are NOT_FOUND
//! or INVALID_ARGUMENT; and that a request that does not decode ends the
//! call with an error status, never a panic.

#![no_main]

use std::collections::HashSet;

use courier::reflection::pb::v1::server_reflection_request::MessageRequest;
use courier::reflection::pb::v1::server_reflection_response::MessageResponse;
use courier::reflection::pb::v1::{ExtensionRequest, ServerReflectionRequest, ServerReflectionResponse};
use courier_fuzz::{Call, Outcome, cut, frame, run};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use prost_types::FileDescriptorProto;

const NAMES: [&str; 16] = [
    "grpc/health/v1/health.proto",
    "grpc/reflection/v1/reflection.proto",
    "grpc/reflection/v1alpha/reflection.proto",
    "grpc.health.v1.Health",
    "grpc.health.v1.Health.Check",
    "grpc.health.v1.HealthCheckResponse.ServingStatus",
    "grpc.health.v1.HealthCheckResponse.SERVING",
    "grpc.health.v1.HealthCheckRequest.service",
    ".grpc.health.v1.HealthCheckRequest",
    "grpc.reflection.v1.ServerReflectionRequest.message_request",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflectionResponse",
    "grpc.health.v1",
    "",
    "google.protobuf.Any",
    "nope.Nope",
];

const SERVICES: [&str; 3] = [
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.health.v1.Health",
];

#[derive(Arbitrary, Debug)]
enum Name {
    Typical(u8),
    Raw(String),
}

impl Name {
    fn get(&self) -> String {
        match self {
            Name::Typical(i) => NAMES[*i as usize % NAMES.len()].to_owned(),
            Name::Raw(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Ask {
    Raw(Vec<u8>),
    File(Name),
    Symbol(Name),
    Extension(Name, i32),
    ExtensionNumbers(Name),
    List(String),
    Nothing,
}

#[derive(Arbitrary, Debug)]
struct Input {
    alpha: bool,
    host: String,
    asks: Vec<(Ask, bool)>,
    cuts: Vec<u16>,
}

fn check(request: &ServerReflectionRequest, response: &ServerReflectionResponse, sent: &mut HashSet<String>) {
    assert_eq!(response.original_request.as_ref(), Some(request));
    assert_eq!(response.valid_host, request.host);
    let answer = response.message_response.as_ref().expect("every answer has a body");
    match (&request.message_request, answer) {
        (Some(MessageRequest::ListServices(_)), MessageResponse::ListServicesResponse(list)) => {
            let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(names, SERVICES);
        }
        (
            Some(
                MessageRequest::FileByFilename(_)
                | MessageRequest::FileContainingSymbol(_)
                | MessageRequest::FileContainingExtension(_),
            ),
            MessageResponse::FileDescriptorResponse(files),
        ) => {
            for (i, raw) in files.file_descriptor_proto.iter().enumerate() {
                let file = FileDescriptorProto::decode(&raw[..]).expect("a FileDescriptorProto");
                let name = file.name().to_owned();
                if let Some(MessageRequest::FileByFilename(asked)) = &request.message_request
                    && i == 0
                {
                    assert_eq!(&name, asked);
                }
                // The file asked for may come again; its imports do not.
                if i > 0 {
                    assert!(sent.insert(name.clone()), "{name} sent twice on one stream");
                } else {
                    sent.insert(name);
                }
            }
            assert!(!files.file_descriptor_proto.is_empty());
        }
        (Some(MessageRequest::AllExtensionNumbersOfType(t)), MessageResponse::AllExtensionNumbersResponse(numbers)) => {
            assert_eq!(numbers.base_type_name, t.trim_start_matches('.'));
        }
        (Some(_), MessageResponse::ErrorResponse(e)) => assert_eq!(e.error_code, 5, "{e:?}"),
        (None, MessageResponse::ErrorResponse(e)) => assert_eq!(e.error_code, 3, "{e:?}"),
        (asked, got) => panic!("{got:?} answers {asked:?}"),
    }
}

fuzz_target!(|input: Input| {
    let mut messages = Vec::new();
    for (ask, compress) in &input.asks {
        let request = |message_request| ServerReflectionRequest {
            host: input.host.clone(),
            message_request,
        };
        let bytes = match ask {
            Ask::Raw(raw) => raw.clone(),
            Ask::File(n) => request(Some(MessageRequest::FileByFilename(n.get()))).encode_to_vec(),
            Ask::Symbol(n) => request(Some(MessageRequest::FileContainingSymbol(n.get()))).encode_to_vec(),
            Ask::Extension(n, number) => request(Some(MessageRequest::FileContainingExtension(ExtensionRequest {
                containing_type: n.get(),
                extension_number: *number,
            })))
            .encode_to_vec(),
            Ask::ExtensionNumbers(n) => {
                request(Some(MessageRequest::AllExtensionNumbersOfType(n.get()))).encode_to_vec()
            }
            Ask::List(s) => request(Some(MessageRequest::ListServices(s.clone()))).encode_to_vec(),
            Ask::Nothing => request(None).encode_to_vec(),
        };
        messages.push((bytes, *compress));
    }
    let body = frame(&messages, Some(courier::Encoding::Zstd));
    let path = if input.alpha {
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
    } else {
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
    };
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/grpc"));
    headers.insert("te", HeaderValue::from_static("trailers"));
    headers.insert("grpc-encoding", HeaderValue::from_static("zstd"));
    headers.insert("grpc-accept-encoding", HeaderValue::from_static("gzip"));
    let call = Call {
        method: http::Method::POST,
        uri: format!("http://localhost{path}").parse().unwrap(),
        headers,
        body: cut(&body, &input.cuts),
    };
    let answer = match run(call) {
        Outcome::Refused => return,
        Outcome::Hung => panic!("the server did not answer"),
        Outcome::Answered(a) => a,
    };
    assert_eq!(answer.status, 200);
    let code = answer.code().expect("a grpc-status");
    let responses = answer.messages();
    let mut sent = HashSet::new();
    let mut answered = 0;
    for (bytes, _) in &messages {
        let Ok(request) = ServerReflectionRequest::decode(bytes.as_slice()) else {
            // The call ends at the first request that does not decode.
            assert_ne!(code, 0, "{answer:?}");
            break;
        };
        let response = responses.get(answered).expect("an answer for each request");
        let response = ServerReflectionResponse::decode(response.clone()).expect("a ServerReflectionResponse");
        check(&request, &response, &mut sent);
        answered += 1;
    }
    assert_eq!(responses.len(), answered, "answers for requests never sent");
    if answered == messages.len() {
        assert_eq!(code, 0, "{answer:?}");
    }
});
