"""A MagicNet v3 chat client, written without any Rust, for the transport mappings beyond TCP.

MagicNet for Rust documents in docs/protocol.md ("Transport mappings") how v3 payloads
travel over TLS, WebSocket and QUIC. The Rust client and server agreeing with each other only shows
that they are self-consistent; this script implements each mapping independently, from the document,
with stock Python libraries (stdlib `ssl`, `websockets`, `aioquic`, `msgpack`), so that a Rust test
that runs it against a Rust server proves the server speaks the mapping as documented:

- tls:  TLS 1.3 over TCP with ALPN `magicnet/3`, then the TCP framing (2-byte big-endian length +
        payload) in both directions.
- ws:   one payload per binary WebSocket message (no length prefix), subprotocol `magicnet.v3`
        offered; a text message is a protocol error (server closes with 1003), an over-large message
        is refused (1009).
- quic: ALPN `magicnet/3`; the client opens ONE bidirectional stream, writes an empty frame (two
        zero bytes) so the server learns of it, then the TCP framing both ways on that stream;
        unreliable payloads may travel as QUIC datagrams, one payload per datagram, no prefix.
        A second stream is a protocol error (server closes with application error code 1).

On top of the mapping it plays the chat application of the seed example (message ids 64..67).

usage:
  mapping_client.py --transport {tls,ws,quic} --host 127.0.0.1 --port N [--path /x]
                    --name NAME --text TEXT [--mode MODE] [--timeout S] [--wait S]

Modes: chat (default), datagram (quic), text-frame (ws), oversized (ws), extra-stream (quic),
no-username, stall. See MODES below for what each one expects.

Output: one JSON object per line on stdout, flushed, ending with
{"event": "result", "ok": true|false, "why": "..."}. Exit status 0 when the mode's expectation was
met, 1 when it was not (or on timeout), 2 for usage errors.

The test servers use a generated self-signed development certificate, so this client skips
certificate verification for TLS and QUIC (see make_tls_context / QuicLink.open). It is a test tool:
never copy that into a client that talks to a real server.
"""

import argparse
import asyncio
import contextlib
import json
import ssl
import sys
import time
from functools import partial

import msgpack

# ---------------------------------------------------------------------------------------------
# Protocol constants (docs/protocol.md)

MSG_MOTD = 1
MSG_HELLO = 2
MSG_DISCONNECT = 3
MSG_SHUTDOWN = 4
MSG_SHARED_PARAMETER = 5

# The chat application of the seed example.
MSG_SET_NAME = 64
MSG_CUSTOM = 65
MSG_CUSTOM_RESP = 66
MSG_BROADCAST = 67

PROTOCOL_VERSION = 3
NETWORK_HASH = b"\x12\x34\x56\x78"  # the Python package's default network hash, sent as msgpack bin
ALPN = "magicnet/3"  # TLS and QUIC
WS_SUBPROTOCOL = "magicnet.v3"
MAX_FRAME = 65535  # the 2-byte length prefix of the stream framing

MODES = {
    # mode: (transports it applies to, one-line description)
    "chat": ("tls ws quic", "SET_NAME + CUSTOM in one payload; expect the reversed text back"),
    "datagram": ("quic", "SET_NAME on the stream, CUSTOM as a QUIC datagram; expect a reply"),
    "text-frame": ("ws", "send a WebSocket text message; expect close code 1003"),
    "oversized": ("ws", "send a 70000-byte binary message; expect close code 1009"),
    "extra-stream": ("quic", "open a second bidirectional stream; expect application close 1"),
    "no-username": ("tls ws quic", "CUSTOM before SET_NAME; expect DISCONNECT 10, then a close"),
    "stall": ("tls ws quic", "never send HELLO; expect the server to close within --wait s"),
}


def out(event, **fields):
    """Print one event as a JSON line (bytes shown as hex) and flush."""
    record = {"event": event, **fields}
    print(json.dumps(record, default=lambda o: o.hex() if isinstance(o, bytes) else repr(o)), flush=True)


