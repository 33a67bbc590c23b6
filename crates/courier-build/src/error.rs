//! The error type returned by the code generator.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// An error produced while compiling `.proto` files or generating code.
///
/// Both the [`Display`](fmt::Display) and the [`Debug`] representation have the
/// compiler-style shape `file:line:column: cause` whenever a location is known,
/// for example:
///
/// ```text
/// proto/bad.proto:7:3: expected ';', but found 'string'
/// ```
///
/// Build scripts commonly end with `.unwrap()` or return the error from
/// `main`, both of which print the `Debug` form, so it is kept just as readable
/// as `Display`.
///
/// The error converts into [`std::io::Error`] for build scripts whose `main`
/// returns `std::io::Result<()>`.
pub struct Error {
    kind: io::ErrorKind,
    file: Option<PathBuf>,
    line: Option<usize>,
    column: Option<usize>,
    message: String,
}

impl Error {
    /// Creates an error without a source location.
    pub(crate) fn new(kind: io::ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            file: None,
            line: None,
            column: None,
            message: message.into(),
        }
    }

    /// Creates an error that refers to a whole file.
    pub(crate) fn in_file(kind: io::ErrorKind, file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error {
            file: Some(file.into()),
            ..Error::new(kind, message)
        }
    }

    /// Wraps an I/O error with a description of what was being attempted.
    pub(crate) fn io(context: impl fmt::Display, err: &io::Error) -> Self {
        Error::new(err.kind(), format!("{context}: {err}"))
    }

    /// Converts an error reported by the `.proto` compiler.
    ///
    /// `includes` is used to turn the import name the compiler reports (which
    /// is relative to an include directory) back into the path on disk, so
    /// that the message points at a file the user can open.
    pub(crate) fn from_protox(err: &protox::Error, includes: &[PathBuf]) -> Self {
        let kind = if err.is_file_not_found() {
            io::ErrorKind::NotFound
        } else {
            io::ErrorKind::InvalidInput
        };
        // protox renders the location only in its `Debug` output, in the form
        // `name:line:column: message` (or `name: message`). Its `file()`
        // accessor tells us the name, so the rest can be taken apart safely.
        let rendered = format!("{err:?}");
        let Some(name) = err.file() else {
            return Error::new(kind, rendered);
        };
        let Some(rest) = rendered.strip_prefix(name).and_then(|rest| rest.strip_prefix(':')) else {
            return Error::in_file(kind, display_path(name, includes), rendered);
        };
        let (line, column, message) = split_location(rest);
        Error {
            kind,
            file: Some(display_path(name, includes)),
            line,
            column,
            message: message.trim_start().to_owned(),
        }
    }

    /// The `.proto` file the error refers to, if any.
    ///
    /// Where the file could be found on disk this is its path as reachable
    /// from the include directories given to the compiler (for example
    /// `proto/bad.proto`); otherwise it is the import name.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The 1-based line of the error within [`file`](Self::file), if known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// The 1-based column of the error within [`file`](Self::file), if known.
    pub fn column(&self) -> Option<usize> {
        self.column
    }

    /// The cause of the error, without the location prefix.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The closest matching [`std::io::ErrorKind`].
    pub fn kind(&self) -> io::ErrorKind {
        self.kind
    }
}

/// Parses an optional `line:column:` prefix (as produced by protox).
fn split_location(rest: &str) -> (Option<usize>, Option<usize>, &str) {
    let mut parts = rest.splitn(3, ':');
    let (Some(line), Some(column), Some(message)) = (parts.next(), parts.next(), parts.next()) else {
        return (None, None, rest);
    };
    match (line.parse::<usize>(), column.parse::<usize>()) {
        (Ok(line), Ok(column)) => (Some(line), Some(column), message),
        _ => (None, None, rest),
    }
}

/// Maps an import name back to the first include directory that holds it.
fn display_path(name: &str, includes: &[PathBuf]) -> PathBuf {
    includes
        .iter()
        .map(|include| include.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}:", file.display())?;
            if let Some(line) = self.line {
                write!(f, "{line}:")?;
                if let Some(column) = self.column {
                    write!(f, "{column}:")?;
                }
            }
            f.write_str(" ")?;
        }
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Deliberately identical to `Display`: this is what `unwrap()` and
        // `main() -> Result<..>` print, and it must point at the .proto file.
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        io::Error::new(err.kind, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_prefix_is_parsed() {
        assert_eq!(split_location("7:3: expected ';'"), (Some(7), Some(3), " expected ';'"));
        assert_eq!(split_location(" no location"), (None, None, " no location"));
        assert_eq!(
            split_location(" a: b: c"),
            (None, None, " a: b: c"),
            "non-numeric parts are not a location"
        );
    }

    #[test]
    fn display_and_debug_match() {
        let err = Error {
            kind: io::ErrorKind::InvalidInput,
            file: Some(PathBuf::from("proto/a.proto")),
            line: Some(7),
            column: Some(3),
            message: "expected ';'".into(),
        };
        assert_eq!(err.to_string(), "proto/a.proto:7:3: expected ';'");
        assert_eq!(format!("{err:?}"), "proto/a.proto:7:3: expected ';'");

        let err = Error::in_file(io::ErrorKind::NotFound, "x.proto", "file not found");
        assert_eq!(err.to_string(), "x.proto: file not found");

        let err = Error::new(io::ErrorKind::Other, "plain");
        assert_eq!(format!("{err:?}"), "plain");
    }

    #[test]
    fn converts_to_io_error() {
        let err = Error::in_file(io::ErrorKind::NotFound, "x.proto", "file not found");
        let io_err: io::Error = err.into();
        assert_eq!(io_err.kind(), io::ErrorKind::NotFound);
        assert_eq!(io_err.to_string(), "x.proto: file not found");
    }
}
