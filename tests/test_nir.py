"""NIR graphs onto the LIF core and back: spikes against a float simulation of the NIR equations,
an identity round trip, the mapping report, every refusal, and the two commands."""

import json

import nir
import numpy as np
import pytest

from spiketwin import CoreConfig, Network, simulate
from spiketwin.fixedpoint import QFormat
from spiketwin.nir import (
    NIRMappingError,
    core_events,
    export_graph,
    import_graph,
    layer_spikes,
    run_graph,
)

DT = 1e-3
NEAREST = QFormat(8, 8, rounding="nearest")


def tau_on_grid(rng, n, convention, lo, hi):
    """Time constants whose per-step decay lies on the Q8.8 grid (as a graph trained for the core has)."""
    a = np.round(rng.uniform(lo, hi, n) * 256) / 256
    return DT / (1 - a) if convention == "euler" else -DT / np.log(a)


def gain(tau, convention):
    return DT / tau if convention == "euler" else 1 - np.exp(-DT / tau)


def random_graph(rng, n_layers, convention, kind="CubaLIF", recurrent=True, bias=True, style="snntorch", skip=False):
    """Input -> (Affine -> CubaLIF or LIF, with a recurrent Linear) x n_layers -> Output, thresholds
    and biases varied, written in snnTorch's way (r and w_in undo the decays' input gains) or in
    Norse's (r = w_in = 1, the gains left in the equations, the weights larger to match); with
    ``skip``, the input and the first layer also feed the last layer directly (Linear, Affine)."""
    n_in = int(rng.integers(8, 24))
    nodes, edges = {"in": nir.Input(input_type={"input": np.array([n_in])})}, []
    prev, n_prev = "in", n_in
    for layer in range(n_layers):
        n = int(rng.integers(6, 24))
        w = rng.normal(0.1, 1.0, (n, n_prev)) * 2.5 / np.sqrt(n_prev)
        b = rng.normal(0, 0.05, n) if bias else np.zeros(n)
        th = rng.uniform(0.5, 1.5, n)
        tm = tau_on_grid(rng, n, convention, 0.7, 0.95)
        ts = tau_on_grid(rng, n, convention, 0.6, 0.95)
        r, w_in = 1 / gain(tm, convention), 1 / gain(ts, convention)
        if style == "norse":        # the same dynamics with r = w_in = 1: the gains move into the weights
            k = (r * w_in if kind == "CubaLIF" else r)[:, None]
            w, b, r, w_in = w * k, b * k[:, 0], np.ones(n), np.ones(n)
        nodes[f"w{layer}"] = nir.Affine(weight=w, bias=b)
        if kind == "CubaLIF":
            node = nir.CubaLIF(tau_syn=ts, tau_mem=tm, r=r, v_leak=np.zeros(n), v_threshold=th, v_reset=np.zeros(n),
                               w_in=w_in)
        else:
            node = nir.LIF(tau=tm, r=r, v_leak=np.zeros(n), v_threshold=th, v_reset=np.zeros(n))
        nodes[f"l{layer}"] = node
        edges += [(prev, f"w{layer}"), (f"w{layer}", f"l{layer}")]
        if recurrent:
            nodes[f"r{layer}"] = nir.Linear(weight=rng.normal(0, 0.3 / np.sqrt(n), (n, n)))
            edges += [(f"l{layer}", f"r{layer}"), (f"r{layer}", f"l{layer}")]
        if skip and layer == n_layers - 1 and layer > 0:
            n0 = nodes["w0"].weight.shape[0]
            nodes["skip_in"] = nir.Linear(weight=rng.normal(0, 1.5 / np.sqrt(n_in), (n, n_in)))
            edges += [("in", "skip_in"), ("skip_in", f"l{layer}")]
            if layer > 1:
                nodes["skip_0"] = nir.Affine(weight=rng.normal(0, 1.5 / np.sqrt(n0), (n, n0)), bias=np.full(n, 0.02))
                edges += [("l0", "skip_0"), ("skip_0", f"l{layer}")]
        prev, n_prev = f"l{layer}", n
    nodes["out"] = nir.Output(output_type={"output": np.array([n_prev])})
    edges.append((prev, "out"))
    return nir.NIRGraph(nodes=nodes, edges=edges), n_in