class Failed(Exception):
    """The mode's expectation was not met; the message says why."""


# ---------------------------------------------------------------------------------------------
# Payloads and frames


def encode(*messages):
    """A payload: the messages as msgpack values back to back. Each message is (type, params)."""
    return b"".join(msgpack.packb([t, list(params)], use_bin_type=True) for t, params in messages)


def decode(payload):
    """Split a payload into its messages; raise ValueError on anything that is not [uint, array]."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(payload)
    messages = []
    for value in unpacker:
        if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int)
                and value[0] >= 0 and isinstance(value[1], list)):
            raise ValueError(f"not a [type, params] message: {value!r}")
        messages.append((value[0], value[1]))
    if unpacker.tell() != len(payload):
        raise ValueError(f"payload of {len(payload)} bytes ends inside a value "
                         f"(decoded {unpacker.tell()} bytes)")
    return messages


def frame(payload):
    """The stream framing: 2-byte big-endian length, then the payload."""
    if len(payload) > MAX_FRAME:
        raise ValueError(f"payload of {len(payload)} bytes does not fit in one frame")
    return len(payload).to_bytes(2, "big") + payload


class FrameSplitter:
    """Reassembles frames from a byte stream that arrives in arbitrary pieces."""

    def __init__(self):
        self.buffer = bytearray()

    def feed(self, data):
        """Add received bytes; return the payloads of every frame now complete (empty frames too)."""
        self.buffer += data
        payloads = []
        while len(self.buffer) >= 2:
            length = int.from_bytes(self.buffer[:2], "big")
            if len(self.buffer) < 2 + length:
                break
            payloads.append(bytes(self.buffer[2:2 + length]))
            del self.buffer[:2 + length]
        return payloads


# ---------------------------------------------------------------------------------------------
# Transports. Each link turns its transport into a queue of events:
#   ("payload", bytes, via)          one MagicNet payload (via: "stream", "message" or "datagram")
#   ("text", str)                    a WebSocket text message (a protocol error from a server)
#   ("note", event, fields)          something else the transport saw, printed as it is
#   ("closed", how, code, reason)    the transport closed (always the last event)


class Link:
    def __init__(self, args):
        self.args = args
        self.events = asyncio.Queue()
        self.closed = None  # (how, code, reason) once the transport closed
        self.closing_locally = False
        self.splitter = FrameSplitter()

    def _push_stream_bytes(self, data, via="stream"):
        for payload in self.splitter.feed(data):
            self.events.put_nowait(("payload", payload, via))

    def _note(self, event, **fields):
        """Print an event of the transport itself, in order with the payloads before it."""
        self.events.put_nowait(("note", event, fields))

    def _set_closed(self, how, code=None, reason=""):
        if self.closed is None:
            if self.closing_locally:
                how = f"local ({how})"
            self.closed = (how, code, reason)
            self.events.put_nowait(("closed", how, code, reason))

    async def open(self):
        raise NotImplementedError

    async def send(self, payload):
        """Send one MagicNet payload the mapping's way."""
        raise NotImplementedError

    async def close(self):
        """Close the transport cleanly (idempotent)."""
        raise NotImplementedError


def make_tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # The servers under test use a generated, self-signed DEVELOPMENT certificate: skip certificate
    # and host-name verification on purpose. This is a test client; never do this in production.
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # docs/protocol.md: "exactly the TCP framing inside a TLS 1.3 session". Refuse anything older.
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols([ALPN])
    return ctx


