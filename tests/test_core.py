import pytest

from spiketwin import CoreConfig
from spiketwin.hw.core import ConfigSignature, Core


def test_core_rejects_non_config():
    with pytest.raises(TypeError, match="config must be a CoreConfig, not 5"):
        Core(5)


def test_signature_widths_come_from_the_config():
    config = CoreConfig(20, 48, lanes=4)
    core = Core(config)
    assert core.cfg.addr.shape().width == config.addr_bits
    assert core.cfg.wdata.shape().width == config.data_bits
    assert core.events.payload.shape().size == sum(config.event_fields.values())
    assert core.spikes.payload.shape().size == sum(config.spike_fields.values())
    assert len(core.errors) == 3


def test_config_signature_validates():
    with pytest.raises(TypeError, match="addr_bits must be a positive integer, not 0"):
        ConfigSignature(addr_bits=0, data_bits=16)
