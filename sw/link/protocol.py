"""The UART host link's protocol: one definition for the board's gateware, its twin, the proofs and the host.

Pure: no serial port and no twin here, so hw/, formal/ and sim/ import it as they are.

A frame is SLIP-delimited: its content is sent with ``END`` (0xC0) and ``ESC`` (0xDB) escaped as
``ESC ESC_END`` and ``ESC ESC_ESC`` and closed by ``END``; an empty frame (two ``END`` in a row) is
ignored, so a host may send ``END`` first to flush line noise. The content ends with a
CRC-16/GENIBUS (polynomial 0x1021, initial value 0xFFFF, final XOR 0xFFFF, big-endian) of what
precedes it. A request's content is the opcode byte, the payload's length (u16) and the payload; a
reply's is the request's opcode with ``REPLY`` set, a status byte and the reply payload.
Multi-byte fields are big-endian.

The board buffers a whole request (at most ``MAX_FRAME`` bytes of content) and checks its CRC, its
length field against the bytes received and the payload's layout before it executes anything, so
a corrupt, truncated, padded or over-long frame is never partly executed: it is answered with a
``NACK`` naming the :class:`Status`. The link is request/response: the host waits for each reply
before sending the next request (bytes that arrive while the board executes a request are
dropped, and the frame they belong to is refused).

Requests and replies (after the status byte):

=========  =====================================================  ==========================================
opcode     request payload                                        reply payload
=========  =====================================================  ==========================================
IDENTIFY   (none)                                                 version major, minor; the core's config
                                                                  hash (8 bytes); n_axons, n_neurons (u16);
                                                                  lanes (u8); MAX_FRAME (u16)
WRITE      address (u32), then k words (u16) for the addresses    k (u16)
           from it on
READ       k x address u32                                        k x word u16
RESET      (none): clears v, i_syn, refractory counters and       (none)
           pending spikes
RUN        steps (u16), then per step: count (u8) and count x     per step: the fired neurons (u16 each, in
           axon (u16)                                             increasing order), then ``STEP_END``
ERRORS     clear (u8: 1 clears the flags after reading them)      the sticky error flags (u8)
FILL       address (u32), count k (u16), word (u16): the word     k (u16)
           written to the k addresses from it on
=========  =====================================================  ==========================================
"""

from __future__ import annotations

import enum
import struct
from typing import TYPE_CHECKING

import numpy as np
from amaranth.lib import enum as hdl_enum

from ..errors import InvalidValue, UserError

if TYPE_CHECKING:
    from ..config import CoreConfig

__all__ = ["Opcode", "Status", "REPLY", "END", "ESC", "ESC_END", "ESC_ESC", "MAX_FRAME", "STEP_END", "VERSION",
           "DEFAULT_BAUD", "crc16", "seal", "encode_frame", "request_content", "write_payload", "fill_payload",
           "write_requests", "FrameDecoder", "request", "run_payloads", "run_sequences", "LinkError",
           "event_sequences", "IDENTIFY_LAYOUT", "identify_payload", "parse_identify", "check_link_config",
           "length_ok", "payload_ok", "reply_frame"]

