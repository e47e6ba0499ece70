"""One neuron update (:mod:`spiketwin.hw.models`) against the model's step of ``docs/models.md``, for
every parameter, state and accumulator word, on every lane of each board's default LIF and DPI core.

The harness gives a model's update (:class:`~spiketwin.hw.core.update.NeuronUpdate`) what the core gives
it, with the core's timing and nothing more:

- a state memory's read data is the group's word from the stage after ``UPDATE_READ`` (the cycle
  after ``start``) on, and anything before; a table's word is the entry the core read for the
  neuron (the step uses the same word);
- a parameter word arrives through the same registers as in the core, at the slot
  :class:`~spiketwin.hw.models.ParamSchedule` chooses for each stage (every slot holds a free word,
  and the bits above a field are free too);
- the lane's multiplier is the core's (:func:`spiketwin.hw.arith.multiplier`), but for its exact
  product, which is uninterpreted. A multiplier is hard for a SAT solver and is not what is at
  stake here: each of the step's products is a free exact value, rounded by the contract; the stage
  of ``docs/schedule.md`` that asks for it must give the multiplier the step's operands (either
  order), and the exact product the multiplier computes from them is that value. The proof so holds
  for any product function: each product is asked for with the step's operands, in time, and its
  rounding used where the step uses it.

The step is written here from ``docs/models.md`` with the contract's rounding and ``sat`` of
:mod:`.arith` (proved equal to the gateware's arithmetic there; an exact sum is written in the
order the gateware adds it, which changes no value). At the write-back stage every state field and
accumulator written must be the step's, at the group's address, the fired bit the step's spike, and
nothing else is written during the update.

Checkpoints split the proof: a pipeline names the registers that hold the step's intermediate
values in a stage (``UpdatePipeline.checkpoints``: docs/models.md's names, and partial sums such as
``j_part``), and each is required to equal the step's there. Each is a property like the others (a
wrong one fails the job); once proved for its cycle the solver takes it as given, so every later
check is a small one.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Fragment, Mux, Signal, signed

from spiketwin.boards import get_board
from spiketwin.hw.arith import multiplier
from spiketwin.hw.core.memories import param_slots
from spiketwin.hw.core.update import NeuronUpdate, update_memories
from spiketwin.hw.models import param_field, pipeline_for
from spiketwin.models.dpi import SYNAPSE_TYPES

from . import Checks, Job
from .arith import product, sat

COMPONENTS = {"update-lif": "the LIF update pipeline writes the step's v, i_syn, refractory counter and spike",
              "update-dpi": "the DPI update pipeline writes the step's currents, u, adaptation, refractory counter "
                            "and spike"}

#: The boards whose default cores are proved.
BOARDS = ("icebreaker", "ulx3s-85f")
#: Minutes of solver time (the ULX3S-85F's 16 DPI lanes: about 5): ``bench/formal.py`` and ``pytest -m deep``.
DEEP = {"update-dpi-ulx3s-85f"}


class _Products:
    """One lane's multiplications, uninterpreted: each of the step's products (``mul``) is the
    contract's rounding of a free exact product, chosen once; the stage that asks the lane's
    multiplier for it must give the step's operands (either order, a property), and the exact
    product the multiplier computes from them in the next cycle (``times``, free in every other
    cycle) is that same free value. So the proof holds for any product function."""

    def __init__(self, c: Checks, fmt, lane: int):
        self.c, self.fmt, self.lane = c, fmt, lane
        self.step, self.exact = [], None

    def mul(self, a, b, fmt):
        exact = self.c.constant(signed(2 * fmt.width), f"step_product{len(self.step)}_{self.lane}")
        self.step.append((a, b, exact))
        return product(exact, fmt)

    def times(self, a, b):
        self.exact = self.c.free(signed(2 * self.fmt.width), f"product_{self.lane}")
        return self.exact

    def close(self, cycles, asked: list[tuple[str, int]], ports) -> None:
        """``asked``: per step product, the stage that asks for it and that stage's cycle."""
        for k, ((x, y, exact), (stage, at)) in enumerate(zip(self.step, asked, strict=True)):
            same = ((ports.mul_a == x) & (ports.mul_b == y)) | ((ports.mul_a == y) & (ports.mul_b == x))
            self.c.require((cycles != at) | same, f"lane {self.lane}: {stage} asks for the step's product {k}")
            self.c.assume((cycles != at + 1) | (self.exact == exact),
                          f"lane {self.lane}: the multiplier's product {k} is the step's")
            self.c.require((cycles != at + 2) | (ports.rounded == product(exact, self.fmt)),
                           f"lane {self.lane}: product {k} arrives rounded as the contract's mul")


def _at_least(value, floor):
    """docs/models.md's ``max(floor, value)``, written here and not taken from the gateware's."""
    return Mux(value < floor, floor, value)


def _lif_step(fmt, p, s, mul):
    """docs/models.md, "LIF", steps 2-3, for one neuron: the next state, the spike and the step's
    intermediate values."""
    i_syn = sat(mul(p["syn_decay"], s["i_syn"], fmt) + s["acc"], fmt)
    active = s["ref_count"] == 0
    v_bias = mul(p["leak"], s["v"], fmt) + p["bias"]
    v_int = sat(v_bias + i_syn, fmt)
    fired = active & (v_int >= p["threshold"])
    after = Mux(p["reset_mode"] == 0, sat(v_int - p["threshold"], fmt), p["v_reset"])
    v = Mux(fired, after, Mux(active, v_int, s["v"]))
    ref = Mux(fired, p["refractory"], Mux(active, 0, s["ref_count"] - 1))
    return {"v": v, "i_syn": i_syn, "ref_count": ref, "acc": 0}, fired, {"i_syn": i_syn, "v_bias": v_bias,
                                                                         "v_int": v_int}


