"""cocotb test of a core behind its UART host link: bytes in on ``rx``, the board's bytes out of
``tx``, at the bit level. The comparison with :class:`spiketwin.link.BoardModel` is done by the
caller (:func:`spiketwin.sim.cosim.run_link`) on the bytes this test records."""

import json
import os
from pathlib import Path

import cocotb
from cocotb.triggers import Timer

from spiketwin.link.protocol import END

from .uart import CLOCK_NS, receive_byte, send_byte, start


async def monitor(dut, bit_ns: int, received: bytearray) -> None:
    while True:
        received.append(await receive_byte(dut, bit_ns))


@cocotb.test()
async def link_exchange(dut):
    work = Path(os.environ["SPIKETWIN_COSIM_DIR"])
    job = json.loads((work / "link_job.json").read_text())
    bit_ns = job["clocks_per_bit"] * CLOCK_NS
    await start(dut)
    received = bytearray()
    cocotb.start_soon(monitor(dut, bit_ns, received))
    byte_ns = 10 * bit_ns
    try:
        for chunk_hex, n_replies in zip(job["chunks"], job["replies"], strict=True):
            chunk = bytes.fromhex(chunk_hex)
            want = received.count(END) + n_replies
            for b in chunk:
                await send_byte(dut, b, bit_ns)
            if n_replies == 0:      # nothing should come back: listen for a while
                await Timer(40 * byte_ns, unit="ns")
                continue
            waited, limit = 0, len(chunk) * 8 + 2000     # in byte times; a RUN's reply is the longest
            while received.count(END) < want:
                assert waited < limit, f"no reply after {waited} byte times to chunk {chunk[:16].hex()}..."
                await Timer(byte_ns, unit="ns")
                waited += 1
            await Timer(2 * byte_ns, unit="ns")
    finally:
        (work / "link_rx.hex").write_text(received.hex())
