//! The Message API's dispatch: one processor per declared message type, the permission hook,
//! and the one place where a processor is called (decode, check, run, catch a panic, report).

use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::context::MessageContext;
use crate::error::DecodeError;
use crate::event::DiagnosticKind;
use crate::ids::ConnectionId;
use crate::message::{IdMap, Message, Signature};
use crate::net::{InPlace, Net, panic_text};
use crate::object::ObjectRuntime;
use crate::wire::Reader;

/// Decides whether a connection may send an application message type (see
/// [`NodeBuilder::message_permission`](crate::NodeBuilder::message_permission)).
pub(crate) type MessagePermission = Box<dyn FnMut(ConnectionId, u64, &Net) -> bool + Send>;

pub(crate) trait ErasedProcessor: Send {
    /// Decodes the parameters at `r` and runs the processor. With `exact`, the reader must
    /// hold nothing else (checked before the processor runs).
    fn call(&mut self, ctx: &mut MessageContext<'_>, r: &mut Reader<'_>, exact: bool) -> Result<(), DecodeError>;
}

struct Typed<M, F> {
    f: F,
    _m: PhantomData<fn(M)>,
}

impl<M, F> ErasedProcessor for Typed<M, F>
where
    M: Message,
    F: FnMut(&mut MessageContext<'_>, M) + Send,
{
    #[inline]
    fn call(&mut self, ctx: &mut MessageContext<'_>, r: &mut Reader<'_>, exact: bool) -> Result<(), DecodeError> {
        let msg = M::decode(r)?;
        if exact {
            r.finish()?;
        }
        (self.f)(ctx, msg);
        Ok(())
    }
}

/// A declared message type, with or without a processor on this node.
pub(crate) struct Declared {
    pub(crate) signature: Signature,
    processor: Option<Box<dyn ErasedProcessor>>,
}

impl Declared {
    pub(crate) fn of<M: Message>() -> Self {
        Self { signature: Signature::of::<M>(), processor: None }
    }

    pub(crate) fn with_processor<M, F>(f: F) -> Self
    where
        M: Message,
        F: FnMut(&mut MessageContext<'_>, M) + Send + 'static,
    {
        Self { processor: Some(Box::new(Typed { f, _m: PhantomData })), ..Self::of::<M>() }
    }

    pub(crate) fn has_processor(&self) -> bool {
        self.processor.is_some()
    }
}

/// Every declared message type of a node and its processor, with the permission hook.
pub(crate) struct Processors {
    table: IdMap<Declared>,
    permission: Option<MessagePermission>,
}

impl Processors {
    pub(crate) fn new(table: IdMap<Declared>, permission: Option<MessagePermission>) -> Self {
        Self { table, permission }
    }

    /// Runs the processor of `kind` on the parameters at `r`, for a message from `conn`.
    ///
    /// On the fast path (`in_place`, parameters decoded straight from the payload) anything
    /// unusual is left to the general path ([`InPlace::NotTaken`]), which reports it; a
    /// message whose arguments fail or whose processor panics is reported once and
    /// [`InPlace::Refused`].
    pub(crate) fn call(
        &mut self,
        net: &mut Net,
        objects: Option<&mut ObjectRuntime>,
        conn: ConnectionId,
        kind: u64,
        r: &mut Reader<'_>,
        in_place: bool,
    ) -> InPlace {
        let done = if in_place { InPlace::Refused } else { InPlace::Done };
        if let Some(allowed) = self.permission.as_mut() {
            if !allowed(conn, kind, net) {
                if in_place {
                    return InPlace::NotTaken;
                }
                let text = format!("message {kind} refused by the permission hook");
                net.diag.warn(Some(conn), DiagnosticKind::Refused, Some(kind), text);
                return done;
            }
        }
        let declared = self.table.get_mut(&kind);
        let Some((name, processor)) = declared.and_then(|d| Some((d.signature.name, d.processor.as_mut()?))) else {
            if in_place {
                return InPlace::NotTaken;
            }
            let text = match self.table.get(&kind) {
                Some(d) => format!("{} ({kind}) has no processor on this node", d.signature.name),
                None => format!("unknown message type {kind}"),
            };
            net.diag.warn(Some(conn), DiagnosticKind::UnknownMessage, Some(kind), text);
            return done;
        };
        net.current_sender = Some(conn);
        let result = {
            let mut ctx = MessageContext::new(net, objects, conn);
            catch_unwind(AssertUnwindSafe(|| processor.call(&mut ctx, r, !in_place)))
        };
        net.current_sender = None;
        match result {
            Ok(Ok(())) => return InPlace::Done,
            Ok(Err(e)) => {
                let text = format!("invalid arguments for {name} ({kind}): {e}");
                net.diag.warn(Some(conn), DiagnosticKind::InvalidArguments, Some(kind), text);
            }
            Err(panic) => {
                let text = format!("processor of {name} ({kind}) panicked: {}", panic_text(&panic));
                net.diag.error(Some(conn), DiagnosticKind::ProcessorPanicked, Some(kind), text);
            }
        }
        done
    }
}
