use magicnet::{NetworkObject, network_fields};

#[derive(NetworkObject, Default)]
#[network_object(name = "wrong", role = 0)]
struct Wrong;

#[network_fields]
impl Wrong {
    #[network_field]
    fn set(&mut self, ctx: &mut String, value: u8) {
        let _ = (ctx, value);
    }
}

fn main() {}
