"""Prints what the Python MagicNet encoders produce for a fixed set of messages, as hex/text,
so the Rust tests can compare byte for byte."""

import json

from magicnet.batteries.encoders import JsonEncoder, MsgpackEncoder
from magicnet.core.net_message import NetMessage

common = [
    NetMessage(1, ("An example native host",)),
    NetMessage(5, ("rp", 128)),
    NetMessage(5, ("vz", [1, 2, 300])),
    NetMessage(3, (10, "MsgCustom requires a username!")),
    NetMessage(3, (1, None)),
    NetMessage(4, ()),
    NetMessage(67, ("bob", "hi ünï 😀")),
    NetMessage(70, (1.5, -3, -200, 2**40, -(2**40), True, False, [1, [2]], {"a": 1}, "x" * 40)),
    NetMessage(10, (2**32 + 7, 1, 0, [-2147483648])),
]
msgpack_only = [NetMessage(2, (3, bytes.fromhex("12345678")))]

print(json.dumps({
    "msgpack": MsgpackEncoder().pack(msgpack_only + common).hex(),
    "json": JsonEncoder().pack(common).decode(),
}))
