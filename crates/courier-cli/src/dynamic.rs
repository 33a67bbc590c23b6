//! Messages known only at run time: a [`Codec`] for
//! [`prost_reflect::DynamicMessage`], and their proto3 JSON form.
//!
//! JSON follows the canonical proto3 mapping: fields by their JSON (lower
//! camel case) names, although the proto names are accepted too; 64-bit
//! integers as strings; bytes as base64; enums by name. A request that does
//! not match its message is refused with one line naming the field, such as
//! ``field `count`: invalid type: string "three", expected an unsigned
//! 32-bit integer``.

use bytes::{Bytes, BytesMut};
use courier::Status;
use courier::codec::{Codec, Decoder, Encoder};
use prost::Message as _;
use prost_reflect::{DeserializeOptions, DynamicMessage, Kind, MessageDescriptor, SerializeOptions};

/// Encodes dynamic requests and decodes responses of one message type.
#[derive(Clone)]
pub struct DynamicCodec {
    response: MessageDescriptor,
}

impl DynamicCodec {
    /// A codec whose responses are `response` messages.
    pub fn new(response: MessageDescriptor) -> DynamicCodec {
        DynamicCodec { response }
    }
}

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> DynamicEncoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> DynamicDecoder {
        DynamicDecoder(self.response.clone())
    }
}

/// Encodes any dynamic message.
pub struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;

    fn encode(&mut self, item: DynamicMessage, dst: &mut BytesMut) -> Result<(), Status> {
        dst.reserve(item.encoded_len());
        item.encode(dst)
            .map_err(|e| Status::internal(format!("failed to encode the request: {e}")))
    }
}

/// Decodes messages of one type.
pub struct DynamicDecoder(MessageDescriptor);

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;

    fn decode(&mut self, src: Bytes) -> Result<DynamicMessage, Status> {
        DynamicMessage::decode(self.0.clone(), src)
            .map_err(|e| Status::internal(format!("the response does not decode as {}: {e}", self.0.full_name())))
    }
}

/// Builds a message from one JSON value, or says which field is wrong.
pub fn from_json(desc: &MessageDescriptor, value: serde_json::Value) -> Result<DynamicMessage, String> {
    let mut track = serde_path_to_error::Track::new();
    let deserializer = serde_path_to_error::Deserializer::new(value, &mut track);
    DynamicMessage::deserialize_with_options(desc.clone(), deserializer, &DeserializeOptions::new()).map_err(|e| {
        let path = track.path();
        let error = e.to_string();
        let at = path.to_string();
        let within = if at.is_empty() || at == "." {
            String::new()
        } else {
            format!("{at}.")
        };
        // An unknown field: name it in full, with the fields there are.
        if let Some(name) = error
            .strip_prefix("unrecognized field name '")
            .and_then(|rest| rest.split('\'').next())
        {
            let known = message_at(desc, &path)
                .map(|m| {
                    let names: Vec<String> = m.fields().map(|f| f.json_name().to_string()).collect();
                    format!("; {} has: {}", m.name(), names.join(", "))
                })
                .unwrap_or_default();
            return format!("unknown field `{within}{name}`{known}");
        }
        if within.is_empty() {
            error
        } else {
            format!("field `{at}`: {error}")
        }
    })
}

/// The message type found by following `path` from `desc`, if the path
/// leads to a message.
fn message_at(desc: &MessageDescriptor, path: &serde_path_to_error::Path) -> Option<MessageDescriptor> {
    let mut current = desc.clone();
    let mut in_map = false;
    for segment in path.iter() {
        match segment {
            serde_path_to_error::Segment::Seq { .. } => {}
            serde_path_to_error::Segment::Map { key } => {
                if in_map {
                    // A map's key: the value's type is already current.
                    in_map = false;
                    continue;
                }
                let field = current
                    .get_field_by_json_name(key)
                    .or_else(|| current.get_field_by_name(key))?;
                let Kind::Message(next) = field.kind() else {
                    return None;
                };
                if field.is_map() {
                    let Kind::Message(value) = next.map_entry_value_field().kind() else {
                        return None;
                    };
                    current = value;
                    in_map = true;
                } else {
                    current = next;
                }
            }
            _ => return None,
        }
    }
    Some(current)
}

/// Formats a message as proto3 JSON.
pub fn to_json(message: &DynamicMessage, pretty: bool, emit_defaults: bool) -> String {
    let options = SerializeOptions::new().skip_default_fields(!emit_defaults);
    let mut out = Vec::new();
    let result = if pretty {
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, serde_json::ser::PrettyFormatter::new());
        message.serialize_with_options(&mut serializer, &options)
    } else {
        let mut serializer = serde_json::Serializer::new(&mut out);
        message.serialize_with_options(&mut serializer, &options)
    };
    match result {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(e) => format!("{{\"error\": \"cannot format the message as JSON: {e}\"}}"),
    }
}

#[cfg(test)]
mod tests {
    use super::{from_json, to_json};
    use prost_reflect::DescriptorPool;
    use serde_json::json;

    fn pool() -> DescriptorPool {
        let source = r#"syntax = "proto3";
package t;
message Outer {
  string name = 1;
  Inner inner = 2;
  repeated Inner many = 3;
  map<string, Inner> by_key = 4;
  int64 big = 5;
}
message Inner {
  uint32 count = 1;
}
"#;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.proto"), source).unwrap();
        let mut compiler = protox::Compiler::new([dir.path()]).unwrap();
        compiler.open_file("t.proto").unwrap();
        compiler.descriptor_pool()
    }

    #[test]
    fn errors_name_the_field() {
        let pool = pool();
        let outer = pool.get_message_by_name("t.Outer").unwrap();
        let err = |value| from_json(&outer, value).unwrap_err();
        assert_eq!(
            err(json!({"name": 3})),
            "field `name`: invalid type: integer `3`, expected a string"
        );
        assert!(err(json!({"inner": {"count": "x"}})).starts_with("field `inner.count`: "));
        assert!(err(json!({"many": [{}, {"count": -1}]})).starts_with("field `many[1].count`: "));
        assert_eq!(
            err(json!({"nme": "x"})),
            "unknown field `nme`; Outer has: name, inner, many, byKey, big"
        );
        assert_eq!(
            err(json!({"inner": {"cnt": 1}})),
            "unknown field `inner.cnt`; Inner has: count"
        );
        assert_eq!(
            err(json!({"byKey": {"k": {"cnt": 1}}})),
            "unknown field `byKey.k.cnt`; Inner has: count"
        );
    }

    #[test]
    fn canonical_json_both_ways() {
        let pool = pool();
        let outer = pool.get_message_by_name("t.Outer").unwrap();
        // Proto names are accepted as well as JSON names.
        let message = from_json(
            &outer,
            json!({"by_key": {"a": {"count": 1}}, "big": "9007199254740993"}),
        )
        .unwrap();
        assert_eq!(
            to_json(&message, false, false),
            r#"{"byKey":{"a":{"count":1}},"big":"9007199254740993"}"#
        );
        let empty = from_json(&outer, json!({})).unwrap();
        assert_eq!(to_json(&empty, false, false), "{}");
        assert_eq!(
            to_json(&empty, false, true),
            r#"{"name":"","many":[],"byKey":{},"big":"0"}"#
        );
    }
}
