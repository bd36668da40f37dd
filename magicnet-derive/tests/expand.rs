//! What the macros generate, checked without and with a network: the field tables, the
//! argument validators, the send methods (hygiene: user arguments named like generated
//! bindings), the context found by position (through a type alias) or by `#[net(context)]`,
//! defaults, variadics, interfaces, and a round trip between two nodes in memory.

use magicnet::object::{CallError, FieldDesc, NetworkFields};
use magicnet::prelude::*;
use magicnet::transport::memory::MemoryNetwork;
use magicnet::wire::{Reader, to_vec};
use magicnet::{DecodeError, NetType};

// ----- "bank": a transfer whose argument is named `to` -------------------------------------

/// The client role of "bank", as the server calls it.
#[network_interface(name = "bank", role = 0)]
pub trait BankViewFields {
    /// A transfer happened.
    fn transferred(from: u32, to: u32, amount: u64);
}

/// The server role of "bank", as clients call it.
#[network_interface(name = "bank", role = 1)]
pub trait BankFields {
    fn transfer(from: u32, to: u32, amount: u64);
    #[network_field(ram_persist = false)]
    fn deposit(account: u32, #[net(default = 100)] amount: u64);
}

#[derive(NetworkObject, Default, Debug)]
#[network_object(name = "bank", role = 1, calls(BankViewFields))]
pub struct Bank {
    pub log: Vec<(u32, u32, u64)>,
    pub deposits: Vec<(u32, u64)>,
    pub created: bool,
}

/// The context through an alias: found by position, not by its type's name.
type BankCtx<'a> = ObjectContext<'a, Bank>;

#[network_fields]
impl Bank {
    const DEFAULT_DEPOSIT: u64 = 100;

    #[net_create]
    fn created(&mut self, ctx: &mut BankCtx<'_>) {
        let _ = ctx.oid();
        self.created = true;
    }

    #[network_field]
    fn transfer(&mut self, ctx: &mut BankCtx<'_>, from: u32, to: u32, amount: u64) {
        self.log.push((from, to, amount));
        self.send_transferred(ctx, from, to, amount).unwrap();
    }

    /// The context marked, and last; `Self` in a default expression is the object type.
    #[network_field(ram_persist = false)]
    fn deposit(
        &mut self,
        account: u32,
        #[net(default = Self::DEFAULT_DEPOSIT)] amount: u64,
        #[net(context)] ctx: &mut ObjectContext<'_, Self>,
    ) {
        let _ = ctx.sender();
        self.deposits.push((account, amount));
    }
}

#[derive(NetworkObject, Default, Debug)]
#[network_object(name = "bank", role = 0, calls(BankFields))]
pub struct BankView {
    pub seen: Vec<(u32, u32, u64)>,
}

#[network_fields]
impl BankView {
    #[network_field]
    fn transferred(&mut self, from: u32, to: u32, amount: u64) {
        self.seen.push((from, to, amount));
    }
}

// ----- "names": arguments named like every binding the macros generate ---------------------

#[derive(NetworkObject, Default)]
#[network_object(name = "names", role = 0)]
pub struct Names {
    pub sum: u64,
}

#[network_fields]
impl Names {
    /// Every argument is named like a binding of the generated code (old and new).
    #[network_field]
    #[allow(clippy::too_many_arguments)]
    fn everything(
        &mut self,
        to: u32,
        target: u32,
        w: u32,
        n: u32,
        reader: u32,
        ctx: u32,
        args: u32,
        field: u32,
        ret: u32,
        a0: u32,
        __w: u32,
        __r: u32,
        __n: u32,
        __a0: u32,
    ) {
        let all = [to, target, w, n, reader, ctx, args, field, ret, a0, __w, __r, __n, __a0];
        self.sum = all.iter().map(|v| u64::from(*v)).sum();
    }

    /// A variadic argument named like the encoder's loop variable.
    #[network_field]
    fn collect(&mut self, w: u8, #[net(variadic)] item: Vec<u32>) {
        self.sum = u64::from(w) + item.iter().map(|v| u64::from(*v)).sum::<u64>();
    }

    /// A context taken by shared reference must be marked.
    #[network_field(unreliable)]
    fn peek(&mut self, #[net(context)] ctx: &ObjectContext<'_, Self>, value: u8) {
        let _ = ctx.oid();
        self.sum = u64::from(value);
    }

    /// A first shared reference is the context too.
    #[network_field]
    fn look(&self, ctx: &ObjectContext<'_, Self>, value: u8) {
        let _ = (ctx.oid(), value);
    }

    #[net_delete]
    fn deleted(&mut self) {}
}

// ----- "ball": defaults, variadics, auth --------------------------------------------------

#[derive(NetworkObject, Default)]
#[network_object(name = "ball", role = 1)]
pub struct Ball {
    pub power: u8,
    pub value: u16,
    pub rest: (u16, Vec<u16>),
}

type Ctx<'a> = ObjectContext<'a, Ball>;

#[network_fields]
impl Ball {
    #[network_field]
    fn kick(&mut self, ctx: &mut Ctx<'_>, power: u8) {
        self.power = power;
        let _ = ctx;
    }

