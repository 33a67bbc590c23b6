//! Service configs in DNS (gRFC A2): the TXT record `_grpc_config.<host>`
//! holds `grpc_config=` and a JSON list of choices, each with the clients
//! it is for (`clientLanguage`, `percentage`, `clientHostname`) and a
//! `serviceConfig`. This module picks this client's choice from the
//! record's text; `dns.rs` looks the record up.

use std::hash::{BuildHasher, Hasher};

use serde_json::{Map, Value};

/// What a TXT record holding a service config starts with (RFC 1464's
/// `attribute=`).
const PREFIX: &str = "grpc_config=";

/// The language this client is, as a choice's `clientLanguage` names it.
const LANGUAGE: &str = "rust";

/// The fields a choice may have: any other makes the record invalid.
const CHOICE_FIELDS: [&str; 4] = ["clientLanguage", "percentage", "clientHostname", "serviceConfig"];

/// The name of the TXT record for `host`.
pub(super) fn record_name(host: &str) -> String {
    format!("_grpc_config.{host}")
}

/// What a choice's criteria are matched against: drawn once per resolver,
/// so that one channel does not flip between choices at each resolution.
#[derive(Debug)]
pub(super) struct Client {
    /// 1 to 100: a choice with `percentage` p is for this client when
    /// `percentile <= p`.
    percentile: u8,
    hostname: Option<String>,
}

impl Client {
    /// This client: a random percentile, and the machine's host name.
    pub(super) fn this_one() -> Client {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        let percentile = (h.finish() % 100) as u8 + 1;
        Client {
            percentile,
            hostname: hostname(),
        }
    }
}

/// The machine's host name, as the kernel has it.
fn hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|name| name.trim().to_string())
        .find(|name| !name.is_empty())
}

/// The service config, as JSON text, that the TXT records of a name hold
/// for `client` (each record's strings already joined): `None` if no
/// record is a service config or no choice is for this client; an error
/// saying why if the record is not a valid list of choices.
pub(super) fn choose(records: &[String], client: &Client) -> Result<Option<String>, String> {
    let mut configs = records.iter().filter_map(|r| r.strip_prefix(PREFIX));
    let Some(text) = configs.next() else {
        return Ok(None);
    };
    if configs.next().is_some() {
        return Err(format!(
            "more than one TXT record starts with {PREFIX:?}; there must be one"
        ));
    }
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let Some(choices) = value.as_array() else {
        return Err("must be a JSON list of choices".into());
    };
    let mut chosen = None;
    for (i, choice) in choices.iter().enumerate() {
        let choice = choice
            .as_object()
            .ok_or_else(|| format!("choice [{i}]: must be a JSON object"))?;
        let (matches, config) = check_choice(choice, client).map_err(|why| format!("choice [{i}]: {why}"))?;
        if matches && chosen.is_none() {
            chosen = Some(config.to_string());
        }
    }
    Ok(chosen)
}

/// Checks one choice (every choice is checked, even after the one chosen),
/// and says whether it is for `client`, and its config.
fn check_choice<'a>(choice: &'a Map<String, Value>, client: &Client) -> Result<(bool, &'a Value), String> {
    if let Some(unknown) = choice.keys().find(|k| !CHOICE_FIELDS.contains(&k.as_str())) {
        return Err(format!(
            "unknown field {unknown:?}; a choice has only {}",
            CHOICE_FIELDS.join(", ")
        ));
    }
    let mut matches = true;
    if let Some(languages) = strings(choice, "clientLanguage")? {
        matches &= languages.is_empty() || languages.iter().any(|l| l.eq_ignore_ascii_case(LANGUAGE));
    }
    if let Some(percentage) = choice.get("percentage") {
        let percentage = percentage
            .as_u64()
            .filter(|&p| p <= 100)
            .ok_or_else(|| format!("percentage: must be an integer from 0 to 100, got {percentage}"))?;
        matches &= u64::from(client.percentile) <= percentage;
    }
    if let Some(hostnames) = strings(choice, "clientHostname")? {
        matches &= hostnames.is_empty() || hostnames.iter().any(|h| client.hostname.as_deref() == Some(*h));
    }
    let config = choice
        .get("serviceConfig")
        .filter(|c| c.is_object())
        .ok_or("serviceConfig: must be a JSON object, and is required")?;
    Ok((matches, config))
}

