//! Frames queued for one gathered write: small frames and DATA headers are
//! copied into one staging buffer, large DATA payloads stay the caller's
//! `Bytes`, and the queue reads as `[frames + header, payload, frames +
//! header, payload, ...]` through `bytes::Buf`, whose `chunks_vectored`
//! gives the iovecs of one `writev`.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::encode::{encode, encode_data_header, encode_headers, encode_push_promise};
use super::frames::{Data, Frame, Headers, PushPromise};

/// DATA payloads up to this size are copied into the staging buffer: an
/// iovec of its own costs more than copying a few hundred bytes.
pub(crate) const INLINE_DATA_MAX: usize = 256;

/// A write queue of frames, read out with [`Buf`] (for example by
/// `tokio_util::io::poll_write_buf`, which writes with `writev`).
///
/// The staging buffer is reused: its written part is split off as a chunk
/// when a payload goes in after it, and its allocation is reclaimed once
/// those chunks have been written and dropped.
#[derive(Debug, Default)]
pub(crate) struct GatherBuf {
    /// Chunks in write order, all before `staging`.
    chunks: VecDeque<Bytes>,
    /// The bytes of `chunks`.
    chunked_len: usize,
    /// Frames written after the last chunk.
    staging: BytesMut,
}

impl GatherBuf {
    /// An empty queue.
    pub(crate) fn new() -> GatherBuf {
        GatherBuf::default()
    }

    /// Queues a DATA frame. A payload above [`INLINE_DATA_MAX`] is queued
    /// as its own chunk, uncopied; padding goes in the staging buffer after
    /// it.
    pub(crate) fn push_data(&mut self, data: Data) {
        encode_data_header(
            data.stream_id,
            data.payload.len(),
            data.end_stream,
            data.padding,
            &mut self.staging,
        );
        self.push_payload(data.payload);
        if let Some(n) = data.padding {
            self.staging.put_bytes(0, usize::from(n));
        }
    }

    /// Queues a frame: DATA as by [`push_data`](Self::push_data); any other
    /// frame is copied (see [`encode`] for what must fit in a frame).
    pub(crate) fn push(&mut self, frame: Frame) {
        match frame {
            Frame::Data(data) => self.push_data(data),
            other => encode(&other, &mut self.staging),
        }
    }

    /// Queues bytes that are not a frame (the connection preface).
    pub(crate) fn push_raw(&mut self, bytes: &[u8]) {
        self.staging.extend_from_slice(bytes);
    }

    /// Queues a header block as HEADERS and CONTINUATION frames, split at
    /// the peer's `max_frame_size` (see [`encode_headers`]).
    pub(crate) fn push_headers(&mut self, headers: &Headers, max_frame_size: u32) {
        encode_headers(headers, max_frame_size, &mut self.staging);
    }

    /// Queues a header block as PUSH_PROMISE and CONTINUATION frames.
    pub(crate) fn push_push_promise(&mut self, promise: &PushPromise, max_frame_size: u32) {
        encode_push_promise(promise, max_frame_size, &mut self.staging);
    }

    /// Puts a payload after what is staged: copied if small, else as a chunk
    /// after the staged bytes, cut off as a chunk of their own.
    fn push_payload(&mut self, payload: Bytes) {
        if payload.len() <= INLINE_DATA_MAX {
            self.staging.extend_from_slice(&payload);
            return;
        }
        let staged = self.staging.split().freeze();
        self.push_chunk(staged);
        self.push_chunk(payload);
    }

    fn push_chunk(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.chunked_len += chunk.len();
            self.chunks.push_back(chunk);
        }
    }

    /// The staging buffer's capacity plus the chunk queue's, in bytes.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.staging.capacity() + self.chunks.capacity() * std::mem::size_of::<Bytes>()
    }

    /// Gives back the staging buffer's allocation and the chunk queue's,
    /// if everything queued has been written: for a connection gone idle.
    pub(crate) fn release_if_empty(&mut self) {
        if !self.chunks.is_empty() || !self.staging.is_empty() {
            return;
        }
        if self.staging.capacity() != 0 {
            self.staging = BytesMut::new();
        }
        if self.chunks.capacity() != 0 {
            self.chunks = VecDeque::new();
        }
    }

    /// How many chunks a full `writev` of the queue takes.
    pub(crate) fn chunk_count(&self) -> usize {
        self.chunks.len() + usize::from(!self.staging.is_empty())
    }
}

impl Buf for GatherBuf {
    fn remaining(&self) -> usize {
        self.chunked_len + self.staging.len()
    }

    fn chunk(&self) -> &[u8] {
        match self.chunks.front() {
            Some(chunk) => chunk,
            None => &self.staging,
        }
    }

    fn advance(&mut self, mut cnt: usize) {
        while cnt > 0 {
            let Some(front) = self.chunks.front_mut() else {
                assert!(cnt <= self.staging.len(), "advanced past the end of a GatherBuf");
                self.staging.advance(cnt);
                return;
            };
            let step = cnt.min(front.len());
            front.advance(step);
            self.chunked_len -= step;
            cnt -= step;
            if front.is_empty() {
                self.chunks.pop_front();
            }
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let staged = (!self.staging.is_empty()).then_some(&self.staging[..]);
        let all = self.chunks.iter().map(|c| &c[..]).chain(staged);
        let mut n = 0;
        for (slot, chunk) in dst.iter_mut().zip(all) {
            *slot = IoSlice::new(chunk);
            n += 1;
        }
        n
    }
}
