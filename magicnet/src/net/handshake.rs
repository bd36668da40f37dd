//! The handshake and the protocol's own messages: MOTD (server to client), HELLO (client to
//! server, with the version and network hash checks), the `rp` repository number, DISCONNECT,
//! SHUTDOWN and SHARED_PARAMETER.

use bytes::Bytes;

use super::connection::{ConnectionState, Side};
use super::{Holding, Net, Notice};
use crate::error::{DecodeError, SendError};
use crate::event::{CloseReason, DiagnosticKind, Event};
use crate::ids::{ConnectionId, DisconnectReason, Repository};
use crate::message::NetMessage;
use crate::protocol::{self, message as msg};
use crate::wire::{self, Bs64, NetType, Reader, S16, S64, Value};

/// What this node says when it greets, and what it expects: its MOTD and network hash, and
/// the next repository it hands to a client.
pub(crate) struct Greeting {
    pub(crate) motd: String,
    pub(crate) network_hash: Vec<u8>,
    next_repository: Repository,
}

impl Greeting {
    pub(crate) fn new(motd: String, network_hash: Vec<u8>) -> Self {
        Self { motd, network_hash, next_repository: Repository::FIRST_CLIENT }
    }

    /// The next client repository (wrapping back to the first after 2^32 - 1).
    fn assign_repository(&mut self) -> Repository {
        let rp = self.next_repository;
        self.next_repository = Repository(rp.0.checked_add(1).unwrap_or(Repository::FIRST_CLIENT.0));
        rp
    }
}

impl Net {
    /// Greets a connection this node accepted: MOTD, then it must answer HELLO.
    pub(crate) fn greet(&mut self, conn: ConnectionId) {
        let params = (S64::from(self.greeting.motd.as_str()),);
        self.queue_internal(msg::MOTD, &params, Some(conn));
    }

    /// The protocol's own messages (1-5); false for any other type.
    pub(crate) fn handle_protocol_message(&mut self, conn: ConnectionId, kind: u64, params: &[u8]) -> bool {
        match kind {
            msg::MOTD => self.on_motd(conn, params),
            msg::HELLO => self.on_hello(conn, params),
            msg::DISCONNECT => self.on_disconnect(conn, params),
            msg::SHUTDOWN => self.close_with(conn, CloseReason::PeerShutdown),
            msg::SHARED_PARAMETER => self.on_shared_parameter(conn, params),
            _ => return false,
        }
        true
    }

    fn on_motd(&mut self, conn: ConnectionId, params: &[u8]) {
        let Some(c) = self.conns.get(conn) else {
            return;
        };
        if c.side == Side::Accepted {
            let text = "MOTD from a client ignored: MOTD only travels server to client".to_owned();
            return self.diag.warn(Some(conn), DiagnosticKind::UnexpectedMessage, Some(msg::MOTD), text);
        }
        if c.state != ConnectionState::Handshaking {
            let text = "MOTD sent multiple times; ignored".to_owned();
            return self.diag.warn(Some(conn), DiagnosticKind::UnexpectedMessage, Some(msg::MOTD), text);
        }
        // Lenient: Python servers may send `None` (their default) or a long MOTD; the
        // handshake must go on either way.
        let motd = match wire::from_slice::<Vec<Value>>(params).ok().and_then(|v| v.into_iter().next()) {
            Some(Value::Str(s)) => truncate_chars(&s, protocol::MAX_MOTD_LEN).to_owned(),
            Some(Value::Nil) | None => String::new(),
            Some(other) => {
                let text = format!("MOTD is not a string ({other}); answering HELLO anyway");
                self.diag.warn(Some(conn), DiagnosticKind::InvalidArguments, Some(msg::MOTD), text);
                String::new()
            }
        };
        self.diag.emit(Event::MotdReceived { conn, motd });
        let hello = (protocol::PROTOCOL_VERSION, Bs64::from(self.greeting.network_hash.clone()));
        self.queue_internal(msg::HELLO, &hello, Some(conn));
        self.activate(conn);
    }

    fn on_hello(&mut self, conn: ConnectionId, params: &[u8]) {
        let Some(c) = self.conns.get(conn) else {
            return;
        };
        if c.side == Side::Initiated {
            let text = "HELLO from a server ignored: HELLO only travels client to server".to_owned();
            return self.diag.warn(Some(conn), DiagnosticKind::UnexpectedMessage, Some(msg::HELLO), text);
        }
        if c.state == ConnectionState::Active {
            return self.disconnect(conn, DisconnectReason::HELLO_TWICE, None);
        }
        // Each field is judged on its own, so every wrong HELLO gets its reason: any version
        // but 3 is reason 2, any hash but ours (of any type or length) is reason 3.
        let mut r = Reader::with_limits(params, self.limits.read());
        let _ = r.read_array_len();
        // The version as an integer, or as a float with the same value (Python compares
        // `3.0 == 3`, so a Python peer accepts it too).
        let version = crate::wire::Value::decode(&mut r).ok();
        let version_ok = match &version {
            Some(crate::wire::Value::Int(v)) => *v == protocol::PROTOCOL_VERSION as i128,
            Some(crate::wire::Value::Float(v)) => *v == f64::from(protocol::PROTOCOL_VERSION),
            _ => false,
        };
        // bytes, or (JSON) an array of small integers
        let hash = Vec::<u8>::decode(&mut r).ok();
        if !version_ok {
            let detail = format!("server speaks version {}", protocol::PROTOCOL_VERSION);
            return self.disconnect(conn, DisconnectReason::WRONG_PROTOCOL_VERSION, Some(&detail));
        }
        if hash.as_deref() != Some(self.greeting.network_hash.as_slice()) {
            return self.disconnect(conn, DisconnectReason::HASH_MISMATCH, None);
        }
        self.assign_and_activate(conn);
    }