    #[network_field]
    fn set_value(&mut self, #[net(default = 256)] value: u16) {
        self.value = value;
    }

    #[network_field(auth = "admin")]
    fn set_rest(&mut self, #[net(default = 9)] a: u16, #[net(variadic)] rest: Vec<u16>) {
        self.rest = (a, rest);
    }

    #[network_field]
    fn reset(&mut self, #[net(default)] to: u16) -> Result<(), String> {
        self.value = to;
        Ok(())
    }
}

// ----- wire structs ------------------------------------------------------------------------

#[derive(NetStruct, Debug, PartialEq, Default)]
struct Point {
    x: i32,
    y: i32,
    #[net(default)]
    label: String,
}

#[derive(Message, Debug, PartialEq)]
#[message(id = 70, name = "Moved", unreliable)]
struct Move(u32, #[net(default)] Option<Point>);

// ----- helpers -----------------------------------------------------------------------------

fn field<'a>(fields: &'a [FieldDesc], name: &str) -> &'a FieldDesc {
    fields.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("no field `{name}`"))
}

fn arg_names(f: &FieldDesc) -> Vec<&'static str> {
    f.args.iter().map(|a| a.name).collect()
}

/// Runs `T`'s validator on `args`, encoded.
fn validate<T: NetworkFields>(index: u8, args: &impl NetType) -> Result<(), CallError> {
    let bytes = to_vec(args).unwrap();
    T::__validate(index, &mut Reader::new(&bytes))
}

fn arity(min: u16, max: u16, found: usize) -> Result<(), CallError> {
    Err(CallError::BadArgs { arg: "arguments", error: DecodeError::ArgumentCount { min, max, found } })
}

// ----- tests -------------------------------------------------------------------------------

#[test]
fn field_tables_follow_declaration_order_and_options() {
    let bank = <Bank as NetworkFields>::FIELDS;
    assert_eq!(bank.iter().map(|f| f.name).collect::<Vec<_>>(), ["transfer", "deposit"]);
    let transfer = field(bank, "transfer");
    assert_eq!(arg_names(transfer), ["from", "to", "amount"], "the context is not a wire argument");
    assert_eq!((transfer.min_args(), transfer.max_args()), (3, 3));
    assert!(transfer.persist && transfer.auth.is_none() && !transfer.unreliable);
    let deposit = field(bank, "deposit");
    assert_eq!(arg_names(deposit), ["account", "amount"], "a marked context, even last, is not a wire argument");
    assert_eq!((deposit.min_args(), deposit.max_args()), (1, 2));
    assert!(!deposit.persist);

    let names = <Names as NetworkFields>::FIELDS;
    assert_eq!(names.iter().map(|f| f.name).collect::<Vec<_>>(), ["everything", "collect", "peek", "look"]);
    assert_eq!(
        arg_names(field(names, "everything")),
        ["to", "target", "w", "n", "reader", "ctx", "args", "field", "ret", "a0", "__w", "__r", "__n", "__a0"]
    );
    let collect = field(names, "collect");
    assert_eq!((collect.min_args(), collect.max_args()), (1, usize::MAX));
    assert!(collect.args[1].variadic && !collect.args[1].optional);
    let peek = field(names, "peek");
    assert_eq!(arg_names(peek), ["value"]);
    assert!(peek.unreliable);
    assert_eq!(arg_names(field(names, "look")), ["value"]);

    let ball = <Ball as NetworkFields>::FIELDS;
    assert_eq!(ball.iter().map(|f| f.name).collect::<Vec<_>>(), ["kick", "set_value", "set_rest", "reset"]);
    assert_eq!(arg_names(field(ball, "kick")), ["power"], "a context through a type alias");
    assert_eq!(field(ball, "set_rest").auth, Some("admin"));
    assert_eq!(
        field(ball, "set_rest").signature(),
        "set_rest(a: int[0,65535] = default, *rest: int[0,65535]) [auth=admin]"
    );
    assert_eq!(field(ball, "reset").min_args(), 0);
}

#[test]
fn object_constants() {
    assert_eq!((Bank::NAME, Bank::ROLE), ("bank", ObjectRole(1)));
    assert_eq!((BankView::NAME, BankView::ROLE), ("bank", ObjectRole(0)));
    assert_eq!((Ball::NAME, Ball::ROLE), ("ball", ObjectRole(1)));
}

