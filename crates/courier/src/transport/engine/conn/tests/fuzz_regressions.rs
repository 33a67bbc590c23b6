//! The driver over an in-memory socket, fed raw frames: regressions found
//! by the `connection` fuzz target.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncWriteExt, DuplexStream, ReadBuf};

use super::super::driver::PREFACE;
use super::super::{Config, Event, Role};
use crate::transport::Http2Settings;
use crate::transport::engine::frame::{Frame, FrameReader, HeaderBlockLimits, StreamId};
use crate::transport::engine::hpack::{Encoder, EncoderConfig, Indexing};
use crate::transport::head::{OutFields, OutResponse, RequestHead};

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.put_u8(kind);
    out.put_u8(flags);
    out.put_u32(stream);
    out.put_slice(payload);
    out.to_vec()
}

/// HEADERS ending the stream, with a request head.
fn request(encoder: &mut Encoder, stream: u32) -> Vec<u8> {
    let mut block = BytesMut::new();
    let mut fields = encoder.block(&mut block);
    for (name, value) in [
        (&b":method"[..], &b"POST"[..]),
        (b":scheme", b"http"),
        (b":path", b"/a"),
    ] {
        fields.field(name, value, Indexing::DoNotIndex);
    }
    frame(0x1, 0x5, stream, &block)
}

/// The frames the server has written so far.
fn frames(client: &mut DuplexStream, reader: &mut FrameReader, buf: &mut BytesMut) -> Vec<Frame> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut chunk = [0; 4096];
    loop {
        let mut read = ReadBuf::new(&mut chunk);
        match Pin::new(&mut *client).poll_read(&mut cx, &mut read) {
            Poll::Ready(Ok(())) if !read.filled().is_empty() => buf.extend_from_slice(read.filled()),
            _ => break,
        }
    }
    std::iter::from_fn(|| reader.read(buf).expect("well-formed frames")).collect()
}

/// A server driver over an in-memory socket, the client's end, and the
/// opener, which keeps the driver's command queue open (without it the
/// server refuses every stream).
fn server() -> (super::Driver<DuplexStream>, DuplexStream, super::Opener) {
    let (server, client) = tokio::io::duplex(1 << 20);
    let (driver, opener) = super::super::new(server, Config::new(Role::Server, Http2Settings::default()));
    (driver, client, opener)
}

/// Polls the driver a few times (it has no waker here), keeping the
/// streams it accepts.
fn accept(
    driver: &mut super::Driver<DuplexStream>,
    cx: &mut Context<'_>,
) -> Vec<(RequestHead, super::super::RecvHalf, super::super::Responder)> {
    let mut accepted = Vec::new();
    for _ in 0..8 {
        match driver.poll(cx) {
            Poll::Ready(Event::Accepted) => accepted.extend(driver.accepted()),
            Poll::Ready(Event::Ended) => break,
            Poll::Pending => {}
        }
    }
    accepted
}

/// Every frame the server has written so far, read with a reader of its
/// own.
fn written(client: &mut DuplexStream) -> Vec<Frame> {
    let mut reader = FrameReader::new(16_384, HeaderBlockLimits::default());
    frames(client, &mut reader, &mut BytesMut::new())
}

