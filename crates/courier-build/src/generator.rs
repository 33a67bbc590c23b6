//! The `prost_build::ServiceGenerator` that writes Courier clients and servers.
//!
//! The generated code only refers to the Courier runtime through fully
//! qualified `::courier::...` paths and to the standard library through
//! `::core::...`, so it does not depend on what the including module imports.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use prost_build::{Comments, Method, Service, ServiceGenerator};

use crate::descriptor::qualified_name;
use crate::ident::{snake_to_upper_camel, to_snake_case};

/// Lints silenced inside generated modules. The generated code is meant to be
/// warning-free, but it lands in user crates with unknown lint settings
/// (`missing_docs`, `unreachable_pub`, clippy's pedantic group, ...).
const ALLOW_LINTS: &str = "#![allow(dead_code, missing_docs, unused_qualifications, \
     unreachable_pub, clippy::all, clippy::pedantic, clippy::nursery)]";

/// Generated `::core::result::Result` spelled out once.
const RESULT: &str = "::core::result::Result";
const STATUS: &str = "::courier::Status";
const SEND: &str = "::core::marker::Send";

/// Inherent client methods that an RPC method must not shadow.
const RESERVED_CLIENT_METHODS: [&str; 3] = ["new", "connect", "channel"];

/// Writes a `<service>_client` and/or `<service>_server` module per service.
pub(crate) struct CourierServiceGenerator {
    pub(crate) build_client: bool,
    pub(crate) build_server: bool,
    /// Whether server trait methods get a default body answering
    /// UNIMPLEMENTED.
    pub(crate) unimplemented_defaults: bool,
    /// Absolute path of the encoded descriptor set, by `package.Service`.
    pub(crate) descriptors: HashMap<String, PathBuf>,
}

/// The four gRPC call shapes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unary,
    ClientStreaming,
    ServerStreaming,
    Streaming,
}

impl Kind {
    fn of(method: &Method) -> Kind {
        match (method.client_streaming, method.server_streaming) {
            (false, false) => Kind::Unary,
            (true, false) => Kind::ClientStreaming,
            (false, true) => Kind::ServerStreaming,
            (true, true) => Kind::Streaming,
        }
    }

    /// Name of the matching `Channel` / `ServerCall` method.
    fn call_fn(self) -> &'static str {
        match self {
            Kind::Unary => "unary",
            Kind::ClientStreaming => "client_streaming",
            Kind::ServerStreaming => "server_streaming",
            Kind::Streaming => "streaming",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Kind::Unary => "unary",
            Kind::ClientStreaming => "client-streaming",
            Kind::ServerStreaming => "server-streaming",
            Kind::Streaming => "bidirectional-streaming",
        }
    }

    fn streams_requests(self) -> bool {
        matches!(self, Kind::ClientStreaming | Kind::Streaming)
    }

    fn streams_responses(self) -> bool {
        matches!(self, Kind::ServerStreaming | Kind::Streaming)
    }
}

/// Everything about one method that the templates need, computed once.
struct MethodInfo<'a> {
    method: &'a Method,
    kind: Kind,
    /// Request message type as seen from inside the generated module.
    input: String,
    /// Response message type as seen from inside the generated module.
    output: String,
    /// `/package.Service/Method`.
    path: String,
}

impl<'a> MethodInfo<'a> {
    fn new(service_full_name: &str, method: &'a Method) -> Self {
        MethodInfo {
            method,
            kind: Kind::of(method),
            input: type_from_submodule(&method.input_type),
            output: type_from_submodule(&method.output_type),
            path: format!("/{service_full_name}/{}", method.proto_name),
        }
    }

    /// The associated stream type of a response-streaming method.
    fn stream_type_name(&self) -> String {
        format!("{}Stream", snake_to_upper_camel(&self.method.name))
    }
}

/// Rewrites a Rust type path produced by prost (relative to the package
/// module) so that it resolves from a module nested one level deeper.
fn type_from_submodule(rust_type: &str) -> String {
    let absolute = rust_type.starts_with("::") || rust_type.starts_with("crate::") || rust_type == "()";
    if absolute {
        rust_type.to_owned()
    } else {
        format!("super::{rust_type}")
    }
}

