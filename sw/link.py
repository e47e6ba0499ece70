"""The UART host link: one protocol definition for the board's gateware and the host.

A frame is SLIP-delimited: its content is sent with ``END`` (0xC0) and ``ESC`` (0xDB) escaped as
``ESC ESC_END`` and ``ESC ESC_ESC`` and closed by ``END``; an empty frame (two ``END`` in a row) is
ignored, so a host may send ``END`` first to flush line noise. The content is an opcode byte, the
payload, and a CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, big-endian) of the
opcode and payload. Multi-byte fields are big-endian.

The board buffers a whole request (at most ``MAX_FRAME`` bytes of content) and checks its CRC and
the payload's length before it executes anything, so a corrupt, truncated or over-long frame is
never partly executed: it is answered with a ``NACK`` naming the :class:`Status`. A valid request
is answered with the request's opcode with ``REPLY`` set, a status byte and the reply payload.
The link is request/response: the host waits for each reply before sending the next request
(bytes that arrive while the board executes a request are dropped, and the frame they belong to
is refused).

Requests and replies (after the status byte):

=========  =====================================================  ==========================================
opcode     request payload                                        reply payload
=========  =====================================================  ==========================================
IDENTIFY   (none)                                                 version major, minor; the core's config
                                                                  hash (8 bytes); n_axons, n_neurons (u16);
                                                                  lanes (u8); MAX_FRAME (u16)
WRITE      k x (address u32, word u16)                            k (u16)
READ       k x address u32                                        k x word u16
RESET      (none): clears v, i_syn, refractory counters and       (none)
           pending spikes
RUN        steps (u16), then per step: count (u8) and count x     per step: the fired neurons (u16 each, in
           axon (u16)                                             increasing order), then ``STEP_END``
ERRORS     clear (u8: 1 clears the flags after reading them)      the sticky error flags (u8)
=========  =====================================================  ==========================================
"""

from __future__ import annotations

import enum
import struct

import numpy as np
from amaranth.lib import enum as hdl_enum

from .characterize import characterize
from .config import Control, CoreConfig, Region
from .errors import InvalidValue, UserError
from .host import network_writes, state_read_addresses
from .twin import CoreModel, Network

__all__ = ["Opcode", "Status", "REPLY", "END", "ESC", "ESC_END", "ESC_ESC", "MAX_FRAME", "STEP_END", "VERSION",
           "crc16", "encode_frame", "FrameDecoder", "request", "run_payloads", "BoardModel", "ModelPort", "Link",
           "LinkError", "run_on_board", "event_sequences", "characterize", "IDENTIFY_LAYOUT", "identify_payload",
           "parse_identify", "check_link_config"]

END, ESC, ESC_END, ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD
MAX_FRAME = 512          # bytes of request content (opcode, payload, CRC) the board buffers
REPLY = 0x80             # set in a reply's opcode
STEP_END = 0xFFFF        # closes each step's spike list in a RUN reply (never a neuron index)
VERSION = (1, 0)
ADDR_BYTES, WORD_BYTES, AXON_BYTES, NEURON_BYTES = 4, 2, 2, 2
STEPS_BYTES = 2          # a RUN request's step count
COUNT_BYTES = 1          # a RUN step's event count
MAX_EVENTS_PER_STEP = (1 << 8 * COUNT_BYTES) - 1

#: The IDENTIFY reply's payload (after the status byte), field by field: the one layout that the
#: host parses, the board model answers and the gateware's ROM holds (``identify_payload``).
IDENTIFY_LAYOUT = (("version_major", "B"), ("version_minor", "B"), ("config_hash", "8s"), ("n_axons", "H"),
                   ("n_neurons", "H"), ("lanes", "B"), ("max_frame", "H"))
_IDENTIFY = struct.Struct(">" + "".join(code for _, code in IDENTIFY_LAYOUT))


class Opcode(hdl_enum.IntEnum, shape=8):
    """A request's first byte (an enum shape for the gateware: ``Signal(Opcode)`` holds any byte,
    as an unknown opcode must be answered)."""

    IDENTIFY = 0x01
    WRITE = 0x02
    READ = 0x03
    RESET = 0x04
    RUN = 0x05
    ERRORS = 0x06
    NACK = 0x7F          # sent as 0xFF: the frame was refused, nothing was executed


