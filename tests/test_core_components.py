"""The core's components one by one in Amaranth's simulator, each against what the twin or the
memory map says it must do."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from spiketwin import CoreConfig
from spiketwin.config import Region
from spiketwin.hw.core import ConfigDecoder, LaneAccumulator, LaneMemories, SpikeSelect
from spiketwin.hw.models import pipeline_for
from spiketwin.models.dpi import magnitude_bits


def run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("model", ["lif", "dpi"])
def test_lane_memories_store_and_return_every_word(model):
    config = CoreConfig(3, 8, lanes=2, model=model)
    dut = LaneMemories(config, lane=1)
    rng = np.random.default_rng(0)
    expected = {}

    async def bench(ctx):
        for name, (depth, shape) in dut.shapes.items():
            lo, hi = (-(1 << (shape.width - 1)), 1 << (shape.width - 1)) if shape.signed else (0, 1 << shape.width)
            values = rng.integers(lo, hi, size=depth)
            expected[name] = values
            for addr, v in enumerate(values):
                ctx.set(getattr(dut, f"{name}_waddr"), addr)
                ctx.set(getattr(dut, f"{name}_wdata"), int(v))
                ctx.set(getattr(dut, f"{name}_we"), 1)
                await ctx.tick()
            ctx.set(getattr(dut, f"{name}_we"), 0)
        for name, values in expected.items():
            for addr, v in enumerate(values):
                ctx.set(getattr(dut, f"{name}_raddr"), addr)
                await ctx.tick()
                assert ctx.get(getattr(dut, f"{name}_rdata")) == v, (name, addr)
        weights = rng.integers(-32768, 32768, size=config.n_sources * config.groups)
        for addr, v in enumerate(weights):
            ctx.set(dut.w_addr, addr)
            ctx.set(dut.w_wdata, int(v))
            ctx.set(dut.w_we, 1)
            await ctx.tick()
        ctx.set(dut.w_we, 0)
        for addr, v in enumerate(weights):
            ctx.set(dut.w_addr, addr)
            await ctx.tick().repeat(2)            # a bank's word, then the chosen bank's
            assert ctx.get(dut.w_data) == v, addr

    run(dut, bench)


@pytest.mark.parametrize("model", ["lif", "dpi"])
def test_config_decoder_matches_the_memory_map(model):
    config = CoreConfig(5, 12, lanes=4, model=model)
    dut = ConfigDecoder(config)
    rng = np.random.default_rng(1)
    regions = {"weights": Region.WEIGHT, **config.state_fields, **config.table_fields}
    addrs = [config.address(r, int(i)) for r in Region for i in (0, 1, 5, config.region_size(r) - 1,
                                                                 config.region_size(r)) if i >= 0]
    addrs += [int(a) for a in rng.integers(0, 1 << config.addr_bits, size=200)]

    async def bench(ctx):
        for addr in addrs:
            ctx.set(dut.addr, addr)
            ctx.set(dut.write, 1)
            ctx.set(dut.take, 1)
            ok = config.address_valid(addr)
            assert ctx.get(dut.ok) == ok, hex(addr)
            await ctx.tick()
            region, index = addr >> config.index_bits, addr & ((1 << config.index_bits) - 1)
            lane = index % config.lanes
            for k, r in enumerate(config.param_fields.values()):
                if region == r:
                    assert ctx.get(dut.slot) == k
            for lane_k in range(config.lanes):
                for name, hit in dut.hits(lane_k).items():
                    if name == "params":
                        mine = region in [int(r) for r in config.param_fields.values()] and lane == lane_k
                    elif name in config.table_fields:
                        mine = region == regions[name]                 # every lane's copy
                    else:
                        mine = region == regions[name] and lane == lane_k
                    assert ctx.get(hit) == (ok and mine), (hex(addr), name, lane_k)

    run(dut, bench)


@pytest.mark.parametrize("model", ["lif", "dpi"])
def test_lane_accumulator_adds_a_weight_word_to_its_accumulators(model):
    config = CoreConfig(4, 8, model=model)
    dut = LaneAccumulator(config, pipeline_for(config), lane=0)
    rng = np.random.default_rng(2)

    async def bench(ctx):
        for _ in range(100):
            word = int(rng.integers(-32768, 32768))
            span = (1 << (config.acc_width - 1)) - (1 << 16)     # room for the word: no sum overflows
            accs = [int(a) for a in rng.integers(-span, span, size=len(dut.names))]
            ctx.set(dut.weight, word)
            for name, a in zip(dut.names, accs, strict=True):
                ctx.set(getattr(dut, f"{name}_rdata"), a)
            await ctx.tick()                                  # both registered
            for k, (name, a) in enumerate(zip(dut.names, accs, strict=True)):
                if model == "lif":
                    want, enabled = a + word, True
                else:
                    raw = word & 0xFFFF
                    bits = magnitude_bits(config)
                    want, enabled = a + (raw & ((1 << bits) - 1)), (raw >> bits) == k
                assert ctx.get(getattr(dut, f"{name}_en")) == enabled
                if enabled:
                    assert ctx.get(getattr(dut, f"{name}_sum")) == want

    run(dut, bench)


def test_spike_select_takes_the_lowest_pending_lane():
    dut = SpikeSelect(8)

    async def bench(ctx):
        for pending in range(256):
            ctx.set(dut.pending, pending)
            await ctx.delay(1e-9)
            assert ctx.get(dut.any) == (pending != 0)
            if pending:
                assert ctx.get(dut.lane) == (pending & -pending).bit_length() - 1

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()


def update_bench(config, net, state, acc, group):
    """A :class:`NeuronUpdate` of ``group`` with the core's timing around it: each lane's parameter
    word three cycles after its slot is chosen, the multipliers, the state words, the accumulators
    ``acc`` and the tables at the index of the lane's state."""
    from amaranth.hdl import Array, Const, Module, Mux, Signal

    from spiketwin.hw import arith
    from spiketwin.hw.core.memories import lane_init, param_slots
    from spiketwin.hw.core.update import NeuronUpdate

    m = Module()
    m.submodules.update = upd = NeuronUpdate(config)
    sched, slots, fmt = upd.schedule, param_slots(config), config.fmt
    slot_next, slot_addr = Signal(range(slots), init=sched.rest), Signal(range(slots), init=sched.rest)
    m.d.comb += slot_next.eq(Mux(upd.start, sched.first, Mux(upd.slot_en, upd.slot, sched.rest)))
    m.d.sync += slot_addr.eq(slot_next)
    accumulators = config.neuron_model.accumulators
    for lane, ports in enumerate(upd.lanes):
        j = group * config.lanes + lane
        init = lane_init(config, net, lane)
        words = Array(Const(w, fmt.width) for w in init["params"][group * slots:(group + 1) * slots])
        word = Signal(fmt.width)
        m.d.sync += [word.eq(words[slot_addr]), ports.prm.eq(word)]
        a, b, rounded = arith.multiplier(m, fmt, str(lane))
        m.d.comb += [a.eq(ports.mul_a), b.eq(ports.mul_b), ports.rounded.eq(rounded)]
        for name in config.state_fields:
            m.d.comb += getattr(ports, f"{name}_rdata").eq(int(getattr(state, name)[j]))
        for k, name in enumerate(accumulators):
            m.d.comb += getattr(ports, f"{name}_rdata").eq(int(acc.reshape(len(accumulators), -1)[k, j]))
        if config.table_fields:
            from types import SimpleNamespace
            view = {name: (SimpleNamespace(data=getattr(ports, f"{name}_rdata")), None) for name in config.state_fields}
            index = Signal(range(config.table_size))
            m.d.sync += index.eq(upd.pipeline.table_index(view))
            for name in config.table_fields:
                table = Array(Const(int(x), getattr(ports, f"{name}_rdata").shape()) for x in init[name])
                m.d.comb += getattr(ports, f"{name}_rdata").eq(table[index])
    return m, upd


