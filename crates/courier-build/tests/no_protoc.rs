//! Code generation never runs `protoc`: it works with `PROTOC` pointing at a
//! program that always fails and with no `protoc` on the `PATH`.
//!
//! This is its own test binary (with a single test) because it changes the
//! process environment, which must not race with other tests.

use std::fs;

#[test]
fn works_without_protoc() {
    let dir = tempfile::tempdir().unwrap();
    let proto = dir.path().join("proto");
    let empty_bin = dir.path().join("bin");
    fs::create_dir_all(&proto).unwrap();
    fs::create_dir_all(&empty_bin).unwrap();
    fs::write(
        proto.join("helloworld.proto"),
        r#"syntax = "proto3";
package helloworld;
import "google/protobuf/timestamp.proto";
message HelloRequest { string name = 1; }
message HelloReply { string message = 1; google.protobuf.Timestamp at = 2; }
service Greeter { rpc SayHello(HelloRequest) returns (HelloReply); }
"#,
    )
    .unwrap();

    // SAFETY: this test binary runs a single test, so no other thread reads
    // or writes the environment concurrently.
    unsafe {
        std::env::set_var("PROTOC", "/bin/false");
        std::env::set_var("PROTOC_INCLUDE", dir.path().join("nonexistent"));
        std::env::set_var("PATH", &empty_bin);
    }

    let out = dir.path().join("out");
    courier_build::configure()
        .out_dir(&out)
        .emit_rerun_if_changed(false)
        .compile(&[proto.join("helloworld.proto")], &[&proto])
        .unwrap();

    let code = fs::read_to_string(out.join("helloworld.rs")).unwrap();
    assert!(code.contains("pub mod greeter_client"), "{code}");
    assert!(code.contains("pub mod greeter_server"), "{code}");
    assert!(code.contains("::prost_types::Timestamp"), "{code}");
    assert!(out.join("helloworld.Greeter.courier-fds.bin").is_file());
}