class Status(enum.IntEnum):
    OK = 0
    BAD_CRC = 1          # the CRC does not match the content
    UNKNOWN_OPCODE = 2
    BAD_LENGTH = 3       # the payload does not parse: truncated, trailing bytes, or too short a frame
    TOO_LONG = 4         # more than MAX_FRAME bytes of content
    BAD_ESCAPE = 5       # ESC followed by anything but ESC_END or ESC_ESC
    OVERRUN = 6          # bytes of the frame arrived while the board was busy and were dropped


def check_link_config(config: CoreConfig) -> None:
    """Refuse a core the link's fields cannot carry (``docs/link.md``), with the limit it breaks.

    (Every axon index, ``n_axons`` itself included, and every neuron index below ``STEP_END`` fit
    their 16-bit fields: a core has at most ``CoreConfig.MAX_SOURCES`` = 2**16 sources.)"""
    limits = (
        (config.data_bits <= 8 * WORD_BYTES, f"words of {config.data_bits} bits are wider than the link's "
                                             f"{8 * WORD_BYTES}-bit words"),
        (config.lanes < 1 << 8, f"{config.lanes} lanes do not fit IDENTIFY's 8-bit lane count"),
        (config.addr_bits <= 8 * ADDR_BYTES, f"addresses of {config.addr_bits} bits are wider than the link's "
                                             f"{8 * ADDR_BYTES}-bit addresses"),
    )
    for ok, problem in limits:
        if not ok:
            raise InvalidValue(f"The host link cannot carry this core: {problem}")


def identify_payload(config: CoreConfig) -> bytes:
    """What a board with ``config``'s core answers to IDENTIFY, after the status byte."""
    return _IDENTIFY.pack(*VERSION, bytes.fromhex(config.config_hash()), config.n_axons, config.n_neurons,
                          config.lanes, MAX_FRAME)


def parse_identify(body: bytes) -> dict:
    """The fields of an IDENTIFY reply's payload (``IDENTIFY_LAYOUT``; the hash as hex)."""
    if len(body) != _IDENTIFY.size:
        raise LinkError(f"an IDENTIFY reply carries {_IDENTIFY.size} bytes, not {len(body)}")
    fields = dict(zip((name for name, _ in IDENTIFY_LAYOUT), _IDENTIFY.unpack(body), strict=True))
    fields["config_hash"] = fields["config_hash"].hex()
    fields["version"] = (fields.pop("version_major"), fields.pop("version_minor"))
    return fields


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (check value of b"123456789": 0x29B1)."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def encode_frame(content: bytes) -> bytes:
    """SLIP-encode ``content`` (with its CRC already appended) and close it with END."""
    out = bytearray()
    for b in content:
        out += bytes([ESC, ESC_END]) if b == END else bytes([ESC, ESC_ESC]) if b == ESC else bytes([b])
    out.append(END)
    return bytes(out)


def request(opcode: int, payload: bytes = b"") -> bytes:
    """A complete request frame on the wire."""
    content = bytes([opcode]) + payload
    return encode_frame(content + struct.pack(">H", crc16(content)))


class FrameDecoder:
    """Split a byte stream into frames: yields (content without CRC, Status) per non-empty frame."""

    def __init__(self, max_frame: int | None = None):
        self.max_frame = max_frame
        self._buf = bytearray()
        self._esc = False
        self._bad: Status | None = None

    def feed(self, data: bytes):
        for b in data:
            if b == END:
                if self._buf or self._bad is not None:
                    yield self._finish()
                continue
            if self._esc:
                self._esc = False
                if b not in (ESC_END, ESC_ESC):
                    self._bad = self._bad or Status.BAD_ESCAPE
                    continue
                b = END if b == ESC_END else ESC
            elif b == ESC:
                self._esc = True
                continue
            if self.max_frame is not None and len(self._buf) >= self.max_frame:
                self._bad = self._bad or Status.TOO_LONG
                continue
            self._buf.append(b)

    def _finish(self) -> tuple[bytes, Status]:
        buf, bad = bytes(self._buf), self._bad
        self._buf, self._esc, self._bad = bytearray(), False, None
        if bad is not None:
            return b"", bad
        if len(buf) < 3:
            return b"", Status.BAD_LENGTH
        if crc16(buf) != 0:                  # the CRC over content and CRC is zero
            return b"", Status.BAD_CRC
        return buf[:-2], Status.OK


