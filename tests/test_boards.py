import json

import pytest

from spiketwin import CoreConfig, Network
from spiketwin.boards.build import build_bitstream, parse_nextpnr_log, platform_for
from spiketwin.boards.demo import DemoTop
from spiketwin.boards.link_top import LinkTop

LOG = """\
Info: Device utilisation:
Info: 	         ICESTORM_LC:  1835/ 5280    34%
Info: 	        ICESTORM_RAM:    12/   30    40%
Info: Max frequency for clock 'cd_sync.clk': 15.69 MHz (PASS at 12.00 MHz)
Info: Max frequency for clock 'cd_sync.clk': 14.84 MHz (PASS at 12.00 MHz)
"""


def test_nextpnr_log_parsing_takes_the_post_route_figure():
    r = parse_nextpnr_log(LOG)
    assert r["utilisation"]["ICESTORM_LC"] == {"used": 1835, "available": 5280}
    assert r["fmax"]["cd_sync.clk"] == {"mhz": 14.84, "target_mhz": 12.0, "pass": True}


def test_unknown_board_refused():
    with pytest.raises(ValueError, match="Board must be one of \\('icebreaker', 'ulx3s-12f'.*\\), not 'arty'"):
        platform_for("arty")


def test_demo_parameters_validated():
    net = Network.random(CoreConfig(8, 8), 0)
    with pytest.raises(ValueError, match=r"events_per_step must be in \[1, 8\], not 9"):
        DemoTop(net, events_per_step=9)


@pytest.mark.board
def test_icebreaker_demo_bitstream(tmp_path):
    net = Network.random(CoreConfig(16, 32, lanes=1), 0)
    report = build_bitstream(DemoTop(net), "icebreaker", tmp_path)
    assert report["bitstream_bytes"] > 100_000          # an UP5K image is about 104 kB
    lc = report["utilisation"]["ICESTORM_LC"]
    assert 0 < lc["used"] <= lc["available"]
    clock = report["fmax"]["cd_sync.clk"]
    assert clock["pass"] and clock["mhz"] >= 12.0


def test_link_top_checks_its_uart_rate():
    config = CoreConfig(4, 4)
    with pytest.raises(ValueError, match="cannot run a UART at 5000000 baud"):
        LinkTop(config, baud=5_000_000).clocks_per_bit(12e6)
    with pytest.raises(ValueError, match="another core configuration"):
        LinkTop(config, Network.random(CoreConfig(4, 8), 0))


@pytest.mark.board
def test_icebreaker_link_bitstream_and_report(tmp_path, capsys):
    from spiketwin.cli import main

    assert main(["build", "--board", "icebreaker", "--axons", "16", "--neurons", "32", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "icebreaker" / "spiketwin-report.json").read_text())
    assert report["resources"]["dsp"]["used"] >= 1                # the multipliers are in DSP blocks
    assert 0 < report["resources"]["lut"]["used"] <= report["resources"]["lut"]["available"]
    assert report["fmax_mhz"] >= 12.0 and report["synaptic_ops_per_s"] == report["fmax_mhz"] * 1e6
    assert report["core"]["config_hash"] == CoreConfig(16, 32).config_hash()
