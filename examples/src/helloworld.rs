//! The helloworld example: a `Greeter` service with one unary method.
//!
//! [`MyGreeter`] is the server side; [`greet`] is what the client does.

use courier::{Request, Response, Status};

use crate::pb::helloworld::greeter_client::GreeterClient;
use crate::pb::helloworld::greeter_server::Greeter;
use crate::pb::helloworld::{HelloReply, HelloRequest};

/// Where the server listens unless told otherwise.
pub const DEFAULT_SERVER_ADDR: &str = "127.0.0.1:50051";

/// The server the client calls unless told otherwise.
pub const DEFAULT_TARGET: &str = "http://127.0.0.1:50051";

/// The name the client sends unless given one.
pub const DEFAULT_NAME: &str = "world";

/// The greeting for `name`.
pub fn greeting(name: &str) -> String {
    format!("Hello, {name}!")
}

/// A `Greeter` that answers every request with [`greeting`].
#[derive(Clone, Copy, Debug, Default)]
pub struct MyGreeter;

impl Greeter for MyGreeter {
    async fn say_hello(&self, request: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        if let Some(peer) = request.remote_addr() {
            println!("SayHello from {peer}: {:?}", request.get_ref().name);
        }
        let name = request.into_inner().name;
        if name.is_empty() {
            return Err(Status::invalid_argument("name must not be empty"));
        }
        Ok(Response::new(HelloReply {
            message: greeting(&name),
        }))
    }
}

/// Client: asks the server for a greeting for `name` and returns it.
///
/// # Errors
///
/// The status of a failed call, e.g. INVALID_ARGUMENT for an empty name or
/// UNAVAILABLE when the server cannot be reached.
pub async fn greet(client: &GreeterClient, name: &str) -> Result<String, Status> {
    let response = client.say_hello(HelloRequest { name: name.to_string() }).await?;
    Ok(response.into_inner().message)
}
