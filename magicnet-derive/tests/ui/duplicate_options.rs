use magicnet::{Message, NetStruct, NetworkObject, network_fields};

#[derive(NetworkObject, Default)]
#[network_object(name = "dup", role = 0)]
#[network_object(role = 1)]
struct Dup;

#[network_fields]
impl Dup {
    #[network_field(unreliable, unreliable)]
    #[network_field]
    fn set(&mut self, #[net(default, default = 3)] value: u8) {
        let _ = value;
    }
}

#[derive(NetStruct)]
struct Wire(#[net(default)] #[net(default)] u8);

#[derive(Message)]
#[message(id = 65, id = 66)]
struct Msg(u8);

fn main() {}
