//! Code generation from `.proto` files, checked on the generated text and the
//! embedded descriptors (no Courier runtime needed).

use std::fs;
use std::path::Path;

use prost::Message;
use prost_types::FileDescriptorSet;

const POINT_PROTO: &str = r#"syntax = "proto3";

package routeguide.common;

// A point on the map.
message Point {
  int32 latitude = 1;
  int32 longitude = 2;
}
"#;

const ROUTE_PROTO: &str = r#"syntax = "proto3";

package routeguide;

import "common/point.proto";
import "google/protobuf/empty.proto";

message Rectangle {
  routeguide.common.Point lo = 1;
  routeguide.common.Point hi = 2;
}

message Feature {
  string name = 1;
  routeguide.common.Point location = 2;
}

message RouteSummary {
  int32 point_count = 1;
}

message RouteNote {
  routeguide.common.Point location = 1;
  string message = 2;
  bytes payload = 3;
}

// Interface exported by the server.
service RouteGuide {
  // Obtains the feature at a given position.
  rpc GetFeature(routeguide.common.Point) returns (Feature);
  rpc ListFeatures(Rectangle) returns (stream Feature);
  rpc RecordRoute(stream routeguide.common.Point) returns (RouteSummary);
  rpc RouteChat(stream RouteNote) returns (stream RouteNote);
  rpc Type(google.protobuf.Empty) returns (google.protobuf.Empty);
}
"#;

const NO_PACKAGE_PROTO: &str = r#"syntax = "proto3";

message Ping {}

service Echo {
  rpc Ping(Ping) returns (Ping);
}
"#;

/// `true` if `code` contains `needle`, ignoring all whitespace: the generated
/// code is pretty-printed, so line breaks depend on line lengths.
fn contains(code: &str, needle: &str) -> bool {
    let squash = |s: &str| s.split_whitespace().collect::<String>();
    squash(code).contains(&squash(needle))
}

fn write(dir: &Path, name: &str, contents: &str) {
    let path = dir.join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
}

/// Lays out `proto/{common/point,route,echo}.proto` under a fresh temp dir.
fn proto_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let proto = dir.path().join("proto");
    write(&proto, "common/point.proto", POINT_PROTO);
    write(&proto, "route.proto", ROUTE_PROTO);
    write(&proto, "echo.proto", NO_PACKAGE_PROTO);
    dir
}

