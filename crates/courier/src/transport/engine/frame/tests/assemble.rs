//! The CONTINUATION assembler and the frame reader, and header blocks split
//! by the encoder.

use super::*;

fn headers(stream: u32, end_headers: bool, fragment: &'static [u8]) -> Frame {
    Frame::Headers(Headers {
        stream_id: sid(stream),
        end_stream: true,
        end_headers,
        priority: None,
        padding: None,
        fragment: Bytes::from_static(fragment),
    })
}

fn continuation(stream: u32, end_headers: bool, fragment: &'static [u8]) -> Frame {
    Frame::Continuation(Continuation {
        stream_id: sid(stream),
        end_headers,
        fragment: Bytes::from_static(fragment),
    })
}

fn limits(max_size: usize, max_frames: usize) -> HeaderBlockLimits {
    HeaderBlockLimits { max_size, max_frames }
}

#[test]
fn headers_and_continuations_join_into_one_block() {
    let mut assembler = HeaderBlockAssembler::default();
    assert_eq!(assembler.push(headers(3, false, b"ab")).unwrap(), None);
    assert_eq!(assembler.open_stream(), Some(sid(3)));
    assert_eq!(assembler.push(continuation(3, false, b"")).unwrap(), None);
    assert_eq!(assembler.push(continuation(3, false, b"cd")).unwrap(), None);
    let whole = assembler.push(continuation(3, true, b"e")).unwrap();
    assert_eq!(whole, Some(headers(3, true, b"abcde")));
    assert_eq!(assembler.open_stream(), None);
    // Other frames pass through.
    let ping = Frame::Ping(Ping {
        ack: false,
        opaque: [0; 8],
    });
    assert_eq!(assembler.push(ping.clone()).unwrap(), Some(ping));
}

#[test]
fn a_block_in_one_frame_is_passed_on_uncopied() {
    let fragment = Bytes::from(vec![1; 1000]);
    let frame = Frame::Headers(Headers {
        stream_id: sid(1),
        end_stream: false,
        end_headers: true,
        priority: None,
        padding: None,
        fragment: fragment.clone(),
    });
    let Some(Frame::Headers(out)) = HeaderBlockAssembler::default().push(frame).unwrap() else {
        panic!("not HEADERS")
    };
    assert_eq!(out.fragment.as_ptr(), fragment.as_ptr());
}

#[test]
fn push_promise_blocks_are_joined_too() {
    let mut assembler = HeaderBlockAssembler::default();
    let promise = |end_headers, fragment: &'static [u8]| {
        Frame::PushPromise(PushPromise {
            stream_id: sid(1),
            promised_stream_id: sid(2),
            end_headers,
            padding: Some(1),
            fragment: Bytes::from_static(fragment),
        })
    };
    assert_eq!(assembler.push(promise(false, b"x")).unwrap(), None);
    assert_eq!(
        assembler.push(continuation(1, true, b"yz")).unwrap(),
        Some(promise(true, b"xyz"))
    );
}

#[test]
fn a_block_over_the_size_cap_is_refused() {
    let mut assembler = HeaderBlockAssembler::new(limits(4, 10));
    assert_eq!(assembler.push(headers(1, false, b"abc")).unwrap(), None);
    let err = assembler.push(continuation(1, true, b"de")).unwrap_err();
    assert_eq!(err, FrameError::connection(Violation::HeaderBlockTooLarge { max: 4 }));
    assert_eq!(err.code(), ErrorCode::EnhanceYourCalm);
    // A single frame over the cap too; exactly the cap is fine.
    let mut assembler = HeaderBlockAssembler::new(limits(4, 10));
    assert!(assembler.push(headers(1, true, b"abcde")).is_err());
    assert!(assembler.push(headers(1, true, b"abcd")).is_ok());
}

#[test]
fn the_reader_refuses_a_continuation_past_the_cap_before_buffering_it() {
    let mut reader = FrameReader::new(DEFAULT_MAX_FRAME_SIZE, limits(100, 10));
    let mut buf = raw(0x1, 0, 1, &[0; 60]);
    // Only the header of a 60-byte CONTINUATION: 120 bytes would pass 100.
    buf.extend_from_slice(&raw(0x9, 0, 1, &[0; 60])[..HEADER_LEN]);
    let err = reader.read(&mut buf).unwrap_err();
    assert_eq!(err.violation, Violation::HeaderBlockTooLarge { max: 100 });
}

