import struct

import numpy as np
import pytest

from spiketwin import CoreConfig, Network, simulate
from spiketwin.config import Region
from spiketwin.host import network_writes
from spiketwin.link.board import BoardModel, ModelPort
from spiketwin.link.client import Link
from spiketwin.link.protocol import (
    END,
    ESC,
    MAX_FRAME,
    FrameDecoder,
    LinkError,
    Opcode,
    Status,
    _runs,
    crc16,
    encode_frame,
    fill_payload,
    request,
    request_content,
    run_payloads,
    seal,
    write_payload,
    write_requests,
)
from spiketwin.twin import admit_events


def nack(status):
    return encode_frame(seal(bytes([0xFF, status])))


def test_crc_and_slip_framing_round_trip():
    assert crc16(b"123456789") == 0xD64E                    # the CRC-16/GENIBUS check value
    payload = bytes([END, ESC, 0x00, END, 0xDC, 0xDD, ESC])
    frame = request(Opcode.WRITE, payload)
    assert frame.count(END) == 1 and frame[-1] == END     # specials are escaped, END only closes
    [(content, status)] = list(FrameDecoder().feed(frame))
    assert status == Status.OK and content == bytes([Opcode.WRITE, 0, len(payload)]) + payload


@pytest.mark.parametrize("zeros", range(1, 9))
def test_trailing_zeros_never_pass_the_crc(zeros):
    """Protocol 1.0's class of undetected errors: an END hit by noise became 0x00 and the zeros after
    it kept a CRC without final XOR at remainder 0. The final XOR and the length field both refuse it."""
    rng = np.random.default_rng(zeros)
    for _ in range(200):
        content = seal(request_content(Opcode.READ, rng.integers(0, 256, 4 * rng.integers(0, 5)).tobytes()))
        [(_, status)] = list(FrameDecoder().feed(encode_frame(content + bytes(zeros))))
        assert status == Status.BAD_CRC
        board = BoardModel(CoreConfig(4, 8))
        assert board.receive(encode_frame(content + bytes(zeros))) == nack(Status.BAD_CRC)


def test_a_length_field_that_disagrees_with_the_frame_is_refused():
    board = BoardModel(CoreConfig(4, 8))
    for length in (0, 3, 5, 0xFFFF):
        frame = encode_frame(seal(bytes([Opcode.READ]) + length.to_bytes(2, "big") + bytes(4)))
        assert board.receive(frame) == nack(Status.BAD_LENGTH)
    assert board.receive(encode_frame(seal(bytes([Opcode.READ, 0])))) == nack(Status.BAD_LENGTH)
    assert board.receive(request(Opcode.READ, bytes(4)))[:2] == bytes([Opcode.READ | 0x80, 0])


@pytest.mark.parametrize("wire, status", [
    (request(Opcode.IDENTIFY)[:1] + bytes([0x55]) + request(Opcode.IDENTIFY)[2:], Status.BAD_CRC),
    (bytes([0x01, 0x02, END]), Status.BAD_LENGTH),
    (bytes([0x01, ESC, 0x05, 0x00, 0x00, END]), Status.BAD_ESCAPE),
    (bytes(MAX_FRAME + 1) + bytes([END]), Status.TOO_LONG),
    (request(0x33), Status.UNKNOWN_OPCODE),
    (request(Opcode.NACK), Status.UNKNOWN_OPCODE),
    (request(Opcode.WRITE, bytes(7)), Status.BAD_LENGTH),
    (request(Opcode.WRITE, bytes(3)), Status.BAD_LENGTH),                         # no address
    (request(Opcode.FILL, bytes(7)), Status.BAD_LENGTH),
    (request(Opcode.FILL, bytes(10)), Status.BAD_LENGTH),
    (encode_frame(seal(bytes([Opcode.RESET, 0, 1]))), Status.BAD_LENGTH),        # the length field says 1
    (request(Opcode.READ, bytes(3)), Status.BAD_LENGTH),
    (request(Opcode.RUN, b"\x00\x02\x01\x00\x03"), Status.BAD_LENGTH),          # the second step is missing
    (request(Opcode.RUN, b"\x00\x01\x01\x00\x03\x07"), Status.BAD_LENGTH),      # a trailing byte
    (request(Opcode.ERRORS), Status.BAD_LENGTH),
])
def test_refused_frames_get_a_nack_and_change_nothing(wire, status):
    config = CoreConfig(4, 8)
    board = BoardModel(config, Network.random(config, 0))
    before = board.core.network.weights.copy()
    assert board.receive(wire) == nack(status)
    assert (board.core.network.weights == before).all() and board.core.errors == 0
    assert board.receive(bytes([END, END])) == b""        # empty frames are ignored
    assert board.receive(request(Opcode.RESET)).startswith(bytes([Opcode.RESET | 0x80, 0]))   # and it resynchronised


