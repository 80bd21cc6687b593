# amaranth: UnusedElaboratable=no
"""PixelQueue: channel values into pixel words, in order, under back-pressure."""

import numpy as np
import pytest

from dhq_rtl.gateware.pixel_queue import PixelQueue
from dhq_rtl.gateware.plan import CorePlan
from dhq_rtl.synthetic import random_model

from tests.testbench import run_sim


@pytest.mark.parametrize("channels,buffers", [(1, 2), (3, 6), (2, 4)])
def test_words_in_order_with_stalls(channels, buffers):
    plan = CorePlan(random_model(width=8, depth=1, size=8, seed=1, channels=channels), lanes=4, buffers=buffers)
    dut = PixelQueue(plan)
    rng = np.random.default_rng(channels)
    pb = plan.pixel_bits
    pixels = rng.integers(0, 1 << pb, size=(40, channels))
    want = [sum(int(v) << (c * pb) for c, v in enumerate(px)) for px in pixels]
    got = []

    async def bench(ctx):
        sent = in_queue = 0
        channel = 0
        for cycle in range(5000):
            if len(got) == len(want):
                break
            # A pixel's channels arrive one per cycle at most; a new pixel only
            # while the queue has room (the core's admission limit).
            send = sent < len(pixels) and (channel > 0 or in_queue < plan.pixel_queue_depth) and rng.random() < 0.7
            ctx.set(dut.values.valid, send)
            if send:
                ctx.set(dut.values.payload, {"value": int(pixels[sent, channel]), "channel": channel})
                channel += 1
                if channel == channels:
                    channel, sent, in_queue = 0, sent + 1, in_queue + 1
            ctx.set(dut.pixels.ready, rng.random() < 0.4)
            _, _, valid, ready, word = await ctx.tick().sample(dut.pixels.valid, dut.pixels.ready, dut.pixels.payload)
            if valid and ready:
                got.append(int(word))
                in_queue -= 1

    run_sim(dut, [bench])
    assert got == want
