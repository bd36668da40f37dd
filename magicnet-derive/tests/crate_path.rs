//! The `crate = "..."` option of every macro, for a renamed dependency. `magicnet` is renamed
//! `mn` here and the name `magicnet` is taken by another crate, so a generated path that did
//! not honour the option would not compile.

extern crate magicnet as mn;
// Shadows the `magicnet` dependency in the extern prelude: `::magicnet::...` is `core` here.
extern crate core as magicnet;

use mn::object::{FieldDesc, NetworkFields, ObjectContext};
use mn::{NetType, NetworkObject};

#[mn::network_interface(name = "renamed", role = 1, crate = "mn")]
pub trait RenamedServer {
    fn hello(count: u8, #[net(default)] text: String);
}

#[derive(mn::NetworkObject, Default)]
#[network_object(name = "renamed", role = 0, calls(RenamedServer), crate = "mn")]
pub struct Renamed {
    pub count: u8,
}

#[mn::network_fields(crate = "mn")]
impl Renamed {
    #[network_field]
    fn set_count(&mut self, ctx: &mut ObjectContext<'_, Self>, count: u8) {
        self.count = count;
        self.send_hello(ctx, count, String::new()).unwrap();
    }

    #[network_field]
    fn add(&mut self, #[net(variadic)] counts: Vec<u8>) {
        self.count = counts.iter().fold(self.count, |a, b| a.wrapping_add(*b));
    }

    #[net_create]
    fn created(&mut self) {}
}

#[derive(mn::NetStruct, Debug, PartialEq)]
#[net(crate = "mn")]
pub struct Pair(u8, #[net(default)] u8);

#[derive(mn::Message, Debug, PartialEq)]
#[message(id = 90, crate = "mn")]
pub struct Hello {
    pub pair: Pair,
}

mod nested {
    // The option works from any module (the renamed crate is in the extern prelude).
    #[derive(mn::NetStruct, Debug, PartialEq)]
    #[net(crate = "mn")]
    pub struct Inner {
        pub value: i64,
    }
}

fn names(fields: &[FieldDesc]) -> Vec<&'static str> {
    fields.iter().map(|f| f.name).collect()
}

#[test]
fn every_macro_honours_the_crate_path() {
    assert_eq!((Renamed::NAME, Renamed::ROLE), ("renamed", mn::ObjectRole(0)));
    assert_eq!(names(<Renamed as NetworkFields>::FIELDS), ["set_count", "add"]);
    assert_eq!(<Hello as mn::Message>::ID, 90);
    let bytes = mn::wire::to_vec(&Hello { pair: Pair(1, 2) }).unwrap();
    assert_eq!(mn::wire::from_slice::<Hello>(&bytes).unwrap(), Hello { pair: Pair(1, 2) });
    assert_eq!(mn::wire::from_slice::<Pair>(&mn::wire::to_vec(&(3u8,)).unwrap()).unwrap(), Pair(3, 0));
    let inner = nested::Inner { value: -5 };
    assert_eq!(mn::wire::from_slice::<nested::Inner>(&mn::wire::to_vec(&inner).unwrap()).unwrap(), inner);
    assert!(matches!(<Pair as NetType>::schema(), mn::wire::Schema::Tuple(ref v) if v.len() == 2));
    let registry = mn::object::Registry::only(&["renamed"]).unwrap();
    let class = registry.class(registry.id_of("renamed").unwrap()).unwrap();
    assert_eq!(names(class.role(mn::ObjectRole(1)).unwrap().fields()), ["hello"], "the interface is registered");
    assert!(class.role(mn::ObjectRole(0)).unwrap().is_implemented(), "the object is registered");
}
