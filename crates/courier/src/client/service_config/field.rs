//! Reading one value of a service config's JSON: typed getters that name
//! the field's path (`methodConfig[0].retryPolicy.maxAttempts`) in every
//! error, and the spec's value forms (proto3 JSON durations, status codes
//! as names or numbers, integers written as strings).

use std::time::Duration;

use serde_json::{Map, Value};

use crate::status::{Code, Status};

/// The most seconds a proto3 `Duration` holds: 10,000 years.
const MAX_DURATION_SECS: u64 = 315_576_000_000;

/// The longest excerpt of a bad value an error quotes.
const SHOWN_CHARS: usize = 60;

/// One value of the config, and where it is (`methodConfig[0].timeout`;
/// empty for the whole config).
pub(super) struct Field<'a> {
    path: String,
    value: &'a Value,
}

/// A value as an error quotes it: its JSON text, cut short when long.
fn shown(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(SHOWN_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

impl<'a> Field<'a> {
    /// The whole config.
    pub(super) fn root(value: &'a Value) -> Field<'a> {
        Field {
            path: String::new(),
            value,
        }
    }

    /// The raw value.
    pub(super) fn value(&self) -> &'a Value {
        self.value
    }

    /// An error about this value: INVALID_ARGUMENT, naming the field.
    pub(super) fn error(&self, why: impl std::fmt::Display) -> Status {
        if self.path.is_empty() {
            Status::invalid_argument(format!("service config: {why}"))
        } else {
            Status::invalid_argument(format!("service config: {}: {why}", self.path))
        }
    }

    fn child(&self, key: &str, value: &'a Value) -> Field<'a> {
        let path = if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        };
        Field { path, value }
    }

    /// The field `key` of this object, if it is there and not `null`
    /// (proto3 JSON's way of leaving a field unset).
    pub(super) fn get(&self, key: &str) -> Result<Option<Field<'a>>, Status> {
        let found = self.object()?.get(key).filter(|v| !v.is_null());
        Ok(found.map(|value| self.child(key, value)))
    }

    /// The field `key` of this object, which must be there.
    pub(super) fn require(&self, key: &str) -> Result<Field<'a>, Status> {
        self.get(key)?.ok_or_else(|| {
            let missing = self.child(key, &Value::Null);
            missing.error("is required, and missing")
        })
    }

    /// The items of this list.
    pub(super) fn items(&self) -> Result<Vec<Field<'a>>, Status> {
        let list = self.value.as_array().ok_or_else(|| self.expected("a JSON list"))?;
        Ok(list
            .iter()
            .enumerate()
            .map(|(i, value)| Field {
                path: format!("{}[{i}]", self.path),
                value,
            })
            .collect())
    }

    /// "must be `expected`, got `value`".
    pub(super) fn expected(&self, expected: &str) -> Status {
        self.error(format_args!("must be {expected}, got {}", shown(self.value)))
    }

    /// The value, as an object.
    pub(super) fn object(&self) -> Result<&'a Map<String, Value>, Status> {
        self.value.as_object().ok_or_else(|| self.expected("a JSON object"))
    }

    /// The value, as a string.
    pub(super) fn string(&self) -> Result<&'a str, Status> {
        self.value.as_str().ok_or_else(|| self.expected("a string"))
    }

    /// The value, as `true` or `false`.
    pub(super) fn bool(&self) -> Result<bool, Status> {
        self.value.as_bool().ok_or_else(|| self.expected("true or false"))
    }

    /// The value, a JSON integer for which `ok` holds; `expected` says
    /// what it must be ("an integer greater than 1").
    pub(super) fn integer(&self, expected: &str, ok: impl Fn(i64) -> bool) -> Result<i64, Status> {
        let n = self.value.as_number().and_then(|n| {
            n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            })
        });
        n.filter(|&n| ok(n)).ok_or_else(|| self.expected(expected))
    }

    /// The value, a JSON number for which `ok` holds.
    pub(super) fn number(&self, expected: &str, ok: impl Fn(f64) -> bool) -> Result<f64, Status> {
        self.value
            .as_f64()
            .filter(|&n| n.is_finite() && ok(n))
            .ok_or_else(|| self.expected(expected))
    }

    /// A count of bytes: a non-negative integer, as a number or, as proto3
    /// JSON allows for 64-bit integers, a decimal string.
    pub(super) fn byte_count(&self) -> Result<usize, Status> {
        const EXPECTED: &str = "a non-negative integer (a number or a decimal string)";
        let n = match self.value {
            Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse::<u64>().ok(),
            Value::Number(_) => self.integer(EXPECTED, |n| n >= 0).ok().map(|n| n as u64),
            _ => None,
        };
        let n = n.ok_or_else(|| self.expected(EXPECTED))?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// A proto3 JSON `Duration`: decimal seconds, up to 9 decimal places,
    /// then `s` (`"1.5s"`, `"0.000000001s"`). Never negative.
    pub(super) fn duration(&self) -> Result<Duration, Status> {
        const EXPECTED: &str = "a duration: seconds with up to 9 decimal places and an \"s\", as in \"1.5s\"";
        let text = self.string().map_err(|_| self.expected(EXPECTED))?;
        if text.starts_with('-') {
            return Err(self.expected("a duration that is not negative"));
        }
        parse_duration(text).ok_or_else(|| self.expected(EXPECTED))
    }

    /// A status code: its name in any case (`"UNAVAILABLE"`,
    /// `"unavailable"`) or its number, 0 to 16.
    pub(super) fn code(&self) -> Result<Code, Status> {
        const EXPECTED: &str = "a status code, a name such as \"UNAVAILABLE\" or a number from 0 to 16";
        match self.value {
            Value::String(name) => Code::from_name(name),
            Value::Number(_) => self
                .integer(EXPECTED, |n| (0..=16).contains(&n))
                .ok()
                .map(|n| Code::from_i32(n as i32)),
            _ => None,
        }
        .ok_or_else(|| self.expected(EXPECTED))
    }
}

