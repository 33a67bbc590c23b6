//! Encoding then decoding gives back the frame: for every type, in one
//! buffer or cut into reads of any size, and for random frames.

use super::*;

/// One frame of every type, and variants of the flags and optional fields.
pub(super) fn samples() -> Vec<Frame> {
    let spec = PrioritySpec {
        exclusive: true,
        depends_on: sid(3),
        weight: 200,
    };
    vec![
        Frame::Data(Data {
            stream_id: sid(1),
            end_stream: false,
            payload: Bytes::from_static(b"hello"),
            padding: None,
        }),
        Frame::Data(Data {
            stream_id: StreamId::MAX,
            end_stream: true,
            payload: Bytes::new(),
            padding: Some(255),
        }),
        Frame::Headers(Headers {
            stream_id: sid(1),
            end_stream: true,
            end_headers: true,
            priority: None,
            padding: None,
            fragment: Bytes::from_static(b"\x82\x86\x84"),
        }),
        Frame::Headers(Headers {
            stream_id: sid(5),
            end_stream: false,
            end_headers: false,
            priority: Some(spec),
            padding: Some(4),
            fragment: Bytes::from_static(b"block"),
        }),
        Frame::Priority(Priority {
            stream_id: sid(7),
            spec: PrioritySpec {
                exclusive: false,
                depends_on: StreamId::ZERO,
                weight: 15,
            },
        }),
        Frame::RstStream(RstStream {
            stream_id: sid(9),
            error_code: ErrorCode::Cancel,
        }),
        Frame::RstStream(RstStream {
            stream_id: sid(9),
            error_code: ErrorCode::Unknown(0x1234),
        }),
        Frame::Settings(Settings::default()),
        Frame::Settings(Settings {
            header_table_size: Some(0),
            enable_push: Some(false),
            max_concurrent_streams: Some(100),
            initial_window_size: Some(MAX_WINDOW_SIZE),
            max_frame_size: Some(MAX_FRAME_SIZE_LIMIT),
            max_header_list_size: Some(16_384),
        }),
        Frame::SettingsAck,
        Frame::PushPromise(PushPromise {
            stream_id: sid(1),
            promised_stream_id: sid(2),
            end_headers: true,
            padding: Some(0),
            fragment: Bytes::from_static(b"promised"),
        }),
        Frame::Ping(Ping {
            ack: false,
            opaque: *b"01234567",
        }),
        Frame::Ping(Ping {
            ack: true,
            opaque: [0xff; 8],
        }),
        Frame::GoAway(GoAway {
            last_stream_id: sid(41),
            error_code: ErrorCode::EnhanceYourCalm,
            debug_data: Bytes::from_static(b"too_many_pings"),
        }),
        Frame::WindowUpdate(WindowUpdate {
            stream_id: StreamId::ZERO,
            increment: 1,
        }),
        Frame::WindowUpdate(WindowUpdate {
            stream_id: sid(3),
            increment: MAX_WINDOW_SIZE,
        }),
        Frame::Continuation(Continuation {
            stream_id: sid(5),
            end_headers: true,
            fragment: Bytes::from_static(b"more"),
        }),
        Frame::Unknown(Unknown {
            kind: 0x0a,
            flags: 0x5a,
            stream_id: sid(11),
            payload: Bytes::from_static(b"ext"),
        }),
    ]
}

/// Every frame in `buf`, decoded in order.
fn decode_all(decoder: &FrameDecoder, buf: &mut BytesMut) -> Vec<Frame> {
    let mut frames = Vec::new();
    while let Some(frame) = decoder.decode(buf).expect("valid frames") {
        frames.push(frame);
    }
    frames
}

#[test]
fn every_frame_type_round_trips() {
    for frame in samples() {
        let mut wire = encode_all(std::slice::from_ref(&frame));
        let back = FrameDecoder::default().decode(&mut wire).unwrap();
        assert_eq!(back.as_ref(), Some(&frame));
        assert!(wire.is_empty());
    }
}