/// A server that has sent the GOAWAY of a graceful shutdown naming stream
/// 1, and then breaks the connection on a frame error, names stream 1 in
/// that GOAWAY too, not a stream the client opened after the first: the
/// last stream id never increases (RFC 9113 §6.8).
#[tokio::test]
async fn goaway_never_raises_the_last_stream_after_a_graceful_shutdown() {
    let (mut driver, mut client, _opener) = server();
    let mut cx = Context::from_waker(Waker::noop());
    let mut reader = FrameReader::new(16_384, HeaderBlockLimits::default());
    let mut buf = BytesMut::new();
    let mut encoder = Encoder::new(EncoderConfig::default());
    let mut poll = |driver: &mut super::Driver<DuplexStream>| accept(driver, &mut cx);

    let mut hello = PREFACE.to_vec();
    hello.extend(frame(0x4, 0, 0, &[]));
    hello.extend(request(&mut encoder, 1));
    client.write_all(&hello).await.unwrap();
    let accepted = poll(&mut driver);
    assert_eq!(accepted.len(), 1);

    driver.shutdown(b"");
    poll(&mut driver);
    let mut seen = frames(&mut client, &mut reader, &mut buf);
    let ping = seen
        .iter()
        .find_map(|f| match f {
            Frame::Ping(ping) if !ping.ack => Some(ping.opaque),
            _ => None,
        })
        .expect("the shutdown's PING");
    client.write_all(&frame(0x6, 0x1, 0, &ping)).await.unwrap();
    poll(&mut driver);

    // A stream opened after the GOAWAY naming stream 1 (ignored), then a
    // WINDOW_UPDATE of 0 bytes: FRAME_SIZE_ERROR, a connection error.
    let mut late = request(&mut encoder, 3);
    late.extend(frame(0x8, 0, 0, &[]));
    client.write_all(&late).await.unwrap();
    poll(&mut driver);

    seen.extend(frames(&mut client, &mut reader, &mut buf));
    let lasts: Vec<u32> = seen
        .into_iter()
        .filter_map(|f| match f {
            Frame::GoAway(goaway) => Some(goaway.last_stream_id.value()),
            _ => None,
        })
        .collect();
    assert_eq!(lasts, [StreamId::MAX.value(), 1, 1]);
    drop(accepted);
}

/// A second response head is refused, even once the first has been
/// written (the driver takes it off the stream then): two heads would be
/// a malformed response (RFC 9113 §8.1).
#[tokio::test]
async fn a_second_response_head_is_refused_after_the_first_went_out() {
    let (mut driver, mut client, _opener) = server();
    let mut cx = Context::from_waker(Waker::noop());
    let mut encoder = Encoder::new(EncoderConfig::default());
    let mut hello = PREFACE.to_vec();
    hello.extend(frame(0x4, 0, 0, &[]));
    hello.extend(request(&mut encoder, 1));
    client.write_all(&hello).await.unwrap();
    let mut accepted = accept(&mut driver, &mut cx);
    let (_request, _body, mut respond) = accepted.pop().expect("the request");
    let _send = respond
        .send_response(OutResponse::ok(OutFields::default()), false)
        .unwrap();
    // The head is written.
    let _ = driver.poll(&mut cx);
    let heads = written(&mut client)
        .into_iter()
        .filter(|f| matches!(f, Frame::Headers(_)))
        .count();
    assert_eq!(heads, 1);
    assert!(
        respond
            .send_response(OutResponse::ok(OutFields::default()), false)
            .is_err()
    );
    assert!(
        respond
            .send_response(OutResponse::ok(OutFields::default()), true)
            .is_err()
    );
}

/// A stream the server reset before it was opened (PRIORITY, or HEADERS
/// with priority, depending on itself) is closed: HEADERS on it later are
/// not taken as a new request, which the server would then answer on a
/// stream it reset (RFC 9113 §5.1).
#[tokio::test]
async fn a_stream_reset_while_idle_is_not_accepted_later() {
    let (mut driver, mut client, _opener) = server();
    let mut cx = Context::from_waker(Waker::noop());
    let mut encoder = Encoder::new(EncoderConfig::default());
    let mut hello = PREFACE.to_vec();
    hello.extend(frame(0x4, 0, 0, &[]));
    // PRIORITY on idle stream 1, depending on itself; then HEADERS on it.
    hello.extend(frame(0x2, 0, 1, &[0, 0, 0, 1, 16]));
    hello.extend(request(&mut encoder, 1));
    // HEADERS on stream 3 depending on itself; then HEADERS on it again.
    let mut block = BytesMut::new();
    encoder
        .block(&mut block)
        .field(b":method", b"GET", Indexing::DoNotIndex);
    let mut payload = vec![0, 0, 0, 3, 16];
    payload.extend_from_slice(&block);
    hello.extend(frame(0x1, 0x25, 3, &payload));
    hello.extend(request(&mut encoder, 3));
    // A new stream is taken.
    hello.extend(request(&mut encoder, 5));
    client.write_all(&hello).await.unwrap();
    let accepted = accept(&mut driver, &mut cx);
    let ids: Vec<u32> = accepted.iter().map(|(_, body, _)| body.stream_id()).collect();
    assert_eq!(ids, [5]);
    let resets: Vec<u32> = written(&mut client)
        .into_iter()
        .filter_map(|f| match f {
            Frame::RstStream(reset) => Some(reset.stream_id.value()),
            Frame::GoAway(goaway) => panic!("a connection error: {goaway:?}"),
            _ => None,
        })
        .collect();
    assert_eq!(resets, [1, 3]);
    drop(accepted);
}

