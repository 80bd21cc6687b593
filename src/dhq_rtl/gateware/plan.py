"""The plan of the accelerator core: what :class:`~.core.InrCore` builds.

:class:`CorePlan` is a pure-Python description of the core for one
:class:`~dhq_rtl.envelope.Envelope` (the set of model images the hardware
runs) and one set of parameters (lanes, DSP kind, activation buffers), with
one model image loaded: every width, every memory with its depth × width,
every FIFO depth, the load image's sections, the layer descriptors the
control reads, and the schedule (cycles per pixel) of the loaded model. It
elaborates nothing. The core's parts (:mod:`.activation_buffers`,
:mod:`.job_sequencer`, :mod:`.vector_arbiter`, :mod:`.postprocess`,
:mod:`.pixel_queue`, :mod:`.model_store`) take their parameters from it,
and the resource estimate (:mod:`dhq_rtl.estimate`), the load image
(:mod:`dhq_rtl.loader`) and the build reports read the same object, so the
design and its estimate cannot drift apart: ``tests/test_core.py`` checks
that the memories the elaborated core instantiates are exactly
:attr:`CorePlan.memories`.

Two kinds of numbers
--------------------
*Structural* numbers come from the envelope alone: the datapath's widths,
the memories' sizes, the index and address widths (a model loaded later
must fit them). *Per-model* numbers (a layer's neurons and chunks, its first
weight row, its sine table, shifts and rotation) come from the loaded model:
they are what the layer descriptors hold (:mod:`.descriptors`), what the
load image carries, and what the schedule is stepped with. Without an
envelope the plan takes the tightest one around the model
(:meth:`Envelope.of_model <dhq_rtl.envelope.Envelope.of_model>`); the
structural numbers are then the model's own.

Schedule
--------
Per pixel the MAC array runs one job per layer ``i ≥ 1`` (layer 0 is running
sums, no multiplier); the vector arbiter feeds the post-processing chain one
vector at a time (layer 0's phases, then each layer's accumulators). Up to
``buffers − 1`` pixels are in flight. :meth:`CorePlan.cycles_per_pixel` is
the steady-state rate that results, from :mod:`.schedule` (the core's
control stepped cycle by cycle with the plan's latencies);
``tests/test_core.py`` checks it against the RTL in simulation, pixel time
for pixel time, on many shapes.
"""

import math
from dataclasses import dataclass

import numpy as np
from amaranth.utils import ceil_log2

from ..envelope import Envelope
from ..fixedpoint import signed_max
from ..model_image import ModelImage
from .args import check_bool, check_int, is_int
from .butterfly import delay_lines
from .scaler import dsp_pieces
from .mac import DSP_KINDS
from .sine_lut import quarter_wave_symmetry

__all__ = ["CorePlan", "MemoryPlan", "SectionPlan", "board_lanes", "fixed_model_lanes", "direct_reads", "MAX_LANES", "STAGING_WORD_BITS", "SPRAM_WORDS"]

#: Most multipliers a MAC array may have.
MAX_LANES = 256
#: Delay lines of the butterfly at least this deep are block RAM (its default).
BUTTERFLY_MIN_RAM_DEPTH = 16
#: Width of a staging-memory word (one iCE40UP5K SPRAM word).
STAGING_WORD_BITS = 16
#: Words of one SB_SPRAM256KA.
SPRAM_WORDS = 16384
#: SPRAMs side by side for the weight rows (the iCE40UP5K has four) and the
#: row they give a cycle.
WEIGHT_SPRAMS = 4
SPRAM_ROW_BITS = WEIGHT_SPRAMS * STAGING_WORD_BITS
#: Words of the load image's header: format, envelope signature (2), and a
#: 32-bit entry count per section (2 words each).
LOAD_FORMAT = 1


def _bits(n):
    """Bits of an unsigned counter that holds ``0 … n`` (at least 1)."""
    return max(1, int(n).bit_length())


def _pow2_ceil(n):
    return 1 << max(0, (int(n) - 1).bit_length())


