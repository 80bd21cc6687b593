# amaranth: UnusedElaboratable=no
"""The core's load path: a load image written into the staging memory and
installed replaces the running model; every pixel of the new model equals
its golden model; a refused image changes nothing."""

import numpy as np
import pytest

from dhq_rtl.envelope import Envelope
from dhq_rtl.gateware.core import InrCore
from dhq_rtl.golden import GoldenModel
from dhq_rtl.loader import load_image
from dhq_rtl.synthetic import random_model

from tests.testbench import run_sim

#: A small envelope: width ≤ 8, three sine layers, images up to 12², RGB,
#: hidden layers of width 8 may be rotated.
ENVELOPE = Envelope(name="test", max_width=8, max_layers=4, max_size=12, max_channels=3, weight_bits=8,
                    act_bits=8, lut_bits=12, mult_bits=8, phase_bits=10, max_shift=24, first_sum_bits=32,
                    rotate_width=8, max_req_shift=16)


def _models():
    a = random_model(width=8, depth=2, size=8, seed=1)                                   # rotated, gray
    b = random_model(width=4, depth=3, size=12, seed=2, channels=3, rotate=False, rotate_first=True,
                     act_midrise=True)                                                   # RGB, mid-rise
    return a, b


async def write_staging(ctx, core, image):
    """Write the bytes of ``image`` into the staging memory, a byte a cycle."""
    st = core.staging
    for i, byte in enumerate(image):
        ctx.set(st.addr, i // 2)
        ctx.set(st.wdata, byte | byte << 8)
        ctx.set(st.wbytes, 1 << (i % 2))
        ctx.set(st.we, 1)
        await ctx.tick()
    ctx.set(st.we, 0)


async def install(ctx, core, words):
    ctx.set(core.install.length, words)
    ctx.set(core.install.start, 1)
    await ctx.tick()
    ctx.set(core.install.start, 0)
    cycles = 0
    while ctx.get(core.install.busy):
        await ctx.tick()
        cycles += 1
    return ctx.get(core.install.ok), cycles


async def render(ctx, core, model, region):
    x0, y0, x1, y1 = region
    ctx.set(core.region, {"x0": x0, "y0": y0, "x1": x1, "y1": y1})
    ctx.set(core.start, 1)
    ctx.set(core.pixels.ready, 1)
    await ctx.tick()
    ctx.set(core.start, 0)
    got = []
    for _ in range(200_000):
        _, _, valid, payload = await ctx.tick().sample(core.pixels.valid, core.pixels.payload)
        if valid:
            got.append(int(payload))
            if len(got) == (x1 - x0) * (y1 - y0):
                break
    pb = model.pixel_bits
    px = [[(g >> (c * pb)) & ((1 << pb) - 1) for c in range(model.channels)] for g in got]
    return np.array(px, dtype=np.int64).reshape(y1 - y0, x1 - x0, model.channels)


def test_install_replaces_the_model_and_a_bad_image_changes_nothing():
    a, b = _models()
    core = InrCore(a, lanes=4, envelope=ENVELOPE)
    image_b = load_image(core.plan.with_model(b))
    bad = bytearray(image_b)
    bad[2] ^= 1                                    # the envelope signature
    results = {}

    async def tb(ctx):
        results["a"] = await render(ctx, core, a, (0, 0, 8, 2))
        await write_staging(ctx, core, bad)
        results["bad"] = await install(ctx, core, len(bad) // 2)
        results["a again"] = await render(ctx, core, a, (2, 5, 8, 7))
        await write_staging(ctx, core, image_b)
        results["good"] = await install(ctx, core, len(image_b) // 2)
        results["b"] = await render(ctx, core, b, (0, 0, 12, 2))
        results["b desc"] = (ctx.get(core.desc.width), ctx.get(core.desc.last_channel))
        results["short"] = await install(ctx, core, len(image_b) // 2 - 1)     # length disagrees

    run_sim(core, [tb])
    assert np.array_equal(results["a"], GoldenModel(a).render(region=(0, 0, 8, 2)))
    assert results["bad"][0] == 0
    assert np.array_equal(results["a again"], GoldenModel(a).render(region=(2, 5, 8, 7)))
    assert results["good"][0] == 1
    assert np.array_equal(results["b"], GoldenModel(b).render(region=(0, 0, 12, 2)))
    assert results["b desc"] == (12, 2)
    assert results["short"][0] == 0


def test_the_header_checks_refuse_each_bad_word_alone():
    """Each header check alone refuses an image whose length is consistent
    with its counts: the format, a count above its memory's entries, a count's
    high word; a count at its memory's limit is accepted."""
    a, _ = _models()
    core = InrCore(a, lanes=4, envelope=ENVELOPE)
    plan = core.plan
    image = load_image(plan)
    words = [image[i] | image[i + 1] << 8 for i in range(0, len(image), 2)]
    k = min(range(len(plan.sections)), key=lambda i: plan.sections[i].max_entries * plan.sections[i].words)
    section = plan.sections[k]

    def image_with(word, value):
        out = list(words)
        out[word] = value
        counts = [out[3 + 2 * i] for i in range(len(plan.sections))]
        length = plan.header_words + sum(c * s.words for c, s in zip(counts, plan.sections))
        return out, length

    cases = {
        "format": image_with(0, words[0] ^ 1),
        "count above": image_with(3 + 2 * k, section.max_entries + 1),
        "high word": image_with(4 + 2 * k, 1),
        "count at limit": image_with(3 + 2 * k, section.max_entries),
    }
    results = {}

    async def tb(ctx):
        st = core.staging
        for name, (image_words, length) in cases.items():
            for i, w in enumerate(image_words[:plan.header_words]):
                ctx.set(st.addr, i)
                ctx.set(st.wdata, w)
                ctx.set(st.wbytes, 0b11)
                ctx.set(st.we, 1)
                await ctx.tick()
            ctx.set(st.we, 0)
            results[name] = (await install(ctx, core, length))[0]

    run_sim(core, [tb])
    assert results == {"format": 0, "count above": 0, "high word": 0, "count at limit": 1}
