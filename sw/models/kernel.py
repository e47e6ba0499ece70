"""The compiled building blocks of the twin's fast path (:mod:`spiketwin.fastpath`, ``docs/fast-path.md``):
:mod:`spiketwin.fixedpoint`'s operations for one integer, and the event-driven accumulation."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["njit", "prange", "sat", "mul", "add_row", "add_rows", "gather_events", "events_fit", "rebin_events"]


@njit(inline="always")
def sat(x, lo, hi):
    """:func:`spiketwin.fixedpoint.saturate` of one integer."""
    return min(max(x, lo), hi)


@njit(inline="always")
def mul(a, b, frac, pos, neg, lo, hi):
    """:func:`spiketwin.fixedpoint.mul` of two raw integers: exact product, rounded shift, saturation."""
    p = np.int64(a) * np.int64(b)
    p = (p + (neg if p < 0 else pos)) >> frac
    return min(max(p, lo), hi)


@njit(inline="always")
def add_row(acc, weights, row, count):
    """``acc[k] += count * weights[k, row]`` for every plane k."""
    for k in range(acc.shape[0]):
        for j in range(acc.shape[1]):
            acc[k, j] += count * weights[k, row, j]


@njit(inline="always")
def add_rows(acc, weights, rows, m):
    """``acc[k] += sum(weights[k, rows[:m]])`` for every plane k, four rows at a time (each sum is
    formed in 64 bits and stored in ``acc``'s type, which holds it: :func:`acc_dtype`)."""
    for k in range(acc.shape[0]):
        r = 0
        while r + 4 <= m:
            w1, w2 = weights[k, rows[r]], weights[k, rows[r + 1]]
            w3, w4 = weights[k, rows[r + 2]], weights[k, rows[r + 3]]
            for j in range(acc.shape[1]):
                acc[k, j] += (w1[j] + w2[j]) + (w3[j] + w4[j])
            r += 4
        while r < m:
            w1 = weights[k, rows[r]]
            for j in range(acc.shape[1]):
                acc[k, j] += w1[j]
            r += 1


@njit(inline="always")
def gather_events(acc, weights, events, b, t, given, spikes, rows):
    """One step's accumulation for batch element ``b`` into ``acc`` [planes, n_neurons]: each
    axon's events (none after the ``given`` steps of input) and each pending spike add their
    weight rows of every plane (``weights`` [planes, n_sources, n_neurons]). Sources with one
    event are listed in ``rows`` without a branch and summed by :func:`add_rows`; an axon with
    several events adds its row times its count."""
    acc[:] = 0
    n_axons = events.shape[2]
    m = 0
    if t < given:
        for a in range(n_axons):
            c = events[b, t, a]
            rows[m] = a
            m += c == 1
            if c > 1:
                add_row(acc, weights, a, c)
    for k in range(spikes.shape[1]):
        rows[m] = n_axons + k
        m += spikes[b, k]
    add_rows(acc, weights, rows, m)


@njit(parallel=True, cache=True, nogil=True)
def events_fit(events, max_per_step):
    """Whether every count of ``events`` [batch, steps, n_axons] is non-negative and every step
    sums to at most ``max_per_step`` (one pass; the NumPy check names what does not fit)."""
    batch, steps, n_axons = events.shape
    bad = 0
    for b in prange(batch):
        for t in range(steps):
            total = 0
            for a in range(n_axons):
                c = events[b, t, a]
                total += c
                bad += c < 0
            bad += total > max_per_step
    return bad == 0


@njit(cache=True, nogil=True)
def rebin_events(events, periods, uniforms, out):
    """:func:`spiketwin.digital_twin.jitter_events` for events [batch, steps, axons]: each event
    of step t happens at ``t + uniforms[k]`` (the k-th event, sample by sample, in (step, axon)
    order, an axon's events one after another) and is counted in the jittered step whose span
    holds that time; ``out`` starts at zero."""
    batch, steps, axons = events.shape
    bounds = np.empty(steps + 1)
    k = 0
    for b in range(batch):
        bounds[0] = 0.0
        for t in range(steps):
            bounds[t + 1] = bounds[t] + periods[b, t]
        for t in range(steps):
            for a in range(axons):
                for _ in range(events[b, t, a]):
                    when = t + uniforms[k]
                    k += 1
                    step = np.searchsorted(bounds, when, side="right") - 1
                    if step < steps:
                        out[b, step, a] += 1
