use magicnet::object::ObjectContext;
use magicnet::{NetworkObject, network_fields};

#[derive(NetworkObject, Default)]
#[network_object(name = "twice", role = 0)]
struct Twice;

type Ctx<'a> = ObjectContext<'a, Twice>;

#[network_fields]
impl Twice {
    #[network_field]
    fn set(&mut self, ctx: &mut Ctx<'_>, value: u8, #[net(context)] again: &mut Ctx<'_>) {
        let _ = (ctx, value, again);
    }
}

fn main() {}
