"""The twin's fast path: each neuron model's whole time loop as one compiled kernel.

:func:`spiketwin.twin.simulate` runs here unless told ``engine="reference"``. Each model names
its kernel module (``NeuronModel.fast_path``); that module turns a network and a state into
arrays and calls a numba-compiled loop over batch x steps x neurons, written from the same
``docs/models.md`` step as the model's readable NumPy ``step``, which stays the specification: a
property test (``tests/test_fastpath.py``) holds the two equal bit for bit. ``docs/fast-path.md``
says why every shortcut taken here is exact.

The kernels' fixed-point primitives (:mod:`spiketwin.models.kernel`) are :mod:`spiketwin.fixedpoint`'s
for one scalar; their constants (:class:`Arith`) come from the same :class:`~spiketwin.fixedpoint.QFormat`.
This module imports no numba: the kernels are compiled when first run.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import NamedTuple

import numpy as np

from .errors import InvalidValue

__all__ = ["ENGINES", "available", "resolve_engine", "Arith", "arith", "STATE_DTYPE", "acc_dtype", "weight_dtype",
           "weight_planes", "sources", "as_state", "events_fit", "run"]

#: ``simulate``'s engines: ``"auto"`` is the fast path where numba imports, else the reference.
ENGINES = ("auto", "fast", "reference")


def available() -> bool:
    """Whether the compiled kernels can run (numba is installed; it is imported when first used)."""
    return importlib.util.find_spec("numba") is not None


def resolve_engine(engine: str) -> str:
    """``engine`` checked. ``"auto"`` is the environment's ``SPIKETWIN_ENGINE`` when set (so a
    whole command can be run on the reference), else stays ``"auto"`` (the fast path where a model
    has one) while numba imports and becomes ``"reference"`` otherwise; ``"fast"`` without numba
    is an error."""
    if engine == "auto" and os.environ.get("SPIKETWIN_ENGINE"):
        engine = os.environ["SPIKETWIN_ENGINE"]
        if engine not in ENGINES:
            raise InvalidValue(f"SPIKETWIN_ENGINE must be one of {ENGINES}, not {engine!r}")
    if engine not in ENGINES:
        raise InvalidValue(f"engine must be one of {ENGINES}, not {engine!r}")
    if engine == "auto" and not available():
        return "reference"
    if engine == "fast" and not available():
        raise InvalidValue("the fast path needs numba (pip install numba)")
    return engine


class Arith(NamedTuple):
    """A format's constants as the kernels take them: the shift, the rounding biases of a
    positive and a negative product (``QFormat.round_bias``), and the saturation bounds."""

    frac: int
    pos: int
    neg: int
    lo: int
    hi: int


def arith(fmt) -> Arith:
    return Arith(fmt.frac_bits, fmt.round_bias(False), fmt.round_bias(True), fmt.min_raw, fmt.max_raw)


#: The kernels' type of every state field and parameter: a field is at most a word of the format,
#: and a format is at most 31 bits wide (:class:`~spiketwin.fixedpoint.QFormat`). Products and
#: sums are formed in 64 bits (:func:`mul`), where a product of two 31-bit words fits.
STATE_DTYPE = np.int32


def acc_dtype(config):
    """The narrowest integer type that holds every partial sum of an accumulator exactly: the sum
    of ``max_events`` weights of ``fmt.width`` bits needs ``config.acc_width`` bits."""
    return np.int32 if config.acc_width <= 32 else np.int64


def weight_dtype(config):
    """The narrowest integer type that holds every weight plane's entries (at most a word)."""
    return np.int16 if config.fmt.width <= 16 else np.int32


def weight_planes(config, network) -> np.ndarray:
    """The model's weight planes stacked [planes, n_sources, n_neurons] in :func:`weight_dtype`."""
    planes = config.neuron_model.weight_planes(network)
    return np.ascontiguousarray(np.stack(planes), dtype=weight_dtype(config))


def sources(config, batch: int) -> np.ndarray:
    """Scratch for :func:`gather_events`: each batch element's list of sources with one event."""
    return np.empty((batch, config.n_sources), np.int32)


def as_state(values) -> np.ndarray:
    """A state field or parameter array in the kernels' type (a copy the kernel may write)."""
    return np.array(values, dtype=STATE_DTYPE)


def events_fit(events: np.ndarray, max_per_step: int) -> bool:
    """Whether every count of ``events`` [batch, steps, n_axons] is non-negative and every step
    sums to at most ``max_per_step``, in one compiled pass (the NumPy check names what does not fit)."""
    from .models.kernel import events_fit as compiled  # heavy: numba, imported when used

    return bool(compiled(np.ascontiguousarray(events), max_per_step))


def run(config, network, events: np.ndarray, steps: int, state, record: bool):
    """The model's kernel on checked events [batch, given, n_axons] and a batched start state:
    (spikes [batch, steps, n_neurons], end state, traces or None), as ``simulate`` returns them."""
    module = importlib.import_module(config.neuron_model.fast_path)
    return module.run(config, network, events, steps, state, record)
