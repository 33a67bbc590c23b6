//! The engine's connections against h2, an independent implementation, as
//! the peer: calls both ways, and a client whose stream ids run out.

use std::future::poll_fn;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};

use super::driver::LAST_CLIENT_STREAM;
use super::{Config, Driver, Event, Failure, Opener, Role};
use crate::transport::Http2Settings;
use crate::transport::head::OutRequest;

type Io = tokio::io::DuplexStream;

/// A client driver over a socket pair whose other end is an h2 server
/// that answers every request with "pong" and grpc-status 0.
async fn client_against_h2() -> (Driver<Io>, Opener) {
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        let mut conn = h2::server::handshake(theirs).await.expect("h2 handshake");
        while let Some(Ok((request, mut respond))) = conn.accept().await {
            tokio::spawn(async move {
                let mut body = request.into_body();
                while let Some(Ok(chunk)) = body.data().await {
                    let _ = body.flow_control().release_capacity(chunk.len());
                }
                let response = http::Response::builder().status(200).body(()).unwrap();
                let mut send = respond.send_response(response, false).unwrap();
                send.send_data(Bytes::from_static(b"pong"), false).unwrap();
                let mut trailers = HeaderMap::new();
                trailers.insert("grpc-status", HeaderValue::from_static("0"));
                send.send_trailers(trailers).unwrap();
            });
        }
    });
    super::new(ours, Config::new(Role::Client, Http2Settings::default()))
}

fn spawn_driver(mut driver: Driver<Io>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Event::Accepted = poll_fn(|cx| driver.poll(cx)).await {
            driver.accepted().for_each(drop);
        }
    })
}

fn request() -> OutRequest {
    OutRequest {
        https: false,
        authority: http::uri::Authority::from_static("peer"),
        path: http::uri::PathAndQuery::from_static("/svc/Method"),
        user_agent: HeaderValue::from_static("engine-test"),
        timeout: None,
        encoding: None,
        accept_encoding: None,
        previous_attempts: 0,
        metadata: HeaderMap::new(),
    }
}

/// Makes one call on `opener`: "ping" out, the response's data and its
/// grpc-status back.
async fn call(opener: &Opener) -> Result<(Vec<u8>, String), Failure> {
    let (head, mut send) = opener.open(request())?;
    send.send_data(Bytes::from_static(b"ping"), true).await?;
    let (_, mut body) = head.await?;
    let mut got = Vec::new();
    while let Some(chunk) = poll_fn(|cx| body.poll_data(cx)).await {
        let chunk = chunk?;
        body.release_capacity(chunk.len());
        got.extend_from_slice(&chunk);
    }
    let trailers = poll_fn(|cx| body.poll_trailers(cx)).await?.expect("trailers");
    let status = String::from_utf8(trailers.grpc_status.expect("grpc-status").to_vec()).unwrap();
    Ok((got, status))
}

#[tokio::test]
async fn a_client_connection_makes_calls_to_an_h2_server() {
    let (driver, opener) = client_against_h2().await;
    spawn_driver(driver);
    for _ in 0..3 {
        let (data, status) = tokio::time::timeout(Duration::from_secs(10), call(&opener))
            .await
            .expect("the call finished")
            .expect("the call succeeded");
        assert_eq!(data, b"pong");
        assert_eq!(status, "0");
    }
}

#[tokio::test]
async fn a_client_whose_stream_ids_near_two_to_the_31_takes_no_more_streams() {
    let (mut driver, opener) = client_against_h2().await;
    // One id left: the call on it completes.
    driver.set_next_stream_id(LAST_CLIENT_STREAM);
    spawn_driver(driver);
    let (data, _) = tokio::time::timeout(Duration::from_secs(10), call(&opener))
        .await
        .expect("the call finished")
        .expect("the last stream's call succeeded");
    assert_eq!(data, b"pong");
    // Now the connection refuses new streams, as unprocessed, so that a
    // channel sends them on a new connection.
    assert!(opener.is_closed(), "the connection stopped taking streams");
    match opener.open(request()) {
        Err(Failure::GoAway { unprocessed: true, .. }) => {}
        Err(other) => panic!("refused for the wrong reason: {other:?}"),
        Ok(_) => panic!("a stream was opened past the last id"),
    }
}

