"""The LIF model's fast path: :func:`spiketwin.models.lif.lif_step` and the twin's time loop as one
compiled kernel (``docs/fast-path.md``). The step in :mod:`spiketwin.models.lif` is the specification."""

from __future__ import annotations

import numpy as np

from ..fastpath import acc_dtype, arith, as_state, sources, weight_planes
from .kernel import gather_events, mul, njit, prange, sat
from .lif import RESET_SUBTRACT, LIFState


@njit(parallel=True, cache=True, nogil=True)
def _kernel(events, steps, weights, threshold, leak, syn_decay, bias, v_reset, reset_mode, refractory,
            v, i_syn, ref, spikes, acc, rows, out, traces, record, frac, pos, neg, lo, hi):
    batch, given = events.shape[0], events.shape[1]
    n = v.shape[1]
    for b in prange(batch):
        for t in range(steps):
            gather_events(acc[b], weights, events, b, t, given, spikes, rows[b])
            for j in range(n):
                i_new = sat(mul(syn_decay[j], i_syn[b, j], frac, pos, neg, lo, hi) + acc[b, 0, j], lo, hi)
                count, v_old, th = ref[b, j], v[b, j], threshold[j]
                active = count == 0
                v_int = sat(mul(leak[j], v_old, frac, pos, neg, lo, hi) + i_new + bias[j], lo, hi)
                fired = active & (v_int >= th)
                v_after = sat(v_int - th, lo, hi) if reset_mode[j] == RESET_SUBTRACT else v_reset[j]
                v[b, j] = v_after if fired else (v_int if active else v_old)
                ref[b, j] = refractory[j] if fired else (0 if active else count - 1)
                i_syn[b, j] = i_new
                spikes[b, j] = fired
                out[b, t, j] = fired
            if record:
                for j in range(n):
                    traces[0, b, t, j] = v[b, j]
                    traces[1, b, t, j] = i_syn[b, j]
                    traces[2, b, t, j] = ref[b, j]


def run(config, net, events, steps, state, record):
    """:func:`spiketwin.fastpath.run` for a LIF core."""
    batch, n = events.shape[0], config.n_neurons
    v, i_syn, ref = (as_state(getattr(state, f)) for f in ("v", "i_syn", "ref_count"))
    spikes = np.array(state.spikes, bool)
    acc = np.zeros((batch, 1, n), acc_dtype(config))
    out = np.zeros((batch, steps, n), bool)
    traces = np.zeros((3, batch, steps, n) if record else (3, 0, 0, 0), np.int64)
    params = (as_state(getattr(net, f))
              for f in ("threshold", "leak", "syn_decay", "bias", "v_reset", "reset_mode", "refractory"))
    _kernel(np.ascontiguousarray(events), steps, weight_planes(config, net), *params, v, i_syn, ref, spikes, acc,
            sources(config, batch), out, traces, record, *arith(config.fmt))
    end = LIFState(*(a.astype(np.int64) for a in (v, i_syn, ref)), spikes)
    return out, end, (dict(zip(("v", "i_syn", "ref_count"), traces, strict=True)) if record else None)


@njit(parallel=True, cache=True, nogil=True)
def _layer_kernel(acc, alpha, beta, bias, threshold, m_out, s_out, i_out, v_out, frac, pos, neg, lo, hi):
    batch, steps, n = acc.shape
    for b in prange(batch):
        for j in range(n):
            i, v = 0, 0
            for t in range(steps):
                i = sat(mul(alpha[j], i, frac, pos, neg, lo, hi) + acc[b, t, j], lo, hi)
                m = sat(mul(beta[j], v, frac, pos, neg, lo, hi) + i + bias[j], lo, hi)
                fired = m >= threshold[j]
                v = sat(m - threshold[j], lo, hi) if fired else m
                m_out[b, t, j], s_out[b, t, j], i_out[b, t, j] = m, fired, i
            v_out[b, j] = v


def layer(fmt, acc, alpha, beta, bias, threshold):
    """One feed-forward layer of LIF neurons that subtract their threshold, without refractory
    period, run from rest on its whole input at once (what :func:`step` does for such neurons;
    the quantisation-aware training of :mod:`spiketwin.train` runs through it).

    ``acc`` [batch, steps, n] is each step's summed input, raw; the parameters [n] are raw.
    Returns raw (membrane before reset [batch, steps, n], spikes, i_syn, v after the last step [batch, n]).
    """
    acc = np.ascontiguousarray(acc, np.int64)
    batch, steps, n = acc.shape
    m, i = np.empty((batch, steps, n), np.int64), np.empty((batch, steps, n), np.int64)
    s, v = np.empty((batch, steps, n), bool), np.empty((batch, n), np.int64)
    _layer_kernel(acc, *(as_state(p) for p in (alpha, beta, bias, threshold)), m, s, i, v, *arith(fmt))
    return m, s, i, v
