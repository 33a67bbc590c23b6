//! Routing calls to services: a type-level list of services, so the compiler
//! resolves each route without boxing or dynamic dispatch.

use std::future::Future;

use futures_util::future::Either;

use super::{ServerCall, Service};

/// The services of a server. Implemented by [`Empty`] and [`Route`]; not
/// meant to be implemented elsewhere.
pub trait Routes: Send + Sync + 'static {
    /// Hands a call to the service its path names.
    fn route(&self, call: ServerCall) -> impl Future<Output = ()> + Send;
    /// Visits each service's name and file descriptor set.
    fn for_each_service(&self, f: &mut dyn FnMut(&'static str, &'static [u8]));
}

/// No services: every call is UNIMPLEMENTED.
#[derive(Clone, Copy, Debug, Default)]
pub struct Empty;

impl Routes for Empty {
    fn route(&self, call: ServerCall) -> impl Future<Output = ()> + Send {
        call.unimplemented()
    }
    fn for_each_service(&self, _: &mut dyn FnMut(&'static str, &'static [u8])) {}
}

/// A service in front of the rest.
pub struct Route<S, R> {
    service: S,
    rest: R,
}

impl<S, R> Route<S, R> {
    pub(crate) fn new(service: S, rest: R) -> Self {
        Route { service, rest }
    }
}

impl<S: Service, R: Routes> Routes for Route<S, R> {
    fn route(&self, call: ServerCall) -> impl Future<Output = ()> + Send {
        if call.service() == S::NAME {
            Either::Left(self.service.call(call))
        } else {
            Either::Right(self.rest.route(call))
        }
    }
    fn for_each_service(&self, f: &mut dyn FnMut(&'static str, &'static [u8])) {
        self.rest.for_each_service(f);
        f(S::NAME, S::FILE_DESCRIPTOR_SET);
    }
}
