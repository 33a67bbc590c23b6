//! The HTTP/2 frame layer of Courier's own engine: arbitrary bytes through
//! the frame decoder, and through the reader that joins CONTINUATION frames
//! under small header block caps.
//!
//! The first byte chooses the maximum frame size, the second the header
//! block caps; the rest is what a peer sent. Each is read whole, byte by
//! byte, and in uneven chunks cut by the bytes themselves: every feeding
//! must give the same frames and the same errors, never panic, and every
//! frame returned must have consumed bytes. Every frame decoded encodes to
//! bytes that decode to it again; the reader's frames, written through the
//! gathered write queue (header blocks split again) and read back under the
//! same caps, come out the same.

#![no_main]

use bytes::{Buf, BytesMut};
use courier::__fuzz::http2_frame::{Decoder, Error, Frame, Gather, Reader, encode};
use libfuzzer_sys::fuzz_target;

const MAX_FRAME_SIZES: [u32; 3] = [16_384, 16_390, (1 << 24) - 1];
const BLOCK_SIZES: [usize; 6] = [0, 1, 16, 100, 1000, 65_536];
const BLOCK_FRAMES: [usize; 5] = [1, 2, 3, 8, 64];

/// What a reading gave: each frame or error (a connection error ends it),
/// and, unless it ended so, how many bytes were left unread.
#[derive(Debug, PartialEq)]
struct Outcome {
    items: Vec<Result<Frame, Error>>,
    left: Option<usize>,
}

/// Reads `data`, fed in chunks of `cut(at)` bytes, with `next` taking frames
/// off the buffer.
fn read(
    data: &[u8],
    mut cut: impl FnMut(usize) -> usize,
    mut next: impl FnMut(&mut BytesMut) -> Result<Option<Frame>, Error>,
) -> Outcome {
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    let mut at = 0;
    loop {
        let n = cut(at).max(1).min(data.len() - at);
        buf.extend_from_slice(&data[at..at + n]);
        at += n;
        loop {
            let before = buf.len();
            match next(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(buf.len() < before, "{frame:?} consumed nothing");
                    items.push(Ok(frame));
                }
                Ok(None) => break,
                Err(err) => {
                    items.push(Err(err));
                    if err.is_connection_error() {
                        return Outcome { items, left: None };
                    }
                    assert!(buf.len() < before, "a stream error consumed nothing");
                }
            }
        }
        if at == data.len() {
            return Outcome {
                items,
                left: Some(buf.len()),
            };
        }
    }
}

/// The three feedings of `data`, which must agree.
fn read_three_ways(
    data: &[u8],
    mut next: impl FnMut() -> Box<dyn FnMut(&mut BytesMut) -> Result<Option<Frame>, Error>>,
) -> Outcome {
    let whole = read(data, |_| usize::MAX, next());
    let bytewise = read(data, |_| 1, next());
    let chunked = read(data, |at| data.get(at).map_or(1, |&b| (b % 13) as usize), next());
    assert_eq!(whole, bytewise, "one chunk and byte by byte differ");
    assert_eq!(whole, chunked, "one chunk and uneven chunks differ");
    whole
}

fuzz_target!(|input: &[u8]| {
    let [a, b, data @ ..] = input else { return };
    let max_frame_size = MAX_FRAME_SIZES[*a as usize % MAX_FRAME_SIZES.len()];
    let max_block_size = BLOCK_SIZES[(*b & 0x0f) as usize % BLOCK_SIZES.len()];
    let max_block_frames = BLOCK_FRAMES[(*b >> 4) as usize % BLOCK_FRAMES.len()];

    // The decoder alone.
    let decoded = read_three_ways(data, || {
        let decoder = Decoder::new(max_frame_size);
        Box::new(move |buf| decoder.decode(buf))
    });
    let decoder = Decoder::new(max_frame_size);
    for frame in decoded.items.iter().filter_map(|item| item.as_ref().ok()) {
        let mut wire = BytesMut::new();
        encode(frame, &mut wire);
        let again = decoder.decode(&mut wire);
        assert_eq!(
            again.as_ref(),
            Ok(&Some(frame.clone())),
            "{frame:?} did not survive encoding"
        );
        assert!(wire.is_empty(), "{frame:?} encoded to more than one frame");
    }

    // The reader: header blocks joined, within the caps.
    let new_reader = || Reader::new(max_frame_size, max_block_size, max_block_frames);
    let assembled = read_three_ways(data, || {
        let mut reader = new_reader();
        Box::new(move |buf| reader.read(buf))
    });
    let frames: Vec<Frame> = assembled.items.into_iter().filter_map(Result::ok).collect();
    assert!(
        frames.iter().all(|f| !f.is_continuation()),
        "a CONTINUATION left the reader"
    );

    // Written again through the gathered write queue, taken in steps.
    let mut gather = Gather::default();
    for frame in frames.iter().cloned() {
        gather.push(frame, max_frame_size);
    }
    let step = 1 + (*a as usize >> 2);
    let mut wire = BytesMut::new();
    while gather.has_remaining() {
        let mut slices = [std::io::IoSlice::new(&[]); 3];
        let n = gather.chunks_vectored(&mut slices);
        assert!(n > 0, "a non-empty queue gave no chunk");
        let mut taken = 0;
        for slice in &slices[..n] {
            let part = slice.len().min(step - taken);
            wire.extend_from_slice(&slice[..part]);
            taken += part;
            if taken == step {
                break;
            }
        }
        gather.advance(taken);
    }
    let mut reader = new_reader();
    let mut again = Vec::new();
    loop {
        match reader.read(&mut wire) {
            Ok(Some(frame)) => again.push(frame),
            Ok(None) => break,
            Err(err) => panic!("our own frames were refused: {err:?}"),
        }
    }
    assert!(wire.is_empty(), "{} bytes of our own frames unread", wire.len());
    assert_eq!(again, frames, "frames changed through the write queue");
});
