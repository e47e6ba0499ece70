"""spiketwin's twin against the float simulators a user might pick instead, on one workload, in one run.

The workload: 256 input axons -> 256 recurrent current-based LIF neurons, every one of the
2 x 65,536 synapses present, 200 steps of 10% Bernoulli input, about 17% of neurons firing per
step. Synaptic operations = (input events + spikes replayed) x 256 fan-out, counted from each
simulator's own spikes. Every simulator runs in a process of its own and is timed on a 200-step
run after a warm-up (compilation, code generation and network construction excluded), batch 1 and
batch 64, one simulator at a time, each timed run right after an untimed one, repeats interleaved
round-robin, the median reported, with its ratio to spiketwin.

The core's dynamics, which every peer is set up to reproduce (Q8.8 weights and parameters, so the
float peers see the same values):

    i' = alpha * i + W_in x_t + W_rec s_{t-1}      (alpha = 0.75, the previous step's spikes)
    v' = beta * v + i'                               (beta = 0.875)
    s_t = v' >= 1.0, and then v' = 0 (reset to zero, no refractory period)

- spiketwin ``simulate``: the bit-exact Q8.8 twin (its default engine, the compiled fast path;
  ``--engines`` adds the NumPy reference).
- NumPy float32: the equations above, one dense matmul per step.
- Norse ``LIFRecurrent`` (dt = 1 ms, ``autapses=True``): its Euler step is ``i_t = i + W z``,
  ``v' = v + k ((0 - v) + i_t)``, ``i <- (1 - dt tau_syn_inv) i_t``: tau_syn_inv and tau_mem_inv
  are set so ``1 - dt tau_syn_inv = alpha`` and ``k = 1 - beta``, the weights divided by k, and
  v_th half an LSB below 1.0 (Norse fires on ``v > v_th``).
- snnTorch ``RSynaptic`` (all-to-all recurrent ``nn.Linear``, no bias, ``reset_delay=False``):
  the same equations, v_th half an LSB below 1.0 (it fires on ``>``), but its zero reset also
  clears the neuron's synaptic current: its firing fraction is reported beside the others'.
- Brian2 (its runtime with Cython code generation): ``acc`` summed by ``Synapses`` (on_pre
  ``acc_post += w``), a ``run_regularly`` at the start of each step doing the two updates above,
  ``threshold='v >= 1'``, ``reset='v = 0'``; the inputs arrive one step earlier through a
  ``SpikeGeneratorGroup`` so they reach ``acc`` in the step the core sees them. A batch of 64 is
  64 copies of the network in one group.

A peer that is not installed is skipped with a note (``pip install -e '.[peers]'``).

    python bench/peers.py [--repeats 7] [--batches 1 64] [--peers numpy norse snntorch brian2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from spiketwin import CoreConfig, Network, simulate
from spiketwin import fixedpoint as fx

N, STEPS, ACTIVITY = 256, 200, 0.1
ALPHA, BETA, THRESHOLD = 0.75, 0.875, 1.0
HALF_LSB = fx.Q8_8.resolution / 2


def workload(seed: int = 0) -> tuple[CoreConfig, Network, np.ndarray, np.ndarray]:
    """The core, its network (every synapse non-zero) and the float weights [512, 256] it holds."""
    config = CoreConfig(N, N, lanes=4)
    rng = np.random.default_rng(seed)
    w = np.vstack([rng.normal(0.03, 0.08, (N, N)), rng.normal(-0.02, 0.05, (N, N))])
    raw = fx.to_raw(w)
    raw[raw == 0] = 1
    net = Network.zeros(config)
    net.weights[:] = raw
    net.syn_decay[:] = fx.to_raw(ALPHA)
    net.leak[:] = fx.to_raw(BETA)
    net.threshold[:] = fx.to_raw(THRESHOLD)
    net.reset_mode[:] = 1          # reset to v_reset = 0
    return config, net, fx.to_float(raw), rng


def inputs(rng, batch: int) -> np.ndarray:
    return (rng.random((batch, STEPS, N)) < ACTIVITY).astype(np.int64)


# --- simulators: each returns run(events [batch, steps, n]) -> spikes [batch, steps, n] ------------------
def make_spiketwin(config, net, w, engine="auto"):
    return lambda ev: simulate(config, net, ev, engine=engine).spikes


def make_numpy(config, net, w):
    win, wrec = w[:N].astype(np.float32), w[N:].astype(np.float32)

    def run(ev):
        x = ev.astype(np.float32)
        b = x.shape[0]
        i, v, s = (np.zeros((b, N), np.float32) for _ in range(3))
        out = np.zeros((b, STEPS, N), bool)
        for t in range(STEPS):
            i = ALPHA * i + x[:, t] @ win + s @ wrec
            v = BETA * v + i
            fired = v >= THRESHOLD
            v[fired] = 0
            s = fired.astype(np.float32)
            out[:, t] = fired
        return out
    return run


def make_norse(config, net, w):
    import torch
    from norse.torch import LIFParameters, LIFRecurrent

    dt, k = 1e-3, 1 - BETA
    p = LIFParameters(tau_syn_inv=torch.tensor((1 - ALPHA) / dt), tau_mem_inv=torch.tensor(k / dt),
                      v_leak=torch.tensor(0.0), v_th=torch.tensor(THRESHOLD - HALF_LSB), v_reset=torch.tensor(0.0))
    win = torch.tensor(w[:N].T / k, dtype=torch.float32)
    wrec = torch.tensor(w[N:].T / k, dtype=torch.float32)
    cell = LIFRecurrent(N, N, p=p, dt=dt, autapses=True, input_weights=win, recurrent_weights=wrec)

    def run(ev):
        x = torch.tensor(ev, dtype=torch.float32).transpose(0, 1)     # [steps, batch, n]
        with torch.no_grad():
            z, _ = cell(x)
        return z.transpose(0, 1).numpy() > 0
    return run


def make_snntorch(config, net, w):
    import snntorch as snn
    import torch

    cell = snn.RSynaptic(alpha=ALPHA, beta=BETA, threshold=THRESHOLD - HALF_LSB, linear_features=N,
                         reset_mechanism="zero", reset_delay=False)
    cell.recurrent = torch.nn.Linear(N, N, bias=False)
    with torch.no_grad():
        cell.recurrent.weight.copy_(torch.tensor(w[N:].T, dtype=torch.float32))
    win = torch.tensor(w[:N], dtype=torch.float32)

    def run(ev):
        x = torch.tensor(ev, dtype=torch.float32) @ win            # [batch, steps, n]: the input currents
        b = x.shape[0]
        spk, syn, mem = (torch.zeros(b, N) for _ in range(3))
        out = torch.zeros(b, STEPS, N, dtype=torch.bool)
        with torch.no_grad():
            for t in range(STEPS):
                spk, syn, mem = cell(x[:, t], spk, syn, mem)
                out[:, t] = spk > 0
        return out.numpy()
    return run


def make_brian2(config, net, w):
    import brian2 as b2

    b2.prefs.codegen.target = "cython"
    b2.prefs.logging.console_log_level = "ERROR"
    cache = {}

    def build(batch):
        b2.start_scope()
        b2.defaultclock.dt = 1 * b2.ms
        g = b2.NeuronGroup(batch * N, "v : 1\nisyn : 1\nacc : 1", threshold="v >= 1", reset="v = 0",
                           method="exact")
        g.run_regularly(f"isyn = {ALPHA} * isyn + acc\nacc = 0\nv = {BETA} * v + isyn", when="start")
        source = b2.SpikeGeneratorGroup(batch * N, [], [] * b2.ms)
        pre, post = np.meshgrid(np.arange(N), np.arange(N), indexing="ij")
        offsets = (np.arange(batch) * N)[:, None]
        pre_all = (pre.ravel()[None] + offsets).ravel()
        post_all = (post.ravel()[None] + offsets).ravel()
        syn_in = b2.Synapses(source, g, "w : 1", on_pre="acc_post += w")
        syn_in.connect(i=pre_all, j=post_all)
        syn_in.w = np.tile(w[:N].ravel(), batch)
        syn_rec = b2.Synapses(g, g, "w : 1", on_pre="acc_post += w")
        syn_rec.connect(i=pre_all, j=post_all)
        syn_rec.w = np.tile(w[N:].ravel(), batch)
        mon = b2.SpikeMonitor(g)
        netw = b2.Network(g, source, syn_in, syn_rec, mon)
        netw.store()
        return netw, g, source, mon

    def run(ev):
        batch = ev.shape[0]
        if batch not in cache:
            cache.clear()
            cache[batch] = build(batch)
        netw, g, source, mon = cache[batch]
        netw.restore()
        b, t, a = np.nonzero(ev)                 # an input of step t reaches acc at the end of step t - 1
        keep = t > 0
        source.set_spikes(b[keep] * N + a[keep], (t[keep] - 1) * b2.ms)
        netw.run(STEPS * b2.ms, namespace={})
        out = np.zeros((batch, STEPS, N), bool)
        idx = np.asarray(mon.i)
        times = np.round(np.asarray(mon.t / b2.ms)).astype(int)
        out[idx // N, times, idx % N] = True
        return out
    return run


def make_reference(config, net, w):
    return make_spiketwin(config, net, w, engine="reference")


SIMULATORS = {"spiketwin": make_spiketwin, "spiketwin-reference": make_reference, "numpy": make_numpy,
              "norse": make_norse, "snntorch": make_snntorch,
              "brian2": make_brian2}
LABELS = {"spiketwin": "spiketwin simulate (bit-exact Q8.8)", "spiketwin-reference": "spiketwin NumPy reference",
          "numpy": "NumPy float32 loop (dense matmul)", "norse": "Norse LIFRecurrent", "snntorch": "snnTorch RSynaptic",
          "brian2": "Brian2 (Cython)"}


def _serve(name: str, conn) -> None:
    """A simulator in its own process: build it, then run or time it on request."""
    config, net, w, _ = workload()
    try:
        run = SIMULATORS[name](config, net, w)
    except ImportError as e:
        conn.send(e.name or str(e))
        return
    conn.send(None)
    events = None
    while True:
        cmd, arg = conn.recv()
        if cmd == "load":
            events = arg
            conn.send(run(events))
        elif cmd == "time":
            run(events)              # untimed: caches warm, and the previous simulator's idle threads stopped
            t0 = time.perf_counter()
            run(events)
            conn.send(time.perf_counter() - t0)
        else:
            return


class Worker:
    """One simulator's process. Each simulator runs alone, in its own process, so no two thread
    pools (numba's, torch's) share the cores; the parent times them one after the other."""

    def __init__(self, name: str):
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(name, child), daemon=True)
        self.process.start()
        self.missing = self.conn.recv()

    def load(self, events: np.ndarray) -> np.ndarray:
        self.conn.send(("load", events))
        return self.conn.recv()

    def time(self) -> float:
        self.conn.send(("time", None))
        return self.conn.recv()

    def stop(self) -> None:
        self.conn.send(("stop", None))
        self.process.join()


def versions() -> dict:
    import importlib.metadata as md

    out = {}
    for pkg in ("spiketwin", "numpy", "numba", "torch", "norse", "snntorch", "brian2"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    p.add_argument("--peers", nargs="*", default=["numpy", "norse", "snntorch", "brian2"],
                   choices=["numpy", "norse", "snntorch", "brian2"])
    p.add_argument("--reference", action="store_true", help="also time spiketwin's NumPy reference engine")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)

    names = ["spiketwin", *(["spiketwin-reference"] if args.reference else []), *args.peers]
    workers, notes = {}, []
    for name in names:
        worker = Worker(name)
        if worker.missing:
            notes.append(f"{name}: skipped, not installed ({worker.missing}); pip install -e '.[peers]'")
        else:
            workers[name] = worker
    for note in notes:
        print(note, file=sys.stderr)

    rng = np.random.default_rng(1)
    results = []
    for batch in args.batches:
        ev = inputs(rng, batch)
        spikes = {name: w.load(ev) for name, w in workers.items()}      # and warm up: compile, generate code
        times = {name: [] for name in workers}
        for _ in tqdm(range(args.repeats), desc=f"batch {batch}", leave=False):
            for name, w in workers.items():
                times[name].append(w.time())
        base = None
        for name in workers:
            s = spikes[name]
            syn_ops = (int(ev.sum()) + int(s[:, :-1].sum())) * N
            med = float(np.median(times[name]))
            rate = syn_ops / med
            base = rate if name == "spiketwin" else base
            agree = float((s == spikes["spiketwin"]).mean())
            results.append({"simulator": name, "batch": batch, "seconds": med, "synaptic_ops": syn_ops,
                            "synaptic_ops_per_s": rate, "firing_fraction": float(s.mean()),
                            "spike_agreement_with_spiketwin": agree, "spiketwin_speedup": base / rate,
                            "repeats": args.repeats})
    for w in workers.values():
        w.stop()
    out = {"workload": {"axons": N, "neurons": N, "steps": STEPS, "input_activity": ACTIVITY, "synapses": 2 * N * N},
           "versions": versions(), "notes": notes, "results": results}
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)

    print(f"\n{N} inputs -> {N} recurrent CuBa LIF, {STEPS} steps, {ACTIVITY:.0%} input activity; median of "
          f"{args.repeats}", file=sys.stderr)
    print(f"  {'simulator':38s} {'batch':>5s} {'syn ops/s':>10s} {'firing':>7s} {'agree':>6s} {'spiketwin x':>11s}",
          file=sys.stderr)
    for r in results:
        print(f"  {LABELS[r['simulator']]:38s} {r['batch']:5d} {r['synaptic_ops_per_s']:10.2e} "
              f"{r['firing_fraction']:7.1%} {r['spike_agreement_with_spiketwin']:6.1%} {r['spiketwin_speedup']:11.2f}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
