use magicnet::{Message, NetStruct, NetworkObject, network_fields, network_interface};

#[derive(NetworkObject, Default)]
#[network_object(name = "paths", role = 0, crate = "not a path")]
struct Paths;

#[network_fields(crate = 5)]
impl Paths {}

#[network_interface(name = "paths", role = 1, crate = "a::<b>")]
pub trait PathsServer {}

#[derive(NetStruct)]
#[net(crate = "::magicnet", crate = "magicnet")]
struct Twice(u8);

#[derive(Message)]
#[message(id = 65, crate = "")]
struct Empty(u8);

fn main() {}
