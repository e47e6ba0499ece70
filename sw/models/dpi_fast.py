"""The DPI model's fast path: :func:`spiketwin.models.dpi.dpi_step` and the twin's time loop as one
compiled kernel (``docs/fast-path.md``). The step in :mod:`spiketwin.models.dpi` is the specification."""

from __future__ import annotations

import numpy as np

from ..fastpath import acc_dtype, arith, as_state, sources, weight_planes
from .dpi import DPI_LUT_SHIFT, DPI_LUT_SIZE, SYNAPSE_TYPES, DPIState
from .kernel import gather_events, mul, njit, prange, sat

#: The state fields in the kernel's order (its ``state`` rows), spikes apart.
STATE = ("u", *(f"syn_{t}" for t in SYNAPSE_TYPES), "ahp", "ref_count")
#: The per-neuron parameters in the kernel's order (its ``params`` rows).
PARAMS = (*(f"decay_{t}" for t in SYNAPSE_TYPES), "decay_ahp", "j_dc", "u_nmda", "k_mem", "u_thr", "ahp_jump",
          "refractory", "j_floor")
U, AMPA, NMDA, GABA_A, GABA_B, AHP, REF = range(len(STATE))
DECAY_AHP, J_DC, U_NMDA, K_MEM, U_THR, AHP_JUMP, REFRACTORY, J_FLOOR = range(4, len(PARAMS))


@njit(parallel=True, cache=True, nogil=True)
def _kernel(events, steps, weights, params, lut_a, lut_b, state, spikes, acc, rows, out, traces, record,
            frac, pos, neg, lo, hi):
    batch, given = events.shape[0], events.shape[1]
    n = spikes.shape[1]
    one = np.int64(1) << frac
    planes = acc.shape[1]
    for b in prange(batch):
        for t in range(steps):
            gather_events(acc[b], weights, events, b, t, given, spikes, rows[b])
            for j in range(n):
                u = state[U, b, j]
                floor = params[J_FLOOR, j]
                for k in range(planes):
                    state[AMPA + k, b, j] = max(floor, sat(mul(params[k, j], state[AMPA + k, b, j], frac, pos, neg,
                                                               lo, hi) + acc[b, k, j], lo, hi))
                nmda = state[NMDA, b, j] if u > params[U_NMDA, j] else 0
                drive = max(sat(params[J_DC, j] + state[AMPA, b, j] + nmda - state[GABA_A, b, j], lo, hi), 0)
                shunt = sat(state[AHP, b, j] + state[GABA_B, b, j], lo, hi)
                idx = min(max(u >> DPI_LUT_SHIFT, 0), DPI_LUT_SIZE - 1)
                drift = sat(mul(lut_a[idx], drive, frac, pos, neg, lo, hi) + lut_b[idx] - one - shunt, lo, hi)
                u_int = max(sat(mul(params[K_MEM, j], drift, frac, pos, neg, lo, hi) + u, lo, hi), 0)
                active = state[REF, b, j] == 0
                fired = active and u_int >= params[U_THR, j]
                state[U, b, j] = u_int if active and not fired else 0
                if fired:
                    state[REF, b, j] = params[REFRACTORY, j]
                elif not active:
                    state[REF, b, j] -= 1
                jump = params[AHP_JUMP, j] if fired else 0
                state[AHP, b, j] = max(floor, sat(mul(params[DECAY_AHP, j], state[AHP, b, j], frac, pos, neg, lo, hi)
                                                  + jump, lo, hi))
                spikes[b, j] = fired
                out[b, t, j] = fired
            if record:
                for f in range(state.shape[0]):
                    for j in range(n):
                        traces[f, b, t, j] = state[f, b, j]


def run(config, net, events, steps, state, record):
    """:func:`spiketwin.fastpath.run` for a DPI core."""
    batch, n = events.shape[0], config.n_neurons
    fields = as_state(np.stack([getattr(state, f) for f in STATE]))
    spikes = np.array(state.spikes, bool)
    out = np.zeros((batch, steps, n), bool)
    traces = np.zeros((len(STATE), batch, steps, n) if record else (len(STATE), 0, 0, 0), np.int64)
    params = as_state(np.stack([getattr(net, f) for f in PARAMS]))
    acc = np.zeros((batch, len(SYNAPSE_TYPES), n), acc_dtype(config))
    _kernel(np.ascontiguousarray(events), steps, weight_planes(config, net), params, as_state(net.lut_a),
            as_state(net.lut_b), fields, spikes, acc, sources(config, batch), out, traces, record, *arith(config.fmt))
    end = DPIState(*fields.astype(np.int64), spikes)
    return out, end, (dict(zip(STATE, traces, strict=True)) if record else None)
