//! The JSON form of a service config (grpc/grpc `doc/service_config.md`,
//! gRFC A6 for `retryPolicy`, `hedgingPolicy` and `retryThrottling`, gRFC
//! A17 for `healthCheckConfig`): parsed into a [`ServiceConfig`] and
//! validated field by field. Unknown fields are ignored; a bad value fails
//! the whole config with INVALID_ARGUMENT and a message naming its field.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;

use super::field::Field;
use super::{HedgingPolicy, MethodConfig, MethodName, RetryPolicy, RetryThrottling, ServiceConfig};
use crate::client::balancer::{PickFirst, Policy};
use crate::status::{Code, Status};

/// Parses and validates a service config in its JSON form.
pub(super) fn parse(text: &str) -> Result<ServiceConfig, Status> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| Status::invalid_argument(format!("service config: not valid JSON: {e}")))?;
    parse_value(&value)
}

/// Validates a service config read as JSON.
fn parse_value(value: &Value) -> Result<ServiceConfig, Status> {
    let root = Field::root(value);
    root.object()?;
    let mut config = ServiceConfig::new();
    if let Some(list) = root.get("loadBalancingConfig")? {
        let (policy, key) = load_balancing_config(&list)?;
        config.load_balancing = Some(policy);
        config.load_balancing_key = Some(key);
    } else if let Some(name) = root.get("loadBalancingPolicy")? {
        let policy = load_balancing_policy(&name)?;
        config.load_balancing_key = Some(policy.name().to_string());
        config.load_balancing = Some(policy);
    }
    if let Some(methods) = root.get("methodConfig")? {
        let mut seen = HashSet::new();
        for entry in methods.items()? {
            config = config.method(method_config(&entry, &mut seen)?);
        }
    }
    if let Some(throttling) = root.get("retryThrottling")? {
        config.retry_throttling = Some(retry_throttling(&throttling)?);
    }
    if let Some(health) = root.get("healthCheckConfig")?
        && let Some(service) = health.get("serviceName")?
    {
        config.health_check_service = Some(service.string()?.to_string());
    }
    Ok(config)
}

/// `loadBalancingConfig`: a list of `{"policy_name": {config}}`, of which
/// the first whose policy is registered is used. Returns the policy and a
/// text that is equal for equal choices (the entry's JSON).
fn load_balancing_config(list: &Field<'_>) -> Result<(Policy, String), Status> {
    let mut names = Vec::new();
    for entry in list.items()? {
        let object = entry.object()?;
        let mut fields = object.iter();
        let (Some((name, _)), None) = (fields.next(), fields.next()) else {
            return Err(entry.expected("an object with one field, the policy's name, as in {\"round_robin\": {}}"));
        };
        let Some(policy) = Policy::named(name) else {
            names.push(name.as_str());
            continue;
        };
        let Some(options) = entry.get(name)? else {
            return Err(entry.error(format_args!("the config of {name:?} must be a JSON object, got null")));
        };
        options.object()?;
        let policy = if name == "pick_first" {
            pick_first(&options)?.unwrap_or(policy)
        } else {
            policy
        };
        return Ok((policy, entry.value().to_string()));
    }
    Err(list.error(format_args!(
        "none of the policies listed is registered ({}); built in are pick_first and round_robin",
        if names.is_empty() {
            "the list is empty".to_string()
        } else {
            names.join(", ")
        }
    )))
}

/// pick_first's options: `shuffleAddressList`. `None` unless it shuffles.
fn pick_first(options: &Field<'_>) -> Result<Option<Policy>, Status> {
    match options.get("shuffleAddressList")? {
        Some(shuffle) if shuffle.bool()? => Ok(Some(Policy::from(PickFirst::new().shuffle_address_list(true)))),
        _ => Ok(None),
    }
}

/// The deprecated `loadBalancingPolicy`: a policy's name, in any case.
fn load_balancing_policy(name: &Field<'_>) -> Result<Policy, Status> {
    let text = name.string()?;
    Policy::named(text)
        .or_else(|| Policy::named(&text.to_ascii_lowercase()))
        .ok_or_else(|| {
            name.error(format_args!(
                "no load-balancing policy named {text:?} is registered; built in are pick_first and round_robin"
            ))
        })
}

