"""Memories for block RAM whose read ports map onto the FPGA's RAM without extra logic.

A synchronous read port of an Amaranth memory promises the old contents when it reads an address
written in the same cycle. The iCE40's block RAM does not, so Yosys wraps every such port in
logic that compares the addresses and forwards the old word: some 40 flip-flops and a comparator
per memory, on paths that run through the write address. The gateware never uses a word read in
the cycle its address is written, so its memories declare collisions don't-care instead
(``no_rw_check``): their read port is an asynchronous one followed by a register, which Yosys
merges into the RAM under that attribute. In simulation the register returns the old word, as
before; on an FPGA a collision's word is undefined, and nothing reads it.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib.memory import Memory

__all__ = ["ReadPort", "memory"]


def memory(*, shape, depth: int, init=(), attrs: dict | None = None) -> Memory:
    """A :class:`Memory` whose read/write collisions are don't-care for synthesis."""
    return Memory(shape=shape, depth=depth, init=init, attrs={"no_rw_check": 1, **(attrs or {})})


class ReadPort:
    """A synchronous read port of ``mem`` in ``m``'s ``sync`` domain: ``data`` is the word at the
    ``addr`` of the previous cycle in which ``en`` was high (and holds otherwise)."""

    def __init__(self, m: Module, mem: Memory, name: str):
        port = mem.read_port(domain="comb")
        self.addr = port.addr
        self.en = Signal(init=1, name=f"{name}_ren")
        # No reset: the RAM's output register has none.
        self.data = Signal.like(port.data, name=f"{name}_rdata", reset_less=True)
        with m.If(self.en):
            m.d.sync += self.data.eq(port.data)
