//! Identifier helpers for generated code.

/// Converts a protobuf name such as `RouteGuide`, `HTTPProxy` or `my_service`
/// into `snake_case` (`route_guide`, `http_proxy`, `my_service`).
///
/// Words are split at underscores and other non-alphanumeric characters, at a
/// lower-case letter or digit followed by an upper-case letter, and before the
/// last capital of an acronym that is followed by a lower-case letter.
pub(crate) fn to_snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
            continue;
        }
        if c.is_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_is_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let boundary = prev.is_lowercase() || prev.is_ascii_digit() || (prev.is_uppercase() && next_is_lower);
            if boundary && !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
        }
        out.extend(c.to_lowercase());
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// Converts a Rust `snake_case` identifier (possibly a raw identifier such as
/// `r#type`, or one escaped with a trailing underscore such as `self_`) into
/// `UpperCamelCase`.
pub(crate) fn snake_to_upper_camel(ident: &str) -> String {
    let ident = ident.strip_prefix("r#").unwrap_or(ident);
    let mut out = String::with_capacity(ident.len());
    for word in ident.split('_').filter(|word| !word.is_empty()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case() {
        assert_eq!(to_snake_case("Greeter"), "greeter");
        assert_eq!(to_snake_case("RouteGuide"), "route_guide");
        assert_eq!(to_snake_case("HTTPProxy"), "http_proxy");
        assert_eq!(to_snake_case("my_service"), "my_service");
        assert_eq!(to_snake_case("myService"), "my_service");
        assert_eq!(to_snake_case("V2Service"), "v2_service");
        assert_eq!(to_snake_case("Service2"), "service2");
        assert_eq!(to_snake_case("ABC"), "abc");
        assert_eq!(to_snake_case("Foo__Bar_"), "foo_bar");
    }

    #[test]
    fn upper_camel() {
        assert_eq!(snake_to_upper_camel("list_features"), "ListFeatures");
        assert_eq!(snake_to_upper_camel("r#type"), "Type");
        assert_eq!(snake_to_upper_camel("self_"), "Self");
        assert_eq!(snake_to_upper_camel("get_v2"), "GetV2");
    }
}
