//! Each rule the decoder enforces, with a frame that keeps it and one that
//! breaks it.

use super::*;

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const PRIORITY: u8 = 0x2;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PUSH_PROMISE: u8 = 0x5;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;

fn connection_error(err: FrameError, code: ErrorCode) -> Violation {
    assert_eq!(err.scope, ErrorScope::Connection, "{err}");
    assert_eq!(err.code(), code, "{err}");
    err.violation
}

#[test]
fn frames_up_to_the_max_frame_size_are_accepted() {
    let payload = vec![7; DEFAULT_MAX_FRAME_SIZE as usize];
    let Frame::Data(data) = decode_one(&raw(DATA, 0, 1, &payload)).unwrap() else {
        panic!("not DATA")
    };
    assert_eq!(data.payload.len(), payload.len());
}

#[test]
fn a_frame_over_the_max_frame_size_is_refused_from_its_header_alone() {
    let wire = raw(DATA, 0, 1, &vec![0; DEFAULT_MAX_FRAME_SIZE as usize + 1]);
    let mut head = BytesMut::from(&wire[..HEADER_LEN]);
    let err = FrameDecoder::default().decode(&mut head).unwrap_err();
    assert_eq!(
        connection_error(err, ErrorCode::FrameSizeError),
        Violation::FrameTooLarge {
            length: 16_385,
            max: 16_384
        }
    );
    // Unknown frame types too (§4.2 applies to every frame).
    let mut unknown = BytesMut::from(&raw(0xfa, 0, 0, &vec![0; 16_385])[..HEADER_LEN]);
    assert!(FrameDecoder::default().decode(&mut unknown).is_err());
}

#[test]
fn a_larger_max_frame_size_admits_larger_frames() {
    let mut decoder = FrameDecoder::new(1);
    assert_eq!(decoder.max_frame_size(), DEFAULT_MAX_FRAME_SIZE, "clamped up to 2^14");
    decoder.set_max_frame_size(1 << 20);
    let mut wire = raw(DATA, 0, 1, &vec![1; 100_000]);
    assert!(matches!(decoder.decode(&mut wire), Ok(Some(Frame::Data(_)))));
    assert_eq!(FrameDecoder::new(u32::MAX).max_frame_size(), MAX_FRAME_SIZE_LIMIT);
}

#[test]
fn fixed_length_frames_must_have_their_length() {
    for (kind, good) in [(PING, 8), (RST_STREAM, 4), (WINDOW_UPDATE, 4)] {
        let stream = if kind == PING { 0 } else { 1 };
        let mut payload = vec![0; good];
        payload[good - 1] = 1; // A window increment of 1.
        assert!(decode_one(&raw(kind, 0, stream, &payload)).is_ok());
        for bad in [0, good - 1, good + 1] {
            let err = decode_err(&raw(kind, 0, stream, &vec![1; bad]));
            assert_eq!(
                connection_error(err, ErrorCode::FrameSizeError),
                Violation::WrongLength {
                    kind: FrameKind::from(kind),
                    length: bad as u32
                }
            );
        }
    }
}

#[test]
fn a_priority_frame_of_the_wrong_length_is_a_stream_error() {
    assert!(decode_one(&raw(PRIORITY, 0, 3, &[0, 0, 0, 1, 16])).is_ok());
    for bad in [4, 6] {
        let err = decode_err(&raw(PRIORITY, 0, 3, &vec![0; bad]));
        assert_eq!(err.scope, ErrorScope::Stream(sid(3)));
        assert_eq!(err.code(), ErrorCode::FrameSizeError);
    }
}

#[test]
fn a_settings_payload_is_a_whole_number_of_parameters() {
    assert_eq!(
        decode_one(&raw(SETTINGS, 0, 0, &[])).unwrap(),
        Frame::Settings(Settings::default())
    );
    for bad in [1, 5, 7, 13] {
        let err = decode_err(&raw(SETTINGS, 0, 0, &vec![0; bad]));
        assert_eq!(
            connection_error(err, ErrorCode::FrameSizeError),
            Violation::SettingsLengthNotMultipleOfSix { length: bad as u32 }
        );
    }
}

#[test]
fn a_settings_ack_is_empty() {
    assert_eq!(
        decode_one(&raw(SETTINGS, flags::ACK, 0, &[])).unwrap(),
        Frame::SettingsAck
    );
    let err = decode_err(&raw(SETTINGS, flags::ACK, 0, &[0, 3, 0, 0, 0, 1]));
    assert_eq!(
        connection_error(err, ErrorCode::FrameSizeError),
        Violation::SettingsAckNotEmpty { length: 6 }
    );
}

