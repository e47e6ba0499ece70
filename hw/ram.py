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

from spiketwin.errors import InvalidValue

__all__ = ["BankedMemory", "ReadPort", "memory"]


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


class BankedMemory:
    """A single-port memory of ``depth`` words split into banks of ``bank_words`` (a block RAM
    each), whose words are registered next to their RAM before one of them is chosen.

    A lane's weights span several block RAMs, which the placer may put far apart; a block RAM's
    output alone takes half a 90 MHz cycle on the ECP5, so no path leaves one through more than
    its own register. ``data`` is the word at the ``addr`` of two cycles before; a write stores
    ``wdata`` at ``addr`` when ``we`` is high (that bank's read data then holds).
    """

    def __init__(self, m: Module, *, shape, depth: int, bank_words: int, init=(), attrs: dict | None = None,
                 name: str):
        if bank_words < 1 or bank_words & (bank_words - 1):
            raise InvalidValue(f"bank_words must be a power of 2, not {bank_words}")
        n_banks = -(-depth // bank_words)
        init = list(init)
        self.addr = Signal(range(max(2, depth)), name=f"{name}_addr")
        self.wdata = Signal(shape, name=f"{name}_wdata")
        self.we = Signal(name=f"{name}_we")
        self.data = Signal(shape, name=f"{name}_data")
        bank_bits = (bank_words - 1).bit_length()
        sel = sel_q = 0
        if n_banks > 1:
            sel = self.addr[bank_bits:]
            sel_d = Signal(range(n_banks), name=f"{name}_sel_d")   # the bank read, a cycle later
            sel_q = Signal(range(n_banks), name=f"{name}_sel_q")   # and with its registered word
            m.d.sync += [sel_d.eq(sel), sel_q.eq(sel_d)]
        for b in range(n_banks):
            words = min(bank_words, depth - b * bank_words)
            mem = memory(shape=shape, depth=max(2, words), init=init[b * bank_words:(b + 1) * bank_words],
                         attrs=attrs)
            bank_name = name if n_banks == 1 else f"{name}_{b}"
            m.submodules[bank_name] = mem
            rp, wp = ReadPort(m, mem, bank_name), mem.write_port()
            hit = self.we & (sel == b) if n_banks > 1 else self.we
            m.d.comb += [rp.addr.eq(self.addr), wp.addr.eq(self.addr), wp.data.eq(self.wdata), wp.en.eq(hit),
                         rp.en.eq(~hit)]
            word = Signal(shape, name=f"{bank_name}_q")
            m.d.sync += word.eq(rp.data)
            if n_banks == 1:
                m.d.comb += self.data.eq(word)
            else:
                with m.If(sel_q == b):
                    m.d.comb += self.data.eq(word)
