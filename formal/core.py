"""The core's ports (:class:`~spiketwin.hw.core.Core`, ``docs/schedule.md`` and ``docs/memory-map.md``),
on the default cores of the boards (both neuron models) and on a small core whose whole steps fit
a bounded proof. Events, configuration requests and the spikes' back-pressure are the solver's,
cycle by cycle (the producers hold a request until it is taken); the memories start as the core's
do without a network (all zero) and change only through the port and the steps.

- ``core-spikes``: the spike stream holds valid and its payload until taken (for every state of
  the core: k-induction, so back-pressure held for any time loses nothing that was offered).
- ``core-config``: a request is taken only when the previous read was answered; every read is
  answered exactly once, within 5 cycles (the memory map's promise); an unmapped address raises
  BAD_ADDRESS two cycles after it is taken, and BAD_ADDRESS rises for nothing else; a read of any
  mapped word answers the last value written to that word (0 before), so a write, mapped or not,
  changes no other word; a state word is known until a step or a CONTROL write changes it.
- ``core-step``: every beat of the spike stream belongs to a step that was asked for (after its
  ``step`` event and up to its end marker), each step has exactly one end marker, and its spikes
  leave in strictly increasing neuron order, every address a neuron of the core: no spike twice.
"""

from __future__ import annotations

from amaranth.hdl import Signal

from spiketwin.boards import get_board
from spiketwin.config import CoreConfig, ErrorFlag, Region
from spiketwin.hw.core import Core
from spiketwin.models import model_names

from . import Checks, Job

COMPONENTS = {
    "core-spikes": "the spike stream holds valid and its payload until taken, in every state (k-induction)",
    "core-config": "reads answered once within 5 cycles; BAD_ADDRESS exactly for unmapped requests; "
                   "a read answers the word's last write",
    "core-step": "spikes only inside a step asked for, one end marker per step, increasing neurons",
}

#: The boards whose default cores (LIF and DPI) the port proofs cover.
BOARDS = ("icebreaker", "ulx3s-85f")

#: Cycles from a read being taken to its answer (``ConfigSignature``, ``docs/memory-map.md``).
READ_LATENCY = 5

#: Cores small enough for bounded proofs over whole steps: 2 groups of 2 lanes (LIF), 2 neurons on
#: one lane (DPI).
SMALL = {"lif": CoreConfig(3, 4, lanes=2, max_axon_events=3),
         "dpi": CoreConfig(2, 2, lanes=1, max_axon_events=2, model="dpi")}
#: The small cores' jobs that take minutes of solver time (``pytest -m deep``, ``bench/formal.py``).
DEEP = {"core-words-dpi-small", "core-step-lif-small", "core-step-dpi-small"}


class _Ports:
    """A core under the solver's inputs, which keep the stream rules: a producer holds valid and its
    payload until the request is taken."""

    def __init__(self, c: Checks, config: CoreConfig):
        self.c, self.config = c, config
        c.m.submodules.dut = self.core = core = Core(config)
        ev, cfg, sp = core.events, core.cfg, core.spikes
        self._held(ev.valid, ev.ready, {"axon": ev.payload.axon, "step": ev.payload.step}, "events")
        self._held(cfg.valid, cfg.ready, {"write": cfg.write, "addr": cfg.addr, "wdata": cfg.wdata}, "cfg")
        c.m.d.comb += sp.ready.eq(c.free(1, "spikes_ready"))
        self.event_taken = ev.valid & ev.ready
        self.step_taken = self.event_taken & ev.payload.step
        self.cfg_taken = cfg.valid & cfg.ready
        self.spike_taken = sp.valid & sp.ready

    def _held(self, valid, ready, payload, name: str) -> None:
        c = self.c
        c.m.d.comb += valid.eq(c.free(1, f"{name}_valid"))
        held = valid
        for field, p in payload.items():
            free = c.free(len(p), f"{name}_{field}")
            c.m.d.comb += p.eq(free)
            held = held & (free == c.past(free, f"{name}_was_{field}"))
        waiting = c.past(valid & ~ready, f"{name}_waiting")
        c.assume(~(c.started() & waiting) | held, f"the {name} producer holds a request until it is taken")

    def mapped(self, addr):
        return mapped(self.config, addr)


