import json
import re

import pytest

from spiketwin import CoreConfig, Network
from spiketwin.boards import BoardTooSmall, get_board
from spiketwin.boards.build import build_bitstream, parse_nextpnr_log, plan_core, platform_for
from spiketwin.boards.demo import DemoTop
from spiketwin.boards.link_top import LinkTop
from spiketwin.boards.pll import ecp5_pll, ice40_pll

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


@pytest.mark.board
def test_a_clock_the_core_cannot_meet_is_one_line_naming_the_fmax(tmp_path, capsys):
    from spiketwin.cli import main

    assert main(["build", "--board", "icebreaker", "--axons", "16", "--neurons", "32", "--lanes", "1",
                 "--clock-mhz", "150", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert re.search(r"icebreaker: post-route fmax [\d.]+ MHz misses the 150[.0-9]* MHz clock 'clk'; build with "
                     r"--clock-mhz auto", err), err


def test_link_top_checks_its_uart_rate():
    config = CoreConfig(4, 4)
    with pytest.raises(ValueError, match="cannot run a UART at 5000000 baud"):
        LinkTop(config, baud=5_000_000).clocks_per_bit(12e6)
    with pytest.raises(ValueError, match=r"^a 22.5 MHz clock comes no closer than 2.3% to 1000000 baud \(at most 2%\)"):
        LinkTop(config).clocks_per_bit(22.5e6)
    assert LinkTop(config).clocks_per_bit(36e6) == 36 and LinkTop(config).clocks_per_bit(90e6) == 90
    # build --clock-mhz auto's second try picks a PLL clock the UART can use
    from spiketwin.boards import get_board
    from spiketwin.boards.build import _fallback_pll

    pll = _fallback_pll(get_board("icebreaker"), 12.0, 22.5, 1_000_000)
    assert pll.f_out_mhz <= 22.5 and LinkTop(config, pll=pll).clocks_per_bit(pll.f_out_mhz * 1e6) >= 4
    with pytest.raises(ValueError, match="another core configuration"):
        LinkTop(config, Network.random(CoreConfig(4, 8), 0))


@pytest.mark.board
def test_icebreaker_link_bitstream_and_report(tmp_path, capsys):
    from spiketwin.cli import main

    assert main(["build", "--board", "icebreaker", "--axons", "16", "--neurons", "32", "--lanes", "1",
                 "--clock-mhz", "20", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "icebreaker" / "spiketwin-report.json").read_text())
    # The core runs from the PLL, and nextpnr checked the design against the PLL's output.
    assert report["pll"]["params"] == {"DIVR": 0, "DIVF": 52, "DIVQ": 5, "FILTER_RANGE": 1}
    assert report["clock_mhz"] == 19.875 and report["oscillator_mhz"] == 12.0
    assert report["core_clock"]["target_mhz"] == pytest.approx(19.875, abs=0.01)
    assert report["core_clock"]["pass"] and report["utilisation"]["ICESTORM_PLL"]["used"] == 1
    assert report["resources"]["dsp"]["used"] >= 1                # the multipliers are in DSP blocks
    assert 0 < report["resources"]["lut"]["used"] <= report["resources"]["lut"]["available"]
    assert report["fmax_mhz"] >= 19.875 and report["synaptic_ops_per_s"] == report["fmax_mhz"] * 1e6
    assert report["core"]["config_hash"] == CoreConfig(16, 32).config_hash()
    # Without a baked network the weights live in the UP5K's SPRAM (one bank for the one lane).
    assert report["core"]["weights_in_spram"] and report["resources"]["spram"]["used"] == 1


def test_model_too_big_for_the_up5k_refused(tmp_path, capsys):
    from spiketwin.cli import main

    path = tmp_path / "big.npz"
    Network.random(CoreConfig(64, 256, lanes=8), 0).save(path)
    assert main(["build", "--board", "icebreaker", "--model", str(path), "--out", str(tmp_path)]) == 2
    assert ("spiketwin: error: a LIF core of 64 x 256 on 8 lane(s) needs 370 block RAMs, more than the icebreaker's "
            "30; its SPRAM holds the weights only of cores with at most 4 lanes of 16384 weights and nothing baked in "
            "(this core has 8 lanes of 10240)\n") == capsys.readouterr().err


def test_default_cores_of_the_boards():
    """``build --board B`` with no other option: the largest core that fits B at its target clock."""
    config, baked, note = plan_core("icebreaker")
    assert (config.n_sources, config.n_neurons, config.lanes) == (256, 128, 4) and baked is None
    assert note == "weights loaded over the link (in SPRAM)" and get_board("icebreaker").target_mhz == 36
    config, _, note = plan_core("ulx3s-85f")
    assert config.lanes == 16 and config.n_neurons == 256 and note == "weights loaded over the link"
    assert get_board("ulx3s-85f").target_mhz >= 90
    assert plan_core("icebreaker", model="dpi")[0] == CoreConfig(64, 64, lanes=1, model="dpi")
    assert plan_core("ulx3s-85f", model="dpi")[0] == CoreConfig(64, 256, lanes=16, model="dpi")
    assert plan_core("icebreaker", axons=16, neurons=32, lanes=1)[0] == CoreConfig(16, 32)


def test_a_core_too_big_for_any_board_is_refused_before_synthesis():
    with pytest.raises(BoardTooSmall, match=r"^a LIF core of 1024 x 1024 on 16 lane\(s\) needs 2082 block RAMs, "
                                            r"more than the ulx3s-85f's 208$"):
        plan_core("ulx3s-85f", axons=1024, neurons=1024)
    with pytest.raises(BoardTooSmall, match="more than the ulx3s-12f's 32$"):
        plan_core("ulx3s-12f", axons=256, neurons=256)
    with pytest.raises(BoardTooSmall, match=r"^a DPI core of 128 x 128 on 4 lane\(s\) needs 78 block RAMs, more than "
                                            r"the icebreaker's 30$"):
        plan_core("icebreaker", axons=128, neurons=128, lanes=4, model="dpi")


def test_block_ram_estimate_matches_the_measured_builds():
    """bench/boards.py measured 26/30 on the UP5K core and 98 and 29 of the 85F's 208 on the ECP5 cores."""
    assert get_board("icebreaker").block_rams_needed(CoreConfig(128, 128, lanes=4), baked=False) == 26
    assert get_board("ulx3s-85f").block_rams_needed(CoreConfig(64, 256, lanes=16), baked=False) == 98
    assert get_board("ulx3s-85f").block_rams_needed(CoreConfig(64, 128, lanes=4), baked=False) == 29


def test_a_model_too_big_for_block_ram_goes_to_spram_on_the_icebreaker():
    net = Network.random(CoreConfig(128, 128, lanes=4), 0)
    config, baked, note = plan_core("icebreaker", net)
    assert config is net.config and baked is None and note == "weights in SPRAM, loaded over the link"
    small = Network.random(CoreConfig(16, 32, lanes=1), 0)
    assert plan_core("icebreaker", small)[1] is small
    with pytest.raises(ValueError, match="`lanes` cannot change a `network`'s core"):
        plan_core("icebreaker", small, lanes=2)


def test_spram_cores_have_no_baked_network():
    from spiketwin.hw.core import Core

    with pytest.raises(ValueError, match="SPRAM cannot be initialised: a core with its weights in SPRAM has no"):
        Core(CoreConfig(4, 4), Network.random(CoreConfig(4, 4), 0), weights_in_spram=True)


@pytest.mark.parametrize("f_in, target", [(12.0, 17.0), (12.0, 20.0), (12.0, 36.0), (12.0, 100.0), (12.0, 275.0)])
def test_ice40_pll_settings_respect_the_limits(f_in, target):
    s = ice40_pll(f_in, target)
    p = s.params
    pfd = f_in / (p["DIVR"] + 1)
    vco = pfd * (p["DIVF"] + 1)
    assert 10 <= pfd <= 133 and 533 <= vco <= 1066 and 1 <= p["DIVQ"] <= 6
    assert s.f_out_mhz == pytest.approx(vco / 2 ** p["DIVQ"])
    assert s.f_out_mhz <= target and s.f_out_mhz >= 0.97 * target      # never faster than asked
    assert 1 <= p["FILTER_RANGE"] <= 6


@pytest.mark.parametrize("target", [12.5, 48.0, 90.0, 133.0, 200.0])
def test_ecp5_pll_settings_respect_the_limits(target):
    s = ecp5_pll(25.0, target)
    p = s.params
    assert 3.125 <= 25.0 / p["CLKI_DIV"] <= 400
    assert s.f_out_mhz == pytest.approx(25.0 * p["CLKFB_DIV"] / p["CLKI_DIV"])
    assert 400 <= s.f_out_mhz * p["CLKOP_DIV"] <= 800
    assert 0.95 * target <= s.f_out_mhz <= target


def test_pll_outside_its_range_is_refused():
    with pytest.raises(ValueError, match="within 16-275 MHz, not 12 MHz"):
        ice40_pll(12.0, 12.0)
    with pytest.raises(ValueError, match="within 3.125-400 MHz"):
        ecp5_pll(25.0, 500.0)
    from spiketwin.cli import main

    assert main(["build", "--board", "icebreaker", "--clock-mhz", "fast"]) == 2
