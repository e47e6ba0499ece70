import numpy as np

from spiketwin import CoreConfig, Network, simulate
from spiketwin.plots import plot_run


def test_plot_run_writes_a_png_marking_differences(tmp_path):
    config = CoreConfig(8, 16, lanes=2)
    net = Network.random(config, 1)
    events = np.random.default_rng(1).poisson(0.3, (50, 8))
    events[events.sum(1) > 8] = 0
    ref = simulate(config, net, events, record=True)
    rtl = ref.spikes.copy()
    rtl[10, 3] = ~rtl[10, 3]
    path = plot_run(config, ref.spikes, tmp_path / "run.png", rtl_spikes=rtl, v=ref.v, threshold=net.threshold)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
