mod pb {
    courier::include_proto!("helloworld");
}

#[tokio::main]
async fn main() -> Result<(), courier::Status> {
    let client = pb::greeter_client::GreeterClient::connect("http://127.0.0.1:50051").await?;
    let reply = client.say_hello(pb::HelloRequest { name: "Ada".into() }).await?;
    println!("{}", reply.get_ref().message);
    Ok(())
}