def _payload_ok(opcode: int, payload: bytes) -> bool:
    n = len(payload)
    if opcode in (Opcode.IDENTIFY, Opcode.RESET):
        return n == 0
    if opcode == Opcode.WRITE:
        return n % (ADDR_BYTES + WORD_BYTES) == 0
    if opcode == Opcode.READ:
        return n % ADDR_BYTES == 0
    if opcode == Opcode.ERRORS:
        return n == 1
    if opcode == Opcode.RUN:
        if n < 2:
            return False
        pos = 2
        for _ in range(struct.unpack(">H", payload[:2])[0]):
            if pos >= n:
                return False
            pos += 1 + AXON_BYTES * payload[pos]
        return pos == n
    return False


def _reply(opcode: int, status: Status, payload: bytes = b"") -> bytes:
    content = bytes([opcode | REPLY, int(status)]) + payload
    return encode_frame(content + struct.pack(">H", crc16(content)))


class BoardModel:
    """The twin of a board: the bytes it answers to the bytes it receives, its core a
    :class:`~spiketwin.twin.CoreModel`. The gateware's link is tested byte for byte against it."""

    def __init__(self, config: CoreConfig, network: Network | None = None):
        self.core = CoreModel(config, network)
        self._decoder = FrameDecoder(MAX_FRAME)

    def receive(self, data: bytes) -> bytes:
        out = bytearray()
        for content, status in self._decoder.feed(data):
            out += self._execute(content, status)
        return bytes(out)

    def _execute(self, content: bytes, status: Status) -> bytes:
        if status != Status.OK:
            return _reply(Opcode.NACK, status)
        opcode, payload = content[0], content[1:]
        if opcode not in {int(o) for o in Opcode} or opcode == Opcode.NACK:
            return _reply(Opcode.NACK, Status.UNKNOWN_OPCODE)
        if not _payload_ok(opcode, payload):
            return _reply(Opcode.NACK, Status.BAD_LENGTH)
        c, core = self.core.config, self.core
        if opcode == Opcode.IDENTIFY:
            body = identify_payload(c)
        elif opcode == Opcode.WRITE:
            k = len(payload) // 6
            for addr, word in struct.iter_unpack(">IH", payload):
                core.write(addr, word)
            body = struct.pack(">H", k)
        elif opcode == Opcode.READ:
            body = b"".join(struct.pack(">H", core.read(a)) for (a,) in struct.iter_unpack(">I", payload))
        elif opcode == Opcode.RESET:
            core.write(c.address(Region.CONTROL), Control.CLEAR_STATE)
            body = b""
        elif opcode == Opcode.RUN:
            body = bytearray()
            spikes = core.run(_run_sequences(payload))
            for row in spikes:
                body += b"".join(struct.pack(">H", j) for j in np.flatnonzero(row))
                body += struct.pack(">H", STEP_END)
            body = bytes(body)
        else:  # ERRORS
            body = bytes([int(core.errors)])
            if payload[0] & 1:
                core.write(c.address(Region.CONTROL), Control.CLEAR_ERRORS)
        return _reply(opcode, Status.OK, body)


def _run_sequences(payload: bytes) -> list[list[int]]:
    steps = struct.unpack(">H", payload[:2])[0]
    pos, sequences = 2, []
    for _ in range(steps):
        k = payload[pos]
        sequences.append(list(struct.unpack(f">{k}H", payload[pos + 1:pos + 1 + 2 * k])))
        pos += 1 + 2 * k
    return sequences


