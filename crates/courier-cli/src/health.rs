//! `courier health ADDR [SERVICE]`: asks `grpc.health.v1.Health/Check` and
//! prints the status (SERVING, NOT_SERVING, ...). Exits 0 only when it is
//! SERVING, 3 for any other answer; a server without the health service, or
//! without a status for SERVICE, is an error that exits with 64 + its code.

use std::time::Duration;

use courier::Code;
use courier::Request;
use courier::health::pb::HealthCheckRequest;
use courier::health::pb::health_client::HealthClient;

use crate::connect::{ConnectArgs, connect, explain_transport_error, parse_duration};
use crate::error::{Error, NOT_SERVING, Result, status_line};

/// `courier health`.
#[derive(clap::Args, Debug)]
pub struct HealthArgs {
    /// The server: HOST:PORT, http(s)://HOST:PORT, or a target such as
    /// dns:///HOST:PORT, ipv4:ADDR:PORT,ADDR:PORT, ipv6:[ADDR]:PORT,
    /// unix:PATH, unix-abstract:NAME or passthrough:///HOST:PORT.
    pub addr: String,
    /// The service to ask about; without it, the server as a whole.
    #[arg(default_value = "")]
    pub service: String,
    /// Give up after this long (such as 500ms, 10s).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Runs `courier health`.
pub async fn run(args: HealthArgs) -> Result<()> {
    let (channel, tls) = connect(&args.addr, &args.connect).await?;
    let mut request = Request::new(HealthCheckRequest {
        service: args.service.clone(),
    });
    request.set_timeout(args.timeout);
    let what = if args.service.is_empty() {
        "the server".to_string()
    } else {
        format!("service {:?}", args.service)
    };
    let reply = HealthClient::new(channel).check(request).await.map_err(|status| {
        if let Some(message) = explain_transport_error(&status, tls) {
            return Error::msg(message);
        }
        let message = match status.code() {
            Code::Unimplemented => format!(
                "{} does not serve the health service (grpc.health.v1.Health)",
                args.addr
            ),
            Code::NotFound => format!("{} has no health status for {what}", args.addr),
            _ => format!("health check of {what} failed: {}", status_line(&status)),
        };
        Error::with_status(message, &status)
    })?;
    let status = reply.get_ref().status();
    println!("{}", status.as_str_name());
    if status == courier::health::ServingStatus::Serving {
        Ok(())
    } else {
        Err(Error::Exit(NOT_SERVING))
    }
}
