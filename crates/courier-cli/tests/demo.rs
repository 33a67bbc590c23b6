//! Runs `courier demo` as a person would and checks what it prints.

use std::process::Command;

#[test]
fn demo_runs_all_four_kinds_and_exits_zero() {
    let out = Command::new(env!("CARGO_BIN_EXE_courier"))
        .arg("demo")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("\"Hello, Courier!\""), "{stdout}");
    assert!(stdout.contains("[1, 2, 3, 4, 5]"), "{stdout}");
    assert!(stdout.contains("-> 42"), "{stdout}");
    assert!(stdout.contains("[\"HELLO\", \"GRPC\"]"), "{stdout}");
    assert!(stdout.contains("INVALID_ARGUMENT"), "{stdout}");
    assert!(stdout.contains("shut down gracefully"), "{stdout}");
}
