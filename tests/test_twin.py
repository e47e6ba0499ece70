import io
import json
import pickle

import numpy as np
import pytest

from spiketwin import CoreConfig, Network, simulate
from spiketwin.config import ErrorFlag
from spiketwin.fixedpoint import Q8_8, QFormat
from spiketwin.twin import NetworkFileError, State, admit_events


def golden(config, net, events, steps):
    """A plain, one-neuron-at-a-time reading of the LIF step in docs/models.md with Python integers."""
    fmt = config.fmt
    lo, hi = fmt.min_raw, fmt.max_raw

    def sat(x):
        return max(lo, min(hi, x))

    def mul(a, b):
        p = a * b
        p += fmt.round_bias(p < 0)
        return sat(p >> fmt.frac_bits)

    n = config.n_neurons
    v, isyn, ref, prev = [0] * n, [0] * n, [0] * n, [False] * n
    W = net.weights.tolist()
    out = []
    for t in range(steps):
        fired = [False] * n
        for j in range(n):
            acc = sum(int(events[t][a]) * W[a][j] for a in range(config.n_axons))
            acc += sum(W[config.n_axons + k][j] for k in range(n) if prev[k])
            isyn[j] = sat(mul(int(net.syn_decay[j]), isyn[j]) + acc)
            if ref[j]:
                ref[j] -= 1
                continue
            vj = sat(mul(int(net.leak[j]), v[j]) + isyn[j] + int(net.bias[j]))
            if vj >= net.threshold[j]:
                fired[j] = True
                vj = sat(vj - int(net.threshold[j])) if net.reset_mode[j] == 0 else int(net.v_reset[j])
                ref[j] = int(net.refractory[j])
            v[j] = vj
        prev = fired
        out.append(fired)
    return np.array(out), np.array(v), np.array(isyn), np.array(ref)


@pytest.mark.parametrize("rounding", ["trunc", "floor", "nearest"])
@pytest.mark.parametrize("seed", range(3))
def test_vectorised_twin_matches_golden_model(seed, rounding):
    config = CoreConfig(12, 20, fmt=QFormat(8, 8, rounding=rounding), lanes=4)
    net = Network.random(config, seed)
    events = np.random.default_rng(seed).poisson(0.4, size=(60, config.n_axons))
    events[events.sum(1) > config.max_axon_events] = 0
    spikes, v, isyn, ref = golden(config, net, events, 60)
    r = simulate(config, net, events)
    assert (r.spikes == spikes).all()
    assert (r.state.v == v).all() and (r.state.i_syn == isyn).all() and (r.state.ref_count == ref).all()
    assert spikes.any() and not spikes.all()


def one_neuron(**params):
    config = CoreConfig(1, 1, max_axon_events=4)
    net = Network.zeros(config)
    for k, val in params.items():
        getattr(net, k)[...] = val
    return config, net


def test_bias_integrates_and_subtract_reset_keeps_the_remainder():
    config, net = one_neuron(bias=100, threshold=256, leak=256)
    r = simulate(config, net, np.zeros((6, 1), np.int64), record=True)
    assert r.v[:, 0].tolist() == [100, 200, 44, 144, 244, 88]
    assert r.spikes[:, 0].tolist() == [False, False, True, False, False, True]


def test_reset_to_value_and_refractory_hold():
    config, net = one_neuron(bias=300, threshold=256, leak=256, reset_mode=1, v_reset=-10, refractory=2)
    r = simulate(config, net, np.zeros((7, 1), np.int64), record=True)
    assert r.spikes[:, 0].tolist() == [True, False, False, True, False, False, True]
    assert r.v[:, 0].tolist() == [-10, -10, -10, -10, -10, -10, -10]
    assert r.state.ref_count.tolist() == [2]


def test_synaptic_current_decays_with_alpha_and_counts_multiply():
    config, net = one_neuron(threshold=32767, syn_decay=128, leak=0)
    net.weights[0, 0] = 64
    events = np.array([[3], [0], [0]])
    r = simulate(config, net, events, record=True)
    assert r.i_syn[:, 0].tolist() == [192, 96, 48]