@pytest.mark.parametrize("style", ["snntorch", "norse"])
@pytest.mark.parametrize("n_layers", [1, 2, 3])
@pytest.mark.parametrize("kind", ["CubaLIF", "LIF"])
@pytest.mark.parametrize("convention", ["euler", "exact"])
def test_random_graphs_agree_with_the_nir_equations(convention, kind, n_layers, style):
    """Every layer agrees with the float equations on 99% of its entries when it is fed what the
    core's layers before it emitted (its own quantisation's flips alone), and on 98.5% end to end
    (the flips of earlier layers carried on); skip connections (seed 0) arrive in NIR's step."""
    for seed in range(3):
        rng = np.random.default_rng(seed)
        graph, n_in = random_graph(rng, n_layers, convention, kind, recurrent=seed != 1, bias=seed != 2, style=style,
                                   skip=seed == 0)
        net, report = import_graph(graph, DT, convention=convention, fmt=NEAREST)
        events = (rng.random((16, 50, n_in)) < 0.3).astype(int)
        ref = run_graph(graph, events, DT, convention)
        core = simulate(net.config, net, core_events(net, events))
        mine = {f"l{k}": layer_spikes(net, core.spikes, f"l{k}", 50) for k in range(n_layers)}
        for layer in range(n_layers):
            name = f"l{layer}"
            want = ref[name] > 0
            alone = run_graph(graph, events, DT, convention, given={k: v for k, v in mine.items() if k != name})
            assert (mine[name] == (alone[name] > 0)).mean() >= 0.99, (seed, layer)
            assert (mine[name] == want).mean() >= 0.985, (seed, layer)
            assert 0.02 < want.mean() < 0.8
        assert [L["time_shift"] for L in report.layers] == list(range(n_layers))
        assert len(report.relays) == (n_layers == 3 and seed == 0)


def lif_network(seed, n_axons=12, n_neurons=10):
    net = Network.random(CoreConfig(n_axons, n_neurons), seed)
    one = net.config.fmt.one
    net.reset_mode[:] = 1
    net.refractory[:] = 0
    net.leak[net.leak == one] = one - 40
    net.syn_decay[net.syn_decay == one] = one // 3
    return net


@pytest.mark.parametrize("seed", range(4))
def test_export_then_import_is_the_identity(seed, tmp_path):
    net = lif_network(seed)
    path = tmp_path / "net.nir"
    nir.write(path, export_graph(net, DT))
    graph = nir.read(path)
    assert graph.nodes["lif"].metadata["dt"] == DT and graph.nodes["lif"].metadata["convention"] == "euler"
    back, report = import_graph(graph, DT, fmt=net.config.fmt)
    for name in net.array_names:
        np.testing.assert_array_equal(getattr(back, name), getattr(net, name), err_msg=name)
    assert back.config == net.config and report.layers[0]["scale"] == 1.0


def test_an_exported_graph_runs_the_network_in_float():
    """The exported graph's equations, simulated in float64, give the core's spikes (up to the
    rounding of its products: a few flips)."""
    net = lif_network(5, 16, 24)
    net.weights //= 2
    rng = np.random.default_rng(0)
    events = (rng.random((8, 60, 16)) < 0.3).astype(int)
    ref = run_graph(export_graph(net, DT), events, DT)["lif"] > 0
    core = simulate(net.config, net, events).spikes
    assert 0.02 < ref.mean() < 0.9
    assert (core == ref).mean() >= 0.97


def test_bias_axons_and_the_report(tmp_path):
    rng = np.random.default_rng(3)
    graph, n_in = random_graph(rng, 2, "euler")
    net, report = import_graph(graph, DT, fmt=NEAREST)
    axons = report.axons
    assert axons[:n_in] == [["input", i] for i in range(n_in)] and axons[n_in:] == [["bias", "l0"], ["bias", "l1"]]
    events = core_events(net, np.zeros((5, n_in), int))
    assert events.shape == (6, n_in + 2)                    # one step more for the second layer's shift
    assert events[:, n_in].tolist() == [1] * 6 and events[:, n_in + 1].tolist() == [0] + [1] * 5
    saved = json.loads(report.save(tmp_path / "m.json").read_text())
    layer = saved["layers"][0]
    assert layer["weight_max_error_lsb"] <= 0.5 + 1e-9                     # nearest rounding
    assert layer["scale"] >= 1 and layer["alpha_raw"] == net.syn_decay[0]
    folded, rep = import_graph(graph, DT, fmt=NEAREST, fold_bias=True)
    assert folded.config.n_axons == n_in and any("folded" in a for L in rep.layers for a in L["approximations"])


def graph_of(nodes, edges):
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def cuba(n, tau=5e-3):
    return nir.CubaLIF(tau_syn=np.full(n, tau), tau_mem=np.full(n, tau), r=np.ones(n), v_leak=np.zeros(n),
                       v_threshold=np.ones(n), v_reset=np.zeros(n))


