"""The host's end of a simulated UART for cocotb tests: clock and reset, and 8N1 bytes on the
linked core's ``rx`` and ``tx`` pins, timed with the simulator's clock."""

from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, Timer

CLOCK_NS = 10


async def start(dut) -> None:
    """Idle the line, start the clock and reset the design."""
    dut.rx.value = 1
    Clock(dut.clk, CLOCK_NS, unit="ns").start()
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)


async def send_byte(dut, value: int, bit_ns: int) -> None:
    for level in [0, *((value >> i) & 1 for i in range(8)), 1]:
        dut.rx.value = level
        await Timer(bit_ns, unit="ns")


async def receive_byte(dut, bit_ns: int) -> int:
    """Wait for a start bit on ``tx`` and sample the byte at the middle of each bit."""
    await FallingEdge(dut.tx)
    await Timer(bit_ns * 3 // 2, unit="ns")
    value = 0
    for i in range(8):
        value |= int(dut.tx.value) << i
        await Timer(bit_ns, unit="ns")
    assert int(dut.tx.value) == 1, "stop bit low"
    return value