#[test]
fn encoded_frames_match_hand_written_bytes() {
    let ping = Frame::Ping(Ping {
        ack: true,
        opaque: *b"abcdefgh",
    });
    assert_eq!(&encode_all(&[ping])[..], &raw(0x6, 0x1, 0, b"abcdefgh")[..]);
    let data = Frame::Data(Data {
        stream_id: sid(3),
        end_stream: true,
        payload: Bytes::from_static(b"xy"),
        padding: Some(2),
    });
    assert_eq!(&encode_all(&[data])[..], &raw(0x0, 0x9, 3, b"\x02xy\0\0")[..]);
    let goaway = Frame::GoAway(GoAway {
        last_stream_id: sid(7),
        error_code: ErrorCode::ProtocolError,
        debug_data: Bytes::from_static(b"d"),
    });
    assert_eq!(
        &encode_all(&[goaway])[..],
        &raw(0x7, 0, 0, b"\0\0\0\x07\0\0\0\x01d")[..]
    );
}

#[test]
fn many_frames_in_one_buffer() {
    let frames = samples();
    let mut wire = encode_all(&frames);
    assert_eq!(decode_all(&FrameDecoder::default(), &mut wire), frames);
    assert!(wire.is_empty());
}

#[test]
fn frames_split_across_reads_one_byte_at_a_time() {
    let frames = samples();
    let wire = encode_all(&frames);
    let decoder = FrameDecoder::default();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for &byte in &wire[..] {
        buf.put_u8(byte);
        got.extend(decode_all(&decoder, &mut buf));
    }
    assert_eq!(got, frames);
    assert!(buf.is_empty());
}

/// A random frame that the decoder gives back exactly as it is.
pub(super) fn random_frame(rng: &mut Rng) -> Frame {
    let stream = |rng: &mut Rng| sid(1 + rng.below(u64::from(StreamId::MAX.value())) as u32);
    let padding = |rng: &mut Rng| rng.bool().then(|| rng.below(256) as u8);
    let len = |rng: &mut Rng| {
        if rng.below(8) == 0 {
            rng.below(16_384 - 300) as usize
        } else {
            rng.below(64) as usize
        }
    };
    let spec = |rng: &mut Rng| PrioritySpec {
        exclusive: rng.bool(),
        depends_on: sid(rng.next() as u32),
        weight: rng.next() as u8,
    };
    match rng.below(12) {
        0 => Frame::Data(Data {
            stream_id: stream(rng),
            end_stream: rng.bool(),
            padding: padding(rng),
            payload: {
                let n = len(rng);
                rng.bytes(n)
            },
        }),
        1 => Frame::Headers(Headers {
            stream_id: stream(rng),
            end_stream: rng.bool(),
            end_headers: rng.bool(),
            priority: rng.bool().then(|| spec(rng)),
            padding: padding(rng),
            fragment: {
                let n = len(rng);
                rng.bytes(n)
            },
        }),
        2 => Frame::Priority(Priority {
            stream_id: stream(rng),
            spec: spec(rng),
        }),
        3 => Frame::RstStream(RstStream {
            stream_id: stream(rng),
            error_code: ErrorCode::from(rng.below(20) as u32),
        }),
        4 => {
            let mut settings = Settings::default();
            for id in SettingId::ALL {
                if rng.bool() {
                    let value = match id {
                        SettingId::EnablePush => rng.below(2) as u32,
                        SettingId::InitialWindowSize => rng.below(u64::from(MAX_WINDOW_SIZE) + 1) as u32,
                        SettingId::MaxFrameSize => 16_384 + rng.below(u64::from(MAX_FRAME_SIZE_LIMIT) - 16_383) as u32,
                        _ => rng.next() as u32,
                    };
                    settings.set(id, value).unwrap();
                }
            }
            Frame::Settings(settings)
        }
        5 => Frame::SettingsAck,
        6 => Frame::PushPromise(PushPromise {
            stream_id: stream(rng),
            promised_stream_id: stream(rng),
            end_headers: rng.bool(),
            padding: padding(rng),
            fragment: {
                let n = len(rng);
                rng.bytes(n)
            },
        }),
        7 => Frame::Ping(Ping {
            ack: rng.bool(),
            opaque: (rng.next()).to_be_bytes(),
        }),
        8 => Frame::GoAway(GoAway {
            last_stream_id: sid(rng.next() as u32),
            error_code: ErrorCode::from(rng.next() as u32),
            debug_data: {
                let n = len(rng);
                rng.bytes(n)
            },
        }),
        9 => Frame::WindowUpdate(WindowUpdate {
            stream_id: sid(rng.next() as u32),
            increment: 1 + rng.below(u64::from(MAX_WINDOW_SIZE)) as u32,
        }),
        10 => Frame::Continuation(Continuation {
            stream_id: stream(rng),
            end_headers: rng.bool(),
            fragment: {
                let n = len(rng);
                rng.bytes(n)
            },
        }),
        _ => Frame::Unknown(Unknown {
            kind: 0x0a + rng.below(0xf6) as u8,
            flags: rng.next() as u8,
            stream_id: sid(rng.next() as u32),
            payload: {
                let n = len(rng);
                rng.bytes(n)
            },
        }),
    }
}

