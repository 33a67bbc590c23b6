//! The sizes of the per-call futures of the server and of the client, which
//! every move of a call pays for (see docs/PERFORMANCE.md): printed with
//! `cargo test --release -p courier-bench --test future_sizes -- --nocapture`,
//! and held under a bound so that a change that bloats them again is seen.

use courier::codec::ProstCodec;
use courier::server::{ServerCall, Service};
use courier_bench::courier_server::Bench;
use courier_bench::pb::benchmark_service_server::BenchmarkService;
use courier_bench::pb::benchmark_service_server::BenchmarkServiceServer;
use courier_bench::pb::test_service_server::TestServiceServer;
use courier_bench::pb::{SimpleRequest, SimpleResponse};

fn size_of_call<F, R>(_: F) -> usize
where
    F: FnOnce(ServerCall) -> R,
{
    std::mem::size_of::<R>()
}

#[test]
fn per_call_future_sizes() {
    let bench = BenchmarkServiceServer::new(Bench);
    let test = TestServiceServer::new(Bench);
    let sizes = [
        ("ServerCall", std::mem::size_of::<ServerCall>()),
        ("BenchmarkService call future", size_of_call(|c| bench.call(c))),
        ("TestService call future", size_of_call(|c| test.call(c))),
        (
            "ServerCall::unary future",
            size_of_call(|c| {
                c.unary(ProstCodec::<SimpleResponse, SimpleRequest>::new(), |r| {
                    Bench.unary_call(r)
                })
            }),
        ),
        (
            "ServerCall::streaming future",
            size_of_call(|c| {
                c.streaming(ProstCodec::<SimpleResponse, SimpleRequest>::new(), |r| {
                    Bench.streaming_call(r)
                })
            }),
        ),
        (
            "BenchmarkService::unary_call future",
            size_of_call(|_c| Bench.unary_call(courier::Request::new(SimpleRequest::default()))),
        ),
    ];
    let channel = courier::Channel::lazy("http://127.0.0.1:1").unwrap();
    let unary_call = channel.unary(
        courier::Request::new(SimpleRequest::default()),
        "/grpc.testing.BenchmarkService/UnaryCall",
        ProstCodec::<SimpleRequest, SimpleResponse>::new(),
    );
    let client_size = std::mem::size_of_val(&unary_call);
    println!("Channel::unary future: {client_size} bytes");
    drop(unary_call);
    // The dialing future (TCP, TLS and HTTP/2 handshakes) is boxed and made
    // only when a connection must be, so it is no part of every call's
    // future.
    assert!(
        client_size <= 3072,
        "Channel::unary's future is {client_size} bytes, over 3072: see docs/PERFORMANCE.md"
    );
    for (what, size) in sizes {
        println!("{what}: {size} bytes");
    }
    // What keeps this small: the runners own the call's parts in one
    // `async` block, not a chain of by-value futures that each store them
    // again, and streaming calls are boxed.
    let bound = 3072;
    let (what, size) = sizes[1];
    assert!(
        size <= bound,
        "{what} is {size} bytes, over {bound}: see docs/PERFORMANCE.md"
    );
}