#[test]
fn invalid_settings_values_are_connection_errors_with_their_codes() {
    let cases = [
        (2u16, 2u32, ErrorCode::ProtocolError),
        (4, 1 << 31, ErrorCode::FlowControlError),
        (5, 16_383, ErrorCode::ProtocolError),
        (5, 1 << 24, ErrorCode::ProtocolError),
    ];
    for (id, value, code) in cases {
        let mut payload = id.to_be_bytes().to_vec();
        payload.extend(value.to_be_bytes());
        connection_error(decode_err(&raw(SETTINGS, 0, 0, &payload)), code);
    }
    // Unknown identifiers are ignored, whatever their value.
    let payload = [0xab, 0xcd, 0xff, 0xff, 0xff, 0xff, 0, 2, 0, 0, 0, 1];
    let Frame::Settings(settings) = decode_one(&raw(SETTINGS, 0, 0, &payload)).unwrap() else {
        panic!("not SETTINGS")
    };
    assert_eq!(
        settings,
        Settings {
            enable_push: Some(true),
            ..Settings::default()
        }
    );
}

#[test]
fn stream_frames_need_a_stream() {
    let cases: [(u8, &[u8]); 6] = [
        (DATA, b""),
        (HEADERS, b""),
        (PRIORITY, &[0, 0, 0, 1, 0]),
        (RST_STREAM, &[0, 0, 0, 8]),
        (PUSH_PROMISE, &[0, 0, 0, 2]),
        (CONTINUATION, b""),
    ];
    for (kind, payload) in cases {
        assert!(decode_one(&raw(kind, 0, 1, payload)).is_ok(), "{kind} on stream 1");
        let err = decode_err(&raw(kind, 0, 0, payload));
        assert_eq!(
            connection_error(err, ErrorCode::ProtocolError),
            Violation::MissingStreamId {
                kind: FrameKind::from(kind)
            }
        );
    }
}

#[test]
fn connection_frames_need_stream_zero() {
    let cases: [(u8, &[u8]); 3] = [(SETTINGS, b""), (PING, &[0; 8]), (GOAWAY, &[0; 8])];
    for (kind, payload) in cases {
        assert!(decode_one(&raw(kind, 0, 0, payload)).is_ok());
        let err = decode_err(&raw(kind, 0, 5, payload));
        assert_eq!(
            connection_error(err, ErrorCode::ProtocolError),
            Violation::UnexpectedStreamId {
                kind: FrameKind::from(kind),
                stream_id: sid(5)
            }
        );
    }
    // WINDOW_UPDATE goes either way.
    assert!(decode_one(&raw(WINDOW_UPDATE, 0, 0, &[0, 0, 0, 1])).is_ok());
    assert!(decode_one(&raw(WINDOW_UPDATE, 0, 9, &[0, 0, 0, 1])).is_ok());
}

#[test]
fn the_reserved_bit_of_a_stream_id_is_ignored() {
    let frame = decode_one(&raw(DATA, 0, 0x8000_0003, b"x")).unwrap();
    assert_eq!(frame.stream_id(), sid(3));
    // Stream 0 with the reserved bit set is still stream 0.
    let err = decode_err(&raw(DATA, 0, 0x8000_0000, b"x"));
    assert_eq!(err.violation, Violation::MissingStreamId { kind: FrameKind::Data });
}

#[test]
fn data_padding_is_removed_and_counted_for_flow_control() {
    // Pad length 3: one byte of pad length, "hi", three zeros.
    let frame = decode_one(&raw(DATA, flags::PADDED | flags::END_STREAM, 1, b"\x03hi\0\0\0")).unwrap();
    let Frame::Data(data) = frame else { panic!("not DATA") };
    assert_eq!(&data.payload[..], b"hi");
    assert_eq!(data.padding, Some(3));
    assert!(data.end_stream);
    assert_eq!(data.flow_controlled_len(), 6);
    // Padding filling everything after the pad length leaves no data.
    let Frame::Data(data) = decode_one(&raw(DATA, flags::PADDED, 1, b"\x02\0\0")).unwrap() else {
        panic!("not DATA")
    };
    assert!(data.payload.is_empty());
}

#[test]
fn padding_as_long_as_the_payload_is_a_protocol_error() {
    let err = decode_err(&raw(DATA, flags::PADDED, 1, b"\x03\0\0"));
    assert_eq!(
        connection_error(err, ErrorCode::ProtocolError),
        Violation::PaddingTooLong {
            kind: FrameKind::Data,
            padding: 3,
            length: 3
        }
    );
    let err = decode_err(&raw(HEADERS, flags::PADDED | flags::END_HEADERS, 1, b"\x05abcd"));
    connection_error(err, ErrorCode::ProtocolError);
    // With priority fields, the padding must leave room for them too.
    let ok = raw(HEADERS, flags::PADDED | flags::PRIORITY, 1, b"\x01\0\0\0\x03\x10\0");
    assert!(decode_one(&ok).is_ok());
    let bad = raw(HEADERS, flags::PADDED | flags::PRIORITY, 1, b"\x02\0\0\0\x03\x10\0");
    connection_error(decode_err(&bad), ErrorCode::ProtocolError);
    // PUSH_PROMISE: room for the promised stream.
    let ok = raw(PUSH_PROMISE, flags::PADDED, 1, b"\x01\0\0\0\x02\0");
    assert!(decode_one(&ok).is_ok());
    let bad = raw(PUSH_PROMISE, flags::PADDED, 1, b"\x02\0\0\0\x02\0");
    connection_error(decode_err(&bad), ErrorCode::ProtocolError);
}

