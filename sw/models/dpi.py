"""The DPI-approximating neuron (``docs/models.md``, "DPI"): fields, network and state records, the twin's step.

The membrane state is ``u = ln(I_mem / I0)`` and every current is in units of the neuron's
``I_tau``; :func:`spiketwin.dpi.to_core` converts the float circuit reference to this model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .. import fixedpoint as fx
from ..errors import InvalidValue
from ..network import NetworkRecord
from .base import Field, NeuronModel

if TYPE_CHECKING:
    from ..config import CoreConfig

__all__ = ["DPI", "DPINetwork", "DPIState", "dpi_step", "lut_index", "SYNAPSE_TYPES", "SYN_TYPE_BITS",
           "DPI_LUT_SIZE", "DPI_LUT_SHIFT", "magnitude_bits"]

#: Synapse types, in the order of their type code.
SYNAPSE_TYPES = ("ampa", "nmda", "gaba_a", "gaba_b")
#: A weight word: the synapse type code in the top SYN_TYPE_BITS bits, below them the unsigned
#: magnitude (raw format units of the neuron's I_tau).
SYN_TYPE_BITS = 2
#: Entries of each lookup table, and the shift from raw u to an entry: entry
#: ``clip(u >> DPI_LUT_SHIFT, 0, DPI_LUT_SIZE - 1)``, covering u in [0, 16) in Q8.8.
DPI_LUT_SIZE = 256
DPI_LUT_SHIFT = 4


def magnitude_bits(config: CoreConfig) -> int:
    """Bits of a weight word's magnitude, below its synapse type code."""
    return config.fmt.width - SYN_TYPE_BITS


