"""The DPI model of the twin (docs/models.md, "DPI") against a plain reading of its step, and its files."""

import numpy as np
import pytest

from spiketwin import CoreConfig, simulate
from spiketwin.config import Region
from spiketwin.fixedpoint import QFormat
from spiketwin.host import network_writes
from spiketwin.models.dpi import SYNAPSE_TYPES
from spiketwin.twin import CoreModel, DPINetwork, Network, NetworkFileError


def golden(config, net, events, steps):
    """One neuron at a time with Python integers: the step as DPINetwork's documentation states it."""
    fmt = config.fmt
    lo, hi, one = fmt.min_raw, fmt.max_raw, fmt.one

    def sat(x):
        return max(lo, min(hi, x))

    def mul(a, b):
        p = a * b
        p += fmt.round_bias(p < 0)
        return sat(p >> fmt.frac_bits)

    n = config.n_neurons
    u, ahp, ref, prev = [0] * n, [0] * n, [0] * n, [False] * n
    syn = {t: [0] * n for t in SYNAPSE_TYPES}
    W, T = net.weights.tolist(), net.syn_type.tolist()
    out = []
    for t in range(steps):
        fired = [False] * n
        for j in range(n):
            acc = [0] * 4
            for a in range(config.n_axons):
                acc[T[a][j]] += int(events[t][a]) * W[a][j]
            for k in range(n):
                if prev[k]:
                    acc[T[config.n_axons + k][j]] += W[config.n_axons + k][j]
            floor = int(net.j_floor[j])
            for i, s in enumerate(SYNAPSE_TYPES):
                syn[s][j] = max(floor, sat(mul(int(getattr(net, f"decay_{s}")[j]), syn[s][j]) + acc[i]))
            nmda = syn["nmda"][j] if u[j] > net.u_nmda[j] else 0
            jin = max(0, sat(int(net.j_dc[j]) + syn["ampa"][j] + nmda - syn["gaba_a"][j]))
            sh = sat(ahp[j] + syn["gaba_b"][j])
            e = min(max(u[j] >> 4, 0), 255)
            d = sat(mul(int(net.lut_a[e]), jin) + int(net.lut_b[e]) - one - sh)
            ui = max(0, sat(u[j] + mul(int(net.k_mem[j]), d)))
            spike = ref[j] == 0 and ui >= net.u_thr[j]
            if ref[j]:
                ref[j] -= 1
                u[j] = 0
            elif spike:
                u[j], ref[j] = 0, int(net.refractory[j])
            else:
                u[j] = ui
            ahp[j] = max(floor, sat(mul(int(net.decay_ahp[j]), ahp[j]) + (int(net.ahp_jump[j]) if spike else 0)))
            fired[j] = spike
        prev = fired
        out.append(fired)
    return np.array(out), np.array(u), {s: np.array(v) for s, v in syn.items()}, np.array(ahp), np.array(ref)


@pytest.mark.parametrize("rounding", ["trunc", "nearest"])
@pytest.mark.parametrize("seed", range(3))
def test_vectorised_dpi_twin_matches_golden_model(seed, rounding):
    config = CoreConfig(12, 20, fmt=QFormat(8, 8, rounding=rounding), lanes=4, model="dpi")
    net = DPINetwork.random(config, seed)
    events = np.random.default_rng(seed).poisson(0.4, size=(80, config.n_axons))
    spikes, u, syn, ahp, ref = golden(config, net, events, 80)
    r = simulate(config, net, events)
    assert (r.spikes == spikes).all()
    assert (r.state.u == u).all() and (r.state.ahp == ahp).all() and (r.state.ref_count == ref).all()
    for s in SYNAPSE_TYPES:
        assert (getattr(r.state, f"syn_{s}") == syn[s]).all()
    assert spikes.any() and not spikes.all()
    floored = net.j_floor > 0
    assert (syn["ampa"][floored] == net.j_floor[floored]).any()      # a current resting on its floor


def test_dpi_network_file_roundtrip_and_refusals(tmp_path):
    config = CoreConfig(4, 8, model="dpi")
    net = DPINetwork.random(config, 1)
    back = Network.load(net.save(tmp_path / "dpi.npz"))
    assert isinstance(back, DPINetwork) and back.config == config
    assert all((getattr(back, k) == getattr(net, k)).all() for k in net.array_names)
    with pytest.raises(NetworkFileError, match=r"weights\[\(0, 0\)\] = -1 is outside \[0, 16383\]"):
        DPINetwork(config, **{**{k: getattr(net, k) for k in net.array_names}, "weights": net.weights * 0 - 1})
    with pytest.raises(NetworkFileError, match="A LIFNetwork is for a LIF core"):
        Network(config, *([None] * 8))


def test_a_dpi_file_from_before_the_dark_current_floor_reads_without_it(tmp_path):
    config = CoreConfig(4, 8, model="dpi")
    net = DPINetwork.random(config, 1)
    path = net.save(tmp_path / "dpi.npz")
    with np.load(path) as data:                 # a version 1 file (no checksum) of the time
        old = {k: data[k] for k in data.files if k not in ("j_floor", "checksum")}
    old["format_version"] = np.array(1)
    np.savez(tmp_path / "old.npz", **old)
    back = Network.load(tmp_path / "old.npz")
    assert (back.j_floor == 0).all() and (back.weights == net.weights).all()
    del old["j_dc"]
    np.savez(tmp_path / "broken.npz", **old)
    with pytest.raises(NetworkFileError, match="missing the array 'j_dc'"):
        Network.load(tmp_path / "broken.npz")


def test_core_model_loads_a_dpi_network_through_its_port():
    """The weight word carries the synapse type above the magnitude; tables are a region each."""
    config = CoreConfig(4, 8, lanes=2, model="dpi")
    net = DPINetwork.random(config, 2)
    core = CoreModel(config)
    for a, d in network_writes(net):
        core.write(a, d)
    assert all((getattr(core.network, k) == getattr(net, k)).all() for k in net.array_names)
    src, j = np.argwhere(net.weights)[0]
    word = core.read(config.address(Region.WEIGHT, int(src) * config.n_neurons + int(j)))
    assert word == int(net.syn_type[src, j]) << 14 | int(net.weights[src, j])
    assert core.read(config.address(Region.LUT_B, 255)) == net.lut_b[255]
    assert not config.address_valid(config.address(Region.V, 0))
