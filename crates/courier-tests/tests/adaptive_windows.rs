//! Receive windows sized by the bandwidth-delay product, seen from a raw
//! HTTP/2 client over a real loopback socket. A Courier server with its
//! default windows samples the link when DATA arrives: it sends a PING and
//! counts the DATA that comes before the PING's ACK. A sample that fills
//! most of the stream window doubles: the server announces twice the
//! sample in SETTINGS_INITIAL_WINDOW_SIZE (and, once that passes the
//! connection window, raises that with a WINDOW_UPDATE). A server whose windows the application set
//! keeps them at those sizes.
//!
//! The client decides what one round trip carries: it holds the server's
//! PING unanswered while it sends, so the sample is exactly what it sent.
//! Each check waits for the ACK of a PING of the client's own, which the
//! server answers after everything it sent in reply to the frames before
//! it, so nothing here waits on time or measures it.

use std::net::SocketAddr;

use courier_tests::raw_h2::hpack::Block;
use courier_tests::raw_h2::*;
use courier_tests::{EchoRequest, echo_with, start_server, start_with_counters};
use prost::Message as _;

/// A client-streaming method: the handler reads every message and answers
/// with their count in the `x-count` trailer.
const CLIENT_STREAM: &str = "/courier.test.Echo/ClientStream";

/// The one stream each test opens.
const STREAM: u32 = 1;

/// Each DATA frame carries one whole request message of this many octets,
/// prefix included: the largest frame a server accepts by default.
const FRAME: usize = DEFAULT_MAX_FRAME_SIZE;

/// Every window before SETTINGS or WINDOW_UPDATE change it (RFC 9113
/// §6.9.2).
const DEFAULT_WINDOW: u32 = 65_535;

/// The client's own PING, answered after everything sent before it.
const SYNC: [u8; 8] = *b"in sync\0";

/// A raw client that keeps account of the flow-control windows the server
/// gives it, answers the server's SETTINGS, and holds the server's PINGs
/// unanswered for the test to answer.
struct Peer {
    conn: RawConn,
    addr: SocketAddr,
    /// The server's SETTINGS_INITIAL_WINDOW_SIZE in force.
    stream_window: u32,
    /// Every SETTINGS_INITIAL_WINDOW_SIZE the server announced, in order.
    announced: Vec<u32>,
    /// What the client may still send on the connection.
    conn_credit: i64,
    /// What the client may still send on the stream, once it is open.
    stream_credit: i64,
    /// What the client could still send on the stream had its window kept
    /// the size it opened with: the stream's WINDOW_UPDATEs count, changes
    /// of SETTINGS_INITIAL_WINDOW_SIZE do not.
    stream_credit_unchanged: i64,
    /// The most `conn_credit` and `stream_credit` have been.
    most_conn_credit: i64,
    most_stream_credit: i64,
    open: bool,
    /// PINGs from the server, unanswered.
    pings: Vec<[u8; 8]>,
    /// Request messages sent.
    messages: usize,
}

impl Peer {
    /// Connects and completes the handshake: the server's SETTINGS, its
    /// connection window and its ACK of the client's (empty) SETTINGS.
    async fn connect(addr: SocketAddr) -> Peer {
        let mut conn = RawConn::connect(addr).await;
        conn.auto_reply = false;
        let mut greeting = PREFACE.to_vec();
        greeting.extend(settings(&[]));
        conn.send(&greeting).await;
        let initial = i64::from(DEFAULT_WINDOW);
        let mut peer = Peer {
            conn,
            addr,
            stream_window: DEFAULT_WINDOW,
            announced: Vec::new(),
            conn_credit: initial,
            stream_credit: 0,
            stream_credit_unchanged: 0,
            most_conn_credit: initial,
            most_stream_credit: 0,
            open: false,
            pings: Vec::new(),
            messages: 0,
        };
        let (mut settings, mut acked) = (false, false);
        while !(settings && acked) {
            let frame = peer.next_frame("the server's SETTINGS and its ACK of ours").await;
            if frame.kind == kind::SETTINGS {
                if frame.has(flag::ACK) {
                    acked = true;
                } else {
                    settings = true;
                }
            }
        }
        peer
    }