/// A reset, even with NO_ERROR, drops the data still queued and the
/// END_STREAM queued after it: the client must not see the part of the
/// body that went out as the whole of it.
#[tokio::test]
async fn a_reset_with_no_error_does_not_end_a_truncated_body() {
    let (mut driver, mut client, _opener) = server();
    let mut cx = Context::from_waker(Waker::noop());
    let mut encoder = Encoder::new(EncoderConfig::default());
    let mut hello = PREFACE.to_vec();
    // SETTINGS_INITIAL_WINDOW_SIZE 10: the body waits for window.
    hello.extend(frame(0x4, 0, 0, &[0, 4, 0, 0, 0, 10]));
    hello.extend(request(&mut encoder, 1));
    client.write_all(&hello).await.unwrap();
    let mut accepted = accept(&mut driver, &mut cx);
    let (_request, _body, mut respond) = accepted.pop().expect("the request");
    let mut send = respond
        .send_response(OutResponse::ok(OutFields::default()), false)
        .unwrap()
        .unwrap();
    send.queue_data(bytes::Bytes::from(vec![7; 1000]), true).unwrap();
    let _ = driver.poll(&mut cx);
    send.reset(crate::transport::engine::frame::ErrorCode::NoError);
    for _ in 0..4 {
        let _ = driver.poll(&mut cx);
    }
    let sent = written(&mut client);
    let data: usize = sent
        .iter()
        .map(|f| match f {
            Frame::Data(data) => {
                assert!(!data.end_stream, "the truncated body ended the stream");
                data.payload.len()
            }
            _ => 0,
        })
        .sum();
    assert_eq!(data, 10);
    assert!(sent.iter().any(|f| matches!(f, Frame::RstStream(_))));
}

/// A request body that arrived whole but was reset before it was read is
/// not handed over as an empty body that ended cleanly: reading it fails.
#[tokio::test]
async fn a_body_reset_before_it_was_read_fails_rather_than_ends_empty() {
    let (mut driver, mut client, _opener) = server();
    let mut cx = Context::from_waker(Waker::noop());
    let mut encoder = Encoder::new(EncoderConfig::default());
    let mut hello = PREFACE.to_vec();
    hello.extend(frame(0x4, 0, 0, &[]));
    let mut head = request(&mut encoder, 1);
    head[4] = 0x4; // END_HEADERS only: a body follows.
    hello.extend(head);
    hello.extend(frame(0x0, 0x1, 1, b"hello"));
    client.write_all(&hello).await.unwrap();
    let mut accepted = accept(&mut driver, &mut cx);
    let (_request, mut body, _respond) = accepted.pop().expect("the request");
    // The client cancels (RST_STREAM CANCEL) before the body is read.
    client.write_all(&frame(0x3, 0, 1, &8u32.to_be_bytes())).await.unwrap();
    for _ in 0..4 {
        let _ = driver.poll(&mut cx);
    }
    match body.poll_data(&mut cx) {
        Poll::Ready(Some(Err(_))) => {}
        other => panic!("a reset body read as {other:?}"),
    }
}

/// A connection whose client closes the socket ends at once: the driver
/// reports it in the poll that read the end, since no wakeup would come to
/// report it later (the server's connection would stay open for good).
/// Found by the `server` fuzz target, as a leak.
#[tokio::test]
async fn a_connection_ends_in_the_poll_that_reads_the_end_of_the_socket() {
    let (mut driver, mut client, _opener) = server();
    let mut cx = Context::from_waker(Waker::noop());
    let mut hello = PREFACE.to_vec();
    hello.extend(frame(0x4, 0, 0, &[]));
    client.write_all(&hello).await.unwrap();
    assert!(driver.poll(&mut cx).is_pending(), "the connection is open");
    drop(client);
    assert!(
        matches!(driver.poll(&mut cx), Poll::Ready(Event::Ended)),
        "the poll that read the end of the socket ended the connection"
    );
}
