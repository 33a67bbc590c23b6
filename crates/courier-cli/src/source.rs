//! Where the descriptors of the server's services come from: the server
//! itself, through server reflection, or `.proto` files given with `--proto`
//! (and `--import-path`), compiled in-process by protox.
//!
//! Reflection tries `grpc.reflection.v1` first and falls back to `v1alpha`
//! when the server does not implement v1 (older servers, grpcio's among
//! them, serve only v1alpha). One reflection stream carries every question
//! of a run. The descriptors fetched, with the files they import (fetched in
//! turn when the server did not send them), make up a [`DescriptorPool`].

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use courier::client::MethodPath;
use courier::codec::ProstCodec;
use courier::reflection::pb::v1::server_reflection_request::MessageRequest;
use courier::reflection::pb::v1::server_reflection_response::MessageResponse;
use courier::reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};
use courier::{Channel, Code, Request, Status, Streaming};
use prost::Message as _;
use prost_reflect::{DescriptorPool, ServiceDescriptor};
use prost_types::FileDescriptorProto;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::connect::{ConnectArgs, connect, explain_transport_error};
use crate::error::{Error, Result};

/// Where to find descriptors when the server does not offer reflection.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct SourceArgs {
    /// Describe the service from this .proto file instead of asking the
    /// server through reflection (repeatable).
    #[arg(long = "proto", value_name = "FILE")]
    pub protos: Vec<PathBuf>,
    /// A directory where --proto files and their imports are found
    /// (repeatable). Each --proto file's own directory is searched too.
    #[arg(short = 'I', long = "import-path", value_name = "DIR")]
    pub import_paths: Vec<PathBuf>,
}

impl SourceArgs {
    /// Whether descriptors come from files rather than from the server.
    pub fn uses_files(&self) -> bool {
        !self.protos.is_empty()
    }
}

/// A source of descriptors.
pub enum Source {
    /// Compiled from `.proto` files.
    Files(DescriptorPool),
    /// Asked of the server.
    Reflection(Box<Reflection>),
}

impl Source {
    /// Compiles the `--proto` files.
    pub fn files(args: &SourceArgs) -> Result<Source> {
        let mut includes = args.import_paths.clone();
        for proto in &args.protos {
            if !proto.is_file() {
                // A name relative to an import path, as in an import.
                if args.import_paths.iter().any(|dir| dir.join(proto).is_file()) {
                    continue;
                }
                return Err(Error::msg(format!("--proto {}: no such file", proto.display())));
            }
            let dir = proto
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(".".as_ref());
            if !includes.iter().any(|i| i == dir) {
                includes.push(dir.to_path_buf());
            }
        }
        let mut compiler = protox::Compiler::new(&includes).map_err(|e| Error::msg(format!("--proto: {e}")))?;
        compiler.include_imports(true).include_source_info(true);
        compiler
            .open_files(&args.protos)
            .map_err(|e| Error::msg(format!("cannot compile the --proto files: {}", protox_error(&e))))?;
        let pool = DescriptorPool::from_file_descriptor_set(compiler.file_descriptor_set())
            .map_err(|e| Error::msg(format!("the --proto files are inconsistent: {e}")))?;
        Ok(Source::Files(pool))
    }

    /// Asks the server at `addr`, through `channel`.
    pub fn reflection(channel: Channel, addr: &str, tls: bool) -> Source {
        Source::Reflection(Box::new(Reflection {
            channel,
            addr: addr.to_string(),
            tls,
            version: Version::V1,
            stream: None,
            files: BTreeMap::new(),
            pool: DescriptorPool::new(),
        }))
    }

    /// The fully qualified names of the services, sorted.
    pub async fn services(&mut self) -> Result<Vec<String>> {
        let mut names = match self {
            Source::Files(pool) => pool.services().map(|s| s.full_name().to_string()).collect(),
            Source::Reflection(r) => r.list_services().await?,
        };
        names.sort();
        Ok(names)
    }

    /// A pool that defines `symbol` (a service, message, enum, extension or
    /// method), or `None` when the source knows no such symbol.
    pub async fn find(&mut self, symbol: &str) -> Result<Option<DescriptorPool>> {
        let symbol = symbol.trim_start_matches('.');
        match self {
            Source::Files(pool) => Ok(defines(pool, symbol).then(|| pool.clone())),
            Source::Reflection(r) => r.find(symbol).await,
        }
    }

    /// The descriptor of a service, or an error that names the services
    /// there are.
    pub async fn service(&mut self, name: &str) -> Result<ServiceDescriptor> {
        let name = name.trim_start_matches('.');
        if let Some(pool) = self.find(name).await?
            && let Some(service) = pool.get_service_by_name(name)
        {
            return Ok(service);
        }
        let services = self.services().await?;
        let place = match self {
            Source::Files(_) => "the --proto files define".to_string(),
            Source::Reflection(r) => format!("{} serves", r.addr),
        };
        let known = if services.is_empty() {
            format!("{place} no services")
        } else {
            format!("{place}: {}", services.join(", "))
        };
        Err(Error::msg(format!("unknown service {name}; {known}")))
    }
}

