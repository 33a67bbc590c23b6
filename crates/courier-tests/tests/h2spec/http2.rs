//! h2spec's `http2` cases: RFC 9113, by section.

use courier_tests::raw_h2::code::*;
use courier_tests::raw_h2::flag::*;
use courier_tests::raw_h2::hpack::Block;
use courier_tests::raw_h2::*;

use super::*;

/// Both flags a complete request head without a body has.
const HEAD_ONLY: u8 = END_STREAM | END_HEADERS;

/// 3.5 HTTP/2 Connection Preface.
mod s3_5_connection_preface {
    use super::*;

    #[tokio::test]
    async fn the_first_frame_the_server_sends_is_its_settings() {
        let mut c = Case::unopened().await;
        let mut greeting = PREFACE.to_vec();
        greeting.extend(settings(&[(setting::INITIAL_WINDOW_SIZE, 65_535)]));
        c.send(&greeting).await;
        match c.next_event().await {
            Event::Frame(f) if f.kind == kind::SETTINGS && !f.has(ACK) => {}
            other => panic!("expected SETTINGS without ACK first, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn an_invalid_preface_is_a_connection_protocol_error() {
        let mut c = Case::unopened().await;
        c.send(b"INVALID CONNECTION PREFACE\r\n\r\n").await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }
}

/// 4.1 Frame Format.
mod s4_1_frame_format {
    use super::*;

    #[tokio::test]
    async fn a_frame_of_unknown_type_is_ignored() {
        let mut c = Case::open().await;
        c.send(&frame(kind::UNKNOWN, 0, 0, &[0; 8])).await;
        c.send(&ping(*b"unknown\0")).await;
        c.expect_ping_ack(*b"unknown\0").await;
    }

    #[tokio::test]
    async fn undefined_flags_are_ignored() {
        let mut c = Case::open().await;
        // 0x16 sets no flag PING defines (ACK is 0x1).
        c.send(&frame(kind::PING, 0x16, 0, b"flagged\0")).await;
        c.expect_ping_ack(*b"flagged\0").await;
    }

    #[tokio::test]
    async fn the_reserved_bit_of_the_stream_identifier_is_ignored() {
        let mut c = Case::open().await;
        c.send(&frame(kind::PING, 0, 1 << 31, b"reserved")).await;
        c.expect_ping_ack(*b"reserved").await;
    }
}

/// 4.2 Frame Size.
mod s4_2_frame_size {
    use super::*;

    fn max_frame_size(c: &Case) -> usize {
        c.server_setting(setting::MAX_FRAME_SIZE)
            .map_or(DEFAULT_MAX_FRAME_SIZE, |n| n as usize)
    }

    #[tokio::test]
    async fn a_data_frame_of_the_max_frame_size_is_accepted() {
        let mut c = Case::open().await;
        let size = max_frame_size(&c);
        c.send_request(1, false).await;
        c.send(&data(1, true, &message_of_len(size))).await;
        c.expect_headers(1).await;
    }

    #[tokio::test]
    async fn a_data_frame_over_the_max_frame_size_is_a_frame_size_error() {
        let mut c = Case::open().await;
        let size = max_frame_size(&c);
        c.send_request(1, false).await;
        c.send(&data(1, true, &message_of_len(size + 1))).await;
        c.expect_stream_error(1, &[FRAME_SIZE_ERROR]).await;
    }

    #[tokio::test]
    async fn a_headers_frame_over_the_max_frame_size_is_a_connection_frame_size_error() {
        let mut c = Case::open().await;
        let mut fields = c.request();
        fields.extend(dummy_fields(5, 4_000));
        let block = Block::of(&fields).bytes();
        assert!(block.len() > max_frame_size(&c));
        c.send(&headers(1, HEAD_ONLY, &block)).await;
        c.expect_connection_error(&[FRAME_SIZE_ERROR]).await;
    }
}

/// 4.3 Header Compression and Decompression.
mod s4_3_header_compression {
    use super::*;

    #[tokio::test]
    async fn an_undecodable_header_block_is_a_connection_compression_error() {
        let mut c = Case::open().await;
        // A literal with incremental indexing and a new name, cut off
        // before the name.
        c.send(&headers(1, HEAD_ONLY, &[0x40])).await;
        c.expect_connection_error(&[COMPRESSION_ERROR]).await;
    }

    #[tokio::test]
    async fn a_priority_frame_inside_a_header_block_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        let mut bytes = headers(1, 0, &c.request_block());
        bytes.extend(priority(1, Priority::weight(255)));
        bytes.extend(continuation(1, true, &dummy_block()));
        c.send(&bytes).await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }

    #[tokio::test]
    async fn headers_on_another_stream_inside_a_header_block_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        let mut bytes = headers(1, 0, &c.request_block());
        bytes.extend(headers(3, HEAD_ONLY, &c.request_block()));
        bytes.extend(continuation(1, true, &dummy_block()));
        c.send(&bytes).await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }
}

