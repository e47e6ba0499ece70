"""The gateware's formal proofs (spiketwin.formal) pass, and fail with a counterexample on a mutated RTL."""

import pytest
from test_mutations import round_positive_products_as_negative, saturate_one_below_max

from spiketwin import formal
from spiketwin.cli import main
from spiketwin.hw import arith
from spiketwin.hw.link import RequestChecker


@pytest.mark.parametrize("job", [pytest.param(j, marks=pytest.mark.deep) if j.deep else j for j in formal.jobs()],
                         ids=lambda j: j.name)
def test_every_proof_passes_and_its_covers_are_reached(tmp_path, job):
    result = formal.run(job, tmp_path)
    assert result.status == "PASS", result.line()
    assert not result.unreached


@pytest.mark.parametrize("name, mutant, violated", [
    ("round_product", round_positive_products_as_negative, "product rounded (trunc), saturated"),
    ("saturate", saturate_one_below_max, "saturate"),
])
def test_a_mutated_rounding_or_saturation_fails_its_proof_with_a_counterexample(tmp_path, monkeypatch, name,
                                                                               mutant, violated):
    monkeypatch.setattr(arith, name, mutant)
    job = next(j for j in formal.jobs("arith") if j.name == "arith-q8.8-trunc")
    result = formal.run(job, tmp_path)
    assert result.status == "FAIL" and result.failed == violated
    assert result.trace.is_file() and result.trace.suffix == ".vcd"
    values = formal.read_vcd(result.trace, result.signed)
    assert set(result.inputs) == {"product", "wide", "acc", "word"} and values["product"][0] == 32
    assert all(result.inputs[name] == values[name][1][-1][1] for name in result.inputs)
    if name == "saturate":                      # the counterexample saturates high
        assert result.inputs["wide"] >= 32767 or result.inputs["acc"] + result.inputs["word"] >= 32767


def fire_only_above_the_threshold(self, m, ports, refractory, threshold, v_reset, reset_mode, v_int, spike,
                                   v_after, v_keep):
    """LIFUpdate._decide with ``>`` for ``>=``: a neuron exactly at its threshold does not fire."""
    from amaranth.hdl import Mux

    m.d.sync += [spike.eq(~refractory & (v_int > threshold)),
                 v_after.eq(Mux(reset_mode, v_reset, arith.saturate(v_int - threshold, self.config.fmt))),
                 v_keep.eq(Mux(refractory, ports["v"][0].data, v_int))]


def test_an_update_that_misses_the_threshold_fails_its_proof_with_a_counterexample(tmp_path, monkeypatch):
    from spiketwin.hw.models.lif import LIFUpdate

    monkeypatch.setattr(LIFUpdate, "_decide", fire_only_above_the_threshold)
    job = next(j for j in formal.jobs("update-lif") if j.name == "update-lif-icebreaker")
    result = formal.run(job, tmp_path)
    assert result.status == "FAIL" and result.failed.startswith("lane ")
    assert "the write-back stores the step's" in result.failed or "fired bit" in result.failed
    assert result.trace.is_file() and result.trace.suffix == ".vcd"


def test_a_dpi_update_that_lets_a_current_below_its_floor_fails_its_proof(tmp_path, monkeypatch):
    from amaranth.hdl import Mux

    from spiketwin.hw.models import dpi

    monkeypatch.setattr(dpi, "_at_least", lambda value, floor: Mux(value < floor, value, floor))   # min, not max
    job = next(j for j in formal.jobs("update-dpi") if j.name == "update-dpi-icebreaker")
    result = formal.run(job, tmp_path)
    assert result.status == "FAIL", result.line()
    assert result.failed == "lane 0: in DPI_INPUT, ampa is the step's"
    assert result.trace.is_file() and result.trace.suffix == ".vcd"
    assert {"param5_0", "acc_ampa_0", "step_product0_0"} <= set(result.inputs)      # the constants are shown


def fill_of_any_length(m, req, finish, nrec):
    """RequestChecker._check_payload accepting a FILL longer than its layout (trailing bytes)."""
    from spiketwin.link.protocol import FILL_BYTES

    with m.If(req.op.fill):
        finish(req.plen >= FILL_BYTES)
    with m.Else():
        CHECK_PAYLOAD(m, req, finish, nrec)


CHECK_PAYLOAD = RequestChecker._check_payload