def test_refusals_name_the_node_and_the_limit():
    inp = nir.Input(input_type={"input": np.array([4])})
    out = nir.Output(output_type={"output": np.array([3])})
    w43 = nir.Linear(weight=np.ones((3, 4)))
    ok = {"in": inp, "w": w43, "l": cuba(3), "out": out}
    chain = [("in", "w"), ("w", "l"), ("l", "out")]
    import_graph(graph_of(ok, chain), DT)
    with pytest.raises(NIRMappingError, match="node 'd' is a Delay, which the core cannot run"):
        import_graph(graph_of({**ok, "d": nir.Delay(delay=np.ones(4))}, [*chain, ("in", "d")]), DT)
    conv = nir.Conv2d(input_shape=(3, 3), weight=np.ones((1, 1, 2, 2)), stride=1, padding=0, dilation=1, groups=1,
                      bias=np.zeros(1))
    with pytest.raises(NIRMappingError, match=r"node 'c': a Conv2d of input \(1, 3, 3\) after 4 values"):
        import_graph(graph_of({**ok, "c": conv, "w": nir.Linear(weight=np.ones((3, 4)))},
                              [("in", "c"), ("c", "w"), ("w", "l"), ("l", "out")]), DT)
    pool = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    with pytest.raises(NIRMappingError, match=r"node 'p': a SumPool2d needs a \[channels, height, width\] input, not "
                                              r"\[4\]"):
        import_graph(graph_of({**ok, "p": pool}, [("in", "p"), ("p", "w"), ("w", "l"), ("l", "out")]), DT)
    flat_in = {**ok, "in": nir.Input(input_type={"input": np.array([1, 2, 2])})}
    for conv, message in (
            (nir.Conv2d(input_shape=(2, 2), weight=np.ones((1, 1, 3, 3)), stride=1, padding=0, dilation=1, groups=1,
                        bias=np.zeros(1)), r"a Conv2d of kernel \[3, 3\] leaves no output of an input of \[2, 2\]"),
            (nir.Conv2d(input_shape=(2, 2), weight=np.ones((1, 1, 1, 1)), stride=2, padding="same", dilation=1,
                        groups=1, bias=np.zeros(1)), r"padding 'same' with stride \[2, 2\]"),
            (nir.Conv1d(input_shape=4, weight=np.ones((1, 1, 1, 1)), stride=1, padding=0, dilation=1, groups=1,
                        bias=np.zeros(1)), r"a Conv1d weight of shape \[1, 1, 1, 1\]; it needs \[c_out, c_in, k\]")):
        with pytest.raises(NIRMappingError, match="node 'c': " + message):
            import_graph(graph_of({**flat_in, "c": conv}, [("in", "c"), ("c", "w"), ("w", "l"), ("l", "out")]), DT)
    wide = nir.Conv2d(input_shape=(200, 200), weight=np.ones((4, 1, 1, 1)), stride=1, padding=0, dilation=1, groups=1,
                      bias=np.zeros(4))
    with pytest.raises(NIRMappingError, match="node 'c': unrolls to 160000 values; at most 65536 sources fit a core"):
        import_graph(graph_of({**ok, "in": nir.Input(input_type={"input": np.array([1, 200, 200])}), "c": wide},
                              [("in", "c"), ("c", "w"), ("w", "l"), ("l", "out")]), DT)
    with pytest.raises(NIRMappingError, match="exactly one Input node, not 2"):
        import_graph(graph_of({**ok, "in2": inp}, chain), DT)
    with pytest.raises(NIRMappingError, match="the graph has no Output node"):
        import_graph(graph_of({k: v for k, v in ok.items() if k != "out"}, chain[:2]), DT)
    back = {**ok, "w2": nir.Linear(weight=np.ones((3, 3))), "l2": cuba(3), "b": nir.Linear(weight=np.ones((3, 3)))}
    with pytest.raises(NIRMappingError, match="'l2' -> 'l' feeds back across layers"):
        import_graph(graph_of(back, [*chain[:2], ("l", "w2"), ("w2", "l2"), ("l2", "b"), ("b", "l"),
                                     ("l2", "out")]), DT)
    with pytest.raises(NIRMappingError, match=r"layer 'l': alpha = -1 is outside \[0, 1\] at this dt"):
        import_graph(graph_of({**ok, "l": cuba(3, tau=DT / 2)}, chain), DT)
    with pytest.raises(NIRMappingError, match=r"'w' \('in' -> 'l'\): weight of shape \(3, 4\), expected \(3, 5\)"):
        import_graph(graph_of({**ok, "in": nir.Input(input_type={"input": np.array([5])})}, chain), DT)
    with pytest.raises(NIRMappingError, match="layer 'l': threshold 1 at scale 512 is outside Q8.8"):
        import_graph(graph_of(ok, chain), DT, scales={"l": 512.0})
    readout = {**ok, "l": nir.LI(tau=np.full(3, 5e-3), r=np.ones(3), v_leak=np.zeros(3)),
               "w2": nir.Linear(weight=np.ones((3, 3))), "l2": cuba(3)}
    with pytest.raises(NIRMappingError, match="a non-spiking LI readout cannot feed a layer"):
        import_graph(graph_of(readout, [*chain[:2], ("l", "w2"), ("w2", "l2"), ("l2", "out")]), DT)
    big = {"in": nir.Input(input_type={"input": np.array([70000])}), "w": nir.Linear(weight=np.zeros((3, 70000))),
           "l": cuba(3), "out": out}
    with pytest.raises(NIRMappingError, match="the graph's 70000 inputs and 3 neurons do not fit a core: At most"):
        import_graph(graph_of(big, chain), DT)
    with pytest.raises(ValueError, match="dt must be a positive number of seconds"):
        import_graph(graph_of(ok, chain), 0.0)


