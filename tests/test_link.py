import struct

import numpy as np
import pytest

from spiketwin import CoreConfig, Network, simulate
from spiketwin.config import Region
from spiketwin.host import network_writes
from spiketwin.link import (
    END,
    ESC,
    MAX_FRAME,
    BoardModel,
    FrameDecoder,
    Link,
    LinkError,
    ModelPort,
    Opcode,
    Status,
    crc16,
    encode_frame,
    request,
    run_payloads,
)
from spiketwin.twin import admit_events


def nack(status):
    content = bytes([0xFF, status])
    return encode_frame(content + struct.pack(">H", crc16(content)))


def test_crc_and_slip_framing_round_trip():
    assert crc16(b"123456789") == 0x29B1                    # the CRC-16/CCITT-FALSE check value
    payload = bytes([END, ESC, 0x00, END, 0xDC, 0xDD, ESC])
    frame = request(Opcode.WRITE, payload)
    assert frame.count(END) == 1 and frame[-1] == END     # specials are escaped, END only closes
    [(content, status)] = list(FrameDecoder().feed(frame))
    assert status == Status.OK and content == bytes([Opcode.WRITE]) + payload


@pytest.mark.parametrize("wire, status", [
    (request(Opcode.IDENTIFY)[:1] + bytes([0x55]) + request(Opcode.IDENTIFY)[2:], Status.BAD_CRC),
    (bytes([0x01, 0x02, END]), Status.BAD_LENGTH),
    (bytes([0x01, ESC, 0x05, 0x00, 0x00, END]), Status.BAD_ESCAPE),
    (bytes(MAX_FRAME + 1) + bytes([END]), Status.TOO_LONG),
    (request(0x33), Status.UNKNOWN_OPCODE),
    (request(Opcode.NACK), Status.UNKNOWN_OPCODE),
    (request(Opcode.WRITE, bytes(7)), Status.BAD_LENGTH),
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


def test_run_requests_are_split_to_fit_a_frame():
    sequences = [[1, 2, 3]] * 300
    payloads = run_payloads(sequences)
    assert len(payloads) > 1 and all(len(p) + 3 <= MAX_FRAME for p in payloads)
    assert sum(struct.unpack(">H", p[:2])[0] for p in payloads) == 300
    with pytest.raises(ValueError, match="step 1 has 256 events"):
        run_payloads([[0], [0] * 256])


def exchange(config, net):
    """Chunks of bytes for the board and how many replies each should get."""
    rng = np.random.default_rng(7)
    chunks = [request(Opcode.IDENTIFY)]
    writes = network_writes(net)
    for i in range(0, len(writes), 84):
        chunks.append(request(Opcode.WRITE, b"".join(struct.pack(">IH", a, w) for a, w in writes[i:i + 84])))
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


def test_identify_is_built_and_parsed_by_one_pair():
    from spiketwin.link import VERSION, identify_payload, parse_identify

    config = CoreConfig(300, 64, lanes=8)
    ident = parse_identify(identify_payload(config))
    assert ident == {"version": VERSION, "config_hash": config.config_hash(), "n_axons": 300, "n_neurons": 64,
                     "lanes": 8, "max_frame": MAX_FRAME}
    assert Link(ModelPort(BoardModel(config))).check(config) == ident
    with pytest.raises(LinkError, match="an IDENTIFY reply carries 17 bytes, not 16"):
        parse_identify(identify_payload(config)[:-1])


def test_host_refuses_a_board_of_another_protocol_version(monkeypatch):
    import spiketwin.link as link

    config = CoreConfig(4, 4)
    board = BoardModel(config)
    monkeypatch.setattr(link, "VERSION", (2, 0))      # what a newer board would say
    payload = link.identify_payload(config)
    monkeypatch.setattr(link, "VERSION", (1, 0))
    monkeypatch.setattr(link, "identify_payload", lambda c: payload)
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