    /// Gives an accepted connection its repository number and makes it active. The number
    /// goes out before anything activation produces (objects), and is kept on the
    /// connection, where the peer cannot overwrite it.
    pub(crate) fn assign_and_activate(&mut self, conn: ConnectionId) {
        let rp = self.greeting.assign_repository();
        if let Some(c) = self.conns.get_mut(conn) {
            c.repository = Some(rp);
        }
        if let Err(e) = self.set_shared_parameter(conn, "rp", &rp.0) {
            tracing::error!(%conn, error = %e, "cannot assign a repository");
        }
        self.activate(conn);
    }

    fn on_disconnect(&mut self, conn: ConnectionId, params: &[u8]) {
        // Lenient: whatever the peer sent, it is leaving; keep what can be read.
        let mut r = Reader::with_limits(params, self.limits.read());
        let _ = r.read_array_len();
        let reason = DisconnectReason(r.read_int().ok().and_then(|v| u8::try_from(v).ok()).unwrap_or(0));
        let detail = r.read_str().ok().map(|d| truncate_chars(d, protocol::MAX_DISCONNECT_DETAIL_LEN).to_owned());
        let mut description = if reason.is_application() {
            format!("{} (reason {})", reason.describe(), reason.code())
        } else {
            reason.describe().to_owned()
        };
        if let Some(d) = detail.as_deref().filter(|d| !d.is_empty()) {
            description.push_str(": ");
            description.push_str(d);
        }
        tracing::info!(%conn, reason = reason.code(), %description, "peer disconnected us");
        self.diag.emit(Event::Disconnected { conn, reason, detail, description });
        self.close_with(conn, CloseReason::PeerDisconnected { reason });
    }

    pub(crate) fn on_shared_parameter(&mut self, conn: ConnectionId, params: &[u8]) {
        let mut r = Reader::with_limits(params, self.limits.read());
        let parsed = (|| {
            wire::expect_array(&mut r, 2)?;
            let name = S16::decode(&mut r)?;
            let start = r.position();
            Value::decode(&mut r)?;
            let end = r.position();
            r.finish()?;
            Ok::<_, DecodeError>((name.0, start, end))
        })();
        let (name, start, end) = match parsed {
            Ok(v) => v,
            Err(e) => {
                let text = format!("invalid arguments for SHARED_PARAMETER: {e}");
                let kind = DiagnosticKind::InvalidArguments;
                return self.diag.warn(Some(conn), kind, Some(msg::SHARED_PARAMETER), text);
            }
        };
        let max = self.limits.max_shared_parameters;
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if name == "rp" && c.side == Side::Accepted {
            let text = "`rp` refused: the repository number is assigned by this node".to_owned();
            return self.diag.warn(Some(conn), DiagnosticKind::Refused, Some(msg::SHARED_PARAMETER), text);
        }
        if !c.shared.contains_key(&name) && c.shared.len() >= max {
            let text = format!("shared parameter `{name}` refused: at most {max} per connection");
            return self.diag.warn(Some(conn), DiagnosticKind::Refused, Some(msg::SHARED_PARAMETER), text);
        }
        let held = shared_bytes(&c.shared) - c.shared.get(&name).map_or(0, |v| name.len() + v.len());
        let bytes = held + name.len() + (end - start);
        let max_bytes = self.limits.max_shared_parameter_bytes;
        if c.side == Side::Accepted && bytes > max_bytes {
            let text =
                format!("shared parameters over {max_bytes} bytes on one connection (`{name}` would make {bytes})");
            return self.refuse(conn, DisconnectReason::LIMIT_EXCEEDED, text);
        }
        c.shared.insert(name.clone(), Bytes::copy_from_slice(&params[start..end]));
        self.set_usage(conn, Holding::SharedParameters, bytes);
        let vz = name == "vz";
        self.diag.emit(Event::SharedParameterChanged { conn, name });
        if vz {
            self.notices.push(Notice::VisibleZones(conn));
        }
    }
}

impl Net {
    /// Sets a shared parameter on both sides of a connection: kept here, sent to the peer.
    pub(crate) fn set_shared_parameter(
        &mut self,
        conn: ConnectionId,
        name: &str,
        value: &impl NetType,
    ) -> Result<(), SendError> {
        let encoded = Bytes::from(wire::to_vec(value)?);
        let Some(c) = self.conns.get_mut(conn) else {
            return Err(SendError::UnknownConnection(conn));
        };
        if c.state == ConnectionState::Closing {
            return Err(SendError::ConnectionClosing(conn));
        }
        let mut params = Vec::with_capacity(encoded.len() + name.len() + 4);
        wire::msgpack::write_array_len(&mut params, 2);
        S16::from(name).encode(&mut params)?;
        params.extend_from_slice(&encoded);
        c.shared.insert(name.to_owned(), encoded);
        let bytes = shared_bytes(&c.shared);
        self.set_usage(conn, Holding::SharedParameters, bytes);
        self.router.push(NetMessage::from_raw(msg::SHARED_PARAMETER, Bytes::from(params)).to(conn));
        Ok(())
    }
}

/// What a connection's shared parameters take: names and encoded values.
fn shared_bytes(shared: &std::collections::HashMap<String, Bytes>) -> usize {
    shared.iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// Cuts a string to at most `max` characters.
pub(crate) fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
