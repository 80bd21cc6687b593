"""The plan of the accelerator core: what :class:`~.core.InrCore` builds for a model.

:class:`CorePlan` is a pure-Python description of the core for one model and
one set of parameters (lanes, DSP kind, activation buffers): every width,
every per-layer constant the control looks up, every memory with its depth ×
width, every FIFO depth, and the schedule (cycles per pixel). It elaborates
nothing. The core's parts (:mod:`.activation_buffers`, :mod:`.job_sequencer`,
:mod:`.vector_arbiter`, :mod:`.postprocess`, :mod:`.pixel_queue`) take their
parameters from it, and the resource estimate (:mod:`dhq_rtl.estimate`) and
the build reports read the same object, so the design and its estimate cannot
drift apart: ``tests/test_core.py`` checks that the memories the elaborated
core instantiates are exactly :attr:`CorePlan.memories`.

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

from ..fixedpoint import signed_bits, signed_max
from ..model_image import ModelImage
from .args import check_int, is_int
from .butterfly import delay_lines
from .coords import running_sum_memories
from .mac import DSP_KINDS
from .sine_lut import is_quarter_wave_symmetric

__all__ = ["CorePlan", "MemoryPlan", "MAX_LANES"]

#: Most multipliers a MAC array may have.
MAX_LANES = 256
#: Delay lines of the butterfly at least this deep are block RAM (its default).
BUTTERFLY_MIN_RAM_DEPTH = 16


def _bits(n):
    """Bits of an unsigned counter that holds ``0 … n`` (at least 1)."""
    return max(1, int(n).bit_length())


def _pow2_ceil(n):
    return 1 << max(0, (int(n) - 1).bit_length())


@dataclass(frozen=True)
class MemoryPlan:
    """One ``lib.memory.Memory`` of the core.

    ``path``: where it sits in the elaborated core (submodule names joined by
    dots, then the memory's own name); ``role``: what it holds; ``rom``: it
    has initial contents and no write port; ``block_ram``: it carries Yosys's
    ``ram_style = "block"`` attribute (block RAM even when small)."""

    path: str
    role: str
    width: int
    depth: int
    rom: bool = False
    block_ram: bool = False

    @property
    def bits(self):
        return self.width * self.depth


class CorePlan:
    """Everything about the core that follows from the model and the parameters.

    Parameters are those of :class:`~.core.InrCore`: ``lanes`` (power of two,
    1…256), ``dsp`` (``"generic"`` or ``"ice40"``), ``buffers`` (≥ 2),
    ``act_word_bits`` (≥ 1). :meth:`for_board` takes the DSP kind and default
    lanes from a board description.

    Attributes (``L`` layers, ``P`` lanes):

    * widths: ``act_bits``, ``weight_bits``, ``acc_bits`` (proven accumulator
      bound), ``mult_bits``, ``lut_bits``, ``phase_bits``, ``pixel_bits``;
      ``layer_width``, ``buffer_width``, ``index_width`` (an output neuron),
      ``chunk_width``, ``weight_addr_width``;
    * per layer ``i`` (lists of length ``L``): ``out_features``,
      ``chunks[i] = ceil(in_i / P)`` (0 for layer 0), ``wbase`` (first weight
      row), ``next_rotated[i]`` (the layer fed by layer ``i``'s output
      rotates its input: its vector goes through the butterfly),
      ``table_of[i]`` (the sine table applied to layer ``i``'s output, that of
      layer ``i + 1``; identical tables stored once), ``requant_pairs[i]`` (the
      requantizer pair for layer ``i``'s output);
    * activation buffers: ``act_word`` activations per memory word,
      ``load_words`` words per vector, ``cpow`` chunks per stored vector;
    * FIFOs: ``ready_queue_depth``, ``accumulator_queue_depth``,
      ``pixel_queue_depth``;
    * ``memories``: every memory (:class:`MemoryPlan`), ``delay_lines``: the
      butterfly's delay lines ``(stage, entries, entry_bits, in_ram)``;
    * DSPs: ``dual`` (two 8×8 products per ``SB_MAC16``), ``multipliers``,
      ``dsp_blocks``;
    * pipeline latencies the schedule uses: ``mac_latency``,
      ``scaler_latency``, ``lut_latency``, ``requant_latency``,
      ``butterfly_stages``.
    """

    #: The number format (:class:`~.float32.plan.FloatCorePlan` is ``"fp32"``).
    arith = "int"
    #: The post-processing chain takes every element (no back-pressure).
    post_paced = False

    def __init__(self, model, lanes=16, dsp="generic", buffers=6, act_word_bits=32):
        if not isinstance(model, ModelImage):
            raise TypeError(f"model must be a ModelImage, got {type(model).__name__}")
        if not is_int(lanes):
            raise TypeError(f"lanes must be an integer, not {lanes!r}")
        if lanes < 1 or lanes & (lanes - 1) or lanes > MAX_LANES:
            raise ValueError(f"lanes must be a power of two in [1, {MAX_LANES}], got {lanes}")
        if dsp not in DSP_KINDS:
            raise ValueError(f"dsp must be one of {DSP_KINDS}, got {dsp!r}")
        check_int("buffers", buffers, 2)
        check_int("act_word_bits", act_word_bits, 1)
        model.validate()
        self.model = model
        self.lanes = lanes
        self.dsp = dsp
        self.buffers = buffers
        self.act_word_bits = act_word_bits
        self.n_layers = len(model.layers)
        self._widths()
        self._layer_tables()
        self._activation_words()
        self._dsps()
        self._latencies()
        self.memories = self._memories()
        self._cycles_per_pixel = None

    @classmethod
    def for_board(cls, model, board, *, lanes=None, buffers=6):
        """The plan of the core a build for ``board`` makes (its DSP kind,
        its default lanes unless ``lanes`` is given)."""
        return cls(model, lanes=board.default_lanes if lanes is None else lanes, dsp=board.dsp,
                   buffers=buffers)

    # ------------------------------------------------------------ derivation
    def _widths(self):
        m, L = self.model, self.n_layers
        mac = m.layers[1:]
        rot_widths = {l.in_features for l in mac if l.rotate}
        if len(rot_widths) > 1:
            raise ValueError(f"rotated layers of different input widths {sorted(rot_widths)} are not supported")
        self.rot_n = rot_widths.pop() if rot_widths else 0
        self.act_bits = max(l.act_bits for l in mac)
        self.weight_bits = max(l.weight_bits for l in mac)
        self.acc_bits = max(m.accumulator_bits(i) for i in range(1, L))
        self.mult_bits = max(l.mult_bits for l in mac)
        self.lut_bits = max(l.lut_bits for l in mac)
        self.phase_bits = m.phase_bits
        self.coord_bits = m.phase_bits      # vector 0's elements: layer 0's phases
        self.pixel_bits = m.pixel_bits
        self.out_features = [l.out_features for l in m.layers]
        self.out_max = max(self.out_features)
        self.vec_max = max(l.in_features for l in mac)
        self.chunks = [0] + [math.ceil(l.in_features / self.lanes) for l in mac]
        self.cpow = _pow2_ceil(max(self.chunks[1:]))
        self.layer_width = _bits(L - 1)
        self.buffer_width = _bits(self.buffers - 1)
        self.index_width = _bits(self.out_max - 1)
        self.chunk_width = _bits(self.cpow - 1)
        # The channel scaler's table covers every layer (layer 0's entries
        # are never read: its phases come from the running sums).
        self.scaler_mult_bits = max(l.mult_bits for l in m.layers)
        self.scaler_bias_bits = signed_bits(min(min(int(l.bias.min()) for l in m.layers), 0),
                                            max(max(int(l.bias.max()) for l in m.layers), 0))
        self.scaler_channel_width = max(1, ceil_log2(self.out_max))

    def _layer_tables(self):
        m, L = self.model, self.n_layers
        layers = m.layers
        rotated = [bool(l.rotate) for l in layers]
        self.next_rotated = [rotated[i + 1] if i + 1 < L else False for i in range(L)]
        # Weight ROM: one row of `lanes` weights per (layer, neuron, chunk).
        self.wbase = [0] * L
        rows = 0
        for i in range(1, L):
            self.wbase[i] = rows
            rows += layers[i].out_features * self.chunks[i]
        self.weight_rows = rows
        self.weight_addr_width = max(1, ceil_log2(rows))
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
        self.quarter_wave = all(is_quarter_wave_symmetric(t) for t in self.tables)
        # Requantizer: the pair of the layer a rotated vector feeds; outputs
        # saturate to the widest rotated act_bits, then per layer.
        self.requant_pairs = [(int(layers[i + 1].req_mult), int(layers[i + 1].req_shift)) if i + 1 < L else (1, 0)
                              for i in range(L)]
        rot_bits = [layers[i].act_bits for i in range(1, L) if layers[i].rotate]
        self.requant_bits = max(rot_bits) if rot_bits else self.act_bits
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
        self.act_word = r
        self.load_words = vp // r
        self.word_index_width = (self.load_words - 1).bit_length()
        self.lane_index_width = (r - 1).bit_length()
        self.ready_queue_depth = self.buffers
        self.pixel_queue_depth = self.buffers
        # Room for a whole vector and the accumulators in flight in the MAC
        # array when the credit check last passed.
        self.accumulator_queue_depth = _pow2_ceil(self.out_max + 4)

    def _latencies(self):
        """Latencies of the pipelines (the blocks' own ``latency``; checked in
        ``tests/test_core.py``)."""
        self.mac_latency = 3 + ceil_log2(self.lanes)
        self.scaler_latency = 4 + ceil_log2(self.scaler_mult_bits + 1)
        self.lut_latency = 2
        self.requant_latency = 3
        self.butterfly_stages = ceil_log2(self.rot_n) if self.rot_n >= 2 else 0

    def _dsps(self):
        self.dual = self.act_bits <= 8 and self.weight_bits <= 8
        if self.dsp == "ice40" and (self.act_bits > 16 or self.weight_bits > 16):
            raise ValueError("SB_MAC16 multiplies at most 16×16 bits")
        self.multipliers = self.lanes
        self.dsp_blocks = (self.lanes + 1) // 2 if self.dual else self.lanes

    def _memories(self):
        m, L, P = self.model, self.n_layers, self.lanes
        mems = [
            MemoryPlan("buffers.activations", "activation buffers", self.act_word * self.act_bits,
                       self.buffers * self.load_words),
            MemoryPlan("buffers.ready_queue.mem", "ready queue", self.buffer_width + self.layer_width,
                       self.ready_queue_depth),
            MemoryPlan("mac.weights", "weights", P * self.weight_bits, self.weight_rows, rom=True, block_ram=True),
            MemoryPlan("accumulators.fifo.mem", "accumulator FIFO",
                       self.acc_bits + self.layer_width + self.index_width + 3, self.accumulator_queue_depth),
        ]
        sums = running_sum_memories(m)
        mems += [
            MemoryPlan("coords.rom", "first-layer constants", *sums["rom"], rom=True),
            MemoryPlan("coords.smem", "first-layer running sums (R and T)", *sums["smem"]),
            MemoryPlan("post.scaler.table", "scaler table", self.scaler_mult_bits + self.scaler_bias_bits,
                       L << self.scaler_channel_width, rom=True, block_ram=True),
        ]
        stored = (1 << m.phase_bits) // (4 if self.quarter_wave else 1)
        mems.append(MemoryPlan("post.lut.rom", "sine tables", self.lut_bits, stored * len(self.tables), rom=True))
        self.delay_lines = (delay_lines(self.rot_n, self.lut_bits, self.buffer_width + self.layer_width,
                                        BUTTERFLY_MIN_RAM_DEPTH) if self.rot_n >= 2 else [])
        for stage, depth, width, in_ram in self.delay_lines:
            if in_ram:
                mems.append(MemoryPlan(f"post.butterfly.stage{stage}.line", f"butterfly stage {stage}", width, depth))
        mems.append(MemoryPlan("pixel_queue.fifo.mem", "pixel FIFO", self.pixel_bits * m.channels,
                               self.pixel_queue_depth))
        return mems

    # ---------------------------------------------------------- performance
    def job_cycles(self, i):
        """MAC-array beats of layer ``i`` (≥ 1) of one pixel."""
        return self.out_features[i] * self.chunks[i]

    def job_slot(self, i):
        """Cycles the MAC array spends on layer ``i`` of one pixel: its beats,
        or, for a job shorter than the copy of the next job's input vector
        (``load_words + 2`` cycles from the job's start: staging, one read
        per word, the last word's write), that copy."""
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
        }
