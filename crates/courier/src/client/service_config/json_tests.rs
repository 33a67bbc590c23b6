//! Tests of the JSON form: each rule, with configs that follow it and
//! configs that break it.

use std::time::Duration;

use super::ServiceConfig;
use crate::status::{Code, Status};

fn parse(text: &str) -> Result<ServiceConfig, Status> {
    ServiceConfig::from_json(text)
}

/// The config must fail with INVALID_ARGUMENT and a message containing
/// `says`.
#[track_caller]
fn refused(text: &str, says: &str) -> String {
    let err = parse(text).expect_err(text);
    assert_eq!(err.code(), Code::InvalidArgument, "{text}: {err}");
    assert!(
        err.message().contains(says),
        "{text}:\n  {}\n  lacks {says:?}",
        err.message()
    );
    err.message().to_string()
}

/// A config with one method config entry whose body is `body`.
fn method(body: &str) -> String {
    format!(r#"{{"methodConfig": [{{"name": [{{"service": "s.S"}}], {body}}}]}}"#)
}

const RETRY: &str = r#""maxAttempts": 3, "initialBackoff": "0.1s", "maxBackoff": "1s",
    "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]"#;

fn retry(fields: &str) -> String {
    method(&format!(r#""retryPolicy": {{{fields}}}"#))
}

#[test]
fn a_syntax_error_is_invalid_argument_saying_where() {
    let message = refused(r#"{"methodConfig": [}"#, "service config: not valid JSON");
    assert!(message.contains("line 1 column"), "{message}");
    refused("", "not valid JSON");
    refused("[]", "service config: must be a JSON object, got []");
}

#[test]
fn unknown_fields_are_ignored_everywhere() {
    let config = parse(
        r#"{"futureField": {"x": 1}, "methodConfig": [{"name": [{"service": "s.S", "extra": 1}],
            "timeout": "1s", "unknownKnob": true,
            "retryPolicy": {"maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s",
                            "backoffMultiplier": 1, "retryableStatusCodes": [14], "jitter": 0.2}}]}"#,
    )
    .unwrap();
    let method = config.method_config("/s.S/M").unwrap();
    assert_eq!(method.timeout, Some(Duration::from_secs(1)));
    assert!(method.retry_policy().is_some());
    assert!(parse("{}").unwrap().method_config("/s.S/M").is_none());
}

#[test]
fn null_is_the_same_as_an_absent_field() {
    let config = parse(r#"{"loadBalancingConfig": null, "methodConfig": [{"name": [{}], "timeout": null}]}"#).unwrap();
    assert!(config.load_balancing.is_none());
    assert_eq!(config.method_config("/a.B/C").unwrap().timeout, None);
}

#[test]
fn names_pick_a_method_a_service_or_every_method() {
    let config = parse(
        r#"{"methodConfig": [
            {"name": [{"service": "s.S", "method": "M"}], "timeout": "1s"},
            {"name": [{"service": "s.S"}, {"service": "t.T", "method": ""}], "timeout": "2s"},
            {"name": [{}], "timeout": "3s"}
        ]}"#,
    )
    .unwrap();
    let timeout = |path| config.method_config(path).unwrap().timeout.unwrap().as_secs();
    assert_eq!(timeout("/s.S/M"), 1);
    assert_eq!(timeout("/s.S/Other"), 2);
    assert_eq!(timeout("/t.T/Any"), 2);
    assert_eq!(timeout("/u.U/Any"), 3);
    // {"service": ""} is the default entry, as {} is.
    let config = parse(r#"{"methodConfig": [{"name": [{"service": ""}], "waitForReady": true}]}"#).unwrap();
    assert_eq!(config.method_config("/x.Y/Z").unwrap().wait_for_ready, Some(true));
}

#[test]
fn a_method_without_a_service_is_refused() {
    refused(
        r#"{"methodConfig": [{"name": [{"method": "M"}]}]}"#,
        "service config: methodConfig[0].name[0]: names a method but no service",
    );
    refused(
        r#"{"methodConfig": [{"name": [{"service": 7}]}]}"#,
        "methodConfig[0].name[0].service: must be a string, got 7",
    );
    refused(
        r#"{"methodConfig": [{"name": {"service": "s"}}]}"#,
        "methodConfig[0].name: must be a JSON list",
    );
    refused(r#"{"methodConfig": {}}"#, "methodConfig: must be a JSON list");
}

#[test]
fn a_name_given_twice_is_refused_across_entries_and_within_one() {
    refused(
        r#"{"methodConfig": [{"name": [{"service": "s.S"}]}, {"name": [{"service": "s.S"}]}]}"#,
        "service config: methodConfig[1].name[0]: names a method that an earlier name names already",
    );
    refused(
        r#"{"methodConfig": [{"name": [{"service": "s.S", "method": "M"}, {"service": "s.S", "method": "M"}]}]}"#,
        "methodConfig[0].name[1]",
    );
    refused(
        r#"{"methodConfig": [{"name": [{}]}, {"name": [{"service": ""}]}]}"#,
        "methodConfig[1].name[0]",
    );
    // The same service with and without a method are two names.
    parse(r#"{"methodConfig": [{"name": [{"service": "s.S"}]}, {"name": [{"service": "s.S", "method": "M"}]}]}"#)
        .unwrap();
}

#[test]
fn timeouts_are_proto_json_durations() {
    for (text, want) in [
        ("1.5s", Duration::from_millis(1500)),
        ("0.000000001s", Duration::from_nanos(1)),
        ("30s", Duration::from_secs(30)),
        ("0s", Duration::ZERO),
    ] {
        let config = parse(&method(&format!(r#""timeout": "{text}""#))).unwrap();
        assert_eq!(config.method_config("/s.S/M").unwrap().timeout, Some(want), "{text}");
    }
    refused(
        &method(r#""timeout": "1.5""#),
        r#"service config: methodConfig[0].timeout: must be a duration: seconds with up to 9 decimal places and an "s", as in "1.5s", got "1.5""#,
    );
    refused(
        &method(r#""timeout": "1.0000000001s""#),
        "methodConfig[0].timeout: must be a duration",
    );
    refused(
        &method(r#""timeout": 1.5"#),
        "methodConfig[0].timeout: must be a duration",
    );
    refused(
        &method(r#""timeout": "-1s""#),
        "methodConfig[0].timeout: must be a duration that is not negative",
    );
}

#[test]
fn wait_for_ready_is_a_bool() {
    let config = parse(&method(r#""waitForReady": false"#)).unwrap();
    assert_eq!(config.method_config("/s.S/M").unwrap().wait_for_ready, Some(false));
    refused(
        &method(r#""waitForReady": "yes""#),
        r#"methodConfig[0].waitForReady: must be true or false, got "yes""#,
    );
}

#[test]
fn message_limits_are_integers_or_decimal_strings() {
    let config = parse(&method(
        r#""maxRequestMessageBytes": 1024, "maxResponseMessageBytes": "4194304""#,
    ))
    .unwrap();
    let m = config.method_config("/s.S/M").unwrap();
    assert_eq!(m.max_request_message_bytes, Some(1024));
    assert_eq!(m.max_response_message_bytes, Some(4194304));
    for bad in ["-1", "1.5", r#""12x""#, r#""""#, r#""-5""#, "true"] {
        refused(
            &method(&format!(r#""maxRequestMessageBytes": {bad}"#)),
            "methodConfig[0].maxRequestMessageBytes: must be a non-negative integer",
        );
    }
}

#[test]
fn a_retry_policy_is_read_whole() {
    let config = parse(&retry(
        r#""maxAttempts": 4, "initialBackoff": "0.5s", "maxBackoff": "3s", "backoffMultiplier": 1.5,
           "retryableStatusCodes": ["unavailable", "Resource_Exhausted", 4]"#,
    ))
    .unwrap();
    let policy = config.method_config("/s.S/M").unwrap().retry_policy().unwrap();
    assert_eq!(policy.max_attempts(), 4);
    assert_eq!(policy.initial_backoff, Duration::from_millis(500));
    assert_eq!(policy.max_backoff, Duration::from_secs(3));
    assert_eq!(policy.backoff_multiplier, 1.5);
    for code in [Code::Unavailable, Code::ResourceExhausted, Code::DeadlineExceeded] {
        assert!(policy.retries(code), "{code}");
    }
    assert!(!policy.retries(Code::Internal));
}

#[test]
fn retry_policy_rules_name_the_field() {
    let with = |from: &str, to: &str| retry(&RETRY.replace(from, to));
    refused(
        &with(r#""maxAttempts": 3"#, r#""maxAttempts": 1"#),
        "service config: methodConfig[0].retryPolicy.maxAttempts: must be an integer greater than 1, got 1",
    );
    refused(
        &with(r#""maxAttempts": 3"#, r#""maxAttempts": 2.5"#),
        "maxAttempts: must be an integer greater than 1",
    );
    refused(
        &with(r#""maxAttempts": 3,"#, ""),
        "retryPolicy.maxAttempts: is required",
    );
    refused(
        &with(r#""0.1s""#, r#""0s""#),
        "retryPolicy.initialBackoff: must be a duration greater than 0",
    );
    refused(&with(r#""1s""#, r#""1""#), "retryPolicy.maxBackoff: must be a duration");
    refused(
        &with(r#""initialBackoff": "0.1s","#, ""),
        "retryPolicy.initialBackoff: is required",
    );
    refused(
        &with(r#""maxBackoff": "1s","#, ""),
        "retryPolicy.maxBackoff: is required",
    );
    refused(
        &with(r#""backoffMultiplier": 2"#, r#""backoffMultiplier": 0"#),
        "retryPolicy.backoffMultiplier: must be a number greater than 0, got 0",
    );
    refused(
        &with(r#""backoffMultiplier": 2,"#, ""),
        "retryPolicy.backoffMultiplier: is required",
    );
    refused(
        &with(r#"["UNAVAILABLE"]"#, "[]"),
        "retryPolicy.retryableStatusCodes: must list at least one",
    );
    refused(
        &with(r#"["UNAVAILABLE"]"#, r#"["UNAVAILABLE", "NOPE"]"#),
        r#"retryPolicy.retryableStatusCodes[1]: must be a status code, a name such as "UNAVAILABLE" or a number from 0 to 16, got "NOPE""#,
    );
    refused(
        &with(r#"["UNAVAILABLE"]"#, "[17]"),
        "retryableStatusCodes[0]: must be a status code",
    );
    refused(
        &with(r#"["UNAVAILABLE"]"#, "[-1]"),
        "retryableStatusCodes[0]: must be a status code",
    );
    refused(
        &with(r#", "retryableStatusCodes": ["UNAVAILABLE"]"#, ""),
        "retryableStatusCodes: is required",
    );
    refused(
        &method(r#""retryPolicy": 5"#),
        "methodConfig[0].retryPolicy: must be a JSON object, got 5",
    );
}

#[test]
fn max_attempts_above_five_are_capped_not_refused() {
    let config = parse(&retry(&RETRY.replace(r#""maxAttempts": 3"#, r#""maxAttempts": 100"#))).unwrap();
    let policy = config.method_config("/s.S/M").unwrap().retry_policy().unwrap();
    assert_eq!(policy.max_attempts(), super::MAX_ATTEMPTS);
    let config = parse(&method(r#""hedgingPolicy": {"maxAttempts": 9}"#)).unwrap();
    let policy = config.method_config("/s.S/M").unwrap().hedging_policy().unwrap();
    assert_eq!(policy.max_attempts(), super::MAX_ATTEMPTS);
}

#[test]
fn a_hedging_policy_is_read_with_its_optional_fields() {
    let config = parse(&method(
        r#""hedgingPolicy": {"maxAttempts": 3, "hedgingDelay": "0.25s", "nonFatalStatusCodes": ["UNAVAILABLE", 13]}"#,
    ))
    .unwrap();
    let policy = config.method_config("/s.S/M").unwrap().hedging_policy().unwrap();
    assert_eq!(policy.max_attempts(), 3);
    assert_eq!(policy.hedging_delay(), Duration::from_millis(250));
    assert!(policy.non_fatal.contains(Code::Unavailable) && policy.non_fatal.contains(Code::Internal));
    let config = parse(&method(r#""hedgingPolicy": {"maxAttempts": 2}"#)).unwrap();
    let policy = config.method_config("/s.S/M").unwrap().hedging_policy().unwrap();
    assert_eq!(policy.hedging_delay(), Duration::ZERO);
    assert_eq!(policy.non_fatal, super::policy::CodeSet::default());
}

#[test]
fn hedging_policy_rules_name_the_field() {
    refused(
        &method(r#""hedgingPolicy": {"maxAttempts": 1}"#),
        "methodConfig[0].hedgingPolicy.maxAttempts: must be an integer greater than 1, got 1",
    );
    refused(
        &method(r#""hedgingPolicy": {}"#),
        "hedgingPolicy.maxAttempts: is required",
    );
    refused(
        &method(r#""hedgingPolicy": {"maxAttempts": 2, "hedgingDelay": "soon"}"#),
        "hedgingPolicy.hedgingDelay: must be a duration",
    );
    refused(
        &method(r#""hedgingPolicy": {"maxAttempts": 2, "nonFatalStatusCodes": ["FINE"]}"#),
        "hedgingPolicy.nonFatalStatusCodes[0]: must be a status code",
    );
}

#[test]
fn a_method_with_both_retry_and_hedging_is_refused() {
    refused(
        &method(&format!(
            r#""retryPolicy": {{{RETRY}}}, "hedgingPolicy": {{"maxAttempts": 2}}"#
        )),
        "service config: methodConfig[0]: has both a retryPolicy and a hedgingPolicy",
    );
}

#[test]
fn retry_throttling_keeps_three_decimals_and_checks_its_range() {
    let config = parse(r#"{"retryThrottling": {"maxTokens": 10, "tokenRatio": 0.5466}}"#).unwrap();
    let throttle = config.retry_throttling.unwrap();
    assert_eq!(throttle.max_tokens, 10);
    assert!((throttle.token_ratio - 0.546).abs() < 1e-9, "{}", throttle.token_ratio);
    parse(r#"{"retryThrottling": {"maxTokens": 1000, "tokenRatio": 1}}"#).unwrap();
    for (fields, says) in [
        (
            r#""maxTokens": 0, "tokenRatio": 1"#,
            "retryThrottling.maxTokens: must be an integer greater than 0 and at most 1000, got 0",
        ),
        (
            r#""maxTokens": 1001, "tokenRatio": 1"#,
            "retryThrottling.maxTokens: must be an integer",
        ),
        (
            r#""maxTokens": 1.5, "tokenRatio": 1"#,
            "retryThrottling.maxTokens: must be an integer",
        ),
        (r#""tokenRatio": 1"#, "retryThrottling.maxTokens: is required"),
        (
            r#""maxTokens": 10, "tokenRatio": 0"#,
            "retryThrottling.tokenRatio: must be a number greater than 0",
        ),
        (
            r#""maxTokens": 10, "tokenRatio": 0.0004"#,
            "retryThrottling.tokenRatio: must be a number of at least 0.001",
        ),
        (r#""maxTokens": 10"#, "retryThrottling.tokenRatio: is required"),
    ] {
        refused(&format!(r#"{{"retryThrottling": {{{fields}}}}}"#), says);
    }
}

#[test]
fn load_balancing_config_picks_the_first_registered_policy() {
    let config =
        parse(r#"{"loadBalancingConfig": [{"grpclb": {}}, {"round_robin": {}}, {"pick_first": {}}]}"#).unwrap();
    assert_eq!(config.load_balancing.as_ref().unwrap().name(), "round_robin");
    let config = parse(r#"{"loadBalancingConfig": [{"pick_first": {"shuffleAddressList": true}}]}"#).unwrap();
    assert_eq!(config.load_balancing.as_ref().unwrap().name(), "pick_first");
    // loadBalancingConfig wins over the deprecated field.
    let config =
        parse(r#"{"loadBalancingPolicy": "pick_first", "loadBalancingConfig": [{"round_robin": {}}]}"#).unwrap();
    assert_eq!(config.load_balancing.as_ref().unwrap().name(), "round_robin");
}

#[test]
fn equal_load_balancing_choices_are_the_same_policy_and_others_differ() {
    let builder = crate::client::balancer::Policy::pick_first();
    let chosen = |text: &str| parse(text).unwrap().chosen_policy(&builder);
    let rr = r#"{"loadBalancingConfig": [{"round_robin": {}}]}"#;
    let shuffled = r#"{"loadBalancingConfig": [{"pick_first": {"shuffleAddressList": true}}]}"#;
    assert!(chosen(rr).same_as(&chosen(rr)));
    assert!(chosen(shuffled).same_as(&chosen(shuffled)));
    assert!(!chosen(rr).same_as(&chosen(shuffled)));
    assert!(!chosen(shuffled).same_as(&chosen(r#"{"loadBalancingConfig": [{"pick_first": {}}]}"#)));
    // No policy in the config: the builder's, the same each time.
    assert!(chosen("{}").same_as(&chosen(r#"{"methodConfig": []}"#)));
    assert!(!chosen("{}").same_as(&chosen(rr)));
}

#[test]
fn load_balancing_config_errors_name_the_entry() {
    refused(
        r#"{"loadBalancingConfig": [{"grpclb": {}}, {"xds": {}}]}"#,
        "service config: loadBalancingConfig: none of the policies listed is registered (grpclb, xds)",
    );
    refused(
        r#"{"loadBalancingConfig": []}"#,
        "loadBalancingConfig: none of the policies listed is registered",
    );
    refused(
        r#"{"loadBalancingConfig": [{"round_robin": {}, "pick_first": {}}]}"#,
        "loadBalancingConfig[0]: must be an object with one field",
    );
    refused(
        r#"{"loadBalancingConfig": [{}]}"#,
        "loadBalancingConfig[0]: must be an object with one field",
    );
    refused(
        r#"{"loadBalancingConfig": {"round_robin": {}}}"#,
        "loadBalancingConfig: must be a JSON list",
    );
    refused(
        r#"{"loadBalancingConfig": [{"round_robin": []}]}"#,
        "loadBalancingConfig[0].round_robin: must be a JSON object, got []",
    );
    refused(
        r#"{"loadBalancingConfig": [{"pick_first": {"shuffleAddressList": "yes"}}]}"#,
        "loadBalancingConfig[0].pick_first.shuffleAddressList: must be true or false",
    );
}

#[test]
fn the_deprecated_load_balancing_policy_names_a_policy_in_any_case() {
    let config = parse(r#"{"loadBalancingPolicy": "ROUND_ROBIN"}"#).unwrap();
    assert_eq!(config.load_balancing.as_ref().unwrap().name(), "round_robin");
    refused(
        r#"{"loadBalancingPolicy": "grpclb"}"#,
        r#"service config: loadBalancingPolicy: no load-balancing policy named "grpclb" is registered"#,
    );
    refused(r#"{"loadBalancingPolicy": 1}"#, "loadBalancingPolicy: must be a string");
}

#[test]
fn health_check_config_gives_the_service_name() {
    let config = parse(r#"{"healthCheckConfig": {"serviceName": "grpc.Svc"}}"#).unwrap();
    assert_eq!(config.health_check_service.as_deref(), Some("grpc.Svc"));
    let config = parse(r#"{"healthCheckConfig": {"serviceName": ""}}"#).unwrap();
    assert_eq!(config.health_check_service.as_deref(), Some(""));
    // Without a name, health checking stays off (gRFC A17).
    assert_eq!(
        parse(r#"{"healthCheckConfig": {}}"#).unwrap().health_check_service,
        None
    );
    refused(
        r#"{"healthCheckConfig": {"serviceName": 3}}"#,
        "healthCheckConfig.serviceName: must be a string",
    );
}

#[test]
fn configs_built_in_rust_with_a_name_twice_fail_the_check() {
    use super::{MethodConfig, MethodName};
    let config = ServiceConfig::new()
        .method(MethodConfig::new([MethodName::service("s.S")]))
        .method(MethodConfig::new([
            MethodName::method("s.S", "M"),
            MethodName::service("s.S"),
        ]));
    let err = config.check().unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains(r#"the service "s.S""#), "{err}");
    // The first entry keeps the name.
    assert!(config.method_config("/s.S/Other").unwrap().names().len() == 1);
    ServiceConfig::new()
        .method(MethodConfig::new([MethodName::all(), MethodName::service("s.S")]))
        .check()
        .unwrap();
}
