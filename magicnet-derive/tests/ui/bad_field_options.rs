use magicnet::{NetworkObject, network_fields};

#[derive(NetworkObject, Default)]
#[network_object(name = "opts", role = 0)]
struct Opts;

#[network_fields]
impl Opts {
    #[network_field(ram_persist = "no", colour = "red")]
    fn a(&mut self, x: i32) {
        let _ = x;
    }

    #[network_field]
    fn b(&mut self, #[net(default)] x: i32, y: i32) {
        let _ = (x, y);
    }

    #[network_field]
    fn c(&mut self, #[net(variadic)] rest: Vec<u8>, last: u8) {
        let _ = (rest, last);
    }
}

fn main() {}
