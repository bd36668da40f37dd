#!/usr/bin/env python3
r"""A Python chat client for the MagicNet chat server (`cargo run --example b_server`).

The first line of standard input is your username; every following line is sent as a chat
message. The server answers each of your lines with the line reversed, and passes it on to
the other clients; this client prints both what the server answers and what the others say.
At the end of the input it waits for the answers still due, then leaves cleanly.

    printf 'alice\nhello\n' | python chat_client.py --port 5000

Needs Python 3.10+ and the Python MagicNet package: pip install magicnet==0.0.7 msgpack
Exit status: 0 when every line was answered, 1 when the client could not connect, was
disconnected or timed out (with a one-line error on stderr), 2 for bad arguments, 130 after
Ctrl-C.
"""

import argparse
import asyncio
import dataclasses
import signal
import sys
import threading

# The chat protocol (examples/common/chat.rs, and the Python seed's b_common.py).
MSG_SET_NAME = 64  # client -> server: [name: s16]
MSG_CUSTOM = 65  # client -> server: [text: s256]
MSG_CUSTOM_RESP = 66  # server -> the sender: [text reversed: s256]
MSG_BROADCAST = 67  # server -> every other client: [name: s16, text: s256]
MAX_NAME = 16
MAX_TEXT = 256

# DISCONNECT reasons: 1-6 are the protocol's, 200-207 MagicNet for Rust's (docs/protocol.md);
# any other code is the application's own (the chat server uses 10: no username yet).
REASONS = {
    1: "HELLO sent twice",
    2: "wrong protocol version",
    3: "network hash mismatch",
    4: "message before the handshake",
    5: "broken invariant",
    6: "unknown object type",
    200: "timed out",
    201: "malformed data",
    202: "rate limited",
    203: "too slow to receive",
    204: "server full",
    205: "limit exceeded",
    206: "forbidden message",
    207: "server short of memory",
}


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Chat with a MagicNet chat server (cargo run --example b_server). "
        "Reads a username line, then message lines, from standard input; prints the "
        "server's replies and what other clients say.",
        epilog="example: printf 'alice\\nhello\\n' | %(prog)s --port 5000. "
        "Exit status: 0 done, 1 network error (cannot connect, disconnected, timed out), "
        "2 bad arguments, 130 interrupted.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="server host (default: %(default)s)")
    parser.add_argument("--port", type=int, default=5000, help="server TCP port (default: %(default)s)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="time allowed to connect, and at the end of the input to receive the replies "
        "still due (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error(f"--port must be 1-65535, not {args.port}")
    if not args.timeout > 0:
        parser.error(f"--timeout must be positive, not {args.timeout}")
    return args


def reason_text(reason, detail):
    known = REASONS.get(reason, "application reason")
    text = f"reason {reason} ({known})"
    return f"{text}: {detail}" if detail else text


@dataclasses.dataclass
class State:
    """What the client knows: filled by the protocol callbacks, read by the main task."""

    replies: int = 0
    disconnect: tuple | None = None  # (reason, detail) of a DISCONNECT from the server
    shutdown: bool = False  # the server sent SHUTDOWN
    leaving: bool = False  # we are closing the connection ourselves
    exit_code: int | None = None


def main(argv):
    args = parse_args(argv)
    try:
        from magicnet.batteries.asyncio_network_manager import AsyncIONetworkManager
        from magicnet.batteries.encoders import MsgpackEncoder
        from magicnet.batteries.middlewares.message_validation import MessageValidatorMiddleware
        from magicnet.batteries.transport_managers import EverywhereTransportManager
        from magicnet.batteries.transports.socket_asyncio import AsyncIOSocketTransport
        from magicnet.core.net_globals import MNEvents
        from magicnet.core.net_message import NetMessage
        from magicnet.core.transport_handler import TransportMiddleware
        from magicnet.core.transport_manager import TransportParameters
        from magicnet.protocol import network_types
        from magicnet.protocol.processor_base import MessageProcessor
        from magicnet.protocol.protocol_globals import StandardMessageTypes
        from magicnet.util.messenger import StandardEvents

        MsgpackEncoder()  # fails here, not later, without msgpack
    except Exception as e:  # noqa: BLE001 (ImportError, or magicnet's DependencyMissing)
        print(f"error: the Python MagicNet package is missing ({e}): pip install magicnet==0.0.7 msgpack",
              file=sys.stderr)
        return 1

    state = State()
    where = f"{args.host}:{args.port}"

    class CustomResp(MessageProcessor):
        arg_type = tuple[network_types.s256]

        def invoke(self, message):
            state.replies += 1
            print(f"Reversed message: {message.parameters[0]}", flush=True)

    class Broadcast(MessageProcessor):
        arg_type = tuple[network_types.s16, network_types.s256]

        def invoke(self, message):
            name, text = message.parameters
            print(f"{name} said: {text}", flush=True)

    @dataclasses.dataclass
    class WatchServer(TransportMiddleware):
        """Notes why the server ends the connection: Python MagicNet reports a DISCONNECT's
        text but not its reason code."""

        def __post_init__(self):
            self.add_message_operator(None, self.on_receive)

        def on_receive(self, message, _handle):
            if message.message_type == StandardMessageTypes.DISCONNECT and state.disconnect is None:
                params = list(message.parameters) + [None, None]
                state.disconnect = (params[0], params[1])
            elif message.message_type == StandardMessageTypes.SHUTDOWN:
                state.shutdown = True
            return message

    client = AsyncIONetworkManager.create_root(
        transport_type=EverywhereTransportManager,
        transport_params=(
            "client",
            {
                "client": {
                    "server": TransportParameters(
                        MsgpackEncoder(), AsyncIOSocketTransport, None, [MessageValidatorMiddleware, WatchServer]
                    )
                }
            },
        ),
        extras={MSG_CUSTOM_RESP: CustomResp, MSG_BROADCAST: Broadcast},
    )

    def finish(code, error=None):
        """Ends the run with `code` (the first call decides), printing `error` on stderr."""
        if state.exit_code is not None:
            return
        state.exit_code = code
        if error:
            print(f"error: {error}", file=sys.stderr, flush=True)
        state.leaving = True
        client.shutdown()  # sends SHUTDOWN if connected, stops the event loop

    def on_destroyed(_handle):
        if state.leaving:
            return
        if state.disconnect is not None:
            finish(1, f"disconnected by the server: {reason_text(*state.disconnect)}")
        elif state.shutdown:
            finish(1, "the server shut down")
        else:
            finish(1, f"the server at {where} closed the connection")

    def on_exception(what, exc):
        if isinstance(exc, OSError):
            finish(1, f"cannot connect to {where}: {exc.strerror or exc}")
        else:
            finish(1, f"{what}: {type(exc).__name__}: {exc}")

    # Ctrl-C (and SIGTERM, SIGHUP) leave cleanly too, with the shell's 128 + signal status.
    for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            client.loop.add_signal_handler(sig, finish, 128 + sig)
    client.listen(MNEvents.MOTD_SET, lambda motd: print(f"MOTD: {motd}", flush=True))
    client.listen(MNEvents.HANDLE_DESTROYED, on_destroyed)
    client.listen(StandardEvents.EXCEPTION, on_exception)

    # Standard input is read on a thread (it may be a terminal, a pipe or a file) and handed
    # to the event loop line by line; None marks its end.
    lines = asyncio.Queue()

    def read_stdin():
        def post(item):
            try:
                client.loop.call_soon_threadsafe(lines.put_nowait, item)
            except RuntimeError:  # the loop is closed: the client is gone
                return False
            return True

        try:
            for line in sys.stdin:
                if not post(line):
                    return
        except (OSError, ValueError, UnicodeDecodeError) as e:
            print(f"warning: cannot read standard input: {e}", file=sys.stderr, flush=True)
        post(None)

    async def chat():
        try:
            await asyncio.wait_for(client.wait_for_connection(), args.timeout)
        except asyncio.TimeoutError:
            return finish(1, f"timed out after {args.timeout:g} s connecting to {where}")
        print("Successfully connected!", flush=True)
        print("Enter your username: ", flush=True)
        threading.Thread(target=read_stdin, daemon=True).start()
        named, sent = False, 0
        while (line := await lines.get()) is not None:
            line = line.strip()
            if not named:
                if not 1 <= len(line) <= MAX_NAME:
                    return finish(1, f"the username must be 1 to {MAX_NAME} characters, not {len(line)}")
                client.send_message(NetMessage(MSG_SET_NAME, [line]))
                print("Username successfully set!", flush=True)
                named = True
            elif len(line) > MAX_TEXT:
                print(f"warning: line not sent: over {MAX_TEXT} characters", file=sys.stderr, flush=True)
            elif line:
                client.send_message(NetMessage(MSG_CUSTOM, [line]))
                sent += 1
        if not named:
            return finish(1, "no username: standard input ended before its first line")
        # End of input: wait for the replies still due, then a moment for broadcasts in flight.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + args.timeout
        while state.replies < sent:
            if loop.time() > deadline:
                missing = sent - state.replies
                return finish(1, f"timed out after {args.timeout:g} s waiting for {missing} of {sent} replies")
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        finish(0)

    client.spawn_task(chat())
    client.open_connection(server=(args.host, args.port))  # runs the event loop until finish()
    client.loop.close()
    return 1 if state.exit_code is None else state.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
