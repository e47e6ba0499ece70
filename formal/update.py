"""One neuron update (:mod:`spiketwin.hw.models`) against the model's step of ``docs/models.md``, for
every parameter, state and accumulator word, on every lane of a board's default core. The
LIF pipeline is proved; the DPI pipeline's proof is not there yet (written this way, the solver
found no verdict in 10 minutes, ``docs/formal.md``).

The harness gives a model's :class:`~spiketwin.hw.models.UpdatePipeline` what the core gives it
(``LaneContext``), with the core's timing and nothing more:

- a state memory's read data is the group's word from the stage after ``UPDATE_READ`` on, and
  anything before;
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

from types import SimpleNamespace

from amaranth.hdl import Array, Mux, Signal, signed

from spiketwin.boards import get_board
from spiketwin.hw.arith import multiplier
from spiketwin.hw.core.memories import memory_shapes, param_slots
from spiketwin.hw.models import LaneContext, ParamSchedule, param_field, pipeline_for

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
    """One lane's free contents (constant during the update) and the memories' ports the pipeline sees."""

    def __init__(self, c: Checks, config, lane: int, valid):
        self.shapes = memory_shapes(config)
        self.neuron = [name for name in self.shapes if name != "params"]
        self.words = [c.constant(config.fmt.width, f"param{slot}_{lane}") for slot in range(param_slots(config))]
        self.state = {name: c.constant(self.shapes[name][1], f"{name}_{lane}") for name in self.neuron}
        self.ports = {}
        for name, (_, shape) in self.shapes.items():
            read = SimpleNamespace(data=Signal(shape, name=f"{name}_rdata_{lane}"))
            write = SimpleNamespace(addr=Signal(range(max(2, config.groups)), name=f"{name}_waddr_{lane}"),
                                    data=Signal(shape, name=f"{name}_wdata_{lane}"),
                                    en=Signal(name=f"{name}_we_{lane}"))
            self.ports[name] = (read, write)
            if name in self.state:                  # the group's word once the read has arrived
                junk = c.free(shape, f"{name}_junk_{lane}")
                c.m.d.comb += read.data.eq(Mux(valid, self.state[name], junk))


def harness(config) -> Checks:
    c = Checks()
    m, fmt, lanes = c.m, config.fmt, range(config.lanes)
    pipe = pipeline_for(config)
    sched = ParamSchedule(config, pipe)
    group = c.constant(range(max(2, config.groups)), "group")
    valid = Signal(name="state_valid")                       # the stage after UPDATE_READ on
    lane_data = [_Lane(c, config, l, valid) for l in lanes]

    slot_next = Signal(range(param_slots(config)), init=sched.rest, name="slot_next")
    slot_addr = Signal.like(slot_next, name="slot_addr")
    rdata = [Signal(fmt.width, name=f"prm_rdata_{l}") for l in lanes]
    prm_q = [Signal(fmt.width, name=f"prm_q_{l}") for l in lanes]
    m.d.sync += slot_addr.eq(slot_next)
    for lane in lanes:
        m.d.sync += [rdata[lane].eq(Array(lane_data[lane].words)[slot_addr]), prm_q[lane].eq(rdata[lane])]
    products = [_Products(c, fmt, l) for l in lanes]
    mults = [multiplier(m, fmt, str(l), times=products[l].times) for l in lanes]
    fired = Signal(config.lanes, name="fired")
    finishing = Signal(name="finishing")

    def stage(nxt):
        slot = sched.chosen_moving_to(nxt)
        if slot is not None:
            m.d.comb += slot_next.eq(slot)
        m.next = nxt

    def finish():
        m.d.comb += finishing.eq(1)
        m.next = "DONE"

    ctx = LaneContext(m=m, mems=[ld.ports for ld in lane_data],
                      param=lambda l, name: param_field(config, prm_q[l], name),
                      mul_a=[a for a, _, _ in mults], mul_b=[b for _, b, _ in mults],
                      rounded=[r for _, _, r in mults], group=group, fired=fired, stage=stage, finish=finish)
    with m.FSM(init="IDLE") as fsm:
        with m.State("IDLE"):                   # the step's marker (or the previous group's EMIT)
            m.d.comb += slot_next.eq(sched.first)
            m.next = "UPDATE_READ"
        pipe.elaborate(ctx)
        with m.State("DONE"):
            pass
    m.d.sync += valid.eq(valid | fsm.ongoing("UPDATE_READ"))
    done = fsm.ongoing("DONE")

    cycles = Signal(range(len(pipe.stages) + 4), name="cycles")
    with m.If(~done):
        m.d.sync += cycles.eq(cycles + 1)
    c.require(done | (cycles <= len(pipe.stages)), "the update ends within its stages")
    step = STEPS[config.model]
    finished = c.past(finishing, "finished")
    for lane, ld in enumerate(lane_data):
        params = {name: param_field(config, Array(ld.words)[sched.fields.index(name)], name) for name in sched.fields}
        nxt, spike = step(fmt, params, ld.state, products[lane].mul)
        products[lane].close()
        for name in ld.neuron:
            read, write = ld.ports[name]
            want = Signal.like(write.data, name=f"{name}_step_{lane}")
            m.d.comb += want.eq(nxt[name])
            c.require(~finishing | (write.en & (write.addr == group) & (write.data == want)),
                      f"lane {lane}: the write-back stores the step's {name} at the group")
            c.require(finishing | ~write.en, f"lane {lane}: {name} is written only by the write-back")
        c.require(~ld.ports["params"][1].en, f"lane {lane}: the update never writes params")
        want_spike = Signal(name=f"spike_step_{lane}")
        m.d.comb += want_spike.eq(spike)
        c.require(~finished | (fired[lane] == c.past(want_spike, f"spiked_{lane}")),
                  f"lane {lane}: the fired bit is the step's spike")
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