def run_payloads(sequences, max_frame: int = MAX_FRAME) -> list[bytes]:
    """RUN payloads for ``sequences`` (axon indices per step), split so that each frame fits."""
    room = max_frame - 1 - 2 - 2          # opcode, steps, CRC
    out, chunk, size = [], [], 0
    for t, seq in enumerate(sequences):
        if len(seq) > MAX_EVENTS_PER_STEP:
            raise InvalidValue(f"step {t} has {len(seq)} events; a RUN request carries at most "
                             f"{MAX_EVENTS_PER_STEP} per step")
        need = 1 + AXON_BYTES * len(seq)
        if need > room:
            raise InvalidValue(f"step {t} does not fit in one frame of {max_frame} bytes")
        if size + need > room:
            out.append(chunk)
            chunk, size = [], 0
        chunk.append(seq)
        size += need
    if chunk or not out:
        out.append(chunk)
    return [struct.pack(">H", len(ch)) + b"".join(bytes([len(s)]) + struct.pack(f">{len(s)}H", *s) for s in ch)
            for ch in out]


class ModelPort:
    """A :class:`BoardModel` behind the port interface :class:`Link` uses (for tests and dry runs)."""

    def __init__(self, board: BoardModel):
        self.board = board
        self._out = bytearray()

    def write(self, data: bytes) -> int:
        self._out += self.board.receive(bytes(data))
        return len(data)

    def read(self, n: int = 1) -> bytes:
        data, self._out = bytes(self._out[:n]), self._out[n:]
        return data


class LinkError(UserError, RuntimeError):
    """The board refused a request or answered something unexpected."""


class Link:
    """The host side of the link, over anything with ``write(bytes)`` and ``read(n)``: a pyserial
    port (``serial.serial_for_url("/dev/ttyUSB1")`` or ``"socket://127.0.0.1:5555"``) or a model."""

    def __init__(self, port, max_frame: int = MAX_FRAME):
        self.port = port
        self.max_frame = max_frame
        self._decoder = FrameDecoder()
        self._pending: list[tuple[bytes, Status]] = []

    def _transact(self, opcode: Opcode, payload: bytes = b"") -> bytes:
        self.port.write(request(opcode, payload))
        while not self._pending:
            data = self.port.read(1)
            if not data:
                raise LinkError(f"no reply to {opcode.name} (timeout)")
            self._pending += list(self._decoder.feed(data))
        content, status = self._pending.pop(0)
        if status != Status.OK:
            raise LinkError(f"corrupt reply to {opcode.name}: {status.name}")
        if content[0] == Opcode.NACK | REPLY:
            raise LinkError(f"the board refused {opcode.name}: {Status(content[1]).name}")
        if content[0] != opcode | REPLY or content[1] != Status.OK:
            raise LinkError(f"unexpected reply to {opcode.name}: {content[:2].hex()}")
        return content[2:]

    def identify(self) -> dict:
        return parse_identify(self._transact(Opcode.IDENTIFY))

    def check(self, config: CoreConfig) -> dict:
        """Identify the board and refuse one that speaks another protocol version or whose core is
        not ``config``."""
        ident = self.identify()
        if ident["version"] != VERSION:
            raise LinkError(f"the board speaks link protocol {'.'.join(map(str, ident['version']))}, this host "
                            f"{'.'.join(map(str, VERSION))}: rebuild the bitstream with this spiketwin")
        if ident["config_hash"] != config.config_hash():
            raise LinkError(f"the board's core ({ident['n_axons']} axons, {ident['n_neurons']} neurons, hash "
                            f"{ident['config_hash']}) is not the expected one (hash {config.config_hash()})")
        return ident

    def write(self, pairs) -> None:
        per = (self.max_frame - 3) // (ADDR_BYTES + WORD_BYTES)
        pairs = list(pairs)
        for i in range(0, len(pairs), per):
            chunk = pairs[i:i + per]
            body = self._transact(Opcode.WRITE, b"".join(struct.pack(">IH", a, w) for a, w in chunk))
            if struct.unpack(">H", body)[0] != len(chunk):
                raise LinkError(f"the board took {struct.unpack('>H', body)[0]} of {len(chunk)} writes")

    def read(self, addresses) -> list[int]:
        per = (self.max_frame - 3) // ADDR_BYTES
        addresses, words = list(addresses), []
        for i in range(0, len(addresses), per):
            chunk = addresses[i:i + per]
            body = self._transact(Opcode.READ, b"".join(struct.pack(">I", a) for a in chunk))
            words += [w for (w,) in struct.iter_unpack(">H", body)]
        return words

    def load(self, net: Network) -> None:
        self.write(network_writes(net))

    def reset(self) -> None:
        self._transact(Opcode.RESET)

    def run(self, sequences, n_neurons: int) -> np.ndarray:
        """Run one step per entry of ``sequences`` (axon indices); spikes [steps, n_neurons]."""
        rows = []
        for payload in run_payloads(sequences, self.max_frame):
            words = [w for (w,) in struct.iter_unpack(">H", self._transact(Opcode.RUN, payload))]
            row = []
            for w in words:
                if w == STEP_END:
                    rows.append(row)
                    row = []
                elif w >= n_neurons:
                    raise LinkError(f"the board reported a spike of neuron {w}, which it does not have")
                else:
                    row.append(w)
        spikes = np.zeros((len(rows), n_neurons), bool)
        for t, row in enumerate(rows):
            spikes[t, row] = True
        return spikes

    def errors(self, clear: bool = False) -> int:
        return self._transact(Opcode.ERRORS, bytes([int(clear)]))[0]

    def read_state(self, config: CoreConfig):
        from .host import decode_state

        return decode_state(config, self.read(state_read_addresses(config)))


