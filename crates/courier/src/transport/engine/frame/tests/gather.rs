//! Gathered writes: the order of chunks, uncopied payloads, and partial
//! writes.

use std::io::IoSlice;

use bytes::Buf;

use super::*;

fn big(byte: u8) -> Bytes {
    Bytes::from(vec![byte; INLINE_DATA_MAX + 1])
}

/// Everything left in the queue, as one buffer.
fn drain(mut gather: GatherBuf) -> BytesMut {
    let mut out = BytesMut::new();
    while gather.has_remaining() {
        let chunk = gather.chunk();
        let n = chunk.len();
        out.extend_from_slice(chunk);
        gather.advance(n);
    }
    out
}

#[test]
fn the_data_header_is_nine_bytes() {
    let mut out = BytesMut::new();
    encode_data_header(sid(5), 1000, true, None, &mut out);
    assert_eq!(&out[..], &[0x00, 0x03, 0xe8, 0x00, flags::END_STREAM, 0, 0, 0, 5]);
}

#[test]
fn large_payloads_are_their_own_chunks_after_their_headers() {
    let ping = Frame::Ping(Ping {
        ack: true,
        opaque: [1; 8],
    });
    let (one, two) = (big(0xa1), big(0xb2));
    let mut gather = GatherBuf::new();
    gather.push(ping.clone());
    gather.push_data(Data {
        stream_id: sid(1),
        end_stream: false,
        payload: one.clone(),
        padding: None,
    });
    gather.push_data(Data {
        stream_id: sid(3),
        end_stream: true,
        payload: two.clone(),
        padding: None,
    });
    gather.push(Frame::SettingsAck);
    // [PING + header, payload, header, payload, SETTINGS ACK]
    assert_eq!(gather.chunk_count(), 5);
    let mut slices = [IoSlice::new(&[]); 8];
    let n = gather.chunks_vectored(&mut slices);
    assert_eq!(n, 5);
    assert_eq!(slices[0].len(), 17 + HEADER_LEN);
    assert_eq!(slices[1].as_ptr(), one.as_ptr(), "first payload copied");
    assert_eq!(slices[2].len(), HEADER_LEN);
    assert_eq!(slices[3].as_ptr(), two.as_ptr(), "second payload copied");
    assert_eq!(slices[4].len(), HEADER_LEN);
    // Fewer slots than chunks: the first ones, in order.
    let mut two_slots = [IoSlice::new(&[]); 2];
    assert_eq!(gather.chunks_vectored(&mut two_slots), 2);
    assert_eq!(two_slots[1].as_ptr(), one.as_ptr());

    let expected = [
        ping,
        Frame::Data(Data {
            stream_id: sid(1),
            end_stream: false,
            payload: one,
            padding: None,
        }),
        Frame::Data(Data {
            stream_id: sid(3),
            end_stream: true,
            payload: two,
            padding: None,
        }),
        Frame::SettingsAck,
    ];
    assert_eq!(gather.remaining(), encode_all(&expected).len());
    assert_eq!(drain(gather), encode_all(&expected));
}

#[test]
fn small_payloads_are_copied_beside_their_headers() {
    let mut gather = GatherBuf::new();
    for i in 0..10 {
        gather.push_data(Data {
            stream_id: sid(1 + 2 * i),
            end_stream: false,
            payload: Bytes::from(vec![i as u8; INLINE_DATA_MAX]),
            padding: None,
        });
    }
    assert_eq!(gather.chunk_count(), 1);
    assert_eq!(gather.remaining(), 10 * (HEADER_LEN + INLINE_DATA_MAX));
}

#[test]
fn padded_data_keeps_its_padding_after_an_uncopied_payload() {
    let data = Data {
        stream_id: sid(1),
        end_stream: true,
        payload: big(7),
        padding: Some(3),
    };
    let mut gather = GatherBuf::new();
    gather.push(Frame::Data(data.clone()));
    assert_eq!(gather.chunk_count(), 3);
    let mut wire = drain(gather);
    assert_eq!(
        FrameDecoder::default().decode(&mut wire).unwrap(),
        Some(Frame::Data(data))
    );
}

#[test]
fn partial_writes_advance_across_chunks() {
    let mut rng = Rng::new(3);
    for _ in 0..50 {
        let frames: Vec<Frame> = (0..1 + rng.below(10))
            .map(|_| super::round_trip::random_frame(&mut rng))
            .collect();
        let expected = encode_all(&frames);
        let mut gather = GatherBuf::new();
        for frame in frames {
            gather.push(frame);
        }
        // Write in uneven steps, as a socket might take them.
        let mut out = BytesMut::new();
        while gather.has_remaining() {
            let mut slices = [IoSlice::new(&[]); 4];
            let n = gather.chunks_vectored(&mut slices);
            let take = 1 + rng.below(3000) as usize;
            let mut taken = 0;
            for slice in &slices[..n] {
                let part = slice.len().min(take - taken);
                out.extend_from_slice(&slice[..part]);
                taken += part;
                if taken == take {
                    break;
                }
            }
            gather.advance(taken);
        }
        assert_eq!(out, expected);
    }
}

#[test]
fn header_blocks_go_through_the_queue_split() {
    let headers = Headers {
        stream_id: sid(1),
        end_stream: false,
        end_headers: false,
        priority: None,
        padding: None,
        fragment: Bytes::from(vec![3; 20_000]),
    };
    let mut gather = GatherBuf::new();
    gather.push_headers(&headers, 16_384);
    let mut wire = drain(gather);
    let back = FrameReader::default().read(&mut wire).unwrap();
    assert_eq!(
        back,
        Some(Frame::Headers(Headers {
            end_headers: true,
            ..headers
        }))
    );
}

#[test]
fn push_promise_blocks_go_through_the_queue_split() {
    let promise = PushPromise {
        stream_id: sid(1),
        promised_stream_id: sid(4),
        end_headers: false,
        padding: Some(9),
        fragment: Bytes::from(vec![5; 33_000]),
    };
    let mut gather = GatherBuf::new();
    gather.push_push_promise(&promise, 16_384);
    let mut wire = drain(gather);
    let back = FrameReader::default().read(&mut wire).unwrap();
    assert_eq!(
        back,
        Some(Frame::PushPromise(PushPromise {
            end_headers: true,
            ..promise
        }))
    );
}
