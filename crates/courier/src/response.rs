//! Responses: a message (or a stream of them) with header and trailer
//! metadata.

use crate::compression::{Encoding, MessageCompression};
use crate::extensions::Extensions;
use crate::metadata::Metadata;

/// A gRPC response: a message, or a stream of messages, with metadata.
///
/// A server handler sets the headers in [`Response::metadata_mut`] and the
/// trailers sent with the final OK status in [`Response::trailers_mut`]. A
/// client reads both; for a streamed response the trailers are on the
/// [`Streaming`](crate::Streaming) once it ends.
#[derive(Debug)]
pub struct Response<T> {
    pub(crate) metadata: Metadata,
    pub(crate) message: T,
    pub(crate) trailers: Metadata,
    pub(crate) extensions: Extensions,
    pub(crate) compression: Option<Option<Encoding>>,
    pub(crate) message_compression: Option<MessageCompression>,
}

impl<T> Response<T> {
    /// A response holding `message`.
    pub fn new(message: T) -> Response<T> {
        Response {
            metadata: Metadata::new(),
            message,
            trailers: Metadata::new(),
            extensions: Extensions::new(),
            compression: None,
            message_compression: None,
        }
    }

    /// Header metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Header metadata, to change.
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.metadata
    }

    /// Trailer metadata (for a unary response; see the type's docs).
    pub fn trailers(&self) -> &Metadata {
        &self.trailers
    }

    /// Trailer metadata, to change.
    pub fn trailers_mut(&mut self) -> &mut Metadata {
        &mut self.trailers
    }

    /// Typed values attached to the response. On the client, a unary
    /// response whose message arrived compressed holds
    /// [`MessageCompressed`](crate::MessageCompressed).
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// The extensions, to change.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }

    /// Server: compress this call's response messages with `encoding`, or
    /// send them uncompressed with `None`, overriding the server's setting.
    /// An encoding the client does not accept (by its
    /// `grpc-accept-encoding`), or not [enabled](Encoding::is_enabled) in
    /// this build, is not used.
    pub fn set_compression(&mut self, encoding: Option<Encoding>) {
        self.compression = Some(encoding);
    }

    /// Server: a switch that turns compression on and off for each response
    /// message of this call (see [`MessageCompression`]).
    pub fn message_compression(&mut self) -> MessageCompression {
        self.message_compression
            .get_or_insert_with(MessageCompression::new)
            .clone()
    }

    /// Uses `switch` to turn compression on and off for each response message
    /// of this call. Made before the message stream, a switch can be moved
    /// into the code that produces the messages.
    pub fn set_message_compression(&mut self, switch: MessageCompression) {
        self.message_compression = Some(switch);
    }

    /// The message.
    pub fn get_ref(&self) -> &T {
        &self.message
    }

    /// The message, to change.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.message
    }

    /// Takes the message.
    pub fn into_inner(self) -> T {
        self.message
    }

    /// Replaces the message, keeping the metadata.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Response<U> {
        Response {
            metadata: self.metadata,
            message: f(self.message),
            trailers: self.trailers,
            extensions: self.extensions,
            compression: self.compression,
            message_compression: self.message_compression,
        }
    }
}