class TlsLink(Link):
    async def open(self):
        self.reader, self.writer = await asyncio.open_connection(
            self.args.host, self.args.port, ssl=make_tls_context(), server_hostname=self.args.host)
        tls = self.writer.get_extra_info("ssl_object")
        self.alpn = tls.selected_alpn_protocol()
        out("alpn", value=self.alpn)
        out("tls_version", value=tls.version())
        self.reader_task = asyncio.create_task(self._read())

    async def _read(self):
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    self._set_closed("eof")
                    return
                self._push_stream_bytes(data)
        except (ConnectionResetError, BrokenPipeError) as e:
            self._set_closed("reset", None, str(e))
        except ssl.SSLError as e:
            self._set_closed("tls_error", None, str(e))
        except OSError as e:
            self._set_closed("error", None, str(e))

    async def send(self, payload):
        await self.send_raw(frame(payload))

    async def send_raw(self, data):
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (ConnectionError, OSError) as e:
            out("send_failed", error=str(e))  # the read side reports the close

    async def close(self):
        if self.closed is not None:
            self.writer.transport.abort()  # the server closed already: just free the socket
            return
        self.closing_locally = True
        self.writer.close()  # sends TLS close_notify
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 2)
        except (asyncio.TimeoutError, ConnectionError, OSError, ssl.SSLError):
            self.writer.transport.abort()
        # Let the reader see the end of the stream, then report the close ourselves if it did not.
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self.reader_task), 1)
        self.reader_task.cancel()
        self._set_closed("closed")


class WsLink(Link):
    async def open(self):
        from websockets.asyncio.client import connect

        host = f"[{self.args.host}]" if ":" in self.args.host else self.args.host
        uri = f"ws://{host}:{self.args.port}{self.args.path}"
        self.ws = await connect(
            uri,
            subprotocols=[WS_SUBPROTOCOL],
            compression=None,  # plain frames: the mapping says nothing about permessage-deflate
            max_size=None,  # let the server's limits, not ours, decide what is too big
            ping_interval=None,
            open_timeout=self.args.timeout,
        )
        self.subprotocol = self.ws.subprotocol
        out("subprotocol", value=self.subprotocol)
        self.reader_task = asyncio.create_task(self._read())

    async def _read(self):
        from websockets.exceptions import ConnectionClosed

        try:
            async for message in self.ws:
                if isinstance(message, str):
                    self.events.put_nowait(("text", message))
                else:
                    self.events.put_nowait(("payload", message, "message"))
        except ConnectionClosed:
            pass
        except Exception as e:  # noqa: BLE001 - report whatever broke the connection
            self._set_closed("error", None, repr(e))
            return
        received = self.ws.protocol.close_rcvd
        if received is not None:
            self._set_closed("close_frame", received.code, received.reason)
        else:
            # No close frame on the wire (RFC 6455 would call this 1006; we report null).
            self._set_closed("no_close_frame", None, "")

    async def send(self, payload):
        await self._send(payload)

    async def send_text(self, text):
        await self._send(text)

    async def _send(self, message):
        from websockets.exceptions import ConnectionClosed

        try:
            await self.ws.send(message)
        except ConnectionClosed as e:
            out("send_failed", error=str(e))  # the reader reports the close

    async def close(self):
        if self.closed is not None:
            return
        self.closing_locally = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(1000, "bye"), 3)
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self.reader_task), 1)
        self.reader_task.cancel()
        self._set_closed("closed", 1000, "bye")


