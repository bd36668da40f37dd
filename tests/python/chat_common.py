"""The seed's chat protocol (b_common.py) for Python MagicNet 0.0.7, printing what happens as
JSON lines on stdout so that the Rust tests can assert on it."""

import json
import sys

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
