"""The neuron-model registry: each model declares its fields once, and everything derives from them."""

import dataclasses

import pytest

from spiketwin import models
from spiketwin.config import MODELS, CoreConfig, Region
from spiketwin.hw.models import pipeline_for


def test_registered_models_and_their_regions():
    assert MODELS == ("lif", "dpi")
    for name in MODELS:
        model = models.get_model(name)
        config = CoreConfig(4, 8, model=name)
        assert config.neuron_model is model
        assert list(config.param_fields) == list(model.params)
        for field_name, f in model.fields.items():
            assert Region[field_name.upper()] == f.region
        assert model.membrane in model.state and model.threshold in model.params


def test_unknown_model_refused():
    with pytest.raises(ValueError, match=r"model must be one of \('lif', 'dpi'\), not 'hh'"):
        models.get_model("hh")


@pytest.mark.parametrize("fields, message", [
    ({"threshold": models.Field(11)}, "Model 'toy': field 'threshold' takes region 11, which is 'k_mem''s"),
    ({"gain": models.Field(1)}, "Model 'toy': field 'gain' takes region 1, which is 'threshold''s"),
    ({"v": models.Field(30)}, "Model 'toy': field 'v' is region 8 elsewhere, not 30"),
    ({"gain": models.Field(31)}, "Model 'toy': field 'gain' takes region 31, which is 'control''s"),
])
def test_conflicting_regions_refused(fields, message):
    toy = dataclasses.replace(models.get_model("lif"), name="toy", params=fields, state={}, tables={})
    with pytest.raises(ValueError) as e:
        models.register(toy)
    assert str(e.value) == message
    assert "toy" not in models.model_names()


def test_bad_field_kind_refused():
    with pytest.raises(ValueError, match="Field kind must be 'word', 'flag' or 'count', not 'bits'"):
        models.Field(3, "bits")


@pytest.mark.parametrize("name", MODELS)
def test_pipeline_schedule_reads_only_the_models_parameters(name):
    config = CoreConfig(4, 8, model=name)
    pipe = pipeline_for(config)
    assert pipe.model == name and pipe.stages[0] == "UPDATE_READ"
    assert set(pipe.reads) <= set(pipe.stages)
    assert set(pipe.reads.values()) <= set(config.param_fields)
    assert set(pipe.held) <= set(config.param_fields)


def test_adding_a_model_names_every_field_a_model_declares():
    from dataclasses import fields
    from pathlib import Path

    from spiketwin.models.base import NeuronModel

    page = (Path(__file__).resolve().parents[1] / "docs" / "adding-a-model.md").read_text()
    missing = [f.name for f in fields(NeuronModel) if f"| `{f.name}` |" not in page]
    assert not missing, f"docs/adding-a-model.md does not name {missing}"
