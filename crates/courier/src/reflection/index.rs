//! The descriptors of a server's services, indexed for the reflection
//! requests: files by name, symbols by full name, extensions by the message
//! they extend and their number.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use bytes::Bytes;
use prost::Message as _;
use prost_types::{DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet};

use crate::server::RegisteredService;

/// One `.proto` file.
struct File {
    /// The encoded `FileDescriptorProto`, as sent.
    encoded: Bytes,
    /// The files it imports, as indexes into `Index::files`. Imports whose
    /// descriptors no service embedded are left out.
    dependencies: Vec<usize>,
}

/// A named element of a file.
#[derive(Clone, Copy)]
struct Symbol {
    file: usize,
    is_message: bool,
}

/// Everything reflection answers from, built once per server.
#[derive(Default)]
pub(crate) struct Index {
    /// The hosted services, in the order they were added, without repeats.
    services: Vec<&'static str>,
    files: Vec<File>,
    files_by_name: HashMap<String, usize>,
    /// Keys are fully qualified names without the leading dot.
    symbols: HashMap<String, Symbol>,
    /// Extended message (no leading dot) → field number → file.
    extensions: HashMap<String, BTreeMap<i32, usize>>,
}

impl Index {
    /// Indexes the descriptors of `services`. A file that several services
    /// embed is indexed once (the first copy wins); a set that does not
    /// decode is skipped with a warning.
    pub(crate) fn build(services: &[RegisteredService]) -> Index {
        let mut index = Index::default();
        let mut imports: Vec<Vec<String>> = Vec::new();
        for &(name, fds) in services {
            if !index.services.contains(&name) {
                index.services.push(name);
            }
            let set = match FileDescriptorSet::decode(fds) {
                Ok(set) => set,
                Err(e) => {
                    tracing::warn!("reflection: the descriptors of service {name} do not decode: {e}");
                    continue;
                }
            };
            for file in set.file {
                if index.files_by_name.contains_key(file.name()) {
                    continue;
                }
                let id = index.files.len();
                index.files_by_name.insert(file.name().to_owned(), id);
                index.add_symbols(id, &file);
                imports.push(file.dependency.clone());
                index.files.push(File {
                    encoded: file.encode_to_vec().into(),
                    dependencies: Vec::new(),
                });
            }
        }
        for (id, names) in imports.into_iter().enumerate() {
            let dependencies = names
                .iter()
                .filter_map(|name| index.files_by_name.get(name).copied())
                .collect();
            index.files[id].dependencies = dependencies;
        }
        index
    }

    fn add_symbol(&mut self, name: String, file: usize, is_message: bool) {
        self.symbols.entry(name).or_insert(Symbol { file, is_message });
    }

    fn add_symbols(&mut self, id: usize, file: &FileDescriptorProto) {
        let scope = match file.package() {
            "" => String::new(),
            package => format!("{package}."),
        };
        for message in &file.message_type {
            self.add_message(id, &scope, message);
        }
        for enumeration in &file.enum_type {
            self.add_enum(id, &scope, enumeration);
        }
        for extension in &file.extension {
            self.add_extension(id, &scope, extension);
        }
        for service in &file.service {
            let name = format!("{scope}{}", service.name());
            for method in &service.method {
                self.add_symbol(format!("{name}.{}", method.name()), id, false);
            }
            self.add_symbol(name, id, false);
        }
    }

    fn add_message(&mut self, id: usize, scope: &str, message: &DescriptorProto) {
        let name = format!("{scope}{}", message.name());
        for field in &message.field {
            self.add_symbol(format!("{name}.{}", field.name()), id, false);
        }
        for oneof in &message.oneof_decl {
            self.add_symbol(format!("{name}.{}", oneof.name()), id, false);
        }
        let inner = format!("{name}.");
        for nested in &message.nested_type {
            self.add_message(id, &inner, nested);
        }
        for enumeration in &message.enum_type {
            self.add_enum(id, &inner, enumeration);
        }
        for extension in &message.extension {
            self.add_extension(id, &inner, extension);
        }
        self.add_symbol(name, id, true);
    }

    /// An enum and its values; as in C++ scoping, the values are siblings of
    /// the enum, not children.
    fn add_enum(&mut self, id: usize, scope: &str, enumeration: &EnumDescriptorProto) {
        self.add_symbol(format!("{scope}{}", enumeration.name()), id, false);
        for value in &enumeration.value {
            self.add_symbol(format!("{scope}{}", value.name()), id, false);
        }
    }

    fn add_extension(&mut self, id: usize, scope: &str, extension: &FieldDescriptorProto) {
        self.add_symbol(format!("{scope}{}", extension.name()), id, false);
        let extendee = extension.extendee().trim_start_matches('.').to_owned();
        self.extensions
            .entry(extendee)
            .or_default()
            .entry(extension.number())
            .or_insert(id);
    }

    /// The hosted services' names.
    pub(crate) fn services(&self) -> &[&'static str] {
        &self.services
    }

    /// The file with this name.
    pub(crate) fn file_by_name(&self, name: &str) -> Option<usize> {
        self.files_by_name.get(name).copied()
    }

    /// The file that defines this fully qualified symbol.
    pub(crate) fn file_containing_symbol(&self, symbol: &str) -> Option<usize> {
        self.symbols.get(symbol.trim_start_matches('.')).map(|s| s.file)
    }

    /// The file that defines extension `number` of message `extendee`.
    pub(crate) fn file_containing_extension(&self, extendee: &str, number: i32) -> Option<usize> {
        self.extensions
            .get(extendee.trim_start_matches('.'))?
            .get(&number)
            .copied()
    }

