"""The Python MagicNet baseline for the benchmarks: the same one-way and fan-out workloads as
benches/e2e.rs, with Python MagicNet 0.0.7 (msgpack, the validation middleware, asyncio TCP).

usage: bench_python.py oneway N | server PORT N | fanout C DELIVERIES | gameserver PORT ZONES PER_ZONE HZ
Prints one JSON line with the result."""

import asyncio
import dataclasses
import json
import subprocess
import sys
import time

import msgpack
from magicnet.batteries.asyncio_network_manager import AsyncIONetworkManager
from magicnet.batteries.encoders import MsgpackEncoder
from magicnet.batteries.middlewares.message_validation import MessageValidatorMiddleware
from magicnet.batteries.middlewares.zone_routing import ZoneBasedRouter
from magicnet.batteries.transport_managers import EverywhereTransportManager
from magicnet.batteries.transports.socket_asyncio import AsyncIOSocketTransport
from magicnet.core.net_message import NetMessage
from magicnet.core.transport_manager import TransportParameters
from magicnet.netobjects.network_field import NetworkField
from magicnet.netobjects.network_object import NetworkObject
from magicnet.protocol import network_types
from magicnet.protocol.processor_base import MessageProcessor

state = {"count": 0, "start": None}


class Ping(MessageProcessor):
    arg_type = tuple[network_types.uint32]

    def invoke(self, message):
        if state["start"] is None:
            state["start"] = time.perf_counter()
        state["count"] += 1


def transport(middlewares):
    return {"client": {"server": TransportParameters(MsgpackEncoder(), AsyncIOSocketTransport, None, middlewares)}}


def frame(kind, params):
    p = msgpack.packb([kind, params])
    return len(p).to_bytes(2, "big") + p


def run_server(port, n):
    """One-way: count N pings, print the rate from the first to the last."""
    server = AsyncIONetworkManager.create_root(
        transport_type=EverywhereTransportManager,
        transport_params=("server", transport([MessageValidatorMiddleware])),
        motd="bench",
        extras={64: Ping},
        add_signal_handlers=False,
    )

    async def watch():
        while state["count"] < n:
            await asyncio.sleep(0.001)
        rate = n / (time.perf_counter() - state["start"])
        print(json.dumps({"oneway_msgs_per_s": rate}), flush=True)
        server.shutdown()

    server.spawn_task(watch())
    server.open_server(client=("127.0.0.1", port))


def ping_frames(n):
    """Frames of pings, each as full as a frame allows (the Rust bench's load generator)."""
    out, payload = [], bytearray()
    for i in range(n):
        one = msgpack.packb([64, [i]])
        if len(payload) + len(one) > 65535:
            out.append(len(payload).to_bytes(2, "big") + bytes(payload))
            payload = bytearray()
        payload += one
    out.append(len(payload).to_bytes(2, "big") + bytes(payload))
    return b"".join(out)


def run_raw_client(port, n):
    """A load generator: handshake, then every ping, pre-encoded, as fast as the socket takes it."""
    import socket

    load = ping_frames(n)
    s = socket.create_connection(("127.0.0.1", port))
    s.recv(1024)  # MOTD
    s.sendall(frame(2, [3, bytes.fromhex("12345678")]))
    s.sendall(load)
    # stay connected until the server has counted everything and closes the connection
    s.settimeout(600)
    while s.recv(65536):
        pass


def run_client(port, n):
    client = AsyncIONetworkManager.create_root(
        transport_type=EverywhereTransportManager,
        transport_params=("client", transport([MessageValidatorMiddleware])),
        extras={64: Ping},
        add_signal_handlers=False,
    )

    async def go():
        await asyncio.wait_for(client.wait_for_connection(), 10)
        sent = 0
        while sent < n:
            # batched into one frame, as far as Python's 64 KiB frames allow
            with client.transport.message_queue:
                for _ in range(min(5000, n - sent)):
                    client.send_message(NetMessage(64, [sent]))
                    sent += 1
            await asyncio.sleep(0)
        await asyncio.sleep(0.5)
        client.shutdown()

    client.spawn_task(go())
    client.open_connection(server=("127.0.0.1", port))


@dataclasses.dataclass
class BenchServer(NetworkObject):
    network_name = "bench-object"
    object_role = 1

    def net_create(self):
        pass

    def net_delete(self):
        pass

    @NetworkField(ram_persist=False)
    def ping(self, seq: network_types.uint64):
        pass


@dataclasses.dataclass
class BenchClient(NetworkObject):
    network_name = "bench-object"
    object_role = 0

    def net_create(self):
        pass

    def net_delete(self):
        pass

    @NetworkField
    def moved(self, pos: tuple[network_types.int32, network_types.int32, network_types.int32]):
        pass

    @NetworkField(ram_persist=False)
    def pong(self, seq: network_types.uint64):
        pass