/// 5.1 Stream States.
mod s5_1_stream_states {
    use super::*;

    #[tokio::test]
    async fn data_on_an_idle_stream_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        c.send(&data(1, true, &hello())).await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }

    #[tokio::test]
    async fn rst_stream_on_an_idle_stream_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        c.send(&rst_stream(1, CANCEL)).await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }

    #[tokio::test]
    async fn window_update_on_an_idle_stream_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        c.send(&window_update(1, 100)).await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }

    #[tokio::test]
    async fn continuation_on_an_idle_stream_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        let block = c.request_block();
        c.send(&continuation(1, true, &block)).await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }

    #[tokio::test]
    async fn data_on_a_half_closed_remote_stream_is_a_stream_closed_error() {
        let mut c = Case::open().await;
        c.send_slow_call(1).await;
        c.send(&data(1, true, &hello())).await;
        c.expect_stream_error(1, &[STREAM_CLOSED]).await;
    }

    #[tokio::test]
    async fn headers_on_a_half_closed_remote_stream_is_a_stream_closed_error() {
        let mut c = Case::open().await;
        c.send_slow_call(1).await;
        c.send_request(1, true).await;
        c.expect_stream_error(1, &[STREAM_CLOSED]).await;
    }

    #[tokio::test]
    async fn continuation_on_a_half_closed_remote_stream_is_an_error() {
        let mut c = Case::open().await;
        c.send_slow_call(1).await;
        let block = c.request_block();
        c.send(&continuation(1, true, &block)).await;
        c.expect_stream_error(1, &[STREAM_CLOSED, PROTOCOL_ERROR]).await;
    }

    #[tokio::test]
    async fn data_after_the_client_reset_the_stream_is_a_stream_closed_error() {
        let mut c = Case::open().await;
        c.send_request(1, false).await;
        c.send(&rst_stream(1, CANCEL)).await;
        c.send(&data(1, true, &hello())).await;
        c.expect_stream_error(1, &[STREAM_CLOSED]).await;
    }

    #[tokio::test]
    async fn headers_after_the_client_reset_the_stream_is_a_stream_closed_error() {
        let mut c = Case::open().await;
        c.send_request(1, false).await;
        c.send(&rst_stream(1, CANCEL)).await;
        c.send_request(1, true).await;
        c.expect_stream_error(1, &[STREAM_CLOSED]).await;
    }

    #[tokio::test]
    async fn continuation_after_the_client_reset_the_stream_is_an_error() {
        let mut c = Case::open().await;
        c.send_request(1, false).await;
        c.send(&rst_stream(1, CANCEL)).await;
        c.send(&continuation(1, true, &dummy_block())).await;
        c.expect_stream_error(1, &[STREAM_CLOSED, PROTOCOL_ERROR]).await;
    }

    #[tokio::test]
    async fn data_on_a_closed_stream_is_a_stream_closed_error() {
        let mut c = Case::open().await;
        c.send_request(1, true).await;
        c.expect_stream_end(1).await;
        c.send(&data(1, true, &hello())).await;
        c.expect_stream_error(1, &[STREAM_CLOSED]).await;
    }

    #[tokio::test]
    async fn headers_on_a_closed_stream_is_a_connection_stream_closed_error() {
        let mut c = Case::open().await;
        c.send_request(1, true).await;
        c.expect_stream_end(1).await;
        c.send_request(1, true).await;
        c.expect_connection_error(&[STREAM_CLOSED]).await;
    }

    #[tokio::test]
    async fn continuation_on_a_closed_stream_is_a_connection_error() {
        let mut c = Case::open().await;
        c.send_request(1, true).await;
        c.expect_stream_end(1).await;
        c.send(&continuation(1, true, &dummy_block())).await;
        c.expect_connection_error(&[STREAM_CLOSED, PROTOCOL_ERROR]).await;
    }
}

/// 5.1.1 Stream Identifiers.
mod s5_1_1_stream_identifiers {
    use super::*;