    /// The field numbers of the known extensions of `message`, in order;
    /// `None` when no such message is known.
    pub(crate) fn extension_numbers(&self, message: &str) -> Option<Vec<i32>> {
        let message = message.trim_start_matches('.');
        let numbers = match self.extensions.get(message) {
            Some(numbers) => numbers.keys().copied().collect(),
            None => Vec::new(),
        };
        match self.symbols.get(message) {
            Some(symbol) if symbol.is_message => Some(numbers),
            // An extension of a message whose file is not indexed.
            _ if !numbers.is_empty() => Some(numbers),
            _ => None,
        }
    }

    /// The encoded file `file`, followed by those of its transitive imports
    /// that are not in `sent`, each once; all of them are added to `sent`.
    /// The requested file always comes first, sent before or not: clients
    /// read it as the answer.
    pub(crate) fn with_dependencies(&self, file: usize, sent: &mut HashSet<usize>) -> Vec<Bytes> {
        let mut out = vec![self.files[file].encoded.clone()];
        sent.insert(file);
        let mut queue: VecDeque<usize> = self.files[file].dependencies.iter().copied().collect();
        while let Some(next) = queue.pop_front() {
            if sent.insert(next) {
                out.push(self.files[next].encoded.clone());
                queue.extend(self.files[next].dependencies.iter().copied());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::{EnumValueDescriptorProto, MethodDescriptorProto, OneofDescriptorProto, ServiceDescriptorProto};

    fn field(name: &str, number: i32, extendee: Option<&str>) -> FieldDescriptorProto {
        FieldDescriptorProto {
            name: Some(name.into()),
            number: Some(number),
            extendee: extendee.map(Into::into),
            ..Default::default()
        }
    }

    fn sample() -> Vec<u8> {
        let base = FileDescriptorProto {
            name: Some("base.proto".into()),
            package: Some("base".into()),
            message_type: vec![DescriptorProto {
                name: Some("Base".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let app = FileDescriptorProto {
            name: Some("app.proto".into()),
            package: Some("app".into()),
            dependency: vec!["base.proto".into(), "missing.proto".into()],
            message_type: vec![DescriptorProto {
                name: Some("Outer".into()),
                field: vec![field("id", 1, None)],
                oneof_decl: vec![OneofDescriptorProto {
                    name: Some("choice".into()),
                    ..Default::default()
                }],
                nested_type: vec![DescriptorProto {
                    name: Some("Inner".into()),
                    ..Default::default()
                }],
                enum_type: vec![EnumDescriptorProto {
                    name: Some("Mode".into()),
                    value: vec![EnumValueDescriptorProto {
                        name: Some("FAST".into()),
                        number: Some(0),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                extension: vec![field("nested_ext", 11, Some(".base.Base"))],
                ..Default::default()
            }],
            extension: vec![field("top_ext", 10, Some(".base.Base"))],
            service: vec![ServiceDescriptorProto {
                name: Some("Api".into()),
                method: vec![MethodDescriptorProto {
                    name: Some("Get".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        FileDescriptorSet { file: vec![base, app] }.encode_to_vec()
    }

    #[test]
    fn indexes_every_kind_of_symbol() {
        let fds: &'static [u8] = sample().leak();
        let index = Index::build(&[("app.Api", fds), ("app.Api", fds)]);
        assert_eq!(index.services(), ["app.Api"]);
        let app = index.file_by_name("app.proto").unwrap();
        let base = index.file_by_name("base.proto").unwrap();
        for symbol in [
            "app.Api",
            "app.Api.Get",
            "app.Outer",
            ".app.Outer",
            "app.Outer.id",
            "app.Outer.choice",
            "app.Outer.Inner",
            "app.Outer.Mode",
            "app.Outer.FAST",
            "app.top_ext",
            "app.Outer.nested_ext",
        ] {
            assert_eq!(index.file_containing_symbol(symbol), Some(app), "{symbol}");
        }
        assert_eq!(index.file_containing_symbol("base.Base"), Some(base));
        assert_eq!(index.file_containing_symbol("app.Outer.Mode.FAST"), None);
        assert_eq!(index.file_containing_symbol("app.Nope"), None);

        assert_eq!(index.file_containing_extension("base.Base", 10), Some(app));
        assert_eq!(index.file_containing_extension(".base.Base", 11), Some(app));
        assert_eq!(index.file_containing_extension("base.Base", 12), None);
        assert_eq!(index.extension_numbers("base.Base"), Some(vec![10, 11]));
        assert_eq!(index.extension_numbers("app.Outer"), Some(vec![]));
        assert_eq!(index.extension_numbers("app.Api"), None);
        assert_eq!(index.extension_numbers("app.Nope"), None);
    }

    #[test]
    fn files_come_with_unsent_dependencies() {
        let fds: &'static [u8] = sample().leak();
        let index = Index::build(&[("app.Api", fds)]);
        let app = index.file_by_name("app.proto").unwrap();
        let base = index.file_by_name("base.proto").unwrap();
        let mut sent = HashSet::new();
        let names = |files: Vec<Bytes>| -> Vec<String> {
            files
                .into_iter()
                .map(|b| FileDescriptorProto::decode(b).unwrap().name().to_owned())
                .collect()
        };
        assert_eq!(
            names(index.with_dependencies(app, &mut sent)),
            ["app.proto", "base.proto"]
        );
        assert_eq!(names(index.with_dependencies(app, &mut sent)), ["app.proto"]);
        assert_eq!(names(index.with_dependencies(base, &mut sent)), ["base.proto"]);
    }

    #[test]
    fn bad_descriptors_are_skipped() {
        let index = Index::build(&[("bad.Service", b"\xff\xff"), ("empty.Service", b"")]);
        assert_eq!(index.services(), ["bad.Service", "empty.Service"]);
        assert_eq!(index.file_containing_symbol("bad.Service"), None);
    }
}