class QuicLink(Link):
    async def open(self):
        from aioquic.asyncio.client import connect
        from aioquic.asyncio.protocol import QuicConnectionProtocol
        from aioquic.quic.configuration import QuicConfiguration

        class Protocol(QuicConnectionProtocol):
            def __init__(self, *args, link, **kwargs):
                super().__init__(*args, **kwargs)
                self.link = link

            def quic_event_received(self, event):
                self.link._on_quic_event(event)

        configuration = QuicConfiguration(
            is_client=True,
            alpn_protocols=[ALPN],
            max_datagram_frame_size=65536,  # we accept datagrams (the datagram mode needs them)
            idle_timeout=max(30.0, self.args.timeout + self.args.wait),
        )
        # The servers under test use a generated, self-signed DEVELOPMENT certificate: skip
        # verification on purpose. This is a test client; never do this in production.
        configuration.verify_mode = ssl.CERT_NONE
        self.alpn = None
        self.stream_id = None
        # Wait for the handshake through our own future rather than aioquic's wait_connected(),
        # whose shielded waiter would log "exception never retrieved" if the timeout cancels us.
        self.handshake_done = asyncio.get_running_loop().create_future()
        self._stack = contextlib.AsyncExitStack()
        self.protocol = await self._stack.enter_async_context(connect(
            self.args.host, self.args.port, configuration=configuration,
            create_protocol=partial(Protocol, link=self), wait_connected=False))
        self.protocol.transmit()  # with wait_connected=False aioquic leaves the first flight to us
        await self.handshake_done
        out("alpn", value=self.alpn)
        # The one MagicNet stream: open it and write an empty frame so the server learns of it.
        quic = self.protocol._quic
        self.stream_id = quic.get_next_available_stream_id()
        quic.send_stream_data(self.stream_id, b"\x00\x00")
        self.protocol.transmit()

    def _on_quic_event(self, event):
        from aioquic.quic import events

        if isinstance(event, events.HandshakeCompleted):
            self.alpn = event.alpn_protocol
            if not self.handshake_done.done():
                self.handshake_done.set_result(None)
        elif isinstance(event, events.StreamDataReceived):
            if event.stream_id == self.stream_id:
                self._push_stream_bytes(event.data)
                if event.end_stream:
                    self._note("stream_end", stream_id=event.stream_id)
            else:
                self._note("unexpected_stream_data", stream_id=event.stream_id, data=event.data)
        elif isinstance(event, events.DatagramFrameReceived):
            self.events.put_nowait(("payload", event.data, "datagram"))
        elif isinstance(event, events.StreamReset):
            self._note("stream_reset", stream_id=event.stream_id, code=event.error_code)
        elif isinstance(event, events.StopSendingReceived):
            self._note("stop_sending", stream_id=event.stream_id, code=event.error_code)
        elif isinstance(event, events.ConnectionTerminated):
            if event.reason_phrase == "Idle timeout" and event.frame_type == 0:
                how = "idle_timeout"
            elif event.frame_type is None:
                how = "application_close"  # CONNECTION_CLOSE frame type 0x1d
            else:
                how = "transport_close"  # CONNECTION_CLOSE frame type 0x1c
            self._set_closed(how, event.error_code, event.reason_phrase)
            if not self.handshake_done.done():
                self.handshake_done.set_exception(ConnectionError(
                    f"QUIC handshake failed: {how} code {event.error_code} {event.reason_phrase!r}"))

    @property
    def remote_max_datagram(self):
        """The server's max_datagram_frame_size transport parameter (None: datagrams disabled)."""
        return self.protocol._quic._remote_max_datagram_frame_size

    async def send(self, payload):
        await self.send_on_stream(self.stream_id, frame(payload))

    async def send_on_stream(self, stream_id, data):
        if self.closed is None:
            self.protocol._quic.send_stream_data(stream_id, data)
            self.protocol.transmit()

    async def send_datagram(self, payload):
        if self.closed is None:
            self.protocol._quic.send_datagram_frame(payload)
            self.protocol.transmit()

    def open_extra_stream(self):
        return self.protocol._quic.get_next_available_stream_id()

    async def ping(self):
        await self.protocol.ping()

    async def close(self):
        if self.closed is None:
            self.closing_locally = True
            self.protocol.close(error_code=0, reason_phrase="bye")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._stack.aclose(), 3)
        self._set_closed("closed", 0, "bye")


LINKS = {"tls": TlsLink, "ws": WsLink, "quic": QuicLink}


# ---------------------------------------------------------------------------------------------
# The MagicNet session on top of a link


