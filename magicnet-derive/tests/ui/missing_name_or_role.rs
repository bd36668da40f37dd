use magicnet::{NetworkObject, network_fields};

#[derive(NetworkObject, Default)]
#[network_object(role = 1)]
struct NoName;

#[network_fields]
impl NoName {}

#[derive(NetworkObject, Default)]
#[network_object(name = "no-role")]
struct NoRole;

#[network_fields]
impl NoRole {}

#[derive(NetworkObject, Default)]
struct NoAttribute;

#[network_fields]
impl NoAttribute {}

fn main() {}
