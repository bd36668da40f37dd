use magicnet::{NetworkObject, network_fields};

#[derive(NetworkObject, Default)]
#[network_object(name = "hooks", role = 0)]
struct Hooks;

#[network_fields]
impl Hooks {
    #[net_create]
    fn created(&mut self, extra: u8) {
        let _ = extra;
    }

    #[net_create]
    fn created_again(&mut self) {}

    #[net_delete]
    #[network_field]
    fn both(&mut self) {}

    #[net_delete]
    fn by_value(self) {}
}

fn main() {}
