"""The INR accelerator core: every pixel of a region through the whole MLP.

:class:`InrCore` generates the raster coordinates of a region itself, runs
every layer of a model image on each pixel and streams the pixels out, bit for
bit equal to :meth:`dhq_rtl.golden.GoldenModel.render`.

Architecture
------------
The core is a composition of named parts, connected with
:func:`amaranth.lib.wiring.connect`; every part takes its parameters from
one :class:`~.plan.CorePlan`::

    coords ─────────► arbiter ──► post ──┬──► buffers ──► sequencer ──► mac ──► accumulators ─┐
    (layer-0 phases)   ▲    ▲            └──► pixel_queue ──► ``pixels``                       │
                       │    └── alloc (free buffers)                                          │
                       └──────────────────────────────────────────────────────────────────────┘

* ``coords`` (:class:`~.coords.FirstLayerPhases`): layer 0 as running sums.
* ``buffers`` (:class:`~.activation_buffers.ActivationBuffers`): the
  activation buffers (one memory, ``act_word`` activations per word), their
  allocator and the ready queue of ``(buffer, layer)`` vectors.
* ``sequencer`` (:class:`~.job_sequencer.JobSequencer`): stages the next
  ready vector (copied word by word into flip-flops, the buffer freed), runs
  a job per layer and pixel, one beat of ``lanes`` products per cycle.
* ``mac`` (:class:`~.mac.MacArray`): the input-parallel MAC array
  (``dsp="ice40"``: ``SB_MAC16`` in dual 8×8 mode, or 16×16 when operands
  are wider); ``out·ceil(in/lanes)`` beats per job.
* ``accumulators`` (:class:`~.job_sequencer.AccumulatorQueue`): the
  finished dot products, with the credit that keeps the MAC array from
  overrunning them.
* ``arbiter`` (:class:`~.vector_arbiter.VectorArbiter`): whole vectors, one
  at a time, from the accumulators or the coordinates into ``post``,
  allocating each hidden vector's destination buffer.
* ``post`` (:class:`~.postprocess.PostProcessing`): scaler → sine LUT →
  (Hadamard butterfly → requantizer when the next layer is rotated) →
  activations into their buffer, whose last element puts the vector into
  the ready queue; output-layer values go to ``pixel_queue``
  (:class:`~.pixel_queue.PixelQueue`) instead.
* Latency hiding: up to ``buffers − 1`` pixels are in flight; while the MAC
  array works on one pixel's layer the others are being post-processed.
  Pixels leave in raster order (jobs are served in readiness order).

Schedule and throughput
-----------------------
With ``C_i = ceil(in_i / lanes)``, the MAC array issues ``Σ_{i≥1} out_i·C_i``
beats per pixel (:meth:`CorePlan.beats_per_pixel`); the first layer costs no
MAC cycle at all. The steady-state cycles per pixel
(:meth:`CorePlan.cycles_per_pixel`, measured in ``tests/test_core.py``) is
set by the MAC array (its jobs, each at least the copy of the next job's
vector, ``load_words + 2`` cycles) or, for narrow models, by the arbiter
(one vector at a time) or by the latency of a pixel over the pixels in
flight. The ideal is ``MACs per pixel (layers ≥ 1) / lanes``; multiplier
efficiency is their ratio. Back-pressure on ``pixels`` is honoured (a
stalled sink stops new pixels from entering, nothing is lost).

Widths are all derived from the model image (:class:`~.plan.CorePlan`):
activations ``max act_bits``, weights ``max weight_bits``, accumulators
``max accumulator_bits`` (proven bounds), scaler ``acc + mult_bits + 1``
bits, phases ``phase_bits``.

Number format
-------------
``arith="fp32"`` builds the full-precision core for the float model the
model image carries (:class:`~.float32.plan.FloatCorePlan`, bit for bit
:class:`~dhq_rtl.golden_float32.FloatGoldenModel`): the same composition
and links, the activation buffers, accumulator queue, vector arbiter and
pixel queue shared, with the float parts where the arithmetic differs:

* ``coords``: :class:`~.float32.coords.FloatCoordinates` (each pixel's
  ``(u_x, u_y)`` as float32: vector 0, which layer 0 then takes as a MAC
  job like every other layer);
* ``sequencer``: :class:`~.float32.job_sequencer.FloatJobSequencer`
  (chunk-major beats, one chunk read per pass);
* ``mac``: :class:`~.float32.lanes.Fp32Lanes` (FP32 multipliers, adder
  tree, accumulator with the bias as start value);
* ``post``: :class:`~.float32.postprocess.FloatPostProcessing` (FP32 sine,
  pixel conversion).
"""

