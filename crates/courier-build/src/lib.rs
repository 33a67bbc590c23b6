//! Code generation for Courier gRPC services,
//! meant to be called from a crate's `build.rs`.
//!
//! `courier-build` turns `.proto` files into Rust: [`prost`] message types plus,
//! for every `service`, a typed client and a server trait. It is pure Rust — the
//! `.proto` files are compiled by [`protox`], so no `protoc` binary is needed
//! and the `PROTOC` environment variable is ignored.
//!
//! # Usage
//!
//! In `Cargo.toml`:
//!
//! ```toml
//! [dependencies]
//! courier = "0.1"
//! prost = "0.14"
//!
//! [build-dependencies]
//! courier-build = "0.1"
//! ```
//!
//! In `build.rs`:
//!
//! ```no_run
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // One file; its directory is the include path.
//!     courier_build::compile_protos("proto/helloworld.proto")?;
//!
//!     // Or, with options:
//!     courier_build::configure()
//!         .build_client(true)
//!         .build_server(true)
//!         .bytes(["."])
//!         .type_attribute(".helloworld.HelloReply", "#[derive(PartialOrd)]")
//!         .compile(&["proto/helloworld.proto"], &["proto"])?;
//!     Ok(())
//! }
//! ```
//!
//! Then, in the crate, include the code generated for each protobuf package:
//!
//! ```ignore
//! pub mod helloworld {
//!     courier::include_proto!("helloworld");
//! }
//! ```
//!
//! # What gets generated
//!
//! For each protobuf package, the file `{OUT_DIR}/{package}.rs` holds the
//! message types and, for a service such as `helloworld.Greeter`:
//!
//! - `greeter_client::GreeterClient`, with `new`, `connect`, `channel` and one
//!   `async` method per RPC (`say_hello`, ...);
//! - `greeter_server::Greeter`, the trait the application implements (its
//!   methods can be written as plain `async fn`s; response-streaming methods
//!   also get an associated `<Method>Stream` type). Each method has a default
//!   body that answers `UNIMPLEMENTED`, so an implementation overrides only
//!   the methods it serves and keeps compiling when an RPC is added to the
//!   `.proto` file; [`Builder::unimplemented_defaults`] turns the defaults off
//!   for those who prefer the compile error;
//! - `greeter_server::GreeterServer<T>`, which implements
//!   `courier::server::Service` for any `T: Greeter`;
//! - `greeter_server::SERVICE_NAME` and `greeter_server::FILE_DESCRIPTOR_SET`,
//!   the encoded descriptors of the service's `.proto` file and all of its
//!   imports (used by server reflection).
//!
//! Method names are the `snake_case` form of the RPC names, with Rust keywords
//! escaped (`rpc Type` becomes `r#type`). A client method that would clash with
//! `new`, `connect` or `channel` gets an `_rpc` suffix (`rpc Connect` becomes
//! `connect_rpc` on the client; the server trait keeps `connect`).
//!
//! # Errors
//!
//! Problems in `.proto` files are reported with the file, line and column, in
//! both the `Display` and the `Debug` form of [`Error`], for example
//! `proto/helloworld.proto:7:3: expected ';', but found 'string'`.

#![warn(missing_docs)]

mod descriptor;
mod error;
mod generator;
mod ident;

use std::collections::HashMap;
use std::env;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use crate::error::Error;
use crate::generator::CourierServiceGenerator;

/// Compiles a single `.proto` file with the default settings.
///
/// The file's parent directory is used as the include path (the current
/// directory if it has none), and the code is written to `OUT_DIR`. This is
/// `configure().compile(&[proto], &[parent])`.
///
/// ```no_run
/// // build.rs
/// fn main() -> Result<(), courier_build::Error> {
///     courier_build::compile_protos("proto/helloworld.proto")
/// }
/// ```
///
/// # Errors
///
/// See [`Builder::compile`].
pub fn compile_protos(proto: impl AsRef<Path>) -> Result<(), Error> {
    let proto = proto.as_ref();
    let include = match proto.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    configure().compile(&[proto], &[include])
}