def run_fanout(viewers, deliveries, port):
    server = AsyncIONetworkManager.create_root(
        transport_type=EverywhereTransportManager,
        transport_params=("server", transport([MessageValidatorMiddleware, ZoneBasedRouter])),
        motd="bench",
        client_repository=1,
        add_signal_handlers=False,
    )
    server.object_registry.register_object(BenchServer)
    server.object_registry.register_object(BenchClient, foreign=True)
    server.object_registry.initialize([])
    counts = {"n": 0}

    async def reader():
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(frame(2, [3, bytes.fromhex("12345678")]) + frame(5, ["vz", [1]]))
        await w.drain()
        unpacker = msgpack.Unpacker()
        buf = b""
        while True:
            data = await r.read(65536)
            if not data:
                return
            buf += data
            # split frames, count SET_OBJECT_FIELD (10) messages
            while len(buf) >= 2:
                n = int.from_bytes(buf[:2], "big")
                if len(buf) < 2 + n:
                    break
                unpacker.feed(buf[2 : 2 + n])
                buf = buf[2 + n :]
                for msg in unpacker:
                    if msg[0] == 10:
                        counts["n"] += 1

    async def bench():
        await asyncio.sleep(0.3)
        tasks = []
        for _ in range(viewers):
            tasks.append(asyncio.ensure_future(reader()))
            await asyncio.sleep(0)
        # wait for every viewer to see zone 1
        handles = server.transport.transports["client"].connections
        while sum(1 for h in handles.values() if h.shared_parameters.get("vz") == [1]) < viewers:
            await asyncio.sleep(0.01)
        obj = BenchServer(server)
        obj.request_generate(zone=1)
        updates = max(1, deliveries // viewers)
        per_batch = max(1, min(2000, 40000 // max(1, viewers)))
        start = time.perf_counter()
        sent = 0
        while sent < updates:
            with server.transport.message_queue:
                for _ in range(min(per_batch, updates - sent)):
                    obj.send_message("moved", [[sent, 0, 0]])
                    sent += 1
            await asyncio.sleep(0)
        want = updates * viewers
        while counts["n"] < want:
            await asyncio.sleep(0.001)
        rate = want / (time.perf_counter() - start)
        print(json.dumps({"fanout_viewers": viewers, "deliveries_per_s": rate}), flush=True)
        for t in tasks:
            t.cancel()
        server.shutdown()

    server.spawn_task(bench())
    server.open_server(client=("127.0.0.1", port))


class Input(MessageProcessor):
    """64 INPUT [seq, dx, dy], as h_game_server takes it."""

    arg_type = tuple[network_types.uint32, network_types.int8, network_types.int8]

    def invoke(self, message):
        seq, dx, dy = message.parameters
        if not (-1 <= dx <= 1 and -1 <= dy <= 1):
            message.disconnect_sender(20, "INPUT moves at most 1 on each axis")
            return
        state["count"] += 1


@dataclasses.dataclass
class GameUnit(NetworkObject):
    """The server's unit (role 1): no fields; it sends `moved` to its zone's viewers."""

    network_name = "game-unit"
    object_role = 1
    x: int = 0
    y: int = 0
    step: int = 0

    def net_create(self):
        pass

    def net_delete(self):
        pass


@dataclasses.dataclass
class GameUnitView(NetworkObject):
    """The clients' view (role 0): field 0 moved(x, y, sent_us)."""

    network_name = "game-unit"
    object_role = 0

    def net_create(self):
        pass

    def net_delete(self):
        pass

    @NetworkField
    def moved(self, x: network_types.int32, y: network_types.int32, sent_us: network_types.uint64):
        pass


def run_game_server(port, zones, per_zone, hz):
    """h_game_server's game on Python MagicNet: the same wire, for benches/game.rs."""
    server = AsyncIONetworkManager.create_root(
        transport_type=EverywhereTransportManager,
        transport_params=("server", transport([MessageValidatorMiddleware, ZoneBasedRouter])),
        motd="MagicNet game server (Python)",
        client_repository=1,
        extras={64: Input},
        add_signal_handlers=False,
    )
    server.object_registry.register_object(GameUnit)
    server.object_registry.register_object(GameUnitView, foreign=True)
    server.object_registry.initialize([])

    async def ticks():
        await asyncio.sleep(0.2)
        units = []
        for z in range(1, zones + 1):
            for k in range(per_zone):
                u = GameUnit(server, x=k * 10, y=z * 10, step=k * 7)
                u.request_generate(zone=z)
                units.append(u)
        print("listening on 127.0.0.1:%d (python)" % port, flush=True)
        period = 1.0 / hz
        next_tick = time.perf_counter()
        while True:
            sent_us = time.time_ns() // 1000
            with server.transport.message_queue:
                for u in units:
                    u.step += 1
                    d = (u.step // 20) % 4
                    if d == 0:
                        u.x += 1
                    elif d == 1:
                        u.y += 1
                    elif d == 2:
                        u.x -= 1
                    else:
                        u.y -= 1
                    u.send_message("moved", [u.x, u.y, sent_us])
            next_tick += period
            delay = next_tick - time.perf_counter()
            if delay < 0:  # late: skip the missed ticks, as the Rust server does
                next_tick = time.perf_counter()
                delay = 0
            await asyncio.sleep(delay)

    server.spawn_task(ticks())
    server.open_server(client=("127.0.0.1", port))


def free_port():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "oneway":
        n = int(sys.argv[2])
        port = free_port()
        srv = subprocess.Popen(
            [sys.executable, __file__, "server", str(port), str(n)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        time.sleep(0.5)
        cli = subprocess.Popen([sys.executable, __file__, "rawclient", str(port), str(n)])
        out = srv.communicate(timeout=600)[0].decode()
        cli.wait(timeout=60)
        print(out.strip())
    elif mode == "rawclient":
        run_raw_client(int(sys.argv[2]), int(sys.argv[3]))
    elif mode == "server":
        run_server(int(sys.argv[2]), int(sys.argv[3]))
    elif mode == "client":
        run_client(int(sys.argv[2]), int(sys.argv[3]))
    elif mode == "gameserver":
        run_game_server(*(int(a) for a in sys.argv[2:6]))
    elif mode == "fanout":
        run_fanout(int(sys.argv[2]), int(sys.argv[3]), free_port())
