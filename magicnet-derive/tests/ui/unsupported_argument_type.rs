use magicnet::object::ObjectContext;
use magicnet::{NetworkObject, network_fields};

#[derive(NetworkObject, Default)]
#[network_object(name = "files", role = 0)]
struct Files;

#[network_fields]
impl Files {
    #[network_field]
    fn open(&mut self, _ctx: &mut ObjectContext<'_, Self>, file: std::fs::File) {
        drop(file);
    }
}

fn main() {}
