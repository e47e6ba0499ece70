"""cocotb test that turns a simulated linked core into a board on a TCP port.

Bytes a client sends to 127.0.0.1:PORT go into the core's UART ``rx``, bit by bit; what the board
sends on ``tx`` goes back to the client, so the host's :class:`spiketwin.link.Link` talks to it
through pyserial's ``socket://`` URL exactly as to a serial port. With ``once`` the simulation ends
when the first client disconnects.
"""

import json
import os
import selectors
import socket
import time
from pathlib import Path

import cocotb
from cocotb.triggers import Timer

from .uart import CLOCK_NS, receive_byte, send_byte, start


@cocotb.test()
async def serve(dut):
    cfg = json.loads((Path(os.environ["SPIKETWIN_COSIM_DIR"]) / "board.json").read_text())
    bit_ns = cfg["clocks_per_bit"] * CLOCK_NS
    await start(dut)

    server = socket.create_server(("127.0.0.1", cfg["port"]))
    (Path(os.environ["SPIKETWIN_COSIM_DIR"]) / "listening").write_text(str(cfg["port"]))
    dut._log.info(f"simulated board listening on 127.0.0.1:{cfg['port']}")
    while True:
        server.settimeout(None)
        client, _ = server.accept()       # the simulation waits (in no time) for a host
        client.setblocking(False)
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ)
        outgoing = bytearray()
        state = {"open": True}

        async def transmit(client=client, outgoing=outgoing, state=state):
            while state["open"]:
                outgoing.append(await receive_byte(dut, bit_ns))

        task = cocotb.start_soon(transmit())
        idle = 0
        while state["open"]:
            if outgoing:
                try:
                    sent = client.send(bytes(outgoing))
                    del outgoing[:sent]
                except BlockingIOError:
                    pass
            data = b""
            if sel.select(timeout=0):
                try:
                    data = client.recv(4096)
                except ConnectionResetError:
                    data = b""
                if not data:
                    state["open"] = False
                    break
            if data:
                idle = 0
                for b in data:
                    await send_byte(dut, b, bit_ns)
            else:
                idle += 1
                await Timer(10 * bit_ns, unit="ns")
                if idle > 1000 and not outgoing and not int(dut.busy.value):
                    time.sleep(0.001)         # nothing to do: do not spin the host's CPU
        task.cancel()
        client.close()
        sel.close()
        if cfg["once"]:
            server.close()
            return
