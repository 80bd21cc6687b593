"""Shared helpers for gateware tests: stream sources/sinks with random stalls.

Use from an async testbench (``sim.add_testbench``)::

    async def source(ctx):
        await stream_source(ctx, dut.i, [{"data": 1}, {"data": 2}], rng, stall_prob=0.3)

    async def sink(ctx):
        got = await stream_sink(ctx, dut.o, 2, rng, stall_prob=0.3)

    run_sim(dut, [source, sink])

Payloads are whatever ``ctx.set`` accepts for the stream's payload (an int,
or a dict for a :class:`~amaranth.lib.data.StructLayout`); the sink returns
what ``ctx.get`` gives (an int, or a :class:`~amaranth.lib.data.Const` whose
fields read as attributes); :func:`field` extracts one field as an ``int``
from a list of them.
"""

from amaranth.hdl import Elaboratable, Module, ResetInserter, Signal
from amaranth.sim import Simulator

__all__ = ["stream_source", "stream_sink", "stream_full_rate", "stream_through", "tagged_beats", "reset_mid_stream",
           "field", "run_sim", "ResetWrapper"]


async def stream_source(ctx, stream, payloads, rng=None, stall_prob=0.0):
    """Send ``payloads`` in order on ``stream`` (the DUT's input).

    Before each beat, with probability ``stall_prob`` per cycle, ``valid``
    stays low for a cycle (``rng``: a :class:`numpy.random.Generator` or
    :class:`random.Random`; ``None`` means no stalls). Once raised, ``valid``
    stays high until the beat is taken, as the stream rules demand. Returns
    the cycle count spent.
    """
    cycles = 0
    for payload in payloads:
        while rng is not None and stall_prob > 0 and rng.random() < stall_prob:
            ctx.set(stream.valid, 0)
            await ctx.tick()
            cycles += 1
        ctx.set(stream.payload, payload)
        ctx.set(stream.valid, 1)
        while True:
            # ready as the DUT saw it just before the clock edge
            _, _, ready = await ctx.tick().sample(stream.ready)
            cycles += 1
            if ready:
                break
    ctx.set(stream.valid, 0)
    return cycles


async def stream_sink(ctx, stream, count, rng=None, stall_prob=0.0, max_cycles=1_000_000):
    """Collect ``count`` payloads from ``stream`` (the DUT's output).

    Each cycle ``ready`` is low with probability ``stall_prob`` (``rng`` as in
    :func:`stream_source`). Returns the list of payloads, in arrival order.
    Raises ``AssertionError`` if they have not all arrived after
    ``max_cycles`` cycles (a hung or lossy DUT fails instead of hanging).
    """
    got = []
    cycles = 0
    while len(got) < count:
        cycles += 1
        if cycles > max_cycles:
            raise AssertionError(f"stream sink: only {len(got)} of {count} beats after {max_cycles} cycles")
        stall = rng is not None and stall_prob > 0 and rng.random() < stall_prob
        ctx.set(stream.ready, 0 if stall else 1)
        _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
        if valid and not stall:
            got.append(payload)
    ctx.set(stream.ready, 0)
    return got


async def stream_full_rate(ctx, source, sink, payloads, count, max_cycles=1_000_000):
    """Drive ``payloads`` back to back on ``source`` (``valid`` high whenever a
    beat is left) with ``sink.ready`` always high, until ``count`` beats came
    out of ``sink``. Returns ``(accepted, emitted)``: the cycle numbers at
    which each input beat was taken, and ``(cycle, payload)`` for each output
    beat, counted from the call. A block that sustains one beat per cycle
    shows ``accepted == range(len(payloads))`` and consecutive output cycles;
    its latency is ``emitted[0][0] - accepted[0]``.
    """
    accepted, emitted = [], []
    ctx.set(sink.ready, 1)
    cycle = 0
    while len(emitted) < count:
        if cycle > max_cycles:
            raise AssertionError(f"full-rate run: only {len(emitted)} of {count} beats after {max_cycles} cycles")
        k = len(accepted)
        if k < len(payloads):
            ctx.set(source.payload, payloads[k])
            ctx.set(source.valid, 1)
        else:
            ctx.set(source.valid, 0)
        _, _, ready, valid, payload = await ctx.tick().sample(source.ready, sink.valid, sink.payload)
        if k < len(payloads) and ready:
            accepted.append(cycle)
        if valid:
            emitted.append((cycle, payload))
        cycle += 1
    ctx.set(source.valid, 0)
    ctx.set(sink.ready, 0)
    return accepted, emitted


