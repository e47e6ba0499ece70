"""What an import of a NIR graph did: the mapping's limits and conventions, its error, and the
report per layer (:class:`MappingReport`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import InvalidValue
from ..outputs import write_text

__all__ = ["CONVENTIONS", "RESETS", "NEURONS", "SYNAPSES", "PASSIVE", "UNROLLED", "HEADROOM", "NIRMappingError",
           "LayerReport", "MappingReport"]


CONVENTIONS = ("euler", "exact")


RESETS = ("graph", "zero", "subtract")


NEURONS = ("CubaLIF", "LIF", "IF", "CubaLI", "LI")


SYNAPSES = ("Affine", "Linear", "Scale")


PASSIVE = ("Flatten",)


UNROLLED = ("Conv1d", "Conv2d", "SumPool2d", "AvgPool2d")  # unrolled into the crossbar


HEADROOM = 4.0        # weights, threshold and bias of a layer stay below max_value / HEADROOM


class NIRMappingError(InvalidValue):
    """A graph, or a part of it, the core cannot run; the message names the node and the limit."""
@dataclass
class LayerReport:
    """What the import did to one neuron layer."""

    node: str
    kind: str
    neurons: int
    first_neuron: int
    time_shift: int
    scale: float
    alpha: float
    alpha_raw: int
    beta: float
    beta_raw: int
    threshold: float | None      # None: a readout, which never fires
    threshold_raw: int
    weight_max_error_lsb: float
    weight_rms_error_lsb: float
    weight_max_relative_error: float
    weight_rms_relative_error: float        # the RMS error over the RMS of the weights
    inputs: list = field(default_factory=list)
    input_delays: list = field(default_factory=list)   # steps each input waits on the core (0: none)
    approximations: list = field(default_factory=list)


@dataclass
class MappingReport:
    """What :func:`import_graph` made of a graph: the core, each layer, the axons, what it approximated."""

    dt: float
    convention: str
    reset: str
    config: dict
    layers: list
    axons: list
    outputs: dict
    approximations: list = field(default_factory=list)
    relays: list = field(default_factory=list)
    calibration: dict | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    def save(self, path) -> Path:
        return write_text(path, self.to_json())

    def describe(self) -> list[str]:
        lines = [f"NIR graph on a {self.config['n_axons']} x {self.config['n_neurons']} LIF core, dt = {self.dt:g} s, "
                 f"{self.convention} convention, reset {self.reset}"]
        for L in self.layers:
            lines.append(f"  {L['node']} ({L['kind']}, {L['neurons']} neurons from {L['first_neuron']}, shift "
                         f"{L['time_shift']} step(s)): scale {L['scale']:g}, alpha {L['alpha']:.4f} (raw "
                         f"{L['alpha_raw']}), beta {L['beta']:.4f} (raw {L['beta_raw']}), threshold raw "
                         f"{L['threshold_raw']}, weight error max {L['weight_max_error_lsb']:.2f} LSB, rms "
                         f"{L['weight_rms_error_lsb']:.2f} LSB ({L['weight_rms_relative_error']:.2%} of the weights' "
                         f"rms)")
            lines += [f"    approximated: {a}" for a in L["approximations"]]
            cal = (self.calibration or {}).get("layers", {}).get(L["node"])
            if cal:
                lines.append("    calibration: " + ", ".join(
                    ([f"spike agreement {cal['spike_agreement']:.2%}"] if "spike_agreement" in cal else [])
                    + [f"{cal['saturated_state_entries']} saturated state entries"]
                    + (["scales tried " + "; ".join(
                        f"{t['scale']:g}: " + (f"{t['spike_agreement']:.2%}, " if "spike_agreement" in t else "")
                        + f"{t['saturated_state_entries']} saturated" for t in cal["tried"])] if "tried" in cal
                       else [])))
        lines += [f"  {R['neurons']} relay neuron(s) from {R['first_neuron']}: {R['of']}'s spikes {R['delay']} step(s) "
                  f"later, for a connection that skips layers (exact)" for R in self.relays]
        lines += [f"  approximated: {a}" for a in self.approximations]
        if self.calibration and "float_accuracy" in self.calibration:
            c = self.calibration
            lines.append(f"  on {c['samples']} calibration samples: float accuracy {c['float_accuracy']:.4f}, twin "
                         f"{c['twin_accuracy']:.4f}")
        return lines