/// Appends the proto comments as doc comments, or `fallback` when the
/// definition has none.
fn push_docs(buf: &mut String, comments: &Comments, indent: u8, fallback: &str) {
    if comments.leading.is_empty() && comments.trailing.is_empty() {
        push_doc_line(buf, indent, fallback);
    } else {
        comments.append_with_indent(indent, buf);
    }
}

fn push_doc_line(buf: &mut String, indent: u8, text: &str) {
    push_indent(buf, indent);
    buf.push_str("/// ");
    buf.push_str(text);
    buf.push('\n');
}

fn push_indent(buf: &mut String, indent: u8) {
    for _ in 0..indent {
        buf.push_str("    ");
    }
}

impl ServiceGenerator for CourierServiceGenerator {
    fn generate(&mut self, service: Service, buf: &mut String) {
        let full_name = qualified_name(&service.package, &service.proto_name);
        let methods: Vec<MethodInfo<'_>> = service
            .methods
            .iter()
            .map(|method| MethodInfo::new(&full_name, method))
            .collect();
        let module_base = to_snake_case(&service.proto_name);

        if self.build_client {
            write_client(buf, &service, &full_name, &module_base, &methods);
        }
        if self.build_server {
            let descriptor = self.descriptors.get(&full_name);
            let server = ServerOptions {
                descriptor,
                unimplemented_defaults: self.unimplemented_defaults,
            };
            write_server(buf, &service, &full_name, &module_base, &methods, &server);
        }
    }
}