def field(payloads, name):
    """``[int(getattr(p, name)) for p in payloads]``: one field of a list of struct payloads."""
    return [int(getattr(p, name)) for p in payloads]


class ResetWrapper(Elaboratable):
    """Wraps ``dut`` so that a testbench can reset its ``sync`` domain in the
    middle of a run: ``ctx.set(wrapper.rst, 1)`` resets every register of the
    DUT (the ports stay the DUT's own signals)."""

    def __init__(self, dut, domain="sync"):
        self.dut = dut
        self.domain = domain
        self.rst = Signal()

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = ResetInserter({self.domain: self.rst})(self.dut)
        return m


def run_sim(dut, testbenches, vcd=None, *, processes=(), clock_period=1e-6, deadline=None):
    """Simulate ``dut`` with a ``sync`` clock and the given async testbenches.

    ``testbenches``: async functions ``f(ctx)`` added with ``add_testbench``
    (the run ends when all of them return); ``processes``: background ones
    added with ``add_process``. ``vcd``: a path to write a waveform to.
    ``deadline``: simulated seconds after which the run stops (a hung DUT
    then fails the test's own checks instead of hanging).
    """
    sim = Simulator(dut)
    sim.add_clock(clock_period)
    for tb in testbenches:
        sim.add_testbench(tb)
    for p in processes:
        sim.add_process(p)
    if vcd is not None:
        with sim.write_vcd(vcd):
            _run(sim, deadline)
    else:
        _run(sim, deadline)
    return sim


def _run(sim, deadline):
    if deadline is None:
        sim.run()
    else:
        sim.run_until(deadline)


def tagged_beats(dut, fields, tag_every=1):
    """Payload dicts from ``fields`` (a list of dicts); where the DUT has a
    ``tag`` field, beat ``k`` gets tag ``(k // tag_every) mod 2**tag_width``."""
    beats = []
    for k, beat in enumerate(fields):
        beat = dict(beat)
        if getattr(dut, "tag_width", 0):
            beat["tag"] = (k // tag_every) % (1 << dut.tag_width)
        beats.append(beat)
    return beats


def stream_through(dut, beats, rng, in_stall=0.3, out_stall=0.3, drain=None):
    """Push ``beats`` into ``dut.i`` and collect as many beats from ``dut.o``,
    both with random stalls; then hold ``ready`` high for ``drain`` cycles
    (default ``dut.latency + 4``) and assert that nothing more comes out, so a
    duplicated beat fails. Returns the output payloads in arrival order."""
    out = {}
    drain = dut.latency + 4 if drain is None else drain

    async def source(ctx):
        await stream_source(ctx, dut.i, beats, rng, in_stall)

    async def sink(ctx):
        out["beats"] = await stream_sink(ctx, dut.o, len(beats), rng, out_stall)
        ctx.set(dut.o.ready, 1)
        extra = 0
        for _ in range(drain):
            _, _, valid = await ctx.tick().sample(dut.o.valid)
            extra += int(valid)
        out["extra"] = extra

    run_sim(dut, [source, sink])
    assert out["extra"] == 0, f"{out['extra']} extra beats after the stream"
    return out["beats"]


def reset_mid_stream(top, dut, junk, fresh, rng, out_count=None, in_stall=0.3, out_stall=0.3,
                     expect_busy=False):
    """Push ``junk`` beats into ``dut`` (wrapped in ``top``, a
    :class:`ResetWrapper`) while its output is blocked, pulse the reset, check
    that the output went invalid, then stream ``fresh`` through with random
    stalls and return the ``out_count`` (default ``len(fresh)``) output
    payloads. ``expect_busy``: also check that the junk reached the output
    before the reset, so the reset really had something to discard."""
    out = {}

    async def source(ctx):
        ctx.set(dut.o.ready, 0)
        ctx.set(dut.i.valid, 1)
        for beat in junk:
            ctx.set(dut.i.payload, beat)
            await ctx.tick()
        ctx.set(dut.i.valid, 0)
        if expect_busy:
            assert ctx.get(dut.o.valid) == 1
        ctx.set(top.rst, 1)
        await ctx.tick()
        ctx.set(top.rst, 0)
        assert ctx.get(dut.o.valid) == 0
        out["reset_done"] = True
        await stream_source(ctx, dut.i, fresh, rng, in_stall)

    async def sink(ctx):
        while not out.get("reset_done"):
            await ctx.tick()
        out["beats"] = await stream_sink(ctx, dut.o, len(fresh) if out_count is None else out_count,
                                         rng, out_stall)

    run_sim(top, [source, sink])
    return out["beats"]
