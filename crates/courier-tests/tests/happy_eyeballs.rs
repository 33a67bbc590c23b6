//! pick_first's Happy Eyeballs (gRFC A61): when the first address neither
//! connects nor fails, the next is tried after the connection-attempt
//! delay, without waiting for the first attempt's timeout.

use std::time::Duration;

use courier::Channel;
use courier::client::ConnectivityState;
use courier::client::balancer::PickFirst;
use courier_tests::{EchoClient, silent_listener, start_server, text};

/// Longest any step may take before the test calls it a hang.
const LIMIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_silent_first_address_does_not_hold_up_the_second() {
    let (silent, _silent_task) = silent_listener().await;
    let server = start_server().await;
    // The first attempt would wait a minute for the silent server's
    // HTTP/2 SETTINGS; Happy Eyeballs starts the second after 250 ms.
    let channel = Channel::builder(format!("ipv4:{silent},{}", server.addr))
        .load_balancing(PickFirst::new())
        .connect_timeout(Duration::from_secs(60))
        .connect_lazy()
        .unwrap();
    let client = EchoClient::new(channel.clone());
    let reply = tokio::time::timeout(LIMIT, client.unary(text("hi")))
        .await
        .expect("the call waited for the silent address's attempt to time out")
        .unwrap();
    assert_eq!(reply.get_ref().text, "hi");
    assert_eq!(channel.state(false), ConnectivityState::Ready);
    assert_eq!(server.counters.started.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_refused_first_address_moves_on_at_once_and_the_channel_sticks_to_the_second() {
    let refusing = courier_tests::RefusingAddr::new();
    let server = start_server().await;
    let channel = Channel::builder(format!("ipv4:{},{}", refusing.addr, server.addr))
        .connect_lazy()
        .unwrap();
    let client = EchoClient::new(channel);
    for i in 0..20 {
        let reply = tokio::time::timeout(LIMIT, client.unary(text(&i.to_string())))
            .await
            .expect("no hang")
            .unwrap();
        assert_eq!(reply.get_ref().text, i.to_string());
    }
    assert_eq!(server.counters.started.load(std::sync::atomic::Ordering::SeqCst), 20);
}
