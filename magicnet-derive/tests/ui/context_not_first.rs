use magicnet::object::ObjectContext;
use magicnet::{NetworkObject, network_fields};

#[derive(NetworkObject, Default)]
#[network_object(name = "late", role = 0)]
struct Late;

#[network_fields]
impl Late {
    #[network_field]
    fn set(&mut self, value: u8, ctx: &mut ObjectContext<'_, Self>) {
        let _ = (value, ctx);
    }
}

fn main() {}
