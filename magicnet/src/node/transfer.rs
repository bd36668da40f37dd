//! Moving a gateway's client to another server (see `net/transfer.rs` for the exchange):
//! the application's hooks, which choose what travels with the client, and the node's steps.

#![cfg_attr(not(feature = "gateway"), allow(dead_code, unused_imports))]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use super::{MessageContext, Node};
use crate::error::ConfigError;
use crate::event::DiagnosticKind;
use crate::ids::{ConnectionId, DisconnectReason, RoleId};
use crate::net::panic_text;

/// What leaves with a client: the application's bytes for the next server.
type OutHook = Box<dyn FnMut(&mut MessageContext<'_>) -> Vec<u8> + Send>;
/// What a client brings: the bytes its last server's out hook gave.
type InHook = Box<dyn FnMut(&mut MessageContext<'_>, &[u8]) + Send>;

/// The application's transfer hooks ([`NodeBuilder::on_transfer_out`] and
/// [`NodeBuilder::on_transfer_in`]).
///
/// [`NodeBuilder::on_transfer_out`]: crate::NodeBuilder::on_transfer_out
/// [`NodeBuilder::on_transfer_in`]: crate::NodeBuilder::on_transfer_in
#[derive(Default)]
pub(crate) struct TransferHooks {
    pub(crate) out: Option<OutHook>,
    pub(crate) into: Option<InHook>,
}

impl Node {
    /// The gateway fenced `conn` (its input ended here): its view is dropped, then it is
    /// handed off.
    #[cfg_attr(not(feature = "gateway"), allow(dead_code))]
    pub(crate) fn fenced(&mut self, conn: ConnectionId) {
        if !self.net.fenced(conn) {
            return;
        }
        if let Some(rt) = self.objects.as_mut() {
            rt.leave_view(&mut self.net, conn);
            rt.pump_for(&mut self.net, conn);
        }
        self.net.flush();
        self.hand_off_ready();
    }

    /// The gateway refused to move `conn` (STAY): it stays here.
    #[cfg_attr(not(feature = "gateway"), allow(dead_code))]
    pub(crate) fn transfer_refused(&mut self, conn: ConnectionId, reason: &str) {
        self.net.stay(conn, reason, false);
    }

    /// Hands off every fenced connection whose objects are all dropped from its view.
    pub(crate) fn hand_off_ready(&mut self) {
        for conn in self.net.fenced_conns() {
            if self.objects.as_ref().is_some_and(|rt| rt.sweeping(conn)) {
                continue;
            }
            let app = self.run_out_hook(conn);
            let state = self.net.session_state(conn, app);
            if !self.net.hand_off(conn, &state) {
                let reason = format!("its session is {} bytes, over what a link frame carries", state.len());
                self.net.stay(conn, &reason, true);
                // back in its zones: they are generated to it again
                if let Some(rt) = self.objects.as_mut() {
                    rt.rejoin_view(&mut self.net, conn);
                }
            }
        }
        self.settle();
    }

    fn run_out_hook(&mut self, conn: ConnectionId) -> Vec<u8> {
        let Some(hook) = self.hooks.out.as_mut() else { return Vec::new() };
        let mut ctx = MessageContext::new(&mut self.net, self.objects.as_mut(), conn);
        match catch_unwind(AssertUnwindSafe(|| hook(&mut ctx))) {
            Ok(bytes) => bytes,
            Err(panic) => {
                let text = format!("the transfer out hook panicked: {}", panic_text(&panic));
                self.net.diag.error(Some(conn), DiagnosticKind::ProcessorPanicked, None, text);
                Vec::new()
            }
        }
    }

    /// A client another server handed over through `carrier` as `vc`, with its session
    /// `state`: it is active at once, its session restored, then the in hook runs.
    #[cfg(feature = "gateway")]
    pub(crate) fn adopt(
        &mut self,
        role: RoleId,
        peer: Option<std::net::SocketAddr>,
        carrier: crate::net::CarrierId,
        vc: u64,
        state: &[u8],
        now: Instant,
    ) -> Result<ConnectionId, ConfigError> {
        let conn = self.net.accept_virtual(role, peer, (carrier, vc), true, now)?;
        match crate::net::read_session(state, self.net.limits.read()) {
            Ok(session) => {
                self.net.adopt(conn, &session);
                self.settle();
                if self.net.conns.is_open(conn)
                    && let Some(hook) = self.hooks.into.as_mut()
                {
                    let mut ctx = MessageContext::new(&mut self.net, self.objects.as_mut(), conn);
                    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| hook(&mut ctx, &session.app))) {
                        let text = format!("the transfer in hook panicked: {}", panic_text(&panic));
                        self.net.diag.error(Some(conn), DiagnosticKind::ProcessorPanicked, None, text);
                    }
                }
            }
            Err(why) => {
                self.net.diag.error(Some(conn), DiagnosticKind::MalformedPayload, None, why.clone());
                self.net.disconnect(conn, DisconnectReason::BROKEN_INVARIANT, Some("session lost in a transfer"));
            }
        }
        self.net.flush();
        self.settle();
        Ok(conn)
    }
}
