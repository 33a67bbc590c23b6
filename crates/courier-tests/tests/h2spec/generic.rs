//! h2spec's `generic` cases: what any HTTP/2 server must accept, by the
//! sections of h2spec's own list.

use courier_tests::raw_h2::code::*;
use courier_tests::raw_h2::flag::*;
use courier_tests::raw_h2::hpack::{Block, Indexing, USER_AGENT};
use courier_tests::raw_h2::*;

use super::*;

/// Both flags a complete request head without a body has.
const HEAD_ONLY: u8 = END_STREAM | END_HEADERS;

/// 1 Starting HTTP/2.
mod s1_starting_http2 {
    use super::*;

    #[tokio::test]
    async fn the_client_preface_is_accepted_and_answered_with_settings() {
        let mut c = Case::unopened().await;
        let mut greeting = PREFACE.to_vec();
        greeting.extend(settings(&[(setting::INITIAL_WINDOW_SIZE, 65_535)]));
        c.send(&greeting).await;
        match c.next_event().await {
            Event::Frame(f) if f.kind == kind::SETTINGS && !f.has(ACK) => {}
            other => panic!("expected SETTINGS without ACK, got {other:?}"),
        }
    }
}

/// 2 Streams and Multiplexing.
mod s2_streams_and_multiplexing {
    use super::*;

    #[tokio::test]
    async fn priority_on_an_idle_stream_is_accepted() {
        let mut c = Case::open().await;
        c.send(&priority(1, Priority::weight(255))).await;
        c.send(&ping(*b"idle\0\0\0\0")).await;
        c.expect_ping_ack(*b"idle\0\0\0\0").await;
    }

    #[tokio::test]
    async fn window_update_on_a_half_closed_remote_stream_is_accepted() {
        let mut c = Case::open().await;
        c.send(&settings(&[(setting::INITIAL_WINDOW_SIZE, 0)])).await;
        c.send_call(1, &text("half closed")).await;
        c.send(&window_update(1, 1)).await;
        c.expect_data(1).await;
    }

    #[tokio::test]
    async fn priority_on_a_half_closed_remote_stream_is_accepted() {
        let mut c = Case::open().await;
        c.send(&settings(&[(setting::INITIAL_WINDOW_SIZE, 0)])).await;
        c.send_call(1, &text("half closed")).await;
        c.send(&priority(1, Priority::weight(255))).await;
        c.send(&window_update(1, 1)).await;
        c.expect_data(1).await;
    }

    #[tokio::test]
    async fn rst_stream_on_a_half_closed_remote_stream_is_accepted() {
        let mut c = Case::open().await;
        c.send_slow_call(1).await;
        c.send(&rst_stream(1, CANCEL)).await;
        c.send(&ping(*b"reset\0\0\0")).await;
        c.expect_ping_ack_or_close(*b"reset\0\0\0").await;
    }

    #[tokio::test]
    async fn priority_on_a_closed_stream_is_accepted() {
        let mut c = Case::open().await;
        c.send_request(1, true).await;
        c.expect_stream_end(1).await;
        c.send(&priority(1, Priority::weight(255))).await;
        c.send(&ping(*b"closed\0\0")).await;
        c.expect_ping_ack(*b"closed\0\0").await;
    }
}

/// 3.1 DATA.
mod s3_1_data {
    use super::*;

    #[tokio::test]
    async fn a_data_frame_is_accepted() {
        let mut c = Case::open().await;
        c.send_request(1, false).await;
        c.send(&data(1, true, &hello())).await;
        c.expect_headers(1).await;
    }

    #[tokio::test]
    async fn multiple_data_frames_are_accepted() {
        let mut c = Case::open().await;
        c.send_request(1, false).await;
        let msg = hello();
        let (first, second) = msg.split_at(3);
        let mut bytes = data(1, false, first);
        bytes.extend(data(1, true, second));
        c.send(&bytes).await;
        c.expect_headers(1).await;
    }

