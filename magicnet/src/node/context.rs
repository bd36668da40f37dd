//! What a processor gets while it handles a message.

use std::any::Any;

use crate::error::SendError;
use crate::ids::{ConnectionId, DisconnectReason};
use crate::message::Message;
use crate::net::{Net, NetApi};
use crate::object::{ObjectApi, ObjectRuntime};

/// What a processor can do while it handles a message: everything [`NetApi`] and
/// [`ObjectApi`] offer (bring them into scope with `use magicnet::prelude::*`), plus shortcuts
/// about the sender.
pub struct MessageContext<'a> {
    net: &'a mut Net,
    objects: Option<&'a mut ObjectRuntime>,
    sender: ConnectionId,
}

impl<'a> MessageContext<'a> {
    pub(crate) fn new(net: &'a mut Net, objects: Option<&'a mut ObjectRuntime>, sender: ConnectionId) -> Self {
        Self { net, objects, sender }
    }

    /// The connection the message came from.
    pub fn sender(&self) -> ConnectionId {
        self.sender
    }

    /// Sends a message to the sender only.
    pub fn reply<M: Message>(&mut self, msg: &M) -> Result<(), SendError> {
        let to = self.sender;
        self.send_to(to, msg)
    }

    /// Disconnects the sender with a reason code and an optional detail (at most 64
    /// characters; longer details are cut).
    pub fn disconnect_sender(&mut self, reason: DisconnectReason, detail: Option<&str>) {
        let to = self.sender;
        self.disconnect(to, reason, detail);
    }

    /// The sender's application context of type `T`, if set.
    pub fn sender_context<T: Any + Send>(&mut self) -> Option<&mut T> {
        let to = self.sender;
        self.context_mut::<T>(to)
    }

    /// Sets the sender's application context of type `T`.
    pub fn set_sender_context<T: Any + Send>(&mut self, value: T) {
        let to = self.sender;
        self.set_context(to, value);
    }
}

impl NetApi for MessageContext<'_> {
    fn net(&self) -> &Net {
        self.net
    }
    fn net_mut(&mut self) -> &mut Net {
        self.net
    }
}

impl ObjectApi for MessageContext<'_> {
    fn parts(&self) -> (&Net, Option<&ObjectRuntime>) {
        (self.net, self.objects.as_deref())
    }
    fn parts_mut(&mut self) -> (&mut Net, Option<&mut ObjectRuntime>) {
        (self.net, self.objects.as_deref_mut())
    }
}