    #[tokio::test]
    async fn an_even_stream_identifier_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        c.send_request(2, true).await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }

    #[tokio::test]
    async fn a_stream_identifier_below_an_earlier_one_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        c.send_request(5, true).await;
        c.send_request(3, true).await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }
}

/// 5.1.2 Stream Concurrency.
mod s5_1_2_stream_concurrency {
    use super::*;

    #[tokio::test]
    async fn streams_past_the_advertised_limit_are_refused() {
        let mut c = Case::open().await;
        let max = c
            .server_setting(setting::MAX_CONCURRENT_STREAMS)
            .expect("the server advertises SETTINGS_MAX_CONCURRENT_STREAMS");
        // No response can send DATA, and no request ends: every stream
        // stays open.
        let mut bytes = settings(&[(setting::INITIAL_WINDOW_SIZE, 0)]);
        let block = c.request_block();
        for i in 0..=max {
            bytes.extend(headers(1 + 2 * i, END_HEADERS, &block));
        }
        c.send(&bytes).await;
        c.expect_stream_error(1 + 2 * max, &[PROTOCOL_ERROR, REFUSED_STREAM])
            .await;
    }
}

/// 5.3.1 Stream Dependencies.
mod s5_3_1_stream_dependencies {
    use super::*;

    fn on_itself(stream: u32) -> Priority {
        Priority {
            dependency: stream,
            exclusive: false,
            weight: 255,
        }
    }

    #[tokio::test]
    async fn headers_depending_on_their_own_stream_is_a_stream_protocol_error() {
        let mut c = Case::open().await;
        let block = c.request_block();
        c.send(&headers_prioritized(1, HEAD_ONLY, on_itself(1), &block)).await;
        c.expect_stream_error(1, &[PROTOCOL_ERROR]).await;
    }

    #[tokio::test]
    async fn priority_depending_on_its_own_stream_is_a_stream_protocol_error() {
        let mut c = Case::open().await;
        c.send(&priority(1, on_itself(1))).await;
        c.expect_stream_error(1, &[PROTOCOL_ERROR]).await;
    }
}

/// 5.4.1 Connection Error Handling.
mod s5_4_1_connection_error_handling {
    use super::*;

    /// A PING on stream 3: PING frames belong to the connection.
    fn ping_on_a_stream() -> Vec<u8> {
        frame(kind::PING, 0, 3, &[0; 8])
    }

    #[tokio::test]
    async fn a_connection_error_closes_the_tcp_connection() {
        let mut c = Case::open().await;
        c.send(&ping_on_a_stream()).await;
        c.expect_close().await;
    }

    /// h2spec's one strict case: a SHOULD of RFC 9113.
    #[tokio::test]
    async fn a_connection_error_sends_goaway_before_closing() {
        let mut c = Case::open().await;
        c.send(&ping_on_a_stream()).await;
        c.expect_goaway(&[PROTOCOL_ERROR]).await;
    }
}

/// 5.5 Extending HTTP/2.
mod s5_5_extending_http2 {
    use super::*;

    #[tokio::test]
    async fn an_unknown_extension_frame_is_ignored() {
        let mut c = Case::open().await;
        c.send(&frame(kind::UNKNOWN, 0xff, 1, b"extension")).await;
        c.send(&ping(*b"extended")).await;
        c.expect_ping_ack(*b"extended").await;
    }

    #[tokio::test]
    async fn an_unknown_extension_frame_inside_a_header_block_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        let mut bytes = headers(1, END_STREAM, &c.request_block());
        bytes.extend(frame(kind::UNKNOWN, 0, 0, &[0; 8]));
        c.send(&bytes).await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }
}

/// 6.1 DATA.
mod s6_1_data {
    use super::*;

    #[tokio::test]
    async fn data_on_stream_zero_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        c.send(&data(0, true, &hello())).await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }

    #[tokio::test]
    async fn data_on_a_stream_neither_open_nor_half_closed_local_is_a_stream_closed_error() {
        let mut c = Case::open().await;
        c.send_request(1, true).await;
        c.send(&data(1, true, &hello())).await;
        c.expect_stream_error(1, &[STREAM_CLOSED]).await;
    }

    #[tokio::test]
    async fn data_padding_as_long_as_the_payload_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        c.send_request(1, false).await;
        // Five octets: a pad length of 6, then four octets.
        c.send(&frame(kind::DATA, END_STREAM | PADDED, 1, &[6, 0, 0, 0, 0]))
            .await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }
}

/// 6.2 HEADERS.
mod s6_2_headers {
    use super::*;