def test_link_drives_the_board_model_exactly_as_the_twin():
    config = CoreConfig(8, 16, lanes=2, max_axon_events=5)
    net = Network.random(config, 3)
    link = Link(ModelPort(BoardModel(config)))
    assert link.check(config)["n_neurons"] == 16
    with pytest.raises(LinkError, match="is not the expected one"):
        link.check(CoreConfig(8, 32))
    link.load(net)
    assert link.read([a for a, _ in network_writes(net)]) == [w for _, w in network_writes(net)]
    rng = np.random.default_rng(0)
    sequences = [rng.integers(0, 10, size=rng.integers(0, 8)).tolist() for _ in range(200)]
    spikes = link.run(sequences, config.n_neurons)
    events, flags = admit_events(config, sequences)
    ref = simulate(config, net, events)
    assert (spikes == ref.spikes).all() and spikes.sum() > 50
    assert link.errors(clear=True) == flags and link.errors() == 0
    v, _ = link.read_state(config)
    assert (v["v"] == ref.state.v).all()
    link.reset()
    assert (link.read_state(config)[0]["v"] == 0).all()


def test_a_board_without_a_network_holds_zeros_as_the_gateware_does():
    for model in ("lif", "dpi"):
        config = CoreConfig(4, 8, model=model)
        link = Link(ModelPort(BoardModel(config)))
        every_word = [a for a, _ in network_writes(config.neuron_model.network.zeros(config))]
        assert set(link.read(every_word)) == {0}


def test_writes_go_in_runs_of_consecutive_addresses_and_long_equal_runs_as_fills():
    pairs = [(10, 1), (11, 2), (12, 3), (40, 4), (41, 5), (7, 6)]
    assert list(_runs(pairs)) == [(10, [1, 2, 3]), (40, [4, 5]), (7, [6])]
    words = [3, 0, 0, 0] + [0] * 10 + [5, 6] + [9] * 8 + [1]
    got = [(op, payload, n) for op, payload, n in write_requests(list(enumerate(words, start=100)))]
    assert got == [(Opcode.WRITE, write_payload(100, [3]), 1), (Opcode.FILL, fill_payload(101, 13, 0), 13),
                   (Opcode.WRITE, write_payload(114, [5, 6]), 2), (Opcode.FILL, fill_payload(116, 8, 9), 8),
                   (Opcode.WRITE, write_payload(124, [1]), 1)]
    long = list(write_requests([(a, a % 7) for a in range(600)]))
    assert [n for *_, n in long] == [251, 251, 98] and all(op == Opcode.WRITE for op, *_ in long)
    sent = []
    port = ModelPort(BoardModel(CoreConfig(4, 8)))
    write = port.write
    port.write = lambda data: sent.append(data) or write(data)
    Link(port).load(Network.random(CoreConfig(4, 8), 1))
    assert len(sent) == len(list(write_requests(network_writes(Network.random(CoreConfig(4, 8), 1)))))


def test_run_requests_are_split_to_fit_a_frame():
    sequences = [[1, 2, 3]] * 300
    payloads = run_payloads(sequences)
    assert len(payloads) > 1 and all(len(p) + 5 <= MAX_FRAME for p in payloads)
    assert sum(struct.unpack(">H", p[:2])[0] for p in payloads) == 300
    with pytest.raises(ValueError, match="step 1 has 256 events"):
        run_payloads([[0], [0] * 256])


