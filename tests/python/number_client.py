"""A Python MagicNet client of "one-number". usage: number_client.py PORT COMMAND...

Commands (run in order): `new V`, `add I V` (I: index in creation order), `visible`
(REQUEST_VISIBLE_OBJECTS), `vz Z1,Z2` (set the visible zones), `values V1,V2` (wait until the
sorted current values are exactly these), `count N` (wait until N objects), `sleep S`.
Prints events as JSON lines, then `final` with the values, then shuts down. Any failure (an
exception in the commands or in MagicNet's own callbacks, a wait that times out) prints an
`error` event and a traceback on stderr, and exits 1."""

import asyncio
import sys

from magicnet.batteries.asyncio_network_manager import AsyncIONetworkManager
from magicnet.batteries.transport_managers import EverywhereTransportManager

import chat_common as cc
from number_common import NumberClient, NumberServer

port = int(sys.argv[1])
commands = sys.argv[2:]

client = AsyncIONetworkManager.create_root(
    transport_type=EverywhereTransportManager,
    transport_params=("client", cc.transport),
    shutdown_on_disconnect=True,
)
client.object_registry.register_object(NumberClient)
client.object_registry.register_object(NumberServer, foreign=True)
client.object_registry.initialize([])


async def wait_until(pred, what):
    for _ in range(500):
        if pred():
            return
        await asyncio.sleep(0.01)
    cc.fail(f"timed out waiting for {what}: values {[o.value for o in NumberClient.all_objects]}")


async def run():
    handle = await asyncio.wait_for(client.wait_for_connection(), 10)
    await wait_until(lambda: "rp" in handle.shared_parameters, "rp")
    cc.out(event="connected", rp=handle.shared_parameters["rp"])
    i = 0
    while i < len(commands):
        cmd = commands[i]
        if cmd == "new":
            obj = NumberClient(client)
            obj.send_message("set_init_value", [int(commands[i + 1])])
            obj.request_generate()
            i += 2
        elif cmd == "add":
            index, value = int(commands[i + 1]), int(commands[i + 2])
            await wait_until(lambda: len(NumberClient.all_objects) > index, f"object {index}")
            NumberClient.all_objects[index].send_message("add_value", [value])
            i += 3
        elif cmd == "visible":
            client.object_manager.request_visible_objects()
            i += 1
        elif cmd == "vz":
            zones = [int(z) for z in commands[i + 1].split(",") if z]
            handle.set_shared_parameter("vz", zones)
            i += 2
        elif cmd == "values":
            want = sorted(int(v) for v in commands[i + 1].split(",") if v)
            await wait_until(lambda: sorted(o.value for o in NumberClient.all_objects) == want, f"values {want}")
            i += 2
        elif cmd == "count":
            n = int(commands[i + 1])
            await wait_until(lambda: len(NumberClient.all_objects) == n, f"{n} objects")
            i += 2
        elif cmd == "sleep":
            await asyncio.sleep(float(commands[i + 1]))
            i += 2
        else:
            cc.fail(f"unknown command {cmd}")
    cc.out(event="final", values=[o.value for o in NumberClient.all_objects], oids=[o.oid for o in NumberClient.all_objects])


cc.run_to_completion(client, run, "number_client", "the commands were", port)