    #[tokio::test]
    async fn priority_inside_a_header_block_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        let mut bytes = headers(1, 0, &c.request_block());
        bytes.extend(priority(1, Priority::weight(255)));
        bytes.extend(continuation(1, true, &dummy_block()));
        c.send(&bytes).await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }

    #[tokio::test]
    async fn headers_on_another_stream_inside_a_header_block_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        let mut bytes = headers(1, 0, &c.request_block());
        bytes.extend(headers(3, HEAD_ONLY, &c.request_block()));
        bytes.extend(continuation(1, true, &dummy_block()));
        c.send(&bytes).await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }

    #[tokio::test]
    async fn headers_on_stream_zero_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        let block = c.request_block();
        c.send(&headers(0, HEAD_ONLY, &block)).await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }

    #[tokio::test]
    async fn headers_padding_longer_than_the_payload_is_a_protocol_error() {
        let mut c = Case::open().await;
        let block = c.request_block();
        let mut payload = vec![(block.len() + 2) as u8];
        payload.extend(&block);
        assert!(block.len() + 2 < 256, "the pad length fits its octet");
        c.send(&frame(kind::HEADERS, HEAD_ONLY | PADDED, 1, &payload)).await;
        c.expect_stream_error(1, &[PROTOCOL_ERROR]).await;
    }
}

/// 6.3 PRIORITY.
mod s6_3_priority {
    use super::*;

    #[tokio::test]
    async fn priority_on_stream_zero_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        c.send(&priority(0, Priority::weight(255))).await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }

    #[tokio::test]
    async fn priority_of_a_length_other_than_5_is_a_stream_frame_size_error() {
        let mut c = Case::open().await;
        c.send_slow_call(1).await;
        c.send(&frame(kind::PRIORITY, 0, 1, &[0x80, 0, 0, 1])).await;
        c.expect_stream_error(1, &[FRAME_SIZE_ERROR]).await;
    }
}

/// 6.4 RST_STREAM.
mod s6_4_rst_stream {
    use super::*;

    #[tokio::test]
    async fn rst_stream_on_stream_zero_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        c.send(&rst_stream(0, CANCEL)).await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }

    #[tokio::test]
    async fn rst_stream_on_an_idle_stream_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        c.send(&rst_stream(1, CANCEL)).await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }

    #[tokio::test]
    async fn rst_stream_of_a_length_other_than_4_is_a_frame_size_error() {
        let mut c = Case::open().await;
        c.send_slow_call(1).await;
        c.send(&frame(kind::RST_STREAM, 0, 1, &[0, 0, 0])).await;
        c.expect_stream_error(1, &[FRAME_SIZE_ERROR]).await;
    }
}

/// 6.5 SETTINGS.
mod s6_5_settings {
    use super::*;

    #[tokio::test]
    async fn settings_ack_with_a_payload_is_a_connection_frame_size_error() {
        let mut c = Case::open().await;
        c.send(&frame(kind::SETTINGS, ACK, 0, &[0])).await;
        c.expect_connection_error(&[FRAME_SIZE_ERROR]).await;
    }

    #[tokio::test]
    async fn settings_on_a_stream_other_than_zero_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        let mut bad = settings(&[(setting::MAX_CONCURRENT_STREAMS, 100)]);
        bad[8] = 1;
        c.send(&bad).await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }

    #[tokio::test]
    async fn settings_of_a_length_not_a_multiple_of_6_is_a_connection_error() {
        let mut c = Case::open().await;
        c.send(&frame(kind::SETTINGS, 0, 0, &[0, 3, 0])).await;
        c.expect_connection_error(&[PROTOCOL_ERROR, FRAME_SIZE_ERROR]).await;
    }
}

/// 6.5.2 Defined SETTINGS Parameters.
mod s6_5_2_defined_settings {
    use super::*;

    #[tokio::test]
    async fn enable_push_other_than_0_or_1_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        c.send(&settings(&[(setting::ENABLE_PUSH, 2)])).await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }

    #[tokio::test]
    async fn initial_window_size_over_the_maximum_is_a_connection_flow_control_error() {
        let mut c = Case::open().await;
        c.send(&settings(&[(setting::INITIAL_WINDOW_SIZE, MAX_WINDOW + 1)]))
            .await;
        c.expect_connection_error(&[FLOW_CONTROL_ERROR]).await;
    }

    #[tokio::test]
    async fn max_frame_size_below_the_initial_value_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        c.send(&settings(&[(setting::MAX_FRAME_SIZE, 16_383)])).await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }

    #[tokio::test]
    async fn max_frame_size_over_the_maximum_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        c.send(&settings(&[(setting::MAX_FRAME_SIZE, 1 << 24)])).await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }

    #[tokio::test]
    async fn an_unknown_setting_is_ignored() {
        let mut c = Case::open().await;
        c.send(&settings(&[(0xff, 1)])).await;
        c.send(&ping(*b"unknown\0")).await;
        c.expect_ping_ack(*b"unknown\0").await;
    }
}

