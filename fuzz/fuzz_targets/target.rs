//! Channel targets: `Target::parse` and `Channel::builder(..).connect_lazy()`
//! on any text.
//!
//! Checks that neither panics; that a parsed target has a lowercase scheme
//! and an endpoint found in the text; that a target the parser accepts
//! builds a channel, or is refused with INVALID_ARGUMENT and a message; and
//! that parsing is deterministic.

#![no_main]

use courier::client::resolver::Target;
use courier::{Channel, Code};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else { return };
    match Target::parse(text) {
        Ok(target) => {
            assert_eq!(target.scheme(), target.scheme().to_ascii_lowercase(), "{text:?}");
            assert!(text.contains(target.endpoint()), "{text:?}: endpoint {:?}", target.endpoint());
            assert_eq!(Target::parse(text).ok(), Some(target.clone()), "{text:?}");
        }
        Err(status) => {
            assert_eq!(status.code(), Code::InvalidArgument, "{text:?}: {status}");
            assert!(!status.message().is_empty());
        }
    }
    match Channel::builder(text).connect_lazy() {
        Ok(channel) => assert_eq!(channel.target(), text),
        Err(status) => {
            assert_eq!(status.code(), Code::InvalidArgument, "{text:?}: {status}");
            assert!(!status.message().is_empty());
        }
    }
});
