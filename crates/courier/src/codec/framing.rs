//! gRPC message framing: a compressed flag, a four-byte big-endian length and
//! the message, in DATA frames whose boundaries mean nothing.

use std::collections::VecDeque;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::Encoder;
use crate::compression::{self, Encoding, MessageCompression};
use crate::stats::Tally;
use crate::status::Status;

const HEADER_LEN: usize = 5;

/// Encodes messages, each with its prefix, into one reused buffer. Several
/// messages may be written before [`FrameWriter::take`], so they leave in one
/// DATA frame.
pub(crate) struct FrameWriter<E> {
    encoder: E,
    buf: BytesMut,
    scratch: BytesMut,
    compression: Option<Encoding>,
    switch: Option<MessageCompression>,
    /// The size of the last batch taken, which the next one reserves.
    batch_hint: usize,
    max_size: usize,
    /// Where each message is counted, when a stats handler follows the call.
    tally: Option<Tally>,
}

/// The most a batch reserves up front, from the size of the one before.
const MAX_BATCH_HINT: usize = 128 * 1024;

/// Below this size a message is never compressed: the prefix and the
/// compressor's own header cost more than they save.
const MIN_COMPRESS_LEN: usize = 32;

impl<E: Encoder> FrameWriter<E> {
    pub(crate) fn new(encoder: E, compression: Option<Encoding>, max_size: usize) -> Self {
        FrameWriter {
            encoder,
            buf: BytesMut::new(),
            scratch: BytesMut::new(),
            compression,
            switch: None,
            batch_hint: 0,
            max_size,
            tally: None,
        }
    }

    /// The call's encoding, if messages may be compressed.
    pub(crate) fn compression(&self) -> Option<Encoding> {
        self.compression
    }

    /// Changes the call's encoding, before the first message is written.
    pub(crate) fn set_compression(&mut self, compression: Option<Encoding>) {
        self.compression = compression;
    }

    /// Lets `switch` turn compression on and off message by message.
    pub(crate) fn set_switch(&mut self, switch: Option<MessageCompression>) {
        self.switch = switch;
    }

    /// Counts each message written in `tally`.
    #[inline]
    pub(crate) fn set_tally(&mut self, tally: Option<Tally>) {
        self.tally = tally;
    }

    /// Appends one framed message. `compress` chooses compression for this
    /// message; it only takes effect with an encoding negotiated for the call.
    pub(crate) fn write(&mut self, item: E::Item, compress: bool) -> Result<(), Status> {
        let start = self.buf.len();
        let need = HEADER_LEN + self.encoder.size_hint(&item);
        // A batch starts with room for as much as the last one held, so that
        // it does not grow (reallocate and copy) message by message.
        self.buf
            .reserve(if start == 0 { need.max(self.batch_hint) } else { need });
        self.buf.put_bytes(0, HEADER_LEN);
        if let Err(e) = self.encoder.encode(item, &mut self.buf) {
            self.buf.truncate(start);
            return Err(e);
        }
        let mut len = self.buf.len() - start - HEADER_LEN;
        let mut flag = 0u8;
        let compress = compress && len >= MIN_COMPRESS_LEN && self.switch.as_ref().is_none_or(|s| s.is_on());
        if let (Some(enc), true) = (self.compression, compress) {
            self.scratch.clear();
            compression::compress(enc, &self.buf[start + HEADER_LEN..], &mut self.scratch)
                .map_err(|e| Status::internal(format!("failed to compress message: {e}")))?;
            // Send compressed only when that is smaller.
            if self.scratch.len() < len {
                self.buf.truncate(start + HEADER_LEN);
                self.buf.extend_from_slice(&self.scratch);
                len = self.scratch.len();
                flag = 1;
            }
        }
        if len > self.max_size {
            self.buf.truncate(start);
            return Err(Status::resource_exhausted(format!(
                "message of {len} bytes is larger than the send limit of {} bytes",
                self.max_size
            )));
        }
        let Ok(len32) = u32::try_from(len) else {
            self.buf.truncate(start);
            return Err(Status::resource_exhausted(format!(
                "message of {len} bytes is too large for gRPC"
            )));
        };
        self.buf[start] = flag;
        self.buf[start + 1..start + HEADER_LEN].copy_from_slice(&len32.to_be_bytes());
        if let Some(tally) = &self.tally {
            tally.sent(len);
        }
        tracing::debug!(size = len, compressed = flag == 1, "message sent");
        Ok(())
    }

    /// Bytes written so far and not yet taken.
    pub(crate) fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Takes the framed messages written so far. The buffer's spare capacity
    /// is kept for the next messages.
    pub(crate) fn take(&mut self) -> Bytes {
        let taken = self.buf.split().freeze();
        self.batch_hint = taken.len().min(MAX_BATCH_HINT);
        taken
    }
}

