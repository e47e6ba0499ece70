"""A board against its twin: every sample run on the board through a :class:`~spiketwin.link.client.Link`
and compared with the twin bit for bit (``spiketwin run``, the flow's last stage)."""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from ..evaluate import predict
from ..fixedpoint import from_word
from ..twin import simulate
from .client import Link
from .protocol import event_sequences

__all__ = ["run_on_board"]


def run_on_board(link: Link, net, events: np.ndarray, labels: np.ndarray | None = None, load: bool = True,
                 outputs=None, progress: bool = True, window: tuple | None = None) -> dict:
    """Run each sample of ``events`` [samples, steps, n_axons] on the board behind ``link`` and
    compare every step's spikes and the final membrane of the ``outputs`` (default: the classifier's)
    with the twin, bit for bit. The board is identified and checked first, and loaded with ``net``
    unless ``load`` is false (a bitstream with it baked in). With ``labels``, the classification
    accuracy too, counting the outputs' spikes in the steps of ``window`` (start, stop; all by
    default). Returns the report (``bit_exact``, ``mismatches`` naming sample, step and neuron,
    ``spike_counts``: each sample's spikes on the board and in the twin); a run stopped by Ctrl-C
    returns the samples done, with ``interrupted`` set."""
    config = net.config
    outputs = np.array(net.meta["outputs"] if outputs is None else outputs)
    ident = link.check(config)
    if load:
        link.load(net, progress=progress)
    link.errors(clear=True)
    membrane = config.neuron_model.membrane
    v_addrs = [config.address(config.state_fields[membrane], int(j)) for j in outputs]
    twin = simulate(config, net, events)
    n = len(events)
    correct, mismatches, done, counts = 0, [], 0, []
    try:
        for i in tqdm(range(n), desc="samples", disable=not progress):
            link.reset()
            spikes = link.run(event_sequences(events[i]), config.n_neurons)
            v_out = np.array([from_word(w, config.data_bits, True) for w in link.read(v_addrs)])
            diff = np.argwhere(spikes != twin.spikes[i])
            counts.append([int(spikes.sum()), int(twin.spikes[i].sum())])
            if diff.size or (v_out != getattr(twin.state, membrane)[i, outputs]).any():
                step, neuron = (int(diff[0][0]), int(diff[0][1])) if diff.size else (-1, -1)
                mismatches.append({"sample": i, "step": step, "neuron": neuron, "differences": int(len(diff))})
                tqdm.write(f"sample {i}: board and twin differ (first at step {step}, neuron {neuron}; "
                           f"{len(diff)} in all)")
            if labels is not None:
                counted = spikes[slice(*window) if window else slice(None)]
                correct += int(predict(counted[:, outputs].sum(0), v_out) == labels[i])
            done += 1
    except KeyboardInterrupt:                # the samples done so far are the report
        interrupted = True
    else:
        interrupted = False
    report = {"samples": done, "bit_exact": done - len(mismatches), "mismatches": mismatches,
              "error_flags": None if interrupted else link.errors(), "board": ident,
              "spike_counts": counts}
    if interrupted:
        report["interrupted"] = True
    if labels is not None:
        report["accuracy"] = correct / done if done else None
    return report
