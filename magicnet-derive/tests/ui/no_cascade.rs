//! One mistake, one error: the type stays a network object and a wire type, its send methods
//! stay callable, and the interface stays implementable.
use magicnet::object::ObjectContext;
use magicnet::{Message, NetType, NetworkObject, network_fields, network_interface};

#[network_interface(name = "calm", role = 1, colour = "red")]
pub trait CalmServer {
    fn ping(value: u8);
}

#[derive(NetworkObject, Default)]
#[network_object(name = "calm", role = 0, calls(CalmServer))]
struct Calm;

#[network_fields]
impl Calm {
    #[network_field(ram_persist = "maybe")]
    fn set(&mut self, ctx: &mut ObjectContext<'_, Self>, value: u8) {
        self.send_set(ctx, value).unwrap();
        self.send_ping(ctx, value).unwrap();
    }
}

#[derive(Message)]
#[message(id = 3)]
struct Early(u8);

fn needs_wire<T: NetType>() {}
fn needs_object<T: NetworkObject>() {}

fn main() {
    needs_wire::<Early>();
    needs_object::<Calm>();
}