    #[tokio::test]
    async fn a_padded_data_frame_is_accepted() {
        let mut c = Case::open().await;
        c.send_request(1, false).await;
        c.send(&data_padded(1, true, &hello(), 5)).await;
        c.expect_headers(1).await;
    }
}

/// 3.2 HEADERS.
mod s3_2_headers {
    use super::*;

    #[tokio::test]
    async fn a_headers_frame_is_accepted() {
        let mut c = Case::open().await;
        c.send_request(1, true).await;
        c.expect_headers(1).await;
    }

    #[tokio::test]
    async fn a_padded_headers_frame_is_accepted() {
        let mut c = Case::open().await;
        let block = c.request_block();
        c.send(&headers_padded(1, HEAD_ONLY, &block, 8)).await;
        c.expect_headers(1).await;
    }

    #[tokio::test]
    async fn a_headers_frame_with_priority_is_accepted() {
        let mut c = Case::open().await;
        let block = c.request_block();
        c.send(&headers_prioritized(1, HEAD_ONLY, Priority::weight(255), &block))
            .await;
        c.expect_headers(1).await;
    }
}

/// 3.3 PRIORITY.
mod s3_3_priority {
    use super::*;

    /// Sends PRIORITY `p` on `stream`, then a request on stream 1, which
    /// must be answered.
    async fn priority_then_request(stream: u32, p: Priority) {
        let mut c = Case::open().await;
        c.send(&priority(stream, p)).await;
        c.send_request(1, true).await;
        c.expect_headers(1).await;
    }

    #[tokio::test]
    async fn priority_of_weight_1_is_accepted() {
        priority_then_request(1, Priority::weight(0)).await;
    }

    #[tokio::test]
    async fn priority_of_weight_256_is_accepted() {
        priority_then_request(1, Priority::weight(255)).await;
    }

    #[tokio::test]
    async fn priority_with_a_dependency_is_accepted() {
        let p = Priority {
            dependency: 1,
            exclusive: false,
            weight: 0,
        };
        priority_then_request(3, p).await;
    }

    #[tokio::test]
    async fn priority_with_the_exclusive_bit_is_accepted() {
        let p = Priority {
            dependency: 0,
            exclusive: true,
            weight: 0,
        };
        priority_then_request(1, p).await;
    }

    #[tokio::test]
    async fn priority_on_an_idle_stream_then_headers_on_a_lower_stream_is_accepted() {
        priority_then_request(3, Priority::weight(255)).await;
    }
}

/// 3.4 RST_STREAM.
mod s3_4_rst_stream {
    use super::*;

    #[tokio::test]
    async fn rst_stream_is_accepted() {
        let mut c = Case::open().await;
        c.send_request(1, false).await;
        c.send(&rst_stream(1, CANCEL)).await;
        c.send(&ping(*b"reset\0\0\0")).await;
        c.expect_ping_ack_or_close(*b"reset\0\0\0").await;
    }
}

/// 3.5 SETTINGS.
mod s3_5_settings {
    use super::*;

    #[tokio::test]
    async fn settings_of_every_defined_parameter_are_acknowledged() {
        let mut c = Case::open().await;
        c.send(&settings(&[
            (setting::HEADER_TABLE_SIZE, 4_096),
            (setting::ENABLE_PUSH, 1),
            (setting::MAX_CONCURRENT_STREAMS, 100),
            (setting::INITIAL_WINDOW_SIZE, 65_535),
            (setting::MAX_FRAME_SIZE, 16_384),
            (setting::MAX_HEADER_LIST_SIZE, 100),
        ]))
        .await;
        c.expect_settings_ack().await;
    }
}

/// 3.7 PING.
mod s3_7_ping {
    use super::*;

    #[tokio::test]
    async fn ping_is_answered() {
        let mut c = Case::open().await;
        c.send(&ping(*b"h2spec\0\0")).await;
        c.expect_ping_ack(*b"h2spec\0\0").await;
    }
}