#: The UART's default rate: 1 Mbaud, which both boards' USB bridges carry (the iCEBreaker's FT2232H
#: up to 12 Mbaud, the ULX3S's FT231X up to 3 Mbaud) and which the boards' target clocks (36 MHz,
#: 90 MHz) divide exactly; loading a 64 x 128 network takes about 0.2 s at this rate (2 s at 115200).
DEFAULT_BAUD = 1_000_000
MAX_BAUD_ERROR = 0.02    # the largest bit-rate error a clock may leave (8N1 tolerates about 4% in all)
END, ESC, ESC_END, ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD
MAX_FRAME = 512          # bytes of request content (opcode, payload, CRC) the board buffers
REPLY = 0x80             # set in a reply's opcode
STEP_END = 0xFFFF        # closes each step's spike list in a RUN reply (never a neuron index)
VERSION = (2, 0)         # 2.0: a request's length field, CRC-16/GENIBUS, WRITE to consecutive addresses
CRC_XOR_OUT = 0xFFFF     # the CRC's final XOR (CRC-16/CCITT-FALSE otherwise)
CRC_BYTES = 2
LENGTH_BYTES = 2         # a request's payload length, after the opcode
PAYLOAD_AT = 1 + LENGTH_BYTES        # where a request's payload starts in its content
MAX_PAYLOAD = MAX_FRAME - PAYLOAD_AT - CRC_BYTES
ADDR_BYTES, WORD_BYTES, AXON_BYTES, NEURON_BYTES = 4, 2, 2, 2
STEPS_BYTES = 2          # a RUN request's step count
COUNT_BYTES = 1          # a RUN step's event count
MAX_EVENTS_PER_STEP = (1 << 8 * COUNT_BYTES) - 1
FILL_COUNT_BYTES = 2     # a FILL's count
FILL_BYTES = ADDR_BYTES + FILL_COUNT_BYTES + WORD_BYTES     # a FILL's payload
MAX_FILL = (1 << 8 * FILL_COUNT_BYTES) - 1

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
    FILL = 0x07
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


def crc16(data: bytes) -> int:
    """The link's CRC-16/GENIBUS (check value of b"123456789": 0xD64E). Its final XOR keeps a valid
    frame's remainder from surviving bytes appended to it (a zero byte leaves a zero remainder
    unchanged, the remainder of a CRC with no final XOR)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc ^ CRC_XOR_OUT


def seal(content: bytes) -> bytes:
    """``content`` with its CRC appended."""
    return content + crc16(content).to_bytes(CRC_BYTES, "big")


def encode_frame(content: bytes) -> bytes:
    """SLIP-encode ``content`` (with its CRC already appended) and close it with END."""
    out = bytearray()
    for b in content:
        out += bytes([ESC, ESC_END]) if b == END else bytes([ESC, ESC_ESC]) if b == ESC else bytes([b])
    out.append(END)
    return bytes(out)


def request_content(opcode: int, payload: bytes = b"") -> bytes:
    """A request's content before its CRC: opcode, payload length, payload."""
    if len(payload) > MAX_PAYLOAD:
        raise InvalidValue(f"a request carries at most {MAX_PAYLOAD} bytes of payload, not {len(payload)}")
    return bytes([opcode]) + len(payload).to_bytes(LENGTH_BYTES, "big") + payload


def request(opcode: int, payload: bytes = b"") -> bytes:
    """A complete request frame on the wire."""
    return encode_frame(seal(request_content(opcode, payload)))


def write_payload(address: int, words) -> bytes:
    """A WRITE request's payload: ``words`` for the addresses from ``address`` on."""
    return struct.pack(f">I{len(words)}H", address, *words)


def fill_payload(address: int, count: int, word: int) -> bytes:
    """A FILL request's payload: ``word`` for the ``count`` addresses from ``address`` on."""
    return struct.pack(">IHH", address, count, word)


FILL_AT_LEAST = 8        # a run of equal words this long goes as a FILL (shorter ones cost less inside a WRITE)


def write_requests(pairs, max_frame: int = MAX_FRAME, fills: bool = True):
    """The WRITE and FILL requests that write (address, word) ``pairs``, as (opcode, payload, words
    written): each run of consecutive addresses in as few requests as fit in ``max_frame``, runs of
    ``FILL_AT_LEAST`` or more equal words as FILLs (unless ``fills`` is false)."""
    per = (max_frame - PAYLOAD_AT - CRC_BYTES - ADDR_BYTES) // WORD_BYTES
    fill_at_least = FILL_AT_LEAST if fills else MAX_FILL + 1
    for base, words in _runs(pairs):
        start = 0
        while start < len(words):
            end = start
            while end < len(words) and end - start < MAX_FILL and words[end] == words[start]:
                end += 1
            if end - start >= fill_at_least:
                yield Opcode.FILL, fill_payload((base + start) % (1 << 32), end - start, words[start]), end - start
                start = end
                continue
            end = start                      # a WRITE up to the next long run of equal words, or a frame
            while end < len(words) and end - start < per and not (fills and _equal_run(words, end)):
                end += 1
            end = max(end, start + 1)
            yield Opcode.WRITE, write_payload((base + start) % (1 << 32), words[start:end]), end - start
            start = end