class Session:
    def __init__(self, link):
        self.link = link
        self.motd = None
        self.rp = None
        self.replies = []  # (text, via)
        self.disconnect = None  # (reason, detail)
        self.protocol_errors = []

    async def send(self, *messages):
        await self.link.send(encode(*messages))

    async def pump(self):
        """Wait for and handle one event of the link."""
        event = await self.link.events.get()
        kind = event[0]
        if kind == "payload":
            _, payload, via = event
            try:
                messages = decode(payload)
            except Exception as e:  # noqa: BLE001 - any decode failure is the server's fault
                self.protocol_errors.append(str(e))
                out("bad_payload", via=via, error=str(e), payload=payload[:64])
                return
            for message_type, params in messages:
                self.handle(message_type, params, via)
        elif kind == "text":
            self.protocol_errors.append("server sent a WebSocket text message")
            out("text_message", text=event[1][:200])
        elif kind == "note":
            out(event[1], **event[2])
        elif kind == "closed":
            _, how, code, reason = event
            out("closed", how=how, code=code, reason=reason)

    def handle(self, message_type, params, via):
        def bad(why):
            self.protocol_errors.append(why)
            out("bad_message", type=message_type, params=params, why=why)

        if message_type == MSG_MOTD:
            if len(params) != 1 or not isinstance(params[0], str):
                return bad("MOTD must be [str]")
            if self.motd is not None:
                out("motd_ignored", motd=params[0])  # a client ignores a second MOTD
                return
            self.motd = params[0]
            out("motd", motd=self.motd)
        elif message_type == MSG_DISCONNECT:
            if len(params) != 2 or not isinstance(params[0], int) or not (
                    params[1] is None or isinstance(params[1], str)):
                return bad("DISCONNECT must be [u8, str or nil]")
            self.disconnect = (params[0], params[1])
            out("disconnect", reason=params[0], detail=params[1])
        elif message_type == MSG_SHUTDOWN:
            out("shutdown")
        elif message_type == MSG_SHARED_PARAMETER:
            if len(params) != 2 or not isinstance(params[0], str):
                return bad("SHARED_PARAMETER must be [str, value]")
            name, value = params
            if name == "rp":
                if not isinstance(value, int):
                    return bad("rp must be an int")
                self.rp = value
                out("rp", value=value)
            else:
                out("shared_parameter", name=name, value=value)
        elif message_type == MSG_CUSTOM_RESP:
            if len(params) != 1 or not isinstance(params[0], str):
                return bad("CUSTOM_RESP must be [str]")
            if self.replies:
                # Only the first reply counts (datagrams may be retried and answered twice).
                out("duplicate_reply", text=params[0], via=via)
            else:
                fields = {"via": via} if isinstance(self.link, QuicLink) else {}
                out("reply", text=params[0], **fields)
            self.replies.append((params[0], via))
        elif message_type == MSG_BROADCAST:
            out("broadcast", name=params[0] if params else None, text=params[1] if len(params) > 1 else None)
        else:
            out("message", type=message_type, params=params)

    async def until(self, condition, what, timeout=None):
        """Handle events until condition() holds; fail if the transport closes (or time runs out)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not condition():
            if self.link.closed is not None and self.link.events.empty():
                raise Failed(f"transport closed ({self.link.closed[0]}) while waiting for {what}")
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise Failed(f"no {what} within {timeout} s")
            try:
                await asyncio.wait_for(self.pump(), remaining)
            except asyncio.TimeoutError:
                raise Failed(f"no {what} within {timeout} s") from None

    async def until_closed(self, what, timeout=None):
        await self.until(lambda: self.link.closed is not None and self.link.events.empty(), what, timeout)

    async def handshake(self):
        """MOTD from the server, HELLO back, then wait for the repository number."""
        await self.until(lambda: self.motd is not None, "MOTD")
        await self.send((MSG_HELLO, [PROTOCOL_VERSION, NETWORK_HASH]))
        await self.until(lambda: self.rp is not None, "SHARED_PARAMETER rp")

    def check_clean(self):
        if self.protocol_errors:
            raise Failed("protocol errors from the server: " + "; ".join(self.protocol_errors))


# ---------------------------------------------------------------------------------------------
# Modes. Each returns the "why" of a success or raises Failed.


def require_mapping_id(link):
    """chat mode: the mapping's negotiated identifier must be the documented one."""
    if isinstance(link, WsLink):
        if link.subprotocol != WS_SUBPROTOCOL:
            raise Failed(f"server did not accept subprotocol {WS_SUBPROTOCOL} (got {link.subprotocol!r})")
    elif link.alpn != ALPN:
        raise Failed(f"negotiated ALPN {link.alpn!r}, expected {ALPN}")


