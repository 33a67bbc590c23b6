//! The tonic bench server: `grpc.testing.BenchmarkService` on tonic 0.14,
//! answering exactly as [`crate::courier_server`] does.

use futures_util::StreamExt as _;
use futures_util::stream::Map;
use tonic::{Request, Response, Status, Streaming};

use crate::serve::ShutdownSignal;
use crate::tonic_pb::benchmark_service_server::{BenchmarkService, BenchmarkServiceServer};
use crate::tonic_pb::{Payload, SimpleRequest, SimpleResponse};

fn simple_response(size: i32) -> Result<SimpleResponse, Status> {
    let body = usize::try_from(size)
        .ok()
        .and_then(crate::zeros)
        .ok_or_else(|| Status::invalid_argument(format!("response size {size} is out of range")))?;
    Ok(SimpleResponse {
        payload: Some(Payload { r#type: 0, body }),
        ..Default::default()
    })
}

fn answer(request: Result<SimpleRequest, Status>) -> Result<SimpleResponse, Status> {
    simple_response(request?.response_size)
}

/// The responses of StreamingCall: one per request, in order.
pub type StreamingCallResponses =
    Map<Streaming<SimpleRequest>, fn(Result<SimpleRequest, Status>) -> Result<SimpleResponse, Status>>;

/// BenchmarkService on tonic.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bench;

#[tonic::async_trait]
impl BenchmarkService for Bench {
    async fn unary_call(&self, request: Request<SimpleRequest>) -> Result<Response<SimpleResponse>, Status> {
        simple_response(request.get_ref().response_size).map(Response::new)
    }

    type StreamingCallStream = StreamingCallResponses;

    async fn streaming_call(
        &self,
        request: Request<Streaming<SimpleRequest>>,
    ) -> Result<Response<StreamingCallResponses>, Status> {
        let f: fn(_) -> _ = answer;
        Ok(Response::new(request.into_inner().map(f)))
    }
}

/// Serves BenchmarkService on `listener` with tonic's defaults and
/// TCP_NODELAY on, until `shutdown`.
///
/// # Errors
///
/// The server failed.
pub async fn serve(listener: tokio::net::TcpListener, shutdown: ShutdownSignal) -> Result<(), String> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(BenchmarkServiceServer::new(Bench))
        .serve_with_incoming_shutdown(incoming, shutdown.wait())
        .await
        .map_err(|e| format!("server failed: {e}"))
}
