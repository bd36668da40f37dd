"""The seed's chat protocol (b_common.py) for Python MagicNet 0.0.7, printing what happens as
JSON lines on stdout so that the Rust tests can assert on it."""

import asyncio
import json
import sys
import traceback

from magicnet.batteries.encoders import MsgpackEncoder
from magicnet.batteries.middlewares.message_validation import MessageValidatorMiddleware
from magicnet.batteries.transports.socket_asyncio import AsyncIOSocketTransport
from magicnet.core.net_message import NetMessage
from magicnet.core.transport_manager import TransportParameters
from magicnet.protocol import network_types
from magicnet.protocol.processor_base import MessageProcessor

MSG_SET_NAME = 64
MSG_CUSTOM = 65
MSG_CUSTOM_RESP = 66
MSG_BROADCAST = 67


def out(**fields):
    print(json.dumps(fields), flush=True)


class MsgSetName(MessageProcessor):
    arg_type = tuple[network_types.s16]

    def invoke(self, message):
        message.sent_from.context["username"] = message.parameters[0]
        out(event="name", name=message.parameters[0])


class MsgCustom(MessageProcessor):
    arg_type = tuple[network_types.s256]

    def invoke(self, message):
        name = message.sent_from.context.get("username")
        if not name:
            message.disconnect_sender(10, "MsgCustom requires a username!")
            return
        text = message.parameters[0]
        out(event="custom", name=name, text=text)
        reply = NetMessage(MSG_CUSTOM_RESP, ["".join(reversed(text))], destination=message.sent_from)
        self.manager.send_message(reply)
        # Python 0.0.7 skips the handle filter when a destination is set, so send one copy
        # to every other connection explicitly.
        for handle in list(message.sent_from.transport.connections.values()):
            if handle is not message.sent_from and handle.activated:
                self.manager.send_message(NetMessage(MSG_BROADCAST, [name, text], destination=handle))


class MsgCustomResponse(MessageProcessor):
    arg_type = tuple[network_types.s256]

    def invoke(self, message):
        out(event="reply", text=message.parameters[0])


class MsgBroadcast(MessageProcessor):
    arg_type = tuple[network_types.s16, network_types.s256]

    def invoke(self, message):
        name, text = message.parameters
        out(event="broadcast", name=name, text=text)


extra_message_types = {
    MSG_SET_NAME: MsgSetName,
    MSG_CUSTOM: MsgCustom,
    MSG_CUSTOM_RESP: MsgCustomResponse,
    MSG_BROADCAST: MsgBroadcast,
}

transport = {
    "client": {
        "server": TransportParameters(MsgpackEncoder(), AsyncIOSocketTransport, None, [MessageValidatorMiddleware])
    }
}


def fail(why):
    out(event="error", text=why)
    sys.exit(1)


def run_to_completion(client, run, name, what, port):
    """Connects `client` to 127.0.0.1:`port`, runs `await run()` on it, and exits the process:
    0 when `run` returned; 1, with an `error` event, on any failure: an exception in `run`
    (`fail()` included) or in MagicNet's own callbacks, or the connection ending before `run`
    was done (`what` says what was left undone)."""
    from magicnet.util.messenger import StandardEvents

    state = {"code": None}

    def finish(code):
        # the first call decides
        if state["code"] is None:
            state["code"] = code
            client.shutdown()

    def on_exception(source, exc):
        # MagicNet reports exceptions of its tasks and message processing as an event, and
        # carries on: without this listener a failure would pass silently, and the client
        # would exit 0 when the server later closes the connection. (Once the run is decided,
        # e.g. during the shutdown, there is nothing left to fail.)
        if state["code"] is not None:
            return
        traceback.print_exception(exc)
        out(event="error", text=f"{source}: {type(exc).__name__}: {exc}")
        finish(1)

    client.listen(StandardEvents.EXCEPTION, on_exception)

    async def main():
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except SystemExit as e:  # fail()
            finish(e.code if isinstance(e.code, int) and e.code else 1)
        except BaseException as e:  # noqa: BLE001
            on_exception(f"{name} failed", e)
        else:
            finish(0)

    client.spawn_task(main())
    client.open_connection(server=("127.0.0.1", port))
    # The loop stops after finish(), or when the server goes away (shutdown_on_disconnect):
    # that is a failure too, since `run` did not finish.
    if state["code"] is None:
        out(event="error", text=f"the connection ended before {what} done")
    sys.exit(1 if state["code"] is None else state["code"])