    /// The next frame, taken into account, while waiting for `expected`;
    /// a GOAWAY, a reset, the connection closing or nothing coming within
    /// the raw client's limit fails the test.
    async fn next_frame(&mut self, expected: &str) -> Frame {
        let deadline = tokio::time::Instant::now() + self.conn.limit;
        let frame = match self.conn.next_event_by(deadline).await {
            Some(Event::Frame(frame)) => frame,
            Some(Event::Closed(why)) => {
                panic!(
                    "expected {expected}, but {why}; the server sent: {}",
                    self.conn.transcript()
                )
            }
            None => panic!(
                "expected {expected}, but nothing came within {:?}; the server sent: {}",
                self.conn.limit,
                self.conn.transcript()
            ),
        };
        match frame.kind {
            kind::GOAWAY | kind::RST_STREAM => {
                panic!(
                    "expected {expected}, but the server sent {}; all it sent: {}",
                    frame.describe(),
                    self.conn.transcript()
                )
            }
            kind::SETTINGS if !frame.has(flag::ACK) => {
                for p in frame.payload.chunks_exact(6) {
                    let id = u16::from_be_bytes([p[0], p[1]]);
                    let value = u32::from_be_bytes([p[2], p[3], p[4], p[5]]);
                    if id == setting::INITIAL_WINDOW_SIZE {
                        // RFC 9113 §6.9.2: open streams' windows move by the
                        // difference.
                        if self.open {
                            self.stream_credit += i64::from(value) - i64::from(self.stream_window);
                        }
                        self.stream_window = value;
                        self.announced.push(value);
                    }
                }
                self.conn.send(&settings_ack()).await;
            }
            kind::WINDOW_UPDATE => {
                let octets: [u8; 4] = frame.payload[..4].try_into().unwrap();
                let increment = i64::from(u32::from_be_bytes(octets) & MAX_WINDOW);
                if frame.stream == 0 {
                    self.conn_credit += increment;
                } else if frame.stream == STREAM {
                    self.stream_credit += increment;
                    self.stream_credit_unchanged += increment;
                }
            }
            kind::PING if !frame.has(flag::ACK) => {
                self.pings.push(frame.payload.as_slice().try_into().unwrap());
            }
            _ => {}
        }
        self.most_conn_credit = self.most_conn_credit.max(self.conn_credit);
        self.most_stream_credit = self.most_stream_credit.max(self.stream_credit);
        frame
    }

    /// Opens the stream with the headers of a client-streaming call.
    async fn open_call(&mut self) {
        let fields = [
            (":method", "POST".to_string()),
            (":scheme", "http".to_string()),
            (":path", CLIENT_STREAM.to_string()),
            (":authority", self.addr.to_string()),
            ("content-type", "application/grpc".to_string()),
            ("te", "trailers".to_string()),
        ];
        let block = Block::of(&fields).bytes();
        self.conn.send(&headers(STREAM, flag::END_HEADERS, &block)).await;
        self.open = true;
        self.stream_credit = self.stream_window.into();
        self.stream_credit_unchanged = self.stream_credit;
        self.most_stream_credit = self.most_stream_credit.max(self.stream_credit);
    }

    /// How many whole-message frames the windows allow now.
    fn sendable(&self) -> usize {
        (self.stream_credit.min(self.conn_credit).max(0) as usize) / FRAME
    }

    /// Sends `count` messages, one DATA frame each, in one write, within
    /// the windows.
    async fn send_messages(&mut self, count: usize) {
        assert!(
            count <= self.sendable(),
            "{count} frames of {FRAME} octets do not fit the windows (stream {}, connection {})",
            self.stream_credit,
            self.conn_credit
        );
        let frame = data(STREAM, false, &message());
        let mut bytes = Vec::with_capacity(count * frame.len());
        for _ in 0..count {
            bytes.extend_from_slice(&frame);
        }
        self.conn.send(&bytes).await;
        let sent = (count * FRAME) as i64;
        self.conn_credit -= sent;
        self.stream_credit -= sent;
        self.stream_credit_unchanged -= sent;
        self.messages += count;
    }

    /// The server's oldest unanswered PING: until its ACK, the server
    /// counts the DATA that arrives.
    async fn next_ping(&mut self) -> [u8; 8] {
        while self.pings.is_empty() {
            self.next_frame("a PING from the server, sampling the round trip").await;
        }
        self.pings.remove(0)
    }

    /// Sends a PING and reads until its ACK: by then the server has sent
    /// everything it answered the frames before it with.
    async fn sync(&mut self) {
        self.conn.send(&ping(SYNC)).await;
        loop {
            let frame = self.next_frame("the ACK of the client's PING").await;
            if frame.kind == kind::PING && frame.has(flag::ACK) && frame.payload == SYNC {
                return;
            }
        }
    }

