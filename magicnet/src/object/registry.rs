//! The class registry: every network object class and interface in the binary, registered at
//! link time with `inventory`, sorted by network name to assign type ids the Python way.
//!
//! The registry is only the class table: names, roles, field descriptors and signatures. What
//! runs a class (its entry points) is kept here type-erased, as an [`Implementation`]; the
//! runtime, which knows their concrete type, reads them back.

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use super::CallError;
use crate::error::RegistryError;
use crate::ids::{ClassId, ObjectRole};
use crate::wire::Schema;

/// One argument of a field.
#[derive(Debug)]
pub struct ArgDesc {
    /// The parameter's name in the source.
    pub name: &'static str,
    /// Its wire type.
    pub schema: fn() -> Schema,
    /// It has a default: a caller may leave it (and everything after it) out.
    pub optional: bool,
    /// It collects every remaining argument (Python's `*args`); always last.
    pub variadic: bool,
}

/// One field of a role: its name, arguments and options. Its index is its position.
#[derive(Debug)]
pub struct FieldDesc {
    /// The method's name.
    pub name: &'static str,
    /// The arguments, in order.
    pub args: &'static [ArgDesc],
    /// Remembered and replayed to late joiners (`ram_persist`, default true).
    pub persist: bool,
    /// A permission tag (e.g. `"admin"`) the permission hook checks.
    pub auth: Option<&'static str>,
    /// Calls may travel unreliably (`unreliable`): as QUIC datagrams where the connection
    /// has them, so they may be lost or reordered, never corrupted. A sender-side choice: it
    /// is not part of the schema hash.
    pub unreliable: bool,
}

impl FieldDesc {
    /// Fewest arguments a caller may send.
    pub fn min_args(&self) -> usize {
        self.args.iter().take_while(|a| !a.optional && !a.variadic).count()
    }

    /// Most arguments a caller may send (`usize::MAX` with a variadic argument).
    pub fn max_args(&self) -> usize {
        if self.args.last().is_some_and(|a| a.variadic) { usize::MAX } else { self.args.len() }
    }

    /// A one-line signature, e.g. `add_value(value: int[-2147483648,2147483647])`.
    pub fn signature(&self) -> String {
        let mut s = format!("{}(", self.name);
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            if a.variadic {
                s.push('*');
            }
            let _ = write!(s, "{}: {}", a.name, (a.schema)());
            if a.optional {
                s.push_str(" = default");
            }
        }
        s.push(')');
        if !self.persist {
            s.push_str(" [no ram_persist]");
        }
        if let Some(a) = self.auth {
            let _ = write!(s, " [auth={a}]");
        }
        if self.unreliable {
            s.push_str(" [unreliable]");
        }
        s
    }

    fn wire_signature(&self) -> String {
        let mut s = format!("{}|{}|{}|", self.name, self.persist, self.auth.unwrap_or(""));
        for a in self.args {
            let _ = write!(
                s,
                "{}{}{};",
                (a.schema)(),
                if a.optional { "=" } else { "" },
                if a.variadic { "*" } else { "" }
            );
        }
        s
    }
}

/// A class implementation, type-erased: the Rust type that implements a role, and its entry
/// points, which only the runtime reads (they take the runtime's types). Two registrations of
/// one role are the same implementation when their `type_id`s agree.
#[doc(hidden)]
pub struct Implementation {
    pub type_id: fn() -> TypeId,
    pub type_name: fn() -> &'static str,
    pub entries: &'static (dyn Any + Send + Sync),
}

#[doc(hidden)]
pub type Validate = fn(u8, &[u8], crate::wire::ReadLimits) -> Result<(), CallError>;

/// One role of one class, as a derive or an interface declared it. Submitted with
/// `inventory::submit!` by the macros.
#[doc(hidden)]
pub struct ClassRegistration {
    pub name: &'static str,
    pub role: ObjectRole,
    pub fields: &'static [FieldDesc],
    /// The Rust type or trait that declared it, for error messages.
    pub source: &'static str,
    pub validate: Validate,
    pub implementation: Option<Implementation>,
}

inventory::collect!(ClassRegistration);

/// One role of a class in a registry.
pub struct RoleInfo {
    pub(crate) fields: &'static [FieldDesc],
    pub(crate) validate: Validate,
    pub(crate) implementation: Option<&'static Implementation>,
    pub(crate) sources: Vec<&'static str>,
}

impl RoleInfo {
    /// The field table.
    pub fn fields(&self) -> &'static [FieldDesc] {
        self.fields
    }
    /// True when this binary implements the role (not only declares it).
    pub fn is_implemented(&self) -> bool {
        self.implementation.is_some()
    }
}

/// One class (network name) in a registry.
pub struct ClassInfo {
    pub(crate) name: &'static str,
    pub(crate) roles: BTreeMap<ObjectRole, RoleInfo>,
}

impl ClassInfo {
    /// The network name.
    pub fn name(&self) -> &'static str {
        self.name
    }
    /// A role's declaration.
    pub fn role(&self, role: ObjectRole) -> Option<&RoleInfo> {
        self.roles.get(&role)
    }
    /// The declared roles.
    pub fn roles(&self) -> impl Iterator<Item = ObjectRole> + '_ {
        self.roles.keys().copied()
    }
}