def mapped(config: CoreConfig, addr):
    """Whether the memory map (``CoreConfig.memory_map``) has ``addr``: its own statement of it."""
    regions = config.memory_map()["regions"].values()
    region, index = addr[config.index_bits:], addr[:config.index_bits]
    hit = 0
    for r in regions:
        hit = hit | ((region == r["region"]) & (index < r["size"]))
    return hit


def _spikes_held(c: Checks, p: _Ports):
    """The spike stream's rule; true when a beat waited under back-pressure in the last cycle."""
    sp = p.core.spikes
    waiting = c.past(sp.valid & ~sp.ready, "spikes_waiting")
    was = c.past(sp.payload, "spikes_was")
    c.require(~(c.started() & waiting) | (sp.valid & (sp.payload == was)),
              "spikes hold valid and their payload until taken")
    return waiting


def spikes_harness(config: CoreConfig) -> Checks:
    """The stream rule in every state. Its covers (a spike held, taken) need a whole step from
    reset, deeper than a default core's bounded proof reaches: ``core-step`` covers them on the
    small cores, with the same rule."""
    c = Checks()
    _spikes_held(c, _Ports(c, config))
    return c


def config_harness(config: CoreConfig, words: bool = True) -> Checks:
    c = Checks()
    m = c.m
    p = _Ports(c, config)
    cfg, errors = p.core.cfg, p.core.errors
    bad = int(ErrorFlag.BAD_ADDRESS)

    # reads: answered once, in time
    pending = Signal(name="read_pending")
    waited = Signal(range(READ_LATENCY + 2), name="read_waited")
    read_taken = p.cfg_taken & ~cfg.write
    with m.If(read_taken):
        m.d.sync += [pending.eq(1), waited.eq(1)]
    with m.Elif(pending & (waited <= READ_LATENCY)):
        m.d.sync += waited.eq(waited + 1)
    with m.If(cfg.rvalid):
        m.d.sync += pending.eq(0)
    c.require(~cfg.rvalid | pending, "an answer comes only for a read taken and not yet answered")
    c.require(~p.cfg_taken | ~pending, "no request is taken while a read waits for its answer")
    c.require(~pending | (waited <= READ_LATENCY), f"a read is answered within {READ_LATENCY} cycles")

    # BAD_ADDRESS
    unmapped = c.past(c.past(p.cfg_taken & ~p.mapped(cfg.addr), "unmapped_taken"), "unmapped_taken_2")
    raised = (errors & bad).any() & ~(c.past(errors, "errors_was") & bad).any()
    c.require(~unmapped | (errors & bad).any(), "an unmapped request raises BAD_ADDRESS two cycles after it is taken")
    c.require(~(c.started() & raised) | unmapped, "BAD_ADDRESS rises only for an unmapped request")

    c.cover(unmapped & cfg.write, "an unmapped write raises BAD_ADDRESS")
    c.cover(cfg.rvalid, "a read answered")
    if words:
        _words(c, p)
    return c