/// A stream set aside because the write queue was full must be taken up
/// again once the queue drains, with nothing else to wake the driver: here
/// the peer's windows are large enough that it sends no WINDOW_UPDATE, and
/// the socket takes every write at once. Under a paused clock, a driver
/// that waited instead would be woken only by its next timer, which moves
/// the clock on; a driver that does not wait finishes with the clock where
/// it was.
#[tokio::test(start_paused = true)]
async fn a_body_larger_than_the_write_queue_is_sent_without_waiting_for_a_timer() {
    const BODY: usize = 8 << 20;
    let (ours, theirs) = tokio::io::duplex(16 << 20);
    tokio::spawn(async move {
        let mut conn = h2::server::Builder::new()
            .initial_window_size((1 << 31) - 1)
            .initial_connection_window_size((1 << 31) - 1)
            .handshake::<_, Bytes>(theirs)
            .await
            .expect("h2 handshake");
        while let Some(Ok((request, mut respond))) = conn.accept().await {
            tokio::spawn(async move {
                let mut body = request.into_body();
                let mut got = 0;
                while let Some(Ok(chunk)) = body.data().await {
                    got += chunk.len();
                    let _ = body.flow_control().release_capacity(chunk.len());
                }
                let response = http::Response::builder().status(200).body(()).unwrap();
                let mut send = respond.send_response(response, false).unwrap();
                send.send_data(Bytes::from(got.to_string()), false).unwrap();
                let mut trailers = HeaderMap::new();
                trailers.insert("grpc-status", HeaderValue::from_static("0"));
                send.send_trailers(trailers).unwrap();
            });
        }
    });
    let (driver, opener) = super::new(ours, Config::new(Role::Client, Http2Settings::default()));
    spawn_driver(driver);
    let start = tokio::time::Instant::now();
    let exchange = async {
        let (head, mut send) = opener.open(request()).expect("a stream");
        send.send_data(Bytes::from(vec![7; BODY]), true)
            .await
            .expect("the body queued");
        let (_, mut body) = head.await.expect("the response head");
        let mut got = Vec::new();
        while let Some(chunk) = poll_fn(|cx| body.poll_data(cx)).await {
            let chunk = chunk.expect("response data");
            body.release_capacity(chunk.len());
            got.extend_from_slice(&chunk);
        }
        got
    };
    // A hang guard: the paused clock reaches it only if nothing else moves.
    let got = tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .expect("the call finished: a driver waiting with a stream set aside was never woken");
    assert_eq!(got, BODY.to_string().as_bytes(), "the server read the whole body");
    assert!(
        start.elapsed() < super::driver::QUIET,
        "the body waited {:?} for a timer to wake the driver",
        start.elapsed()
    );
}

/// Polls the driver until the connection ends.
async fn drive(driver: &mut Driver<Io>) -> Event {
    poll_fn(|cx| driver.poll(cx)).await
}

#[tokio::test(start_paused = true)]
async fn a_quiet_connection_gives_its_buffers_back_after_a_quiet_period() {
    let (mut driver, opener) = client_against_h2().await;
    // One call, the driver polled here until it is done.
    let call = tokio::spawn(async move {
        let outcome = call(&opener).await;
        (outcome, opener)
    });
    tokio::pin!(call);
    let (outcome, _opener) = tokio::select! {
        done = &mut call => done.expect("the call's task"),
        _ = drive(&mut driver) => panic!("the connection ended during the call"),
    };
    assert_eq!(outcome.expect("the call succeeded").0, b"pong");
    let held = driver.releasable_bytes();
    assert!(
        held > 0,
        "a connection that just made a call holds its write and HPACK buffers"
    );
    // Still quiet a moment later: nothing given back yet, so that calls
    // one after another do not take them again each time.
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        _ = drive(&mut driver) => panic!("the connection ended"),
    }
    assert_eq!(
        driver.releasable_bytes(),
        held,
        "given back before the quiet period passed"
    );
    // Two quiet periods on, everything is given back.
    tokio::select! {
        _ = tokio::time::sleep(super::driver::QUIET * 2) => {}
        _ = drive(&mut driver) => panic!("the connection ended"),
    }
    assert_eq!(
        driver.releasable_bytes(),
        0,
        "buffers held after the connection was quiet"
    );
}

mod fuzz_regressions;
