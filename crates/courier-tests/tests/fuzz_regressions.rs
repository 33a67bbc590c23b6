//! Regression tests, end to end, for bugs the fuzz targets in `fuzz/` found
//! (see docs/FUZZING.md). The unit tests next to each fix cover the same
//! bugs in isolation.

use courier::Channel;
use courier_tests::*;

/// A receive limit of `usize::MAX` (no limit) overflowed in decompression:
/// every compressed message arrived empty (or the receiver panicked, in
/// debug builds).
#[tokio::test]
async fn compressed_messages_with_no_receive_limit() {
    for enc in courier::Encoding::ALL {
        let server = start_with(|b| {
            b.add_service(EchoServer::new(EchoService::default()))
                .max_decoding_message_size(usize::MAX)
                .send_compressed(enc)
        })
        .await;
        let channel = Channel::builder(server.url())
            .max_decoding_message_size(usize::MAX)
            .send_compressed(enc)
            .connect()
            .await
            .unwrap();
        let client = EchoClient::new(channel);
        let big = EchoRequest {
            payload: vec![b'z'; 100_000],
            ..text("no limit")
        };
        let reply = client.unary(big).await.unwrap();
        assert_eq!(reply.get_ref().text, "no limit", "{enc:?}");
        assert_eq!(reply.get_ref().payload.len(), 100_000, "{enc:?}");
    }
}
