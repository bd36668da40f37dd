use magicnet::object::ObjectContext;
use magicnet::{NetworkObject, network_fields};

#[derive(NetworkObject, Default)]
#[network_object(name = "one-number", role = 1)]
struct Number {
    value: i32,
}

#[network_fields]
impl Number {
    #[network_field]
    fn add_value(&mut self, ctx: &mut ObjectContext<'_, Self>, value: i32) {
        self.value += value;
        self.send_add_value(ctx, "fifteen").unwrap();
        self.send_add_valu(ctx, 15).unwrap();
    }
}

fn main() {}