def test_saturation_never_wraps():
    config, net = one_neuron(bias=-20000, threshold=32767, leak=256)
    r = simulate(config, net, np.zeros((3, 1), np.int64), record=True)
    assert r.v[:, 0].tolist() == [-20000, -32768, -32768]
    # Upward: 20000 + 20000 saturates to 32767, which reaches the maximal threshold and fires.
    config, net = one_neuron(bias=20000, threshold=32767, leak=256)
    r = simulate(config, net, np.zeros((3, 1), np.int64), record=True)
    assert r.spikes[:, 0].tolist() == [False, True, False]
    assert r.v[:, 0].tolist() == [20000, 0, 20000]


def test_recurrent_spike_arrives_one_step_later():
    config = CoreConfig(1, 2)
    net = Network.zeros(config)
    net.leak[:] = 0
    net.threshold[:] = 256
    net.weights[0, 0] = 256          # axon -> neuron 0
    net.weights[1 + 0, 1] = 256      # neuron 0 -> neuron 1
    r = simulate(config, net, np.array([[1], [0], [0]]))
    assert r.spikes.tolist() == [[True, False], [False, True], [False, False]]


def test_batch_equals_per_sample_runs_and_state_continues():
    config = CoreConfig(8, 16, lanes=2)
    net = Network.random(config, 5)
    ev = np.random.default_rng(1).poisson(0.3, (4, 30, 8))
    ev[ev.sum(-1) > 8] = 0
    batched = simulate(config, net, ev)
    for b in range(4):
        single = simulate(config, net, ev[b])
        assert (single.spikes == batched.spikes[b]).all()
        assert (single.state.v == batched.state.v[b]).all()
    first = simulate(config, net, ev[0, :10])
    rest = simulate(config, net, ev[0, 10:], state=first.state)
    assert (np.concatenate([first.spikes, rest.spikes]) == batched.spikes[0]).all()


def test_admit_events_models_the_drops():
    config = CoreConfig(4, 4, max_axon_events=3)
    counts, flags = admit_events(config, [[0, 0, 7, 1, 2, 3], [3]])
    assert counts.tolist() == [[2, 1, 0, 0], [0, 0, 0, 1]]
    assert flags == ErrorFlag.BAD_AXON | ErrorFlag.EVENT_OVERFLOW


@pytest.mark.parametrize("events, message", [
    (np.zeros((5, 3), np.int64), r"events must have shape \[steps, 4\]"),
    (np.full((5, 4), 0.5), "events must be integer event counts"),
    (-np.ones((5, 4), np.int64), r"events\(0, 0\) is negative"),
    (np.full((5, 4), 2), r"step \(0,\) has 8 axon events, more than max_axon_events=4"),
])
def test_bad_events_refused(events, message):
    config = CoreConfig(4, 4)
    with pytest.raises(ValueError, match=message):
        simulate(config, Network.zeros(config), events)


def test_network_file_roundtrip(tmp_path):
    config = CoreConfig(6, 8, lanes=2)
    net = Network.random(config, 3)
    path = net.save(tmp_path / "net.npz")
    back = Network.load(path)
    assert back.config == config
    for name in net.array_names:
        assert (getattr(back, name) == getattr(net, name)).all()


def _write(tmp_path, **overrides):
    config = CoreConfig(4, 4)
    net = Network.random(config, 0)
    arrays = {name: getattr(net, name) for name in net.array_names}
    arrays.update(config=json.dumps(config.to_dict()), format_version=1)
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(tmp_path / "bad.npz", **arrays)
    return tmp_path / "bad.npz"