/// Starts configuring code generation; finish with [`Builder::compile`].
pub fn configure() -> Builder {
    Builder {
        build_client: true,
        build_server: true,
        unimplemented_defaults: true,
        out_dir: None,
        emit_rerun_if_changed: true,
        bytes: None,
        type_attributes: Vec::new(),
        field_attributes: Vec::new(),
        prost_config: None,
    }
}

/// Code generation settings, created by [`configure`].
#[derive(Debug)]
pub struct Builder {
    build_client: bool,
    build_server: bool,
    unimplemented_defaults: bool,
    out_dir: Option<PathBuf>,
    emit_rerun_if_changed: bool,
    bytes: Option<Vec<String>>,
    type_attributes: Vec<(String, String)>,
    field_attributes: Vec<(String, String)>,
    prost_config: Option<prost_build::Config>,
}

impl Builder {
    /// Whether to generate a `<service>_client` module per service (default `true`).
    pub fn build_client(mut self, enable: bool) -> Self {
        self.build_client = enable;
        self
    }

    /// Whether to generate a `<service>_server` module per service (default `true`).
    pub fn build_server(mut self, enable: bool) -> Self {
        self.build_server = enable;
        self
    }

    /// Whether each method of a generated server trait has a default body
    /// that answers `UNIMPLEMENTED` (default `true`).
    ///
    /// With the defaults, an implementation overrides only the methods it
    /// serves, and a method added to a `.proto` file later does not break
    /// existing implementations: a call to a method left to its default gets
    /// `UNIMPLEMENTED` with the message
    /// `method SayHello of service helloworld.Greeter is not implemented`.
    /// Response-streaming methods still need their stream type named in every
    /// implementation, since Rust has no defaults for associated types.
    ///
    /// Turn the defaults off to make a method that an implementation does not
    /// define a compile error instead.
    ///
    /// ```no_run
    /// // build.rs
    /// fn main() -> Result<(), courier_build::Error> {
    ///     courier_build::configure()
    ///         .unimplemented_defaults(false)
    ///         .compile(&["proto/helloworld.proto"], &["proto"])
    /// }
    /// ```
    pub fn unimplemented_defaults(mut self, enable: bool) -> Self {
        self.unimplemented_defaults = enable;
        self
    }

    /// The directory to write generated files to.
    ///
    /// Defaults to the `OUT_DIR` environment variable that Cargo sets for
    /// build scripts. The directory is created if it does not exist. This
    /// takes precedence over any output directory set on a
    /// [`prost_config`](Self::prost_config).
    pub fn out_dir(mut self, out_dir: impl AsRef<Path>) -> Self {
        self.out_dir = Some(out_dir.as_ref().to_owned());
        self
    }

    /// Whether to print `cargo:rerun-if-changed` lines for the input files and
    /// include directories (default `true`), so that Cargo re-runs the build
    /// script when any of them change.
    pub fn emit_rerun_if_changed(mut self, enable: bool) -> Self {
        self.emit_rerun_if_changed = enable;
        self
    }