def exchange(config, net):
    """Chunks of bytes for the board and how many replies each should get."""
    rng = np.random.default_rng(7)
    chunks = [request(Opcode.IDENTIFY)]
    writes = network_writes(net)
    chunks += [request(op, payload) for op, payload, _ in write_requests(writes)]
    assert {op for op, _, _ in write_requests(writes)} == {Opcode.WRITE, Opcode.FILL}
    chunks.append(request(Opcode.FILL, fill_payload(config.address(Region.BIAS, 3), 9, 0x1234)))   # past the region
    chunks.append(request(Opcode.FILL, fill_payload((1 << 32) - 3, 5, 0x0042)))                    # wraps
    chunks.append(request(Opcode.FILL, fill_payload(config.address(Region.LEAK), 0, 7)))            # nothing
    chunks.append(request(Opcode.WRITE, write_payload(config.address(Region.V), [1, 2, 3])))
    chunks.append(request(Opcode.WRITE, write_payload(config.address(Region.THRESHOLD, config.n_neurons - 1),
                                                      [7, 9])))                       # runs off the region
    chunks.append(request(Opcode.WRITE, write_payload((1 << 32) - 1, [5, 6])))       # wraps at 32 bits
    bad_addr = config.address(Region.THRESHOLD, config.n_neurons)
    reads = [a for a, _ in writes[::7]] + [bad_addr, 1 << 31, config.address(Region.CONTROL)]
    chunks.append(request(Opcode.READ, b"".join(struct.pack(">I", a) for a in reads)))
    chunks.append(request(Opcode.ERRORS, b"\x01"))
    for _ in range(3):
        sequences = [rng.integers(0, config.n_axons + 2, size=rng.integers(0, 9)).tolist() for _ in range(12)]
        sequences[3] = [65535, 0, 1]
        chunks += [request(Opcode.RUN, p) for p in run_payloads(sequences)]
    chunks.append(request(Opcode.ERRORS, b"\x00"))
    chunks.append(request(Opcode.ERRORS, b"\x01"))
    chunks.append(request(Opcode.READ, b"".join(struct.pack(">I", config.address(Region.V, j))
                                                for j in range(config.n_neurons))))
    chunks.append(request(Opcode.RESET))
    chunks.append(request(Opcode.RUN, b"\x00\x00"))
    chunks.append(request(Opcode.RUN, b"\x00\x02\x01\x00\x01\x00"))
    good = request(Opcode.IDENTIFY)
    chunks += [good[:1] + bytes([good[1] ^ 0x10]) + good[2:],            # bad CRC
               good[:-3] + bytes([END]),                                 # truncated
               bytes([0x03, ESC, 0x42, 0x00, END]),                      # bad escape
               bytes([0x02]) * (MAX_FRAME + 5) + bytes([END]),           # too long
               request(0x42), request(Opcode.WRITE, bytes(5)),           # unknown opcode, bad length
               encode_frame(seal(bytes([Opcode.IDENTIFY, 0, 2]))),       # the length field disagrees
               encode_frame(seal(bytes([Opcode.READ, 0]))),              # no room for a length field
               encode_frame(seal(request_content(Opcode.READ, bytes(4))) + bytes(4)),   # padded with zeros
               request(Opcode.RUN, b"\x00\x03\x01\x00\x01"),             # steps missing
               bytes([END, END]),                                        # empty: no reply
               request(Opcode.READ, struct.pack(">I", config.address(Region.V, 2)))]
    board = BoardModel(config)
    replies = [board.receive(ch).count(END) for ch in chunks]
    return chunks, replies


@pytest.mark.sim
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_linked_core_answers_byte_for_byte_as_the_board_model(tmp_path, sim):
    from spiketwin.sim.cosim import build_link, run_link

    config = CoreConfig(8, 16, lanes=2, max_axon_events=6)
    net = Network.random(config, 5)
    chunks, replies = exchange(config, net)
    runner = build_link(config, sim, tmp_path / "build")
    got = run_link(runner, sim, tmp_path / "run", chunks, replies)
    want = BoardModel(config).receive(b"".join(chunks))
    assert got.count(END) == want.count(END) == sum(replies)
    frames_got, frames_want = got.split(bytes([END])), want.split(bytes([END]))
    for i, (g, w) in enumerate(zip(frames_got, frames_want, strict=True)):
        assert g == w, f"reply {i}: board {g.hex()} != model {w.hex()}"
    assert b"\xff\x01" in want and b"\xff\x04" in want          # the corrupt frames were really refused
    assert want.count(b"\xff\x03") == 4 and want.count(b"\xff\x01") == 3      # lengths; CRCs (padding too)


def test_identify_is_built_and_parsed_by_one_pair():
    from spiketwin.link.protocol import VERSION, identify_payload, parse_identify

    config = CoreConfig(300, 64, lanes=8)
    ident = parse_identify(identify_payload(config))
    assert ident == {"version": VERSION, "config_hash": config.config_hash(), "n_axons": 300, "n_neurons": 64,
                     "lanes": 8, "max_frame": MAX_FRAME}
    assert Link(ModelPort(BoardModel(config))).check(config) == ident
    with pytest.raises(LinkError, match="an IDENTIFY reply carries 17 bytes, not 16"):
        parse_identify(identify_payload(config)[:-1])