/// The list of strings `key`, if it is there.
fn strings<'a>(choice: &'a Map<String, Value>, key: &str) -> Result<Option<Vec<&'a str>>, String> {
    let Some(value) = choice.get(key) else { return Ok(None) };
    let bad = || format!("{key}: must be a JSON list of strings, got {value}");
    let list = value.as_array().ok_or_else(bad)?;
    list.iter()
        .map(|v| v.as_str().ok_or_else(bad))
        .collect::<Result<_, _>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(percentile: u8, hostname: Option<&str>) -> Client {
        Client {
            percentile,
            hostname: hostname.map(str::to_string),
        }
    }

    fn record(choices: &str) -> Vec<String> {
        vec!["v=spf1 -all".to_string(), format!("{PREFIX}{choices}")]
    }

    fn chosen(choices: &str, client: &Client) -> Option<String> {
        choose(&record(choices), client).unwrap()
    }

    #[test]
    fn the_first_choice_for_this_client_wins() {
        let me = client(50, Some("box1"));
        let choices = r#"[
            {"clientLanguage": ["go", "java"], "serviceConfig": {"n": 1}},
            {"clientLanguage": ["C++", "RUST"], "clientHostname": ["box1"], "serviceConfig": {"n": 2}},
            {"serviceConfig": {"n": 3}}
        ]"#;
        assert_eq!(chosen(choices, &me).as_deref(), Some(r#"{"n":2}"#));
        // Another host: the catch-all.
        assert_eq!(
            chosen(choices, &client(50, Some("box2"))).as_deref(),
            Some(r#"{"n":3}"#)
        );
        assert_eq!(chosen(choices, &client(50, None)).as_deref(), Some(r#"{"n":3}"#));
        // Empty lists match every client.
        let empty = r#"[{"clientLanguage": [], "clientHostname": [], "serviceConfig": {"n": 4}}]"#;
        assert_eq!(chosen(empty, &me).as_deref(), Some(r#"{"n":4}"#));
    }

    #[test]
    fn percentage_picks_clients_at_or_below_it() {
        let choices = r#"[{"percentage": 30, "serviceConfig": {"n": 1}}, {"serviceConfig": {"n": 2}}]"#;
        assert_eq!(chosen(choices, &client(30, None)).as_deref(), Some(r#"{"n":1}"#));
        assert_eq!(chosen(choices, &client(31, None)).as_deref(), Some(r#"{"n":2}"#));
        let none = r#"[{"percentage": 0, "serviceConfig": {}}]"#;
        assert_eq!(chosen(none, &client(1, None)), None);
        let all = r#"[{"percentage": 100, "serviceConfig": {}}]"#;
        assert_eq!(chosen(all, &client(100, None)).as_deref(), Some("{}"));
        let drawn = Client::this_one().percentile;
        assert!((1..=100).contains(&drawn), "{drawn}");
    }

    #[test]
    fn no_record_or_no_choice_for_this_client_is_no_config() {
        assert_eq!(choose(&["other=thing".to_string()], &client(1, None)).unwrap(), None);
        assert_eq!(choose(&[], &client(1, None)).unwrap(), None);
        assert_eq!(
            chosen(r#"[{"clientLanguage": ["go"], "serviceConfig": {}}]"#, &client(1, None)),
            None
        );
        assert_eq!(chosen("[]", &client(1, None)), None);
    }

    #[test]
    fn a_bad_record_is_an_error_saying_why() {
        let me = client(1, None);
        for (choices, says) in [
            ("[{", "not valid JSON"),
            (r#"{"serviceConfig": {}}"#, "must be a JSON list of choices"),
            ("[3]", "choice [0]: must be a JSON object"),
            (
                r#"[{"serviceConfig": {}, "clientFlavor": 1}]"#,
                r#"choice [0]: unknown field "clientFlavor""#,
            ),
            (
                r#"[{"percentage": 101, "serviceConfig": {}}]"#,
                "percentage: must be an integer from 0 to 100",
            ),
            (
                r#"[{"percentage": 5.5, "serviceConfig": {}}]"#,
                "percentage: must be an integer",
            ),
            (
                r#"[{"clientLanguage": "rust", "serviceConfig": {}}]"#,
                "clientLanguage: must be a JSON list",
            ),
            (
                r#"[{"clientHostname": [1], "serviceConfig": {}}]"#,
                "clientHostname: must be a JSON list of strings",
            ),
            (r#"[{"percentage": 50}]"#, "serviceConfig: must be a JSON object"),
            (r#"[{"serviceConfig": "{}"}]"#, "serviceConfig: must be a JSON object"),
            // A bad choice after the one chosen still spoils the record.
            (r#"[{"serviceConfig": {}}, {"serviceConfig": 1}]"#, "choice [1]"),
        ] {
            let err = choose(&record(choices), &me).unwrap_err();
            assert!(err.contains(says), "{choices}: {err}");
        }
        let two = [format!("{PREFIX}[]"), format!("{PREFIX}[]")];
        assert!(choose(&two, &me).unwrap_err().contains("more than one TXT record"));
    }
}