def _words(c: Checks, p: _Ports) -> None:
    """One word, chosen by the solver: a read answers what was last written to it."""
    m, config, cfg = c.m, p.config, p.core.cfg
    read_taken = p.cfg_taken & ~cfg.write
    word = c.constant(len(cfg.addr), "word")
    c.assume(p.mapped(word) & (word[config.index_bits:] != Region.CONTROL), "the word is mapped, not CONTROL")
    region = word[config.index_bits:]
    is_state = 0
    for r in config.state_fields.values():
        is_state = is_state | (region == r)
    bits = {r["region"]: r["bits"] for r in config.memory_map()["regions"].values()}
    width = Signal(range(config.data_bits + 1), name="word_bits")
    with m.Switch(region):
        for r, b in bits.items():
            with m.Case(r):
                m.d.comb += width.eq(b)
    mask = Signal(config.data_bits, name="word_mask")
    m.d.comb += mask.eq((1 << width) - 1)
    known, value = Signal(init=1, name="word_known"), Signal(config.data_bits, name="word_value")
    with m.If(p.cfg_taken & cfg.write & (cfg.addr == word)):
        m.d.sync += [known.eq(1), value.eq(cfg.wdata)]
    control_write = p.cfg_taken & cfg.write & (cfg.addr[config.index_bits:] == Region.CONTROL)
    with m.If(is_state & (p.step_taken | control_write)):
        m.d.sync += known.eq(0)
    asked = Signal(name="word_read")
    with m.If(read_taken):
        m.d.sync += asked.eq(cfg.addr == word)
    answer_ok = ((cfg.rdata ^ value) & mask) == 0
    c.require(~(cfg.rvalid & asked & known) | answer_ok, "a read of a word answers its last write")
    c.cover(cfg.rvalid & asked & known & (value != 0), "a written word read back")


def step_harness(config: CoreConfig) -> Checks:
    c = Checks()
    m = c.m
    p = _Ports(c, config)
    sp = p.core.spikes
    waiting = _spikes_held(c, p)
    in_step, emitted, last = Signal(name="in_step"), Signal(name="emitted"), Signal.like(sp.payload.neuron, name="last")
    with m.If(p.step_taken):
        m.d.sync += [in_step.eq(1), emitted.eq(0)]
    with m.If(p.spike_taken & ~sp.payload.end):
        m.d.sync += [emitted.eq(1), last.eq(sp.payload.neuron)]
    with m.If(p.spike_taken & sp.payload.end):
        m.d.sync += in_step.eq(0)
    c.require(~sp.valid | in_step, "nothing leaves outside a step asked for")
    c.require(~p.step_taken | ~in_step, "no step begins before the last one's end marker")
    spike = p.spike_taken & ~sp.payload.end
    c.require(~spike | (sp.payload.neuron < config.n_neurons), "a spike names a neuron of the core")
    c.require(~(spike & emitted) | (sp.payload.neuron > last), "a step's spikes leave in increasing order")
    c.cover(waiting & sp.valid & ~sp.payload.end, "a spike held under back-pressure")
    c.cover(spike & emitted & (sp.payload.neuron == config.n_neurons - 1), "two spikes in a step, the last neuron's")
    c.cover(p.spike_taken & sp.payload.end & emitted, "a step with spikes ends")
    return c


def _defaults():
    """(board, model, core) for every board's default core of each model."""
    return [(b, model, get_board(b).default_core_for(model)) for b in BOARDS for model in model_names()]


def jobs() -> list[Job]:
    out = [Job(f"core-spikes-{model}-{b}", "core-spikes", "prove", 2, lambda k=k: spikes_harness(k),
               f"the {b} default {model.upper()} core's spike stream under back-pressure")
           for b, model, k in _defaults()]
    out += [Job(f"core-config-{model}-{b}", "core-config", "bmc", 12, lambda k=k: config_harness(k, words=False),
                f"the {b} default {model.upper()} core's configuration port: answers and BAD_ADDRESS",
                deep=k.lanes > 4)
            for b, model, k in _defaults()]
    out += [Job(f"core-words-{model}-small", "core-config", "bmc", 11, lambda k=k: config_harness(k),
                f"the above and each word's last write read back, on a {k.n_axons} x {k.n_neurons} {model.upper()} "
                f"core on {k.lanes} lanes (a write, another, the read)", deep=f"core-words-{model}-small" in DEEP)
            for model, k in SMALL.items()]
    out += [Job(f"core-step-{model}-small", "core-step", "bmc", depth, lambda k=k: step_harness(k),
                f"a step of a {k.n_axons} x {k.n_neurons} {model.upper()} core on {k.lanes} lanes",
                deep=f"core-step-{model}-small" in DEEP)
            for (model, k), depth in zip(SMALL.items(), (30, 42), strict=True)]
    return out
