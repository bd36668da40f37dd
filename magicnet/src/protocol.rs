//! Constants of MagicNet protocol version 3, as spoken by the Python package `magicnet` 0.0.7.

/// The protocol version sent in HELLO.
pub const PROTOCOL_VERSION: u16 = 3;

/// The Python package's default network hash (`bytes.fromhex("12345678")`).
pub const DEFAULT_NETWORK_HASH: [u8; 4] = [0x12, 0x34, 0x56, 0x78];

/// Largest payload a length-prefixed frame can carry.
pub const MAX_FRAME_PAYLOAD: usize = u16::MAX as usize;

/// The first message id available to applications; 0-63 belong to the protocol.
pub const FIRST_APPLICATION_MESSAGE: u64 = 64;

/// The longest MOTD, in characters.
pub const MAX_MOTD_LEN: usize = 64;

/// The longest network hash, in bytes.
pub const MAX_NETWORK_HASH_LEN: usize = 64;

/// The longest DISCONNECT detail, in characters.
pub const MAX_DISCONNECT_DETAIL_LEN: usize = 64;

/// Standard message types (0-63 are reserved; these are the ones protocol v3 defines).
pub mod message {
    /// `[motd: s64]`, server to client right after accepting.
    pub const MOTD: u64 = 1;
    /// `[protocol_version: u16, network_hash: bs64]`, client to server on MOTD.
    pub const HELLO: u64 = 2;
    /// `[reason: u8, detail: s64 | nil]`, either side before it closes.
    pub const DISCONNECT: u64 = 3;
    /// `[]`, either side when it shuts down.
    pub const SHUTDOWN: u64 = 4;
    /// `[name: s16, value: any]`, either side.
    pub const SHARED_PARAMETER: u64 = 5;
    /// `[local_id: u32, type: u16, owner: u32, zone: u32, fields]`, non-authority to authority.
    pub const CREATE_OBJECT: u64 = 6;
    /// `[oid: u64, type: u16, owner: u32, zone: u32]`, authority.
    pub const GENERATE_OBJECT: u64 = 7;
    /// `[oid: u64]`, non-authority.
    pub const REQUEST_DELETE_OBJECT: u64 = 8;
    /// `[oid: u64]`, authority.
    pub const DESTROY_OBJECT: u64 = 9;
    /// `[oid: u64, role: u8, field: u8, args: array]`, either side.
    pub const SET_OBJECT_FIELD: u64 = 10;
    /// `[oid: u64]`, authority.
    pub const OBJECT_GENERATE_DONE: u64 = 11;
    /// `[]`, client.
    pub const REQUEST_VISIBLE_OBJECTS: u64 = 12;

    /// The protocol name of a standard message type, for logs.
    pub fn name(kind: u64) -> &'static str {
        match kind {
            MOTD => "MOTD",
            HELLO => "HELLO",
            DISCONNECT => "DISCONNECT",
            SHUTDOWN => "SHUTDOWN",
            SHARED_PARAMETER => "SHARED_PARAMETER",
            CREATE_OBJECT => "CREATE_OBJECT",
            GENERATE_OBJECT => "GENERATE_OBJECT",
            REQUEST_DELETE_OBJECT => "REQUEST_DELETE_OBJECT",
            DESTROY_OBJECT => "DESTROY_OBJECT",
            SET_OBJECT_FIELD => "SET_OBJECT_FIELD",
            OBJECT_GENERATE_DONE => "OBJECT_GENERATE_DONE",
            REQUEST_VISIBLE_OBJECTS => "REQUEST_VISIBLE_OBJECTS",
            0..=63 => "reserved",
            _ => "application",
        }
    }
}
