use magicnet::NetworkObject;

#[derive(NetworkObject, Default)]
#[network_object(name = "lonely", role = 0)]
struct Lonely;

fn main() {}
