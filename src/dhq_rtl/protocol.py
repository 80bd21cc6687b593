"""The host link: frames, commands, replies and their payloads, defined once.

Both ends of the UART link use this module: the board's gateware
(:mod:`dhq_rtl.gateware.link`, :mod:`dhq_rtl.gateware.top`) takes every
byte value, field offset and size from it, and the host
(:mod:`dhq_rtl.firmware.host`) encodes and decodes with it.

Frame (both directions)::

    SYNC (2 bytes) | kind (1) | length (2, little-endian) | payload (length bytes) | CRC-32 (4, little-endian)

The CRC is zlib's CRC-32 over ``kind``, ``length`` and the payload (not the
sync bytes). A payload is at most :data:`MAX_PAYLOAD` bytes. A receiver
hunts for ``SYNC``; a frame whose CRC does not match, whose length is out of
range, or that stops for more than :data:`IDLE_BYTE_TIMES` byte times is
dropped and the receiver hunts again (a board answers a bad frame with a
NACK ``BAD_FRAME``, so the host need not wait for its timeout).

Commands (host → board; the payload fields in :data:`COMMAND_FIELDS`):

* ``INFO``: the board answers ``INFO_REPLY`` (:data:`INFO_FIELDS`: the
  protocol and load-image formats, the envelope, lanes, clock, baud
  divisor, staging size, and the loaded model: whether there is one, its
  load image's CRC-32, image size and channels).
* ``STATUS``: ``STATUS_REPLY`` (:data:`STATUS_FIELDS`: the load in
  progress, frames received good and bad).
* ``LOAD_BEGIN`` (``length``): a new load image of ``length`` bytes
  begins; the staging memory's fill is reset. ``ACK``.
* ``LOAD_CHUNK`` (``offset``, then the data): bytes of the load image at
  ``offset``. Chunks must come in order: a chunk at the expected offset is
  written and acknowledged (``ACK`` with the next expected offset), a
  chunk that was already received is acknowledged again without being
  written (its first acknowledgement was lost), any other is refused
  (``NACK BAD_OFFSET`` with the expected offset).
* ``COMMIT`` (``length``, ``crc``): every byte up to ``length`` received,
  the board reads the staged image back and compares its CRC-32; only if
  it matches, and the image's header fits the board's envelope, it
  installs the image: the new model renders from then on (``ACK`` with the
  CRC). Otherwise ``NACK`` (``INCOMPLETE``, ``BAD_IMAGE_CRC``,
  ``REFUSED_IMAGE``) and the previous model keeps running.
* ``RENDER`` (``x0``, ``y0``, ``x1``, ``y1``): the pixels of the region in
  ``PIXELS`` frames (:data:`PIXELS_FIELDS`: the first pixel's ``x``, ``y``,
  then the pixels of one row segment of at most :data:`FRAME_PIXELS`
  pixels, ``channels`` bytes each, two per channel when pixels are wider
  than 8 bits), then ``ACK`` with the pixel count. A segment the host did
  not receive intact it asks for again as a region of its own.

A bitstream whose model is fixed (the float core, docs/float32.md; an integer
``--fixed-model`` build, docs/loading.md) answers
``INFO`` with ``load_format`` :data:`FIXED_MODEL_FORMAT` and no staging
memory, ``STATUS`` and ``RENDER`` as above, and every load command
(``LOAD_BEGIN``, ``LOAD_CHUNK``, ``COMMIT``) with ``NACK FIXED_MODEL``.

Replies carry the command they answer (``ACK``/``NACK``:
:data:`ACK_FIELDS`, :data:`NACK_FIELDS`); ``NACK`` says why
(:class:`Reason`).
"""

import enum
import struct
import zlib

__all__ = ["SYNC", "MAX_PAYLOAD", "FRAME_PIXELS", "IDLE_BYTE_TIMES", "PROTOCOL_VERSION", "FIXED_MODEL_FORMAT", "Kind", "Reason",
           "HEADER_BYTES", "TRAILER_BYTES", "frame_bytes", "encode_frame", "FrameParser", "Frame",
           "COMMAND_FIELDS", "INFO_FIELDS", "STATUS_FIELDS", "ACK_FIELDS", "NACK_FIELDS", "PIXELS_FIELDS",
           "pack_fields", "unpack_fields", "field_offsets", "fields_size", "crc32", "crc32_bit_step",
           "ENVELOPE_FIELDS", "NAME_BYTES", "ProtocolError"]