@pytest.mark.parametrize("name, mutant", [
    ("_length_disagrees", staticmethod(lambda short, field, plen: short)),        # the length field ignored
    ("_check_payload", staticmethod(fill_of_any_length)),
])
def test_a_checker_that_misses_a_bad_frame_fails_its_proof(tmp_path, monkeypatch, name, mutant):
    monkeypatch.setattr(RequestChecker, name, mutant)
    result = formal.run(formal.jobs("request-checker")[0], tmp_path)
    assert result.status == "FAIL", result.line()
    assert result.failed == "accepted exactly when the protocol executes the frame"
    assert result.trace.is_file() and result.trace.suffix == ".vcd"


def test_an_executor_that_sends_a_write_twice_fails_its_proof(tmp_path, monkeypatch):
    from spiketwin.hw.link import Executor

    def held_after_taken(self, m, s, write, addr, wdata=0):
        """Executor._cfg_access that leaves the request valid after it is taken: the core takes it again."""
        with m.If(~s.cfg_v):
            m.d.sync += [s.cfg_v.eq(1), s.cfg_w.eq(write), s.cfg_a.eq(addr), s.cfg_d.eq(wdata)]
        return s.cfg_v & self.cfg.ready

    monkeypatch.setattr(Executor, "_cfg_access", held_after_taken)
    job = next(j for j in formal.jobs("executor") if j.name == "executor-writes-lif-icebreaker")
    result = formal.run(job, tmp_path)
    assert result.status == "FAIL", result.line()
    assert result.failed in ("each write is the request's next word to its next address",
                             "no more writes than the request's words", "a RESET writes CLEAR_STATE to CONTROL")
    assert result.trace.is_file()


def test_an_executor_that_withdraws_an_event_under_back_pressure_fails_the_stream_proof(tmp_path, monkeypatch):
    from spiketwin.hw.link import Executor

    def withdrawn(self, m, s, axon_value, step):
        """Executor._send_event offering an event for one cycle only, taken or not."""
        with m.If(~s.ev_v):
            m.d.sync += [s.ev_v.eq(1), s.ev_axon.eq(axon_value), s.ev_step.eq(step)]
        with m.Else():
            m.d.sync += s.ev_v.eq(0)
        return s.ev_v & self.events.ready

    monkeypatch.setattr(Executor, "_send_event", withdrawn)
    job = next(j for j in formal.jobs("executor") if j.name == "executor-streams-lif-icebreaker")
    result = formal.run(job, tmp_path)
    assert result.status == "FAIL", result.line()
    assert result.failed == "events hold valid and payload until taken"


