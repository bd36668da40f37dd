use magicnet::{NetworkObject, network_fields};

#[derive(NetworkObject, Default)]
#[network_object(name = "misplaced", role = 0)]
struct Misplaced;

#[network_fields]
impl Misplaced {
    #[network_field]
    const LIMIT: u8 = 3;

    fn helper(&self, #[net(default)] value: u8) -> u8 {
        value
    }
}

#[network_fields]
struct NotAnImpl;

fn main() {
    let _ = NotAnImpl;
}