#[test]
fn frames_too_short_for_their_fields_are_frame_size_errors() {
    let cases: [(u8, u8, u32, &[u8]); 5] = [
        (DATA, flags::PADDED, 1, b""),
        (HEADERS, flags::PADDED, 1, b""),
        (HEADERS, flags::PRIORITY, 1, &[0, 0, 0, 3]),
        (PUSH_PROMISE, 0, 1, &[0, 0, 2]),
        (GOAWAY, 0, 0, &[0; 7]),
    ];
    for (kind, flag_bits, stream, payload) in cases {
        let err = decode_err(&raw(kind, flag_bits, stream, payload));
        assert_eq!(
            connection_error(err, ErrorCode::FrameSizeError),
            Violation::TooShort {
                kind: FrameKind::from(kind),
                length: payload.len() as u32
            }
        );
    }
}

#[test]
fn a_zero_window_increment_is_a_stream_or_connection_error() {
    let err = decode_err(&raw(WINDOW_UPDATE, 0, 7, &[0, 0, 0, 0]));
    assert_eq!(err, FrameError::stream(sid(7), Violation::ZeroWindowIncrement));
    assert_eq!(err.code(), ErrorCode::ProtocolError);
    let err = decode_err(&raw(WINDOW_UPDATE, 0, 0, &[0, 0, 0, 0]));
    assert_eq!(err, FrameError::connection(Violation::ZeroWindowIncrement));
    // The reserved bit does not count: 2^31 is an increment of 0.
    assert!(decode_one(&raw(WINDOW_UPDATE, 0, 7, &[0x80, 0, 0, 0])).is_err());
    let frame = decode_one(&raw(WINDOW_UPDATE, 0, 7, &[0xff, 0xff, 0xff, 0xff])).unwrap();
    assert_eq!(
        frame,
        Frame::WindowUpdate(WindowUpdate {
            stream_id: sid(7),
            increment: MAX_WINDOW_SIZE
        })
    );
}

#[test]
fn a_push_promise_must_promise_a_stream() {
    let err = decode_err(&raw(PUSH_PROMISE, flags::END_HEADERS, 1, &[0x80, 0, 0, 0]));
    assert_eq!(
        connection_error(err, ErrorCode::ProtocolError),
        Violation::ZeroPromisedStreamId
    );
    let frame = decode_one(&raw(PUSH_PROMISE, flags::END_HEADERS, 1, b"\x80\0\0\x02block")).unwrap();
    assert_eq!(
        frame,
        Frame::PushPromise(PushPromise {
            stream_id: sid(1),
            promised_stream_id: sid(2),
            end_headers: true,
            padding: None,
            fragment: Bytes::from_static(b"block"),
        })
    );
}

#[test]
fn unknown_frame_types_and_flags_are_passed_over() {
    let frame = decode_one(&raw(0xfa, 0xff, 3, b"extension")).unwrap();
    assert_eq!(
        frame,
        Frame::Unknown(Unknown {
            kind: 0xfa,
            flags: 0xff,
            stream_id: sid(3),
            payload: Bytes::from_static(b"extension"),
        })
    );
    // Undefined flags on a known type change nothing.
    let frame = decode_one(&raw(PING, 0xfe, 0, &[1; 8])).unwrap();
    assert_eq!(
        frame,
        Frame::Ping(Ping {
            ack: false,
            opaque: [1; 8]
        })
    );
}

#[test]
fn decoding_goes_on_after_a_stream_error() {
    let mut buf = raw(WINDOW_UPDATE, 0, 3, &[0; 4]);
    buf.extend_from_slice(&raw(PRIORITY, 0, 5, &[0; 3]));
    buf.extend_from_slice(&raw(PING, flags::ACK, 0, &[9; 8]));
    let decoder = FrameDecoder::default();
    assert_eq!(decoder.decode(&mut buf).unwrap_err().scope, ErrorScope::Stream(sid(3)));
    assert_eq!(decoder.decode(&mut buf).unwrap_err().scope, ErrorScope::Stream(sid(5)));
    assert_eq!(
        decoder.decode(&mut buf).unwrap(),
        Some(Frame::Ping(Ping {
            ack: true,
            opaque: [9; 8]
        }))
    );
    assert!(buf.is_empty());
}

#[test]
fn missing_says_how_many_bytes_the_next_frame_needs() {
    let decoder = FrameDecoder::default();
    let wire = raw(DATA, 0, 1, &[0; 100]);
    assert_eq!(decoder.missing(&[]), HEADER_LEN);
    assert_eq!(decoder.missing(&wire[..4]), 5);
    assert_eq!(decoder.missing(&wire[..9]), 100);
    assert_eq!(decoder.missing(&wire[..]), 0);
}