/// 3.8 GOAWAY.
mod s3_8_goaway {
    use super::*;

    #[tokio::test]
    async fn goaway_from_the_client_is_accepted() {
        let mut c = Case::open().await;
        c.send(&goaway(0, NO_ERROR, b"h2spec")).await;
        c.send(&ping(*b"h2spec\0\0")).await;
        c.expect_ping_ack_or_close(*b"h2spec\0\0").await;
    }
}

/// 3.9 WINDOW_UPDATE.
mod s3_9_window_update {
    use super::*;

    #[tokio::test]
    async fn window_update_on_the_connection_is_accepted() {
        let mut c = Case::open().await;
        c.send(&window_update(0, 1)).await;
        c.send(&ping(*b"window\0\0")).await;
        c.expect_ping_ack(*b"window\0\0").await;
    }

    #[tokio::test]
    async fn window_update_on_a_stream_is_accepted() {
        let mut c = Case::open().await;
        c.send_request(1, true).await;
        c.send(&window_update(1, 1)).await;
        c.expect_headers(1).await;
    }
}

/// 3.10 CONTINUATION.
mod s3_10_continuation {
    use super::*;

    #[tokio::test]
    async fn a_continuation_frame_is_accepted() {
        let mut c = Case::open().await;
        let block = c.request_block();
        let mut bytes = headers(1, END_STREAM, &block[..5]);
        bytes.extend(continuation(1, true, &block[5..]));
        c.send(&bytes).await;
        c.expect_headers(1).await;
    }

    #[tokio::test]
    async fn multiple_continuation_frames_are_accepted() {
        let mut c = Case::open().await;
        let block = c.request_block();
        let mut bytes = headers(1, END_STREAM, &block[..5]);
        bytes.extend(continuation(1, false, &block[5..10]));
        bytes.extend(continuation(1, true, &block[10..]));
        c.send(&bytes).await;
        c.expect_headers(1).await;
    }
}

/// 4 HTTP Message Exchanges.
mod s4_http_message_exchanges {
    use super::*;

    /// The request with `method` for its `:method`.
    fn with_method(c: &Case, method: &str) -> Vec<u8> {
        let fields: Vec<Field> = c
            .request()
            .into_iter()
            .map(|(n, v)| {
                if n == ":method" {
                    (n, method.to_string())
                } else {
                    (n, v)
                }
            })
            .collect();
        Block::of(&fields).bytes()
    }

    #[tokio::test]
    async fn a_get_request_is_answered() {
        let mut c = Case::open().await;
        let block = with_method(&c, "GET");
        c.send(&headers(1, HEAD_ONLY, &block)).await;
        c.expect_headers(1).await;
    }

    #[tokio::test]
    async fn a_head_request_is_answered() {
        let mut c = Case::open().await;
        let block = with_method(&c, "HEAD");
        c.send(&headers(1, HEAD_ONLY, &block)).await;
        c.expect_headers(1).await;
    }

    #[tokio::test]
    async fn a_post_request_is_answered() {
        let mut c = Case::open().await;
        c.send_call(1, &text("posted")).await;
        let head = c.expect_headers(1).await;
        assert_eq!(head.get(":status"), Some("200"), "{:?}", head.fields);
    }

    #[tokio::test]
    async fn a_post_request_with_trailers_is_answered() {
        let mut c = Case::open().await;
        let block = Block::of(&c.request_with(&[("trailer", "x-test")])).bytes();
        let mut bytes = headers(1, END_HEADERS, &block);
        bytes.extend(data(1, false, &hello()));
        bytes.extend(headers(1, HEAD_ONLY, &Block::new().literal("x-test", "ok").bytes()));
        c.send(&bytes).await;
        c.expect_headers(1).await;
    }
}

/// 5 HPACK: every representation a request may use is accepted.
mod s5_hpack {
    use super::*;

