//! Builds a small user crate whose `build.rs` runs `courier-build`, against a
//! mock `courier` crate that has exactly the items of the generated-code
//! contract, under `#![deny(warnings)]` and (when available) clippy with
//! `-D warnings`. This checks that the generated code type-checks, that user
//! implementations written with plain `async fn` satisfy the generated traits,
//! and that the servers implement `courier::server::Service`.
//!
//! It runs a nested `cargo` offline, reusing the dependencies already
//! downloaded for this workspace, with a target directory that persists
//! between runs so only the first run compiles `prost`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A path as a TOML basic string.
fn toml_path(path: &Path) -> String {
    format!("{:?}", path.to_str().unwrap())
}

#[test]
fn generated_code_compiles_against_the_contract() {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let fixtures = manifest_dir.join("tests/fixtures");
    let dir = tempfile::tempdir().unwrap();

    // The user crate, with its own workspace so that it is not taken for a
    // member of the workspace it may sit in.
    let user = dir.path().join("user");
    copy_dir(&fixtures.join("user_crate"), &user);

    // The mock runtime crate, named `courier`, inside the user's workspace.
    let mock = user.join("courier");
    fs::create_dir_all(mock.join("src")).unwrap();
    fs::copy(fixtures.join("mock_courier.rs"), mock.join("src/lib.rs")).unwrap();
    fs::write(
        mock.join("Cargo.toml"),
        "[package]\nname = \"courier\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n\
         [dependencies]\nprost = \"0.14\"\n",
    )
    .unwrap();

    fs::write(
        user.join("Cargo.toml"),
        format!(
            "[package]\nname = \"user\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n\
             [workspace]\n\n\
             [dependencies]\ncourier = {{ path = \"courier\" }}\n\
             prost = \"0.14\"\nprost-types = \"0.14\"\n\n\
             [build-dependencies]\ncourier-build = {{ path = {} }}\n",
            toml_path(&manifest_dir)
        ),
    )
    .unwrap();
    // Pin dependency versions to the ones this workspace already uses.
    let lock = manifest_dir.join("../../Cargo.lock");
    if lock.is_file() {
        fs::copy(&lock, user.join("Cargo.lock")).unwrap();
    }

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("generated-code-check");
    let has_clippy = Command::new(&cargo)
        .args(["clippy", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    let mut command = Command::new(&cargo);
    if has_clippy {
        command.args(["clippy", "--all-targets"]);
    } else {
        command.arg("check");
    }
    command
        .args(["--offline", "--quiet", "--manifest-path"])
        .arg(user.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .args(["--", "-D", "warnings"])
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    // Do not let `PROTOC` matter here either.
    command.env("PROTOC", "/bin/false");
    let output = command.output().expect("failed to run cargo");
    assert!(
        output.status.success(),
        "generated code failed to build:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