import numpy as np
from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .activation_buffers import ActivationBuffers
from .coords import FirstLayerPhases, region_layout
from .job_sequencer import AccumulatorQueue, JobSequencer
from .mac import MacArray, layer_weight_rows
from .pixel_queue import PixelQueue
from .plan import CorePlan
from .postprocess import PostProcessing
from .vector_arbiter import VectorArbiter

__all__ = ["InrCore", "ARITHMETICS"]

#: Number formats of the core: the integer (DHQ) datapath, IEEE-754 binary32.
ARITHMETICS = ("int", "fp32")


class InrCore(wiring.Component):
    """Whole-image INR inference core (see the module docstring).

    Parameters
    ----------
    model : ModelImage
        The integer model (any depth, widths, bit widths, rotate flags).
    lanes : int
        Multipliers of the MAC array (power of two, 1…256).
    dsp : "generic" | "ice40"
        ``generic``: plain ``*``; ``ice40``: ``SB_MAC16`` instances.
    buffers : int
        Activation buffers (≥ 2); up to ``buffers − 1`` pixels in flight.
    act_word_bits : int
        Width of the activation-buffer memory word (≥ 1; activations per word:
        the largest power of two that fits, at least one). Integer core only.
    arith : "int" | "fp32"
        The number format (module docstring, "Number format"); ``"fp32"``
        needs a model image that carries its float parameters.
    units : :class:`~.float32.plan.FloatUnits` or None
        The FP32 units' latencies and the sine's ``ii`` (``"fp32"`` only).

    The parameters make a :class:`~.plan.CorePlan` or a
    :class:`~.float32.plan.FloatCorePlan` (``self.plan``), which is all that
    :meth:`elaborate` reads.

    Ports: ``start`` (pulse, samples ``region``), ``region``, ``busy``,
    ``pixels`` (stream of ``pixel_bits · channels`` bits, channel ``c`` in
    bits ``[c·pixel_bits, (c+1)·pixel_bits)``, raster order of the region).
    A ``start`` while ``busy`` is ignored. An empty region (``x1 ≤ x0`` or
    ``y1 ≤ y0``) produces no pixel.
    """

    def __init__(self, model, *, lanes=16, dsp="generic", buffers=6, act_word_bits=32, arith="int", units=None):
        if arith not in ARITHMETICS:
            raise ValueError(f"arith must be one of {ARITHMETICS}, got {arith!r}")
        if arith == "fp32":
            from .float32.plan import FloatCorePlan
            self.plan = FloatCorePlan(model, lanes=lanes, dsp=dsp, buffers=buffers, units=units)
        else:
            if units is not None:
                raise ValueError("units (FP32 latencies) apply to arith='fp32' only")
            self.plan = CorePlan(model, lanes=lanes, dsp=dsp, buffers=buffers, act_word_bits=act_word_bits)
        self.arith = arith
        self.model = model
        self.lanes = lanes
        self.dsp = dsp
        self.buffers = buffers
        super().__init__({
            "start": In(1),
            "region": In(region_layout(model)),
            "busy": Out(1),
            "pixels": Out(stream.Signature(unsigned(model.pixel_bits * model.channels))),
        })
        #: Observation only (not a port): high in every cycle in which the MAC
        #: array issues a beat (``lanes`` multiplier slots); simulations count
        #: it to measure multiplier efficiency.
        self.mac_issue = Signal()

    def elaborate(self, platform):
        m = Module()
        parts = self._parts() if self.arith == "int" else self._float_parts()
        for name, part in parts.items():
            m.submodules[name] = part
        coords, buffers, sequencer, mac, accumulators, arbiter, post, pixel_queue = parts.values()
        links = [
            (buffers.ready, sequencer.jobs),            # ready queue → job staging
            (buffers.read, sequencer.read),             # vector copy
            (sequencer.release, buffers.release),       # buffer copied out
            (sequencer.beats, mac.i),
            (sequencer.credit, accumulators.credit),
            (mac.o, accumulators.push),
            (accumulators.pop, arbiter.acc),
            (buffers.alloc, arbiter.alloc),             # destination of a hidden vector
            (coords.source, arbiter.coords),            # vector 0 of the next pixel
            (arbiter.elements, post.elements),
            (post.path_done, arbiter.path_done),
            (post.write, buffers.write),
            (post.pixels, pixel_queue.values),
            (pixel_queue.pixels, wiring.flipped(self.pixels)),
        ]
        for source, sink in links:
            wiring.connect(m, source, sink)
        m.d.comb += self.mac_issue.eq(sequencer.issue)
        self._region_control(m, coords, arbiter)
        return m

    def _parts(self):
        """The integer core's parts, by name (in the order :meth:`elaborate` unpacks them)."""
        plan = self.plan
        layers = plan.model.layers
        weights = np.concatenate([layer_weight_rows(layers[i].weight, plan.lanes)[0]
                                  for i in range(1, plan.n_layers)])
        return {
            "coords": FirstLayerPhases(plan.model),
            "buffers": ActivationBuffers(plan),
            "sequencer": JobSequencer(plan),
            "mac": MacArray(weights, act_bits=plan.act_bits, weight_bits=plan.weight_bits, acc_width=plan.acc_bits,
                            tag_shape=plan.layer_width, dsp=plan.dsp, always_ready=True),
            "accumulators": AccumulatorQueue(plan),
            "arbiter": VectorArbiter(plan),
            "post": PostProcessing(plan),
            "pixel_queue": PixelQueue(plan),
        }

    def _float_parts(self):
        """The float core's parts (the same names; see "Number format")."""
        from .float32.coords import FloatCoordinates
        from .float32.job_sequencer import FloatJobSequencer
        from .float32.lanes import Fp32Lanes
        from .float32.postprocess import FloatPostProcessing
        plan = self.plan
        return {
            "coords": FloatCoordinates(plan),
            "buffers": ActivationBuffers(plan),
            "sequencer": FloatJobSequencer(plan),
            "mac": Fp32Lanes(plan),
            "accumulators": AccumulatorQueue(plan),
            "arbiter": VectorArbiter(plan),
            "post": FloatPostProcessing(plan),
            "pixel_queue": PixelQueue(plan),
        }

    def _region_control(self, m, coords, arbiter):
        """``start``/``region`` (registered, for timing), ``busy``, and the
        count of pixels in flight that limits admissions."""
        nb = self.plan.buffers
        begin = Signal()
        start_q = Signal()        # the cycle after an accepted start
        walk = Signal()           # the same cycle, for a region that is not empty
        region = Signal.like(self.region)
        empty = (self.region.x1 <= self.region.x0) | (self.region.y1 <= self.region.y0)
        m.d.comb += begin.eq(self.start & ~self.busy)
        m.d.sync += [start_q.eq(begin), walk.eq(begin & ~empty)]
        with m.If(begin):
            m.d.sync += region.eq(self.region)
        m.d.comb += [coords.start.eq(walk), coords.region.eq(region)]

        active = Signal()            # a region is being rendered
        outstanding = Signal(range(nb + 1))
        accepted = Signal()
        m.d.comb += [
            self.busy.eq(active | start_q),
            accepted.eq(self.pixels.valid & self.pixels.ready),
            arbiter.room.eq(active & (outstanding < nb - 1)),
        ]
        m.d.sync += outstanding.eq(outstanding + arbiter.admit - accepted)
        with m.If(walk):
            m.d.sync += active.eq(1)
        with m.Elif(coords.done & (outstanding == 0)):
            m.d.sync += active.eq(0)