/// Every class a node knows, indexed by type id (the position of its name, sorted).
pub struct Registry {
    classes: Vec<ClassInfo>,
    by_name: HashMap<&'static str, ClassId>,
    hash: [u8; 8],
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("classes", &self.classes.iter().map(|c| c.name).collect::<Vec<_>>()).finish()
    }
}

static ALL: OnceLock<Result<Arc<Registry>, RegistryError>> = OnceLock::new();

impl Registry {
    /// The registry of every class in the binary (built once).
    pub fn global() -> Result<Arc<Registry>, RegistryError> {
        ALL.get_or_init(|| Self::build(inventory::iter::<ClassRegistration>.into_iter(), None).map(Arc::new)).clone()
    }

    /// A registry of only the named classes (for nodes that know a subset).
    pub fn only(names: &[&str]) -> Result<Registry, RegistryError> {
        Self::build(inventory::iter::<ClassRegistration>.into_iter(), Some(names))
    }

    fn build(
        regs: impl Iterator<Item = &'static ClassRegistration>,
        filter: Option<&[&str]>,
    ) -> Result<Registry, RegistryError> {
        let mut by_name: BTreeMap<&'static str, Vec<&'static ClassRegistration>> = BTreeMap::new();
        for r in regs {
            if filter.is_none_or(|f| f.contains(&r.name)) {
                by_name.entry(r.name).or_default().push(r);
            }
        }
        if let Some(f) = filter {
            if let Some(missing) = f.iter().find(|n| !by_name.contains_key(*n)) {
                return Err(RegistryError::UnknownClass((*missing).to_owned()));
            }
        }
        if by_name.len() > u16::MAX as usize + 1 {
            return Err(RegistryError::TooManyClasses(by_name.len()));
        }
        let mut classes = Vec::with_capacity(by_name.len());
        let mut index = HashMap::new();
        let mut canon = String::new();
        for (i, (name, regs)) in by_name.into_iter().enumerate() {
            let mut roles: BTreeMap<ObjectRole, RoleInfo> = BTreeMap::new();
            for r in regs {
                match roles.get_mut(&r.role) {
                    None => {
                        roles.insert(
                            r.role,
                            RoleInfo {
                                fields: r.fields,
                                validate: r.validate,
                                implementation: r.implementation.as_ref(),
                                sources: vec![r.source],
                            },
                        );
                    }
                    Some(info) => {
                        let a = signature_of(info.fields);
                        let b = signature_of(r.fields);
                        if a != b {
                            return Err(RegistryError::ConflictingSignatures {
                                name,
                                role: r.role,
                                first: info.sources[0],
                                second: r.source,
                                first_sig: describe(info.fields),
                                second_sig: describe(r.fields),
                            });
                        }
                        if let Some(imp) = &r.implementation {
                            match info.implementation {
                                Some(existing) if (existing.type_id)() != (imp.type_id)() => {
                                    return Err(RegistryError::DuplicateImplementation {
                                        name,
                                        role: r.role,
                                        first: (existing.type_name)(),
                                        second: (imp.type_name)(),
                                    });
                                }
                                Some(_) => {}
                                None => info.implementation = Some(imp),
                            }
                        }
                        info.sources.push(r.source);
                    }
                }
            }
            let _ = write!(canon, "{name}{{");
            for (role, info) in &roles {
                let _ = write!(canon, "{}:[{}]", role.0, signature_of(info.fields));
            }
            canon.push('}');
            index.insert(name, ClassId(i as u16));
            classes.push(ClassInfo { name, roles });
        }
        Ok(Registry { classes, by_name: index, hash: fnv1a(canon.as_bytes()).to_be_bytes() })
    }

    /// The class with this type id.
    pub fn class(&self, id: ClassId) -> Option<&ClassInfo> {
        self.classes.get(id.0 as usize)
    }

    /// The type id of a network name.
    pub fn id_of(&self, name: &str) -> Option<ClassId> {
        self.by_name.get(name).copied()
    }

    /// Every class, in type-id order.
    pub fn classes(&self) -> impl Iterator<Item = (ClassId, &ClassInfo)> {
        self.classes.iter().enumerate().map(|(i, c)| (ClassId(i as u16), c))
    }

    /// A hash of every class's signatures: use it as the network hash
    /// ([`NodeBuilder::network_hash`](crate::NodeBuilder::network_hash)) so that builds with
    /// different object definitions refuse each other at HELLO.
    pub fn schema_hash(&self) -> [u8; 8] {
        self.hash
    }
}

fn signature_of(fields: &[FieldDesc]) -> String {
    fields.iter().map(FieldDesc::wire_signature).collect::<Vec<_>>().join(",")
}

fn describe(fields: &[FieldDesc]) -> String {
    if fields.is_empty() {
        return "(no fields)".to_owned();
    }
    fields.iter().enumerate().map(|(i, f)| format!("{i}: {}", f.signature())).collect::<Vec<_>>().join("; ")
}

/// FNV-1a, 64 bits: small, stable across builds and platforms.
pub(crate) fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