def test_export_refuses_what_nir_cannot_say():
    net = lif_network(1)
    net.reset_mode[2] = 0
    net.refractory[3] = 2
    with pytest.raises(ValueError, match="NIR cannot express 1 neuron.s. reset by subtraction; 1 neuron.s. with a "
                                         "refractory period"):
        export_graph(net, DT)
    graph = export_graph(net, DT, approximate=True)
    assert graph.metadata["approximated"] == ["1 neuron(s) reset by subtraction",
                                              "1 neuron(s) with a refractory period"]
    dpi = CoreConfig(4, 4, model="dpi")
    with pytest.raises(ValueError, match="NIR export maps the LIF model, not 'dpi'"):
        export_graph(dpi.neuron_model.network.zeros(dpi), DT)


def test_import_and_export_commands(tmp_path, capsys):
    from spiketwin.cli import main
    from spiketwin.netfile import load_network

    rng = np.random.default_rng(4)
    graph, _ = random_graph(rng, 2, "euler")
    nir.write(tmp_path / "g.nir", graph)
    assert main(["import-nir", str(tmp_path / "g.nir"), "--dt", "0.001", "--lanes", "2",
                 "--out", str(tmp_path / "m.npz")]) == 0
    out = capsys.readouterr().out
    assert "l0 (CubaLIF" in out and "shift 1 step(s)" in out
    net = load_network(tmp_path / "m.npz")
    assert net.config.lanes == 2 and net.meta["nir"]["layers"]["l1"]["time_shift"] == 1
    assert json.loads((tmp_path / "m.mapping.json").read_text())["dt"] == 0.001
    lif = lif_network(0)
    lif.save(tmp_path / "lif.npz")
    assert main(["export-nir", str(tmp_path / "lif.npz"), "--dt", "0.001", "--out", str(tmp_path / "lif.nir")]) == 0
    assert nir.read(tmp_path / "lif.nir").nodes["lif"].v_threshold.shape == (10,)
    assert main(["import-nir", str(tmp_path / "missing.nir"), "--dt", "0.001"]) == 2
    assert "no NIR file at" in capsys.readouterr().err
    assert main(["import-nir", str(tmp_path / "g.nir"), "--dt", "0.001", "--encoding", "poisson"]) == 2
    assert "--encoding is for a --calibrate file of intensities" in capsys.readouterr().err
    assert main(["import-nir", str(tmp_path / "g.nir"), "--dt", "-1"]) == 2
    assert "--dt must be a positive number of seconds, not -1" in capsys.readouterr().err


def test_data_files_are_checked(tmp_path):
    from spiketwin.data import load_events

    good = tmp_path / "good.npz"
    np.savez(good, events=np.ones((3, 5, 4), np.int32), labels=np.array([0, 1, 2]))
    events, labels = load_events(good, 4, 3)
    assert events.shape == (3, 5, 4) and labels.tolist() == [0, 1, 2]
    cases = {"no_events": ({"labels": np.zeros(3, int)}, "needs one 'events' or 'intensities' array"),
             "floats": ({"events": np.ones((3, 5, 4))}, "events must be integer counts, not float64"),
             "shape": ({"events": np.ones((3, 5, 6), int)}, r"events must be \[samples, steps, 4\], not \[3, 5, 6\]"),
             "negative": ({"events": -np.eye(4, dtype=int)[None, :, :].repeat(2, 0)},
                          r"events\[0, 0, 0\] is negative"),
             "length": ({"events": np.ones((3, 5, 4), int), "labels": np.zeros(2, int)}, "2 labels for 3 samples"),
             "class": ({"events": np.ones((3, 5, 4), int), "labels": np.array([0, 3, 1])},
                       r"labels\[1\] = 3 is not a class in \[0, 3\)")}
    for name, (arrays, message) in cases.items():
        path = tmp_path / f"{name}.npz"
        np.savez(path, **arrays)
        with pytest.raises(ValueError, match=message):
            load_events(path, 4, 3)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.npz: not a readable .npz data file"):
        load_events(tmp_path / "junk.npz", 4)