def test_host_refuses_a_board_of_another_protocol_version(monkeypatch):
    from spiketwin.link import board as board_model
    from spiketwin.link import client, protocol

    config = CoreConfig(4, 4)
    board = BoardModel(config)
    monkeypatch.setattr(protocol, "VERSION", (2, 0))      # what a newer board would say
    payload = protocol.identify_payload(config)
    monkeypatch.setattr(client, "VERSION", (1, 0))
    monkeypatch.setattr(board_model, "identify_payload", lambda c: payload)
    with pytest.raises(LinkError, match=r"the board speaks link protocol 2\.0, this host 1\.0: rebuild the bitstream"):
        Link(ModelPort(board)).check(config)


@pytest.mark.parametrize("kwargs, problem", [
    ({"n_axons": 4, "n_neurons": 4, "fmt": "Q12.8"}, "words of 20 bits are wider than the link's 16-bit words"),
    ({"n_axons": 4, "n_neurons": 512, "lanes": 256}, "256 lanes do not fit IDENTIFY's 8-bit lane count"),
    ({"n_axons": 16000, "n_neurons": 16000}, "addresses of 34 bits are wider than the link's 32-bit addresses"),
])
def test_linked_core_refuses_a_core_the_link_cannot_carry(kwargs, problem):
    from spiketwin.fixedpoint import QFormat
    from spiketwin.hw.link import LinkedCore

    if kwargs.get("fmt") == "Q12.8":
        kwargs["fmt"] = QFormat(12, 8)
    with pytest.raises(ValueError) as e:
        LinkedCore(CoreConfig(**kwargs))
    assert str(e.value) == f"The host link cannot carry this core: {problem}"



def test_fuzzed_frames_are_refused_or_executed_as_sent_and_damaged_files_refused(tmp_path):
    """A small run of bench/faults.py's fuzz (its figures come from the bench): no frame of any
    fault class is executed other than as sent, the board model never stops answering, and every
    mutated network file is refused in one line."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("faults", Path(__file__).parents[1] / "bench" / "faults.py")
    faults = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(faults)
    tally = faults.fuzz_model(4000, seed=3)
    assert tally["tried"] == 4000 and min(tally["by_fault"].values()) == 500
    assert tally["executed_otherwise"] == 0 and tally["hangs"] == 0 and tally["readback_mismatches"] == 0
    assert tally["refused"] > 3000 and tally["executed_as_sent"] > 300
    files = faults.mutate_files(120, seed=3, tmp=tmp_path)
    assert files["refused"] == files["changed"] == 120 and files["refused_multiline"] == 0


def test_link_drops_stale_input_and_checks_each_reply_against_its_request():
    config = CoreConfig(4, 8)
    port = ModelPort(BoardModel(config, Network.random(config, 0)))
    link = Link(port)
    # a late reply left in the input (a stalled board that resumed) is not read as the next answer
    port._out += request(Opcode.RUN, b"\x00\x00")[:-1] + bytes([END])
    assert link.identify()["n_neurons"] == 8
    # a board answering a READ of 3 addresses with 2 words is caught
    real = port.board.receive

    def short_reads(data):
        out = real(data)
        frames = [c for c, _ in FrameDecoder().feed(out)]
        if frames and frames[0][0] == Opcode.READ | 0x80:
            return encode_frame(seal(frames[0][:-2]))
        return out

    port.board.receive = short_reads
    with pytest.raises(LinkError, match="^the board answered READ with 4 bytes, not the 6 of 3 words$"):
        link.read([0, 1, 2])


def test_a_board_of_protocol_1_is_refused_by_name():
    """A protocol 1.0 bitstream checks requests with CRC-16/CCITT-FALSE (no final XOR), so it
    refuses ours as BAD_CRC, and seals that NACK with its own CRC: the host says which it is."""
    def ccitt_false(data: bytes) -> int:
        return crc16(data) ^ 0xFFFF

    class OldBoard:
        def __init__(self):
            self.out = bytearray()

        def write(self, data):
            nack = bytes([0xFF, Status.BAD_CRC])
            self.out += encode_frame(nack + ccitt_false(nack).to_bytes(2, "big"))
            return len(data)

        def read(self, n=1):
            data, self.out[:] = bytes(self.out[:n]), self.out[n:]
            return data

    with pytest.raises(LinkError, match=r"^the board speaks link protocol 1 \(its replies carry CRC-16/CCITT-FALSE\), "
                                        r"this host 2.0: rebuild its bitstream with this spiketwin$"):
        Link(OldBoard()).check(CoreConfig(4, 8))