#[test]
fn generates_clients_servers_and_descriptors() {
    let dir = proto_tree();
    let proto = dir.path().join("proto");
    let out = dir.path().join("out");

    courier_build::configure()
        .out_dir(&out)
        .emit_rerun_if_changed(false)
        .compile(&[proto.join("route.proto"), proto.join("echo.proto")], &[&proto])
        .unwrap();

    let code = fs::read_to_string(out.join("routeguide.rs")).unwrap();
    for needle in [
        // Messages still come from prost.
        "pub struct Rectangle",
        // Client side.
        "pub mod route_guide_client",
        "pub struct RouteGuideClient",
        "pub fn new(channel: ::courier::Channel) -> Self",
        "pub async fn connect(",
        "pub fn channel(&self) -> &::courier::Channel",
        "pub async fn get_feature(",
        "impl ::courier::IntoRequest<super::common::Point>",
        "impl ::courier::IntoStreamingRequest<Message = super::common::Point>",
        "::courier::Response<::courier::Streaming<super::Feature>>",
        "pub async fn r#type(",
        // Server side.
        "pub mod route_guide_server",
        "pub trait RouteGuide: ::core::marker::Send + ::core::marker::Sync + 'static",
        "type ListFeaturesStream: ::courier::codegen::Stream<",
        "type RouteChatStream: ::courier::codegen::Stream<",
        "request: ::courier::Request<::courier::Streaming<super::RouteNote>>",
        "fn r#type(",
        "pub struct RouteGuideServer<T>",
        "impl<T: RouteGuide> ::courier::server::Service for RouteGuideServer<T>",
        "pub const SERVICE_NAME: &str = \"routeguide.RouteGuide\";",
        "pub const FILE_DESCRIPTOR_SET: &[u8] = ::core::include_bytes!(",
        "\"GetFeature\" => 0usize",
        // Each method's future is an arm of nested `Either`s (no async
        // block around the dispatch): the first is `Left`, and an unknown
        // method is one `Right` per method.
        "0usize => { let codec",
        "::courier::codegen::Either::Left(call.unary(",
        &format!("{}call.unimplemented()", "::courier::codegen::Either::Right(".repeat(5)),
        // google.protobuf.Empty maps to `()`.
        "::courier::codec::ProstCodec::<(), ()>::new()",
        // Proto comments become docs.
        "/// Interface exported by the server.",
        "/// Obtains the feature at a given position.",
    ] {
        assert!(contains(&code, needle), "missing `{needle}` in:\n{code}");
    }

    // Wire paths for all four call kinds, plus the keyword-named method.
    for (path, client_call, server_call) in [
        (
            "/routeguide.RouteGuide/GetFeature",
            "self.channel.unary(",
            "call.unary(",
        ),
        (
            "/routeguide.RouteGuide/ListFeatures",
            "self.channel.server_streaming(",
            "call.server_streaming(",
        ),
        (
            "/routeguide.RouteGuide/RecordRoute",
            "self.channel.client_streaming(",
            "call.client_streaming(",
        ),
        (
            "/routeguide.RouteGuide/RouteChat",
            "self.channel.streaming(",
            "call.streaming(",
        ),
        ("/routeguide.RouteGuide/Type", "self.channel.unary(", "call.unary("),
    ] {
        assert!(contains(&code, &format!("\"{path}\"")), "missing path {path}");
        assert!(contains(&code, client_call), "missing {client_call}");
        assert!(contains(&code, server_call), "missing {server_call}");
    }

    // The imported package gets its own file; it has no services.
    let common = fs::read_to_string(out.join("routeguide.common.rs")).unwrap();
    assert!(common.contains("pub struct Point"));
    assert!(!common.contains("_client"));

    // A service without a package: the path has no package prefix and the
    // code goes to prost's default `_.rs`.
    let echo = fs::read_to_string(out.join("_.rs")).unwrap();
    assert!(echo.contains("pub mod echo_client"), "{echo}");
    assert!(echo.contains("\"/Echo/Ping\""), "{echo}");
    assert!(echo.contains("pub const SERVICE_NAME: &str = \"Echo\";"), "{echo}");

    // The descriptor file is absolute, decodes, and holds the service's file
    // after all of its transitive imports.
    let descriptor_path = out.join("routeguide.RouteGuide.courier-fds.bin");
    let absolute = std::path::absolute(&descriptor_path).unwrap();
    assert!(
        contains(&code, &format!("{:?}", absolute.to_str().unwrap())),
        "include_bytes! must use the absolute path {absolute:?}"
    );
    let bytes = fs::read(&descriptor_path).unwrap();
    let set = FileDescriptorSet::decode(bytes.as_slice()).unwrap();
    let names: Vec<&str> = set.file.iter().map(|f| f.name()).collect();
    assert_eq!(names.last(), Some(&"route.proto"), "{names:?}");
    let position = |name: &str| names.iter().position(|n| *n == name);
    assert!(position("common/point.proto").unwrap() < position("route.proto").unwrap());
    assert!(position("google/protobuf/empty.proto").is_some(), "{names:?}");
    assert!(position("echo.proto").is_none(), "unrelated file embedded: {names:?}");
    let route = set.file.last().unwrap();
    assert_eq!(route.service[0].name(), "RouteGuide");
    assert!(route.source_code_info.is_none());

    let echo_set = FileDescriptorSet::decode(fs::read(out.join("Echo.courier-fds.bin")).unwrap().as_slice()).unwrap();
    let echo_names: Vec<&str> = echo_set.file.iter().map(|f| f.name()).collect();
    assert_eq!(echo_names, ["echo.proto"]);
}

#[test]
fn client_and_server_can_be_disabled() {
    let dir = proto_tree();
    let proto = dir.path().join("proto");

    let out = dir.path().join("client-only");
    courier_build::configure()
        .out_dir(&out)
        .emit_rerun_if_changed(false)
        .build_server(false)
        .compile(&["route.proto"], &[&proto])
        .unwrap();
    let code = fs::read_to_string(out.join("routeguide.rs")).unwrap();
    assert!(code.contains("pub mod route_guide_client"));
    assert!(!code.contains("route_guide_server"));
    assert!(!out.join("routeguide.RouteGuide.courier-fds.bin").exists());

    let out = dir.path().join("server-only");
    courier_build::configure()
        .out_dir(&out)
        .emit_rerun_if_changed(false)
        .build_client(false)
        .compile(&["route.proto"], &[&proto])
        .unwrap();
    let code = fs::read_to_string(out.join("routeguide.rs")).unwrap();
    assert!(!code.contains("route_guide_client"));
    assert!(code.contains("pub mod route_guide_server"));
}