def test_evaluate_an_imported_graph_on_your_own_data(tmp_path, capsys):
    """evaluate --data: the twin's accuracy on labelled samples read in the output layer's window,
    and over sampled chips (at level 0 every chip is the nominal core)."""
    from spiketwin.cli import main
    from spiketwin.evaluate import samples_accuracy
    from spiketwin.samples import own_samples

    rng = np.random.default_rng(8)
    graph, n_in = random_graph(rng, 2, "euler")
    nir.write(tmp_path / "g.nir", graph)
    model = tmp_path / "m.npz"
    assert main(["import-nir", str(tmp_path / "g.nir"), "--dt", "0.001", "--out", str(model)]) == 0
    net = Network.load(model)
    n_out = len(next(iter(net.meta["nir"]["outputs"].values()))["neurons"])
    events = (rng.random((40, 20, n_in)) < 0.3).astype(np.int64)
    ref = run_graph(graph, events, DT)
    last = f"l{len(net.meta['nir']['layers']) - 1}"
    labels = ref[last].sum(1).argmax(-1)                   # the float graph's own answers
    np.savez(tmp_path / "data.npz", events=events, labels=labels)
    samples = own_samples(net, tmp_path / "data.npz")
    assert samples.window == (1, 21) and len(samples.outputs) == n_out
    capsys.readouterr()
    assert main(["evaluate", str(model), "--data", str(tmp_path / "data.npz"), "--chips", "3", "--levels", "0", "1",
                 "--json", str(tmp_path / "e.json")]) == 0
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["q8_8_accuracy"] == samples_accuracy(net, samples) >= 0.9
    assert result["sweep"][0]["chips"] == [result["q8_8_accuracy"]] * 3
    np.savez(tmp_path / "bad.npz", events=events, labels=labels + n_out)
    assert main(["evaluate", str(model), "--data", str(tmp_path / "bad.npz")]) == 2
    assert f"has no output neuron (there are {n_out})" in capsys.readouterr().err


@pytest.mark.sim
def test_an_imported_graph_runs_on_the_simulated_board_bit_for_bit(tmp_path, capsys):
    from test_board_sim import free_port, serve, stop_board

    from spiketwin.cli import main

    rng = np.random.default_rng(7)
    graph, n_in = random_graph(rng, 2, "euler")
    nir.write(tmp_path / "g.nir", graph)
    model = tmp_path / "m.npz"
    assert main(["import-nir", str(tmp_path / "g.nir"), "--dt", "0.001", "--out", str(model)]) == 0
    events = (rng.random((3, 12, n_in)) < 0.3).astype(np.int64)
    np.savez(tmp_path / "data.npz", events=events, labels=np.zeros(3, int))
    port = free_port()
    board = serve(model, tmp_path / "board", port)
    try:
        capsys.readouterr()
        assert main(["run", "--port", f"socket://127.0.0.1:{port}", "--model", str(model), "--data",
                     str(tmp_path / "data.npz"), "--json", str(tmp_path / "run.json")]) == 0
        assert "3/3 samples bit-exact with the twin" in capsys.readouterr().out
        assert board.wait(timeout=60) == 0
    finally:
        stop_board(board)
    assert main(["verify", "--model", str(model), "--data", str(tmp_path / "data.npz"), "--sim", "icarus"]) == 0
    assert "1/1 runs bit-exact" in capsys.readouterr().out


def test_a_readout_never_fires_and_its_report_is_plain_json():
    graph = graph_of({"in": nir.Input(input_type={"input": np.array([3])}), "w": nir.Linear(weight=np.ones((2, 3))),
                      "l": nir.LI(tau=np.full(2, 5e-3), r=np.ones(2), v_leak=np.zeros(2)),
                      "out": nir.Output(output_type={"output": np.array([2])})},
                     [("in", "w"), ("w", "l"), ("l", "out")])
    net, report = import_graph(graph, DT)
    assert (net.threshold == net.config.fmt.max_raw).all()

    def refuse(constant):
        raise ValueError(f"not plain JSON: {constant}")

    assert json.loads(report.to_json(), parse_constant=refuse)["layers"][0]["threshold"] is None


