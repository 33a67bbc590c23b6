//! Responses: a message (or a stream of them) with header and trailer
//! metadata.

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
}

impl<T> Response<T> {
    /// A response holding `message`.
    pub fn new(message: T) -> Response<T> {
        Response {
            metadata: Metadata::new(),
            message,
            trailers: Metadata::new(),
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
        }
    }
}
