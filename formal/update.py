"""One neuron update (:mod:`spiketwin.hw.models`) against the model's step of ``docs/models.md``, for
every parameter, state and accumulator word, on every lane of a board's default core. The
LIF pipeline is proved; the DPI pipeline's proof is not there yet (written this way, the solver
found no verdict in 10 minutes, ``docs/formal.md``).

The harness gives a model's update (:class:`~spiketwin.hw.models.NeuronUpdate`) what the core gives
it, with the core's timing and nothing more:

- a state memory's read data is the group's word from the stage after ``UPDATE_READ`` (the cycle
  after ``start``) on, and anything before;
- a parameter word arrives through the same registers as in the core, at the slot
  :class:`~spiketwin.hw.models.ParamSchedule` chooses for each stage (every slot holds a free word,
  and the bits above a field are free too);
- the lane's multiplier is the core's (:func:`spiketwin.hw.arith.multiplier`), but for its exact
  product, which is uninterpreted: a free value, the same as the step's product of the same two
  operands (either order). A multiplier is hard for a SAT solver and is not what is at stake here:
  the proof holds for any product function, so it shows that each product is asked for with the
  step's operands, in time, and its rounding used where the step uses it.

The step is written here from ``docs/models.md`` with the contract's rounding and ``sat`` of
:mod:`.arith` (proved equal to the gateware's arithmetic there); at the write-back stage every
state field and accumulator written must be the step's, at the group's address, the fired bit the
step's spike, and nothing else is written during the update.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Mux, Signal, signed

from spiketwin.boards import get_board
from spiketwin.hw.arith import multiplier
from spiketwin.hw.core.memories import param_slots
from spiketwin.hw.models import NeuronUpdate, param_field, pipeline_for, update_memories

from . import Checks, Job
from .arith import product, sat

COMPONENTS = {"update-lif": "the LIF update pipeline writes the step's v, i_syn, refractory counter and spike"}

#: The boards whose default cores are proved (the ULX3S-85F's 16-lane LIF core: no verdict in 10 minutes).
BOARDS = ("icebreaker",)


class _Products:
    """One lane's multiplications as an uninterpreted function: each of the step's products
    (``mul``) is a free value, and each product the multiplier registers (``times``) is a free
    value equal to every step product whose operands it has."""

    def __init__(self, c: Checks, fmt, lane: int):
        self.c, self.fmt, self.lane = c, fmt, lane
        self.step, self.gateware = [], []

    def mul(self, a, b, fmt):
        exact = self.c.constant(signed(2 * fmt.width), f"step_product{len(self.step)}_{self.lane}")
        self.step.append((a, b, exact))
        return product(exact, fmt)

    def times(self, a, b):
        exact = self.c.free(signed(2 * self.fmt.width), f"product_{self.lane}")
        self.gateware.append((a, b, exact))
        return exact

    def close(self) -> None:
        for (a, b, p) in self.gateware:
            for k, (x, y, q) in enumerate(self.step):
                same = ((a == x) & (b == y)) | ((a == y) & (b == x))
                self.c.assume(~same | (p == q),
                              f"lane {self.lane}: the multiplier's product of step product {k}'s operands")


def _lif_step(fmt, p, s, mul):
    """docs/models.md, "LIF", steps 2-3, for one neuron: the next state and the spike."""
    i_syn = sat(mul(p["syn_decay"], s["i_syn"], fmt) + s["acc"], fmt)
    active = s["ref_count"] == 0
    v_int = sat(mul(p["leak"], s["v"], fmt) + i_syn + p["bias"], fmt)
    fired = active & (v_int >= p["threshold"])
    after = Mux(p["reset_mode"] == 0, sat(v_int - p["threshold"], fmt), p["v_reset"])
    v = Mux(fired, after, Mux(active, v_int, s["v"]))
    ref = Mux(fired, p["refractory"], Mux(active, 0, s["ref_count"] - 1))
    return {"v": v, "i_syn": i_syn, "ref_count": ref, "acc": 0}, fired


STEPS = {"lif": _lif_step}


class _Lane:
    """One lane's free contents (constant during the update), fed to the update's lane ``ports``."""

    def __init__(self, c: Checks, config, lane: int, ports, valid):
        memories = update_memories(config)
        self.neuron = [name for name, (_, written) in memories.items() if written]
        self.words = [c.constant(config.fmt.width, f"param{slot}_{lane}") for slot in range(param_slots(config))]
        self.state = {name: c.constant(shape, f"{name}_{lane}") for name, (shape, _) in memories.items()}
        self.ports = ports
        for name, (shape, _) in memories.items():   # the group's word once the read has arrived
            junk = c.free(shape, f"{name}_junk_{lane}")
            c.m.d.comb += getattr(ports, f"{name}_rdata").eq(Mux(valid, self.state[name], junk))


def harness(config) -> Checks:
    c = Checks()
    m, fmt, lanes = c.m, config.fmt, range(config.lanes)
    m.submodules.update = upd = NeuronUpdate(config)
    sched = upd.schedule
    group = c.constant(range(max(2, config.groups)), "group")
    started, valid = Signal(name="started"), Signal(name="state_valid")
    m.d.sync += [started.eq(1), valid.eq(started)]          # start in the first cycle: state from the second
    m.d.comb += [upd.start.eq(~started), upd.group.eq(group)]
    lane_data = [_Lane(c, config, l, upd.lanes[l], valid) for l in lanes]

    slot_next = Signal(range(param_slots(config)), init=sched.rest, name="slot_next")
    slot_addr = Signal.like(slot_next, name="slot_addr")
    with m.If(upd.start):
        m.d.comb += slot_next.eq(sched.first)
    with m.Elif(upd.slot_en):
        m.d.comb += slot_next.eq(upd.slot)
    rdata = [Signal(fmt.width, name=f"prm_rdata_{l}") for l in lanes]
    m.d.sync += slot_addr.eq(slot_next)
    for lane in lanes:
        m.d.sync += [rdata[lane].eq(Array(lane_data[lane].words)[slot_addr]), upd.lanes[lane].prm.eq(rdata[lane])]
    products = [_Products(c, fmt, l) for l in lanes]
    for lane in lanes:
        a, b, rounded = multiplier(m, fmt, str(lane), times=products[lane].times)
        m.d.comb += [a.eq(upd.lanes[lane].mul_a), b.eq(upd.lanes[lane].mul_b), upd.lanes[lane].rounded.eq(rounded)]
    fired = Cat(upd.lanes[lane].fired for lane in lanes)
    finishing, done = upd.done, Signal(name="done")
    m.d.sync += done.eq(done | finishing)

    stages = len(upd.pipeline.stages)
    cycles = Signal(range(stages + 4), name="cycles")
    with m.If(~done):
        m.d.sync += cycles.eq(cycles + 1)
    c.require(done | (cycles <= stages), "the update ends within its stages")
    step = STEPS[config.model]
    for lane, ld in enumerate(lane_data):
        params = {name: param_field(config, Array(ld.words)[sched.fields.index(name)], name) for name in sched.fields}
        nxt, spike = step(fmt, params, ld.state, products[lane].mul)
        products[lane].close()
        for name in ld.neuron:
            we, waddr, wdata = (getattr(ld.ports, f"{name}_{x}") for x in ("we", "waddr", "wdata"))
            want = Signal.like(wdata, name=f"{name}_step_{lane}")
            m.d.comb += want.eq(nxt[name])
            c.require(~finishing | (we & (waddr == group) & (wdata == want)),
                      f"lane {lane}: the write-back stores the step's {name} at the group")
            c.require(finishing | ~we, f"lane {lane}: {name} is written only by the write-back")
        want_spike = Signal(name=f"spike_step_{lane}")
        m.d.comb += want_spike.eq(spike)
        c.require(~finishing | (fired[lane] == want_spike), f"lane {lane}: the fired bit is the step's spike")
        if lane == 0:
            _covers(c, config, fmt, finishing, want_spike, ld, params, nxt)
    return c


def _covers(c, config, fmt, finishing, spike, ld, params, nxt):
    """The update is not vacuous: a spike, saturation and a refractory neuron are reached at the write-back."""
    at = finishing
    c.cover(at & spike, "a neuron fires")
    c.cover(at & (ld.state["ref_count"] > 1), "a refractory neuron counts down")
    c.cover(at & (nxt["v"] == fmt.max_raw) & ~spike, "v saturates high")
    c.cover(at & (nxt["i_syn"] == fmt.min_raw), "i_syn saturates low")
    c.cover(at & spike & (ld.state["acc"] != 0), "an input makes a neuron fire")


def jobs() -> list[Job]:
    out = []
    for model in STEPS:
        for board in BOARDS:
            config = get_board(board).default_core_for(model)
            stages = len(pipeline_for(config).stages)
            out.append(Job(f"update-{model}-{board}", f"update-{model}", "bmc", stages + 3,
                           lambda config=config: harness(config),
                           f"{board}'s default {model} core: {config.lanes} lanes, {stages} stages"))
    return out
