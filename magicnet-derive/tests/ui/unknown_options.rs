use magicnet::{Message, NetStruct, NetworkObject, network_fields, network_interface};

#[derive(NetworkObject, Default)]
#[network_object(name = "unknown", role = 0, colour = "red")]
struct Unknown;

#[network_fields(name = "unknown")]
impl Unknown {
    #[network_field(fast)]
    fn set(&mut self, #[net(optional)] value: u8) {
        let _ = value;
    }

    #[net_create(early)]
    fn created(&mut self) {}
}

#[network_interface(name = "unknown", role = 1, calls(Unknown))]
pub trait UnknownServer {}

#[derive(NetStruct)]
#[net(default)]
struct Wire(#[net(skip)] u8);

#[derive(Message)]
#[message(id = 65, reliable)]
struct Msg(u8);

fn main() {}
