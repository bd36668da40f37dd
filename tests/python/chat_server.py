"""A Python MagicNet server of the chat protocol. usage: chat_server.py PORT [--no-motd]
(--no-motd keeps Python's default MOTD, None.)"""

import sys

from magicnet.batteries.asyncio_network_manager import AsyncIONetworkManager
from magicnet.batteries.transport_managers import EverywhereTransportManager
from magicnet.core.net_globals import MNEvents

import chat_common as cc

server = AsyncIONetworkManager.create_root(
    transport_type=EverywhereTransportManager,
    transport_params=("server", cc.transport),
    motd=None if "--no-motd" in sys.argv else "Python MagicNet server",
    extras=cc.extra_message_types,
)
server.listen(MNEvents.HANDLE_ACTIVATED, lambda h: cc.out(event="activated"))
server.listen(MNEvents.HANDLE_DESTROYED, lambda h: cc.out(event="destroyed"))
server.open_server(client=("127.0.0.1", int(sys.argv[1])))