def event_sequences(events: np.ndarray) -> list[list[int]]:
    """Event counts [steps, n_axons] as the axon indices sent in each step."""
    return [np.repeat(np.arange(row.size), row).tolist() for row in events]


def run_on_board(link: Link, net, events: np.ndarray, labels: np.ndarray | None = None, load: bool = True,
                 outputs=None, progress: bool = True, window: tuple | None = None) -> dict:
    """Run each sample of ``events`` [samples, steps, n_axons] on the board behind ``link`` and
    compare every step's spikes and the final membrane of the ``outputs`` (default: the classifier's)
    with the twin, bit for bit. The board is identified and checked first, and loaded with ``net``
    unless ``load`` is false (a bitstream with it baked in). With ``labels``, the classification
    accuracy too, counting the outputs' spikes in the steps of ``window`` (start, stop; all by
    default). Returns the report (``bit_exact``, ``mismatches`` naming sample, step and neuron)."""
    from tqdm import tqdm

    from .fixedpoint import from_word
    from .train import predict
    from .twin import simulate

    config = net.config
    outputs = np.array(net.meta["outputs"] if outputs is None else outputs)
    ident = link.check(config)
    if load:
        link.load(net)
    link.errors(clear=True)
    membrane = config.neuron_model.membrane
    v_addrs = [config.address(config.state_fields[membrane], int(j)) for j in outputs]
    twin = simulate(config, net, events)
    n = len(events)
    correct, mismatches = 0, []
    for i in tqdm(range(n), desc="samples", disable=not progress):
        link.reset()
        spikes = link.run(event_sequences(events[i]), config.n_neurons)
        v_out = np.array([from_word(w, config.data_bits, True) for w in link.read(v_addrs)])
        diff = np.argwhere(spikes != twin.spikes[i])
        if diff.size or (v_out != getattr(twin.state, membrane)[i, outputs]).any():
            step, neuron = (int(diff[0][0]), int(diff[0][1])) if diff.size else (-1, -1)
            mismatches.append({"sample": i, "step": step, "neuron": neuron, "differences": int(len(diff))})
            tqdm.write(f"sample {i}: board and twin differ (first at step {step}, neuron {neuron}; {len(diff)} in all)")
        if labels is not None:
            counted = spikes[slice(*window) if window else slice(None)]
            correct += int(predict(counted[:, outputs].sum(0), v_out) == labels[i])
    report = {"samples": n, "bit_exact": n - len(mismatches), "mismatches": mismatches,
              "error_flags": link.errors(), "board": ident}
    if labels is not None:
        report["accuracy"] = correct / n
    return report