    /// Uses `bytes::Bytes` instead of `Vec<u8>` for the matching `bytes`
    /// fields; `["."]` selects all of them.
    ///
    /// Passed through to [`prost_build::Config::bytes`], whose documentation
    /// describes the path syntax. Calling it again replaces the earlier list.
    pub fn bytes<I, S>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.bytes = Some(paths.into_iter().map(|path| path.as_ref().to_owned()).collect());
        self
    }

    /// Adds an attribute (such as `#[derive(PartialOrd)]`) to the matching
    /// generated messages and enums.
    ///
    /// Passed through to [`prost_build::Config::type_attribute`].
    pub fn type_attribute(mut self, path: impl AsRef<str>, attribute: impl AsRef<str>) -> Self {
        self.type_attributes
            .push((path.as_ref().to_owned(), attribute.as_ref().to_owned()));
        self
    }

    /// Adds an attribute to the matching generated message fields.
    ///
    /// Passed through to [`prost_build::Config::field_attribute`].
    pub fn field_attribute(mut self, path: impl AsRef<str>, attribute: impl AsRef<str>) -> Self {
        self.field_attributes
            .push((path.as_ref().to_owned(), attribute.as_ref().to_owned()));
        self
    }

    /// Starts from a custom [`prost_build::Config`] for any message setting not
    /// covered by this builder (extern paths, map types, ...).
    ///
    /// The settings of `config` are kept; the options of this builder are
    /// applied on top of it when compiling. Its output directory and service
    /// generator are replaced by this builder's.
    pub fn prost_config(mut self, config: prost_build::Config) -> Self {
        self.prost_config = Some(config);
        self
    }

    /// Compiles `protos` and writes the generated code.
    ///
    /// `protos` are the `.proto` files to generate code for; each is either a
    /// path inside one of the `includes` directories (such as
    /// `proto/helloworld.proto` with include `proto`) or a name relative to
    /// one of them (`helloworld.proto`). `includes` are the directories that
    /// `import` statements are resolved against; the well-known
    /// `google/protobuf/*.proto` files are always available.
    ///
    /// # Errors
    ///
    /// Fails if `OUT_DIR` is not set and no [`out_dir`](Self::out_dir) was
    /// given, if a file is missing, if a `.proto` file does not compile
    /// (syntax errors, unresolved imports or types, ...) or if the output
    /// cannot be written. The [`Error`] names the file and, when known, the
    /// line and column.
    pub fn compile<P, I>(self, protos: &[P], includes: &[I]) -> Result<(), Error>
    where
        P: AsRef<Path>,
        I: AsRef<Path>,
    {
        let protos: Vec<PathBuf> = protos.iter().map(|p| p.as_ref().to_owned()).collect();
        let includes: Vec<PathBuf> = includes.iter().map(|i| i.as_ref().to_owned()).collect();

        if self.emit_rerun_if_changed {
            for path in protos.iter().chain(&includes) {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }

        let fds = compile_fds(&protos, &includes)?;
        let out_dir = self.resolve_out_dir()?;

        let descriptors = if self.build_server {
            descriptor::write_service_descriptors(&fds, &out_dir)?
        } else {
            HashMap::new()
        };

        let mut config = self.prost_config.unwrap_or_default();
        if let Some(bytes) = &self.bytes {
            config.bytes(bytes);
        }
        for (path, attribute) in &self.type_attributes {
            config.type_attribute(path, attribute);
        }
        for (path, attribute) in &self.field_attributes {
            config.field_attribute(path, attribute);
        }
        config.out_dir(&out_dir);
        config.service_generator(Box::new(CourierServiceGenerator {
            build_client: self.build_client,
            build_server: self.build_server,
            unimplemented_defaults: self.unimplemented_defaults,
            descriptors,
        }));
        config
            .compile_fds(fds)
            .map_err(|err| Error::io("failed to generate Rust code", &err))
    }

    /// The absolute output directory, created if needed. It must be absolute
    /// because generated code embeds it in `include_bytes!` paths.
    fn resolve_out_dir(&self) -> Result<PathBuf, Error> {
        let out_dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => env::var_os("OUT_DIR").map(PathBuf::from).ok_or_else(|| {
                Error::new(
                    io::ErrorKind::NotFound,
                    "the OUT_DIR environment variable is not set: run from a build script \
                     or call `out_dir(..)`",
                )
            })?,
        };
        fs::create_dir_all(&out_dir).map_err(|err| {
            Error::io(
                format_args!("cannot create output directory {}", out_dir.display()),
                &err,
            )
        })?;
        std::path::absolute(&out_dir).map_err(|err| {
            Error::io(
                format_args!("cannot resolve output directory {}", out_dir.display()),
                &err,
            )
        })
    }
}

/// Parses and type-checks `protos` (and their imports) with protox.
fn compile_fds(protos: &[PathBuf], includes: &[PathBuf]) -> Result<prost_types::FileDescriptorSet, Error> {
    // protox reports an input that does not exist as "not in any include
    // path"; say plainly that the file is missing instead.
    for proto in protos {
        let exists = proto.is_file() || includes.iter().any(|dir| dir.join(proto).is_file());
        if !exists {
            return Err(Error::in_file(io::ErrorKind::NotFound, proto, "file not found"));
        }
    }

    let mut compiler = protox::Compiler::new(includes).map_err(|err| Error::from_protox(&err, includes))?;
    compiler.include_imports(true).include_source_info(true);
    for proto in protos {
        compiler
            .open_file(proto)
            .map_err(|err| Error::from_protox(&err, includes))?;
    }
    Ok(compiler.file_descriptor_set())
}