@pytest.mark.parametrize("override, message", [
    ({"bias": None}, "missing the array 'bias'"),
    ({"leak": np.array([0, 256, 257, 3])}, r"leak\[\(2,\)\] = 257 is outside \[0, 256\]"),
    ({"weights": np.zeros((7, 4), np.int64)}, r"weights: shape \(7, 4\) does not match the core, expected \(8, 4\)"),
    ({"threshold": np.array([1.0, 2.5, 3.0, 4.0])}, r"threshold\[\(1,\)\] = 2.5 is not an integer raw value"),
    ({"refractory": np.array([0, 0, 0, 256])}, r"refractory\[\(3,\)\] = 256 is outside \[0, 255\]"),
    ({"reset_mode": np.array([0, 2, 0, 0])}, r"reset_mode\[\(1,\)\] = 2 is outside \[0, 1\]"),
    ({"format_version": 9}, "format_version 9 is not supported"),
    ({"config": None}, "missing the array 'config'"),
    ({"weights": np.full((8, 4), 2**64 - 1, np.uint64)},
     r"weights: dtype uint64 is unsigned, but the field is signed \(\[-32768, 32767\]\)"),
    ({"leak": np.array([0, 2**63, 0, 0], np.uint64)}, r"leak\[\(1,\)\] = 9223372036854775808 is outside \[0, 256\]"),
    ({"reset_mode": np.array([True, False, True, True])}, "reset_mode: dtype bool is not an integer type"),
    ({"threshold": np.array([1.0, np.inf, 3.0, 4.0])}, r"threshold\[\(1,\)\] = inf is not an integer raw value"),
    ({"format_version": np.array([1, 1])}, r"format_version must be a single integer, not an array of int64 \(2,\)"),
    ({"meta": json.dumps({"outputs": [0, 4]})}, "meta.outputs names neuron 4, but the core has 4 neurons"),
    ({"meta": json.dumps({"outputs": [1, 1]})}, r"meta.outputs names a neuron twice: \[1, 1\]"),
    ({"meta": json.dumps({"encoding": {"method": "morse"}})}, "meta.encoding must name a method of"),
    ({"meta": json.dumps({"encoding": {"method": "poisson", "steps": 0}})},
     "meta.encoding.steps must be a positive integer, not 0"),
])
def test_bad_network_files_refused_naming_field_and_index(tmp_path, override, message):
    with pytest.raises(NetworkFileError, match=message):
        Network.load(_write(tmp_path, **override))


def test_unsigned_arrays_load_only_where_the_field_is_unsigned_and_the_values_fit(tmp_path):
    net = Network.load(_write(tmp_path, refractory=np.array([0, 3, 255, 1], np.uint8)))
    assert net.refractory.dtype == np.int64 and net.refractory.tolist() == [0, 3, 255, 1]