def direct_conv(x, weight, bias, stride, padding, dilation, groups):
    """A convolution written out output by output, over a zero-padded input (the definition)."""
    d = weight.ndim - 2
    k = np.array(weight.shape[2:])
    if padding == "same":
        reach = dilation * (k - 1)
        pads = [(int(r // 2), int(r - r // 2)) for r in reach]
    else:
        pads = [(padding, padding)] * d
    xp = np.pad(x, [(0, 0), *pads])
    size = np.array(xp.shape[1:])
    out = (size - dilation * (k - 1) - 1) // stride + 1
    c_out, per_group = weight.shape[:2]
    y = np.zeros((c_out, *out))
    for co in range(c_out):
        g = co // (c_out // groups)
        for pos in np.ndindex(*out):
            for cg in range(per_group):
                for off in np.ndindex(*k):
                    at = tuple(np.array(pos) * stride + np.array(off) * dilation)
                    y[(co, *pos)] += weight[(co, cg, *off)] * xp[(g * per_group + cg, *at)]
        y[co] += bias[co]
    return y


@pytest.mark.parametrize("seed", range(12))
def test_convolutions_and_pooling_unroll_into_the_crossbar_exactly(seed):
    from spiketwin.nir.graph import _unroll

    rng = np.random.default_rng(seed)
    d, groups = 1 + seed % 2, 1 + (seed // 2) % 2
    c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    k = rng.integers(1, 4, d)
    size = rng.integers(5, 9, d)
    stride, dilation = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    padding = "same" if seed % 3 == 0 and stride == 1 else int(rng.integers(0, 2))
    weight, bias = rng.normal(size=(c_out, c_in // groups, *k)), rng.normal(size=c_out)
    node = (nir.Conv1d if d == 1 else nir.Conv2d)(input_shape=int(size[0]) if d == 1 else tuple(size.tolist()),
                                                  weight=weight, stride=stride, padding=padding, dilation=dilation,
                                                  groups=groups, bias=bias)
    x = rng.normal(size=(c_in, *size))
    W, B, shape = _unroll(node, "c", (c_in, *size))
    want = direct_conv(x, weight, bias, stride, padding, dilation, groups)
    assert tuple(shape) == want.shape
    np.testing.assert_allclose(W @ x.ravel() + B, want.ravel(), atol=1e-12)
    kernel = int(rng.integers(1, 4))
    for kind, norm in (("SumPool2d", 1), ("AvgPool2d", kernel * kernel)):
        pool = getattr(nir, kind)(kernel_size=np.array([kernel] * 2), stride=np.array([2, 2]), padding=np.array([0, 0]))
        image = rng.normal(size=(2, 6, 7))
        W, B, shape = _unroll(pool, "p", image.shape)
        want = direct_conv(image, np.ones((2, 1, kernel, kernel)) / norm, np.zeros(2), 2, 0, 1, 2)
        np.testing.assert_allclose(W @ image.ravel() + B, want.ravel(), atol=1e-12)


def conv_graph(rng):
    """Input [1, 8, 8] -> Conv2d (4 channels, 3x3, padding 1) -> CubaLIF [4, 8, 8] -> SumPool2d 2x2 ->
    Flatten -> Affine 10 -> CubaLIF 10 -> Output, in snnTorch's convention, through a NIR file."""
    tau = DT / (1 - 0.75)
    r = 1 / (DT / tau)

    def cuba_of(shape):
        return nir.CubaLIF(tau_syn=np.full(shape, tau), tau_mem=np.full(shape, tau), r=np.full(shape, r),
                           v_leak=np.zeros(shape), v_threshold=np.full(shape, 1.0), v_reset=np.zeros(shape),
                           w_in=np.full(shape, r))

    nodes = {"in": nir.Input(input_type={"input": np.array([1, 8, 8])}),
             "conv": nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0.2, 0.6, (4, 1, 3, 3)), stride=1, padding=1,
                                dilation=1, groups=1, bias=np.full(4, 0.05)),
             "l0": cuba_of((4, 8, 8)),
             "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
             "flat": nir.Flatten(input_type={"input": np.array([4, 4, 4])}, start_dim=0),
             "fc": nir.Affine(weight=rng.normal(0.0, 0.25, (10, 64)), bias=np.zeros(10)),
             "l1": cuba_of(10),
             "out": nir.Output(output_type={"output": np.array([10])})}
    edges = [("in", "conv"), ("conv", "l0"), ("l0", "pool"), ("pool", "flat"), ("flat", "fc"), ("fc", "l1"),
             ("l1", "out")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def test_a_convolutional_graph_runs_on_the_core(tmp_path):
    rng = np.random.default_rng(2)
    nir.write(tmp_path / "conv.nir", conv_graph(rng))
    graph = nir.read(tmp_path / "conv.nir")
    net, report = import_graph(tmp_path / "conv.nir", DT, fmt=NEAREST)
    assert net.config.n_axons == 64 + 1 and net.config.n_neurons == 256 + 10      # one bias axon for the conv
    events = (rng.random((8, 30, 64)) < 0.3).astype(int)
    ref = run_graph(graph, events, DT)
    core = simulate(net.config, net, core_events(net, events))
    for name in ("l0", "l1"):
        want = ref[name] > 0
        assert 0.02 < want.mean() < 0.8
        assert (layer_spikes(net, core.spikes, name, 30) == want).mean() >= 0.99, name


def test_calibration_keeps_each_layers_best_scale_and_measures_it(tmp_path):
    """Calibration data: where the float state would saturate, wider scales are tried and the layer
    keeps the one whose spikes agree best; a readout takes the widest (no saturated state); the
    report carries the agreement, the saturation and both accuracies."""
    from spiketwin.nir import calibrate

    rng = np.random.default_rng(4)
    graph, n_in = random_graph(rng, 2, "euler")
    graph.nodes["l0"].v_threshold = graph.nodes["l0"].v_threshold * 6
    events = (rng.random((32, 30, n_in)) < 0.5).astype(int)
    labels = run_graph(graph, events, DT)["l1"].sum(1).argmax(-1)
    plain, _ = import_graph(graph, DT, fmt=NEAREST)
    net, report = calibrate(graph, events, DT, labels, fmt=NEAREST)
    cal = report.calibration
    assert set(cal["layers"]) == {"l0", "l1"} and cal["samples"] == 32
    for name, layer in cal["layers"].items():
        tried = layer["tried"]
        assert len(tried) > 1 and tried[0]["saturated_state_entries"] > tried[-1]["saturated_state_entries"] == 0
        assert layer["spike_agreement"] == max(t["spike_agreement"] for t in tried) >= 0.99, name
    assert cal["float_accuracy"] >= 0.9 and cal["twin_accuracy"] >= 0.9
    assert "calibration: spike agreement" in "\n".join(report.describe())
    json.loads(report.to_json())
    readout = graph_of({"in": nir.Input(input_type={"input": np.array([6])}),
                        "w": nir.Linear(weight=np.full((3, 6), 0.5)),
                        "l": nir.LI(tau=np.full(3, DT / (1 - 0.98)), r=np.full(3, 50.0), v_leak=np.zeros(3)),
                        "out": nir.Output(output_type={"output": np.array([3])})},
                       [("in", "w"), ("w", "l"), ("l", "out")])
    ev = np.ones((4, 60, 6), int)
    net, report = calibrate(readout, ev, DT, fmt=NEAREST)
    layer = report.calibration["layers"]["l"]
    assert layer["saturated_state_entries"] == 0
    assert net.meta["nir"]["layers"]["l"]["scale"] == layer["tried"][-1]["scale"]
    assert layer["tried"][0]["saturated_state_entries"] > 0


def graph_with_intensities(tmp_path, n, name):
    """A 2-layer graph (``g.nir``) and ``n`` samples of random intensities labelled with the float
    graph's answers under the default deterministic coding, 20 steps (``name``)."""
    from spiketwin.data import Encoding

    rng = np.random.default_rng(8)
    graph, n_in = random_graph(rng, 2, "euler")
    nir.write(tmp_path / "g.nir", graph)
    x = rng.random((n, n_in))
    labels = run_graph(graph, Encoding("deterministic", 20, 0.6).encode(x), DT)["l1"].sum(1).argmax(-1)
    np.savez(tmp_path / name, intensities=x, labels=labels)


def test_intensity_files_are_rate_coded_and_checked(tmp_path, capsys):
    from spiketwin.cli import main
    from spiketwin.data import Encoding, load_events

    x = np.random.default_rng(0).random((5, 4))
    np.savez(tmp_path / "x.npz", intensities=x, labels=np.arange(5) % 3)
    events, labels = load_events(tmp_path / "x.npz", 4, 3, Encoding("deterministic", 12, 0.5))
    assert events.shape == (5, 12, 4) and (events == Encoding("deterministic", 12, 0.5).encode(x)).all()
    with pytest.raises(ValueError, match="x.npz: holds intensities, not events: give `encoding.method`"):
        load_events(tmp_path / "x.npz", 4)
    bad = x.copy()
    bad[2, 1] = 1.5
    np.savez(tmp_path / "bad.npz", intensities=bad)
    with pytest.raises(ValueError, match=r"bad.npz: intensities\[2, 1\] = 1.5 is outside \[0, 1\]"):
        load_events(tmp_path / "bad.npz", 4, encoding=Encoding())
    np.savez(tmp_path / "ev.npz", events=np.ones((2, 3, 4), int))
    with pytest.raises(ValueError, match="holds events already; `encoding.method` is for a file of intensities"):
        load_events(tmp_path / "ev.npz", 4, encoding=Encoding())
    with pytest.raises(ValueError, match="`encoding.steps` must be a positive integer, not 0"):
        Encoding("poisson", 0)
    graph_with_intensities(tmp_path, 24, "cal.npz")
    model = tmp_path / "m.npz"
    assert main(["import-nir", str(tmp_path / "g.nir"), "--dt", "0.001", "--calibrate", str(tmp_path / "cal.npz"),
                 "--out", str(model)]) == 2
    assert "cal.npz: holds intensities, not events: give --encoding" in capsys.readouterr().err
    assert main(["import-nir", str(tmp_path / "g.nir"), "--dt", "0.001", "--calibrate", str(tmp_path / "cal.npz"),
                 "--encoding", "deterministic", "--out", str(model)]) == 0
    assert "on 24 calibration samples: float accuracy" in capsys.readouterr().out
    calibration = json.loads((tmp_path / "m.mapping.json").read_text())["calibration"]
    assert calibration["samples"] == 24 and calibration["steps"] == 20 and calibration["twin_accuracy"] >= 0.9
    assert main(["evaluate", str(model), "--data", str(tmp_path / "cal.npz"), "--encoding", "deterministic",
                 "--chips", "2", "--levels", "0", "--json", str(tmp_path / "e.json")]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["q8_8_accuracy"] == calibration["twin_accuracy"]
    assert main(["evaluate", str(model), "--data", str(tmp_path / "cal.npz"), "--max-rate", "0.3"]) == 2
    assert "--encoding-steps and --max-rate need --encoding" in capsys.readouterr().err


@pytest.mark.sim
def test_flow_takes_an_imported_network_and_your_samples(tmp_path, capsys):
    from spiketwin.cli import main

    graph_with_intensities(tmp_path, 12, "data.npz")
    model = tmp_path / "m.npz"
    assert main(["import-nir", str(tmp_path / "g.nir"), "--dt", "0.001", "--out", str(model)]) == 0
    out = tmp_path / "build"
    assert main(["flow", "--model", str(model), "--data", str(tmp_path / "data.npz"), "--encoding", "deterministic",
                 "--chips", "2", "--samples", "2", "--axons", "8", "--neurons", "8", "--lanes", "2", "--seeds", "1",
                 "--steps", "20", "--out", str(out), "--no-bitstream"]) == 0
    text = capsys.readouterr().out
    assert "== your network: a" in text and "co-simulation: 4/4 runs bit-exact -> PASS" in text
    evaluation = json.loads((out / "evaluate.json").read_text())
    assert evaluation["q8_8_accuracy"] >= 0.9 and len(evaluation["sweep"]) == 5
    model_runs = [r for r in json.loads((out / "verify.json").read_text()) if "model" in r["plot"]]
    assert len(model_runs) == 2 and min(r["spikes"] for r in model_runs) > 0
    assert (out / "plots" / "accuracy.png").stat().st_size > 0
    assert main(["flow", "--model", str(model), "--epochs", "3"]) == 2
    assert "--epochs and --dataset train a network; --model brings one" in capsys.readouterr().err
    assert main(["flow", "--data", str(tmp_path / "data.npz")]) == 2
    assert "--data is for a network of your own: give --model" in capsys.readouterr().err


@pytest.mark.board
def test_an_imported_graph_builds_into_a_bitstream(tmp_path):
    """build --model takes an imported network as any other: baked into the ULX3S's block RAM."""
    from spiketwin.cli import main

    rng = np.random.default_rng(7)
    graph, _ = random_graph(rng, 2, "euler")
    nir.write(tmp_path / "g.nir", graph)
    model = tmp_path / "m.npz"
    assert main(["import-nir", str(tmp_path / "g.nir"), "--dt", "0.001", "--out", str(model)]) == 0
    assert main(["build", "--board", "ulx3s-12f", "--model", str(model), "--out", str(tmp_path / "b")]) == 0
    report = json.loads((tmp_path / "b" / "ulx3s-12f" / "spiketwin-report.json").read_text())
    net = Network.load(model)
    assert report["core"]["baked"] and report["core"]["config_hash"] == net.config.config_hash()
    assert report["core_clock"]["pass"] and (tmp_path / "b" / "ulx3s-12f" / "spiketwin.bit").stat().st_size > 0