@pytest.mark.parametrize("model", ["lif", "dpi"])
@pytest.mark.parametrize("seed", range(4))
def test_neuron_update_writes_back_the_twins_step(model, seed):
    """The model's update pipeline, on its own: every lane's write-back is the twin's step of its
    neuron (random network, state and accumulators), at the group's address, after its stages."""
    config = CoreConfig(4, 12, lanes=4, model=model)
    rng = np.random.default_rng(seed)
    model_def = config.neuron_model
    net = model_def.network.random(config, seed=seed)
    state = model_def.state_record.zeros(config)
    for name, region in config.state_fields.items():
        bits, signed = config.field_bits(region), config.field_signed(region)
        lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
        getattr(state, name)[:] = rng.integers(lo, hi, size=config.n_neurons)
    span = 1 << (config.acc_width - 2)
    acc = rng.integers(0 if model == "dpi" else -span, span, size=(len(model_def.accumulators), config.n_neurons))
    acc = acc[0] if len(model_def.accumulators) == 1 else acc
    group = int(rng.integers(0, config.groups))
    j = group * config.lanes                    # lane 0's neuron fires: LIF exactly at its threshold
    state.ref_count[j] = 0
    if model == "lif":
        net.leak[j] = net.syn_decay[j] = net.bias[j] = 0
        acc[j] = net.threshold[j]
    else:
        net.u_thr[j] = 0
    fired, nxt = model_def.step(config, net, state, acc)
    assert fired[j]
    m, upd = update_bench(config, net, state, acc, group)
    stages = len(upd.pipeline.stages)

    async def bench(ctx):
        ctx.set(upd.group, group)
        ctx.set(upd.start, 1)
        await ctx.tick()
        ctx.set(upd.start, 0)
        for cycle in range(1, stages + 1):
            assert ctx.get(upd.done) == (cycle == stages), cycle
            for lane, ports in enumerate(upd.lanes):
                j = group * config.lanes + lane
                for name in (*config.state_fields, *model_def.accumulators):
                    assert ctx.get(getattr(ports, f"{name}_we")) == (cycle == stages), (name, cycle)
                    if cycle == stages:
                        want = int(getattr(nxt, name)[j]) if name in config.state_fields else 0
                        assert ctx.get(getattr(ports, f"{name}_waddr")) == group
                        assert ctx.get(getattr(ports, f"{name}_wdata")) == want, (name, lane)
                if cycle == stages:
                    assert ctx.get(ports.fired) == bool(fired[j]), lane
            await ctx.tick()
        assert not ctx.get(upd.done)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


