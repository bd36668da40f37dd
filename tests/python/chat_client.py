"""A Python MagicNet client of the chat protocol.

usage: chat_client.py PORT NAME [LINE ...] [--expect-broadcasts N] [--linger SECONDS]
Sends SET_NAME and each LINE as CUSTOM, waits for one reply per line (and N broadcasts),
prints everything as JSON lines, prints its repository number, then shuts down.
Options: --hello-version V (send this protocol version), --hash HEX (use this network hash),
--no-name (skip SET_NAME), --one-at-a-time (wait for each line's reply before the next).
"""

import argparse
import asyncio

import magicnet.protocol.processors.handshake as handshake
from magicnet.batteries.asyncio_network_manager import AsyncIONetworkManager
from magicnet.batteries.transport_managers import EverywhereTransportManager
from magicnet.core.net_globals import MNEvents
from magicnet.core.net_message import NetMessage

import chat_common as cc

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("name")
parser.add_argument("lines", nargs="*")
parser.add_argument("--expect-broadcasts", type=int, default=0)
parser.add_argument("--hello-version", type=int, default=None)
parser.add_argument("--hash", default="12345678")
parser.add_argument("--no-name", action="store_true")
parser.add_argument("--expect-disconnect", action="store_true", help="wait to be disconnected")
parser.add_argument("--one-at-a-time", action="store_true", help="wait for each reply before the next line")
args = parser.parse_args()

if args.hello_version is not None:
    handshake.mn_proto_version = args.hello_version

client = AsyncIONetworkManager.create_root(
    transport_type=EverywhereTransportManager,
    transport_params=("client", cc.transport),
    extras=cc.extra_message_types,
    network_hash=bytes.fromhex(args.hash),
    shutdown_on_disconnect=True,
)
counts = {"reply": 0, "broadcast": 0}
client.listen(MNEvents.MOTD_SET, lambda motd: cc.out(event="motd", text=motd))
client.listen(MNEvents.DISCONNECT, lambda text: cc.out(event="disconnect", text=text))


async def main():
    handle = await asyncio.wait_for(client.wait_for_connection(), 10)
    cc.out(event="connected")
    if not args.no_name:
        client.send_message(NetMessage(cc.MSG_SET_NAME, [args.name]))
    for i, line in enumerate(args.lines):
        client.send_message(NetMessage(cc.MSG_CUSTOM, [line]))
        if args.one_at_a_time:
            for _ in range(500):
                if counts["reply"] > i:
                    break
                await asyncio.sleep(0.01)
    if args.expect_disconnect:
        # shutdown_on_disconnect stops the loop when DISCONNECT arrives
        await asyncio.sleep(5)
        cc.fail("was not disconnected within 5 s")
    for _ in range(500):
        if counts["reply"] >= len(args.lines) and counts["broadcast"] >= args.expect_broadcasts:
            break
        await asyncio.sleep(0.01)
    cc.out(event="rp", value=handle.shared_parameters.get("rp"))
    cc.out(event="done", replies=counts["reply"], broadcasts=counts["broadcast"])
    client.shutdown()


# Count replies and broadcasts as they are printed.
orig_out = cc.out


def counting_out(**fields):
    if fields.get("event") in counts:
        counts[fields["event"]] += 1
    orig_out(**fields)


cc.out = counting_out
client.spawn_task(main())
client.open_connection(server=("127.0.0.1", args.port))