/// The channel and descriptor source that every verb but `health` starts from.
pub async fn open(addr: &str, connect_args: &ConnectArgs, source: &SourceArgs) -> Result<(Channel, Source, bool)> {
    // Files are compiled before connecting: a mistake in them is found
    // without waiting for the network.
    let files = if source.uses_files() {
        Some(Source::files(source)?)
    } else {
        None
    };
    let (channel, tls) = connect(addr, connect_args).await?;
    let source = match files {
        Some(files) => files,
        None => Source::reflection(channel.clone(), addr, tls),
    };
    Ok((channel, source, tls))
}

/// Whether `pool` defines `symbol`.
pub fn defines(pool: &DescriptorPool, symbol: &str) -> bool {
    if pool.get_service_by_name(symbol).is_some()
        || pool.get_message_by_name(symbol).is_some()
        || pool.get_enum_by_name(symbol).is_some()
        || pool.get_extension_by_name(symbol).is_some()
    {
        return true;
    }
    // A method, field or enum value: its parent is defined.
    symbol.rsplit_once('.').is_some_and(|(parent, _)| {
        pool.get_service_by_name(parent).is_some()
            || pool.get_message_by_name(parent).is_some()
            || pool.get_enum_by_name(parent).is_some()
    })
}

/// A protox error as `file:line:column: message`, on one line.
fn protox_error(error: &protox::Error) -> String {
    use miette::Diagnostic as _;
    let message = one_line(&error.to_string());
    let span = error.labels().and_then(|mut labels| labels.next());
    let located = error
        .source_code()
        .zip(span)
        .and_then(|(source, label)| source.read_span(label.inner(), 0, 0).ok())
        .map(|contents| {
            let name = contents.name().or(error.file()).unwrap_or("?").to_string();
            format!("{name}:{}:{}", contents.line() + 1, contents.column() + 1)
        });
    match located.or_else(|| error.file().map(str::to_string)) {
        Some(place) if !message.contains(&place) => format!("{place}: {message}"),
        _ => message,
    }
}

/// Joins a multi-line diagnostic into one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V1Alpha,
}

impl Version {
    fn path(self) -> &'static str {
        match self {
            Version::V1 => "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            Version::V1Alpha => "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        }
    }
}

/// A reflection client and what it has learnt.
pub struct Reflection {
    channel: Channel,
    addr: String,
    tls: bool,
    version: Version,
    stream: Option<ReflectionStream>,
    /// The files fetched, by name.
    files: BTreeMap<String, FileDescriptorProto>,
    pool: DescriptorPool,
}

struct ReflectionStream {
    requests: mpsc::Sender<ServerReflectionRequest>,
    responses: Streaming<ServerReflectionResponse>,
    /// Whether the server has answered on this stream yet.
    answered: bool,
}

/// The answer to one reflection request.
enum Answer {
    Response(MessageResponse),
    /// The server's `error_response`.
    Error(Status),
}

impl Reflection {
    async fn open(&self) -> Result<ReflectionStream> {
        let (requests, rx) = mpsc::channel(16);
        let codec = ProstCodec::<ServerReflectionRequest, ServerReflectionResponse>::new();
        let path = MethodPath::parse(self.version.path()).map_err(|s| Error::msg(s.message()))?;
        let response = self
            .channel
            .streaming(Request::new(ReceiverStream::new(rx)), path, codec)
            .await
            .map_err(|status| self.call_error(&status))?;
        Ok(ReflectionStream {
            requests,
            responses: response.into_inner(),
            answered: false,
        })
    }

    /// Sends one request and reads its answer, opening the stream (and
    /// falling back to v1alpha) as needed.
    async fn ask(&mut self, request: MessageRequest) -> Result<Answer> {
        loop {
            if self.stream.is_none() {
                self.stream = Some(self.open().await?);
            }
            let stream = self.stream.as_mut().expect("opened above");
            let message = ServerReflectionRequest {
                host: String::new(),
                message_request: Some(request.clone()),
            };
            // If the call has already ended, sending fails and the
            // response stream says why.
            let _ = stream.requests.send(message).await;
            let received = stream.responses.message().await;
            match received {
                Ok(Some(response)) => {
                    stream.answered = true;
                    return match response.message_response {
                        Some(MessageResponse::ErrorResponse(e)) => Ok(Answer::Error(Status::new(
                            Code::from_i32(e.error_code),
                            e.error_message,
                        ))),
                        Some(answer) => Ok(Answer::Response(answer)),
                        None => Err(Error::msg(format!("{}: empty reflection response", self.addr))),
                    };
                }
                Ok(None) => {
                    self.stream = None;
                    return Err(Error::msg(format!("{} closed the reflection stream early", self.addr)));
                }
                Err(status) => {
                    let first = !stream.answered;
                    self.stream = None;
                    if first && status.code() == Code::Unimplemented && self.version == Version::V1 {
                        self.version = Version::V1Alpha;
                        continue;
                    }
                    return Err(self.call_error(&status));
                }
            }
        }
    }

