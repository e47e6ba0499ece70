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