/// 6.5.3 Settings Synchronization.
mod s6_5_3_settings_synchronization {
    use super::*;

    #[tokio::test]
    async fn settings_values_are_processed_in_order() {
        let mut c = Case::open().await;
        c.send(&settings(&[
            (setting::INITIAL_WINDOW_SIZE, 100),
            (setting::INITIAL_WINDOW_SIZE, 1),
        ]))
        .await;
        c.expect_settings_ack().await;
        c.send_call(1, &text("ordered")).await;
        let first = c.expect_data(1).await;
        assert_eq!(
            first.payload.len(),
            1,
            "the last value, 1, is the window: {}",
            first.describe()
        );
    }

    #[tokio::test]
    async fn settings_are_acknowledged() {
        let mut c = Case::open().await;
        c.send(&settings(&[(setting::ENABLE_PUSH, 0)])).await;
        c.expect_settings_ack().await;
    }
}

/// 6.7 PING.
mod s6_7_ping {
    use super::*;

    #[tokio::test]
    async fn ping_is_answered_with_an_ack_carrying_its_data() {
        let mut c = Case::open().await;
        c.send(&ping(*b"h2spec\0\0")).await;
        c.expect_ping_ack(*b"h2spec\0\0").await;
    }

    #[tokio::test]
    async fn a_ping_ack_is_not_answered() {
        let mut c = Case::open().await;
        c.send(&ping_ack(*b"invalid\0")).await;
        c.send(&ping(*b"h2spec\0\0")).await;
        c.expect_ping_ack(*b"h2spec\0\0").await;
    }

    #[tokio::test]
    async fn ping_on_a_stream_other_than_zero_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        c.send(&frame(kind::PING, 0, 1, &[0; 8])).await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }

    #[tokio::test]
    async fn ping_of_a_length_other_than_8_is_a_connection_frame_size_error() {
        let mut c = Case::open().await;
        c.send(&frame(kind::PING, 0, 0, &[0; 6])).await;
        c.expect_connection_error(&[FRAME_SIZE_ERROR]).await;
    }
}

/// 6.8 GOAWAY.
mod s6_8_goaway {
    use super::*;

    #[tokio::test]
    async fn goaway_on_a_stream_other_than_zero_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        c.send(&frame(kind::GOAWAY, 0, 1, &[0; 8])).await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }
}

/// 6.9 WINDOW_UPDATE.
mod s6_9_window_update {
    use super::*;

    #[tokio::test]
    async fn a_zero_increment_on_the_connection_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        c.send(&window_update(0, 0)).await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }

    #[tokio::test]
    async fn a_zero_increment_on_a_stream_is_a_stream_protocol_error() {
        let mut c = Case::open().await;
        c.send_request(1, false).await;
        c.send(&window_update(1, 0)).await;
        c.expect_stream_error(1, &[PROTOCOL_ERROR]).await;
    }

    #[tokio::test]
    async fn window_update_of_a_length_other_than_4_is_a_connection_frame_size_error() {
        let mut c = Case::open().await;
        c.send(&frame(kind::WINDOW_UPDATE, 0, 0, &[0, 0, 1])).await;
        c.expect_connection_error(&[FRAME_SIZE_ERROR]).await;
    }
}

/// 6.9.1 The Flow-Control Window.
mod s6_9_1_flow_control_window {
    use super::*;

    #[tokio::test]
    async fn the_server_sends_no_more_data_than_the_window_allows() {
        let mut c = Case::open().await;
        c.send(&settings(&[(setting::INITIAL_WINDOW_SIZE, 1)])).await;
        c.expect_settings_ack().await;
        c.send_call(1, &text("windowed")).await;
        let first = c.expect_data(1).await;
        assert_eq!(
            first.payload.len(),
            1,
            "a window of 1 allows 1 octet: {}",
            first.describe()
        );
    }

