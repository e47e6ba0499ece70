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
    REPLY,
    STEP_END,
    FrameDecoder,
    LinkError,
    Opcode,
    Status,
    _runs,
    crc16,
    encode_frame,
    fill_payload,
    identify_payload,
    request,
    request_content,
    run_payloads,
    seal,
    write_payload,
    write_requests,
)
from spiketwin.twin import DPINetwork, admit_events


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
               bytes([ESC, END]) + request(Opcode.IDENTIFY),             # noise, a flushing END: answered
               bytes([END, ESC, END]),                                   # an escape an END cuts off: no reply
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


def test_an_escape_cut_off_by_an_end_leaves_the_next_frame_whole():
    """Line noise ending in ESC, then the END a host sends to flush it: the next frame is decoded
    from a clean start, as the gateware's receiver restarts at every END."""
    config = CoreConfig(4, 4)
    for noise in (bytes([ESC, END]), bytes([END, ESC, END]), bytes([0x42, ESC, END])):
        board = BoardModel(config)
        replies = board.receive(noise + request(Opcode.IDENTIFY)).split(bytes([END]))[:-1]
        assert replies[-1] == encode_frame(seal(bytes([Opcode.IDENTIFY | REPLY, Status.OK])
                                                + identify_payload(config)))[:-1]
        assert len(replies) == (2 if noise[0] == 0x42 else 1)           # noise with a byte in it: NACKed


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
    tally = faults.fuzz_model(400 * len(faults.FAULTS), seed=3)
    assert tally["tried"] == 400 * len(faults.FAULTS) and set(tally["by_fault"].values()) == {400}
    assert tally["executed_otherwise"] == 0 and tally["hangs"] == 0 and tally["readback_mismatches"] == 0
    assert tally["refused"] > 3000 and tally["executed_as_sent"] > 300
    files = faults.mutate_files(120, seed=3, tmp=tmp_path)
    assert files["refused"] == files["changed"] > 110 and files["refused_multiline"] == 0     # every changed one
    assert files["accepted_changed"] == files["tracebacks"] == 0


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


def differential_requests(config, net, seed: int, rounds: int = 6):
    """A bounded differential fuzz: chunks that load ``net``, then in each round run a few busy steps
    (so that spikes are pending), write random words to random addresses of every region (weights,
    recurrent ones included, parameters, tables, state, and unmapped ones), and send a few random
    requests of every other kind, some after line noise or damaged; at the end, every address is
    read back. Returns the chunks, each one's number of replies (the board model's) and how many
    rounds wrote the recurrent weights of spikes then pending."""
    from spiketwin.host import state_read_addresses

    rng = np.random.default_rng(seed)
    chunks = [request(op, payload) for op, payload, _ in write_requests(network_writes(net))]
    targets = [a for a, _ in network_writes(net)] + state_read_addresses(config)[:-1]
    recurrent = [config.address(Region.WEIGHT, i) for i in range(config.n_axons * config.n_neurons,
                                                                  config.n_sources * config.n_neurons)]
    anywhere = lambda: int(rng.integers(0, 1 << config.addr_bits))                          # noqa: E731
    others = [lambda: request(Opcode.READ, b"".join(struct.pack(">I", a) for a in rng.choice(targets, 5))),
              lambda: request(Opcode.READ, struct.pack(">I", anywhere())),
              lambda: request(Opcode.FILL, fill_payload(int(rng.choice(targets)), int(rng.integers(0, 6)),
                                                        int(rng.integers(0, 1 << 16)))),
              lambda: request(Opcode.WRITE, write_payload(anywhere(), [int(rng.integers(0, 1 << 16))])),
              lambda: request(Opcode.ERRORS, bytes([int(rng.integers(0, 2))])),
              lambda: request(Opcode.IDENTIFY),
              lambda: bytes([ESC, END]) + request(Opcode.IDENTIFY),                  # noise cut off mid-escape
              lambda: request(Opcode.READ, struct.pack(">I", int(rng.choice(targets))))[:-3] + bytes([END])]
    board = BoardModel(config)
    replies = [board.receive(ch).count(END) for ch in chunks]

    def send(chunk: bytes) -> bytes:
        chunks.append(chunk)
        answer = board.receive(chunk)
        replies.append(answer.count(END))
        return answer

    pending_writes = 0
    for k in range(rounds):
        sequences = [rng.integers(0, config.n_axons, size=rng.integers(2, 7)).tolist() for _ in range(3)]
        send(request(Opcode.RUN, run_payloads(sequences)[0]))
        membrane = config.address(config.state_fields[config.neuron_model.membrane])
        for j in rng.choice(config.n_neurons, 3, replace=False):     # membranes at the top: one step fires them
            send(request(Opcode.WRITE, write_payload(membrane + int(j), [0x7FFF])))
        (content, _), = FrameDecoder().feed(send(request(Opcode.RUN, run_payloads([[]])[0])))
        steps = [list(struct.unpack(f">{len(w) // 2}H", w)) for w in content[2:].split(struct.pack(">H", STEP_END))]
        fired = steps[-2]                                # the last step's spikes: pending now
        sources = [config.n_axons + j for j in fired] or [config.n_axons]
        through_fired = [config.address(Region.WEIGHT, int(rng.choice(sources)) * config.n_neurons
                                        + int(rng.integers(config.n_neurons))) for _ in range(3)]
        pending_writes += len(fired) > 0
        for address in [*rng.choice(targets, 6), *rng.choice(recurrent, 2), *through_fired]:
            send(request(Opcode.WRITE, write_payload(int(address), [int(rng.integers(0, 1 << 16))])))
        for i in rng.choice(len(others), 3):
            send(others[i]())
        if k == rounds // 2:
            send(request(Opcode.RESET))
    send(request(Opcode.RUN, run_payloads([[0, 1], [], [2]])[0]))
    everything = targets + [config.address(Region.CONTROL)]
    for k in range(0, len(everything), 100):
        send(request(Opcode.READ, b"".join(struct.pack(">I", a) for a in everything[k:k + 100])))
    return chunks, replies, pending_writes


