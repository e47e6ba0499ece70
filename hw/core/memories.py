"""One lane's memories: its weights (in banks, or one SPRAM bank), its neurons' parameter words,
accumulators and state fields, and its copy of the model's tables (``docs/schedule.md``)."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spiketwin.config import CoreConfig
from spiketwin.fixedpoint import from_word

from ..ram import BankedMemory, ReadPort, memory

__all__ = ["LaneMemories", "param_slots", "memory_shapes", "WEIGHT_BANK_WORDS", "SPRAM_TAG"]

#: Words per bank of a lane's weights outside SPRAM: an ECP5 block RAM holds 1024 words of 16 bits.
WEIGHT_BANK_WORDS = 1024

#: Marks the names of memories meant for the UP5K's SPRAM, whose all-zero initial contents the
#: build drops (SPRAM cannot be initialised; Yosys maps only memories without initial contents to it).
SPRAM_TAG = "spram"


def param_slots(config: CoreConfig) -> int:
    """Words per neuron in a lane's parameter memory: one per parameter field, padded to a power of 2."""
    return 1 << (len(config.param_fields) - 1).bit_length()


def _shape(config: CoreConfig, region):
    bits = config.field_bits(region)
    return signed(bits) if config.field_signed(region) else unsigned(bits)


def memory_shapes(config: CoreConfig) -> dict:
    """Each of a lane's memories (but the weights' banks): name -> (depth, shape). A memory of
    depth 1 would have a zero-width address (Verilog ``[-1:0]``), so one neuron per lane gets one
    unused word."""
    c = config
    depth = max(2, c.groups)
    shapes = {"params": (depth * param_slots(c), unsigned(c.fmt.width))}
    shapes.update({name: (depth, signed(c.acc_width)) for name in c.neuron_model.accumulators})
    shapes.update({name: (depth, _shape(c, r)) for name, r in c.state_fields.items()})
    shapes.update({name: (c.table_size, _shape(c, r)) for name, r in c.table_fields.items()})
    return shapes


def weight_banks(config: CoreConfig, weights_in_spram: bool = False) -> tuple[int, int]:
    """A lane's weights: (words, words per bank). In SPRAM one bank; elsewhere banks of one ECP5
    block RAM."""
    words = config.n_sources * config.groups
    whole = 1 << (words - 1).bit_length()
    return words, whole if weights_in_spram else min(whole, WEIGHT_BANK_WORDS)


def lane_init(config: CoreConfig, network, lane: int) -> dict:
    """Initial contents of one lane's memories for a baked ``network``: neuron j = g * lanes + lane
    at address g; the weights [source, neuron] at source * groups + g."""
    c = config
    if network is None:
        return {}
    slots = param_slots(c)
    words = []
    for j in range(lane, c.n_neurons, c.lanes):
        fields = [int(getattr(network, f)[j]) & ((1 << c.field_bits(r)) - 1) for f, r in c.param_fields.items()]
        words += fields + [0] * (slots - len(fields))
    init = {"params": words, **{name: [int(x) for x in getattr(network, name)] for name in c.table_fields}}
    w = network.weight_words().reshape(c.n_sources, c.n_neurons)[..., lane::c.lanes].reshape(-1)
    init["weights"] = [from_word(x, c.fmt.width, True) for x in w]      # the signed memory's values
    return init


class LaneMemories(wiring.Component):
    """The memories of lane ``lane``, each read through a registered port and written by its own.

    Every memory but the weights has ``<name>_raddr`` (its read address), ``<name>_rdata`` (the word
    at the address of the cycle before) and ``<name>_waddr``, ``<name>_wdata``, ``<name>_we``; the
    weights are single-port (``w_addr``, ``w_wdata``, ``w_we``; ``w_data`` two cycles after its
    address: :class:`~spiketwin.hw.ram.BankedMemory`). The memories are named from ``memory_shapes``.

    Members
    -------
    w_addr, w_wdata, w_we : In
    w_data : Out
    <name>_raddr, <name>_waddr, <name>_wdata, <name>_we : In
    <name>_rdata : Out
    """

    def __init__(self, config: CoreConfig, lane: int, network=None, weights_in_spram: bool = False):
        self.config, self.lane, self.spram = config, lane, weights_in_spram
        self.init = lane_init(config, network, lane)
        self.shapes = memory_shapes(config)
        words, _ = weight_banks(config, weights_in_spram)
        members = {"w_addr": In(range(max(2, words))), "w_wdata": In(signed(config.fmt.width)), "w_we": In(1),
                   "w_data": Out(signed(config.fmt.width))}
        for name, (depth, shape) in self.shapes.items():
            members.update({f"{name}_raddr": In(range(depth)), f"{name}_rdata": Out(shape),
                            f"{name}_waddr": In(range(depth)), f"{name}_wdata": In(shape), f"{name}_we": In(1)})
        super().__init__(members)

    def ports(self, name: str) -> tuple:
        """(read, write) views of memory ``name``: ``.addr``/``.data``, and ``.addr``/``.data``/``.en``."""
        return (SimpleNamespace(addr=getattr(self, f"{name}_raddr"), data=getattr(self, f"{name}_rdata")),
                SimpleNamespace(addr=getattr(self, f"{name}_waddr"), data=getattr(self, f"{name}_wdata"),
                                en=getattr(self, f"{name}_we")))

    def elaborate(self, platform):
        m = Module()
        c, lane = self.config, self.lane
        words, bank_words = weight_banks(c, self.spram)
        weights = BankedMemory(m, shape=signed(c.fmt.width), depth=words, bank_words=bank_words,
                               init=self.init.get("weights", []), attrs={"ram_style": "huge"} if self.spram else None,
                               name=f"weights_{SPRAM_TAG}_{lane}" if self.spram else f"weights_{lane}")
        m.d.comb += [weights.addr.eq(self.w_addr), weights.wdata.eq(self.w_wdata), weights.we.eq(self.w_we),
                     self.w_data.eq(weights.data)]
        for name, (depth, shape) in self.shapes.items():
            mem = memory(shape=shape, depth=depth, init=self.init.get(name, []))
            m.submodules[f"{name}_{lane}"] = mem
            rp, wp = ReadPort(m, mem, f"{name}_{lane}"), mem.write_port()
            m.d.comb += [rp.addr.eq(getattr(self, f"{name}_raddr")), getattr(self, f"{name}_rdata").eq(rp.data),
                         wp.addr.eq(getattr(self, f"{name}_waddr")), wp.data.eq(getattr(self, f"{name}_wdata")),
                         wp.en.eq(getattr(self, f"{name}_we"))]
        return m
