# amaranth: UnusedElaboratable=no
"""The board's protocol on the core, in Amaranth simulation: a host on the
UART line (bit level) sends every command of :mod:`dhq_rtl.protocol` and
checks every reply frame; rendered pixels are compared with the golden
model, every one."""

import numpy as np
import pytest

from dhq_rtl import protocol
from dhq_rtl.envelope import Envelope
from dhq_rtl.gateware.controller import BoardController
from dhq_rtl.gateware.core import InrCore
from dhq_rtl.gateware.top import LinkedCore
from dhq_rtl.golden import GoldenModel
from dhq_rtl.loader import image_crc, load_image
from dhq_rtl.protocol import Kind, Reason, encode_frame, pack_fields, unpack_fields
from dhq_rtl.synthetic import random_model

from tests.line_host import LineHost, exchange
from tests.testbench import run_sim

DIVISOR = 4  # clock cycles per UART bit: the shortest the UART takes, to keep the simulation short

ENVELOPE = Envelope(name="tiny", max_width=4, max_layers=4, max_size=6, max_channels=3, weight_bits=8,
                    act_bits=8, lut_bits=8, mult_bits=8, phase_bits=10, max_shift=24, first_sum_bits=32)


def _models():
    gray = random_model(width=4, depth=2, size=6, seed=1, rotate=False)
    rgb = random_model(width=2, depth=3, size=5, seed=3, channels=3, rotate=False, rotate_first=True,
                       act_midrise=True)
    return gray, rgb


def command(kind, **fields):
    return encode_frame(kind, pack_fields(protocol.COMMAND_FIELDS[kind], fields))


def chunk(offset, data):
    return encode_frame(Kind.LOAD_CHUNK, pack_fields(protocol.COMMAND_FIELDS[Kind.LOAD_CHUNK],
                                                     {"offset": offset}) + bytes(data))


def ack(frame):
    assert frame.kind == Kind.ACK, frame
    return unpack_fields(protocol.ACK_FIELDS, frame.payload)


def nack(frame):
    assert frame.kind == Kind.NACK, frame
    return unpack_fields(protocol.NACK_FIELDS, frame.payload)


def rendered(frames, model, region):
    """The region's pixels from PIXELS frames (asserting every one came, in order)."""
    x0, y0, x1, y1 = region
    img = np.full((y1 - y0, x1 - x0, model.channels), -1, dtype=np.int64)
    for f in frames:
        if f.kind != Kind.PIXELS:
            continue
        head = unpack_fields(protocol.PIXELS_FIELDS, f.payload[:4], exact=True)
        px = np.frombuffer(f.payload[4:], dtype=np.uint8).reshape(-1, model.channels)
        img[head["y"] - y0, head["x"] - x0:head["x"] - x0 + len(px)] = px
    return img


def _done(kind):
    return lambda frames: any(f.kind in (Kind.ACK, Kind.NACK) and f.payload[0] == kind for f in frames)


def _system(model):
    core = InrCore(model, lanes=2, envelope=ENVELOPE)
    return core, LinkedCore(core, divisor=DIVISOR, clock_hz=48e6)


def test_info_status_render_and_refusals():
    gray, _ = _models()
    core, dut = _system(gray)
    host = LineHost(DIVISOR)
    out = {}

    async def tb(ctx):
        out["info"] = await exchange(ctx, dut, host, encode_frame(Kind.INFO), 1)
        out["render"] = await exchange(ctx, dut, host, command(Kind.RENDER, x0=1, y0=2, x1=6, y1=4), 0,
                                       until=_done(Kind.RENDER))
        out["bad region"] = await exchange(ctx, dut, host, command(Kind.RENDER, x0=0, y0=0, x1=7, y1=1), 1)
        out["empty"] = await exchange(ctx, dut, host, command(Kind.RENDER, x0=3, y0=0, x1=3, y1=1), 1)
        out["short"] = await exchange(ctx, dut, host, encode_frame(Kind.RENDER, b"\x00" * 6), 1)
        out["unknown"] = await exchange(ctx, dut, host, encode_frame(0x7E), 1)
        damaged = bytearray(encode_frame(Kind.INFO))
        damaged[-1] ^= 0x40
        out["damaged"] = await exchange(ctx, dut, host, bytes(damaged), 1)
        # A frame cut off: the board drops it after its idle timeout, answers
        # BAD_FRAME, and reads the next one.
        out["cut"] = await exchange(ctx, dut, host, encode_frame(Kind.STATUS)[:5], 1,
                                    max_cycles=protocol.IDLE_BYTE_TIMES * 10 * DIVISOR + 2000)
        out["status"] = await exchange(ctx, dut, host, encode_frame(Kind.STATUS), 1)

    run_sim(dut, [tb])
    info = unpack_fields(protocol.INFO_FIELDS, out["info"][0].payload)
    assert out["info"][0].kind == Kind.INFO_REPLY
    assert info["model_valid"] == 1 and info["model_crc"] == image_crc(load_image(core.plan))
    assert (info["width"], info["height"], info["channels"]) == (6, 6, 1)
    assert info["signature"] == ENVELOPE.signature(lanes=2) and info["max_width"] == 4 and info["lanes"] == 2
    assert info["divisor"] == DIVISOR and info["clock_hz"] == 48_000_000
    assert info["name"].rstrip(b"\0") == b"tiny"
    assert ack(out["render"][-1]) == {"command": Kind.RENDER, "detail": 10}
    want = GoldenModel(gray).render(region=(1, 2, 6, 4))
    assert np.array_equal(rendered(out["render"], gray, (1, 2, 6, 4)), want)
    assert nack(out["bad region"][0])["reason"] == Reason.BAD_REGION
    assert nack(out["empty"][0])["reason"] == Reason.BAD_REGION
    assert nack(out["short"][0])["reason"] == Reason.BAD_LENGTH
    assert nack(out["unknown"][0]) == {"command": 0x7E, "reason": Reason.UNKNOWN_COMMAND, "detail": 0}
    assert nack(out["damaged"][0])["reason"] == Reason.BAD_FRAME
    assert nack(out["cut"][0])["reason"] == Reason.BAD_FRAME
    status = unpack_fields(protocol.STATUS_FIELDS, out["status"][0].payload)
    assert status["bad_frames"] == 2 and status["good_frames"] == 7 and status["loading"] == 0


