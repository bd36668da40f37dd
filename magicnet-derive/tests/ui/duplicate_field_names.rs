use magicnet::network_interface;

#[network_interface(name = "dup", role = 0)]
pub trait Dup {
    fn set_value(value: i32);
    fn set_value(value: u8);
}

fn main() {}
