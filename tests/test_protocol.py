"""The protocol module: frames, CRC, fields, and the host's frame parser on
damaged streams."""

import random
import zlib

import pytest

from dhq_rtl import protocol
from dhq_rtl.protocol import Kind, encode_frame


def test_frame_layout_and_crc():
    frame = encode_frame(Kind.LOAD_CHUNK, b"\x01\x02\x03")
    assert frame[:2] == protocol.SYNC
    assert frame[2] == Kind.LOAD_CHUNK and frame[3:5] == (3).to_bytes(2, "little") and frame[5:8] == b"\x01\x02\x03"
    assert int.from_bytes(frame[-4:], "little") == zlib.crc32(frame[2:-4])
    assert len(frame) == protocol.frame_bytes(3)
    with pytest.raises(protocol.ProtocolError, match="at most"):
        encode_frame(Kind.INFO, bytes(protocol.MAX_PAYLOAD + 1))


def test_bit_serial_crc_is_zlibs():
    rng = random.Random(1)
    for n in (0, 1, 7, 100):
        data = bytes(rng.randrange(256) for _ in range(n))
        reg = 0xFFFFFFFF
        for byte in data:
            for k in range(8):
                reg = protocol.crc32_bit_step(reg, (byte >> k) & 1)
        assert reg ^ 0xFFFFFFFF == zlib.crc32(data)


def test_fields_round_trip_and_checks():
    values = {name: (b"name" if name == "name" else (1 << (8 * size)) - 1) for name, size in protocol.INFO_FIELDS}
    raw = protocol.pack_fields(protocol.INFO_FIELDS, values)
    back = protocol.unpack_fields(protocol.INFO_FIELDS, raw)
    assert back["name"].rstrip(b"\0") == b"name" and back["signature"] == 0xFFFFFFFF
    with pytest.raises(protocol.ProtocolError, match="does not fit"):
        protocol.pack_fields(protocol.ACK_FIELDS, {"command": 256, "detail": 0})
    with pytest.raises(protocol.ProtocolError, match="expected"):
        protocol.unpack_fields(protocol.ACK_FIELDS, b"\x00" * 4)
    offsets = protocol.field_offsets(protocol.NACK_FIELDS)
    assert offsets == {"command": (0, 1), "reason": (1, 1), "detail": (2, 4)}


def test_parser_finds_every_good_frame_in_a_damaged_stream():
    """Junk, a frame with a flipped byte, one with a dropped byte and one
    with a duplicated byte around good frames: exactly the good ones come
    out, and the damaged ones are counted."""
    rng = random.Random(3)
    good = [encode_frame(Kind.PIXELS, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60))))
            for _ in range(6)]
    flipped = bytearray(good[1])
    flipped[9] ^= 0x10
    dropped = good[2][:7] + good[2][8:]
    duplicated = good[3][:6] + good[3][5:]
    stream = (b"\x00\xd5\x13" + good[0] + bytes(flipped) + good[4] + dropped + good[5] + duplicated
              + protocol.SYNC + b"\x01\xff\xff")      # a header with a length over the limit
    parser = protocol.FrameParser()
    frames = []
    for k in range(0, len(stream), 5):                  # fed in pieces
        frames += parser.feed(stream[k:k + 5])
    assert [f.payload for f in frames] == [good[0][5:-4], good[4][5:-4], good[5][5:-4]]
    assert all(f.kind == Kind.PIXELS for f in frames)
    assert parser.bad_frames >= 3


def test_unknown_kinds_stay_integers():
    frame = protocol.FrameParser().feed(encode_frame(0x55, b"x"))[0]
    assert frame.kind == 0x55 and not isinstance(frame.kind, Kind)
