"""The co-simulation must catch a one-LSB change in the RTL arithmetic (it is not a tautology)."""

import numpy as np
import pytest
from amaranth.hdl import Mux

from spiketwin import CoreConfig, Network
from spiketwin.hw import arith
from spiketwin.sim.cosim import Job, build, random_events, run_cosim

pytestmark = pytest.mark.sim

real_saturate = arith.saturate


def round_positive_products_as_negative(p, fmt):
    return real_saturate((p + fmt.round_bias(True)) >> fmt.frac_bits, fmt)


def round_to_floor(p, fmt):
    return real_saturate(p >> fmt.frac_bits, fmt)


def saturate_one_below_max(value, fmt):
    clamped = Mux(value > fmt.max_raw - 1, fmt.max_raw - 1, Mux(value < fmt.min_raw, fmt.min_raw, value))
    return clamped[:fmt.width].as_signed()


MUTATIONS = {
    "product-positive-rounding": ("round_product", round_positive_products_as_negative),
    "product-floor-not-trunc": ("round_product", round_to_floor),
    "saturate-max-minus-one": ("saturate", saturate_one_below_max),
}


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_mutated_rtl_is_caught(tmp_path, monkeypatch, sim, mutation):
    name, replacement = MUTATIONS[mutation]
    monkeypatch.setattr(arith, name, replacement)
    config = CoreConfig(16, 32, lanes=2)
    runner = build(config, sim, tmp_path / "build")
    monkeypatch.undo()
    rng = np.random.default_rng(3)
    job = Job(config, Network.random(config, 3), random_events(config, 60, rng, 0.2), seed=3)
    report = run_cosim(runner, job, sim, tmp_path / "run")
    assert not report["match"]
    assert "first_spike_mismatch" in report or "state_mismatches" in report


def ignore_the_floor(value, floor):
    return value


@pytest.mark.parametrize("sim", ["icarus"])
def test_dpi_core_without_the_dark_current_floor_is_caught(tmp_path, monkeypatch, sim):
    from spiketwin.hw.models import dpi as dpi_rtl
    from spiketwin.twin import DPINetwork

    monkeypatch.setattr(dpi_rtl, "_at_least", ignore_the_floor)
    config = CoreConfig(8, 16, lanes=2, model="dpi")
    runner = build(config, sim, tmp_path / "build")
    monkeypatch.undo()
    rng = np.random.default_rng(4)
    job = Job(config, DPINetwork.random(config, 4), random_events(config, 40, rng, 0.2), seed=4)
    report = run_cosim(runner, job, sim, tmp_path / "run")
    assert not report["match"] and "state_mismatches" in report