async def mode_chat(session, args):
    link = session.link
    require_mapping_id(link)
    await session.handshake()
    await session.send((MSG_SET_NAME, [args.name]), (MSG_CUSTOM, [args.text]))
    await session.until(lambda: session.replies, "CUSTOM_RESP")
    session.check_clean()
    await link.close()
    await session.until_closed("the close")
    expected = args.text[::-1]
    got = session.replies[0][0]
    if got != expected:
        raise Failed(f"reply {got!r} is not the reversed text {expected!r}")
    return "reply is the reversed text"


async def mode_datagram(session, args):
    link = session.link
    await session.handshake()
    if link.remote_max_datagram is None:
        raise Failed("server did not enable QUIC datagrams (no max_datagram_frame_size parameter)")
    out("datagram_support", max_datagram_frame_size=link.remote_max_datagram)
    await session.send((MSG_SET_NAME, [args.name]))
    # The datagram must not overtake SET_NAME (CUSTOM before a name gets us disconnected). There is
    # no answer to SET_NAME to wait for, so wait for a PING round trip (the packets carrying
    # SET_NAME were sent before it) and give the server a moment to process what it received.
    await link.ping()
    await asyncio.sleep(0.3)
    payload = encode((MSG_CUSTOM, [args.text]))
    if len(payload) > link.remote_max_datagram:
        raise Failed(f"CUSTOM payload of {len(payload)} bytes exceeds the server's datagram size")
    deadline = time.monotonic() + 3.0
    sent = 0
    while not session.replies and time.monotonic() < deadline:
        await link.send_datagram(payload)  # one payload per datagram, no length prefix
        sent += 1
        with contextlib.suppress(Failed):
            await session.until(lambda: session.replies or session.disconnect, "reply", timeout=0.2)
        if session.disconnect is not None:
            raise Failed(f"disconnected (reason {session.disconnect[0]}: {session.disconnect[1]})")
        if link.closed is not None:
            raise Failed(f"transport closed ({link.closed[0]}) before a reply")
    out("datagrams_sent", count=sent)
    if not session.replies:
        raise Failed(f"no reply to {sent} datagrams within 3 s")
    session.check_clean()
    await link.close()
    await session.until_closed("the close")
    got, via = session.replies[0]
    expected = args.text[::-1]
    if got != expected:
        raise Failed(f"reply {got!r} is not the reversed text {expected!r}")
    return f"reply to a datagram received via {via}"


async def expect_close_code(session, code, what):
    await session.until_closed(f"the server to close ({what})")
    how, got, reason = session.link.closed
    if got != code or how.startswith("local"):
        raise Failed(f"expected the server to close with {code}, got {how} code {got} reason {reason!r}")
    return f"server closed with code {code} ({what})"


async def mode_text_frame(session, args):
    await session.handshake()
    await session.link.send_text("a text message is a protocol error")
    return await expect_close_code(session, 1003, "text message")


async def mode_oversized(session, args):
    await session.handshake()
    # A well-formed message (SHARED_PARAMETER with a bin value) padded to exactly 70000 bytes, so
    # the only thing wrong with it is its size (more than the 65535 a payload may have).
    filler = 70000 - len(encode((MSG_SHARED_PARAMETER, ["pad", b""])))
    payload = encode((MSG_SHARED_PARAMETER, ["pad", b"\x00" * filler]))
    payload = encode((MSG_SHARED_PARAMETER, ["pad", b"\x00" * (filler - (len(payload) - 70000))]))
    assert len(payload) == 70000, len(payload)
    await session.link.send(payload)
    return await expect_close_code(session, 1009, "message too big")


