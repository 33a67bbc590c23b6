//! The command line the example programs share: an address, given with
//! `--addr ADDR` (or `--addr=ADDR`), and positional arguments.

use std::fmt::Display;
use std::process::{self, ExitCode};

/// Parsed command-line arguments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Args {
    /// The value of `--addr`, if given.
    pub addr: Option<String>,
    /// The other arguments, in order.
    pub positional: Vec<String>,
}

impl Args {
    /// Parses `args` (without the program name).
    ///
    /// Returns `Ok(None)` when help was asked for with `-h` or `--help`, and
    /// an error message for an unknown option or a missing value.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
        let mut parsed = Args::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "-h" | "--help" => return Ok(None),
                "--addr" => {
                    let value = args.next().ok_or("--addr needs a value")?;
                    parsed.addr = Some(value);
                }
                "--" => parsed.positional.extend(args.by_ref()),
                _ => {
                    if let Some(value) = arg.strip_prefix("--addr=") {
                        parsed.addr = Some(value.to_string());
                    } else if arg.starts_with('-') && arg.len() > 1 {
                        return Err(format!("unknown option {arg:?}"));
                    } else {
                        parsed.positional.push(arg);
                    }
                }
            }
        }
        Ok(Some(parsed))
    }

    /// Parses the program's own arguments. Prints `usage` and exits on
    /// `--help` (status 0) or on bad arguments (status 2).
    pub fn from_env(usage: &str) -> Args {
        match Args::parse(std::env::args().skip(1)) {
            Ok(Some(args)) => args,
            Ok(None) => {
                println!("{usage}");
                process::exit(0);
            }
            Err(message) => {
                eprintln!("error: {message}\n\n{usage}");
                process::exit(2);
            }
        }
    }

    /// The address from `--addr`, else the first positional argument, else
    /// `default`.
    pub fn addr_or_first(&self, default: &str) -> String {
        self.addr
            .clone()
            .or_else(|| self.positional.first().cloned())
            .unwrap_or_else(|| default.to_string())
    }
}

/// The exit code for a program's outcome, printing the error, if any, in
/// its readable form (rather than the `Debug` form `main` would print).
pub fn exit_code(result: Result<(), impl Display>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Args;

    fn parse(args: &[&str]) -> Result<Option<Args>, String> {
        Args::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn addr_forms() {
        let a = parse(&["--addr", "127.0.0.1:1"]).unwrap().unwrap();
        assert_eq!(a.addr_or_first("d"), "127.0.0.1:1");
        let a = parse(&["--addr=127.0.0.1:2", "Ada"]).unwrap().unwrap();
        assert_eq!(a.addr.as_deref(), Some("127.0.0.1:2"));
        assert_eq!(a.positional, ["Ada"]);
        let a = parse(&["127.0.0.1:3"]).unwrap().unwrap();
        assert_eq!(a.addr_or_first("d"), "127.0.0.1:3");
        assert_eq!(parse(&[]).unwrap().unwrap().addr_or_first("d"), "d");
    }

    #[test]
    fn help_and_errors() {
        assert_eq!(parse(&["-h"]), Ok(None));
        assert!(parse(&["--addr"]).is_err());
        assert!(parse(&["--port", "1"]).is_err());
        assert_eq!(parse(&["--", "--addr"]).unwrap().unwrap().positional, ["--addr"]);
    }
}