def test_a_weight_written_while_a_spike_is_pending_acts_on_later_spikes_only():
    """The fuzz's case: neuron 1 fires in one RUN; its self-weight, 0 when it fired, is written
    0x4000 before the next RUN. Its spike reached the accumulator as its step ended, through the
    weight 0 (as the gateware replays the fired list then): the next step's i_syn holds nothing of it."""
    config = CoreConfig(4, 4)
    link = Link(ModelPort(BoardModel(config, Network.zeros(config))))
    self_weight = config.address(Region.WEIGHT, (config.n_axons + 1) * config.n_neurons + 1)
    link.write([(config.address(Region.THRESHOLD, 1), 0x0100), (config.address(Region.V, 1), 0x7FFF)])
    assert link.run([[]], config.n_neurons)[0].tolist() == [False, True, False, False]
    link.write([(self_weight, 0x4000)])
    assert link.run([[]], config.n_neurons)[0, 1]           # fires again (v - threshold is still above it)
    assert link.read([config.address(Region.I_SYN, 1)]) == [0]
    link.run([[]], config.n_neurons)                      # that later spike went through the new weight
    assert link.read([config.address(Region.I_SYN, 1)]) == [0x4000]


@pytest.mark.sim
@pytest.mark.parametrize("model", ["lif", "dpi"])
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_random_requests_and_writes_between_runs_are_answered_as_the_board_model_does(tmp_path, sim, model):
    """The differential fuzz (``differential_requests``): random writes to every region between RUNs
    while spikes are pending, and random requests of every kind, noise and damage among them; the
    gateware answers every one, the final read-back of every address included, byte for byte as
    the board model."""
    from spiketwin.sim.cosim import build_link, run_link

    config = CoreConfig(6, 8, lanes=2, model=model)
    net = (Network if model == "lif" else DPINetwork).random(config, 11, density=0.6)
    chunks, replies, pending_writes = differential_requests(config, net, seed=3)
    assert pending_writes >= 3                            # writes through the weights of pending spikes
    want = BoardModel(config).receive(b"".join(chunks))
    runner = build_link(config, sim, tmp_path / "build")
    got = run_link(runner, sim, tmp_path / "run", chunks, replies)
    for i, (g, w) in enumerate(zip(got.split(bytes([END])), want.split(bytes([END])), strict=True)):
        assert g == w, f"reply {i}: board {g.hex()} != model {w.hex()}"


@pytest.mark.sim
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_a_request_sent_before_the_last_reply_is_always_refused_with_overrun(tmp_path, sim):
    """Back-to-back pairs: the second request arrives while the board executes the first (wholly,
    or ending after it); either way it is answered, NACK OVERRUN, and not executed."""
    from spiketwin.sim.cosim import build_link, run_link

    config = CoreConfig(8, 16, lanes=2, max_axon_events=6)
    reads = [config.address(Region.V, j) for j in range(12)]
    firsts = [request(Opcode.READ, b"".join(struct.pack(">I", a) for a in reads)),     # a long reply
              request(Opcode.ERRORS, b"\x00"), request(Opcode.IDENTIFY),
              request(Opcode.RUN, run_payloads([[0, 1, 2]] * 4)[0])]
    seconds = [request(Opcode.IDENTIFY), request(Opcode.WRITE, write_payload(config.address(Region.V, 0), [9])),
               request(Opcode.READ, struct.pack(">I", reads[0]))]
    pairs = [first + second for first in firsts for second in seconds]
    model = BoardModel(config)
    want = b"".join(model.receive(first) + nack(Status.OVERRUN) for first in firsts for _ in seconds)
    final = request(Opcode.READ, b"".join(struct.pack(">I", a) for a in reads))
    want += model.receive(final)                          # no second request changed the state
    runner = build_link(config, sim, tmp_path / "build")
    got = run_link(runner, sim, tmp_path / "run", [*pairs, final], [2] * len(pairs) + [1])
    for i, (g, w) in enumerate(zip(got.split(bytes([END])), want.split(bytes([END])), strict=True)):
        assert g == w, f"reply {i}: board {g.hex()} != expected {w.hex()}"
