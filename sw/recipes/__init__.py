"""The flow's per-model classifiers (:class:`~spiketwin.recipes.base.Recipe`), by neuron model."""

from ..errors import InvalidValue
from .base import Recipe
from .dpi import DPI_RECIPE
from .lif import LIF_RECIPE

__all__ = ["Recipe", "RECIPES", "get_recipe"]

RECIPES = {r.model: r for r in (LIF_RECIPE, DPI_RECIPE)}


def get_recipe(model: str) -> Recipe:
    try:
        return RECIPES[model]
    except KeyError:
        raise InvalidValue(f"`model` must be one of {tuple(RECIPES)} for the flow, not {model!r}") from None