def _dpi_step(fmt, p, s, mul):
    """docs/models.md, "DPI", steps 1-5, for one neuron (the tables' entries at ``lut_index(u)`` are
    the words the core read for it): the next state, the spike and the step's intermediate values."""
    floor, u = p["j_floor"], s["u"]
    syn = {t: _at_least(sat(mul(p[f"decay_{t}"], s[f"syn_{t}"], fmt) + s[f"acc_{t}"], fmt), floor)
           for t in SYNAPSE_TYPES}
    j_part = p["j_dc"] + syn["ampa"] - syn["gaba_a"]
    j = sat(j_part + Mux(u > p["u_nmda"], syn["nmda"], 0), fmt)
    j = Mux(j < 0, 0, j)
    sh = sat(s["ahp"] + syn["gaba_b"], fmt)
    d = sat(mul(s["lut_a"], j, fmt) + s["lut_b"] - fmt.one - sh, fmt)
    u_int = sat(u + mul(p["k_mem"], d, fmt), fmt)
    u_int = Mux(u_int < 0, 0, u_int)
    active = s["ref_count"] == 0
    fired = active & (u_int >= p["u_thr"])
    ahp_decay = mul(p["decay_ahp"], s["ahp"], fmt)
    ahp = _at_least(sat(ahp_decay + Mux(fired, p["ahp_jump"], 0), fmt), floor)
    nxt = {f"syn_{t}": syn[t] for t in SYNAPSE_TYPES}
    nxt.update({f"acc_{t}": 0 for t in SYNAPSE_TYPES})
    nxt.update({"u": Mux(active & ~fired, u_int, 0), "ahp": ahp,
                "ref_count": Mux(fired, p["refractory"], Mux(active, 0, s["ref_count"] - 1))})
    inter = {**syn, "j_part": j_part, "j": j, "sh": sh, "d": d, "u_int": u_int, "ahp_decay": ahp_decay,
             "ahp_quiet": _at_least(sat(ahp_decay, fmt), floor),
             "ahp_fired": _at_least(sat(ahp_decay + p["ahp_jump"], fmt), floor)}
    return nxt, fired, inter


#: Per model: its step, and the stage of docs/schedule.md that asks the lane's multiplier for each
#: of the step's products, in the order the step takes them (a lemma of the proof: proved, then
#: used by the solver at the later stages).
STEPS = {"lif": (_lif_step, ["UPDATE_PROD_I", "UPDATE_PROD_V"]),
         "dpi": (_dpi_step, [*(f"DPI_DECAY_{k}" for k in range(len(SYNAPSE_TYPES))), "DPI_PROD_A", "DPI_PROD_K",
                             f"DPI_DECAY_{len(SYNAPSE_TYPES)}"])}


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
    upd = NeuronUpdate(config)
    m.submodules.update = Fragment.get(upd, None)   # elaborated here, so the pipeline's checkpoints exist
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
    step, asked_in = STEPS[config.model]
    pipe = upd.pipeline
    at = {stage: 1 + k for k, stage in enumerate(pipe.stages)}     # each stage's cycle
    for lane, ld in enumerate(lane_data):
        params = {name: param_field(config, Array(ld.words)[sched.fields.index(name)], name) for name in sched.fields}
        nxt, spike, inter = step(fmt, params, ld.state, products[lane].mul)
        products[lane].close(cycles, [(stage, at[stage]) for stage in asked_in], upd.lanes[lane])
        for stage, names in pipe.checkpoints.items():
            for name in names:
                c.require((cycles != at[stage]) | (pipe.values[lane][name] == inter[name]),
                          f"lane {lane}: in {stage}, {name} is the step's")
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
    """The update is not vacuous: a spike, saturation, a floor and a refractory neuron are reached
    at the write-back."""
    at, state = finishing, ld.state
    c.cover(at & spike, "a neuron fires")
    c.cover(at & (state["ref_count"] > 1), "a refractory neuron counts down")
    if config.model == "lif":
        c.cover(at & (nxt["v"] == fmt.max_raw) & ~spike, "v saturates high")
        c.cover(at & (nxt["i_syn"] == fmt.min_raw), "i_syn saturates low")
        c.cover(at & spike & (state["acc"] != 0), "an input makes a neuron fire")
    else:
        c.cover(at & (params["j_floor"] > 0) & (nxt["syn_ampa"] == params["j_floor"]), "a current rests on its floor")
        c.cover(at & (nxt["syn_nmda"] == fmt.max_raw), "a current saturates high")
        c.cover(at & spike & (state["u"] < params["u_thr"]) & (state["acc_ampa"] != 0),
                "an input makes a neuron fire")
        c.cover(at & ~spike & (state["ref_count"] == 0) & (nxt["u"] == 0) & (state["u"] > 0),
                "the membrane drifts to its floor")


def jobs() -> list[Job]:
    out = []
    for model in STEPS:
        for board in BOARDS:
            config = get_board(board).default_core_for(model)
            stages = len(pipeline_for(config).stages)
            name = f"update-{model}-{board}"
            out.append(Job(name, f"update-{model}", "bmc", stages + 3, lambda config=config: harness(config),
                           f"{board}'s default {model} core: {config.lanes} lanes, {stages} stages",
                           deep=name in DEEP))
    return out
