"""The DPI-approximating neuron's update pipeline (:func:`spiketwin.models.dpi.dpi_step` in gateware).

One product per stage through the lane's multiplier: the four synaptic decays and the
adaptation's, then ``A[u] * j``, then ``k_mem * d``, each rounded two stages after it is asked for.
The dark-current floor is read once, in the last decay stage, and held: AMPA, NMDA and GABAa are
raised to it there (from their registers), GABAb in the next stage (its sum is the stage's long
path), and the adaptation's two candidates (spike or none) in DPI_DRIFT, so that the write-back
only chooses between them.
"""

from amaranth.hdl import Mux, Signal, signed

from spiketwin.models.dpi import DPI, DPI_LUT_SHIFT, DPI_LUT_SIZE, SYNAPSE_TYPES, magnitude_bits

from .. import arith
from .base import LaneContext, UpdatePipeline

__all__ = ["DPIUpdate"]

#: the decays, one product per stage
_DECAYS = [f"decay_{t}" for t in (*SYNAPSE_TYPES, "ahp")]


class DPIUpdate(UpdatePipeline):
    model = DPI.name
    stages = ["UPDATE_READ", *(f"DPI_DECAY_{k}" for k in range(len(_DECAYS) + 1)), "DPI_INPUT", "DPI_GATE",
              "DPI_PROD_A", "DPI_WAIT_A", "DPI_DRIFT", "DPI_PROD_K", "DPI_WAIT_K", "DPI_U", "DPI_C"]
    reads = {"UPDATE_READ": _DECAYS[0],
             **{f"DPI_DECAY_{k}": _DECAYS[k + 1] for k in range(len(_DECAYS) - 1)},
             f"DPI_DECAY_{len(_DECAYS) - 1}": "j_floor", f"DPI_DECAY_{len(_DECAYS)}": "j_dc",
             "DPI_INPUT": "u_nmda", "DPI_GATE": "u_thr", "DPI_PROD_A": "ahp_jump", "DPI_WAIT_A": "k_mem",
             "DPI_DRIFT": "k_mem", "DPI_PROD_K": "refractory", "DPI_WAIT_K": "refractory", "DPI_U": "refractory"}
    #: parameters held in a register from their read until the write-back
    held = ("j_floor", "u_thr", "ahp_jump", "refractory")
    checkpoints = {"DPI_INPUT": ("ampa", "nmda", "gaba_a"), "DPI_GATE": ("gaba_b", "sh", "j_part", "ahp_decay"),
                   "DPI_PROD_A": ("j",), "DPI_PROD_K": ("d", "ahp_quiet", "ahp_fired"), "DPI_C": ("u_int",)}

    def accumulate(self, weight):
        """A weight word carries its synapse type above its magnitude: the magnitude goes to that
        type's accumulator."""
        bits = magnitude_bits(self.config)
        magnitude, kind = weight[:bits], weight[bits:]
        return [(magnitude, kind == k) for k in range(len(SYNAPSE_TYPES))]

    def table_index(self, ports):
        """``lut_index(u)``: ``clip(u >> DPI_LUT_SHIFT, 0, DPI_LUT_SIZE - 1)``."""
        u = ports["u"][0].data
        hi = u >> DPI_LUT_SHIFT
        return Mux(u < 0, 0, Mux(hi >= DPI_LUT_SIZE, DPI_LUT_SIZE - 1, hi))

    def elaborate(self, ctx: LaneContext) -> None:
        c = self.config
        fmt, m, lanes = c.fmt, ctx.m, range(c.lanes)
        mems, param, rounded = ctx.mems, ctx.param, ctx.rounded
        wide = signed(fmt.width + 3)
        regs = {name: [Signal(signed(fmt.width), name=f"{name}_{l}") for l in lanes]
                for name in (*(f"new_{t}" for t in SYNAPSE_TYPES), "ahp_decay", "ahp_quiet", "ahp_fired", "j", "sh",
                             "d", "u_int")}
        j_part = [Signal(wide, name=f"j_part_{l}") for l in lanes]
        held = {name: [Signal(ctx.param(l, name).shape(), name=f"{name}_r_{l}") for l in lanes] for name in self.held}
        self.values = [{**{t: regs[f"new_{t}"][l] for t in SYNAPSE_TYPES}, "j_part": j_part[l],
                        **{name: regs[name][l] for name in ("sh", "ahp_decay", "j", "d", "ahp_quiet", "ahp_fired",
                                                             "u_int")}} for l in lanes]

        with m.State("UPDATE_READ"):
            ctx.stage("DPI_DECAY_0")
        last = len(_DECAYS)
        for k in range(last + 1):                       # DPI_DECAY_k: product k, sum k - 2
            with m.State(f"DPI_DECAY_{k}"):
                ctx.stage(f"DPI_DECAY_{k + 1}" if k < last else "DPI_INPUT")
                for lane in lanes:
                    if k < last:
                        st = mems[lane]["ahp" if k == len(SYNAPSE_TYPES) else f"syn_{SYNAPSE_TYPES[k]}"][0].data
                        m.d.comb += [ctx.mul_a[lane].eq(param(lane, _DECAYS[k])), ctx.mul_b[lane].eq(st)]
                    if k >= 2:
                        t = SYNAPSE_TYPES[k - 2]
                        acc = mems[lane][f"acc_{t}"][0].data
                        m.d.sync += regs[f"new_{t}"][lane].eq(arith.saturate(rounded[lane] + acc, fmt))
                    if k == last:                       # the floor: held, and the first three currents on it
                        floor = param(lane, "j_floor")
                        m.d.sync += held["j_floor"][lane].eq(floor)
                        m.d.sync += [regs[f"new_{s}"][lane].eq(_at_least(regs[f"new_{s}"][lane], floor))
                                     for s in SYNAPSE_TYPES[:-1]]
        with m.State("DPI_INPUT"):                    # the adaptation's decay; input terms; GABAb floored; shunt
            ctx.stage("DPI_GATE")
            for lane in lanes:
                r = {name: sig[lane] for name, sig in regs.items()}
                gaba_b = _at_least(r["new_gaba_b"], held["j_floor"][lane])
                m.d.sync += [r["ahp_decay"].eq(rounded[lane]), r["new_gaba_b"].eq(gaba_b),
                             j_part[lane].eq(param(lane, "j_dc") + r["new_ampa"] - r["new_gaba_a"]),
                             r["sh"].eq(arith.saturate(mems[lane]["ahp"][0].data + gaba_b, fmt))]
        with m.State("DPI_GATE"):                     # j = max(0, sat(... + [u > u_nmda] nmda))
            ctx.stage("DPI_PROD_A")
            for lane in lanes:
                u = mems[lane]["u"][0].data
                nmda = Mux(u > param(lane, "u_nmda"), regs["new_nmda"][lane], 0)
                j = arith.saturate(j_part[lane] + nmda, fmt)
                m.d.sync += regs["j"][lane].eq(Mux(j < 0, 0, j))
        with m.State("DPI_PROD_A"):                   # A[u] * j
            ctx.stage("DPI_WAIT_A")
            for lane in lanes:
                m.d.comb += [ctx.mul_a[lane].eq(mems[lane]["lut_a"][0].data), ctx.mul_b[lane].eq(regs["j"][lane])]
                m.d.sync += held["u_thr"][lane].eq(param(lane, "u_thr"))
        with m.State("DPI_WAIT_A"):
            ctx.stage("DPI_DRIFT")
            for lane in lanes:
                m.d.sync += held["ahp_jump"][lane].eq(param(lane, "ahp_jump"))
        with m.State("DPI_DRIFT"):                    # d = sat(A j + B - 1 - sh); the adaptation's candidates
            ctx.stage("DPI_PROD_K")
            for lane in lanes:
                b = mems[lane]["lut_b"][0].data
                r, floor = {name: sig[lane] for name, sig in regs.items()}, held["j_floor"][lane]
                fired = arith.saturate(r["ahp_decay"] + held["ahp_jump"][lane], fmt)
                m.d.sync += [r["d"].eq(arith.saturate(rounded[lane] + b - fmt.one - r["sh"], fmt)),
                             r["ahp_quiet"].eq(_at_least(r["ahp_decay"], floor)),
                             r["ahp_fired"].eq(_at_least(fired, floor))]
        with m.State("DPI_PROD_K"):                   # k_mem * d
            ctx.stage("DPI_WAIT_K")
            for lane in lanes:
                m.d.comb += [ctx.mul_a[lane].eq(param(lane, "k_mem")), ctx.mul_b[lane].eq(regs["d"][lane])]
        with m.State("DPI_WAIT_K"):
            ctx.stage("DPI_U")
        with m.State("DPI_U"):                        # u_int = max(0, sat(u + k d))
            ctx.stage("DPI_C")
            for lane in lanes:
                u_int = arith.saturate(mems[lane]["u"][0].data + rounded[lane], fmt)
                m.d.sync += [regs["u_int"][lane].eq(Mux(u_int < 0, 0, u_int)),
                             held["refractory"][lane].eq(param(lane, "refractory"))]
        with m.State("DPI_C"):                        # compare, reset, write back
            ctx.finish()
            for lane in lanes:
                self._writeback(m, mems[lane], {name: sig[lane] for name, sig in regs.items()},
                                held["u_thr"][lane], held["refractory"][lane], ctx.fired[lane], ctx.group)

    def _writeback(self, m, ports, r, u_thr, refractory, fired, g):
        """The end of the update for one lane: spike, reset, state written at ``g``."""
        ref_count = ports["ref_count"][0].data
        spike = Signal()
        active = ref_count == 0
        m.d.comb += spike.eq(active & (r["u_int"] >= u_thr))
        wr = {name: wp for name, (_, wp) in ports.items() if name not in ("params", *self.config.table_fields)}
        for wp in wr.values():
            m.d.comb += [wp.addr.eq(g), wp.en.eq(1)]
        m.d.comb += [wr[f"acc_{t}"].data.eq(0) for t in SYNAPSE_TYPES]
        m.d.comb += [wr[f"syn_{t}"].data.eq(r[f"new_{t}"]) for t in SYNAPSE_TYPES]
        m.d.comb += [wr["u"].data.eq(Mux(active & ~spike, r["u_int"], 0)),
                     wr["ahp"].data.eq(Mux(spike, r["ahp_fired"], r["ahp_quiet"])),
                     wr["ref_count"].data.eq(Mux(spike, refractory, Mux(active, 0, ref_count - 1)))]
        m.d.comb += fired.eq(spike)


def _at_least(value, floor):
    """``max(floor, value)``."""
    return Mux(value < floor, floor, value)
