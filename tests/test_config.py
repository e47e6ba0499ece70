import pytest

from spiketwin.config import MODELS, CoreConfig, Region


@pytest.mark.parametrize("kwargs, message", [
    ({"n_axons": 8, "n_neurons": 12, "lanes": 3}, "Lane count must be a power of two, not 3"),
    ({"n_axons": 8, "n_neurons": 10, "lanes": 4}, "Neuron count 10 is not a multiple of the lane count 4"),
    ({"n_axons": 0, "n_neurons": 8}, "n_axons must be a positive integer, not 0"),
    ({"n_axons": 8, "n_neurons": 8.0}, "n_neurons must be a positive integer, not 8.0"),
    ({"n_axons": 60000, "n_neurons": 8192}, "At most 65536 sources (axons + neurons) fit, not 68192"),
    ({"n_axons": 8, "n_neurons": 8, "max_axon_events": 0}, "max_axon_events must be a positive integer"),
    ({"n_axons": 8, "n_neurons": 8, "model": "hh"}, "model must be one of ('lif', 'dpi'), not 'hh'"),
    ({"n_axons": 8, "n_neurons": 8, "refractory_bits": 17}, "refractory_bits must be at most the data width 16"),
])
def test_ungeneratable_configurations_refused(kwargs, message):
    with pytest.raises(ValueError) as e:
        CoreConfig(**kwargs)
    assert message in str(e.value)


def test_derived_sizes():
    c = CoreConfig(64, 192, lanes=4)
    assert (c.n_sources, c.groups, c.max_axon_events, c.max_events) == (256, 48, 64, 256)
    assert c.acc_width == 16 + 8 + 1
    assert c.index_bits == 16 and c.addr_bits == 21


@pytest.mark.parametrize("model", MODELS)
def test_memory_map_regions_do_not_overlap_and_addresses_validate(model):
    c = CoreConfig(10, 12, lanes=4, model=model)
    spans = []
    mapped = {Region.WEIGHT, Region.CONTROL, *c.param_fields.values(), *c.state_fields.values(),
              *c.table_fields.values()}
    for r in Region:
        base = c.address(r)
        if r not in mapped:                       # the other model's regions
            assert c.region_size(r) == 0 and not c.address_valid(base)
            continue
        spans.append((base, base + c.region_size(r)))
        assert c.address_valid(base) and c.address_valid(base + c.region_size(r) - 1)
        if r != Region.WEIGHT:
            assert not c.address_valid(base + c.region_size(r))
    spans.sort()
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False))
    assert not c.address_valid(c.address(Region.CONTROL) - (1 << c.index_bits))  # region 30 unmapped
    assert set(c.memory_map()["regions"]) == {r.name.lower() for r in mapped}


def test_config_roundtrip_and_hash():
    c = CoreConfig(16, 32, lanes=2)
    assert CoreConfig.from_dict(c.to_dict()) == c
    assert c.config_hash() == CoreConfig.from_dict(c.to_dict()).config_hash()
    assert c.config_hash() != CoreConfig(16, 32, lanes=4).config_hash()