#[test]
fn validators_accept_good_arguments_and_reject_bad_ones() {
    assert_eq!(validate::<Bank>(0, &(1u32, 2u32, 3u64)), Ok(()));
    assert_eq!(validate::<Bank>(0, &(1u32, 2u32)), arity(3, 3, 2));
    assert_eq!(validate::<Bank>(0, &(1u32, 2u32, 3u64, 4u8)), arity(3, 3, 4));
    assert!(matches!(
        validate::<Bank>(0, &(1u32, String::from("two"), 3u64)),
        Err(CallError::BadArgs { arg: "to", .. })
    ));
    assert_eq!(validate::<Bank>(1, &(7u32,)), Ok(()), "the default is filled in");
    assert_eq!(validate::<Bank>(1, &(7u32, 8u64)), Ok(()));
    assert_eq!(validate::<Bank>(1, &()), arity(1, 2, 0));
    assert_eq!(validate::<Bank>(2, &()), Err(CallError::NoField));

    assert_eq!(validate::<Names>(0, &(1u32, 2u32, 3u32, 4u32, 5u32, 6u32, 7u32, 8u32)), arity(14, 14, 8));
    assert_eq!(validate::<Names>(1, &(1u8,)), Ok(()));
    assert_eq!(validate::<Names>(1, &(1u8, 2u32, 3u32, 4u32)), Ok(()));
    assert!(matches!(validate::<Names>(1, &(1u8, 2u32, -3i32)), Err(CallError::BadArgs { arg: "item", .. })));
    assert_eq!(validate::<Names>(2, &(1u8,)), Ok(()));

    assert_eq!(validate::<Ball>(1, &()), Ok(()));
    assert!(matches!(validate::<Ball>(1, &(70_000u32,)), Err(CallError::BadArgs { arg: "value", .. })));
    assert_eq!(validate::<Ball>(2, &()), Ok(()));
    assert_eq!(validate::<Ball>(2, &(1u16, 2u16, 3u16)), Ok(()));
    assert_eq!(validate::<Ball>(3, &()), Ok(()));

    // trailing bytes after the argument array are refused
    let mut bytes = to_vec(&(1u32, 2u32, 3u64)).unwrap();
    bytes.push(0);
    assert!(Bank::__validate(0, &mut Reader::new(&bytes)).is_err());
}

#[test]
fn wire_structs_and_messages() {
    let p = Point { x: 1, y: -2, label: "a".into() };
    let bytes = to_vec(&p).unwrap();
    assert_eq!(magicnet::wire::from_slice::<Point>(&bytes).unwrap(), p);
    let short = to_vec(&(1i32, -2i32)).unwrap();
    assert_eq!(magicnet::wire::from_slice::<Point>(&short).unwrap(), Point { x: 1, y: -2, label: String::new() });
    let one = to_vec(&(1i32,)).unwrap();
    assert_eq!(magicnet::wire::from_slice::<Point>(&one), Err(DecodeError::ArgumentCount { min: 2, max: 3, found: 1 }));
    assert_eq!((Move::ID, Move::NAME, Move::DELIVERY), (70, "Moved", magicnet::Delivery::Unreliable));
    let m = Move(5, None);
    assert_eq!(magicnet::wire::from_slice::<Move>(&to_vec(&m).unwrap()).unwrap(), m);
}

#[test]
fn a_round_trip_between_two_nodes() {
    let mut server =
        Node::builder("server").objects(ObjectConfig::authority(Repository(1)).classes(&["bank"]).role(ObjectRole(1)));
    let clients = server.add_remote_role(RoleConfig::new("client"));
    let mut client = Node::builder("client").objects(ObjectConfig::client().classes(&["bank"]).role(ObjectRole(0)));
    let servers = client.add_remote_role(RoleConfig::new("server"));
    let mut net = MemoryNetwork::new();
    let (s, c) = (net.add(server.build().unwrap()), net.add(client.build().unwrap()));
    let (to_server, _) = net.connect(c, servers, s, clients).unwrap();
    net.run();

    let oid = net.node_mut(s).create_object(Bank::default(), CreateOptions::zone(ZoneId(0)), |_, _| {}).unwrap();
    net.run();
    assert!(net.node(s).object::<Bank>(oid).unwrap().created, "net_create ran");
    if net.node(c).object::<BankView>(oid).is_none() {
        net.node_mut(c).request_visible_objects(to_server).unwrap();
        net.run();
    }
    assert!(net.node(c).object::<BankView>(oid).is_some(), "the client has a view");

    // the client calls the server's `transfer(from, to, amount)` through the interface
    net.node_mut(c).with_object(oid, |v: &mut BankView, ctx| v.send_transfer(ctx, 1, 2, 3)).unwrap();
    net.run();
    assert_eq!(net.node(s).object::<Bank>(oid).unwrap().log, [(1, 2, 3)]);
    assert_eq!(net.node(c).object::<BankView>(oid).unwrap().seen, [(1, 2, 3)], "the server answered every view");

    // a default filled in by the server, `Self::DEFAULT_DEPOSIT`
    net.node_mut(c).with_object(oid, |v: &mut BankView, ctx| v.send_deposit(ctx, 7, 100)).unwrap();
    net.run();
    assert_eq!(net.node(s).object::<Bank>(oid).unwrap().deposits, [(7, 100)]);

    // the server's own typed send method, argument `to` included
    net.node_mut(s).with_object(oid, |b: &mut Bank, ctx| b.send_transfer(ctx, 1, 2, 3)).unwrap();
    net.node_mut(s).with_object(oid, |b: &mut Bank, ctx| b.send_deposit(ctx, 9, 1)).unwrap();
    net.run();
}