/// Splits received bytes into messages. Received chunks are queued as they
/// are; a message that lies inside one chunk is sliced out of it without a
/// copy, and only a message that spans chunks is gathered into a buffer of
/// its own, so one unaligned message does not make the rest copies.
pub(crate) struct FrameReader {
    /// Received bytes not yet returned, oldest first; none is empty.
    chunks: VecDeque<Bytes>,
    /// The total length of `chunks`.
    buffered: usize,
    /// The prefix of the message being received, once read: whether it is
    /// compressed and its length.
    header: Option<(bool, usize)>,
    max_size: usize,
    encoding: Option<Encoding>,
    /// Whether the last message returned was compressed on the wire.
    last_compressed: bool,
    /// Where each message is counted, when a stats handler follows the call.
    tally: Option<Tally>,
}

impl FrameReader {
    pub(crate) fn new(max_size: usize, encoding: Option<Encoding>) -> Self {
        FrameReader {
            chunks: VecDeque::new(),
            buffered: 0,
            header: None,
            max_size,
            encoding,
            last_compressed: false,
            tally: None,
        }
    }

    /// Adds a received chunk.
    pub(crate) fn push(&mut self, data: Bytes) {
        if !data.is_empty() {
            self.buffered += data.len();
            self.chunks.push_back(data);
        }
    }

    /// Counts each message read in `tally`.
    #[inline]
    pub(crate) fn set_tally(&mut self, tally: Option<Tally>) {
        self.tally = tally;
    }

    /// Sets the encoding declared by the peer's `grpc-encoding`.
    pub(crate) fn set_encoding(&mut self, encoding: Option<Encoding>) {
        self.encoding = encoding;
    }

    /// Whether the last message returned was compressed on the wire.
    pub(crate) fn last_compressed(&self) -> bool {
        self.last_compressed
    }

    /// Checks a prefix, returning whether the message is compressed and its
    /// length.
    fn check_header(&self, header: &[u8; HEADER_LEN]) -> Result<(bool, usize), Status> {
        let flag = header[0];
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let compressed = match flag {
            0 => false,
            1 => true,
            other => {
                return Err(Status::internal(format!(
                    "malformed message prefix: compressed flag is {other}, must be 0 or 1"
                )));
            }
        };
        if compressed && self.encoding.is_none() {
            return Err(Status::internal(
                "received a compressed message but the call declared no grpc-encoding",
            ));
        }
        if len > self.max_size {
            return Err(Status::resource_exhausted(format!(
                "received message of {len} bytes is larger than the limit of {} bytes",
                self.max_size
            )));
        }
        Ok((compressed, len))
    }

    /// Takes the next `len` buffered bytes: a slice of the oldest chunk when
    /// it holds them all, else a copy gathered from as many chunks as needed.
    /// The caller has checked that `len` bytes are buffered.
    fn take(&mut self, len: usize) -> Bytes {
        self.buffered -= len;
        if let Some(front) = self.chunks.front_mut()
            && front.len() >= len
        {
            let taken = front.split_to(len);
            if front.is_empty() {
                self.chunks.pop_front();
            }
            return taken;
        }
        let mut gathered = BytesMut::with_capacity(len);
        while gathered.len() < len {
            let Some(front) = self.chunks.front_mut() else { break };
            let n = front.len().min(len - gathered.len());
            gathered.extend_from_slice(&front[..n]);
            front.advance(n);
            if front.is_empty() {
                self.chunks.pop_front();
            }
        }
        gathered.freeze()
    }

    /// Copies out and consumes the next message prefix. The caller has
    /// checked that it is buffered.
    fn read_prefix(&mut self, prefix: &mut [u8; HEADER_LEN]) {
        self.buffered -= HEADER_LEN;
        let mut filled = 0;
        while filled < HEADER_LEN {
            let Some(front) = self.chunks.front_mut() else { break };
            let n = front.len().min(HEADER_LEN - filled);
            prefix[filled..filled + n].copy_from_slice(&front[..n]);
            front.advance(n);
            filled += n;
            if front.is_empty() {
                self.chunks.pop_front();
            }
        }
    }

    /// The next whole message, if one has arrived.
    pub(crate) fn next(&mut self) -> Result<Option<Bytes>, Status> {
        let (compressed, len) = match self.header {
            Some(header) => header,
            None => {
                if self.buffered < HEADER_LEN {
                    return Ok(None);
                }
                let mut prefix = [0u8; HEADER_LEN];
                self.read_prefix(&mut prefix);
                let header = self.check_header(&prefix)?;
                self.header = Some(header);
                header
            }
        };
        if self.buffered < len {
            return Ok(None);
        }
        self.header = None;
        let frame = self.take(len);
        self.last_compressed = compressed;
        if let Some(tally) = &self.tally {
            tally.received(len);
        }
        tracing::debug!(size = len, compressed, "message received");
        match (compressed, self.encoding) {
            (true, Some(enc)) => compression::decompress(enc, &frame, self.max_size).map(Some),
            _ => Ok(Some(frame)),
        }
    }

