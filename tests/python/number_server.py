"""A Python MagicNet server of "one-number".

usage: number_server.py PORT [--zones] [--preset ZONE:VALUE ...]
--zones adds the ZoneBasedRouter; --preset creates server-owned objects before serving."""

import argparse

from magicnet.batteries.asyncio_network_manager import AsyncIONetworkManager
from magicnet.batteries.encoders import MsgpackEncoder
from magicnet.batteries.middlewares.message_validation import MessageValidatorMiddleware
from magicnet.batteries.middlewares.zone_routing import ZoneBasedRouter
from magicnet.batteries.transport_managers import EverywhereTransportManager
from magicnet.batteries.transports.socket_asyncio import AsyncIOSocketTransport
from magicnet.core.net_globals import MNEvents
from magicnet.core.transport_manager import TransportParameters

import chat_common as cc
from number_common import NumberClient, NumberServer

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("--zones", action="store_true")
parser.add_argument("--preset", nargs="*", default=[])
args = parser.parse_args()

middlewares = [MessageValidatorMiddleware] + ([ZoneBasedRouter] if args.zones else [])
transport = {"client": {"server": TransportParameters(MsgpackEncoder(), AsyncIOSocketTransport, None, middlewares)}}
server = AsyncIONetworkManager.create_root(
    transport_type=EverywhereTransportManager,
    transport_params=("server", transport),
    motd="Python objects server",
    client_repository=1,
)
server.object_registry.register_object(NumberServer)
server.object_registry.register_object(NumberClient, foreign=True)
server.object_registry.initialize([])
server.listen(MNEvents.HANDLE_ACTIVATED, lambda h: cc.out(event="activated"))
server.listen(MNEvents.BAD_NETWORK_OBJECT_CALL, lambda d: cc.out(event="bad_call", reason=d["reason"]))

for preset in args.preset:
    zone, value = (int(x) for x in preset.split(":"))
    obj = NumberServer(server)
    obj.value = value
    obj.send_message("set_current_value", [value])
    obj.request_generate(zone=zone)

server.open_server(client=("127.0.0.1", args.port))