#[test]
fn empty_continuation_floods_hit_the_frame_cap() {
    let mut assembler = HeaderBlockAssembler::new(limits(1000, 3));
    assert_eq!(assembler.push(headers(1, false, b"")).unwrap(), None);
    assert_eq!(assembler.push(continuation(1, false, b"")).unwrap(), None);
    assert_eq!(assembler.push(continuation(1, false, b"")).unwrap(), None);
    let err = assembler.push(continuation(1, false, b"")).unwrap_err();
    assert_eq!(err, FrameError::connection(Violation::TooManyContinuations { max: 3 }));
    // Through the reader, on the header alone.
    let mut reader = FrameReader::new(DEFAULT_MAX_FRAME_SIZE, limits(1000, 3));
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&raw(0x1, 0, 1, b""));
    for _ in 0..10 {
        buf.extend_from_slice(&raw(0x9, 0, 1, b""));
    }
    let err = reader.read(&mut buf).unwrap_err();
    assert_eq!(err.violation, Violation::TooManyContinuations { max: 3 });
}

#[test]
fn any_other_frame_inside_a_block_is_a_connection_protocol_error() {
    let ping = Frame::Ping(Ping {
        ack: false,
        opaque: [0; 8],
    });
    let data = Frame::Data(Data {
        stream_id: sid(1),
        end_stream: false,
        payload: Bytes::new(),
        padding: None,
    });
    let unknown = Frame::Unknown(Unknown {
        kind: 0xf0,
        flags: 0,
        stream_id: sid(1),
        payload: Bytes::new(),
    });
    let cases = [
        (ping, FrameKind::Ping, 0),
        (data, FrameKind::Data, 1),
        (headers(1, true, b""), FrameKind::Headers, 1),
        (headers(3, true, b""), FrameKind::Headers, 3),
        (continuation(3, true, b""), FrameKind::Continuation, 3),
        (unknown, FrameKind::Unknown(0xf0), 1),
    ];
    for (frame, kind, stream) in cases {
        let mut assembler = HeaderBlockAssembler::default();
        assembler.push(headers(1, false, b"a")).unwrap();
        let err = assembler.push(frame).unwrap_err();
        assert_eq!(
            err,
            FrameError::connection(Violation::HeaderBlockInterrupted {
                open_on: sid(1),
                kind,
                stream_id: sid(stream)
            })
        );
        assert_eq!(err.code(), ErrorCode::ProtocolError);
        assert_eq!(assembler.open_stream(), None, "idle after an error");
    }
}

#[test]
fn a_continuation_with_no_block_open_is_a_protocol_error() {
    let err = HeaderBlockAssembler::default()
        .push(continuation(1, true, b""))
        .unwrap_err();
    assert_eq!(
        err,
        FrameError::connection(Violation::UnexpectedContinuation { stream_id: sid(1) })
    );
    // Nor after a block has ended.
    let mut assembler = HeaderBlockAssembler::default();
    assembler.push(headers(1, true, b"")).unwrap();
    assert!(assembler.push(continuation(1, true, b"")).is_err());
}

#[test]
fn inside_a_block_a_stream_error_frame_is_a_connection_error() {
    // A PRIORITY of the wrong length alone is a stream error...
    let mut reader = FrameReader::default();
    let mut buf = raw(0x2, 0, 1, &[0; 4]);
    assert_eq!(reader.read(&mut buf).unwrap_err().scope, ErrorScope::Stream(sid(1)));
    // ...but inside a header block it ends the connection.
    let mut buf = raw(0x1, 0, 1, b"a");
    buf.extend_from_slice(&raw(0x2, 0, 1, &[0; 4]));
    let err = reader.read(&mut buf).unwrap_err();
    assert!(err.is_connection_error());
    assert_eq!(err.code(), ErrorCode::ProtocolError);
}

#[test]
fn the_reader_joins_blocks_cut_into_reads_of_one_byte() {
    let block: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
    let mut wire = BytesMut::new();
    let head = Headers {
        stream_id: sid(7),
        end_stream: true,
        end_headers: false,
        priority: None,
        padding: None,
        fragment: Bytes::from(block.clone()),
    };
    encode_headers(&head, DEFAULT_MAX_FRAME_SIZE, &mut wire);
    encode(
        &Frame::WindowUpdate(WindowUpdate {
            stream_id: sid(7),
            increment: 5,
        }),
        &mut wire,
    );
    let mut reader = FrameReader::default();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for &byte in &wire[..] {
        buf.put_u8(byte);
        while let Some(frame) = reader.read(&mut buf).unwrap() {
            got.push(frame);
        }
    }
    assert_eq!(
        got,
        [
            Frame::Headers(Headers {
                end_headers: true,
                ..head
            }),
            Frame::WindowUpdate(WindowUpdate {
                stream_id: sid(7),
                increment: 5
            }),
        ]
    );
}

