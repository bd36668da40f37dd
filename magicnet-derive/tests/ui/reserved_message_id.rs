use magicnet::Message;

#[derive(Message)]
#[message(id = 5)]
struct Sneaky(u8);

#[derive(Message)]
struct NoId(u8);

fn main() {}
