"""A Python MagicNet player of h_game_server's game. usage: game_client.py PORT ZONE MOVES INPUTS

Sees zone ZONE, sends INPUTS inputs (64 INPUT [seq, dx, dy]), and waits until every unit it was
given has moved at least MOVES times. Prints JSON lines: `created` per unit, then `final` with
each unit's moves, first and last position, and whether the server's stamps (sent_us) only went
up. Any failure prints an `error` event and exits 1."""

import asyncio
import dataclasses
import sys

from magicnet.batteries.asyncio_network_manager import AsyncIONetworkManager
from magicnet.batteries.transport_managers import EverywhereTransportManager
from magicnet.core.net_message import NetMessage
from magicnet.netobjects.network_field import NetworkField
from magicnet.netobjects.network_object import NetworkObject
from magicnet.protocol import network_types

import chat_common as cc

port, zone, moves_wanted, inputs = (int(a) for a in sys.argv[1:5])


units = []  # the units this player sees, in creation order


@dataclasses.dataclass
class GameUnitView(NetworkObject):
    """The players' view of a unit (role 0): field 0 moved(x, y, sent_us)."""

    network_name = "game-unit"
    object_role = 0
    moves: int = 0
    first: tuple = None
    last: tuple = None
    stamps_rise: bool = True
    last_stamp: int = 0

    def net_create(self):
        units.append(self)
        cc.out(event="created", oid=self.oid)

    def net_delete(self):
        units.remove(self)
        cc.out(event="deleted", oid=self.oid)

    @NetworkField
    def moved(self, x: network_types.int32, y: network_types.int32, sent_us: network_types.uint64):
        self.moves += 1
        if self.first is None:
            self.first = (x, y)
        self.last = (x, y)
        if sent_us < self.last_stamp:
            self.stamps_rise = False
        self.last_stamp = sent_us


@dataclasses.dataclass
class GameUnit(NetworkObject):
    """The server's unit (role 1): no fields."""

    network_name = "game-unit"
    object_role = 1

    def net_create(self):
        pass

    def net_delete(self):
        pass


client = AsyncIONetworkManager.create_root(
    transport_type=EverywhereTransportManager,
    transport_params=("client", cc.transport),
    shutdown_on_disconnect=True,
)
client.object_registry.register_object(GameUnitView)
client.object_registry.register_object(GameUnit, foreign=True)
client.object_registry.initialize([])
async def run():
    handle = await asyncio.wait_for(client.wait_for_connection(), 10)
    handle.set_shared_parameter("vz", [zone])
    for seq in range(inputs):
        client.send_message(NetMessage(64, [seq, seq % 3 - 1, 0]))
        await asyncio.sleep(0.01)
    for _ in range(1000):
        if units and all(u.moves >= moves_wanted for u in units):
            break
        await asyncio.sleep(0.01)
    else:
        cc.fail(f"units did not move {moves_wanted} times: {[u.moves for u in units]}")
    cc.out(
        event="final",
        units=[
            {"oid": u.oid, "moves": u.moves, "first": u.first, "last": u.last, "stamps_rise": u.stamps_rise}
            for u in units
        ],
    )


cc.run_to_completion(client, run, "game_client", "the client was", port)
