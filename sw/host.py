"""Host-side view of the configuration port: the writes that load a network and the reads of its state.

Every link to a core (co-simulation now, the UART later) sends these same address/value pairs.
"""

from __future__ import annotations

import numpy as np

from .config import Control, CoreConfig, Region
from .fixedpoint import from_word, to_word
from .twin import DPINetwork, DPIState, Network, State

__all__ = ["to_word", "from_word", "network_writes", "state_read_addresses", "decode_state",
           "control_write", "state_writes", "readback_sample"]


def network_writes(net: Network | DPINetwork, skip_zero_weights: bool = False) -> list[tuple[int, int]]:
    """(address, data word) pairs that load every weight, parameter and table entry of ``net``."""
    c = net.config
    writes = []
    w = net.weight_words()
    idx = np.flatnonzero(w) if skip_zero_weights else np.arange(w.size)
    base = c.address(Region.WEIGHT)
    writes += [(base + int(i), int(w[i])) for i in idx]
    for name, region in {**c.param_fields, **c.table_fields}.items():
        values = getattr(net, name)
        base = c.address(region)
        writes += [(base + j, to_word(v, c.data_bits)) for j, v in enumerate(values)]
    return writes


def state_writes(config: CoreConfig, state: State | DPIState) -> list[tuple[int, int]]:
    """(address, data word) pairs that set every state field but the pending spikes (unbatched ``state``)."""
    writes = []
    for name, region in config.state_fields.items():
        base = config.address(region)
        writes += [(base + j, to_word(x, config.data_bits)) for j, x in enumerate(getattr(state, name))]
    return writes


def readback_sample(net: Network, max_weights: int = 256, seed: int = 0) -> list[tuple[int, int]]:
    """(address, expected word) for every parameter and a sample of the weights of ``net``,
    non-zero ones included, to check what a core holds."""
    writes = network_writes(net)
    n_w = net.weights.size
    rng = np.random.default_rng(seed)
    nonzero = np.flatnonzero(net.weights.reshape(-1))
    pick = np.union1d(rng.choice(n_w, size=min(n_w, max_weights // 2), replace=False),
                      rng.choice(nonzero, size=min(nonzero.size, max_weights // 2), replace=False))
    return [writes[int(i)] for i in pick] + writes[n_w:]


def control_write(config: CoreConfig, bits: Control) -> tuple[int, int]:
    return config.address(Region.CONTROL), int(bits)


def state_read_addresses(config: CoreConfig) -> list[int]:
    """Addresses of every state field of every neuron, then the error flags."""
    addrs = []
    for region in config.state_fields.values():
        base = config.address(region)
        addrs += [base + j for j in range(config.n_neurons)]
    return addrs + [config.address(Region.CONTROL)]


def decode_state(config: CoreConfig, words: list[int]) -> tuple[dict, int]:
    """Inverse of :func:`state_read_addresses`: ({field: array}, error flags)."""
    n = config.n_neurons
    out = {}
    for k, (name, region) in enumerate(config.state_fields.items()):
        bits, signed = config.field_bits(region), config.field_signed(region)
        out[name] = np.array([from_word(x, bits, signed) for x in words[k * n:(k + 1) * n]], np.int64)
    return out, int(words[-1])