#: Two bytes that start every frame.
SYNC = bytes([0xD5, 0x6A])
#: Longest payload of a frame, in bytes.
MAX_PAYLOAD = 1024
#: Most pixels in one ``PIXELS`` frame (a row segment).
FRAME_PIXELS = 128
#: A receiver drops a frame that pauses longer than this many byte times.
IDLE_BYTE_TIMES = 64
#: Version of this protocol, in the ``INFO`` reply.
PROTOCOL_VERSION = 1
#: ``INFO``'s ``load_format`` of a bitstream whose model is fixed (no load
#: path: the float core, an integer ``--fixed-model`` build). Its envelope
#: fields describe that model (widest layer, layers, largest side, channels,
#: pixel bits; the others 0), its ``model_crc`` is the CRC-32 of the model
#: image's bytes.
FIXED_MODEL_FORMAT = 0
#: Bytes before the payload (sync, kind, length) and after it (CRC).
HEADER_BYTES = len(SYNC) + 3
TRAILER_BYTES = 4
#: Bytes of the envelope's name in the ``INFO`` reply (UTF-8, zero-padded).
NAME_BYTES = 16


class ProtocolError(ValueError):
    """A frame or payload that does not follow this protocol."""


class Kind(enum.IntEnum):
    """Frame kinds: commands (host → board) and replies (board → host)."""

    INFO = 0x01
    STATUS = 0x02
    LOAD_BEGIN = 0x03
    LOAD_CHUNK = 0x04
    COMMIT = 0x05
    RENDER = 0x06
    INFO_REPLY = 0x81
    STATUS_REPLY = 0x82
    ACK = 0x90
    NACK = 0x91
    PIXELS = 0xA0


class Reason(enum.IntEnum):
    """Why a board refused a command (``NACK``)."""

    BAD_FRAME = 1          # CRC mismatch, or a length out of range: the command was not read
    BAD_LENGTH = 2         # the payload's length is wrong for the command
    BAD_OFFSET = 3         # a chunk not at the expected offset (detail: the expected offset)
    TOO_LONG = 4           # the load image does not fit the staging memory
    INCOMPLETE = 5         # commit before every byte arrived (detail: bytes received)
    BAD_IMAGE_CRC = 6      # the staged image's CRC differs (detail: the CRC computed)
    REFUSED_IMAGE = 7      # the image's header does not fit the board's envelope
    BAD_REGION = 8         # a render region outside the model's image, or empty
    NO_MODEL = 9           # nothing to render: no model installed
    UNKNOWN_COMMAND = 10
    FIXED_MODEL = 11       # a load command to a bitstream whose model is fixed (float core, --fixed-model)


#: Payload fields of each command: ``[(name, bytes)]``, little-endian
#: unsigned integers in this order (``LOAD_CHUNK``'s data follow ``offset``).
COMMAND_FIELDS = {
    Kind.INFO: [],
    Kind.STATUS: [],
    Kind.LOAD_BEGIN: [("length", 4)],
    Kind.LOAD_CHUNK: [("offset", 4)],
    Kind.COMMIT: [("length", 4), ("crc", 4)],
    Kind.RENDER: [("x0", 2), ("y0", 2), ("x1", 2), ("y1", 2)],
}

#: The envelope's numbers in the ``INFO`` reply (each 2 bytes), the fields of
#: :class:`~dhq_rtl.envelope.Envelope` of the same names; ``weight_memory`` is
#: 0 for ``"bram"``, 1 for ``"spram"``.
ENVELOPE_FIELDS = ["max_width", "max_layers", "max_size", "max_channels", "weight_bits", "act_bits", "lut_bits",
                   "mult_bits", "phase_bits", "max_shift", "first_sum_bits", "rotate_width", "max_req_shift",
                   "acc_bits", "bias_bits", "pixel_bits", "weight_memory"]

INFO_FIELDS = [
    ("protocol", 1), ("load_format", 1), ("signature", 4), ("lanes", 2), ("clock_hz", 4), ("divisor", 2),
    ("staging_bytes", 4), ("model_valid", 1), ("model_crc", 4), ("width", 2), ("height", 2), ("channels", 1),
] + [(name, 2) for name in ENVELOPE_FIELDS] + [("name", NAME_BYTES)]

STATUS_FIELDS = [("loading", 1), ("received", 4), ("load_length", 4), ("good_frames", 2), ("bad_frames", 2),
                 ("model_valid", 1), ("model_crc", 4)]

ACK_FIELDS = [("command", 1), ("detail", 4)]
NACK_FIELDS = [("command", 1), ("reason", 1), ("detail", 4)]
PIXELS_FIELDS = [("x", 2), ("y", 2)]


def fields_size(fields):
    return sum(size for _, size in fields)