/// The text of the server trait alone, from `pub trait` to the end of its
/// block, so that assertions about it do not match the client or the wrapper.
fn server_trait(code: &str, name: &str) -> String {
    let start = code
        .find(&format!("pub trait {name}:"))
        .unwrap_or_else(|| panic!("no trait {name} in:\n{code}"));
    let end = code[start..]
        .find("\n    }\n")
        .unwrap_or_else(|| panic!("trait {name} has no end in:\n{code}"));
    code[start..start + end].to_owned()
}

#[test]
fn server_trait_methods_default_to_unimplemented() {
    let dir = proto_tree();
    let proto = dir.path().join("proto");
    let out = dir.path().join("out");
    courier_build::configure()
        .out_dir(&out)
        .emit_rerun_if_changed(false)
        .compile(&["route.proto"], &[&proto])
        .unwrap();

    let code = fs::read_to_string(out.join("routeguide.rs")).unwrap();
    let trait_code = server_trait(&code, "RouteGuide");
    for method in ["GetFeature", "ListFeatures", "RecordRoute", "RouteChat", "Type"] {
        // Up to the message: the pretty-printer adds trailing commas after it.
        let body = format!(
            "async {{ ::core::result::Result::Err(::courier::Status::unimplemented(\
             \"method {method} of service routeguide.RouteGuide is not implemented\""
        );
        assert!(
            contains(&trait_code, &body),
            "no default for {method} in:\n{trait_code}"
        );
    }
    // Every method has a body: no declaration ends in `;` after its bounds.
    assert!(!contains(&trait_code, "+ ::core::marker::Send;"), "{trait_code}");
    // Stream types stay required (associated type defaults are unstable).
    assert!(contains(&trait_code, "+ 'static;"), "{trait_code}");
}

#[test]
fn unimplemented_defaults_can_be_turned_off() {
    let dir = proto_tree();
    let proto = dir.path().join("proto");
    let out = dir.path().join("out");
    courier_build::configure()
        .out_dir(&out)
        .emit_rerun_if_changed(false)
        .unimplemented_defaults(false)
        .compile(&["route.proto"], &[&proto])
        .unwrap();

    let code = fs::read_to_string(out.join("routeguide.rs")).unwrap();
    let trait_code = server_trait(&code, "RouteGuide");
    assert!(!trait_code.contains("unimplemented"), "{trait_code}");
    assert!(!trait_code.contains("async {"), "{trait_code}");
    // Each of the five methods is a bare declaration.
    let declarations = trait_code.matches("> + ::core::marker::Send;").count();
    assert_eq!(declarations, 5, "{trait_code}");
    // The dispatch for unknown methods is unaffected.
    let unknown = format!(
        "_ => {{ {}call.unimplemented()",
        "::courier::codegen::Either::Right(".repeat(5)
    );
    assert!(contains(&code, &unknown), "{code}");
}

#[test]
fn message_options_are_passed_through() {
    let dir = proto_tree();
    let proto = dir.path().join("proto");
    let out = dir.path().join("out");

    let mut prost_config = prost_build::Config::new();
    prost_config.type_attribute(".routeguide.RouteSummary", "#[repr(C)]");
    courier_build::configure()
        .out_dir(&out)
        .emit_rerun_if_changed(false)
        .prost_config(prost_config)
        .bytes([".routeguide.RouteNote"])
        .type_attribute(".routeguide.Feature", "#[derive(PartialOrd)]")
        .field_attribute(".routeguide.Feature.name", "#[doc(alias = \"title\")]")
        .compile(&["route.proto"], &[&proto])
        .unwrap();

    let code = fs::read_to_string(out.join("routeguide.rs")).unwrap();
    // The escape-hatch config keeps its own settings...
    assert!(contains(&code, "#[repr(C)] #[derive(Clone, Copy"), "{code}");
    // ...and the builder's options are applied too.
    assert!(contains(&code, "#[derive(PartialOrd)]"), "{code}");
    assert!(contains(&code, "#[doc(alias = \"title\")]"), "{code}");
    assert!(contains(&code, "pub payload: ::prost::bytes::Bytes"), "{code}");
    // Services are still generated with a custom config.
    assert!(contains(&code, "pub mod route_guide_server"), "{code}");
}