    /// Sends the request with `extra` after its fields, and expects an
    /// answer.
    async fn accepted(extra: impl FnOnce(Block) -> Block) {
        let mut c = Case::open().await;
        let block = extra(Block::of(&c.request()));
        c.send(&headers(1, HEAD_ONLY, &block.bytes())).await;
        c.expect_headers(1).await;
    }

    /// Sends the request after `updates` at the start of the block, and
    /// expects an answer.
    async fn accepted_after(updates: Block) {
        let mut c = Case::open().await;
        let block = updates.raw(&c.request_block());
        c.send(&headers(1, HEAD_ONLY, &block.bytes())).await;
        c.expect_headers(1).await;
    }

    #[tokio::test]
    async fn an_indexed_field_is_accepted() {
        accepted(|b| b.indexed(USER_AGENT)).await;
    }

    #[tokio::test]
    async fn incremental_indexing_with_an_indexed_name_is_accepted() {
        accepted(|b| b.literal_indexed_name(Indexing::Incremental, USER_AGENT, "h2spec", false)).await;
    }

    #[tokio::test]
    async fn incremental_indexing_with_an_indexed_name_and_huffman_coding_is_accepted() {
        accepted(|b| b.literal_indexed_name(Indexing::Incremental, USER_AGENT, "h2spec", true)).await;
    }

    #[tokio::test]
    async fn incremental_indexing_with_a_new_name_is_accepted() {
        accepted(|b| b.literal_new_name(Indexing::Incremental, "x-test", "h2spec", false)).await;
    }

    #[tokio::test]
    async fn incremental_indexing_with_a_new_name_and_huffman_coding_is_accepted() {
        accepted(|b| b.literal_new_name(Indexing::Incremental, "x-test", "h2spec", true)).await;
    }

    #[tokio::test]
    async fn without_indexing_with_an_indexed_name_is_accepted() {
        accepted(|b| b.literal_indexed_name(Indexing::Without, USER_AGENT, "h2spec", false)).await;
    }

    #[tokio::test]
    async fn without_indexing_with_an_indexed_name_and_huffman_coding_is_accepted() {
        accepted(|b| b.literal_indexed_name(Indexing::Without, USER_AGENT, "h2spec", true)).await;
    }

    #[tokio::test]
    async fn without_indexing_with_a_new_name_is_accepted() {
        accepted(|b| b.literal_new_name(Indexing::Without, "x-test", "h2spec", false)).await;
    }

    #[tokio::test]
    async fn without_indexing_with_a_new_name_and_huffman_coding_is_accepted() {
        accepted(|b| b.literal_new_name(Indexing::Without, "x-test", "h2spec", true)).await;
    }

    #[tokio::test]
    async fn never_indexed_with_an_indexed_name_is_accepted() {
        accepted(|b| b.literal_indexed_name(Indexing::Never, USER_AGENT, "h2spec", false)).await;
    }

    #[tokio::test]
    async fn never_indexed_with_an_indexed_name_and_huffman_coding_is_accepted() {
        accepted(|b| b.literal_indexed_name(Indexing::Never, USER_AGENT, "h2spec", true)).await;
    }

    #[tokio::test]
    async fn never_indexed_with_a_new_name_is_accepted() {
        accepted(|b| b.literal_new_name(Indexing::Never, "x-test", "h2spec", false)).await;
    }

    #[tokio::test]
    async fn never_indexed_with_a_new_name_and_huffman_coding_is_accepted() {
        accepted(|b| b.literal_new_name(Indexing::Never, "x-test", "h2spec", true)).await;
    }

    #[tokio::test]
    async fn a_dynamic_table_size_update_is_accepted() {
        accepted_after(Block::new().table_size_update(128)).await;
    }

    #[tokio::test]
    async fn multiple_dynamic_table_size_updates_are_accepted() {
        accepted_after(Block::new().table_size_update(128).table_size_update(4_096)).await;
    }
}