    #[tokio::test]
    async fn a_connection_window_over_the_maximum_is_a_flow_control_goaway() {
        let mut c = Case::open().await;
        let mut bytes = window_update(0, MAX_WINDOW);
        bytes.extend(window_update(0, MAX_WINDOW));
        c.send(&bytes).await;
        c.expect_goaway(&[FLOW_CONTROL_ERROR]).await;
    }

    #[tokio::test]
    async fn a_stream_window_over_the_maximum_is_a_flow_control_reset() {
        let mut c = Case::open().await;
        c.send_request(1, false).await;
        let mut bytes = window_update(1, MAX_WINDOW);
        bytes.extend(window_update(1, MAX_WINDOW));
        c.send(&bytes).await;
        c.expect_rst_stream(1, FLOW_CONTROL_ERROR).await;
    }
}

/// 6.9.2 Initial Flow-Control Window Size.
mod s6_9_2_initial_window_size {
    use super::*;

    #[tokio::test]
    async fn a_new_initial_window_size_adjusts_open_streams() {
        let mut c = Case::open().await;
        c.send(&settings(&[(setting::INITIAL_WINDOW_SIZE, 0)])).await;
        c.expect_settings_ack().await;
        c.send_call(1, &text("adjusted")).await;
        c.send(&settings(&[(setting::INITIAL_WINDOW_SIZE, 1)])).await;
        let first = c.expect_data(1).await;
        assert_eq!(
            first.payload.len(),
            1,
            "the window grew from 0 to 1: {}",
            first.describe()
        );
    }

    #[tokio::test]
    async fn a_window_made_negative_by_settings_is_tracked() {
        let mut c = Case::open().await;
        c.send(&settings(&[(setting::INITIAL_WINDOW_SIZE, 3)])).await;
        c.expect_settings_ack().await;
        c.send_call(1, &text("negative")).await;
        let mut got = 0;
        while got < 3 {
            got += c.expect_data(1).await.payload.len();
        }
        assert_eq!(got, 3, "a window of 3 allows 3 octets");
        // The stream's window goes from 0 to -1, and the update to 1.
        c.send(&settings(&[(setting::INITIAL_WINDOW_SIZE, 2)])).await;
        c.expect_settings_ack().await;
        c.send(&window_update(1, 2)).await;
        let next = c.expect_data(1).await;
        assert_eq!(
            next.payload.len(),
            1,
            "a window of -1 + 2 allows 1 octet: {}",
            next.describe()
        );
    }

    #[tokio::test]
    async fn initial_window_size_over_the_maximum_is_a_connection_flow_control_error() {
        let mut c = Case::open().await;
        c.send(&frame(kind::SETTINGS, 0, 0, &[0, 4, 0x80, 0, 0, 0])).await;
        c.expect_connection_error(&[FLOW_CONTROL_ERROR]).await;
    }
}

/// 6.10 CONTINUATION.
mod s6_10_continuation {
    use super::*;

    #[tokio::test]
    async fn continuations_after_headers_are_accepted() {
        let mut c = Case::open().await;
        let mut bytes = headers(1, END_STREAM, &c.request_block());
        bytes.extend(continuation(1, false, &dummy_block()));
        bytes.extend(continuation(1, true, &Block::of(&dummy_fields(2, 100)[1..]).bytes()));
        c.send(&bytes).await;
        c.expect_headers(1).await;
    }

    #[tokio::test]
    async fn a_frame_other_than_continuation_inside_a_header_block_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        let mut bytes = headers(1, 0, &c.request_block());
        bytes.extend(continuation(1, false, &dummy_block()));
        bytes.extend(data(1, true, &hello()));
        c.send(&bytes).await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }

    #[tokio::test]
    async fn continuation_on_stream_zero_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        let mut bytes = headers(1, END_STREAM, &c.request_block());
        bytes.extend(continuation(0, true, &dummy_block()));
        c.send(&bytes).await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }

    #[tokio::test]
    async fn continuation_after_headers_with_end_headers_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        let mut bytes = headers(1, HEAD_ONLY, &c.request_block());
        bytes.extend(continuation(1, true, &dummy_block()));
        c.send(&bytes).await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }

    #[tokio::test]
    async fn continuation_after_continuation_with_end_headers_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        let mut bytes = headers(1, END_STREAM, &c.request_block());
        bytes.extend(continuation(1, true, &dummy_block()));
        bytes.extend(continuation(1, true, &dummy_block()));
        c.send(&bytes).await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }

    #[tokio::test]
    async fn continuation_after_data_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        let mut bytes = headers(1, END_HEADERS, &c.request_block());
        bytes.extend(data(1, false, &hello()));
        bytes.extend(continuation(1, true, &dummy_block()));
        c.send(&bytes).await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }
}