async def mode_extra_stream(session, args):
    await session.handshake()
    link = session.link
    stream_id = link.open_extra_stream()
    out("extra_stream", stream_id=stream_id)
    await link.send_on_stream(stream_id, b"\x00\x02\x90\x90")  # a frame holding two empty arrays
    await session.until_closed("the server to close the connection")
    how, code, reason = link.closed
    if how != "application_close" or code != 1:
        raise Failed(f"expected an application close with code 1, got {how} code {code} reason {reason!r}")
    return "server closed the connection with application error code 1"


async def mode_no_username(session, args):
    await session.handshake()
    await session.send((MSG_CUSTOM, [args.text]))
    await session.until(lambda: session.disconnect is not None, "DISCONNECT")
    reason, detail = session.disconnect
    if reason != 10:
        raise Failed(f"DISCONNECT reason {reason} ({detail!r}), expected 10")
    await session.until_closed("the server to close after DISCONNECT")
    if session.link.closed[0].startswith("local"):
        raise Failed("the server did not close the transport")
    return f"DISCONNECT 10 ({detail!r}), then the server closed ({session.link.closed[0]})"


async def mode_stall(session, args):
    started = time.monotonic()
    try:
        await session.until_closed("the server to close a connection that never sends HELLO",
                                   timeout=args.wait)
    except Failed:
        raise Failed(f"server did not close within --wait {args.wait} s") from None
    elapsed = time.monotonic() - started
    out("stalled_for", seconds=round(elapsed, 2))
    return f"server closed after {elapsed:.1f} s without HELLO ({session.link.closed[0]})"


MODE_RUNNERS = {
    "chat": mode_chat,
    "datagram": mode_datagram,
    "text-frame": mode_text_frame,
    "oversized": mode_oversized,
    "extra-stream": mode_extra_stream,
    "no-username": mode_no_username,
    "stall": mode_stall,
}


# ---------------------------------------------------------------------------------------------


async def run(args):
    link = LINKS[args.transport](args)
    try:
        await link.open()
        session = Session(link)
        return await MODE_RUNNERS[args.mode](session, args)
    finally:
        if getattr(link, "reader_task", None) is not None or getattr(link, "protocol", None) is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(link.close()), 5)


def parse_args():
    parser = argparse.ArgumentParser(
        description="MagicNet v3 chat client over the TLS, WebSocket and QUIC mappings.",
        epilog="modes: " + "; ".join(f"{m} [{t}]: {d}" for m, (t, d) in MODES.items()))
    parser.add_argument("--transport", required=True, choices=sorted(LINKS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/", help="WebSocket path (any path is accepted)")
    parser.add_argument("--name", default="mapping")
    parser.add_argument("--text", default="hello mapping")
    parser.add_argument("--mode", default="chat", choices=list(MODES))
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="give up (result false, exit 1) after this many seconds; in stall mode "
                             "the deadline is --timeout + --wait")
    parser.add_argument("--wait", type=float, default=15.0,
                        help="stall mode: how long to wait for the server to close")
    args = parser.parse_args()
    if args.transport not in MODES[args.mode][0].split():
        parser.error(f"mode {args.mode} applies to {MODES[args.mode][0]}, not {args.transport}")
    if not args.path.startswith("/"):
        parser.error("--path must start with /")
    if len(args.name) > 16:
        parser.error("--name may have at most 16 characters")
    if len(args.text) > 256:
        parser.error("--text may have at most 256 characters")
    return args


def main():
    args = parse_args()
    deadline = args.timeout + (args.wait if args.mode == "stall" else 0)
    try:
        why = asyncio.run(asyncio.wait_for(run(args), deadline))
        ok = True
    except asyncio.TimeoutError:
        ok, why = False, f"timed out after {deadline} s"
    except Failed as e:
        ok, why = False, str(e)
    except Exception as e:  # noqa: BLE001 - report any failure as a result line
        ok, why = False, f"{type(e).__name__}: {e}"
    out("result", ok=ok, why=why)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
