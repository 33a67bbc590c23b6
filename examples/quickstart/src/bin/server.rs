mod pb {
    courier::include_proto!("helloworld");
}
use courier::{Request, Response, Status};
use pb::greeter_server::{Greeter, GreeterServer};

struct MyGreeter;

impl Greeter for MyGreeter {
    async fn say_hello(&self, request: Request<pb::HelloRequest>) -> Result<Response<pb::HelloReply>, Status> {
        let message = format!("Hello, {}!", request.get_ref().name);
        Ok(Response::new(pb::HelloReply { message }))
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    courier::Server::builder()
        .add_service(GreeterServer::new(MyGreeter))
        .serve("127.0.0.1:50051")
        .await
}