/// The frame headers of an encoded sequence, with their payload lengths.
fn frame_headers(mut wire: &[u8]) -> Vec<FrameHeader> {
    let mut out = Vec::new();
    while let Some(head) = wire.first_chunk::<HEADER_LEN>() {
        let header = FrameHeader::parse(head);
        wire = &wire[HEADER_LEN + header.length as usize..];
        out.push(header);
    }
    out
}

#[test]
fn header_blocks_are_split_at_the_max_frame_size() {
    let head = |len: usize, priority, padding| Headers {
        stream_id: sid(1),
        end_stream: true,
        end_headers: false,
        priority,
        padding,
        fragment: Bytes::from(vec![0x55; len]),
    };
    let spec = PrioritySpec {
        exclusive: false,
        depends_on: sid(0),
        weight: 1,
    };
    let cases = [
        // (block length, priority, padding, the frames' lengths)
        (0, None, None, vec![0]),
        (16_384, None, None, vec![16_384]),
        (16_385, None, None, vec![16_384, 1]),
        (40_000, None, None, vec![16_384, 16_384, 7_232]),
        // The first frame's priority (5) and padding (1 + 10) leave less
        // room for the block.
        (16_384, Some(spec), Some(10), vec![16_384, 16]),
    ];
    for (len, priority, padding, lengths) in cases {
        let mut wire = BytesMut::new();
        let headers = head(len, priority, padding);
        encode_headers(&headers, 16_384, &mut wire);
        let parsed = frame_headers(&wire);
        assert_eq!(parsed.iter().map(|h| h.length as usize).collect::<Vec<_>>(), lengths);
        let last = parsed.len() - 1;
        for (i, h) in parsed.iter().enumerate() {
            let kind = if i == 0 {
                FrameKind::Headers
            } else {
                FrameKind::Continuation
            };
            assert_eq!(h.kind, kind);
            assert_eq!(h.has(flags::END_HEADERS), i == last, "END_HEADERS only on the last");
            assert_eq!(h.stream_id, sid(1));
        }
        assert!(parsed[0].has(flags::END_STREAM));
        let mut buf = wire.clone();
        let Some(Frame::Headers(back)) = FrameReader::default().read(&mut buf).unwrap() else {
            panic!("not HEADERS")
        };
        assert_eq!(back.fragment, headers.fragment);
        assert_eq!((back.priority, back.padding), (priority, padding));
    }
}

#[test]
fn push_promise_blocks_are_split_too() {
    let promise = PushPromise {
        stream_id: sid(1),
        promised_stream_id: sid(2),
        end_headers: false,
        padding: None,
        fragment: Bytes::from(vec![9; 20_000]),
    };
    let mut wire = BytesMut::new();
    encode_push_promise(&promise, 16_384, &mut wire);
    let lengths: Vec<u32> = frame_headers(&wire).iter().map(|h| h.length).collect();
    assert_eq!(lengths, [16_384, 3_620]);
    let back = FrameReader::default().read(&mut wire).unwrap();
    assert_eq!(
        back,
        Some(Frame::PushPromise(PushPromise {
            end_headers: true,
            ..promise
        }))
    );
}

#[test]
fn random_header_blocks_survive_splitting_and_joining() {
    let mut rng = Rng::new(77);
    let max_frame_size = 16_384;
    let mut reader = FrameReader::new(max_frame_size, limits(1 << 20, 1000));
    for _ in 0..50 {
        let len = rng.below(100_000) as usize;
        let headers = Headers {
            stream_id: sid(1 + 2 * rng.below(1000) as u32),
            end_stream: rng.bool(),
            end_headers: false,
            priority: None,
            padding: rng.bool().then(|| rng.below(256) as u8),
            fragment: rng.bytes(len),
        };
        let mut wire = BytesMut::new();
        encode_headers(&headers, max_frame_size, &mut wire);
        let back = reader.read(&mut wire).unwrap();
        assert_eq!(
            back,
            Some(Frame::Headers(Headers {
                end_headers: true,
                ..headers
            }))
        );
        assert!(wire.is_empty());
    }
}

#[test]
fn the_reader_says_what_it_misses_and_takes_a_new_max_frame_size() {
    let mut reader = FrameReader::default();
    let mut buf = raw(0x0, 0, 1, &[0; 20_000]);
    assert_eq!(reader.missing(&buf[..3]), 6);
    assert_eq!(reader.missing(&buf[..HEADER_LEN]), 0, "refused, so nothing to wait for");
    assert!(reader.read(&mut buf.clone()).is_err());
    reader.decoder_mut().set_max_frame_size(32_768);
    assert_eq!(reader.missing(&buf[..HEADER_LEN]), 20_000);
    assert!(matches!(reader.read(&mut buf), Ok(Some(Frame::Data(_)))));
}
