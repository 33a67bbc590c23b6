//! Requests: a message (or a stream of them) with its metadata, deadline and
//! per-call options.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_core::Stream;

use crate::client::CancelHandle;
use crate::client::call::deadline_after;
use crate::compression::{Encoding, MessageCompression};
use crate::context::CallContext;
use crate::extensions::Extensions;
use crate::metadata::Metadata;

/// A gRPC request: a message, its metadata and call options.
///
/// On the client, set metadata, a timeout or deadline and compression
/// before the call, and, in a server handler, the incoming call it is made
/// for ([`Request::with_parent`]). On the server, read the metadata, the
/// deadline the client sent, the peer's address and any values interceptors
/// put in the extensions.
///
/// ```
/// use std::time::Duration;
/// let mut req = courier::Request::new("hello".to_string());
/// req.metadata_mut().insert("x-request-id", "42").unwrap();
/// req.set_timeout(Duration::from_secs(2));
/// assert_eq!(req.get_ref(), "hello");
/// ```
#[derive(Debug)]
pub struct Request<T> {
    pub(crate) metadata: Metadata,
    pub(crate) message: T,
    pub(crate) extensions: Extensions,
    pub(crate) timeout: Option<Duration>,
    pub(crate) deadline: Option<Instant>,
    pub(crate) compression: Option<Option<Encoding>>,
    pub(crate) message_compression: Option<MessageCompression>,
    pub(crate) cancel: Option<CancelHandle>,
    /// Client: the server call this call is made for.
    pub(crate) parent: Option<CallContext>,
    pub(crate) remote_addr: Option<SocketAddr>,
    pub(crate) wait_for_ready: Option<bool>,
}

impl<T> Request<T> {
    /// A request holding `message` and no metadata.
    pub fn new(message: T) -> Request<T> {
        Request {
            metadata: Metadata::new(),
            message,
            extensions: Extensions::new(),
            timeout: None,
            deadline: None,
            compression: None,
            message_compression: None,
            cancel: None,
            parent: None,
            remote_addr: None,
            wait_for_ready: None,
        }
    }

    /// The metadata (request headers).
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The metadata, to change.
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.metadata
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

    /// Splits into metadata, extensions and message.
    pub fn into_parts(self) -> (Metadata, Extensions, T) {
        (self.metadata, self.extensions, self.message)
    }

    /// Typed values attached to the call, e.g. by an interceptor.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// The extensions, to change.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }

