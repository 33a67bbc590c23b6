//! `courier call ADDR pkg.Service/Method`: calls a method with requests
//! given as JSON and prints each response as proto3 JSON.
//!
//! All four kinds of call work. A unary or server-streaming method takes one
//! request (the empty message when none is given); a client-streaming or
//! bidirectional one takes any number. Responses go to standard output, one
//! JSON document per message, as they arrive; with `-v`, the response
//! headers and trailers go to standard error. A call that ends with a
//! non-OK status prints its code, message and rich details, and exits with
//! 64 + the code.

use std::io::Write;
use std::time::Duration;

use courier::client::MethodPath;
use courier::{Metadata, Request, Status, Streaming};
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor};

use crate::connect::{ConnectArgs, explain_transport_error, parse_duration};
use crate::dynamic::{DynamicCodec, to_json};
use crate::error::{Error, Result};
use crate::input::Input;
use crate::source::{Source, SourceArgs, open};

/// `courier call`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  courier call localhost:50051 helloworld.Greeter/SayHello -d '{\"name\": \"Ada\"}'
  courier call localhost:50051 pkg.Service/Method -d @request.json -H 'authorization: Bearer T'
  printf '{\"n\": 1}\\n{\"n\": 2}\\n' | courier call localhost:50051 pkg.Service/ClientStream
  courier call api.example.com:443 pkg.Service/Method --proto api.proto -I protos/")]
pub struct CallArgs {
    /// The server: HOST:PORT, http(s)://HOST:PORT, or a target such as
    /// dns:///HOST:PORT, ipv4:ADDR:PORT,ADDR:PORT, ipv6:[ADDR]:PORT,
    /// unix:PATH, unix-abstract:NAME or passthrough:///HOST:PORT.
    pub addr: String,
    /// The method: pkg.Service/Method (or pkg.Service.Method).
    pub method: String,
    /// The request as JSON; @FILE reads a file, @- standard input. Without
    /// -d, standard input is read unless it is a terminal. Streaming
    /// requests are JSON objects one after another.
    #[arg(short = 'd', long = "data", value_name = "JSON")]
    pub data: Option<String>,
    /// Fail the call with DEADLINE_EXCEEDED after this long (such as 500ms,
    /// 10s, 1m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Show the response headers and trailers (on standard error).
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Print fields that have their default value too.
    #[arg(long)]
    pub emit_defaults: bool,
    /// Print each response on one line instead of indented.
    #[arg(long)]
    pub compact: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Splits `pkg.Service/Method`, `/pkg.Service/Method` or
/// `pkg.Service.Method` into service and method.
pub fn split_method(text: &str) -> Result<(String, String)> {
    let text = text.trim_start_matches(['/', '.']);
    let split = text.split_once('/').or_else(|| text.rsplit_once('.'));
    match split {
        Some((service, method)) if !service.is_empty() && !method.is_empty() && !method.contains('/') => {
            Ok((service.to_string(), method.to_string()))
        }
        _ => Err(Error::msg(format!(
            "invalid method {text:?}: expected pkg.Service/Method"
        ))),
    }
}

/// The descriptor of `method`, or an error naming what exists.
pub async fn resolve_method(source: &mut Source, method: &str) -> Result<MethodDescriptor> {
    let (service_name, method_name) = split_method(method)?;
    let service = source.service(&service_name).await?;
    if let Some(m) = service.methods().find(|m| m.name() == method_name) {
        return Ok(m);
    }
    let methods: Vec<String> = service.methods().map(|m| m.name().to_string()).collect();
    Err(Error::msg(format!(
        "service {} has no method {method_name}; its methods: {}",
        service.full_name(),
        if methods.is_empty() {
            "none".to_string()
        } else {
            methods.join(", ")
        }
    )))
}

/// Runs `courier call`.
pub async fn run(args: CallArgs) -> Result<()> {
    let input = Input::new(args.data.as_deref())?;
    let (channel, mut source, tls) = open(&args.addr, &args.connect, &args.source).await?;
    let method = resolve_method(&mut source, &args.method).await?;
    let pool = method.parent_pool().clone();
    let path = MethodPath::parse(format!("/{}/{}", method.parent_service().full_name(), method.name()))
        .map_err(|s| Error::msg(s.message()))?;
    let codec = DynamicCodec::new(method.output());
    let printer = Printer {
        verbose: args.verbose,
        pretty: !args.compact,
        emit_defaults: args.emit_defaults,
    };
    let failed = |status: Status| failure(status, &pool, args.verbose, tls);

    match (method.is_client_streaming(), method.is_server_streaming()) {
        (false, server_streaming) => {
            let request = single(input.read_all(&method.input())?, &method)?;
            let request = with_timeout(Request::new(request), args.timeout);
            if server_streaming {
                let response = channel.server_streaming(request, path, codec).await.map_err(failed)?;
                printer.headers(response.metadata());
                printer.stream(response.into_inner()).await.map_err(failed)?;
            } else {
                let response = channel.unary(request, path, codec).await.map_err(failed)?;
                printer.headers(response.metadata());
                printer.message(response.get_ref());
                printer.trailers(response.trailers());
            }
        }
        (true, server_streaming) => {
            let (requests, input_error) = input.stream(&method.input())?;
            let request = with_timeout(Request::new(requests), args.timeout);
            let call = async {
                if server_streaming {
                    let response = channel.streaming(request, path, codec).await.map_err(failed)?;
                    let mut stream = response.into_inner();
                    let headers = stream.headers().await.map_err(failed)?.clone();
                    printer.headers(&headers);
                    printer.stream(stream).await.map_err(failed)
                } else {
                    let response = channel.client_streaming(request, path, codec).await.map_err(failed)?;
                    printer.headers(response.metadata());
                    printer.message(response.get_ref());
                    printer.trailers(response.trailers());
                    Ok(())
                }
            };
            // Bad JSON on standard input cancels the call. The error is
            // sent before the request stream ends, so it is seen first.
            let mut input_error = input_error;
            let result = tokio::select! {
                biased;
                Ok(message) = &mut input_error => return Err(Error::msg(message)),
                result = call => result,
            };
            if let Ok(message) = input_error.try_recv() {
                return Err(Error::msg(message));
            }
            result?;
        }
    }
    Ok(())
}

fn with_timeout<T>(mut request: Request<T>, timeout: Option<Duration>) -> Request<T> {
    if let Some(t) = timeout {
        request.set_timeout(t);
    }
    request
}

/// The one request of a unary or server-streaming call.
fn single(mut messages: Vec<DynamicMessage>, method: &MethodDescriptor) -> Result<DynamicMessage> {
    match messages.len() {
        0 => Ok(DynamicMessage::new(method.input())),
        1 => Ok(messages.remove(0)),
        n => Err(Error::msg(format!(
            "{} takes one request message, but {n} were given",
            method.full_name()
        ))),
    }
}

/// The error for a call that failed: a transport failure in one line, or
/// the server's status with its details.
fn failure(status: Status, pool: &DescriptorPool, verbose: bool, tls: bool) -> Error {
    if let Some(message) = explain_transport_error(&status, tls) {
        return Error::msg(message);
    }
    if verbose {
        print_metadata("Response trailers", status.metadata());
    }
    Error::rpc(status, Some(pool.clone()))
}

/// Prints responses, and with `-v` their metadata.
struct Printer {
    verbose: bool,
    pretty: bool,
    emit_defaults: bool,
}

impl Printer {
    fn message(&self, message: &DynamicMessage) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", to_json(message, self.pretty, self.emit_defaults));
        let _ = out.flush();
    }

