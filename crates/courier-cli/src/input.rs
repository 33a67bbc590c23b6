//! The request messages of a call, as JSON: from `-d '{...}'`, from a file
//! (`-d @file`), or from standard input (`-d @-`, or no `-d` when standard
//! input is not a terminal).
//!
//! Several messages, for a streaming request, are JSON objects one after
//! another: one per line, or simply concatenated. From standard input they
//! are read as they come, so a bidirectional call can be driven by hand.

use std::io::IsTerminal;
use std::pin::Pin;

use futures_util::Stream;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::dynamic::from_json;
use crate::error::{Error, Result};

/// A stream of request messages.
pub type MessageStream = Pin<Box<dyn Stream<Item = DynamicMessage> + Send>>;

/// Where the requests come from.
pub enum Input {
    /// JSON text given with `-d` or read from a file.
    Text(String),
    /// Standard input.
    Stdin,
    /// Nothing: a unary call sends the empty message.
    Empty,
}

impl Input {
    /// The input that `-d` (or its absence) names. Files are read now.
    pub fn new(data: Option<&str>) -> Result<Input> {
        match data {
            None if std::io::stdin().is_terminal() => Ok(Input::Empty),
            None | Some("@-") => Ok(Input::Stdin),
            Some(at) if at.starts_with('@') => {
                let path = &at[1..];
                std::fs::read_to_string(path)
                    .map(Input::Text)
                    .map_err(|e| Error::msg(format!("cannot read the request file {path}: {e}")))
            }
            Some(text) => Ok(Input::Text(text.to_string())),
        }
    }

    /// Reads every message now.
    pub fn read_all(self, desc: &MessageDescriptor) -> Result<Vec<DynamicMessage>> {
        let text = match self {
            Input::Text(text) => text,
            Input::Empty => return Ok(Vec::new()),
            Input::Stdin => std::io::read_to_string(std::io::stdin())
                .map_err(|e| Error::msg(format!("cannot read standard input: {e}")))?,
        };
        serde_json::Deserializer::from_str(&text)
            .into_iter::<Value>()
            .enumerate()
            .map(|(i, value)| parse(desc, i, value).map_err(Error::msg))
            .collect()
    }

    /// The messages as a stream, read from standard input as they come; the
    /// receiver yields the first error, after which the stream ends.
    pub fn stream(self, desc: &MessageDescriptor) -> Result<(MessageStream, oneshot::Receiver<String>)> {
        let (error_tx, error_rx) = oneshot::channel();
        if !matches!(self, Input::Stdin) {
            let messages = self.read_all(desc)?;
            return Ok((Box::pin(futures_util::stream::iter(messages)), error_rx));
        }
        let (tx, rx) = mpsc::channel::<std::result::Result<DynamicMessage, String>>(16);
        let desc = desc.clone();
        // Standard input blocks: a thread of its own reads it. It ends with
        // the process if the call ends first.
        std::thread::spawn(move || {
            let stdin = std::io::stdin().lock();
            for (i, value) in serde_json::Deserializer::from_reader(stdin)
                .into_iter::<Value>()
                .enumerate()
            {
                let message = parse(&desc, i, value);
                let failed = message.is_err();
                if tx.blocking_send(message).is_err() || failed {
                    break;
                }
            }
        });
        let stream = futures_util::stream::unfold((rx, Some(error_tx)), |(mut rx, mut error_tx)| async move {
            match rx.recv().await? {
                Ok(message) => Some((message, (rx, error_tx))),
                Err(e) => {
                    if let Some(tx) = error_tx.take() {
                        let _ = tx.send(e);
                    }
                    None
                }
            }
        });
        Ok((Box::pin(stream), error_rx))
    }
}

/// One message from the `index`th JSON value.
fn parse(
    desc: &MessageDescriptor,
    index: usize,
    value: std::result::Result<Value, serde_json::Error>,
) -> std::result::Result<DynamicMessage, String> {
    let which = if index == 0 {
        "the request".to_string()
    } else {
        format!("request message {}", index + 1)
    };
    let value = value.map_err(|e| format!("{which} is not valid JSON: {e}"))?;
    from_json(desc, value).map_err(|e| format!("{which} does not match {}: {e}", desc.full_name()))
}