/// 7 Error Codes.
mod s7_error_codes {
    use super::*;

    #[tokio::test]
    async fn goaway_with_an_unknown_error_code_triggers_nothing_special() {
        let mut c = Case::open().await;
        c.send(&goaway(0, 0xff, b"")).await;
        c.send(&ping(*b"h2spec\0\0")).await;
        c.expect_ping_ack_or_close(*b"h2spec\0\0").await;
    }

    #[tokio::test]
    async fn rst_stream_with_an_unknown_error_code_triggers_nothing_special() {
        let mut c = Case::open().await;
        c.send_request(1, false).await;
        c.send(&rst_stream(1, 0xff)).await;
        c.send(&ping(*b"h2spec\0\0")).await;
        c.expect_ping_ack_or_close(*b"h2spec\0\0").await;
    }
}

/// 8.1 HTTP Request/Response Exchange.
mod s8_1_request_response_exchange {
    use super::*;

    #[tokio::test]
    async fn a_second_headers_without_end_stream_is_a_stream_protocol_error() {
        let mut c = Case::open().await;
        c.send_request(1, false).await;
        let mut bytes = data(1, false, &hello());
        bytes.extend(headers(1, END_HEADERS, &Block::new().literal("x-test", "ok").bytes()));
        c.send(&bytes).await;
        c.expect_stream_error(1, &[PROTOCOL_ERROR]).await;
    }
}

/// Sends a request head of `fields` on stream 1, with END_STREAM, and
/// expects a stream error PROTOCOL_ERROR.
async fn malformed_head_is_a_stream_protocol_error(c: &mut Case, fields: &[Field]) {
    c.send(&headers(1, HEAD_ONLY, &Block::of(fields).bytes())).await;
    c.expect_stream_error(1, &[PROTOCOL_ERROR]).await;
}

/// The request's pseudo-header fields, `extra` after them, then its
/// regular fields.
fn with_pseudo(c: &Case, extra: &[(&str, &str)]) -> Vec<Field> {
    let mut all = c.pseudo();
    all.extend(fields(extra));
    all.extend(c.regular());
    all
}

/// The request without its field `name`.
fn without(c: &Case, name: &str) -> Vec<Field> {
    c.request().into_iter().filter(|(n, _)| n != name).collect()
}

/// 8.1.2 HTTP Header Fields.
mod s8_1_2_header_fields {
    use super::*;

    #[tokio::test]
    async fn an_uppercase_field_name_is_a_stream_protocol_error() {
        let mut c = Case::open().await;
        let fields = c.request_with(&[("X-TEST", "ok")]);
        malformed_head_is_a_stream_protocol_error(&mut c, &fields).await;
    }
}

/// 8.1.2.1 Pseudo-Header Fields.
mod s8_1_2_1_pseudo_header_fields {
    use super::*;

    #[tokio::test]
    async fn an_unknown_pseudo_header_is_a_stream_protocol_error() {
        let mut c = Case::open().await;
        let fields = with_pseudo(&c, &[(":test", "ok")]);
        malformed_head_is_a_stream_protocol_error(&mut c, &fields).await;
    }

    #[tokio::test]
    async fn a_response_pseudo_header_in_a_request_is_a_stream_protocol_error() {
        let mut c = Case::open().await;
        let fields = with_pseudo(&c, &[(":status", "200")]);
        malformed_head_is_a_stream_protocol_error(&mut c, &fields).await;
    }

    #[tokio::test]
    async fn a_pseudo_header_in_trailers_is_a_stream_protocol_error() {
        let mut c = Case::open().await;
        c.send_request(1, false).await;
        let mut bytes = data(1, false, &hello());
        bytes.extend(headers(1, HEAD_ONLY, &Block::new().literal(":method", "POST").bytes()));
        c.send(&bytes).await;
        c.expect_stream_error(1, &[PROTOCOL_ERROR]).await;
    }

    #[tokio::test]
    async fn a_pseudo_header_after_a_regular_field_is_a_stream_protocol_error() {
        let mut c = Case::open().await;
        let mut fields = super::fields(&[("x-test", "ok")]);
        fields.extend(c.request());
        malformed_head_is_a_stream_protocol_error(&mut c, &fields).await;
    }
}