#[test]
fn compile_protos_uses_the_parent_directory() {
    let dir = proto_tree();
    let proto = dir.path().join("proto");
    let out = dir.path().join("out");

    // `compile_protos` writes to OUT_DIR; emulate it through `configure` with
    // the same include rule, and check the shortcut's error for a bad path.
    courier_build::configure()
        .out_dir(&out)
        .emit_rerun_if_changed(false)
        .compile(&[proto.join("echo.proto")], &[&proto])
        .unwrap();
    assert!(out.join("_.rs").exists());

    let err = courier_build::compile_protos(proto.join("missing.proto")).unwrap_err();
    assert!(err.to_string().contains("missing.proto"), "{err}");
}

#[test]
fn syntax_error_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let proto = dir.path().join("proto");
    write(
        &proto,
        "bad.proto",
        "syntax = \"proto3\";\n\npackage bad;\n\nmessage Broken {\n  int32 a = 1;\n  string b = 2\n  int32 c = 3;\n}\n",
    );

    let err = courier_build::configure()
        .out_dir(dir.path().join("out"))
        .emit_rerun_if_changed(false)
        .compile(&[proto.join("bad.proto")], &[&proto])
        .unwrap_err();

    let file = proto.join("bad.proto");
    let expected_prefix = format!("{}:8:3: ", file.display());
    let display = err.to_string();
    let debug = format!("{err:?}");
    assert!(display.starts_with(&expected_prefix), "Display: {display}");
    assert!(debug.starts_with(&expected_prefix), "Debug: {debug}");
    assert!(display.contains("expected"), "Display: {display}");
    assert_eq!(err.file(), Some(file.as_path()));
    assert_eq!(err.line(), Some(8));
    assert_eq!(err.column(), Some(3));

    // Via `std::io::Error` (for `main() -> std::io::Result<()>`) the
    // location survives too.
    let io_err: std::io::Error = err.into();
    assert!(io_err.to_string().starts_with(&expected_prefix));
    assert!(format!("{io_err:?}").contains(&expected_prefix));
}

#[test]
fn type_error_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let proto = dir.path().join("proto");
    write(
        &proto,
        "types.proto",
        "syntax = \"proto3\";\npackage t;\nmessage M {\n  Unknown field = 1;\n}\n",
    );

    let err = courier_build::configure()
        .out_dir(dir.path().join("out"))
        .emit_rerun_if_changed(false)
        .compile(&["types.proto"], &[&proto])
        .unwrap_err();

    let expected_prefix = format!("{}:4:3: ", proto.join("types.proto").display());
    assert!(err.to_string().starts_with(&expected_prefix), "{err}");
    assert!(format!("{err:?}").starts_with(&expected_prefix), "{err:?}");
    assert!(err.to_string().contains("Unknown"), "{err}");
}

#[test]
fn missing_import_names_the_importing_file() {
    let dir = tempfile::tempdir().unwrap();
    let proto = dir.path().join("proto");
    write(
        &proto,
        "main.proto",
        "syntax = \"proto3\";\n\nimport \"does/not/exist.proto\";\n\nmessage M {}\n",
    );

    let err = courier_build::configure()
        .out_dir(dir.path().join("out"))
        .emit_rerun_if_changed(false)
        .compile(&[proto.join("main.proto")], &[&proto])
        .unwrap_err();

    let file = proto.join("main.proto");
    for rendered in [err.to_string(), format!("{err:?}")] {
        assert!(rendered.starts_with(&format!("{}:3:1: ", file.display())), "{rendered}");
        assert!(rendered.contains("does/not/exist.proto"), "{rendered}");
    }
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn missing_input_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let err = courier_build::configure()
        .out_dir(dir.path().join("out"))
        .emit_rerun_if_changed(false)
        .compile(&["nope.proto"], &[dir.path()])
        .unwrap_err();
    assert_eq!(err.to_string(), "nope.proto: file not found");
    assert_eq!(format!("{err:?}"), "nope.proto: file not found");
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}
