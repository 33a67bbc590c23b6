//! The README's "Quick start" is this crate: each of its code blocks must be
//! the file here that it stands for, so the quick start compiles as written
//! (`cargo build` of this crate) and cannot drift from compiled code.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A fenced code block: its language and its text, dedented to its fence.
#[derive(Debug)]
struct Block {
    lang: String,
    text: String,
}

/// The fenced code blocks of the README section headed `heading`.
fn section_blocks(readme: &str, heading: &str) -> Vec<Block> {
    let mut lines = readme.lines().skip_while(|l| *l != heading);
    assert!(lines.next().is_some(), "README.md has no {heading:?} section");
    let section: Vec<&str> = lines.take_while(|l| !l.starts_with("## ")).collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < section.len() {
        let line = section[i];
        let indent = line.len() - line.trim_start().len();
        let Some(lang) = line.trim_start().strip_prefix("```") else {
            i += 1;
            continue;
        };
        let mut text = String::new();
        i += 1;
        while i < section.len() && section[i].trim_start() != "```" {
            let body = section[i];
            let cut = body.len() - body.trim_start().len();
            assert!(
                body.trim().is_empty() || cut >= indent,
                "a line of a {lang} block is indented less than its fence: {body:?}"
            );
            text.push_str(body.get(indent..).unwrap_or(""));
            text.push('\n');
            i += 1;
        }
        assert!(i < section.len(), "an unclosed {lang} block");
        blocks.push(Block {
            lang: lang.to_string(),
            text,
        });
        i += 1;
    }
    blocks
}

fn quick_start() -> Vec<Block> {
    let blocks = section_blocks(&read(&root().join("README.md")), "## Quick start");
    let langs: Vec<&str> = blocks.iter().map(|b| b.lang.as_str()).collect();
    assert_eq!(
        langs,
        ["proto", "toml", "rust", "rust", "rust", "sh", "sh"],
        "the quick start's blocks changed; update this test and the files it checks"
    );
    blocks
}

/// Asserts that a README block is this crate's file `path`, character for
/// character.
fn assert_is_file(block: &Block, path: &str) {
    let file = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join(path));
    assert_eq!(
        block.text, file,
        "README.md's quick start differs from examples/quickstart/{path}, which is compiled"
    );
}

#[test]
fn the_proto_is_the_compiled_one() {
    assert_is_file(&quick_start()[0], "proto/helloworld.proto");
}

#[test]
fn build_rs_is_the_compiled_one() {
    assert_is_file(&quick_start()[2], "build.rs");
}

#[test]
fn the_server_is_the_compiled_one() {
    assert_is_file(&quick_start()[3], "src/bin/server.rs");
}

#[test]
fn the_client_is_the_compiled_one() {
    assert_is_file(&quick_start()[4], "src/bin/client.rs");
}

/// `[section]` -> dependency -> its line's text after `=`, from a simple
/// Cargo manifest (one dependency a line).
fn dependencies(toml: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut section = String::new();
    for line in toml.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
        } else if section.ends_with("dependencies")
            && let Some((name, spec)) = line.split_once('=')
        {
            let entry = out.entry(section.clone()).or_default();
            entry.insert(name.trim().to_string(), spec.trim().to_string());
        }
    }
    out
}

/// The `version = "..."` of an inline table, or the string itself.
fn version_of(spec: &str) -> Option<String> {
    let quoted = |s: &str| s.split('"').nth(1).map(str::to_string);
    match spec.find("version") {
        Some(at) => quoted(&spec[at..]),
        None if spec.starts_with('"') => quoted(spec),
        None => None,
    }
}

/// The `features = [...]` of an inline table.
fn features_of(spec: &str) -> Vec<String> {
    let Some(at) = spec.find("features") else {
        return Vec::new();
    };
    let list = &spec[at..];
    let list = &list[list.find('[').unwrap() + 1..list.find(']').unwrap()];
    list.split(',')
        .map(|f| f.trim().trim_matches('"').to_string())
        .filter(|f| !f.is_empty())
        .collect()
}

#[test]
fn the_dependencies_are_the_compiled_ones() {
    let readme = dependencies(&quick_start()[1].text);
    let ours = dependencies(&read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")));
    let workspace = dependencies(&read(&root().join("Cargo.toml")));
    let workspace = &workspace["workspace.dependencies"];
    let names = |deps: &BTreeMap<String, BTreeMap<String, String>>| -> BTreeMap<String, Vec<String>> {
        deps.iter()
            .map(|(section, deps)| (section.clone(), deps.keys().cloned().collect()))
            .collect()
    };
    assert_eq!(
        names(&readme),
        names(&ours),
        "the same dependencies in the same sections"
    );
    for (section, deps) in &readme {
        for (name, spec) in deps {
            // What the README asks for is what this crate builds with: its
            // version requirement matches the workspace's version, and its
            // features are enabled here.
            let wanted = version_of(spec).unwrap_or_else(|| panic!("no version for {name}: {spec}"));
            let have = version_of(&workspace[name]).unwrap_or_else(|| panic!("no workspace version for {name}"));
            let wanted_parts: Vec<&str> = wanted.split('.').collect();
            let have_parts: Vec<&str> = have.split('.').collect();
            assert!(
                have_parts.starts_with(&wanted_parts),
                "README asks for {name} {wanted:?}; the workspace has {have:?}"
            );
            let features = features_of(&ours[section][name]);
            for feature in features_of(spec) {
                assert!(
                    features.contains(&feature),
                    "README enables {name}'s {feature:?}; examples/quickstart does not"
                );
            }
        }
    }
}

#[test]
fn the_commands_name_programs_that_exist() {
    let blocks = quick_start();
    let commands: String = blocks
        .iter()
        .filter(|b| b.lang == "sh")
        .map(|b| b.text.as_str())
        .collect();
    let mut programs = 0;
    for line in commands.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let after = |flag: &str| words.iter().position(|w| *w == flag).map(|i| words[i + 1]);
        let (Some(package), Some(kind_and_name)) = (
            after("-p"),
            after("--example")
                .map(|n| ("example", n))
                .or(after("--bin").map(|n| ("bin", n))),
        ) else {
            continue;
        };
        let (kind, name) = kind_and_name;
        let manifest = match package {
            "examples" => root().join("examples/Cargo.toml"),
            "quickstart" => Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"),
            other => panic!("a quick start command runs an unknown package {other:?}: {line}"),
        };
        let manifest = read(&manifest);
        let declared = manifest
            .split(&format!("[[{kind}]]"))
            .skip(1)
            .any(|target| target.contains(&format!("name = \"{name}\"")));
        assert!(declared, "{package} has no {kind} {name:?}: {line}");
        programs += 1;
    }
    assert!(programs > 0, "no cargo run command in:\n{commands}");
}
