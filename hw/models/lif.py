"""The LIF neuron's update pipeline (:func:`spiketwin.models.lif.step` in gateware).

Registered stages, so that no cycle holds more than one multiplication or one saturating sum:
the operands of ``leak * v`` and of ``syn_decay * i_syn`` on the lane's one multiplier, their
roundings, i_syn's sum, v's sum, the spike decision with v after a spike and v without one, the
write-back (choosing between the two).
"""

from amaranth.hdl import Mux, Signal, signed

from spiketwin.models.lif import LIF

from .. import arith
from .base import LaneContext, UpdatePipeline

__all__ = ["LIFUpdate"]


class LIFUpdate(UpdatePipeline):
    model = LIF.name
    stages = ["UPDATE_READ", "UPDATE_PROD_V", "UPDATE_PROD_I", "UPDATE_ROUND_V", "UPDATE_ROUND", "UPDATE_ISYN",
              "UPDATE_V", "UPDATE_MODE", "UPDATE_C"]
    reads = {"UPDATE_READ": "leak", "UPDATE_PROD_V": "syn_decay", "UPDATE_PROD_I": "threshold",
             "UPDATE_ROUND_V": "bias", "UPDATE_ROUND": "v_reset", "UPDATE_ISYN": "reset_mode",
             "UPDATE_V": "refractory", "UPDATE_MODE": "refractory"}
    #: parameters held in a register from their read until the stage that uses them
    held = ("threshold", "bias", "v_reset", "reset_mode", "refractory")
    checkpoints = {"UPDATE_V": ("i_syn", "v_bias"), "UPDATE_MODE": ("v_int",)}

    def accumulate(self, weight):
        return [(weight, 1)]

    def elaborate(self, ctx: LaneContext) -> None:
        c = self.config
        fmt, m, lanes = c.fmt, ctx.m, range(c.lanes)
        word = signed(fmt.width)
        isyn_new = [Signal(word, name=f"isyn_new_{l}") for l in lanes]
        v_decay = [Signal(word, name=f"v_decay_{l}") for l in lanes]
        v_int = [Signal(word, name=f"v_int_{l}") for l in lanes]
        isyn_decay = [Signal(word, name=f"isyn_decay_{l}") for l in lanes]
        acc_r = [Signal(signed(c.acc_width), name=f"acc_r_{l}") for l in lanes]   # next to its adder
        v_bias = [Signal(signed(fmt.width + 1), name=f"v_bias_{l}") for l in lanes]
        spike = [Signal(name=f"spike_{l}") for l in lanes]                     # decided a stage before
        v_after = [Signal(word, name=f"v_after_{l}") for l in lanes]           # the write-back: v after a
        v_keep = [Signal(word, name=f"v_keep_{l}") for l in lanes]             # spike, or without one
        in_refractory = [Signal(name=f"in_refractory_{l}") for l in lanes]
        held = {name: [Signal(ctx.param(l, name).shape(), name=f"{name}_r_{l}") for l in lanes] for name in self.held}
        mems, param, rounded = ctx.mems, ctx.param, ctx.rounded
        self.values = [{"i_syn": isyn_new[l], "v_bias": v_bias[l], "v_int": v_int[l]} for l in lanes]

        with m.State("UPDATE_READ"):
            ctx.stage("UPDATE_PROD_V")
        with m.State("UPDATE_PROD_V"):             # leak * v
            ctx.stage("UPDATE_PROD_I")
            for lane in lanes:
                m.d.comb += [ctx.mul_a[lane].eq(param(lane, "leak")), ctx.mul_b[lane].eq(mems[lane]["v"][0].data)]
        with m.State("UPDATE_PROD_I"):             # syn_decay * i_syn
            ctx.stage("UPDATE_ROUND_V")
            for lane in lanes:
                i_syn = mems[lane]["i_syn"][0].data
                m.d.comb += [ctx.mul_a[lane].eq(param(lane, "syn_decay")), ctx.mul_b[lane].eq(i_syn)]
        with m.State("UPDATE_ROUND_V"):
            ctx.stage("UPDATE_ROUND")
            for lane in lanes:
                m.d.sync += [held["threshold"][lane].eq(param(lane, "threshold")),
                             v_decay[lane].eq(rounded[lane]),
                             acc_r[lane].eq(mems[lane]["acc"][0].data)]
        with m.State("UPDATE_ROUND"):
            ctx.stage("UPDATE_ISYN")
            for lane in lanes:
                m.d.sync += [isyn_decay[lane].eq(rounded[lane]), held["bias"][lane].eq(param(lane, "bias"))]
        with m.State("UPDATE_ISYN"):               # i_syn's sum; v's decay plus bias, exact
            ctx.stage("UPDATE_V")
            for lane in lanes:
                m.d.sync += [held["v_reset"][lane].eq(param(lane, "v_reset")),
                             v_bias[lane].eq(v_decay[lane] + held["bias"][lane]),
                             isyn_new[lane].eq(arith.saturate(isyn_decay[lane] + acc_r[lane], fmt))]
        with m.State("UPDATE_V"):
            ctx.stage("UPDATE_MODE")
            for lane in lanes:
                m.d.sync += [held["reset_mode"][lane].eq(param(lane, "reset_mode")),
                             v_int[lane].eq(arith.saturate(v_bias[lane] + isyn_new[lane], fmt)),
                             in_refractory[lane].eq(mems[lane]["ref_count"][0].data != 0)]
        with m.State("UPDATE_MODE"):               # the spike and v's next value
            ctx.stage("UPDATE_C")
            for lane in lanes:
                m.d.sync += held["refractory"][lane].eq(param(lane, "refractory"))
                self._decide(m, mems[lane], in_refractory[lane], held["threshold"][lane], held["v_reset"][lane],
                             held["reset_mode"][lane], v_int[lane], spike[lane], v_after[lane], v_keep[lane])
        with m.State("UPDATE_C"):                  # write-back
            ctx.finish()
            for lane in lanes:
                self._writeback(m, mems[lane], in_refractory[lane], held["refractory"][lane], isyn_new[lane],
                                spike[lane], Mux(spike[lane], v_after[lane], v_keep[lane]), ctx.fired[lane],
                                ctx.group)

    def _decide(self, m, ports, refractory, threshold, v_reset, reset_mode, v_int, spike, v_after, v_keep):
        """Step 3 of the LIF step (``docs/models.md``) for one lane: from the saturated ``v_int``,
        whether the neuron fires, v after a spike (the reset) and v without one (held while
        refractory), registered; the write-back stage chooses between the two."""
        fmt = self.config.fmt
        v = ports["v"][0].data
        m.d.sync += [spike.eq(~refractory & (v_int >= threshold)),
                     v_after.eq(Mux(reset_mode, v_reset, arith.saturate(v_int - threshold, fmt))),
                     v_keep.eq(Mux(refractory, v, v_int))]

    def _writeback(self, m, ports, in_refractory, refractory, isyn_new, spike, v_next, fired, g):
        """The write-back of one lane's neuron at address ``g``: v's next value, i_syn, the
        refractory counter (reloaded with ``refractory`` on a spike) and a cleared accumulator."""
        ref_count = ports["ref_count"][0].data
        wr = {name: ports[name][1] for name in ("v", "i_syn", "ref_count", "acc")}
        for wp in wr.values():
            m.d.comb += [wp.addr.eq(g), wp.en.eq(1)]
        m.d.comb += [wr["v"].data.eq(v_next), wr["i_syn"].data.eq(isyn_new), wr["acc"].data.eq(0),
                     wr["ref_count"].data.eq(Mux(in_refractory, ref_count - 1, Mux(spike, refractory, 0)))]
        m.d.comb += fired.eq(spike)
