"""Run the core in Amaranth's Python simulator (the reference engine).

Slow (a few thousand cycles per second) but needs nothing beyond Amaranth;
it drives the core with exactly the cycle protocol of ``sim/driver.cpp``
(see :mod:`.stimulus`), so its beat cycles can be compared with the
compiled engine's one for one.
"""

import time

import numpy as np
from amaranth.sim import Simulator

from ..errors import ToolchainError
from .stimulus import SimResult, pack_region, ready_pattern, stall_threshold

__all__ = ["run_pysim"]


def run_pysim(core, region, *, stall=0.0, seed=1, idle_limit=1_000_000, progress=None):
    """Simulate ``core`` rendering ``region = (x0, y0, x1, y1)``.

    ``progress(n)`` (optional) is called with the number of new pixels as they
    arrive. Raises :class:`~dhq_rtl.errors.ToolchainError` if the core stops
    producing pixels for ``idle_limit`` cycles or never drops ``busy``.
    """
    x0, y0, x1, y1 = region
    npix = (x1 - x0) * (y1 - y0)
    word = pack_region(core.region.shape(), region)
    threshold = stall_threshold(stall)
    beat_cycles, payloads = [], []
    state = {}

    async def bench(ctx):
        region_port = core.region.as_value()
        n = last_beat = 0
        t0 = time.perf_counter()
        ctx.set(region_port, word)
        ctx.set(core.start, 1)
        ready = None
        while len(payloads) < npix:
            if n == 1:
                ctx.set(core.start, 0)
            now = ready_pattern(seed, threshold, n)
            if now != ready:  # writing only changes keeps the testbench out of the way
                ready = now
                ctx.set(core.pixels.ready, ready)
            if ready and ctx.get(core.pixels.valid):
                beat_cycles.append(n)
                payloads.append(ctx.get(core.pixels.payload))
                last_beat = n
                if progress is not None:
                    progress(1)
            elif n - last_beat > idle_limit:
                state["error"] = (f"no pixel for {idle_limit} cycles (cycle {n}, "
                                  f"{len(payloads)} of {npix} pixels received)")
                return
            await ctx.tick()
            n += 1
        cycles = n
        ctx.set(core.start, 0)
        while True:
            ctx.set(core.pixels.ready, ready_pattern(seed, threshold, n))
            if not ctx.get(core.busy):
                break
            if n - last_beat > idle_limit:
                state["error"] = f"busy still high {idle_limit} cycles after the last pixel"
                return
            await ctx.tick()
            n += 1
        state.update(cycles=cycles, busy_cycles=n, seconds=time.perf_counter() - t0)

    sim = Simulator(core)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    if "error" in state:
        raise ToolchainError(f"pysim: {state['error']}")
    return SimResult(engine="pysim", region=tuple(region),
                     beat_cycles=np.asarray(beat_cycles, dtype=np.int64),
                     payloads=np.asarray(payloads, dtype=np.uint64),
                     cycles=state["cycles"], busy_cycles=state["busy_cycles"], seconds=state["seconds"])
