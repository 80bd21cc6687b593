# amaranth: UnusedElaboratable=no
"""The board's frame layer in Amaranth simulation, against the protocol
module: the bit-serial CRC equals zlib's, the receiver reports exactly the
good frames (and ends damaged, oversized and stalled ones as bad), the
transmitter's frames parse with the host's parser."""

import random
import zlib

import pytest

from dhq_rtl import protocol
from dhq_rtl.gateware.link import Crc32Serial, FrameReceiver, FrameTransmitter
from dhq_rtl.protocol import Kind, encode_frame

from tests.testbench import run_sim


def test_crc_unit_equals_zlib():
    rng = random.Random(2)
    data = bytes(rng.randrange(256) for _ in range(40))
    dut = Crc32Serial()
    got = []

    async def tb(ctx):
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        for n, byte in enumerate(data):
            ctx.set(dut.byte, byte)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            cycles = 0
            while ctx.get(dut.busy):
                await ctx.tick()
                cycles += 1
            assert cycles == 8                # busy for the 8 cycles after start, a bit each
            got.append(ctx.get(dut.value))

    run_sim(dut, [tb])
    assert got == [zlib.crc32(data[:n + 1]) for n in range(len(data))]


def _receive(stream, gap=12, idle_after=None, registered=True):
    """Feed ``stream`` a byte every ``gap`` cycles; returns the ends
    ``(kind, good, payload)`` the receiver reported."""
    dut = FrameReceiver(4, registered=registered)   # timeout 64·10·4 = 2560 cycles
    ends = []

    async def tb(ctx):
        payload = bytearray()
        for n, byte in enumerate(stream):
            ctx.set(dut.rx.valid, 1)
            ctx.set(dut.rx.payload, byte)
            for k in range(gap):
                _, _, begin, data, value, end, good, kind = await ctx.tick().sample(
                    dut.frame.begin, dut.frame.data, dut.frame.byte, dut.frame.end, dut.frame.good, dut.frame.kind)
                ctx.set(dut.rx.valid, 0)
                if begin:
                    payload.clear()
                if data:
                    payload.append(value)
                if end:
                    ends.append((kind, good, bytes(payload)))
            if idle_after is not None and n == idle_after:
                for _ in range(dut.timeout + 20):
                    _, _, end, good, kind = await ctx.tick().sample(dut.frame.end, dut.frame.good, dut.frame.kind)
                    if end:
                        ends.append((kind, good, b"(timeout)"))

    run_sim(dut, [tb])
    return ends


@pytest.mark.parametrize("registered", [True, False])
def test_receiver_reports_good_and_bad_frames(registered):
    a = encode_frame(Kind.LOAD_CHUNK, b"\x00\x00\x00\x00abc")
    b = encode_frame(Kind.INFO)
    damaged = bytearray(encode_frame(Kind.COMMIT, bytes(8)))
    damaged[8] ^= 1
    too_long = protocol.SYNC + bytes([Kind.RENDER]) + (protocol.MAX_PAYLOAD + 1).to_bytes(2, "little")
    ends = _receive(b"\x17" + protocol.SYNC[:1] + a + bytes(damaged) + too_long + b, registered=registered)
    assert ends == [(Kind.LOAD_CHUNK, 1, b"\x00\x00\x00\x00abc"), (Kind.COMMIT, 0, bytes(damaged[5:13])),
                    (Kind.RENDER, 0, b""), (Kind.INFO, 1, b"")]


@pytest.mark.parametrize("registered", [True, False])
def test_receiver_drops_a_stalled_frame(registered):
    frame = encode_frame(Kind.STATUS, b"12")
    ends = _receive(frame[:6] + encode_frame(Kind.INFO), idle_after=5, registered=registered)
    assert ends[0][:2] == (Kind.STATUS, 0) and ends[-1] == (Kind.INFO, 1, b"")


@pytest.mark.parametrize("registered", [True, False])
@pytest.mark.parametrize("payload", [b"", b"\x01", bytes(range(200))])
def test_transmitter_frames_parse(payload, registered):
    dut = FrameTransmitter(registered=registered)
    sent = bytearray()
    rng = random.Random(len(payload))

    async def tb(ctx):
        for kind in (Kind.ACK, Kind.PIXELS):
            ctx.set(dut.kind, kind)
            ctx.set(dut.length, len(payload))
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            for _ in range(20000):
                # a UART that takes a byte every 10 cycles, a payload source that stalls
                idx = ctx.get(dut.index)
                ctx.set(dut.payload.valid, rng.random() < 0.7)
                ctx.set(dut.payload.payload, payload[idx] if idx < len(payload) else 0)
                ready = rng.random() < 0.1
                ctx.set(dut.tx.ready, ready)
                _, _, valid, byte, busy = await ctx.tick().sample(dut.tx.valid, dut.tx.payload, dut.busy)
                if valid and ready:
                    sent.append(byte)
                if not busy and not valid:
                    break
            await ctx.tick()

    run_sim(dut, [tb])
    frames = protocol.FrameParser().feed(bytes(sent))
    assert [(f.kind, f.payload) for f in frames] == [(Kind.ACK, payload), (Kind.PIXELS, payload)]
    assert bytes(sent) == encode_frame(Kind.ACK, payload) + encode_frame(Kind.PIXELS, payload)


def test_registered_must_be_a_bool():
    from dhq_rtl.gateware.link import SharedCrc
    for make in (lambda: FrameReceiver(4, registered=1), lambda: FrameTransmitter(registered="no"),
                 lambda: SharedCrc(2, registered=None)):
        with pytest.raises(TypeError, match="registered must be a bool"):
            make()