    /// Client: the call fails with DEADLINE_EXCEEDED if it takes longer than
    /// this, counted from when it is made. The timeout is sent to the server
    /// as `grpc-timeout`. A timeout longer than `grpc-timeout` can carry
    /// (99,999,999 hours), such as `Duration::MAX`, means no deadline. With
    /// a deadline set as well ([`Request::set_deadline`]), the earlier of
    /// the two applies.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = Some(timeout);
    }

    /// The timeout set on the client, or on the server, what was left of the
    /// client's deadline when the call arrived.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Client: the call fails with DEADLINE_EXCEEDED once `deadline` has
    /// passed. What is left of it when the call is sent goes to the server
    /// as `grpc-timeout` (one already past ends the call at once). With a
    /// timeout set as well ([`Request::set_timeout`]), the earlier of the
    /// two applies; a parent's deadline ([`Request::with_parent`]) bounds
    /// both.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let mut req = courier::Request::new(());
    /// req.set_deadline(Instant::now() + Duration::from_millis(300));
    /// req.set_timeout(Duration::from_secs(5)); // the deadline, earlier, applies
    /// ```
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = Some(deadline);
    }

    /// Server: the instant the client's deadline passes, if it sent one.
    /// Client: the deadline set with [`Request::set_deadline`].
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Server: this incoming call's deadline and cancellation, to pass on to
    /// the calls its handler makes with [`Request::with_parent`] (see
    /// [`CallContext`]). Take it while the handler runs; clones can go to
    /// spawned tasks. A call whose handler never takes it pays nothing for
    /// it.
    pub fn context(&self) -> CallContext {
        CallContext::current(self.deadline)
    }

    /// Client: makes this call on behalf of the server call `parent` is the
    /// context of ([`Request::context`]), as grpc-go does with the handler's
    /// `ctx`: the call's deadline is at most the parent's, and the call is
    /// cancelled (RST_STREAM(CANCEL) to its server, CANCELLED or
    /// DEADLINE_EXCEEDED to its caller) when the parent call ends.
    ///
    /// ```
    /// # async fn handler(
    /// #     request: courier::Request<String>,
    /// #     downstream: courier::Channel,
    /// # ) -> Result<courier::Response<String>, courier::Status> {
    /// use courier::codec::ProstCodec;
    /// let out = courier::Request::new(request.get_ref().clone()).with_parent(&request.context());
    /// downstream.unary(out, "/demo.Store/Get", ProstCodec::<String, String>::new()).await
    /// # }
    /// ```
    pub fn with_parent(mut self, parent: &CallContext) -> Request<T> {
        self.parent = Some(parent.clone());
        self
    }

    /// Client: the call's deadline, from now: the earliest of its timeout,
    /// its deadline and its parent's deadline.
    pub(crate) fn call_deadline(&self) -> Option<Instant> {
        let parent = self.parent.as_ref().and_then(CallContext::deadline);
        [self.timeout.and_then(deadline_after), self.deadline, parent]
            .into_iter()
            .flatten()
            .min()
    }

    /// Client: compress this call's messages with `encoding`, or send them
    /// uncompressed with `None`, overriding the channel's setting. An
    /// encoding not [enabled](Encoding::is_enabled) in this build is not
    /// used.
    pub fn set_compression(&mut self, encoding: Option<Encoding>) {
        self.compression = Some(encoding);
    }

    /// Client: a switch that turns compression on and off for each request
    /// message of this call, in a call that has an encoding (see
    /// [`MessageCompression`]).
    pub fn message_compression(&mut self) -> MessageCompression {
        self.message_compression
            .get_or_insert_with(MessageCompression::new)
            .clone()
    }

    /// Uses `switch` to turn compression on and off for each request message
    /// of this call. Made before the message stream, a switch can be moved
    /// into the code that produces the messages.
    pub fn set_message_compression(&mut self, switch: MessageCompression) {
        self.message_compression = Some(switch);
    }

    /// Client: a handle that cancels this call, of any kind, from anywhere
    /// (see [`CancelHandle`]). Take it before making the call; calls made
    /// without asking for one carry none.
    pub fn cancel_handle(&mut self) -> CancelHandle {
        self.cancel.get_or_insert_with(CancelHandle::new).clone()
    }

    /// Splits off the cancel handle, by value. A call made for a server
    /// call gets one, which that call's end cancels.
    pub(crate) fn take_cancel(mut self) -> (Request<T>, Option<CancelHandle>) {
        if let Some(parent) = &self.parent {
            parent.adopt(&mut self.cancel);
        }
        let cancel = self.cancel.take();
        (self, cancel)
    }

    /// Client: with `true`, the call waits for the channel to have a READY
    /// connection, through CONNECTING and TRANSIENT_FAILURE, until its
    /// deadline; with `false` (the default, unless the channel's
    /// [`wait_for_ready`](crate::client::ChannelBuilder::wait_for_ready) says
    /// otherwise) it fails at once with UNAVAILABLE while the channel is in
    /// TRANSIENT_FAILURE. See grpc/grpc `doc/wait-for-ready.md`.
    pub fn set_wait_for_ready(&mut self, wait: bool) {
        self.wait_for_ready = Some(wait);
    }

    /// Server: the address of the client, when known.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }

    /// Replaces the message, keeping everything else.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Request<U> {
        Request {
            metadata: self.metadata,
            message: f(self.message),
            extensions: self.extensions,
            timeout: self.timeout,
            deadline: self.deadline,
            compression: self.compression,
            message_compression: self.message_compression,
            cancel: self.cancel,
            parent: self.parent,
            remote_addr: self.remote_addr,
            wait_for_ready: self.wait_for_ready,
        }
    }
}

/// Anything a unary or server-streaming client method accepts: a message or
/// a [`Request`].
pub trait IntoRequest<T> {
    /// Wraps the value in a request.
    fn into_request(self) -> Request<T>;
}

impl<T> IntoRequest<T> for T {
    fn into_request(self) -> Request<T> {
        Request::new(self)
    }
}

impl<T> IntoRequest<T> for Request<T> {
    fn into_request(self) -> Request<T> {
        self
    }
}

/// Anything a client-streaming or bidirectional client method accepts: a
/// stream of messages or a [`Request`] holding one.
pub trait IntoStreamingRequest {
    /// The message type.
    type Message;
    /// The stream type.
    type Stream: Stream<Item = Self::Message> + Send + 'static;
    /// Wraps the stream in a request.
    fn into_streaming_request(self) -> Request<Self::Stream>;
}

impl<S> IntoStreamingRequest for S
where
    S: Stream + Send + 'static,
{
    type Message = S::Item;
    type Stream = S;
    fn into_streaming_request(self) -> Request<S> {
        Request::new(self)
    }
}

impl<S> IntoStreamingRequest for Request<S>
where
    S: Stream + Send + 'static,
{
    type Message = S::Item;
    type Stream = S;
    fn into_streaming_request(self) -> Request<S> {
        self
    }
}
