use magicnet::{NetworkObject, network_fields, network_interface};

#[derive(NetworkObject, Default)]
#[network_object(name = "owned", role = 0)]
struct Owned;

#[network_fields]
impl Owned {
    #[network_field]
    fn set(&mut self, #[net(context)] ctx: u8) {
        let _ = ctx;
    }

    #[network_field]
    fn borrow(&mut self, first: u8, value: &u8) {
        let _ = (first, value);
    }
}

#[network_interface(name = "owned", role = 1)]
pub trait OwnedServer {
    fn get(#[net(context)] value: u8);
}

fn main() {}