def test_a_changed_or_damaged_network_file_is_refused_in_one_line(tmp_path):
    """Version 2 files carry a checksum: a byte overwritten inside a value's range is found, and a
    truncated, emptied or foreign file is one line naming it (no numpy or zipfile traceback)."""
    import zipfile

    net = Network.random(CoreConfig(4, 4), 0)
    path = net.save(tmp_path / "net.npz")
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    weights = np.load(path)["weights"].copy()
    weights[0, 0] ^= 1                                      # still in range: only the checksum can tell
    changed = tmp_path / "changed.npz"
    with zipfile.ZipFile(changed, "w") as z:
        for n, data in members.items():
            if n == "weights.npy":
                buf = io.BytesIO()
                np.save(buf, weights)
                data = buf.getvalue()
            z.writestr(n, data)
    with pytest.raises(NetworkFileError, match=r"changed.npz: the checksum does not match the contents"):
        Network.load(changed)
    raw = path.read_bytes()
    with zipfile.ZipFile(path) as z:
        crc_at = z.getinfo("weights.npy").header_offset + 14               # the local header's CRC-32
    local = raw[:crc_at] + bytes(4) + raw[crc_at + 4:]                    # which a zip reader ignores
    for name, data in {"truncated": raw[:len(raw) // 2], "empty": b"", "noise": bytes(range(256)) * 4,
                       "pickle": pickle.dumps({"weights": 1}), "local": local, "appended": raw + b"\x00"}.items():
        (tmp_path / f"{name}.npz").write_bytes(data)
        with pytest.raises(NetworkFileError, match=rf"^{tmp_path / name}\.npz: not a readable network file") as e:
            Network.load(tmp_path / f"{name}.npz")
        assert "\n" not in str(e.value) and "allow_pickle" not in str(e.value)


def test_weights_outside_the_format_refused():
    config = CoreConfig(2, 2)
    w = np.zeros((4, 2), np.int64)
    w[3, 1] = 40000
    z = np.zeros(2, np.int64)
    with pytest.raises(NetworkFileError, match=r"weights\[\(3, 1\)\] = 40000 is outside \[-32768, 32767\]"):
        Network(config, w, z, z, z, z, z, z, z)


def test_state_zeros_shape():
    s = State.zeros(CoreConfig(2, 6), (3,))
    assert s.v.shape == (3, 6) and s.spikes.dtype == bool
    assert Q8_8.one == 256


def test_random_networks_cover_the_corners_the_cosimulation_needs():
    config = CoreConfig(64, 64)
    net = Network.random(config, 0)
    fmt = config.fmt
    assert (net.weights < 0).any() and (net.weights > 0).any()
    assert (net.weights[config.n_axons:] != 0).any()                  # recurrent synapses
    assert set(net.reset_mode.tolist()) == {0, 1}
    assert net.refractory.max() > 0 and net.refractory.min() == 0
    r = simulate(config, net, np.random.default_rng(0).poisson(0.1, (200, 64)), record=True)
    assert {fmt.max_raw, fmt.min_raw} <= set(np.unique(r.v)) and {fmt.max_raw, fmt.min_raw} <= set(np.unique(r.i_syn))


def _rewritten(path, out, members: dict, compression=None):
    """``path``'s archive with ``members`` (name -> .npy bytes, or an array) put in place of its own."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        kept = {n: z.read(n) for n in z.namelist()}
    for name, value in members.items():
        if not isinstance(value, bytes):
            buf = io.BytesIO()
            np.save(buf, value)
            value = buf.getvalue()
        kept[f"{name}.npy"] = value
    with zipfile.ZipFile(out, "w", compression or zipfile.ZIP_STORED) as z:
        for name, data in kept.items():
            z.writestr(name, data)
    return out


@pytest.mark.parametrize("shape", [(2 ** 40,), (2 ** 20, 2 ** 20), (4, 8)])
def test_a_header_claiming_another_size_is_refused_before_anything_is_allocated(tmp_path, shape):
    """A member's .npy header that claims 2**40 int64 (8 TiB), or a shape that is not the core's,
    is refused in one line naming the file: nothing is allocated from it (no MemoryError)."""
    import zipfile

    path = Network.random(CoreConfig(4, 4), 0).save(tmp_path / "net.npz")
    with zipfile.ZipFile(path) as z:
        stored = z.read("weights.npy")
    data = stored[stored.index(b"\n") + 1:]                 # the weights' bytes after their header
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "<i8", "fortran_order": False, "shape": shape})
    bad = _rewritten(path, tmp_path / "huge.npz", {"weights": head.getvalue() + data})
    with pytest.raises(NetworkFileError, match=r"huge.npz: ") as e:
        Network.load(bad)
    wanted = "claims" if shape != (4, 8) else r"weights: shape (4, 8) does not match the core, expected (8, 4)"
    assert wanted in str(e.value) and "\n" not in str(e.value)


def test_a_compressed_member_claiming_terabytes_is_refused(tmp_path):
    """A deflated member whose directory and local header claim 4 GiB behind a few hundred bytes."""
    import struct
    import zipfile

    path = Network.random(CoreConfig(4, 4), 0).save(tmp_path / "net.npz")
    deflated = _rewritten(path, tmp_path / "deflated.npz", {}, zipfile.ZIP_DEFLATED)
    assert Network.load(deflated).weights.shape == (8, 4)
    raw = bytearray(deflated.read_bytes())
    with zipfile.ZipFile(deflated) as z:
        info = z.getinfo("weights.npy")
    entry = raw.index(b"PK\x01\x02")                              # the central entries, in turn
    while raw[entry + 46:entry + 46 + len(b"weights.npy")] != b"weights.npy":
        entry = raw.index(b"PK\x01\x02", entry + 4)
    struct.pack_into("<L", raw, entry + 24, 0xFFFFFFF0)             # its uncompressed size
    struct.pack_into("<L", raw, info.header_offset + 22, 0xFFFFFFF0)   # and the local header's
    (tmp_path / "bomb.npz").write_bytes(bytes(raw))
    with pytest.raises(NetworkFileError, match=r"bomb.npz: not a readable network file \(weights.npy: \d+ "
                                               r"compressed bytes cannot hold 4294967280\)"):
        Network.load(tmp_path / "bomb.npz")


def test_a_downgraded_version_does_not_switch_the_checksum_off(tmp_path):
    """format_version rewritten to 1 with the stale checksum still in the file: the checksum is
    checked all the same (a version 1 file has no checksum member)."""
    net = Network.random(CoreConfig(4, 4), 0)
    path = net.save(tmp_path / "net.npz")
    weights = np.load(path)["weights"].copy()
    weights[1, 2] ^= 1
    bad = _rewritten(path, tmp_path / "down.npz", {"weights": weights, "format_version": np.array(1)})
    with pytest.raises(NetworkFileError, match=r"down.npz: the checksum does not match the contents"):
        Network.load(bad)
    with pytest.raises(NetworkFileError, match=r"down2.npz: the checksum does not match the contents"):
        Network.load(_rewritten(bad, tmp_path / "down2.npz", {"format_version": np.array(2)}))