def _words(bits):
    """Staging words an entry of ``bits`` bits occupies."""
    return -(-bits // STAGING_WORD_BITS)


def check_core_arguments(model, lanes, dsp, buffers, dsp_kinds):
    """The arguments every core plan takes: a model image, a power-of-two
    lane count up to :data:`MAX_LANES`, a DSP kind of ``dsp_kinds``, at
    least two activation buffers (``TypeError``/``ValueError`` otherwise)."""
    if not isinstance(model, ModelImage):
        raise TypeError(f"model must be a ModelImage, got {type(model).__name__}")
    if not is_int(lanes):
        raise TypeError(f"lanes must be an integer, not {lanes!r}")
    if lanes < 1 or lanes & (lanes - 1) or lanes > MAX_LANES:
        raise ValueError(f"lanes must be a power of two in [1, {MAX_LANES}], got {lanes}")
    if dsp not in dsp_kinds:
        raise ValueError(f"dsp must be one of {dsp_kinds}, got {dsp!r}")
    check_int("buffers", buffers, 2)


def board_lanes(board, envelope=None, lanes=None):
    """The lanes of a build: ``lanes`` if given, else the envelope's, else
    what the weight memory gives a cycle (SPRAM: 64 bits, 8 lanes of 8-bit
    weights), else the board's default."""
    if lanes is not None:
        return lanes
    if envelope is not None and envelope.lanes:
        return envelope.lanes
    if envelope is not None and envelope.weight_memory == "spram" and board.spram_bits > 0:
        return 1 << ((SPRAM_ROW_BITS // envelope.weight_bits).bit_length() - 1)
    return board.default_lanes


def fixed_model_lanes(model, board, lanes=None):
    """The lanes of a fixed-model build: ``lanes`` if given, else those of
    the loadable build of the same model (:func:`board_lanes` of its
    :meth:`Envelope.for_board <dhq_rtl.envelope.Envelope.for_board>`), so
    that leaving out the load path changes no cycle per pixel."""
    if lanes is not None:
        return lanes
    return board_lanes(board, Envelope.for_board(model, board))


def direct_reads(lanes, envelope, model):
    """Whether a build's core reads its activations beat by beat from the
    buffers (a buffer word of ``lanes`` activations, at most 64 bits: four
    EBR wide) instead of copying each vector into flip-flops first (what
    saves block RAM for wider arrays)."""
    act_bits = envelope.act_bits if envelope is not None else max(l.act_bits for l in model.layers[1:])
    return lanes * act_bits <= 64


@dataclass(frozen=True)
class MemoryPlan:
    """One memory of the core.

    ``path``: where it sits in the elaborated core (submodule names joined by
    dots, then the memory's own name); ``role``: what it holds; ``kind``:
    ``"ram"`` (a ``lib.memory.Memory``: block RAM or logic, as synthesis
    decides), ``"spram"`` (``SB_SPRAM256KA`` instances on the iCE40UP5K, a
    ``Memory`` in simulation); ``loadable``: written by the load path
    (initial contents: the loaded model's); ``block_ram``: it carries Yosys's
    ``ram_style = "block"`` attribute (block RAM even when small); ``rom``:
    constant contents (the float core's tables, a fixed model's memories:
    no write port, or one that is never enabled); ``undefined_collisions``:
    read through :func:`~.ram.read_port` (a read of the word written in the
    same cycle is undefined, so synthesis adds no read-first logic)."""

    path: str
    role: str
    width: int
    depth: int
    loadable: bool = False
    block_ram: bool = False
    kind: str = "ram"
    rom: bool = False
    undefined_collisions: bool = False

    @property
    def bits(self):
        return self.width * self.depth


@dataclass(frozen=True)
class SectionPlan:
    """One section of the load image: the entries of one loadable memory
    (or of the layer descriptors), ``entry_bits`` wide (``words`` staging
    words each, little-endian, LSB first), at most ``max_entries``;
    ``target`` is the section's number on the core's configuration bus."""

    name: str
    target: int
    entry_bits: int
    max_entries: int

    @property
    def words(self):
        return _words(self.entry_bits)


class CorePlan:
    """Everything about the core that follows from the envelope, the loaded
    model and the parameters.

    Parameters are those of :class:`~.core.InrCore`: ``model`` (the loaded
    model image), ``lanes`` (power of two, 1…256), ``dsp`` (the MAC
    array's product kind, :data:`~.mac.DSP_KINDS`: ``"generic"``, ``"ice40"``
    or ``"fabric"``, products in logic and no DSP), ``buffers`` (≥ 2), ``act_word_bits`` (≥ 1), ``envelope``
    (an :class:`~dhq_rtl.envelope.Envelope`; default: the tightest around
    ``model``), ``spram`` (the device has ``SB_SPRAM256KA``: the staging
    memory uses it), ``loadable`` (a bool, default true). :meth:`for_board`
    takes the DSP kind, the SPRAM and the default lanes from a board
    description.

    Fixed model (``loadable=False``): the core runs only ``model``. It has no
    load image (``sections`` empty, ``staging_words`` and ``staging_depth``
    0), no staging memory and no installer; every memory holds the model
    from its initial contents (``rom`` in :attr:`memories`) and the
    descriptors are constants. The envelope is the tightest around the model
    (``envelope`` must be left out: ``ValueError``), with the weight rows in
    block RAM: ``SB_SPRAM256KA`` has no initial contents, so the weights of a
    fixed model cannot live in SPRAM (a loadable core copies them there at
    power-on with its installer, which a fixed core does not have).

    Attributes (``L`` the loaded model's layers, ``L_max`` the envelope's,
    ``P`` lanes):

    * structural widths: ``act_bits``, ``weight_bits``, ``acc_bits``,
      ``mult_bits``, ``lut_bits``, ``phase_bits``, ``pixel_bits``,
      ``channels`` (the envelope's most), ``out_max``, ``vec_max``;
      ``layer_width``, ``buffer_width``, ``index_width`` (an output neuron),
      ``chunk_width``, ``weight_addr_width``, ``table_width``,
      ``shift_width``, ``req_shift_width``, ``size_bits``;
    * per layer of the loaded model (lists of length ``L``):
      ``out_features``, ``chunks[i] = ceil(in_i / P)`` (0 for layer 0),
      ``wbase`` (first weight row), ``next_rotated[i]`` (the layer fed by
      layer ``i``'s output rotates its input), ``table_of[i]`` (the sine
      table applied to layer ``i``'s output; identical tables stored once),
      ``requant_pairs[i]``, ``act_limits[i]``;
    * activation buffers: ``act_word`` activations per memory word,
      ``load_words`` words per vector, ``cpow`` chunks per stored vector;
    * FIFOs: ``ready_queue_depth``, ``accumulator_queue_depth``,
      ``pixel_queue_depth``;
    * ``memories``: every memory (:class:`MemoryPlan`), ``delay_lines``: the
      butterfly's delay lines ``(stage, entries, entry_bits, in_ram)``;
      ``sections``: the load image's sections (:class:`SectionPlan`),
      ``staging_words``;
    * DSPs: ``dual`` (two 8×8 products per ``SB_MAC16``), ``multipliers``,
      ``dsp_blocks`` (0 for ``dsp="fabric"``);
    * pipeline latencies the schedule uses: ``mac_latency``,
      ``scaler_latency``, ``lut_latency``, ``requant_latency``,
      ``butterfly_stages``.
    """

    #: The number format (:class:`~.float32.plan.FloatCorePlan` is ``"fp32"``).
    arith = "int"
    #: The post-processing chain takes every element (no back-pressure).
    post_paced = False
    #: The host link's controller keeps its timing registers
    #: (:class:`~.controller.BoardController`, ``timing_registers``): the
    #: integer core's clock needs them.
    link_timing_registers = True

    def __init__(self, model, lanes=16, dsp="generic", buffers=6, act_word_bits=32, *, envelope=None,
                 spram=False, direct=False, scaler_multiplier="logic", loadable=True):
        check_core_arguments(model, lanes, dsp, buffers, DSP_KINDS)
        check_int("act_word_bits", act_word_bits, 1)
        check_bool("spram", spram)
        check_bool("direct", direct)
        check_bool("loadable", loadable)
        if scaler_multiplier not in ("logic", "dsp"):
            raise ValueError(f"scaler_multiplier must be 'logic' or 'dsp', got {scaler_multiplier!r}")
        model.validate()
        if not loadable and envelope is not None:
            raise ValueError("a fixed model (loadable=False) takes no envelope: its core is the tightest "
                             "around the model")
        #: Any model of the envelope can be loaded (staging memory, installer);
        #: false: the core runs ``model`` only (class docstring, "Fixed model").
        self.loadable = loadable
        if envelope is None:
            envelope = Envelope.of_model(model)
        elif not isinstance(envelope, Envelope):
            raise TypeError(f"envelope must be an Envelope, got {type(envelope).__name__}")
        envelope.check(model)
        self.envelope = envelope
        self.model = model
        self.lanes = lanes
        self.dsp = dsp
        self.buffers = buffers
        self.act_word_bits = act_word_bits
        self.spram = spram
        self.direct = direct
        #: How the channel scaler multiplies: shifts and adds in logic, or a
        #: product that synthesis maps to DSPs (``scaler_dsp_blocks`` of them).
        self.scaler_multiplier = scaler_multiplier
        #: The weight rows live in the SPRAMs (the envelope asks for it and
        #: the device has them): 64 bits a cycle, shared with the staging.
        self.weights_in_spram = loadable and envelope.weight_memory == "spram" and spram
        if self.weights_in_spram and lanes * envelope.weight_bits > SPRAM_ROW_BITS:
            raise ValueError(f"{lanes} lanes of {envelope.weight_bits}-bit weights need "
                             f"{lanes * envelope.weight_bits} bits a cycle; the SPRAMs give {SPRAM_ROW_BITS} "
                             f"(at most {SPRAM_ROW_BITS // envelope.weight_bits} lanes)")
        #: The layout's signature (the envelope with these lanes): the load
        #: image carries it, the installer checks it.
        self.signature = envelope.signature(lanes)
        self.n_layers = len(model.layers)
        self.max_layers = envelope.max_layers
        self._widths()
        self._layer_tables()
        self._activation_words()
        self._dsps()
        self._latencies()
        self.sections = self._sections() if loadable else ()
        if not loadable:
            self.header_words = self.staging_words = 0
        self.memories = self._memories()
        self._cycles_per_pixel = None

    @classmethod
    def for_board(cls, model, board, *, lanes=None, buffers=6, envelope=None, loadable=True):
        """The plan of the core a build for ``board`` makes: its DSP kind, its
        SPRAM, the lanes of :func:`board_lanes` and the activation reads of
        :func:`direct_reads`. ``loadable=False``: a fixed model (no
        ``envelope``), by default with the lanes of the loadable build of
        the same model (:func:`fixed_model_lanes`: the same cycles per
        pixel)."""
        check_bool("loadable", loadable)
        if not loadable:
            if envelope is not None:
                raise ValueError("a fixed model (loadable=False) takes no envelope")
            lanes = fixed_model_lanes(model, board, lanes)
        else:
            lanes = board_lanes(board, envelope, lanes)
        plan = cls(model, lanes=lanes, dsp=board.dsp, buffers=buffers, envelope=envelope,
                   spram=board.spram_bits > 0, direct=direct_reads(lanes, envelope, model), loadable=loadable)
        # The scaler multiplies on DSPs when the MAC array leaves enough of
        # them (fewer logic cells; SPRAM builds use half the UP5K's DSPs).
        # Products in fabric mean no DSP anywhere. (The simulated twin of an
        # iCE40 build has generic products and the same plan otherwise.)
        if (board.family == "ice40" and plan.dsp != "fabric"
                and plan.dsp_blocks + plan.scaler_dsp_blocks <= board.budget.get("dsp", 0)):
            plan = plan.with_scaler_multiplier("dsp")
        return plan

    def with_scaler_multiplier(self, kind):
        """The same plan with the scaler's multiplier ``kind``."""
        return CorePlan(self.model, lanes=self.lanes, dsp=self.dsp, buffers=self.buffers,
                        act_word_bits=self.act_word_bits, envelope=self.envelope if self.loadable else None,
                        spram=self.spram, direct=self.direct, scaler_multiplier=kind, loadable=self.loadable)

    def with_model(self, model):
        """The plan of the same hardware with ``model`` loaded instead (the
        envelope must hold it: :class:`~dhq_rtl.envelope.EnvelopeError`); for
        a fixed model, the plan of the same parameters with ``model`` fixed
        (its own tightest envelope)."""
        return CorePlan(model, lanes=self.lanes, dsp=self.dsp, buffers=self.buffers,
                        act_word_bits=self.act_word_bits, envelope=self.envelope if self.loadable else None,
                        spram=self.spram, direct=self.direct, scaler_multiplier=self.scaler_multiplier,
                        loadable=self.loadable)

    # ------------------------------------------------------------ derivation
    def _widths(self):
        env, m, L = self.envelope, self.model, self.n_layers
        self.rot_n = env.rotate_width
        self.act_bits = env.act_bits
        self.weight_bits = env.weight_bits
        self.acc_bits = env.acc_bits
        self.mult_bits = env.mult_bits
        self.lut_bits = env.lut_bits
        self.phase_bits = env.phase_bits
        self.coord_bits = env.phase_bits    # vector 0's elements: layer 0's phases
        self.pixel_bits = env.pixel_bits
        self.channels = env.max_channels
        self.out_features = [l.out_features for l in m.layers]
        self.out_max = max(env.max_width, env.max_channels)
        self.vec_max = env.max_width
        self.chunks = [0] + [math.ceil(l.in_features / self.lanes) for l in m.layers[1:]]
        self.max_chunks = math.ceil(env.max_width / self.lanes)
        self.cpow = _pow2_ceil(self.max_chunks)
        self.layer_width = _bits(self.max_layers - 1)
        self.buffer_width = _bits(self.buffers - 1)
        self.index_width = _bits(self.out_max - 1)
        self.chunk_width = _bits(self.cpow - 1)
        self.channel_width = _bits(env.max_channels - 1)
        self.size_bits = _bits(env.max_size)
        self.max_size = env.max_size
        # The channel scaler's table covers every layer (layer 0's entries
        # are never read: its phases come from the running sums).
        self.scaler_mult_bits = env.mult_bits
        # The scaler's input holds an accumulator or a layer-0 phase (as a
        # positive number: one bit above the phase).
        self.scaler_acc_bits = max(self.acc_bits, self.phase_bits + 1)
        self.scaler_bias_bits = env.bias_bits
        self.scaler_channel_width = max(1, ceil_log2(self.out_max))
        self.shift_width = _bits(env.max_shift)
        self.req_shift_width = _bits(env.max_req_shift)
        # First layer: running sums of `first_sum_bits` bits; a model's
        # constants are scaled so that its phase is always bits
        # [first_shift, first_shift + phase_bits) (dhq_rtl.loader).
        self.first_sum_bits = env.first_sum_bits
        self.first_shift = env.first_sum_bits - env.phase_bits
        self.first_index_width = _bits(env.max_width - 1)

    def _layer_tables(self):
        env, m, L = self.envelope, self.model, self.n_layers
        layers = m.layers
        rotated = [bool(l.rotate) for l in layers]
        self.next_rotated = [rotated[i + 1] if i + 1 < L else False for i in range(L)]
        # Weight memory: one row of `lanes` weights per (layer, neuron,
        # chunk) of the loaded model; room for the envelope's largest.
        self.wbase = [0] * L
        rows = 0
        for i in range(1, L):
            self.wbase[i] = rows
            rows += layers[i].out_features * self.chunks[i]
        self.model_weight_rows = rows
        self.weight_rows = (env.max_layers - 2) * env.max_width * self.max_chunks + env.max_channels * self.max_chunks
        self.weight_addr_width = max(1, ceil_log2(self.weight_rows))
        # Sine tables of layers 1…L-1, identical ones stored once; table_of[i]
        # is the table applied to layer i's output (that of layer i + 1).
        self.tables, table_of_layer = [], [0] * L
        for i in range(1, L):
            lut = layers[i].lut
            for t, tab in enumerate(self.tables):
                if np.array_equal(tab, lut):
                    table_of_layer[i] = t
                    break
            else:
                table_of_layer[i] = len(self.tables)
                self.tables.append(lut)
        self.table_of = [table_of_layer[i + 1] if i + 1 < L else 0 for i in range(L)]
        # A fixed model stores its own distinct tables only.
        self.max_tables = env.max_layers - 1 if self.loadable else max(1, len(self.tables))
        self.table_width = max(1, ceil_log2(self.max_tables))
        self.quarter_wave = True          # the envelope requires it (Envelope.check)
        self.stored_table_entries = (1 << self.phase_bits) // 4
        self.complement = [quarter_wave_symmetry(t) == "complement" for t in self.tables]
        # Requantizer: the shift of the layer a rotated vector feeds (its
        # multiplier is 1); outputs saturate to the envelope's act_bits, then
        # to the fed layer's own.
        self.requant_pairs = [(int(layers[i + 1].req_mult), int(layers[i + 1].req_shift)) if i + 1 < L else (1, 0)
                              for i in range(L)]
        self.requant_bits = env.act_bits
        self.act_limits = [signed_max(layers[i + 1].act_bits) if i + 1 < L and rotated[i + 1]
                           else signed_max(env.act_bits) for i in range(L)]
        self.requant_limits = {i: signed_max(layers[i + 1].act_bits) for i in range(L - 1)
                               if rotated[i + 1] and layers[i + 1].act_bits < self.requant_bits}

    def _activation_words(self):
        # Activation buffers: `act_word` activations per memory word (the
        # largest power of two that fits act_word_bits, at least 1); a job's
        # whole input vector (cpow·lanes activations, `load_words` words) is
        # copied into flip-flops before the job starts.
        vp = self.cpow * self.lanes
        r = 1
        while r * 2 * self.act_bits <= self.act_word_bits and r * 2 <= vp:
            r *= 2
        if self.direct:
            # Direct reads: a word is a chunk (`lanes` activations), read
            # beat by beat by the running job.
            r = self.lanes
        self.act_word = r
        self.load_words = vp // r
        self.word_index_width = (self.load_words - 1).bit_length()
        self.lane_index_width = (r - 1).bit_length()
        self.ready_queue_depth = self.buffers
        # The ready queue is block RAM in the UP5K's envelope builds (direct
        # reads and SPRAM), where logic cells run short and block RAM is
        # spare; elsewhere its few words are flip-flops or distributed RAM.
        self.ready_queue_block_ram = self.direct and self.spram
        self.pixel_queue_depth = self.buffers
        # A pixel FIFO of RGB pixels is block RAM with direct reads (the
        # envelope builds, where logic cells are what runs short).
        self.pixel_queue_block_ram = self.direct and self.pixel_bits * self.channels >= 24
        # Room for a whole vector and the accumulators in flight in the MAC
        # array when the credit check last passed.
        self.accumulator_queue_depth = _pow2_ceil(self.out_max + 4)

    def _latencies(self):
        """Latencies of the pipelines (the blocks' own ``latency``; checked in
        ``tests/test_core.py``)."""
        self.mac_latency = 3 + ceil_log2(self.lanes)
        # acc × mult on DSPs: one 16×16 product (one SB_MAC16) per pair of
        # 16-bit pieces (ChannelScaler, multiplier="dsp").
        self.scaler_dsp_blocks = len(dsp_pieces(self.scaler_acc_bits, self.scaler_mult_bits))
        items = (self.scaler_mult_bits if self.scaler_multiplier == "logic" else self.scaler_dsp_blocks) + 1
        self.scaler_latency = 4 + ceil_log2(items)
        #: What multiplies the scaler's pieces: the MAC array's SB_MAC16
        #: instances on iCE40, a registered ``*`` elsewhere (simulation).
        self.scaler_dsp = "ice40" if self.dsp == "ice40" else "generic"
        self.lut_latency = 2
        self.requant_latency = 3
        self.butterfly_stages = ceil_log2(self.rot_n) if self.rot_n >= 2 else 0

    def _dsps(self):
        # Products in logic (dsp="fabric") take no DSP and pair nothing.
        self.dual = self.dsp != "fabric" and self.act_bits <= 8 and self.weight_bits <= 8
        if self.dsp == "ice40" and (self.act_bits > 16 or self.weight_bits > 16):
            raise ValueError("SB_MAC16 multiplies at most 16×16 bits")
        self.multipliers = self.lanes
        if self.dsp == "fabric":
            self.dsp_blocks = 0
        else:
            self.dsp_blocks = (self.lanes + 1) // 2 if self.dual else self.lanes

    def _sections(self):
        """The load image's sections, in order (their ``target`` numbers the
        configuration bus; :mod:`dhq_rtl.loader` writes them)."""
        from .descriptors import descriptor_entry_bits
        P = self.lanes
        sections = [
            SectionPlan("descriptors", 0, descriptor_entry_bits(self), self.max_layers + 1),
            SectionPlan("weights", 1, P * self.weight_bits, self.weight_rows),
            SectionPlan("scaler", 2, self.scaler_mult_bits + self.scaler_bias_bits,
                        self.max_layers << self.scaler_channel_width),
            SectionPlan("sine tables", 3, self.lut_bits, self.stored_table_entries * self.max_tables),
            SectionPlan("first layer", 4, self.first_sum_bits, 3 << self.first_index_width),
        ]
        self.header_words = 3 + 2 * len(sections)
        self.staging_words = self.header_words + sum(s.words * s.max_entries for s in sections)
        if self.weights_in_spram:
            # The staging memory's words interleaved over rows [0,
            # weight_row0) of the four SPRAMs, the weight rows after them:
            # weight_row0 is a multiple of the weight address's span, so
            # neither address needs an adder (model_store).
            self.weight_row0 = SPRAM_WORDS - (1 << self.weight_addr_width)
            room = WEIGHT_SPRAMS * self.weight_row0
            if self.staging_words > room:
                raise ValueError(f"the envelope's weight rows ({self.weight_rows}) and load image "
                                 f"({self.staging_words} words) do not fit four SPRAMs")
        return sections

    def section(self, name):
        """The :class:`SectionPlan` called ``name``."""
        for s in self.sections:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def config_data_bits(self):
        """Width of the configuration bus's data: the widest section entry."""
        return max(s.entry_bits for s in self.sections)

    def _memories(self):
        m, L, P = self.model, self.n_layers, self.lanes
        # A fixed model's memories keep their initial contents (their write
        # ports are never enabled).
        load, fixed = self.loadable, not self.loadable
        mems = [
            MemoryPlan("buffers.activations", "activation buffers", self.act_word * self.act_bits,
                       self.buffers * self.load_words, undefined_collisions=True),
            MemoryPlan("buffers.ready_queue.mem", "ready queue", self.buffer_width + self.layer_width + 3,
                       self.ready_queue_depth, block_ram=self.ready_queue_block_ram, undefined_collisions=True),
        ]
        if not self.weights_in_spram:
            mems.append(MemoryPlan("mac.weights", "weights", P * self.weight_bits, self.weight_rows, loadable=load,
                                   block_ram=True, rom=fixed, undefined_collisions=True))
        mems += [
            MemoryPlan("accumulators.fifo.mem", "accumulator FIFO",
                       self.acc_bits + self.layer_width + self.index_width + 3, self.accumulator_queue_depth,
                       undefined_collisions=True),
            MemoryPlan("coords.consts", "first-layer constants (DX, DY, base)", self.first_sum_bits,
                       3 << self.first_index_width, loadable=load, rom=fixed, block_ram=fixed,
                       undefined_collisions=True),
            MemoryPlan("coords.smem", "first-layer running sums (R and T)", self.first_sum_bits,
                       2 << self.first_index_width),
            MemoryPlan("post.scaler.table", "scaler table", self.scaler_mult_bits + self.scaler_bias_bits,
                       self.max_layers << self.scaler_channel_width, loadable=load, block_ram=True, rom=fixed,
                       undefined_collisions=True),
            MemoryPlan("post.lut.rom", "sine tables", self.lut_bits, self.stored_table_entries * self.max_tables,
                       loadable=load, rom=fixed, undefined_collisions=True),
        ]
        self.delay_lines = (delay_lines(self.rot_n, self.lut_bits, self.buffer_width + self.layer_width,
                                        BUTTERFLY_MIN_RAM_DEPTH) if self.rot_n >= 2 else [])
        for stage, depth, width, in_ram in self.delay_lines:
            if in_ram:
                mems.append(MemoryPlan(f"post.butterfly.stage{stage}.line", f"butterfly stage {stage}", width, depth))
        mems.append(MemoryPlan("pixel_queue.fifo.mem", "pixel FIFO", self.pixel_bits * self.channels,
                               self.pixel_queue_depth, block_ram=self.pixel_queue_block_ram,
                               undefined_collisions=True))
        if self.weights_in_spram:
            for k in range(WEIGHT_SPRAMS):
                mems.append(MemoryPlan(f"store.spram{k}.mem", "weights and staging (load image)", STAGING_WORD_BITS,
                                       SPRAM_WORDS, loadable=True, kind="spram"))
            mems.append(MemoryPlan("store.boot", "boot image (the loaded model's weight rows)", STAGING_WORD_BITS,
                                   len(self.boot_image_words())))
        elif not self.loadable:
            pass                            # a fixed model: no staging memory
        elif self.spram:
            for b in range(self.staging_depth // SPRAM_WORDS):
                mems.append(MemoryPlan(f"store.spram{b}.mem", "staging (load image)", STAGING_WORD_BITS,
                                       SPRAM_WORDS, kind="spram"))
        else:
            mems.append(MemoryPlan("store.staging", "staging (load image)", STAGING_WORD_BITS, self.staging_depth))
        return mems

    @property
    def staging_depth(self):
        """Words of the staging memory: the envelope's largest load image,
        rounded up to whole SPRAMs on a device that has them (to a power of
        two otherwise); 0 for a fixed model."""
        if not self.loadable:
            return 0
        if self.weights_in_spram:
            return WEIGHT_SPRAMS * self.weight_row0
        if self.spram:
            return -(-self.staging_words // SPRAM_WORDS) * SPRAM_WORDS
        return _pow2_ceil(self.staging_words)

    def boot_image_words(self):
        """With the weights in SPRAM (which has no initial contents): the
        load image the installer runs at power-on, the loaded model's weight
        rows alone (every other memory starts with its contents). 16-bit
        words; :mod:`dhq_rtl.loader`."""
        from ..loader import load_image_words
        return load_image_words(self, sections=("weights",))

    # ---------------------------------------------------------- performance
    def job_cycles(self, i):
        """MAC-array beats of layer ``i`` (≥ 1) of one pixel."""
        return self.out_features[i] * self.chunks[i]

    def job_slot(self, i):
        """Cycles the MAC array spends on layer ``i`` of one pixel: its beats,
        or, for a job shorter than the copy of the next job's input vector
        (``load_words + 2`` cycles from the job's start: staging, one read
        per word, the last word's write), that copy; with direct reads, its
        beats."""
        if self.direct:
            return self.job_cycles(i)
        return max(self.job_cycles(i), self.load_words + 2)

    def beats_per_pixel(self):
        """MAC-array beats per pixel (each beat: ``lanes`` multiplier slots)."""
        return sum(self.job_cycles(i) for i in range(1, self.n_layers))

    def mac_cycles_per_pixel(self):
        """Cycles per pixel the MAC array needs (its jobs back to back)."""
        return sum(self.job_slot(i) for i in range(1, self.n_layers))

    def cycles_per_pixel(self):
        """Steady-state cycles per pixel: the core's schedule stepped cycle by
        cycle (:func:`.schedule.steady_cycles_per_pixel`; equal to
        :meth:`mac_cycles_per_pixel` when the MAC array is the bottleneck, as
        for the default model)."""
        if self._cycles_per_pixel is None:
            from .schedule import steady_cycles_per_pixel
            self._cycles_per_pixel = steady_cycles_per_pixel(self)
        return self._cycles_per_pixel

    def macs_per_pixel(self):
        """Multiplications per pixel done by the MAC array (layer 0 is free)."""
        return self.model.macs_per_pixel(include_first=False)

    def ideal_cycles_per_pixel(self):
        return self.macs_per_pixel() / self.multipliers

    def bounds(self):
        """Lower bounds on the cycles a pixel takes, by what imposes them:

        * ``"weight memory"``: the weight rows a pixel reads
          (:meth:`beats_per_pixel`), one a cycle: what the weight memory's
          bandwidth allows;
        * ``"post-processing"``: the elements a pixel sends through the
          scaler and the sine table, one a cycle (every layer's outputs),
          plus the vector arbiter's cycle per vector and the 5 cycles of a
          pixel's layer-0 request (:mod:`.schedule`).

        The schedule (:meth:`cycles_per_pixel`) is at least the larger one."""
        post = (self.out_features[0] + 5) + sum(n + 1 for n in self.out_features[1:])
        return {"weight memory": self.beats_per_pixel(), "post-processing": post}

    def binding_bound(self):
        """``(name, cycles)``: the larger of :meth:`bounds`."""
        return max(self.bounds().items(), key=lambda kv: kv[1])

    def bandwidth_efficiency(self, cycles_per_pixel=None):
        """The fraction of cycles in which the weight memory is read (a row
        of ``lanes`` weights): multiplier efficiency against what the weight
        memory's bandwidth allows."""
        c = self.cycles_per_pixel() if cycles_per_pixel is None else cycles_per_pixel
        return self.beats_per_pixel() / c

    def efficiency(self, cycles_per_pixel=None):
        """MACs issued per cycle ÷ multipliers available."""
        c = self.cycles_per_pixel() if cycles_per_pixel is None else cycles_per_pixel
        return self.macs_per_pixel() / (self.multipliers * c)

    def summary(self):
        return {
            "lanes": self.lanes, "multipliers": self.multipliers, "dsp_blocks": self.dsp_blocks,
            "dual_8x8": self.dual, "buffers": self.buffers,
            "activation_word": self.act_word, "vector_load_cycles": self.load_words + 2,
            "beats_per_pixel": self.beats_per_pixel(),
            "macs_per_pixel": self.macs_per_pixel(),
            "first_layer_macs_per_pixel": 0,
            "first_layer": "running sums (additions only, no multiplier)",
            "cycles_per_pixel": self.cycles_per_pixel(),
            "mac_cycles_per_pixel": self.mac_cycles_per_pixel(),
            "ideal_cycles_per_pixel": self.ideal_cycles_per_pixel(),
            "multiplier_efficiency": self.efficiency(),
            "weight_memory_efficiency": self.bandwidth_efficiency(),
            "bounds": self.bounds(),
            "binding_bound": self.binding_bound()[0],
        }