/// `"<seconds>[.<fraction>]s"`, unsigned, with 1 to 9 fraction digits when
/// there is a point.
fn parse_duration(text: &str) -> Option<Duration> {
    let body = text.strip_suffix('s')?;
    let (secs, fraction) = match body.split_once('.') {
        Some((secs, fraction)) => (secs, Some(fraction)),
        None => (body, None),
    };
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = secs.parse().ok().filter(|&s| s <= MAX_DURATION_SECS)?;
    let nanos = match fraction {
        None => 0,
        Some(f) if (1..=9).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()) => {
            let digits: u32 = f.parse().ok()?;
            digits * 10u32.pow(9 - f.len() as u32)
        }
        Some(_) => return None,
    };
    Some(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_up_to_nine_decimal_places() {
        let cases = [
            ("1s", Duration::from_secs(1)),
            ("1.5s", Duration::from_millis(1500)),
            ("0.000000001s", Duration::from_nanos(1)),
            ("0s", Duration::ZERO),
            ("2.25s", Duration::from_millis(2250)),
            ("315576000000s", Duration::from_secs(MAX_DURATION_SECS)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), Some(want), "{text}");
        }
        for text in [
            "1",
            "s",
            ".5s",
            "1.s",
            "1.0000000001s",
            "1.5ms",
            "+1s",
            "1e3s",
            " 1s",
            "315576000001s",
            "1,5s",
        ] {
            assert_eq!(parse_duration(text), None, "{text}");
        }
    }

    #[test]
    fn errors_name_the_path_of_keys_and_indexes() {
        let value: Value =
            serde_json::from_str(r#"{"methodConfig": [{"retryPolicy": {"maxAttempts": "x"}}]}"#).unwrap();
        let root = Field::root(&value);
        let methods = root.require("methodConfig").unwrap().items().unwrap();
        let retry = methods[0].require("retryPolicy").unwrap();
        let err = retry.require("maxAttempts").unwrap().expected("an integer");
        assert_eq!(
            err.message(),
            r#"service config: methodConfig[0].retryPolicy.maxAttempts: must be an integer, got "x""#
        );
        let err = retry.require("initialBackoff").err().unwrap();
        assert_eq!(
            err.message(),
            "service config: methodConfig[0].retryPolicy.initialBackoff: is required, and missing"
        );
        assert_eq!(root.error("bad").message(), "service config: bad");
    }

    #[test]
    fn long_values_are_cut_short_in_errors() {
        let value = Value::String("x".repeat(500));
        let err = Field::root(&value).expected("short");
        assert!(err.message().len() < 200, "{}", err.message());
        assert!(err.message().ends_with('…'), "{}", err.message());
    }
}