def test_prove_command_reports_each_job_and_refuses_an_unknown_component(tmp_path, capsys, monkeypatch):
    assert main(["prove", "--component", "slip-encoder", "--depth", "12", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "PASS  slip-encoder (bmc, depth 12" in out and "1/1 proofs passed" in out
    assert main(["prove", "--list"]) == 0
    assert "frame-receiver" in capsys.readouterr().out
    assert main(["prove", "--component", "nope"]) == 2
    assert "no proofs for component 'nope'" in capsys.readouterr().err
    assert main(["prove", "--component", "frame-receiver", "--depth", "40", "--timeout", "2", "--out",
                 str(tmp_path / "slow")]) == 1
    out = capsys.readouterr().out
    assert out.count("TIMEOUT frame-receiver") == 2 and "0/2 proofs passed" in out
    assert main(["prove", "--timeout", "0"]) == 2
    assert "--timeout must be a positive" in capsys.readouterr().err
    monkeypatch.setattr(arith, "saturate", saturate_one_below_max)
    assert main(["prove", "--component", "arith", "--out", str(tmp_path), "--plot"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  arith-q8.8-trunc" in out and "violated 'saturate' at" in out and "trace drawn:" in out
    assert list(tmp_path.glob("arith-q8.8-trunc/job_proof/engine_0/trace.png"))


def highest_lane_first(self, platform):
    """SpikeSelect choosing the highest pending lane: a group's spikes leave in decreasing order."""
    from amaranth.hdl import Module

    m = Module()
    for lane in range(self.lanes):
        with m.If(self.pending[lane]):
            m.d.comb += self.lane.eq(lane)
    m.d.comb += self.any.eq(self.pending.any())
    return m


def rotating_choice(self, platform):
    """SpikeSelect offering the highest and the lowest pending lane in turns, a cycle each: the
    offered spike changes before it is taken."""
    from amaranth.hdl import Module, Signal

    m = Module()
    turn = Signal()
    m.d.sync += turn.eq(~turn)
    for lane in range(self.lanes):
        with m.If(self.pending[lane] & turn):
            m.d.comb += self.lane.eq(lane)
    for lane in reversed(range(self.lanes)):
        with m.If(self.pending[lane] & ~turn):
            m.d.comb += self.lane.eq(lane)
    m.d.comb += self.any.eq(self.pending.any())
    return m


def test_a_spike_emitter_choosing_the_highest_lane_first_fails_the_step_proof(tmp_path, monkeypatch):
    from spiketwin.hw.core.emitter import SpikeSelect

    monkeypatch.setattr(SpikeSelect, "elaborate", highest_lane_first)
    job = next(j for j in formal.jobs() if j.name == "core-step-lif-small")
    result = formal.run(job, tmp_path)
    assert result.status == "FAIL" and result.failed == "a step's spikes leave in increasing order", result.line()
    assert result.trace.is_file() and result.trace.suffix == ".vcd"


def test_a_spike_emitter_changing_its_offer_fails_the_stream_rule(tmp_path, monkeypatch):
    """From reset on a small core (bounded), and as a failed induction on the default core: the
    offer changes only inside a step, deeper than the default core's base case reaches."""
    from spiketwin.hw.core.emitter import SpikeSelect

    monkeypatch.setattr(SpikeSelect, "elaborate", rotating_choice)
    rule = "spikes hold valid and their payload until taken"
    small = formal.Job("core-spikes-lif-small", "core-spikes", "bmc", 20,
                       lambda: formal.core.spikes_harness(formal.core.SMALL["lif"]))
    result = formal.run(small, tmp_path / "small")
    assert result.status == "FAIL" and result.failed == rule, result.line()
    assert result.trace.is_file() and result.trace.suffix == ".vcd"
    job = next(j for j in formal.jobs() if j.name == "core-spikes-lif-icebreaker")
    result = formal.run(job, tmp_path / "default")
    assert result.status == "UNKNOWN" and result.failed == rule and result.trace.is_file(), result.line()
    assert "holds for 2 cycles from reset but its induction fails" in result.line()


def test_a_decoder_that_maps_one_word_too_many_fails_the_config_proof(tmp_path, monkeypatch):
    from spiketwin.config import CoreConfig
    from spiketwin.hw.core import config_port

    size, elaborate = CoreConfig.region_size, config_port.ConfigDecoder.elaborate

    def mutant(self, platform):
        """The decoder sees every region but the weights one word larger (CONTROL's index 1 too);
        the harness keeps the true map, ``memory_map()``."""
        CoreConfig.region_size = lambda config, region: size(config, region) + (region != 0)
        try:
            return elaborate(self, platform)
        finally:
            CoreConfig.region_size = size

    monkeypatch.setattr(config_port.ConfigDecoder, "elaborate", mutant)
    job = next(j for j in formal.jobs() if j.name == "core-config-lif-icebreaker")
    result = formal.run(job, tmp_path)
    assert result.status == "FAIL", result.line()
    assert result.failed == "an unmapped request raises BAD_ADDRESS two cycles after it is taken"


def nack_touching_the_core(self, m, s):
    """Executor._nack that also clears the core's state before answering (a refusal with an effect)."""
    from spiketwin.config import Control
    from spiketwin.link.protocol import REPLY, Opcode

    with m.State("NACK"):
        self._emit(m, Opcode.NACK | REPLY)
        with m.If(self._cfg_access(m, s, 1, s.control, Control.CLEAR_STATE) & s.sent):
            m.next = "NACK_STATUS"
    with m.State("NACK_STATUS"):
        self._emit(m, s.req.status, 1)
        with m.If(s.sent):
            self._finish(m)


def test_a_refusal_that_touches_the_core_fails_the_executor_proof(tmp_path, monkeypatch):
    from spiketwin.hw.link import Executor

    monkeypatch.setattr(Executor, "_nack", nack_touching_the_core)
    result = formal.run(formal.jobs("executor")[0], tmp_path)
    assert result.status == "FAIL" and result.failed == "a refused request drives nothing into the core", result.line()
    assert result.trace.is_file() and result.trace.suffix == ".vcd"