class LaneWords:
    """A core's memories behind a :class:`ConfigServer`, as the core addresses them: at a request's
    index (a parameter at its slot), each word arriving two cycles after its address was chosen,
    the weights' and the parameter word three (their extra registers), a write stored at once.
    They start as a core with ``network`` baked in."""

    def __init__(self, config, network):
        from spiketwin.hw.core.memories import lane_init, memory_shapes, param_slots

        self.config, self.slots = config, param_slots(config)
        self.lane_bits = (config.lanes - 1).bit_length()
        shapes = {"weights": config.n_sources * config.groups,
                  **{name: depth for name, (depth, _) in memory_shapes(config).items()}}
        self.words = []
        for lane in range(config.lanes):
            init = lane_init(config, network, lane)
            self.words.append({name: list(init.get(name, [0] * depth)) + [0] * (depth - len(init.get(name, [])))
                               for name, depth in shapes.items()})
        self.chosen = [None, None, None]

    def addr(self, name, choice):
        index, slot = choice
        group = index >> self.lane_bits
        if name == "params":
            return group * self.slots + slot
        return index if name in self.config.table_fields else group

    def present(self, ctx, ports_of_lanes) -> None:
        for lane, ports in enumerate(ports_of_lanes):
            for name, words in self.words[lane].items():
                late = name in ("weights", "params")
                choice = self.chosen[-3 if late else -2]
                a = None if choice is None else self.addr(name, choice)
                value = words[a] if a is not None and a < len(words) else 0    # (unmapped: not answered)
                member = {"weights": "w_data", "params": "prm"}.get(name, f"{name}_rdata")
                if hasattr(ports, member):
                    ctx.set(getattr(ports, member), value)

    def clock(self, ctx, dut) -> None:
        """At the clock edge: the writes of this cycle, and the address chosen in it."""
        for lane, ports in enumerate(dut.lanes):
            if ctx.get(ports.w_we):
                self.words[lane]["weights"][self.addr("weights", self.chosen[-1])] = ctx.get(ports.w_wdata)
            for name, words in self.words[lane].items():
                if hasattr(ports, f"{name}_we") and ctx.get(getattr(ports, f"{name}_we")):
                    words[ctx.get(getattr(ports, f"{name}_waddr"))] = ctx.get(getattr(ports, f"{name}_wdata"))
        self.chosen.append((ctx.get(dut.index), ctx.get(dut.slot)) if ctx.get(dut.address) else None)