/// One `methodConfig` entry. `seen` holds the names of the entries before.
fn method_config(entry: &Field<'_>, seen: &mut HashSet<MethodName>) -> Result<MethodConfig, Status> {
    entry.object()?;
    let mut names = Vec::new();
    if let Some(list) = entry.get("name")? {
        for item in list.items()? {
            let name = method_name(&item)?;
            if !seen.insert(name.clone()) {
                return Err(item.error("names a method that an earlier name names already; each may be named once"));
            }
            names.push(name);
        }
    }
    let mut config = MethodConfig::new(names);
    if let Some(timeout) = entry.get("timeout")? {
        config = config.timeout(timeout.duration()?);
    }
    if let Some(wait) = entry.get("waitForReady")? {
        config = config.wait_for_ready(wait.bool()?);
    }
    if let Some(bytes) = entry.get("maxRequestMessageBytes")? {
        config = config.max_request_message_bytes(bytes.byte_count()?);
    }
    if let Some(bytes) = entry.get("maxResponseMessageBytes")? {
        config = config.max_response_message_bytes(bytes.byte_count()?);
    }
    match (entry.get("retryPolicy")?, entry.get("hedgingPolicy")?) {
        (Some(_), Some(_)) => {
            return Err(entry.error("has both a retryPolicy and a hedgingPolicy; a method may have only one"));
        }
        (Some(retry), None) => config = config.retry(retry_policy(&retry)?),
        (None, Some(hedging)) => config = config.hedging(hedging_policy(&hedging)?),
        (None, None) => {}
    }
    Ok(config)
}

/// One `name`: `{"service": s, "method": m}`, `{"service": s}`, or `{}`
/// (an empty string is the same as no field).
fn method_name(item: &Field<'_>) -> Result<MethodName, Status> {
    let text = |key: &str| -> Result<Option<String>, Status> {
        match item.get(key)? {
            Some(field) => Ok(Some(field.string()?.to_string()).filter(|s| !s.is_empty())),
            None => Ok(None),
        }
    };
    match (text("service")?, text("method")?) {
        (Some(service), Some(method)) => Ok(MethodName::method(service, method)),
        (Some(service), None) => Ok(MethodName::service(service)),
        (None, None) => Ok(MethodName::all()),
        (None, Some(_)) => Err(item.error("names a method but no service; give the service too")),
    }
}

/// `maxAttempts` of a retry or hedging policy: an integer above 1; more
/// than the limit is capped by the policy, not refused.
fn max_attempts(policy: &Field<'_>) -> Result<u32, Status> {
    let attempts = policy
        .require("maxAttempts")?
        .integer("an integer greater than 1", |n| n > 1)?;
    Ok(u32::try_from(attempts).unwrap_or(u32::MAX))
}

/// A duration that must be above zero.
fn positive_duration(policy: &Field<'_>, key: &str) -> Result<Duration, Status> {
    let field = policy.require(key)?;
    let duration = field.duration()?;
    if duration.is_zero() {
        return Err(field.expected("a duration greater than 0"));
    }
    Ok(duration)
}

/// A list of status codes.
fn codes(list: &Field<'_>) -> Result<Vec<Code>, Status> {
    list.items()?.iter().map(Field::code).collect()
}

/// `retryPolicy`, by gRFC A6's rules.
fn retry_policy(policy: &Field<'_>) -> Result<RetryPolicy, Status> {
    policy.object()?;
    let attempts = max_attempts(policy)?;
    let initial = positive_duration(policy, "initialBackoff")?;
    let max = positive_duration(policy, "maxBackoff")?;
    let multiplier = policy
        .require("backoffMultiplier")?
        .number("a number greater than 0", |n| n > 0.0)?;
    let list = policy.require("retryableStatusCodes")?;
    let retryable = codes(&list)?;
    if retryable.is_empty() {
        return Err(list.error("must list at least one status code"));
    }
    Ok(RetryPolicy::new(attempts, initial, max, multiplier, retryable))
}

/// `hedgingPolicy`, by gRFC A6's rules.
fn hedging_policy(policy: &Field<'_>) -> Result<HedgingPolicy, Status> {
    policy.object()?;
    let attempts = max_attempts(policy)?;
    let delay = match policy.get("hedgingDelay")? {
        Some(delay) => delay.duration()?,
        None => Duration::ZERO,
    };
    let non_fatal = match policy.get("nonFatalStatusCodes")? {
        Some(list) => codes(&list)?,
        None => Vec::new(),
    };
    Ok(HedgingPolicy::new(attempts, delay, non_fatal))
}

/// `retryThrottling`, by gRFC A6's rules.
fn retry_throttling(throttling: &Field<'_>) -> Result<RetryThrottling, Status> {
    throttling.object()?;
    let max_tokens = throttling
        .require("maxTokens")?
        .integer("an integer greater than 0 and at most 1000", |n| {
            (1..=1000).contains(&n)
        })?;
    let ratio = throttling
        .require("tokenRatio")?
        .number("a number greater than 0", |n| n > 0.0)?;
    let throttle = RetryThrottling::new(max_tokens as u32, ratio);
    if throttle.token_ratio <= 0.0 {
        return Err(throttling
            .require("tokenRatio")?
            .expected("a number of at least 0.001 (decimal places beyond 3 are dropped)"));
    }
    Ok(throttle)
}
