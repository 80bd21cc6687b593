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
from .descriptors import ModelDescriptors, descriptor_init, descriptor_layout
from .job_sequencer import AccumulatorQueue, JobSequencer
from .mac import MacArray, layer_weight_rows
from .model_store import ModelStore, install_signature, staging_signature
from .pixel_queue import PixelQueue
from .plan import CorePlan
from .postprocess import PostProcessing
from .vector_arbiter import VectorArbiter

__all__ = ["InrCore", "ARITHMETICS", "config_signature", "model_weight_rows"]

#: Number formats of the core: the integer (DHQ) datapath, IEEE-754 binary32.
ARITHMETICS = ("int", "fp32")


def config_signature(plan):
    """The configuration bus (driven by the load path's installer): a write of
    ``data`` (the low bits of an entry of section ``target``) to entry
    ``addr`` when bit ``target`` of ``en`` is high (one strobe per section,
    at most one high: each memory's write enable is a register); see
    :class:`~.plan.SectionPlan`."""
    return wiring.Signature({
        "en": Out(len(plan.sections)),
        "addr": Out(range(max(s.max_entries for s in plan.sections))),
        "data": Out(plan.config_data_bits),
    })


def model_weight_rows(plan):
    """The weight memory's rows for the plan's model (``weight_rows`` ×
    ``lanes``; the rows past the model's are zero)."""
    layers = plan.model.layers
    rows = np.zeros((plan.weight_rows, plan.lanes), dtype=np.int64)
    used = [layer_weight_rows(layers[i].weight, plan.lanes)[0] for i in range(1, plan.n_layers)]
    if used:
        block = np.concatenate(used)
        rows[:len(block)] = block
    return rows


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

    envelope : Envelope or None
        The models the core runs (default: the tightest around ``model``).
    spram, direct, scaler_multiplier, loadable
        The device has SPRAM; activations read beat by beat from their
        buffers; the scaler's multiplier; another model can be loaded (see
        :class:`~.plan.CorePlan`). Integer core only.
    plan : CorePlan, FloatCorePlan or None
        A plan made already (e.g. :meth:`CorePlan.for_board`,
        :meth:`~.float32.plan.FloatCorePlan.for_board`); then the other
        parameters are not used.

    The parameters make a :class:`~.plan.CorePlan` or a
    :class:`~.float32.plan.FloatCorePlan` (``self.plan``), which is all that
    :meth:`elaborate` reads. The core starts with ``model`` loaded; the
    integer core's staging memory and installer (``staging``, ``install``:
    :mod:`.model_store`) load another model of the envelope (the float core
    and an integer core with a fixed model, ``plan.loadable`` false, have
    neither); ``desc`` (out) are the loaded model's descriptors (a fixed
    model's: constants, which every part reads, so that synthesis folds
    them into the control).

    Ports: ``start`` (pulse, samples ``region``), ``region``, ``busy``,
    ``pixels`` (stream of ``pixel_bits · channels`` bits, channel ``c`` in
    bits ``[c·pixel_bits, (c+1)·pixel_bits)``, raster order of the region).
    ``region`` must hold from ``start`` to the cycle after it (the
    coordinate generator registers it then). A ``start`` while ``busy`` is
    ignored. An empty region (``x1 ≤ x0`` or
    ``y1 ≤ y0``) produces no pixel.
    """

    def __init__(self, model, *, lanes=16, dsp="generic", buffers=6, act_word_bits=32, envelope=None,
                 spram=False, direct=False, scaler_multiplier="logic", loadable=True, plan=None, arith="int",
                 units=None):
        if arith not in ARITHMETICS:
            raise ValueError(f"arith must be one of {ARITHMETICS}, got {arith!r}")
        from .float32.plan import FloatCorePlan
        if plan is None and arith == "fp32":
            plan = FloatCorePlan(model, lanes=lanes, dsp=dsp, buffers=buffers, units=units)
        elif plan is None:
            if units is not None:
                raise ValueError("units (FP32 latencies) apply to arith='fp32' only")
            plan = CorePlan(model, lanes=lanes, dsp=dsp, buffers=buffers, act_word_bits=act_word_bits,
                            envelope=envelope, spram=spram, direct=direct, scaler_multiplier=scaler_multiplier,
                            loadable=loadable)
        elif not isinstance(plan, (CorePlan, FloatCorePlan)) or plan.model is not model:
            raise TypeError("plan must be a CorePlan or a FloatCorePlan of the same model")
        self.plan = plan
        self.arith = plan.arith
        self.model = model
        self.envelope = plan.envelope
        self.lanes = plan.lanes
        self.dsp = plan.dsp
        self.buffers = plan.buffers
        size = plan.max_size
        members = {
            "start": In(1),
            "region": In(region_layout(size, size)),
            "busy": Out(1),
            "pixels": Out(stream.Signature(unsigned(plan.pixel_bits * plan.channels))),
        }
        if plan.loadable:
            members.update({"staging": In(staging_signature(plan)), "install": In(install_signature())})
        members["desc"] = Out(descriptor_layout(plan), init=descriptor_init(plan))
        super().__init__(members)
        #: Observation only (not a port): high in every cycle in which the MAC
        #: array issues a beat (``lanes`` multiplier slots); simulations count
        #: it to measure multiplier efficiency.
        self.mac_issue = Signal()

    def elaborate(self, platform):
        m = Module()
        plan = self.plan
        parts = self._parts() if plan.arith == "int" else self._float_parts()
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
        if plan.arith == "int":
            if plan.direct:
                m.d.comb += mac.late_act_data.eq(sequencer.late_act)
            if plan.loadable:
                self._load_path(m, parts)
            else:
                self._fixed_model(m, parts)
        m.d.comb += self.mac_issue.eq(sequencer.issue)
        self._region_control(m, coords, arbiter)
        return m

    def _parts(self):
        """The integer core's parts, by name (in the order :meth:`elaborate` unpacks them)."""
        plan = self.plan
        spram = plan.weights_in_spram
        # A fixed model's weight memory has no write port (a ROM).
        return {
            "coords": FirstLayerPhases(plan.model, max_neurons=plan.vec_max, sum_bits=plan.first_sum_bits,
                                       max_size=plan.envelope.max_size, consts_block_ram=not plan.loadable),
            "buffers": ActivationBuffers(plan),
            "sequencer": JobSequencer(plan),
            "mac": MacArray(model_weight_rows(plan), act_bits=plan.act_bits, weight_bits=plan.weight_bits,
                            acc_width=plan.acc_bits, tag_shape=plan.layer_width, dsp=plan.dsp, always_ready=True,
                            writable=plan.loadable and not spram, weight_memory="external" if spram else "bram",
                            late_act=plan.direct),
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

    def _load_path(self, m, parts):
        """The integer core's model store and descriptor registers: the
        staging memory, the installer's configuration bus into every
        loadable memory, the descriptors into the parts that read them."""
        plan = self.plan
        buffers, sequencer, mac, accumulators, arbiter, post, pixel_queue, coords = (
            parts[n] for n in ("buffers", "sequencer", "mac", "accumulators", "arbiter", "post", "pixel_queue",
                               "coords"))
        m.submodules.descriptors = descriptors = ModelDescriptors(plan)
        m.submodules.store = store = ModelStore(plan)
        wiring.connect(m, wiring.flipped(self.staging), store.staging)
        wiring.connect(m, wiring.flipped(self.install), store.install)
        spram = plan.weights_in_spram
        if spram:
            wiring.connect(m, mac.weight_read, store.weight_read)
        desc = descriptors.desc
        m.d.comb += [part.desc.eq(desc) for part in (buffers, sequencer, accumulators, arbiter, post, pixel_queue)]
        m.d.comb += [self.desc.eq(desc), coords.n_last.eq(desc.n0_last)]
        self._config_bus(m, store.config, {"descriptors": descriptors.write,
                                           "weights": store.weight_write if spram else mac.write,
                                           "scaler": post.scaler_write, "sine tables": post.table_write,
                                           "first layer": coords.write})

    def _fixed_model(self, m, parts):
        """A fixed model: its descriptors are constants, into every part that
        reads them; the memories' write ports (scaler, sine tables, first
        layer) are left undriven, never enabled, so their initial contents
        (the model's) stay."""
        plan = self.plan
        desc = descriptor_layout(plan).const(descriptor_init(plan))
        readers = [parts[n] for n in ("buffers", "sequencer", "accumulators", "arbiter", "post", "pixel_queue")]
        m.d.comb += [part.desc.eq(desc) for part in readers]
        m.d.comb += [self.desc.eq(desc), parts["coords"].n_last.eq(desc.n0_last)]

    def _config_bus(self, m, cfg, ports):
        """Route the installer's configuration bus to the write port of each
        section's memory (or the descriptor registers)."""
        for section in self.plan.sections:
            port = ports[section.name]
            m.d.comb += [port.en.eq(cfg.en[section.target]), port.addr.eq(cfg.addr),
                         port.data.eq(cfg.data[:len(port.data)])]

    def _region_control(self, m, coords, arbiter):
        """``start`` (registered, for timing), ``busy``, and the count of
        pixels in flight that limits admissions. The generator registers
        ``region`` the cycle after ``start``."""
        nb = self.plan.buffers
        begin = Signal()
        start_q = Signal()        # the cycle after an accepted start
        walk = Signal()           # the same cycle, for a region that is not empty
        # The generator's start is a register (timing: its set-up decisions
        # are then taken from flip-flops). The region is not empty when
        # x0 < x1 and y0 < y1: strict comparisons, each one carry chain (a
        # `<=` adds an equality test behind it).
        m.d.comb += begin.eq(self.start & ~self.busy)
        m.d.sync += [start_q.eq(begin),
                     walk.eq(begin & (self.region.x0 < self.region.x1) & (self.region.y0 < self.region.y1))]
        m.d.comb += [coords.start.eq(walk), coords.region.eq(self.region)]

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