    async fn stream(&self, mut stream: Streaming<DynamicMessage>) -> std::result::Result<(), Status> {
        while let Some(message) = stream.message().await? {
            self.message(&message);
        }
        if let Some(trailers) = stream.trailers() {
            self.trailers(trailers);
        }
        Ok(())
    }

    fn headers(&self, metadata: &Metadata) {
        if self.verbose {
            print_metadata("Response headers", metadata);
        }
    }

    fn trailers(&self, metadata: &Metadata) {
        if self.verbose {
            print_metadata("Response trailers", metadata);
        }
    }
}

/// Prints metadata to standard error, binary values in base64.
fn print_metadata(title: &str, metadata: &Metadata) {
    let mut err = std::io::stderr().lock();
    if metadata.is_empty() {
        let _ = writeln!(err, "{title}: (none)");
        return;
    }
    let _ = writeln!(err, "{title}:");
    for (key, value) in metadata.iter() {
        let text = match value {
            courier::metadata::MetadataValue::Ascii(s) => s.to_string(),
            courier::metadata::MetadataValue::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        };
        let _ = writeln!(err, "  {key}: {text}");
    }
}

#[cfg(test)]
mod tests {
    use super::split_method;

    #[test]
    fn method_names() {
        let split = |s| split_method(s).ok();
        let want = Some(("pkg.Svc".to_string(), "Do".to_string()));
        assert_eq!(split("pkg.Svc/Do"), want);
        assert_eq!(split("/pkg.Svc/Do"), want);
        assert_eq!(split("pkg.Svc.Do"), want);
        assert_eq!(split("Svc"), None);
        assert_eq!(split("pkg.Svc/"), None);
    }
}