/// 8.1.2.2 Connection-Specific Header Fields.
mod s8_1_2_2_connection_specific_fields {
    use super::*;

    #[tokio::test]
    async fn a_connection_specific_field_is_a_stream_protocol_error() {
        let mut c = Case::open().await;
        let fields = c.request_with(&[("connection", "keep-alive")]);
        malformed_head_is_a_stream_protocol_error(&mut c, &fields).await;
    }

    #[tokio::test]
    async fn te_other_than_trailers_is_a_stream_protocol_error() {
        let mut c = Case::open().await;
        let mut fields = without(&c, "te");
        fields.extend(super::fields(&[("trailers", "test"), ("te", "trailers, deflate")]));
        malformed_head_is_a_stream_protocol_error(&mut c, &fields).await;
    }
}

/// 8.1.2.3 Request Pseudo-Header Fields.
mod s8_1_2_3_request_pseudo_header_fields {
    use super::*;

    #[tokio::test]
    async fn an_empty_path_is_a_stream_protocol_error() {
        let mut c = Case::open().await;
        let fields: Vec<Field> = c
            .request()
            .into_iter()
            .map(|(n, v)| if n == ":path" { (n, String::new()) } else { (n, v) })
            .collect();
        malformed_head_is_a_stream_protocol_error(&mut c, &fields).await;
    }

    #[tokio::test]
    async fn a_request_without_method_is_a_stream_protocol_error() {
        let mut c = Case::open().await;
        let fields = without(&c, ":method");
        malformed_head_is_a_stream_protocol_error(&mut c, &fields).await;
    }

    #[tokio::test]
    async fn a_request_without_scheme_is_a_stream_protocol_error() {
        let mut c = Case::open().await;
        let fields = without(&c, ":scheme");
        malformed_head_is_a_stream_protocol_error(&mut c, &fields).await;
    }

    #[tokio::test]
    async fn a_request_without_path_is_a_stream_protocol_error() {
        let mut c = Case::open().await;
        let fields = without(&c, ":path");
        malformed_head_is_a_stream_protocol_error(&mut c, &fields).await;
    }

    #[tokio::test]
    async fn a_duplicated_method_is_a_stream_protocol_error() {
        let mut c = Case::open().await;
        let fields = with_pseudo(&c, &[(":method", "POST")]);
        malformed_head_is_a_stream_protocol_error(&mut c, &fields).await;
    }

    #[tokio::test]
    async fn a_duplicated_scheme_is_a_stream_protocol_error() {
        let mut c = Case::open().await;
        let fields = with_pseudo(&c, &[(":scheme", "http")]);
        malformed_head_is_a_stream_protocol_error(&mut c, &fields).await;
    }

    #[tokio::test]
    async fn a_duplicated_path_is_a_stream_protocol_error() {
        let mut c = Case::open().await;
        let fields = with_pseudo(&c, &[(":path", UNARY)]);
        malformed_head_is_a_stream_protocol_error(&mut c, &fields).await;
    }
}

/// 8.1.2.6 Malformed Requests and Responses.
mod s8_1_2_6_malformed_requests {
    use super::*;

    #[tokio::test]
    async fn content_length_unlike_the_data_length_is_a_stream_protocol_error() {
        let mut c = Case::open().await;
        let block = Block::of(&c.request_with(&[("content-length", "1")])).bytes();
        let mut bytes = headers(1, END_HEADERS, &block);
        bytes.extend(data(1, true, &hello()));
        c.send(&bytes).await;
        c.expect_stream_error(1, &[PROTOCOL_ERROR]).await;
    }

    #[tokio::test]
    async fn content_length_unlike_the_sum_of_data_lengths_is_a_stream_protocol_error() {
        let mut c = Case::open().await;
        let msg = hello();
        let len = msg.len().to_string();
        let block = Block::of(&c.request_with(&[("content-length", &len)])).bytes();
        let mut bytes = headers(1, END_HEADERS, &block);
        bytes.extend(data(1, false, &msg));
        bytes.extend(data(1, true, &msg));
        c.send(&bytes).await;
        c.expect_stream_error(1, &[PROTOCOL_ERROR]).await;
    }
}

/// 8.2 Server Push.
mod s8_2_server_push {
    use super::*;

    #[tokio::test]
    async fn push_promise_from_a_client_is_a_connection_protocol_error() {
        let mut c = Case::open().await;
        let block = c.request_block();
        c.send(&push_promise(1, 3, &block)).await;
        c.expect_connection_error(&[PROTOCOL_ERROR]).await;
    }
}