    /// The received bytes held and not yet returned as messages, including
    /// a prefix already read.
    pub(crate) fn held(&self) -> usize {
        self.buffered + if self.header.is_some() { HEADER_LEN } else { 0 }
    }

    /// Checks that the stream did not end inside a message.
    pub(crate) fn finish(&self) -> Result<(), Status> {
        let left = self.held();
        if left == 0 {
            Ok(())
        } else {
            Err(Status::internal(format!(
                "stream ended inside a message: {left} bytes of an incomplete message"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Code;
    use crate::codec::{Codec, ProstCodec};

    fn frames(msgs: &[&[u8]]) -> Bytes {
        let mut w = FrameWriter::new(ProstCodec::<Vec<u8>, Vec<u8>>::new().encoder(), None, usize::MAX);
        for m in msgs {
            w.write(m.to_vec(), false).unwrap();
        }
        w.take()
    }

    #[test]
    fn splits_across_and_within_chunks() {
        let data = frames(&[b"one", b"", b"three"]);
        // Every split point, byte by byte and all at once.
        for cut in 0..data.len() {
            let mut r = FrameReader::new(1024, None);
            r.push(data.slice(..cut));
            r.push(data.slice(cut..));
            let mut got = Vec::new();
            while let Some(m) = r.next().unwrap() {
                got.push(m);
            }
            assert_eq!(got.len(), 3, "cut {cut}");
            r.finish().unwrap();
        }
    }

    #[test]
    fn rejects_bad_frames() {
        let mut r = FrameReader::new(4, None);
        r.push(Bytes::from_static(&[2, 0, 0, 0, 0]));
        assert_eq!(r.next().unwrap_err().code(), Code::Internal);
        let mut r = FrameReader::new(4, None);
        r.push(Bytes::from_static(&[1, 0, 0, 0, 1, 0]));
        assert_eq!(r.next().unwrap_err().code(), Code::Internal);
        let mut r = FrameReader::new(4, None);
        r.push(Bytes::from_static(&[0, 0, 0, 0, 9]));
        assert_eq!(r.next().unwrap_err().code(), Code::ResourceExhausted);
        let mut r = FrameReader::new(4, None);
        r.push(Bytes::from_static(&[0, 0, 0, 0, 3, 1]));
        assert!(r.next().unwrap().is_none());
        assert_eq!(r.finish().unwrap_err().code(), Code::Internal);
    }

    #[cfg(feature = "gzip")]
    #[test]
    fn compresses_only_when_smaller() {
        let codec = || ProstCodec::<Vec<u8>, Vec<u8>>::new().encoder();
        let mut w = FrameWriter::new(codec(), Some(Encoding::Gzip), usize::MAX);
        w.write(vec![7u8; 4096], true).unwrap();
        let out = w.take();
        assert_eq!(out[0], 1);
        let mut r = FrameReader::new(1 << 20, Some(Encoding::Gzip));
        r.push(out);
        let m = r.next().unwrap().unwrap();
        assert!(r.last_compressed());
        // prost encodes Vec<u8> as raw bytes.
        assert_eq!(m.len(), 4096 + 3);
        // Random-looking small data stays uncompressed.
        w.write((0..40u8).collect(), true).unwrap();
        assert_eq!(w.take()[0], 0);
    }

    #[test]
    fn messages_inside_a_chunk_are_not_copied_after_one_that_spans() {
        // Three 10-byte messages framed back to back (45 bytes), cut so that
        // the second spans the cut and the third lies inside the second chunk.
        let mut wire = Vec::new();
        for fill in [1u8, 2, 3] {
            wire.push(0);
            wire.extend_from_slice(&10u32.to_be_bytes());
            wire.extend_from_slice(&[fill; 10]);
        }
        let first = Bytes::copy_from_slice(&wire[..20]);
        let second = Bytes::copy_from_slice(&wire[20..]);
        let second_range = second.as_ptr() as usize..second.as_ptr() as usize + second.len();
        let mut reader = FrameReader::new(1024, None);
        reader.push(first);
        assert_eq!(reader.next().unwrap().unwrap(), Bytes::from_static(&[1; 10]));
        assert_eq!(reader.next().unwrap(), None);
        reader.push(second);
        assert_eq!(reader.next().unwrap().unwrap(), Bytes::from_static(&[2; 10]));
        let third = reader.next().unwrap().unwrap();
        assert_eq!(third, Bytes::from_static(&[3; 10]));
        assert!(
            second_range.contains(&(third.as_ptr() as usize)),
            "the third message is a slice of the chunk it arrived in"
        );
        assert_eq!(reader.next().unwrap(), None);
        reader.finish().unwrap();
    }
}
