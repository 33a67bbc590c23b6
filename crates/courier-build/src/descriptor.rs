//! Per-service embedded `FileDescriptorSet`s.
//!
//! Every generated server embeds the descriptors of the `.proto` file that
//! declares its service plus all of that file's transitive imports, ordered so
//! that each file comes after the files it depends on. The bytes are written
//! next to the generated code and pulled in with `include_bytes!`.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use prost::Message;
use prost_types::{FileDescriptorProto, FileDescriptorSet};

use crate::error::Error;

/// Writes one descriptor file per service found in `fds` and returns a map
/// from the fully qualified service name (`package.Service`, or `Service`
/// without a package) to the absolute path of the written file.
pub(crate) fn write_service_descriptors(
    fds: &FileDescriptorSet,
    out_dir: &Path,
) -> Result<HashMap<String, PathBuf>, Error> {
    let by_name: HashMap<&str, &FileDescriptorProto> = fds.file.iter().map(|file| (file.name(), file)).collect();

    let mut paths = HashMap::new();
    for file in fds.file.iter().filter(|file| !file.service.is_empty()) {
        let bytes = encode_closure(file, &by_name).encode_to_vec();
        for service in &file.service {
            let full_name = qualified_name(file.package(), service.name());
            let path = out_dir.join(format!("{full_name}.courier-fds.bin"));
            write_if_changed(&path, &bytes)
                .map_err(|err| Error::io(format_args!("writing {}", path.display()), &err))?;
            paths.insert(full_name, path);
        }
    }
    Ok(paths)
}

/// `package.Name`, or just `Name` for files without a package.
pub(crate) fn qualified_name(package: &str, name: &str) -> String {
    if package.is_empty() {
        name.to_owned()
    } else {
        format!("{package}.{name}")
    }
}

/// Builds the set holding `root` and its transitive dependencies, dependencies
/// first. Source code info (comments and spans) is dropped: it is not needed
/// at run time and would make every server binary larger.
fn encode_closure(root: &FileDescriptorProto, by_name: &HashMap<&str, &FileDescriptorProto>) -> FileDescriptorSet {
    fn visit<'a>(
        file: &'a FileDescriptorProto,
        by_name: &HashMap<&str, &'a FileDescriptorProto>,
        seen: &mut HashSet<&'a str>,
        order: &mut Vec<&'a FileDescriptorProto>,
    ) {
        if !seen.insert(file.name()) {
            return;
        }
        for dependency in &file.dependency {
            // Every import is present: the compiler is asked to include them.
            if let Some(dep) = by_name.get(dependency.as_str()) {
                visit(dep, by_name, seen, order);
            }
        }
        order.push(file);
    }

    let mut seen = HashSet::new();
    let mut order = Vec::new();
    visit(root, by_name, &mut seen, &mut order);
    FileDescriptorSet {
        file: order
            .into_iter()
            .map(|file| FileDescriptorProto {
                source_code_info: None,
                ..file.clone()
            })
            .collect(),
    }
}

/// Writes `contents` unless the file already holds exactly those bytes, so
/// that an unchanged descriptor does not force the including crate to rebuild.
fn write_if_changed(path: &Path, contents: &[u8]) -> io::Result<()> {
    match fs::read(path) {
        Ok(existing) if existing == contents => Ok(()),
        _ => fs::write(path, contents),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, deps: &[&str]) -> FileDescriptorProto {
        FileDescriptorProto {
            name: Some(name.to_owned()),
            dependency: deps.iter().map(|d| (*d).to_owned()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn closure_is_dependencies_first_and_deduplicated() {
        let files = [
            file("c.proto", &[]),
            file("b.proto", &["c.proto"]),
            file("a.proto", &["b.proto", "c.proto"]),
            file("unrelated.proto", &[]),
        ];
        let by_name = files.iter().map(|f| (f.name(), f)).collect();
        let set = encode_closure(&files[2], &by_name);
        let names: Vec<&str> = set.file.iter().map(|f| f.name()).collect();
        assert_eq!(names, ["c.proto", "b.proto", "a.proto"]);
    }

    #[test]
    fn qualified_names() {
        assert_eq!(qualified_name("helloworld", "Greeter"), "helloworld.Greeter");
        assert_eq!(qualified_name("", "Greeter"), "Greeter");
    }
}
