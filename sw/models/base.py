"""What a neuron model declares (:class:`NeuronModel`, its :class:`Field`s) and the registry of models.

The model specification stops here: a model's records, step, coverage and fast path, never the
flow's training recipes (:mod:`spiketwin.recipes`), plots or experiments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import InvalidValue

__all__ = ["Field", "NeuronModel", "register", "get_model", "model_names", "all_fields", "SHARED_REGIONS"]

#: Regions every core maps, whatever its model: the weights and the control word.
SHARED_REGIONS = {"weight": 0, "control": 31}


@dataclass(frozen=True)
class Field:
    """One configuration-port field: its region code and what it holds.

    ``kind`` is ``"word"`` (a signed word of the core's format), ``"flag"`` (one unsigned bit) or
    ``"count"`` (whole steps, ``refractory_bits`` unsigned bits).
    """

    region: int
    kind: str = "word"

    def __post_init__(self):
        if self.kind not in ("word", "flag", "count"):
            raise InvalidValue(f"Field kind must be 'word', 'flag' or 'count', not {self.kind!r}")


@dataclass(frozen=True)
class NeuronModel:
    """What a neuron model is, to the twin, the host, co-simulation and the gateware.

    Attributes
    ----------
    name : str
        The name ``CoreConfig(model=...)`` takes.
    summary : str
        One line for help texts.
    params, state, tables : dict[str, Field]
        Per-neuron parameters (in the order the update reads them), per-neuron state, per-core
        lookup tables; the names are the network's and state record's attribute names.
    table_size : int
        Entries of each table (0 without tables).
    accumulators : tuple[str, ...]
        The exact per-neuron accumulators, one per synapse type (their memories' names).
    network, state_record : type
        The network file's record (a :class:`~spiketwin.network.NetworkRecord`) and the state's.
    step : callable
        ``step(config, network, state, acc) -> (fired, state)``: one time step after accumulation.
    weight_planes : callable
        ``weight_planes(network) -> list`` of [n_sources, n_neurons] arrays, one per accumulator:
        what an event adds to each.
    membrane, threshold : str
        The state field plotted as the membrane, and the parameter it fires against.
    membrane_label : str
        The membrane's axis label.
    coverage : callable
        ``coverage(config, network, spikes, traces) -> dict``: how hard a run pushed the arithmetic.
    measure : callable
        ``measure(probe) -> dict``: every per-neuron value of a board's neurons from their behaviour,
        through a :class:`~spiketwin.characterize.Probe` (``spiketwin characterize``).
    profile_rows : callable
        ``profile_rows(nominal, measured) -> list``: the measurements as rows for
        :meth:`MismatchProfile.fit <spiketwin.profile.MismatchProfile.fit>`.
    check_config : callable
        ``check_config(config)`` raises ``ValueError`` for a configuration the model cannot run on.
    memory_map_notes : callable
        ``memory_map_notes(config) -> dict``: what the Verilog sidecar's memory map adds for the model.
    fast_path : str or None
        The module of the model's compiled time loop (:mod:`spiketwin.fastpath`), imported when
        first used; None runs the model on its ``step`` only.
    """

    name: str
    summary: str
    params: dict
    state: dict
    tables: dict
    table_size: int
    accumulators: tuple
    network: type
    state_record: type
    step: Callable
    weight_planes: Callable
    membrane: str
    threshold: str
    membrane_label: str
    coverage: Callable
    measure: Callable
    profile_rows: Callable
    check_config: Callable = field(default=lambda config: None)
    memory_map_notes: Callable = field(default=lambda config: {})
    fast_path: str | None = None

    @property
    def fields(self) -> dict:
        """Every field of the model, parameters, state and tables."""
        return {**self.params, **self.state, **self.tables}


_MODELS: dict[str, NeuronModel] = {}


def register(model: NeuronModel) -> NeuronModel:
    """Add ``model``; a region code means one field name across all models."""
    if model.name in _MODELS:
        raise InvalidValue(f"A neuron model named {model.name!r} is registered already")
    taken = {f.region: name for m in _MODELS.values() for name, f in m.fields.items()}
    taken.update({code: name for name, code in SHARED_REGIONS.items()})
    names = {name: f.region for m in _MODELS.values() for name, f in m.fields.items()}
    for name, f in model.fields.items():
        if taken.get(f.region, name) != name:
            raise InvalidValue(f"Model {model.name!r}: field {name!r} takes region {f.region}, which is "
                             f"{taken[f.region]!r}'s")
        if names.get(name, f.region) != f.region:
            raise InvalidValue(f"Model {model.name!r}: field {name!r} is region {names[name]} elsewhere, "
                             f"not {f.region}")
    _MODELS[model.name] = model
    return model


def get_model(name: str) -> NeuronModel:
    try:
        return _MODELS[name]
    except KeyError:
        raise InvalidValue(f"model must be one of {model_names()}, not {name!r}") from None


def model_names() -> tuple[str, ...]:
    return tuple(_MODELS)


def all_fields() -> dict[str, int]:
    """Every registered field's name and region code, shared regions included, by code."""
    codes = {name: f.region for m in _MODELS.values() for name, f in m.fields.items()}
    codes.update(SHARED_REGIONS)
    return dict(sorted(codes.items(), key=lambda kv: kv[1]))