    /// Ends the stream and checks that the call succeeded having read every
    /// message sent.
    async fn finish_call(&mut self) {
        self.conn.send(&data(STREAM, true, &[])).await;
        let trailers = loop {
            let frame = self.next_frame("the call's trailers").await;
            if frame.ends_stream(STREAM) {
                break frame.block.expect("the server ends the call with trailers");
            }
        };
        assert_eq!(trailers.get("grpc-status"), Some("0"), "{:?}", trailers.fields);
        let count = self.messages.to_string();
        assert_eq!(
            trailers.get("x-count"),
            Some(count.as_str()),
            "the handler read every message sent"
        );
    }
}

/// A request message of exactly [`FRAME`] octets, length prefix included.
fn message() -> Vec<u8> {
    // Five octets of prefix; the payload field's tag and two-octet length.
    let request = EchoRequest {
        payload: vec![b'x'; FRAME - 5 - 3],
        ..Default::default()
    };
    let body = request.encode_to_vec();
    let mut out = vec![0];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    assert_eq!(out.len(), FRAME);
    out
}

#[tokio::test]
async fn a_round_trip_that_fills_the_stream_window_doubles_the_window() {
    let server = start_server().await;
    let mut peer = Peer::connect(server.addr).await;
    let initial = peer.stream_window;
    assert_eq!(peer.announced, [initial]);
    peer.open_call().await;

    // The first DATA starts a sample: the server sends a PING.
    peer.send_messages(1).await;
    let sampling = peer.next_ping().await;
    // The rest of the stream's window goes out before the ACK, so the
    // sample is the whole window.
    let frames = initial as usize / FRAME;
    peer.send_messages(frames - 1).await;
    let sample = (frames * FRAME) as u32;
    assert!(
        u64::from(sample) * 3 >= u64::from(initial) * 2,
        "the sample must fill most of the window for it to grow"
    );
    peer.conn.send(&ping_ack(sampling)).await;
    peer.sync().await;
    assert_eq!(
        peer.announced,
        [initial, 2 * sample],
        "after the ACK, the stream window is twice the sample; the server sent: {}",
        peer.conn.transcript()
    );

    // The server honours the window it announced: the client sends past
    // what the stream's first window (and its WINDOW_UPDATEs) allowed,
    // and the call reads it all.
    let frames = peer.sendable();
    peer.send_messages(frames).await;
    assert!(
        peer.stream_credit_unchanged < 0,
        "{} octets past the first window",
        -peer.stream_credit_unchanged
    );
    peer.finish_call().await;
}

#[tokio::test]
async fn windows_the_application_sets_do_not_grow_when_a_round_trip_fills_them() {
    // Default sizes, set explicitly: that alone turns the estimation off.
    const STREAM_WINDOW: u32 = 1 << 20;
    const CONN_WINDOW: u32 = 4 << 20;
    let server = start_with_counters(|b, counters| {
        b.http2_windows(STREAM_WINDOW, CONN_WINDOW)
            .expect("windows HTTP/2 allows")
            .add_service(echo_with(counters))
    })
    .await;
    let mut peer = Peer::connect(server.addr).await;
    assert_eq!(peer.announced, [STREAM_WINDOW]);
    assert_eq!(peer.conn_credit, i64::from(CONN_WINDOW));
    peer.open_call().await;

    // What made the adaptive server sample and grow: the whole stream
    // window at once.
    peer.send_messages(STREAM_WINDOW as usize / FRAME).await;
    peer.sync().await;
    assert_eq!(peer.pings, Vec::<[u8; 8]>::new(), "no PING samples the round trip");
    assert_eq!(peer.announced, [STREAM_WINDOW], "no SETTINGS change the window");

    let frames = peer.sendable();
    peer.send_messages(frames).await;
    peer.finish_call().await;
    assert!(peer.pings.is_empty(), "no PING samples the round trip");
    assert_eq!(peer.announced, [STREAM_WINDOW], "no SETTINGS change the window");
    assert!(
        peer.most_stream_credit <= i64::from(STREAM_WINDOW),
        "WINDOW_UPDATEs gave back only what was sent: the stream's credit reached {}",
        peer.most_stream_credit
    );
    assert!(
        peer.most_conn_credit <= i64::from(CONN_WINDOW),
        "WINDOW_UPDATEs gave back only what was sent: the connection's credit reached {}",
        peer.most_conn_credit
    );
}