#[test]
fn random_frames_round_trip_through_reads_of_random_sizes() {
    let mut rng = Rng::new(0x5eed_f4a3);
    let decoder = FrameDecoder::default();
    for _ in 0..200 {
        let frames: Vec<Frame> = (0..1 + rng.below(20)).map(|_| random_frame(&mut rng)).collect();
        let wire = encode_all(&frames);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut at = 0;
        while at < wire.len() {
            let n = (1 + rng.below(4096) as usize).min(wire.len() - at);
            buf.extend_from_slice(&wire[at..at + n]);
            at += n;
            got.extend(decode_all(&decoder, &mut buf));
        }
        assert_eq!(got, frames);
        assert!(buf.is_empty());
    }
}

/// Whether `inner` lies within `outer`'s memory.
fn points_into(inner: &[u8], outer: std::ops::Range<usize>) -> bool {
    let start = inner.as_ptr() as usize;
    outer.contains(&start) && start + inner.len() <= outer.end
}

#[test]
fn payloads_are_slices_of_the_read_buffer() {
    let frames = [
        Frame::Data(Data {
            stream_id: sid(1),
            end_stream: false,
            payload: Bytes::from(vec![0xaa; 5000]),
            padding: Some(7),
        }),
        Frame::Headers(Headers {
            stream_id: sid(1),
            end_stream: false,
            end_headers: true,
            priority: None,
            padding: None,
            fragment: Bytes::from(vec![0xbb; 100]),
        }),
        Frame::GoAway(GoAway {
            last_stream_id: sid(1),
            error_code: ErrorCode::NoError,
            debug_data: Bytes::from(vec![0xcc; 50]),
        }),
    ];
    let mut buf = BytesMut::with_capacity(64 * 1024);
    buf.extend_from_slice(&encode_all(&frames));
    let region = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.capacity();
    let decoder = FrameDecoder::default();
    let Some(Frame::Data(data)) = decoder.decode(&mut buf).unwrap() else {
        panic!("not DATA")
    };
    assert_eq!(data.payload.len(), 5000);
    assert!(points_into(&data.payload, region.clone()), "DATA payload was copied");
    let Some(Frame::Headers(headers)) = decoder.decode(&mut buf).unwrap() else {
        panic!("not HEADERS")
    };
    assert!(
        points_into(&headers.fragment, region.clone()),
        "header fragment was copied"
    );
    let Some(Frame::GoAway(goaway)) = decoder.decode(&mut buf).unwrap() else {
        panic!("not GOAWAY")
    };
    assert!(points_into(&goaway.debug_data, region), "debug data was copied");
}