    fn call_error(&self, status: &Status) -> Error {
        if status.code() == Code::Unimplemented {
            return Error::with_status(
                format!(
                    "{} does not support server reflection; give the service's .proto files with --proto FILE (and --import-path DIR)",
                    self.addr
                ),
                status,
            );
        }
        if let Some(message) = explain_transport_error(status, self.tls) {
            return Error::msg(message);
        }
        Error::with_status(
            format!(
                "reflection request to {} failed: {}",
                self.addr,
                crate::error::status_line(status)
            ),
            status,
        )
    }

    async fn list_services(&mut self) -> Result<Vec<String>> {
        match self.ask(MessageRequest::ListServices(String::new())).await? {
            Answer::Response(MessageResponse::ListServicesResponse(list)) => {
                Ok(list.service.into_iter().map(|s| s.name).collect())
            }
            Answer::Response(_) => Err(Error::msg(format!(
                "{} answered list_services with something else",
                self.addr
            ))),
            Answer::Error(status) => Err(self.call_error(&status)),
        }
    }

    async fn find(&mut self, symbol: &str) -> Result<Option<DescriptorPool>> {
        if defines(&self.pool, symbol) {
            return Ok(Some(self.pool.clone()));
        }
        let mut asked = symbol.to_string();
        let files = loop {
            match self.ask(MessageRequest::FileContainingSymbol(asked.clone())).await? {
                Answer::Response(MessageResponse::FileDescriptorResponse(files)) => break files,
                Answer::Response(_) => {
                    return Err(Error::msg(format!(
                        "{} answered file_containing_symbol with something else",
                        self.addr
                    )));
                }
                Answer::Error(status) if status.code() == Code::NotFound => {
                    // Not every server resolves methods, fields and enum
                    // values: ask for the parent.
                    match asked.rsplit_once('.') {
                        Some((parent, _)) if asked == symbol && parent.contains('.') => {
                            asked = parent.to_string();
                        }
                        _ => return Ok(None),
                    }
                }
                Answer::Error(status) => return Err(self.call_error(&status)),
            }
        };
        self.add_files(files.file_descriptor_proto).await?;
        Ok(defines(&self.pool, symbol).then(|| self.pool.clone()))
    }

    /// Adds the encoded files, fetches the imports still missing, and
    /// rebuilds the pool.
    async fn add_files(&mut self, encoded: Vec<bytes::Bytes>) -> Result<()> {
        for bytes in encoded {
            let file = FileDescriptorProto::decode(&bytes[..]).map_err(|e| {
                Error::msg(format!(
                    "{} sent a file descriptor that does not decode: {e}",
                    self.addr
                ))
            })?;
            self.files.insert(file.name().to_string(), file);
        }
        let mut tried = HashSet::new();
        loop {
            let missing: Vec<(String, String)> = self
                .files
                .values()
                .flat_map(|f| f.dependency.iter().map(move |d| (d.clone(), f.name().to_string())))
                .filter(|(dep, _)| !self.files.contains_key(dep))
                .collect();
            let Some((dep, importer)) = missing.into_iter().next() else {
                break;
            };
            if !tried.insert(dep.clone()) {
                return Err(Error::msg(format!(
                    "{} did not send {dep}, which {importer} imports",
                    self.addr
                )));
            }
            match self.ask(MessageRequest::FileByFilename(dep.clone())).await? {
                Answer::Response(MessageResponse::FileDescriptorResponse(files)) => {
                    for bytes in files.file_descriptor_proto {
                        let file = FileDescriptorProto::decode(&bytes[..]).map_err(|e| {
                            Error::msg(format!(
                                "{} sent a file descriptor that does not decode: {e}",
                                self.addr
                            ))
                        })?;
                        self.files.entry(file.name().to_string()).or_insert(file);
                    }
                }
                Answer::Error(status) if status.code() == Code::NotFound => {
                    // The well-known types are known here too.
                    if let Some(file) = DescriptorPool::global().get_file_by_name(&dep) {
                        self.files.insert(dep, file.file_descriptor_proto().clone());
                    } else {
                        return Err(Error::msg(format!(
                            "{} does not have {dep}, which {importer} imports",
                            self.addr
                        )));
                    }
                }
                Answer::Response(_) => {
                    return Err(Error::msg(format!(
                        "{} answered file_by_filename with something else",
                        self.addr
                    )));
                }
                Answer::Error(status) => return Err(self.call_error(&status)),
            }
        }
        self.pool = DescriptorPool::from_file_descriptor_set(prost_types::FileDescriptorSet {
            file: self.files.values().cloned().collect(),
        })
        .map_err(|e| Error::msg(format!("the descriptors {} sent are inconsistent: {e}", self.addr)))?;
        Ok(())
    }
}
