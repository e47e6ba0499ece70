"""The DPI circuits' parameters: physical constants (:class:`DPIConstants`) and each neuron's biases
(:class:`DPIParams`), currents in amperes, times in seconds, capacitances in farads."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np

from ..errors import InvalidValue

__all__ = ["DPIConstants", "DPIParams", "SYNAPSES", "CURRENTS", "time_constant"]


SYNAPSES = ("ampa", "nmda", "gaba_a", "gaba_b")


@dataclass(frozen=True)
class DPIConstants:
    """Physical constants of the process, shared by every neuron.

    The paper names them without values; these are typical of DYNAP-SE-class 180 nm chips:
    thermal voltage ``U_T`` (V) at room temperature, subthreshold slope factor ``kappa``, dark
    current ``I0`` (A), membrane, synapse and adaptation capacitances (F), and the width of the
    pulse a spike delivers to a DPI filter ``t_pulse`` (s). ``dark_floor``: the synaptic and
    adaptation currents rest at ``I0`` (True, as in the circuit) or at 0 (False).
    """

    U_T: float = 25e-3
    kappa: float = 0.7
    I0: float = 5e-13
    C_mem: float = 3e-12
    C_syn: float = 25e-12
    C_ahp: float = 40e-12
    t_pulse: float = 10e-6
    dark_floor: bool = True

    def __post_init__(self):
        if not isinstance(self.dark_floor, bool):
            raise InvalidValue(f"DPIConstants.dark_floor is True or False, not {self.dark_floor!r}")
        for f in fields(self):
            if f.name == "dark_floor":
                continue
            v = getattr(self, f.name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise InvalidValue(f"DPIConstants.{f.name} must be a positive number, not {v!r}")
        if self.kappa >= 1:
            raise InvalidValue(f"DPIConstants.kappa is a slope factor below 1, not {self.kappa!r}")

    @property
    def floor(self) -> float:
        """Where the synaptic and adaptation currents rest (A): ``I0``, or 0 without the floor."""
        return self.I0 if self.dark_floor else 0.0


def time_constant(C, I_tau, constants: DPIConstants = DPIConstants()):
    """``tau = C U_T / (kappa I_tau)`` of a DPI stage, in seconds."""
    return C * constants.U_T / (constants.kappa * np.asarray(I_tau))


@dataclass(frozen=True)
class DPIParams:
    """The bias currents (A) and times (s) of a population of neurons and their synapses.

    Every field is a scalar or an array over neurons (broadcast together). Neuron: leak ``I_tau``,
    gain ``I_g``, DC input ``I_dc``, spike threshold ``I_thr``, refractory period ``t_ref``,
    positive-feedback threshold ``I_pfb_th`` and slope ``alpha`` (1/A). Adaptation: ``I_ahp_tau``,
    ``I_ahp_g``, ``I_ahp_w`` (0 switches it off). Per synapse type s in :data:`SYNAPSES`:
    ``I_tau_s``, ``I_g_s``, ``I_w_s``; the NMDA gate opens when ``I_mem > I_nmda_thr``.
    """

    I_tau: object = 4.1e-12
    I_g: object = 500e-12
    I_dc: object = 0.0
    I_thr: object = 2e-9
    t_ref: object = 2e-3
    I_pfb_th: object = 1e-9
    alpha: object = 1e10
    I_ahp_tau: object = 2e-12
    I_ahp_g: object = 2e-12
    I_ahp_w: object = 0.0
    I_tau_ampa: object = 100e-12
    I_g_ampa: object = 100e-12
    I_w_ampa: object = 10e-9
    I_tau_nmda: object = 20e-12
    I_g_nmda: object = 20e-12
    I_w_nmda: object = 10e-9
    I_nmda_thr: object = 500e-12
    I_tau_gaba_a: object = 100e-12
    I_g_gaba_a: object = 100e-12
    I_w_gaba_a: object = 10e-9
    I_tau_gaba_b: object = 20e-12
    I_g_gaba_b: object = 20e-12
    I_w_gaba_b: object = 10e-9

    def __post_init__(self):
        for f in fields(self):
            v = np.asarray(getattr(self, f.name), dtype=np.float64)
            if not np.all(np.isfinite(v)):
                raise InvalidValue(f"DPIParams.{f.name} must be finite")
            bad = np.flatnonzero(v < 0) if f.name in _MAY_BE_ZERO else np.flatnonzero(v <= 0)
            if bad.size:
                what = "negative" if f.name in _MAY_BE_ZERO else "not positive"
                raise InvalidValue(f"DPIParams.{f.name} is {what} at index {int(bad[0])}: {v.flat[bad[0]]!r}")
        try:
            np.broadcast_shapes(*(np.shape(getattr(self, f.name)) for f in fields(self)))
        except ValueError as e:
            raise InvalidValue(f"DPIParams fields do not broadcast to one neuron shape: {e}") from None

    @property
    def shape(self) -> tuple:
        return np.broadcast_shapes(*(np.shape(getattr(self, f.name)) for f in fields(self)))

    def broadcast(self, n: int) -> DPIParams:
        """Every field as an array over ``n`` neurons."""
        return replace(self, **{f.name: np.broadcast_to(np.asarray(getattr(self, f.name), np.float64), (n,)).copy()
                                for f in fields(self)})

    def tau(self, constants: DPIConstants = DPIConstants()) -> dict:
        """Every time constant (s): membrane, adaptation and each synapse."""
        out = {"mem": time_constant(constants.C_mem, self.I_tau, constants),
               "ahp": time_constant(constants.C_ahp, self.I_ahp_tau, constants)}
        for s in SYNAPSES:
            out[s] = time_constant(constants.C_syn, getattr(self, f"I_tau_{s}"), constants)
        return out


_MAY_BE_ZERO = {"I_dc", "t_ref", "I_ahp_w", "I_w_ampa", "I_w_nmda", "I_w_gaba_a", "I_w_gaba_b", "alpha"}


CURRENTS = tuple(f.name for f in fields(DPIParams) if f.name.startswith("I_"))