fn write_client(buf: &mut String, service: &Service, full_name: &str, module_base: &str, methods: &[MethodInfo<'_>]) {
    let client = format!("{}Client", service.name);
    let _ = writeln!(
        buf,
        "/// Generated client for the `{full_name}` service.\n\
         pub mod {module_base}_client {{\n    {ALLOW_LINTS}"
    );
    push_docs(
        buf,
        &service.comments,
        1,
        &format!("Client for the `{full_name}` service."),
    );
    let _ = writeln!(
        buf,
        r#"    ///
    /// Cloning a client is cheap: clones share the underlying channel.
    #[derive(Clone, Debug)]
    pub struct {client} {{
        channel: ::courier::Channel,
    }}

    impl {client} {{
        /// Creates a client that sends its calls over `channel`.
        pub fn new(channel: ::courier::Channel) -> Self {{
            Self {{ channel }}
        }}

        /// Connects to `target` and returns a client using the new channel.
        pub async fn connect(target: impl ::core::convert::AsRef<str>) -> {RESULT}<Self, {STATUS}> {{
            let channel = ::courier::Channel::connect(target).await?;
            {RESULT}::Ok(Self::new(channel))
        }}

        /// The channel this client sends its calls over.
        pub fn channel(&self) -> &::courier::Channel {{
            &self.channel
        }}"#
    );

    for info in methods {
        let method = info.method;
        let name = if RESERVED_CLIENT_METHODS.contains(&method.name.as_str()) {
            format!("{}_rpc", method.name)
        } else {
            method.name.clone()
        };
        let (input, output, path) = (&info.input, &info.output, &info.path);
        buf.push('\n');
        push_docs(
            buf,
            &method.comments,
            2,
            &format!("Calls the {} method `{path}`.", info.kind.description()),
        );
        let (param, conversion) = if info.kind.streams_requests() {
            (
                format!("impl ::courier::IntoStreamingRequest<Message = {input}>"),
                "::courier::IntoStreamingRequest::into_streaming_request(request)".to_owned(),
            )
        } else {
            (
                format!("impl ::courier::IntoRequest<{input}>"),
                format!("::courier::IntoRequest::<{input}>::into_request(request)"),
            )
        };
        let response = if info.kind.streams_responses() {
            format!("::courier::Streaming<{output}>")
        } else {
            output.clone()
        };
        let call_fn = info.kind.call_fn();
        let _ = writeln!(
            buf,
            r#"        pub async fn {name}(
            &self,
            request: {param},
        ) -> {RESULT}<::courier::Response<{response}>, {STATUS}> {{
            let request = {conversion};
            let codec = ::courier::codec::ProstCodec::<{input}, {output}>::new();
            self.channel.{call_fn}(request, "{path}", codec).await
        }}"#
        );
    }
    buf.push_str("    }\n}\n");
}

/// Per-service settings of the server module.
struct ServerOptions<'a> {
    /// The encoded descriptor set to embed, if one was written.
    descriptor: Option<&'a PathBuf>,
    /// Whether trait methods get a default body answering UNIMPLEMENTED.
    unimplemented_defaults: bool,
}

/// The message of the UNIMPLEMENTED status a default trait method answers
/// with. Worded like the runtime's answer for a method no service has
/// (`ServerCall::unimplemented`), but saying the method exists.
fn unimplemented_message(full_name: &str, method: &Method) -> String {
    format!("method {} of service {full_name} is not implemented", method.proto_name)
}

fn write_server(
    buf: &mut String,
    service: &Service,
    full_name: &str,
    module_base: &str,
    methods: &[MethodInfo<'_>],
    options: &ServerOptions<'_>,
) {
    let trait_name = &service.name;
    let server = format!("{trait_name}Server");
    let _ = writeln!(
        buf,
        "/// Generated server for the `{full_name}` service.\n\
         pub mod {module_base}_server {{\n    {ALLOW_LINTS}"
    );

    // The trait the application implements.
    push_docs(
        buf,
        &service.comments,
        1,
        &format!("The `{full_name}` service, implemented by the application."),
    );
    let _ = writeln!(
        buf,
        r#"    ///
    /// Serve an implementation with [`{server}`]. Methods can be written as
    /// plain `async fn`s."#
    );
    if options.unimplemented_defaults {
        buf.push_str(
            r#"    ///
    /// Every method has a default that answers `UNIMPLEMENTED`, so an
    /// implementation only overrides the methods it serves, and a method added
    /// to the `.proto` file later does not break it. An implementation must
    /// still name the stream type of each response-streaming method, even one
    /// it leaves to the default (Rust has no defaults for associated types).
"#,
        );
    }
    let _ = writeln!(
        buf,
        "    pub trait {trait_name}: {SEND} + ::core::marker::Sync + 'static {{"
    );
    for (index, info) in methods.iter().enumerate() {
        let method = info.method;
        let (input, output) = (&info.input, &info.output);
        if index > 0 {
            buf.push('\n');
        }
        let response = if info.kind.streams_responses() {
            let stream = info.stream_type_name();
            let _ = writeln!(
                buf,
                r#"        /// The stream of responses returned by [`{trait_name}::{name}`].
        type {stream}: ::courier::codegen::Stream<Item = {RESULT}<{output}, {STATUS}>>
            + {SEND}
            + 'static;
"#,
                name = method.name,
            );
            format!("Self::{stream}")
        } else {
            output.clone()
        };
        let request = if info.kind.streams_requests() {
            format!("::courier::Streaming<{input}>")
        } else {
            input.clone()
        };
        push_docs(
            buf,
            &method.comments,
            2,
            &format!("Handles the {} method `{}`.", info.kind.description(), info.path),
        );
        let signature = format!(
            r#"        fn {name}(
            &self,
            request: ::courier::Request<{request}>,
        ) -> impl ::courier::codegen::Future<
            Output = {RESULT}<::courier::Response<{response}>, {STATUS}>,
        > + {SEND}"#,
            name = method.name,
        );
        if options.unimplemented_defaults {
            let message = unimplemented_message(full_name, method);
            push_doc_line(buf, 2, "");
            push_doc_line(buf, 2, "By default, answers `UNIMPLEMENTED`.");
            // `{:?}` on a `str` yields a valid Rust string literal.
            let _ = writeln!(
                buf,
                r#"{signature} {{
            ::core::mem::drop(request);
            async {{ {RESULT}::Err({STATUS}::unimplemented({message:?})) }}
        }}"#
            );
        } else {
            let _ = writeln!(buf, "{signature};");
        }
    }
    buf.push_str("    }\n\n");

    // Constants.
    let descriptor_expr = match options.descriptor.and_then(|path| path.to_str()) {
        // `{:?}` on a `str` yields a valid Rust string literal.
        Some(path) => format!("::core::include_bytes!({path:?})"),
        None => "&[]".to_owned(),
    };
    let _ = writeln!(
        buf,
        r#"    /// The fully qualified name of the service: `{full_name}`.
    pub const SERVICE_NAME: &str = "{full_name}";

    /// The encoded `google.protobuf.FileDescriptorSet` of the `.proto` file
    /// that declares this service, preceded by all of its transitive imports.
    pub const FILE_DESCRIPTOR_SET: &[u8] = {descriptor_expr};
"#
    );

    // The server wrapper.
    let _ = writeln!(
        buf,
        r#"    /// Serves an implementation of [`{trait_name}`] as the `{full_name}` service.
    pub struct {server}<T> {{
        inner: ::courier::codegen::Arc<T>,
    }}

    impl<T: {trait_name}> {server}<T> {{
        /// Wraps the service implementation `inner`.
        pub fn new(inner: T) -> Self {{
            Self::from_arc(::courier::codegen::Arc::new(inner))
        }}

        /// Wraps an implementation that is already shared behind an `Arc`.
        pub fn from_arc(inner: ::courier::codegen::Arc<T>) -> Self {{
            Self {{ inner }}
        }}
    }}

    impl<T> ::core::clone::Clone for {server}<T> {{
        fn clone(&self) -> Self {{
            Self {{
                inner: ::courier::codegen::Arc::clone(&self.inner),
            }}
        }}
    }}

    impl<T> ::core::fmt::Debug for {server}<T> {{
        fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {{
            f.debug_struct("{server}").finish_non_exhaustive()
        }}
    }}

    impl<T: {trait_name}> ::courier::server::Service for {server}<T> {{
        const NAME: &'static str = SERVICE_NAME;
        const FILE_DESCRIPTOR_SET: &'static [u8] = FILE_DESCRIPTOR_SET;

        fn call(
            &self,
            call: ::courier::server::ServerCall,
        ) -> impl ::courier::codegen::Future<Output = ()> + {SEND} {{"#
    );

    if methods.is_empty() {
        buf.push_str("            call.unimplemented()\n");
    } else {
        // No async block around the match: it would hold the call as well
        // as the method's future, which holds it again, and every move of
        // the call's future would copy both. Each method's future is one
        // arm of nested `Either`s instead: the i-th is i `Right`s and a
        // `Left`, and UNIMPLEMENTED is all `Right`s.
        buf.push_str(
            "            let inner: &T = &self.inner;\n            \
             let method = match call.method() {\n",
        );
        for (index, info) in methods.iter().enumerate() {
            let _ = writeln!(buf, "                {:?} => {index}usize,", info.method.proto_name);
        }
        buf.push_str("                _ => usize::MAX,\n            };\n            match method {\n");
        let right = "::courier::codegen::Either::Right(";
        for (index, info) in methods.iter().enumerate() {
            let (input, output) = (&info.input, &info.output);
            let _ = writeln!(
                buf,
                r#"                {index}usize => {{
                    let codec = ::courier::codec::ProstCodec::<{output}, {input}>::new();
                    {rights}::courier::codegen::Either::Left(call.{call_fn}(codec, move |request| inner.{name}(request))){close}
                }}"#,
                rights = right.repeat(index),
                close = ")".repeat(index),
                call_fn = info.kind.call_fn(),
                name = info.method.name,
            );
        }
        let _ = writeln!(
            buf,
            "                _ => {}call.unimplemented(){},\n            }}",
            right.repeat(methods.len()),
            ")".repeat(methods.len()),
        );
    }
    buf.push_str("        }\n    }\n}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_paths_from_submodule() {
        assert_eq!(type_from_submodule("HelloRequest"), "super::HelloRequest");
        assert_eq!(
            type_from_submodule("super::common::Point"),
            "super::super::common::Point"
        );
        assert_eq!(type_from_submodule("()"), "()");
        assert_eq!(
            type_from_submodule("::prost_types::Timestamp"),
            "::prost_types::Timestamp"
        );
        assert_eq!(type_from_submodule("crate::pb::Foo"), "crate::pb::Foo");
    }
}
