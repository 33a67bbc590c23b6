//! `courier list` and `courier describe`: what a server offers, with its
//! types shown as proto source.
//!
//! The printer writes services, methods, messages (with their oneofs, maps,
//! nested types and reserved ranges), enums, fields and enum values back as
//! `.proto` text, with the leading comments when the descriptors carry
//! source information. Type names are fully qualified (`.pkg.Message`), so
//! any of them can be described in turn.

use std::fmt::Write as _;

use prost_reflect::{
    Cardinality, DescriptorPool, EnumDescriptor, EnumValueDescriptor, FieldDescriptor, Kind, MessageDescriptor,
    MethodDescriptor, ServiceDescriptor, Syntax,
};
use prost_types::FileDescriptorProto;

use crate::connect::ConnectArgs;
use crate::error::{Error, Result};
use crate::source::{SourceArgs, open};

/// `courier list`.
#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// The server: HOST:PORT, http(s)://HOST:PORT, or a target such as
    /// dns:///HOST:PORT, ipv4:ADDR:PORT,ADDR:PORT, ipv6:[ADDR]:PORT,
    /// unix:PATH, unix-abstract:NAME or passthrough:///HOST:PORT.
    pub addr: String,
    /// List the methods of this service instead of the services.
    pub service: Option<String>,
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// `courier describe`.
#[derive(clap::Args, Debug)]
pub struct DescribeArgs {
    /// The server: HOST:PORT, http(s)://HOST:PORT, or a target such as
    /// dns:///HOST:PORT, ipv4:ADDR:PORT,ADDR:PORT, ipv6:[ADDR]:PORT,
    /// unix:PATH, unix-abstract:NAME or passthrough:///HOST:PORT.
    pub addr: String,
    /// A service, method, message, enum, field or enum value, fully
    /// qualified (pkg.Service/Method works too). Without it, every service
    /// is described.
    pub symbol: Option<String>,
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Runs `courier list`.
pub async fn list(args: ListArgs) -> Result<()> {
    let (_channel, mut source, _) = open(&args.addr, &args.connect, &args.source).await?;
    match args.service {
        None => {
            for name in source.services().await? {
                println!("{name}");
            }
        }
        Some(name) => {
            let service = source.service(&name).await?;
            for method in service.methods() {
                println!("{}", method.full_name());
            }
        }
    }
    Ok(())
}

/// Runs `courier describe`.
pub async fn describe(args: DescribeArgs) -> Result<()> {
    let (_channel, mut source, _) = open(&args.addr, &args.connect, &args.source).await?;
    let symbols = match &args.symbol {
        Some(symbol) => vec![symbol.trim_start_matches(['.', '/']).replace('/', ".")],
        None => source.services().await?,
    };
    let mut out = String::new();
    for symbol in symbols {
        let shown = match source.find(&symbol).await? {
            Some(pool) => describe_symbol(&pool, &symbol),
            None => None,
        };
        let Some(text) = shown else {
            let services = source.services().await?;
            return Err(Error::msg(format!(
                "unknown symbol {symbol}; the services are: {}",
                services.join(", ")
            )));
        };
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&text);
    }
    print!("{out}");
    Ok(())
}

/// `symbol` introduced and shown as proto source, or `None` when `pool`
/// does not define it.
pub fn describe_symbol(pool: &DescriptorPool, symbol: &str) -> Option<String> {
    let mut p = Printer::default();
    let what = if let Some(s) = pool.get_service_by_name(symbol) {
        p.service(&s);
        "a service"
    } else if let Some(m) = pool.get_message_by_name(symbol) {
        p.message(&m);
        "a message"
    } else if let Some(e) = pool.get_enum_by_name(symbol) {
        p.enumeration(&e);
        "an enum"
    } else if let Some(x) = pool.get_extension_by_name(symbol) {
        let extendee = x.containing_message();
        p.line(&format!("extend .{} {{", extendee.full_name()));
        p.indent += 1;
        p.line(&field_line(
            &field_label_of_extension(&x),
            x.name(),
            x.number(),
            &type_of(&x.kind()),
        ));
        p.indent -= 1;
        p.line("}");
        "an extension"
    } else {
        let (parent, name) = symbol.rsplit_once('.')?;
        if let Some(m) = pool
            .get_service_by_name(parent)
            .and_then(|s| s.methods().find(|m| m.name() == name))
        {
            p.comments(m.parent_file().file_descriptor_proto(), m.path());
            p.line(&method_line(&m));
            "a method"
        } else if let Some(f) = pool.get_message_by_name(parent).and_then(|m| m.get_field_by_name(name)) {
            p.field(&f);
            "a field"
        } else if let Some(v) = pool.get_enum_by_name(parent).and_then(|e| e.get_value_by_name(name)) {
            p.value(&v);
            "an enum value"
        } else {
            return None;
        }
    };
    Some(format!("{symbol} is {what}:\n{}", p.out))
}