def field_offsets(fields):
    """``{name: (offset, size)}`` of a field list."""
    out, offset = {}, 0
    for name, size in fields:
        out[name] = (offset, size)
        offset += size
    return out


def pack_fields(fields, values):
    """Bytes of ``values`` (a dict; a ``bytes`` value fills its field,
    zero-padded) in the order of ``fields``."""
    out = bytearray()
    for name, size in fields:
        v = values[name]
        if isinstance(v, (bytes, bytearray)):
            if len(v) > size:
                raise ProtocolError(f"field {name} holds {size} bytes, got {len(v)}")
            out += bytes(v) + bytes(size - len(v))
        else:
            v = int(v)
            if not 0 <= v < (1 << (8 * size)):
                raise ProtocolError(f"field {name} = {v} does not fit {size} bytes")
            out += v.to_bytes(size, "little")
    return bytes(out)


def unpack_fields(fields, payload, *, exact=True):
    """``{name: int}`` from ``payload`` (the ``name`` field of ``INFO`` stays
    bytes); with ``exact``, the payload must be exactly as long as the
    fields."""
    need = fields_size(fields)
    if len(payload) < need or (exact and len(payload) != need):
        raise ProtocolError(f"payload of {len(payload)} bytes, expected {need}")
    out, offset = {}, 0
    for name, size in fields:
        raw = bytes(payload[offset:offset + size])
        out[name] = raw if name == "name" else int.from_bytes(raw, "little")
        offset += size
    return out


def crc32(data, crc=0):
    """zlib's CRC-32 (reflected, polynomial 0xEDB88320, initial and final
    XOR 0xFFFFFFFF), continued from ``crc``."""
    return zlib.crc32(bytes(data), crc)


#: The CRC-32 polynomial, reflected (what a bit-serial register XORs in).
CRC32_POLY = 0xEDB88320


def crc32_bit_step(reg, bit):
    """One step of the bit-serial CRC-32 register (the gateware's twin): the
    register before the final XOR, one data bit (LSB of each byte first)."""
    x = (reg ^ bit) & 1
    return (reg >> 1) ^ (CRC32_POLY if x else 0)


def frame_bytes(payload_length):
    """Bytes on the line for a frame with a payload of ``payload_length``."""
    return HEADER_BYTES + payload_length + TRAILER_BYTES


def encode_frame(kind, payload=b""):
    """The bytes of a frame."""
    payload = bytes(payload)
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(f"payload of {len(payload)} bytes, at most {MAX_PAYLOAD}")
    body = bytes([int(kind)]) + len(payload).to_bytes(2, "little") + payload
    return SYNC + body + crc32(body).to_bytes(4, "little")


class Frame:
    """A received frame: ``kind`` (an int; a :class:`Kind` when known),
    ``payload`` (bytes)."""

    __slots__ = ("kind", "payload")

    def __init__(self, kind, payload):
        try:
            kind = Kind(kind)
        except ValueError:
            pass
        self.kind = kind
        self.payload = bytes(payload)

    def __repr__(self):
        return f"Frame({self.kind!r}, {len(self.payload)} bytes)"


class FrameParser:
    """Frames out of a byte stream with errors in it (the host's receiver).

    :meth:`feed` takes any bytes and returns the frames that completed with
    a good CRC. After a bad frame (CRC mismatch, length over
    :data:`MAX_PAYLOAD`) it hunts for ``SYNC`` again from the byte after the
    bad frame's sync, so a frame hidden by a dropped or duplicated byte is
    still found. ``bad_frames`` counts the frames dropped; :meth:`reset`
    drops a partial frame (after a timeout)."""

    def __init__(self):
        self.buffer = bytearray()
        self.bad_frames = 0

    def reset(self):
        self.buffer.clear()

    def feed(self, data):
        self.buffer += data
        frames = []
        buf = self.buffer
        while True:
            start = buf.find(SYNC)
            if start < 0:
                # Keep a last byte that may be the first sync byte.
                del buf[:max(0, len(buf) - (len(SYNC) - 1))]
                return frames
            del buf[:start]
            if len(buf) < HEADER_BYTES:
                return frames
            length = int.from_bytes(buf[3:5], "little")
            if length > MAX_PAYLOAD:
                self.bad_frames += 1
                del buf[:1]
                continue
            total = frame_bytes(length)
            if len(buf) < total:
                return frames
            body = bytes(buf[2:HEADER_BYTES + length])
            crc = int.from_bytes(buf[HEADER_BYTES + length:total], "little")
            if crc32(body) != crc:
                self.bad_frames += 1
                del buf[:1]
                continue
            frames.append(Frame(body[0], body[3:]))
            del buf[:total]
