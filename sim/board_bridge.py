"""cocotb test that turns a simulated linked core into a board on a TCP port.

The top is :class:`spiketwin.sim.serial_host.SerialHost`, its clock run in Verilog: bytes a client
sends to 127.0.0.1:PORT go into the host-side UART and reach the core's ``rx`` pin bit by bit; what
the core sends on ``tx`` goes back to the client, so the host's :class:`spiketwin.link.Link` talks
to it through pyserial's ``socket://`` URL exactly as to a serial port.

One client at a time, as a serial port: a second one is accepted and closed at once. With
``once`` the simulation ends when the first client disconnects. The port actually bound (``port``
0 picks a free one) is written to ``listening`` when the socket listens; a failure to bind is
written to ``failed``. The simulation ends when the process that started it dies.
"""

import ctypes
import json
import os
import selectors
import signal
import socket
import time
from pathlib import Path

import cocotb
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, Timer

from .serial_host import WIRE_FIFO_DEPTH
from .uart import CLOCK_NS


def die_with_parent(parent: int) -> None:
    """Have the kernel end this simulator when the process that started it ends, however it ends."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)     # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:                                         # it ended before the call
        os._exit(1)


def parent_alive(parent: int) -> bool:
    return os.getppid() == parent


async def start(dut) -> None:
    """Reset the board (its clock runs in the top's Verilog)."""
    dut.host__valid.value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)


async def send(dut, data: bytes) -> None:
    """Hand ``data`` to the host-side UART's FIFO a byte a cycle, in batches it has room for."""
    for i in range(0, len(data), WIRE_FIFO_DEPTH):
        await ReadOnly()
        while not int(dut.host_empty.value):
            await RisingEdge(dut.host_empty)
            await ReadOnly()
        await RisingEdge(dut.clk)
        for byte in data[i:i + WIRE_FIFO_DEPTH]:
            dut.host__payload.value = byte
            dut.host__valid.value = 1
            await RisingEdge(dut.clk)
        dut.host__valid.value = 0


async def collect(dut, outgoing: bytearray) -> None:
    while True:
        await RisingEdge(dut.board_valid)
        await ReadOnly()
        outgoing.append(int(dut.board_data.value))


def refuse_others(server: socket.socket) -> None:
    """Accept and close at once any client waiting while another is served."""
    while True:
        try:
            other, _ = server.accept()
        except (BlockingIOError, InterruptedError):
            return
        other.close()


@cocotb.test()
async def serve(dut):
    run_dir = Path(os.environ["SPIKETWIN_COSIM_DIR"])
    cfg = json.loads((run_dir / "board.json").read_text())
    die_with_parent(cfg["parent"])
    await start(dut)
    try:
        server = socket.create_server(("127.0.0.1", cfg["port"]))
    except OSError as e:
        (run_dir / "failed").write_text(f"cannot listen on 127.0.0.1:{cfg['port']}: "
                                        f"{os.strerror(e.errno) if e.errno else e}")
        return
    port = server.getsockname()[1]
    (run_dir / "listening").write_text(str(port))
    dut._log.info(f"simulated board listening on 127.0.0.1:{port}")
    while True:
        server.setblocking(True)
        server.settimeout(1.0)
        client = None
        while client is None:                 # the simulation waits (in no time) for a host
            try:
                client, _ = server.accept()
            except TimeoutError:
                if not parent_alive(cfg["parent"]):
                    return
        server.setblocking(False)
        client.setblocking(False)
        # A reply leaves in pieces as the UART delivers it: without this, each piece after the
        # first waits for the host's delayed acknowledgement (Nagle's algorithm), some 40 ms.
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ)
        outgoing = bytearray()
        task = cocotb.start_soon(collect(dut, outgoing))
        idle, open_ = 0, True
        while open_:
            if outgoing:
                try:
                    sent = client.send(bytes(outgoing))
                    del outgoing[:sent]
                except BlockingIOError:
                    pass
                except OSError:
                    break
            data = b""
            if sel.select(timeout=0):
                try:
                    data = client.recv(65536)
                except (ConnectionResetError, BlockingIOError):
                    data = b""
                open_ = bool(data)
            if data:
                idle = 0
                await send(dut, data)
            else:
                idle += 1
                await Timer(100 * CLOCK_NS, unit="ns")
                if idle > 1000 and not outgoing and not int(dut.busy.value):
                    refuse_others(server)
                    if not parent_alive(cfg["parent"]):
                        open_ = False
                    time.sleep(0.001)         # nothing to do: do not spin the host's CPU
        task.cancel()
        client.close()
        sel.close()
        if cfg["once"] or not parent_alive(cfg["parent"]):
            server.close()
            return