@dataclass
class DPINetwork(NetworkRecord):
    """Raw integer weights, per-neuron parameters and lookup tables of one DPI core (``docs/models.md``, "DPI").

    Currents are in units of each neuron's leak current ``I_tau`` and the membrane state is
    ``u = ln(I_mem / I0)`` (the membrane voltage in units of ``U_T / kappa``), all in the core's
    format. :func:`spiketwin.dpi.to_core` converts the float reference's biases to these.

    Attributes
    ----------
    weights : int array [n_sources, n_neurons]
        Unsigned magnitudes, ``[0, 2**(width - SYN_TYPE_BITS))``: what one event adds to the
        synaptic current of type ``syn_type``; 0 = no synapse.
    syn_type : int array [n_sources, n_neurons]
        Index into :data:`SYNAPSE_TYPES` (AMPA, NMDA, GABAa, GABAb).
    decay_ampa, decay_nmda, decay_gaba_a, decay_gaba_b, decay_ahp : int arrays [n_neurons]
        Per-step decay factors ``exp(-dt / tau)``, raw, in ``[0, fmt.one]``.
    j_floor : int array [n_neurons]
        The dark current ``I0``, non-negative: no synaptic or adaptation current goes below it
        (0: they decay to 0). A network file without it (written before the floor) reads as 0.
    j_dc : int array [n_neurons]
        DC input current, non-negative.
    u_nmda : int array [n_neurons]
        The NMDA current joins the input while ``u > u_nmda``.
    k_mem : int array [n_neurons]
        ``dt / tau_mem``, in ``[0, fmt.one]``.
    u_thr : int array [n_neurons]
        A neuron fires when its integrated ``u >= u_thr``; u then resets to 0 (I_mem = I0).
    ahp_jump : int array [n_neurons]
        What a spike adds to the neuron's adaptation current, non-negative.
    refractory : int array [n_neurons]
        Whole steps, ``[0, 2**refractory_bits)``, held at u = 0.
    lut_a, lut_b : int arrays [DPI_LUT_SIZE]
        The core's tables of ``I_g / (I_mem + I_g)`` and ``I_fb(I_mem) / I_tau`` at the centre of
        each entry's range of u; non-negative.
    """

    config: CoreConfig
    weights: np.ndarray
    syn_type: np.ndarray
    decay_ampa: np.ndarray
    decay_nmda: np.ndarray
    decay_gaba_a: np.ndarray
    decay_gaba_b: np.ndarray
    decay_ahp: np.ndarray
    j_floor: np.ndarray
    j_dc: np.ndarray
    u_nmda: np.ndarray
    k_mem: np.ndarray
    u_thr: np.ndarray
    ahp_jump: np.ndarray
    refractory: np.ndarray
    lut_a: np.ndarray
    lut_b: np.ndarray
    meta: dict = field(default_factory=dict)

    MODEL = "dpi"
    OPTIONAL = {"j_floor": 0}                # the model before the dark-current floor

    def expected_shape(self, name: str) -> tuple:
        c = self.config
        if name in ("weights", "syn_type"):
            return (c.n_sources, c.n_neurons)
        return super().expected_shape(name)

    def value_range(self, name: str) -> tuple[int, int]:
        c = self.config
        if name == "weights":
            return 0, (1 << magnitude_bits(c)) - 1
        if name == "syn_type":
            return 0, len(SYNAPSE_TYPES) - 1
        if name.startswith("decay_") or name == "k_mem":
            return 0, c.fmt.one
        if name in ("j_dc", "j_floor", "ahp_jump", "lut_a", "lut_b"):
            return 0, c.fmt.max_raw
        return self.field_range(name)

    def weight_words(self) -> np.ndarray:
        """The weights as the configuration port's words (type code above the magnitude), flat."""
        return ((self.syn_type << magnitude_bits(self.config)) | self.weights).reshape(-1)

    def weight_word(self, index: int) -> int:
        bits = magnitude_bits(self.config)
        return int(self.syn_type.reshape(-1)[index]) << bits | int(self.weights.reshape(-1)[index])

    def set_weight_word(self, index: int, word: int) -> None:
        bits = magnitude_bits(self.config)
        self.weights.reshape(-1)[index] = word & ((1 << bits) - 1)
        self.syn_type.reshape(-1)[index] = (word >> bits) & ((1 << SYN_TYPE_BITS) - 1)

    @classmethod
    def random(cls, config: CoreConfig, seed: int = 0, density: float = 0.25) -> DPINetwork:
        """A random DPI network that exercises the arithmetic: every synapse type, recurrent
        synapses, saturating currents for a few neurons, refractory periods of 0 to 3 steps,
        thresholds from unreachable to low, and tables with large and zero entries."""
        rng = np.random.default_rng(seed)
        fmt, n, s = config.fmt, config.n_neurons, config.n_sources
        one, top = fmt.one, (1 << magnitude_bits(config)) - 1
        w = np.abs(rng.normal(0, 1.5, size=(s, n))) * one
        heavy = rng.random((s, n)) < 0.02
        w[heavy] = rng.uniform(20, 64, size=heavy.sum()) * one
        w[rng.random((s, n)) >= density] = 0
        weights = np.minimum(np.round(w).astype(np.int64), top)
        syn_type = rng.integers(0, len(SYNAPSE_TYPES), size=(s, n))

        decays = {f"decay_{t}": rng.integers(one // 2, one + 1, size=n) for t in (*SYNAPSE_TYPES, "ahp")}
        for d in decays.values():
            d[rng.random(n) < 0.1] = one
        u_thr = rng.integers(2 * one, 10 * one, size=n)
        silent = rng.random(n) < 0.15
        u_thr[silent] = fmt.max_raw                         # never fire, and with a strong DC input
        j_dc = rng.integers(0, 4 * one, size=n)             # u runs up to saturation
        j_dc[silent] = 6 * one
        ahp_jump = rng.integers(0, one, size=n)
        ahp_jump[rng.random(n) < 0.15] = 120 * one         # one spike nearly saturates the adaptation
        lut_a = np.round(one / (1 + np.exp(np.arange(DPI_LUT_SIZE) / 16 - 5))).astype(np.int64)
        lut_b = np.minimum(np.round(np.exp(np.arange(DPI_LUT_SIZE) / 24 - 4) * one), fmt.max_raw).astype(np.int64)
        u_nmda, k_mem = rng.integers(0, 8 * one, size=n), rng.integers(one // 16, one // 2, size=n)
        refractory = rng.integers(0, 4, size=n)
        j_floor = rng.integers(0, one // 2, size=n)         # the dark current: I0 / I_tau is about 0.12
        j_floor[rng.random(n) < 0.2] = 0
        high = rng.random(n) < 0.1                          # above what decays and events bring
        j_floor[high] = rng.integers(one, 8 * one, size=int(high.sum()))
        return cls(config, weights, syn_type, **decays, j_floor=j_floor, j_dc=j_dc, u_nmda=u_nmda, k_mem=k_mem,
                   u_thr=u_thr, ahp_jump=ahp_jump, refractory=refractory, lut_a=lut_a, lut_b=lut_b)

    @classmethod
    def zeros(cls, config: CoreConfig) -> DPINetwork:
        n, z = config.n_neurons, np.zeros(config.n_neurons, np.int64)
        zw = np.zeros((config.n_sources, n), np.int64)
        return cls(config, zw, zw.copy(), **{f"decay_{t}": z.copy() for t in (*SYNAPSE_TYPES, "ahp")},
                   j_floor=z.copy(), j_dc=z.copy(), u_nmda=z.copy(), k_mem=z.copy(), u_thr=z + config.fmt.max_raw,
                   ahp_jump=z.copy(), refractory=z.copy(), lut_a=np.zeros(DPI_LUT_SIZE, np.int64),
                   lut_b=np.zeros(DPI_LUT_SIZE, np.int64))


@dataclass
class DPIState:
    """DPI neuron state, [n_neurons] or [batch, n_neurons], raw: u = ln(I_mem / I0), the four
    synaptic currents and the adaptation current (units of I_tau), the refractory counter, and
    the spikes of the last step."""

    u: np.ndarray
    syn_ampa: np.ndarray
    syn_nmda: np.ndarray
    syn_gaba_a: np.ndarray
    syn_gaba_b: np.ndarray
    ahp: np.ndarray
    ref_count: np.ndarray
    spikes: np.ndarray

    @classmethod
    def zeros(cls, config: CoreConfig, batch: tuple = ()) -> DPIState:
        shape = (*batch, config.n_neurons)
        return cls(*(np.zeros(shape, np.int64) for _ in range(7)), np.zeros(shape, bool))

    @classmethod
    def at_rest(cls, net: DPINetwork, batch: tuple = ()) -> DPIState:
        """The state a core reaches after one step without input from a cleared state: u = 0 and
        every synaptic and adaptation current on its dark-current floor (as the float reference starts)."""
        state = cls.zeros(net.config, batch)
        for name in (*(f"syn_{t}" for t in SYNAPSE_TYPES), "ahp"):
            getattr(state, name)[...] = net.j_floor
        return state


def lut_index(u: np.ndarray) -> np.ndarray:
    """The lookup-table entry of raw u: ``clip(u >> DPI_LUT_SHIFT, 0, DPI_LUT_SIZE - 1)``."""
    return np.clip(np.asarray(u) >> DPI_LUT_SHIFT, 0, DPI_LUT_SIZE - 1)


def dpi_step(config: CoreConfig, net: DPINetwork, state: DPIState, acc: np.ndarray) -> tuple[np.ndarray, DPIState]:
    """One time step of the DPI model after accumulation (``docs/models.md``, "DPI"); ``acc`` is
    [4, ..., n_neurons], the summed weight magnitudes of each synapse type.

    With ``sat`` the format's saturation and ``mul`` its product (:mod:`spiketwin.fixedpoint`):

    - each synaptic current ``s' = max(j_floor, sat(mul(decay_s, s) + acc_s))`` (it rests at the dark current);
    - input ``j = max(0, sat(j_dc + ampa' + [u > u_nmda] nmda' - gaba_a'))``, shunt
      ``sh = sat(ahp + gaba_b')`` (the adaptation current of the previous step);
    - drift ``d = sat(mul(A[u], j) + B[u] - 1 - sh)`` with ``A``, ``B`` the tables at ``lut_index(u)``;
    - ``u_int = max(0, sat(u + mul(k_mem, d)))``; a neuron not refractory fires when
      ``u_int >= u_thr``, and then u = 0 and the counter is loaded from ``refractory``; a
      refractory neuron is held at u = 0 and decrements its counter;
    - ``ahp' = max(j_floor, sat(mul(decay_ahp, ahp) + [fired] ahp_jump))``.

    This is eq. 2a of the ARCANA paper written for u = ln(I_mem / I0):
    ``tau du/dt = (I_g / (I_mem + I_g)) I_in / I_tau + I_fb / I_tau - 1 - I_sh / I_tau``.
    """
    fmt = config.fmt
    syn = {t: np.maximum(net.j_floor, fx.mac(getattr(net, f"decay_{t}"), getattr(state, f"syn_{t}"), acc[k], fmt=fmt))
           for k, t in enumerate(SYNAPSE_TYPES)}
    gate = state.u > net.u_nmda
    j = np.maximum(fx.add(net.j_dc, syn["ampa"], np.where(gate, syn["nmda"], 0), -syn["gaba_a"], fmt=fmt), 0)
    sh = fx.add(state.ahp, syn["gaba_b"], fmt=fmt)
    idx = lut_index(state.u)
    d = fx.mac(net.lut_a[idx], j, net.lut_b[idx], -fmt.one, -sh, fmt=fmt)
    u_int = np.maximum(fx.mac(net.k_mem, d, state.u, fmt=fmt), 0)
    active = state.ref_count == 0
    fired = active & (u_int >= net.u_thr)
    u = np.where(active & ~fired, u_int, 0)
    ref = np.where(fired, net.refractory, np.where(active, 0, state.ref_count - 1))
    ahp = np.maximum(net.j_floor, fx.mac(net.decay_ahp, state.ahp, np.where(fired, net.ahp_jump, 0), fmt=fmt))
    return fired, DPIState(u, syn["ampa"], syn["nmda"], syn["gaba_a"], syn["gaba_b"], ahp, ref, fired)


def coverage(config: CoreConfig, net: DPINetwork, spikes: np.ndarray, traces: dict) -> dict:
    """Which currents saturated (they never go below zero), whether u saturated, spikes recurred,
    neurons were refractory, and how many table entries a run used."""
    fmt = config.fmt
    cov = {f"{name}_saturated_high": bool((traces[name] == fmt.max_raw).any())
           for name in ("u", *(f"syn_{t}" for t in SYNAPSE_TYPES), "ahp")}
    cov["recurrent_spikes"] = bool(spikes[:-1].any())
    # u resets when it fires, so its saturation shows as spikes of neurons whose threshold is
    # the format's maximum: only a saturated u reaches it.
    cov["u_saturated_high"] = bool(spikes[..., net.u_thr == fmt.max_raw].any())
    cov["refractory"] = bool((traces["ref_count"] > 0).any())
    cov["lut_entries"] = int(np.unique(lut_index(traces["u"])).size)
    return cov


def _check_config(config: CoreConfig) -> None:
    if config.fmt.width <= SYN_TYPE_BITS + 1:
        raise InvalidValue(f"A DPI core needs a format wider than {SYN_TYPE_BITS + 1} bits")


def _memory_map_notes(config: CoreConfig) -> dict:
    return {"weight_word": {"type_bits": SYN_TYPE_BITS, "types": list(SYNAPSE_TYPES),
                            "magnitude_bits": magnitude_bits(config)},
            "lut_index": f"clip(u >> {DPI_LUT_SHIFT}, 0, {DPI_LUT_SIZE - 1})"}


def measure(probe) -> dict:
    """Every DPI parameter and weight of a board's neurons, from their behaviour (``characterize``).

    The probes set the tables, ``k_mem``, ``j_dc``, ``j_floor`` and the thresholds to known values
    where a measurement needs the drift known (each restored after):

    - ``j_floor``: every current one step after a cleared state without input (it rests on its
      floor); the floor is then set to 0 for the other probes;
    - with both tables 0 and ``u_thr`` at the maximum (no spike: the drift is then
      ``-1 - shunt``): the five decays from one step of each current written as 64 (exact
      products), and ``k_mem`` from one step of u = 64 (``u' = 64 - k_mem``);
    - ``ahp_jump`` and ``refractory``: with ``u_thr`` at the minimum, the adaptation current and
      the refractory counter after a spike from rest;
    - with A = B = 1 in every table entry and ``k_mem`` = 1 (so ``u' = u + j - shunt``):
      ``j_dc`` from one step at rest; ``u_thr`` as the smallest written u that fires (no input);
      ``u_nmda`` as the smallest u at which an NMDA current passes the gate (B = 0 in the top
      entry keeps u' in range). u never goes below 0 in the model, so thresholds at or below 0 act
      alike and read as 0, and NMDA gates below 0 read as -1; with ``decay_nmda`` 0 the gate never
      acts and reads as the maximum;
    - weights: each synaptic current one step after one event on each axon (its type is the
      current that moved; a zero magnitude has no type), and a neuron's outgoing weights two steps
      after it alone fired.
    """
    m = _measure_decays(probe)
    m.update(_measure_levels(probe))
    m["weights"], m["syn_type"] = _measure_weights(probe)
    return m


def _measure_decays(probe) -> dict:
    """``j_floor``, the five decays, ``k_mem``, ``ahp_jump`` and ``refractory`` (:func:`measure`)."""
    c = probe.config
    fmt, top, bottom = c.fmt, c.fmt.max_raw, c.fmt.min_raw
    big = 64 * fmt.one
    currents = [f"syn_{t}" for t in SYNAPSE_TYPES]
    m = {}
    probe.control("lut_a", 0)
    probe.control("lut_b", 0)
    probe.control("u_thr", top)
    probe.step()
    m["j_floor"] = probe.get("syn_ampa")
    probe.control("j_floor", 0)
    probe.step({name: big for name in (*currents, "ahp")})
    for name in (*SYNAPSE_TYPES, "ahp"):
        m[f"decay_{name}"] = probe.get("ahp" if name == "ahp" else f"syn_{name}") // 64
    probe.step({"u": big})
    m["k_mem"] = big - probe.get("u")
    probe.set("u_thr", bottom)
    probe.step()
    m["ahp_jump"], m["refractory"] = probe.get("ahp"), probe.get("ref_count")
    return m


def _measure_levels(probe) -> dict:
    """``j_dc``, ``u_thr`` and ``u_nmda``, with A = B = 1 and ``k_mem`` = 1 (:func:`measure`)."""
    c = probe.config
    fmt, n, top = c.fmt, c.n_neurons, c.fmt.max_raw
    m = {}
    probe.set("u_thr", top)
    probe.set("lut_a", fmt.one)
    probe.set("lut_b", fmt.one)
    probe.control("k_mem", fmt.one)
    fired = probe.step()[0]
    m["j_dc"] = np.where(fired, top, probe.get("u"))
    probe.control("j_dc", 0)
    probe.set("u_thr", probe.saved["u_thr"])

    def fires_from(u):
        return probe.step({"u": u})[0]

    m["u_thr"] = probe.search(np.full(n, -1), np.full(n, top), fires_from)
    probe.set("u_thr", top)
    b_top = np.full(DPI_LUT_SIZE, fmt.one)
    b_top[-1] = 0
    probe.set("lut_b", b_top)

    def gate_open(u):
        probe.step({"u": u, "syn_nmda": fmt.one})
        closed = np.maximum(0, u + b_top[lut_index(u)] - fmt.one)
        return probe.get("u") != closed

    m["u_nmda"] = probe.search(np.full(n, -1), np.full(n, top + 1), gate_open) - 1
    return m


def _measure_weights(probe) -> tuple:
    """(magnitude, synapse type) of every weight, from the current each source's event moves."""
    c = probe.config
    n, top, bottom = c.n_neurons, c.fmt.max_raw, c.fmt.min_raw
    currents = [f"syn_{t}" for t in SYNAPSE_TYPES]
    probe.set("lut_a", 0)
    probe.set("lut_b", 0)
    mag, kind = np.zeros((c.n_sources, n), np.int64), np.zeros((c.n_sources, n), np.int64)

    def record(source):
        seen = np.stack([probe.get(name) for name in currents])
        mag[source], kind[source] = seen.max(0), np.where(seen.max(0) > 0, seen.argmax(0), 0)

    for a in range(c.n_axons):
        probe.step(axon=a)
        record(a)
    threshold = np.full(n, top)
    for k in range(n):
        threshold[k] = bottom
        probe.set("u_thr", threshold)
        probe.step(steps=2)
        record(c.n_axons + k)
        threshold[k] = top
    return mag, kind


def profile_rows(nominal: DPINetwork, measured: dict) -> list[tuple]:
    """Rows for ``MismatchProfile.fit``: every decay, ``k_mem``, ``j_dc``, ``ahp_jump`` and the
    weights as measured / nominal at level 1, where the nominal value is not tiny."""
    c = nominal.config
    rows = []
    for name in (*(f"decay_{t}" for t in (*SYNAPSE_TYPES, "ahp")), "k_mem", "j_dc", "ahp_jump"):
        nom = getattr(nominal, name)
        rows += [(j, name, 1.0, float(measured[name][j] / nom[j])) for j in range(c.n_neurons) if nom[j] >= 16]
    nw = nominal.weights
    for s, j in zip(*np.nonzero(nw >= 16), strict=True):
        rows.append((int(s) * c.n_neurons + int(j), "weights", 1.0, float(measured["weights"][s, j] / nw[s, j])))
    return rows



DPI = NeuronModel(
    name="dpi",
    summary="DPI-approximating neurons (u = ln(I_mem / I0), four synapse types, adaptation)",
    # in the order the update reads them
    params={"decay_ampa": Field(15), "decay_nmda": Field(16), "decay_gaba_a": Field(17), "decay_gaba_b": Field(18),
            "decay_ahp": Field(19), "j_floor": Field(29), "j_dc": Field(13), "u_nmda": Field(14), "k_mem": Field(11),
            "u_thr": Field(12), "ahp_jump": Field(20), "refractory": Field(7, "count")},
    state={"u": Field(21), "syn_ampa": Field(22), "syn_nmda": Field(23), "syn_gaba_a": Field(24),
           "syn_gaba_b": Field(25), "ahp": Field(26), "ref_count": Field(10, "count")},
    tables={"lut_a": Field(27), "lut_b": Field(28)},
    table_size=DPI_LUT_SIZE,
    accumulators=tuple(f"acc_{t}" for t in SYNAPSE_TYPES),
    network=DPINetwork,
    state_record=DPIState,
    step=dpi_step,
    weight_planes=lambda net: [net.weights * (net.syn_type == k) for k in range(len(SYNAPSE_TYPES))],
    membrane="u",
    threshold="u_thr",
    membrane_label="u = ln(I_mem / I0)",
    coverage=coverage,
    measure=measure,
    profile_rows=profile_rows,
    check_config=_check_config,
    memory_map_notes=_memory_map_notes,
    fast_path="spiketwin.models.dpi_fast",
)
