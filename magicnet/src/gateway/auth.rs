//! Authenticating a gateway link: a challenge and response with HMAC-SHA256 over a shared
//! secret, both ways, before any frame. The secret never travels; each side proves it knows
//! it over fresh random nonces, so a recorded exchange cannot be replayed.
//!
//! ```text
//! server  -> gateway  "MNGW" version:u8 server_nonce[32]
//! gateway -> server   "MNGW" version:u8 gateway_nonce[32] proof[32] name_len:u8 name
//!                     proof = HMAC(secret, "magicnet gateway" server_nonce gateway_nonce name)
//! server  -> gateway  1 proof[32]       proof = HMAC(secret, "magicnet server" server_nonce gateway_nonce)
//!                  or 0 len:u8 reason   (refused; the server closes the link)
//! ```

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What starts a gateway link, from either side.
pub(crate) const MAGIC: &[u8; 4] = b"MNGW";
/// The link's version.
pub(crate) const VERSION: u8 = 1;

/// The secret a gateway and its upstream share. Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct GatewaySecret(hmac::Key, bool);

impl GatewaySecret {
    /// A secret from any bytes (use 16 or more random ones when the link leaves the
    /// machine, and carry the link over TLS or a private network).
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        let s = secret.as_ref();
        Self(hmac::Key::new(hmac::HMAC_SHA256, s), s.is_empty())
    }

    /// No secret (an empty one): for a link on one machine or in tests. The server warns
    /// when it accepts links without a secret.
    pub fn none() -> Self {
        Self::new([])
    }

    /// True for the empty secret.
    pub fn is_empty(&self) -> bool {
        self.1
    }

    fn proof(&self, label: &[u8], server_nonce: &[u8], gateway_nonce: &[u8], name: &[u8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.0);
        for part in [label, server_nonce, gateway_nonce, name] {
            ctx.update(part);
        }
        ctx.sign()
    }

    fn verify(&self, label: &[u8], server_nonce: &[u8], gateway_nonce: &[u8], name: &[u8], proof: &[u8]) -> bool {
        let mut msg = Vec::with_capacity(label.len() + 64 + name.len());
        for part in [label, server_nonce, gateway_nonce, name] {
            msg.extend_from_slice(part);
        }
        hmac::verify(&self.0, &msg, proof).is_ok()
    }
}

impl std::fmt::Debug for GatewaySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.1 { "GatewaySecret(none)" } else { "GatewaySecret(..)" })
    }
}

/// Why a link was not established.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkAuthError {
    /// The socket failed or closed during the exchange.
    #[error("the gateway link closed during authentication: {0}")]
    Io(#[from] std::io::Error),
    /// The peer does not start with the link's magic bytes: it is not a MagicNet gateway
    /// link (a client on the gateway port, or a gateway pointed at a client port).
    #[error("the peer does not speak the MagicNet gateway link (is this the gateway port of a MagicNet server?)")]
    NotALink,
    /// The peer speaks another version of the link.
    #[error("the peer speaks gateway link version {0}; this node speaks {VERSION}")]
    Version(u8),
    /// The peer's proof does not match the secret.
    #[error("wrong gateway secret: the proof does not match (give both sides the same --gateway-secret)")]
    WrongSecret,
    /// The server refused the link, with its reason.
    #[error("the upstream refused the gateway link: {0}")]
    Refused(String),
}

const GATEWAY_LABEL: &[u8] = b"magicnet gateway";
const SERVER_LABEL: &[u8] = b"magicnet server";

fn nonce() -> [u8; 32] {
    let mut n = [0u8; 32];
    // the system's random source does not fail on Linux once booted; a zero nonce would
    // only weaken replay protection, never the secret
    if SystemRandom::new().fill(&mut n).is_err() {
        tracing::error!("no system randomness for the gateway link's nonce");
    }
    n
}

async fn read_hello<S: AsyncRead + Unpin>(s: &mut S) -> Result<[u8; 32], LinkAuthError> {
    let mut head = [0u8; 5];
    s.read_exact(&mut head).await?;
    if &head[..4] != MAGIC {
        return Err(LinkAuthError::NotALink);
    }
    if head[4] != VERSION {
        return Err(LinkAuthError::Version(head[4]));
    }
    let mut n = [0u8; 32];
    s.read_exact(&mut n).await?;
    Ok(n)
}

/// The server's side: challenges the gateway, checks its proof, and proves itself. Returns
/// the gateway's name. A refused gateway is told why before the caller closes the link.
pub(crate) async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    secret: &GatewaySecret,
) -> Result<String, LinkAuthError> {
    let server_nonce = nonce();
    let mut hello = Vec::with_capacity(37);
    hello.extend_from_slice(MAGIC);
    hello.push(VERSION);
    hello.extend_from_slice(&server_nonce);
    s.write_all(&hello).await?;
    let gateway_nonce = read_hello(s).await?;
    let mut proof = [0u8; 32];
    s.read_exact(&mut proof).await?;
    let mut len = [0u8; 1];
    s.read_exact(&mut len).await?;
    let mut name = vec![0u8; len[0] as usize];
    s.read_exact(&mut name).await?;
    if !secret.verify(GATEWAY_LABEL, &server_nonce, &gateway_nonce, &name, &proof) {
        let why = b"wrong gateway secret";
        let mut refusal = vec![0u8, why.len() as u8];
        refusal.extend_from_slice(why);
        let _ = s.write_all(&refusal).await;
        return Err(LinkAuthError::WrongSecret);
    }
    let mut ok = vec![1u8];
    ok.extend_from_slice(secret.proof(SERVER_LABEL, &server_nonce, &gateway_nonce, &[]).as_ref());
    s.write_all(&ok).await?;
    Ok(String::from_utf8_lossy(&name).into_owned())
}

/// The gateway's side: answers the server's challenge and checks the server's proof.
pub(crate) async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    secret: &GatewaySecret,
    name: &str,
) -> Result<(), LinkAuthError> {
    let server_nonce = read_hello(s).await?;
    let gateway_nonce = nonce();
    let name = &name.as_bytes()[..name.len().min(255)];
    let mut answer = Vec::with_capacity(70 + name.len());
    answer.extend_from_slice(MAGIC);
    answer.push(VERSION);
    answer.extend_from_slice(&gateway_nonce);
    answer.extend_from_slice(secret.proof(GATEWAY_LABEL, &server_nonce, &gateway_nonce, name).as_ref());
    answer.push(name.len() as u8);
    answer.extend_from_slice(name);
    s.write_all(&answer).await?;
    let mut status = [0u8; 1];
    s.read_exact(&mut status).await?;
    if status[0] != 1 {
        let mut len = [0u8; 1];
        s.read_exact(&mut len).await?;
        let mut why = vec![0u8; len[0] as usize];
        s.read_exact(&mut why).await?;
        return Err(LinkAuthError::Refused(String::from_utf8_lossy(&why).into_owned()));
    }
    let mut proof = [0u8; 32];
    s.read_exact(&mut proof).await?;
    if !secret.verify(SERVER_LABEL, &server_nonce, &gateway_nonce, &[], &proof) {
        return Err(LinkAuthError::WrongSecret);
    }
    Ok(())
}