def _equal_run(words, i: int) -> bool:
    return len(words) - i >= FILL_AT_LEAST and len(set(words[i:i + FILL_AT_LEAST])) == 1


def _runs(pairs):
    """(first address, words) for each run of consecutive addresses in ``pairs``."""
    base, words = None, []
    for addr, word in pairs:
        if words and addr != base + len(words):
            yield base, words
            words = []
        if not words:
            base = addr
        words.append(word)
    if words:
        yield base, words


class FrameDecoder:
    """Split a byte stream into frames: yields (content without CRC, Status) per non-empty frame."""

    def __init__(self, max_frame: int | None = None):
        self.max_frame = max_frame
        self._buf = bytearray()
        self._esc = False
        self._bad: Status | None = None
        self.last_refused = b""           # the last frame refused for its CRC (content and CRC)

    def feed(self, data: bytes):
        for b in data:
            if b == END:                  # every END starts afresh, an escape left open included
                if self._buf or self._bad is not None:
                    yield self._finish()
                self._esc = False
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
        if len(buf) < 1 + CRC_BYTES:
            return b"", Status.BAD_LENGTH
        if crc16(buf[:-CRC_BYTES]) != int.from_bytes(buf[-CRC_BYTES:], "big"):
            self.last_refused = buf
            return b"", Status.BAD_CRC
        return buf[:-CRC_BYTES], Status.OK


def sealed_by_protocol_1(frame: bytes) -> bool:
    """``frame`` (content and CRC) carries protocol 1.0's CRC-16/CCITT-FALSE (no final XOR): the
    register over it all is 0, which is this CRC's value 0xFFFF."""
    return len(frame) > CRC_BYTES and crc16(frame) == CRC_XOR_OUT


def length_ok(content: bytes) -> bool:
    """The request's length field is the number of payload bytes received."""
    return (len(content) >= PAYLOAD_AT
            and int.from_bytes(content[1:PAYLOAD_AT], "big") == len(content) - PAYLOAD_AT)


def payload_ok(opcode: int, payload: bytes) -> bool:
    n = len(payload)
    if opcode in (Opcode.IDENTIFY, Opcode.RESET):
        return n == 0
    if opcode == Opcode.WRITE:
        return n >= ADDR_BYTES and (n - ADDR_BYTES) % WORD_BYTES == 0
    if opcode == Opcode.READ:
        return n % ADDR_BYTES == 0
    if opcode == Opcode.ERRORS:
        return n == 1
    if opcode == Opcode.FILL:
        return n == FILL_BYTES
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


def reply_frame(opcode: int, status: Status, payload: bytes = b"") -> bytes:
    return encode_frame(seal(bytes([opcode | REPLY, int(status)]) + payload))



def run_sequences(payload: bytes) -> list[list[int]]:
    steps = struct.unpack(">H", payload[:2])[0]
    pos, sequences = 2, []
    for _ in range(steps):
        k = payload[pos]
        sequences.append(list(struct.unpack(f">{k}H", payload[pos + 1:pos + 1 + 2 * k])))
        pos += 1 + 2 * k
    return sequences


def run_payloads(sequences, max_frame: int = MAX_FRAME) -> list[bytes]:
    """RUN payloads for ``sequences`` (axon indices per step), split so that each frame fits."""
    room = max_frame - PAYLOAD_AT - CRC_BYTES - STEPS_BYTES
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




class LinkError(UserError, RuntimeError):
    """The board refused a request or answered something unexpected."""

def event_sequences(events: np.ndarray) -> list[list[int]]:
    """Event counts [steps, n_axons] as the axon indices sent in each step."""
    return [np.repeat(np.arange(row.size), row).tolist() for row in events]