#[derive(Default)]
struct Printer {
    out: String,
    indent: usize,
}

impl Printer {
    fn line(&mut self, text: &str) {
        for _ in 0..self.indent {
            self.out.push_str("  ");
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    /// The leading comments of the element at `path`, if the file has
    /// source information.
    fn comments(&mut self, file: &FileDescriptorProto, path: &[i32]) {
        let Some(info) = &file.source_code_info else {
            return;
        };
        let Some(comment) = info
            .location
            .iter()
            .find(|l| l.path == path)
            .and_then(|l| l.leading_comments.as_deref())
        else {
            return;
        };
        for line in comment.trim_end().lines() {
            let line = line.trim_end();
            if line.is_empty() {
                self.line("//");
            } else {
                self.line(&format!("//{line}"));
            }
        }
    }

    fn service(&mut self, s: &ServiceDescriptor) {
        self.comments(s.parent_file().file_descriptor_proto(), s.path());
        self.line(&format!("service {} {{", s.name()));
        self.indent += 1;
        for m in s.methods() {
            self.comments(m.parent_file().file_descriptor_proto(), m.path());
            self.line(&method_line(&m));
        }
        self.indent -= 1;
        self.line("}");
    }

    fn message(&mut self, m: &MessageDescriptor) {
        self.comments(m.parent_file().file_descriptor_proto(), m.path());
        self.line(&format!("message {} {{", m.name()));
        self.indent += 1;
        let mut oneofs_done = Vec::new();
        for f in m.fields() {
            match f.containing_oneof().filter(|o| !o.is_synthetic()) {
                Some(oneof) => {
                    if oneofs_done.contains(&oneof.name().to_string()) {
                        continue;
                    }
                    oneofs_done.push(oneof.name().to_string());
                    self.comments(m.parent_file().file_descriptor_proto(), oneof.path());
                    self.line(&format!("oneof {} {{", oneof.name()));
                    self.indent += 1;
                    for f in oneof.fields() {
                        self.field(&f);
                    }
                    self.indent -= 1;
                    self.line("}");
                }
                None => self.field(&f),
            }
        }
        for child in m.child_messages().filter(|c| !c.is_map_entry()) {
            self.message(&child);
        }
        for child in m.child_enums() {
            self.enumeration(&child);
        }
        let ranges: Vec<String> = m
            .extension_ranges()
            .map(|r| range_text(r.start as i64, r.end as i64 - 1, 536_870_911))
            .collect();
        if !ranges.is_empty() {
            self.line(&format!("extensions {};", ranges.join(", ")));
        }
        let ranges: Vec<String> = m
            .reserved_ranges()
            .map(|r| range_text(r.start as i64, r.end as i64 - 1, 536_870_911))
            .collect();
        if !ranges.is_empty() {
            self.line(&format!("reserved {};", ranges.join(", ")));
        }
        let names: Vec<String> = m.reserved_names().map(|n| format!("{n:?}")).collect();
        if !names.is_empty() {
            self.line(&format!("reserved {};", names.join(", ")));
        }
        self.indent -= 1;
        self.line("}");
    }

    fn field(&mut self, f: &FieldDescriptor) {
        self.comments(f.parent_file().file_descriptor_proto(), f.path());
        let label = field_label(f);
        let ty = if f.is_map() {
            let Kind::Message(entry) = f.kind() else {
                unreachable!("a map field's kind is its entry message")
            };
            format!(
                "map<{}, {}>",
                type_of(&entry.map_entry_key_field().kind()),
                type_of(&entry.map_entry_value_field().kind())
            )
        } else {
            type_of(&f.kind())
        };
        let mut line = field_line(label, f.name(), f.number(), &ty);
        let mut options = Vec::new();
        let proto = f.field_descriptor_proto();
        if let Some(default) = &proto.default_value {
            let shown = match f.kind() {
                Kind::String | Kind::Bytes => format!("{default:?}"),
                _ => default.clone(),
            };
            options.push(format!("default = {shown}"));
        }
        if proto.options.as_ref().is_some_and(|o| o.deprecated()) {
            options.push("deprecated = true".to_string());
        }
        if !options.is_empty() {
            line.insert_str(line.len() - 1, &format!(" [{}]", options.join(", ")));
        }
        self.line(&line);
    }

    fn enumeration(&mut self, e: &EnumDescriptor) {
        self.comments(e.parent_file().file_descriptor_proto(), e.path());
        self.line(&format!("enum {} {{", e.name()));
        self.indent += 1;
        for v in e.values() {
            self.value(&v);
        }
        let ranges: Vec<String> = e
            .reserved_ranges()
            .map(|r| range_text(*r.start() as i64, *r.end() as i64, i32::MAX as i64))
            .collect();
        if !ranges.is_empty() {
            self.line(&format!("reserved {};", ranges.join(", ")));
        }
        let names: Vec<String> = e.reserved_names().map(|n| format!("{n:?}")).collect();
        if !names.is_empty() {
            self.line(&format!("reserved {};", names.join(", ")));
        }
        self.indent -= 1;
        self.line("}");
    }

    fn value(&mut self, v: &EnumValueDescriptor) {
        self.comments(v.parent_file().file_descriptor_proto(), v.path());
        let deprecated = v
            .enum_value_descriptor_proto()
            .options
            .as_ref()
            .is_some_and(|o| o.deprecated());
        let option = if deprecated { " [deprecated = true]" } else { "" };
        self.line(&format!("{} = {}{option};", v.name(), v.number()));
    }
}

/// `rpc Name(stream .pkg.In) returns (.pkg.Out);`
fn method_line(m: &MethodDescriptor) -> String {
    let stream = |yes: bool| if yes { "stream " } else { "" };
    format!(
        "rpc {}({}.{}) returns ({}.{});",
        m.name(),
        stream(m.is_client_streaming()),
        m.input().full_name(),
        stream(m.is_server_streaming()),
        m.output().full_name()
    )
}

fn field_line(label: &str, name: &str, number: u32, ty: &str) -> String {
    format!("{label}{ty} {name} = {number};")
}

/// `repeated `, `optional `, `required ` or nothing, as the file's syntax
/// writes it.
fn field_label(f: &FieldDescriptor) -> &'static str {
    if f.is_map() {
        return "";
    }
    if f.is_list() {
        return "repeated ";
    }
    if f.containing_oneof().is_some_and(|o| !o.is_synthetic()) {
        return "";
    }
    match f.parent_file().syntax() {
        Syntax::Proto3 if f.field_descriptor_proto().proto3_optional() => "optional ",
        Syntax::Proto3 => "",
        _ => match f.cardinality() {
            Cardinality::Required => "required ",
            _ => "optional ",
        },
    }
}

fn field_label_of_extension(x: &prost_reflect::ExtensionDescriptor) -> String {
    if x.is_list() {
        "repeated ".to_string()
    } else if x.parent_file().syntax() == Syntax::Proto2 {
        "optional ".to_string()
    } else {
        String::new()
    }
}

/// The proto name of a field's type.
fn type_of(kind: &Kind) -> String {
    match kind {
        Kind::Double => "double".into(),
        Kind::Float => "float".into(),
        Kind::Int32 => "int32".into(),
        Kind::Int64 => "int64".into(),
        Kind::Uint32 => "uint32".into(),
        Kind::Uint64 => "uint64".into(),
        Kind::Sint32 => "sint32".into(),
        Kind::Sint64 => "sint64".into(),
        Kind::Fixed32 => "fixed32".into(),
        Kind::Fixed64 => "fixed64".into(),
        Kind::Sfixed32 => "sfixed32".into(),
        Kind::Sfixed64 => "sfixed64".into(),
        Kind::Bool => "bool".into(),
        Kind::String => "string".into(),
        Kind::Bytes => "bytes".into(),
        Kind::Message(m) => format!(".{}", m.full_name()),
        Kind::Enum(e) => format!(".{}", e.full_name()),
    }
}

/// `5`, `5 to 9` or `5 to max`.
fn range_text(start: i64, end: i64, max: i64) -> String {
    let mut text = String::new();
    if start == end {
        let _ = write!(text, "{start}");
    } else if end >= max {
        let _ = write!(text, "{start} to max");
    } else {
        let _ = write!(text, "{start} to {end}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::describe_symbol;
    use prost_reflect::DescriptorPool;

    /// Compiles `files` (name, source) with protox, keeping comments.
    pub(crate) fn pool(files: &[(&str, &str)]) -> DescriptorPool {
        let dir = tempfile::tempdir().unwrap();
        for (name, source) in files {
            std::fs::write(dir.path().join(name), source).unwrap();
        }
        let mut compiler = protox::Compiler::new([dir.path()]).unwrap();
        compiler.include_imports(true).include_source_info(true);
        compiler.open_files(files.iter().map(|(name, _)| *name)).unwrap();
        DescriptorPool::from_file_descriptor_set(compiler.file_descriptor_set()).unwrap()
    }

    const PROTO3: &str = r#"syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";

// An order.
// Two lines of comment.
message Order {
  // Its id.
  string id = 1;
  repeated Item items = 2;
  map<string, int64> totals = 3;
  optional string note = 4;
  oneof payment {
    string card = 5;
    bool cash = 6 [deprecated = true];
  }
  google.protobuf.Timestamp placed = 7;
  reserved 8, 10 to 12;
  reserved "legacy";
  message Item {
    string sku = 1;
    State state = 2;
  }
  enum State {
    STATE_UNSPECIFIED = 0;
    // Ready to ship.
    READY = 1;
    GONE = 2 [deprecated = true];
  }
}

service Shop {
  // Places an order.
  rpc Place(Order) returns (Order);
  rpc Watch(Order) returns (stream Order);
}
"#;

    #[test]
    fn proto3_message_with_everything() {
        let pool = pool(&[("shop.proto", PROTO3)]);
        let text = describe_symbol(&pool, "shop.Order").unwrap();
        let want = "shop.Order is a message:
// An order.
// Two lines of comment.
message Order {
  // Its id.
  string id = 1;
  repeated .shop.Order.Item items = 2;
  map<string, int64> totals = 3;
  optional string note = 4;
  oneof payment {
    string card = 5;
    bool cash = 6 [deprecated = true];
  }
  .google.protobuf.Timestamp placed = 7;
  message Item {
    string sku = 1;
    .shop.Order.State state = 2;
  }
  enum State {
    STATE_UNSPECIFIED = 0;
    // Ready to ship.
    READY = 1;
    GONE = 2 [deprecated = true];
  }
  reserved 8, 10 to 12;
  reserved \"legacy\";
}
";
        assert_eq!(text, want);
    }

    #[test]
    fn services_methods_fields_and_values() {
        let pool = pool(&[("shop.proto", PROTO3)]);
        assert_eq!(
            describe_symbol(&pool, "shop.Shop").unwrap(),
            "shop.Shop is a service:\nservice Shop {\n  // Places an order.\n  rpc Place(.shop.Order) returns (.shop.Order);\n  rpc Watch(.shop.Order) returns (stream .shop.Order);\n}\n"
        );
        assert_eq!(
            describe_symbol(&pool, "shop.Shop.Watch").unwrap(),
            "shop.Shop.Watch is a method:\nrpc Watch(.shop.Order) returns (stream .shop.Order);\n"
        );
        assert_eq!(
            describe_symbol(&pool, "shop.Order.id").unwrap(),
            "shop.Order.id is a field:\n// Its id.\nstring id = 1;\n"
        );
        assert_eq!(
            describe_symbol(&pool, "shop.Order.State.READY").unwrap(),
            "shop.Order.State.READY is an enum value:\n// Ready to ship.\nREADY = 1;\n"
        );
        assert!(describe_symbol(&pool, "shop.Nothing").is_none());
        assert!(describe_symbol(&pool, "shop.Order.nothing").is_none());
    }

    #[test]
    fn proto2_labels_defaults_and_extensions() {
        let source = r#"syntax = "proto2";
package legacy;
message Old {
  required int32 id = 1;
  optional string name = 2 [default = "none"];
  optional int32 size = 3 [default = 7];
  extensions 100 to max;
}
extend Old {
  optional string tag = 100;
}
"#;
        let pool = pool(&[("legacy.proto", source)]);
        assert_eq!(
            describe_symbol(&pool, "legacy.Old").unwrap(),
            "legacy.Old is a message:\nmessage Old {\n  required int32 id = 1;\n  optional string name = 2 [default = \"none\"];\n  optional int32 size = 3 [default = 7];\n  extensions 100 to max;\n}\n"
        );
        assert_eq!(
            describe_symbol(&pool, "legacy.tag").unwrap(),
            "legacy.tag is an extension:\nextend .legacy.Old {\n  optional string tag = 100;\n}\n"
        );
    }
}