@pytest.mark.parametrize("model", ["lif", "dpi"])
def test_config_server_writes_and_answers_every_word_as_the_twin(model):
    """Random writes and reads of every region, mapped or not, CONTROL's flags and its state clear:
    each read answers what the twin's core model answers, BAD_ADDRESS and the flags' clear are
    asked for where the twin raises and clears them, and a read is answered 5 cycles after it is taken."""
    from spiketwin.config import Control, ErrorFlag
    from spiketwin.hw.core import ConfigServer
    from spiketwin.twin import CoreModel

    config = CoreConfig(5, 12, lanes=4, model=model)
    rng = np.random.default_rng(5)
    twin, dut = CoreModel(config), ConfigServer(config)
    words = LaneWords(config, twin.network)
    regions = [r for r in Region if config.region_size(r) and r != Region.CONTROL]
    requests = []
    for _ in range(300):
        r = regions[int(rng.integers(len(regions)))]
        index = int(rng.integers(0, config.region_size(r) + 2))         # now and then past the region
        requests.append((bool(rng.random() < 0.6), config.address(r, index) if index < (1 << config.index_bits)
                         else config.address(r, 0), int(rng.integers(0, 1 << 16))))
    control = config.address(Region.CONTROL)
    requests += [(False, control, 0), (False, (29 << config.index_bits) | 3, 0), (False, control, 0),
                 (True, control, Control.CLEAR_ERRORS), (False, control, 0), (True, control, Control.CLEAR_STATE)]
    requests += [(False, a, 0) for _, a, _ in requests[:60]]

    async def bench(ctx):
        errors, answered = 0, 0
        ctx.set(dut.take, 1)
        for write, addr, wdata in requests:
            ctx.set(dut.cfg.valid, 1)
            ctx.set(dut.cfg.write, write)
            ctx.set(dut.cfg.addr, addr)
            ctx.set(dut.cfg.wdata, wdata)
            for cycle in range(12):
                ctx.set(dut.errors, errors)
                words.present(ctx, dut.lanes)
                if cycle == 0:
                    assert ctx.get(dut.cfg.ready)
                elif cycle == 1:
                    ctx.set(dut.cfg.valid, 0)
                assert ctx.get(dut.cfg.rvalid) == (not write and cycle == 5), (hex(addr), cycle)
                if ctx.get(dut.cfg.rvalid):
                    assert ctx.get(dut.cfg.rdata) == twin.read(addr), hex(addr)
                    answered += 1
                if ctx.get(dut.bad_address):
                    errors |= ErrorFlag.BAD_ADDRESS
                if ctx.get(dut.clear_errors):
                    errors = 0
                finished = cycle > 0 and (ctx.get(dut.done) or ctx.get(dut.clear_state))
                if ctx.get(dut.clear_state):               # the core's CLEAR: state and accumulators
                    for lane_words in words.words:
                        for name in (*config.state_fields, *config.neuron_model.accumulators):
                            lane_words[name] = [0] * len(lane_words[name])
                words.clock(ctx, dut)
                await ctx.tick()
                if finished:
                    break
            if write:
                twin.write(addr, wdata)
            elif not config.address_valid(addr):
                twin.read(addr)                            # (answered above; raises BAD_ADDRESS)
            assert errors == int(twin.errors), hex(addr)
        assert answered == sum(not w for w, _, _ in requests)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