def test_load_checks_every_chunk_and_the_commit():
    """A chunk out of order is refused, a repeated one acknowledged and not
    written, a commit before the end or with a wrong CRC refused (the old
    model still renders); a good commit installs the RGB model."""
    gray, rgb = _models()
    core, dut = _system(gray)
    image = load_image(core.plan.with_model(rgb))
    crc = image_crc(image)
    host = LineHost(DIVISOR)
    region = (0, 0, 5, 2)
    out = {}
    half = (len(image) // 2) & ~1

    async def tb(ctx):
        out["begin"] = await exchange(ctx, dut, host, command(Kind.LOAD_BEGIN, length=len(image)), 1)
        out["gap"] = await exchange(ctx, dut, host, chunk(2, image[2:10]), 1)
        out["first"] = await exchange(ctx, dut, host, chunk(0, image[:half]), 1)
        # the same chunk again, with other data: acknowledged, not written
        out["again"] = await exchange(ctx, dut, host, chunk(0, bytes(half)), 1)
        out["early"] = await exchange(ctx, dut, host, command(Kind.COMMIT, length=len(image), crc=crc), 1)
        out["rest"] = await exchange(ctx, dut, host, chunk(half, image[half:]), 1)
        out["wrong crc"] = await exchange(ctx, dut, host, command(Kind.COMMIT, length=len(image), crc=crc ^ 1), 1)
        out["old"] = await exchange(ctx, dut, host, command(Kind.RENDER, x0=0, y0=0, x1=5, y1=2), 0,
                                    until=_done(Kind.RENDER))
        out["commit"] = await exchange(ctx, dut, host, command(Kind.COMMIT, length=len(image), crc=crc), 1)
        out["info"] = await exchange(ctx, dut, host, encode_frame(Kind.INFO), 1)
        out["new"] = await exchange(ctx, dut, host, command(Kind.RENDER, x0=0, y0=0, x1=5, y1=2), 0,
                                    until=_done(Kind.RENDER))

    run_sim(dut, [tb])
    assert ack(out["begin"][0])["command"] == Kind.LOAD_BEGIN
    assert nack(out["gap"][0]) == {"command": Kind.LOAD_CHUNK, "reason": Reason.BAD_OFFSET, "detail": 0}
    assert ack(out["first"][0])["detail"] == half
    assert ack(out["again"][0])["detail"] == half
    assert nack(out["early"][0]) == {"command": Kind.COMMIT, "reason": Reason.INCOMPLETE, "detail": half}
    assert ack(out["rest"][0])["detail"] == len(image)
    wrong = nack(out["wrong crc"][0])
    assert wrong["reason"] == Reason.BAD_IMAGE_CRC and wrong["detail"] == crc
    assert np.array_equal(rendered(out["old"], gray, region), GoldenModel(gray).render(region=region))
    assert ack(out["commit"][0]) == {"command": Kind.COMMIT, "detail": crc}
    info = unpack_fields(protocol.INFO_FIELDS, out["info"][0].payload)
    assert (info["model_crc"], info["width"], info["height"], info["channels"]) == (crc, 5, 5, 3)
    assert np.array_equal(rendered(out["new"], rgb, region), GoldenModel(rgb).render(region=region))


@pytest.mark.parametrize("arith,timing_registers", [("fp32", True), ("fp32", False), ("int", True)])
def test_fixed_model_core_on_the_link_renders_and_refuses_loads(arith, timing_registers):
    """A core whose model is fixed behind the same link — the float core,
    and the integer core built with ``loadable=False``: INFO says the
    fixed-model format (no staging, the model image's CRC, the model's
    shape), RENDER's pixels are the golden model's, every load command is
    refused with FIXED_MODEL and STATUS counts the frames; the float core
    with and without the link's timing registers (the iCE40 float build
    leaves them out)."""
    import zlib

    from dhq_rtl.gateware.float32.plan import FloatCorePlan, FloatUnits
    from dhq_rtl.golden_float32 import FloatGoldenModel
    from dhq_rtl.model_image import dumps
    model = random_model(width=4, depth=2, size=5, seed=2, channels=3, rotate=False)
    if arith == "fp32":
        plan = FloatCorePlan(model, lanes=2, buffers=3, units=FloatUnits(sine_ii=3),
                             link_timing_registers=timing_registers)
        core, golden = InrCore(model, plan=plan), FloatGoldenModel(model)
    else:
        core, golden = InrCore(model, lanes=2, buffers=3, loadable=False), GoldenModel(model)
    dut = LinkedCore(core, divisor=DIVISOR, clock_hz=24e6)
    assert dut.controller.timing_registers is timing_registers
    with pytest.raises(TypeError, match="timing_registers must be a bool"):
        BoardController(core.plan, divisor=DIVISOR, clock_hz=24e6, model_crc=None, timing_registers=0)
    assert not hasattr(core, "staging") and dut.model_crc == zlib.crc32(dumps(model))
    host = LineHost(DIVISOR)
    out = {}
    region = (1, 2, 4, 4)

    async def tb(ctx):
        out["info"] = await exchange(ctx, dut, host, encode_frame(Kind.INFO), 1)
        out["render"] = await exchange(ctx, dut, host, command(Kind.RENDER, x0=1, y0=2, x1=4, y1=4), 0,
                                       until=_done(Kind.RENDER))
        out["begin"] = await exchange(ctx, dut, host, command(Kind.LOAD_BEGIN, length=64), 1)
        out["chunk"] = await exchange(ctx, dut, host, chunk(0, b"\x01\x02"), 1)
        out["commit"] = await exchange(ctx, dut, host, command(Kind.COMMIT, length=64, crc=0), 1)
        out["bad region"] = await exchange(ctx, dut, host, command(Kind.RENDER, x0=0, y0=0, x1=6, y1=1), 1)
        # Bits above the image's size bits, in either byte of a coordinate.
        out["high x1"] = await exchange(ctx, dut, host, command(Kind.RENDER, x0=0, y0=0, x1=0x104, y1=1), 1)
        out["high y0"] = await exchange(ctx, dut, host, command(Kind.RENDER, x0=0, y0=8, x1=4, y1=1), 1)
        out["again"] = await exchange(ctx, dut, host, command(Kind.RENDER, x0=0, y0=4, x1=5, y1=5), 0,
                                      until=_done(Kind.RENDER))
        out["status"] = await exchange(ctx, dut, host, encode_frame(Kind.STATUS), 1)

    run_sim(dut, [tb])
    info = unpack_fields(protocol.INFO_FIELDS, out["info"][0].payload)
    assert info["load_format"] == protocol.FIXED_MODEL_FORMAT and info["staging_bytes"] == 0
    assert info["model_valid"] == 1 and info["model_crc"] == zlib.crc32(dumps(model))
    assert (info["width"], info["height"], info["channels"]) == (5, 5, 3)
    assert info["lanes"] == 2 and info["pixel_bits"] == model.pixel_bits
    assert info["name"].rstrip(b"\0") == arith.encode()
    assert ack(out["render"][-1]) == {"command": Kind.RENDER, "detail": 6}
    assert np.array_equal(rendered(out["render"], model, region), golden.render(region=region))
    for name, kind in (("begin", Kind.LOAD_BEGIN), ("chunk", Kind.LOAD_CHUNK), ("commit", Kind.COMMIT)):
        assert nack(out[name][0]) == {"command": kind, "reason": Reason.FIXED_MODEL, "detail": 0}
    for name in ("bad region", "high x1", "high y0"):
        assert nack(out[name][0])["reason"] == Reason.BAD_REGION, name
    assert np.array_equal(rendered(out["again"], model, (0, 4, 5, 5)), golden.render(region=(0, 4, 5, 5)))
    status = unpack_fields(protocol.STATUS_FIELDS, out["status"][0].payload)
    assert status["good_frames"] == 10 and status["bad_frames"] == 0 and status["loading"] == 0
