"""The plan of the float core: what :class:`~dhq_rtl.gateware.core.InrCore` builds with ``arith="fp32"``.

:class:`FloatCorePlan` is the float counterpart of
:class:`~dhq_rtl.gateware.plan.CorePlan`: the same attribute names, so that
the parts the two cores share (activation buffers, job sequencer,
accumulator queue, vector arbiter, pixel queue) take their widths and
per-layer constants from either, plus what only the float parts read. It
elaborates nothing; the resource estimate and the reports read the same
object, and ``tests/test_core_float32.py`` checks that the memories the
elaborated core instantiates are exactly :attr:`FloatCorePlan.memories`.

Stages
------
The shared control numbers the vectors of a pixel by the layer that
produces them; vector 0 needs no MAC job. In the integer core vector 0 is
layer 0's phases (running sums). In the float core, layer 0 is a MAC job
like any other, and vector 0 is the pixel's input, ``(u_x, u_y)`` as
float32 (:class:`~.coords.FloatCoordinates`). So the plan's "layers" are
*stages*: stage 0 the coordinates (2 elements), stage ``s ≥ 1`` the model's
layer ``s − 1``; ``n_layers`` is the model's layer count plus one, and the
output stage is the last.

Schedule
--------
A job (stage ``s ≥ 1`` of one pixel) runs in *chunk-major* order: pass
``c`` (one chunk of ``lanes`` inputs) issues one beat per output neuron,
then pass ``c + 1``, so that consecutive beats of the accumulator belong to
different sums (the adder's latency is 9 cycles). A pass lasts ``slots =
out`` cycles, at least :attr:`acc_gap` (the adder's latency + 2: a partial
sum is written back before the next pass reads it) when the job has more
than one chunk (narrow layers idle in the remaining slots). The weight rows
are stored in the same order (``wbase + c·out + k``), so the weight address
counts up by one per beat.

:meth:`cycles_per_pixel` is a bound, not a cycle-by-cycle model: the
larger of the MAC lanes' cycles (``Σ chunks·slots``) and the vector
arbiter's (one vector at a time, the hidden ones at the sine's pace of one
phase per ``sine_ii`` cycles); the tests measure the RTL against it.
"""

import math
from dataclasses import dataclass

from amaranth.utils import ceil_log2

from ...golden_float32 import float_core_parameters, require_float
from ..args import check_int
from ..plan import MemoryPlan, check_core_arguments
from .add import Fp32Add
from .mul import Fp32Mul
from .product import DSP_KINDS, multipliers_needed
from .sine import Fp32Sine, sine_geometry

__all__ = ["FloatCorePlan", "FloatUnits"]


def _bits(n):
    """Bits of an unsigned counter that holds ``0 … n`` (at least 1)."""
    return max(1, int(n).bit_length())


def _pow2_ceil(n):
    return 1 << max(0, (int(n) - 1).bit_length())


@dataclass(frozen=True)
class FloatUnits:
    """Latencies (register stages) and the sine's initiation interval of the
    FP32 units a float core uses (each within its unit's range)."""

    mul_latency: int = Fp32Mul.FIXED_STAGES + len(Fp32Mul.CUTS)
    add_latency: int = Fp32Add.FIXED_STAGES + len(Fp32Add.CUTS)
    sine_latency: int = Fp32Sine.FIXED_STAGES + len(Fp32Sine.CUTS)
    sine_ii: int = 1

    def check(self):
        for name, cls in (("mul_latency", Fp32Mul), ("add_latency", Fp32Add), ("sine_latency", Fp32Sine)):
            check_int(name, getattr(self, name), cls.FIXED_STAGES, cls.FIXED_STAGES + len(cls.CUTS))
        check_int("sine_ii", self.sine_ii, 1, 64)
        if self.sine_ii == 2:
            raise ValueError("sine_ii must be 1 or at least 3")
        return self


class FloatCorePlan:
    """Everything about the float core that follows from the model and the parameters.

    Parameters: ``lanes`` (power of two, 1…256: FP32 multipliers), ``dsp``
    (``"generic"`` or ``"ice40"``: how the multipliers' 16×16 pieces are
    made), ``buffers`` (≥ 2), ``units`` (:class:`FloatUnits`: latencies and
    the sine's ``ii``), ``link_timing_registers`` (the host link's
    controller keeps its timing registers) and ``weight_register`` (the
    weights registered once more after their read; both default true,
    :meth:`for_board` leaves both out on iCE40). The model must carry its
    float parameters.

    Attributes shared with :class:`~dhq_rtl.gateware.plan.CorePlan` (per
    *stage*, see the module docstring): ``n_layers``, ``out_features``,
    ``chunks``, ``wbase``, ``next_rotated`` (all false: no butterfly),
    ``act_bits = acc_bits = coord_bits = 32`` (float32 bit patterns),
    ``layer_width``, ``buffer_width``, ``index_width``, ``chunk_width``,
    ``weight_addr_width``, ``cpow``, ``act_word`` (= ``lanes``: a buffer word
    is one chunk), ``load_words``, ``word_index_width``, ``lane_index_width``,
    the queue depths, ``memories``, ``multipliers``, ``pixel_bits``. Float
    only: ``params`` (the folded float32 parameters per model layer),
    ``slots``, ``acc_gap``, ``last_lanes`` (valid lanes of a stage's last
    chunk), ``bias_base``, ``ring_depth``, ``acc_memory_depth``,
    ``bias_addr_width``, ``lanes_latency`` and the units' latencies,
    ``dsp_blocks``.
    """

    arith = "fp32"
    #: The post-processing chain may refuse an element (the sine's ``ii``).
    post_paced = True
    #: The weights are ROMs: no other model can be loaded (the host link
    #: answers load commands with ``NACK FIXED_MODEL``).
    loadable = False
    #: No envelope: the core runs its one model.
    envelope = None
    #: No rotated hidden layer: the float core runs the float model (the
    #: shared vector arbiter keeps no path counts).
    rot_n = 0

    def __init__(self, model, lanes=1, dsp="generic", buffers=6, units=None, link_timing_registers=True,
                 weight_register=True):
        check_core_arguments(model, lanes, dsp, buffers, DSP_KINDS)
        units = FloatUnits() if units is None else units
        if not isinstance(units, FloatUnits):
            raise TypeError(f"units must be a FloatUnits, not {type(units).__name__}")
        if not isinstance(link_timing_registers, bool):
            raise TypeError(f"link_timing_registers must be a bool, not {link_timing_registers!r}")
        #: Whether the host link's controller keeps its timing registers
        #: (:class:`~..controller.BoardController`, ``timing_registers``).
        self.link_timing_registers = link_timing_registers
        if not isinstance(weight_register, bool):
            raise TypeError(f"weight_register must be a bool, not {weight_register!r}")
        #: The weights are registered once more after their memory's read
        #: (:class:`~.lanes.Fp32Lanes`: the read multiplexer of a deep
        #: memory a path of its own), one cycle of ``lanes_latency``.
        self.weight_register = weight_register
        model.validate()
        require_float(model)
        self.model = model
        self.lanes = lanes
        self.dsp = dsp
        self.buffers = buffers
        self.units = units.check()
        self.params = float_core_parameters(model)
        self._stages()
        self._tables()
        self._latencies()
        self._dsps()
        self.memories = self._memories()

    @staticmethod
    def board_defaults(board):
        """``(units, buffers)`` of the float core a build for ``board`` makes.

        iCE40 (the UP5K's 8 DSPs and 5280 logic cells): the sine at ``ii =
        11`` (one shared ``SB_MAC16``), the units without their optional
        register cuts but the adder's first two (mul 2, add 3, sine 5: the
        cuts' flip-flops are logic cells the host link needs; docs/float32.md,
        "On the board"), and 3 activation buffers (2 pixels in flight), so that
        one lane fits. ECP5: every cut, the sine at ``ii = 1``, 6 buffers."""
        if board.family == "ice40":
            return FloatUnits(mul_latency=Fp32Mul.FIXED_STAGES, add_latency=Fp32Add.FIXED_STAGES + 2,
                              sine_latency=Fp32Sine.FIXED_STAGES, sine_ii=11), 3
        return FloatUnits(sine_ii=1), 6

    @classmethod
    def for_board(cls, model, board, *, lanes=None, buffers=None):
        """The float core a build for ``board`` makes (:meth:`board_defaults`),
        with ``lanes`` (default 1) and ``buffers`` (default: the board's).
        On iCE40 the host link leaves out its timing registers
        (``link_timing_registers``) and the weights their second register
        (``weight_register``): the units without their cuts run at about
        14 MHz, far below those paths, and the UP5K's logic cells are what
        is short."""
        units, default_buffers = cls.board_defaults(board)
        return cls(model, lanes=1 if lanes is None else lanes, dsp=board.dsp,
                   buffers=default_buffers if buffers is None else buffers, units=units,
                   link_timing_registers=board.family != "ice40", weight_register=board.family != "ice40")

    # ------------------------------------------------------------ derivation
    def _stages(self):
        m, P = self.model, self.lanes
        layers = m.layers
        self.n_layers = len(layers) + 1
        self.out_features = [2] + [l.out_features for l in layers]
        self.in_features = [0] + [l.in_features for l in layers]
        self.chunks = [0] + [math.ceil(l.in_features / P) for l in layers]
        self.out_max = max(self.out_features)
        self.vec_max = max(self.in_features)
        self.cpow = _pow2_ceil(max(self.chunks[1:]))
        self.act_bits = self.acc_bits = self.coord_bits = 32
        self.pixel_bits = m.pixel_bits
        self.layer_width = _bits(self.n_layers - 1)
        self.buffer_width = _bits(self.buffers - 1)
        self.index_width = _bits(self.out_max - 1)
        self.chunk_width = _bits(self.cpow - 1)
        self.next_rotated = [False] * self.n_layers
        # What the shared parts' descriptors (:mod:`..descriptors`: constants
        # here) and the host link read: the stages are all there is.
        self.max_layers = self.n_layers
        self.first_index_width = _bits(self.out_features[0] - 1)
        self.channels = m.channels
        self.channel_width = _bits(m.channels - 1)
        self.max_size = max(m.width, m.height)
        self.size_bits = _bits(self.max_size)
        self.last_lanes = [0] + [l.in_features - (c - 1) * P for l, c in zip(layers, self.chunks[1:])]

    def _tables(self):
        S = self.n_layers
        self.acc_gap = self.units.add_latency + 2
        self.slots = [0] + [self.out_features[s] if self.chunks[s] == 1 else max(self.out_features[s], self.acc_gap)
                            for s in range(1, S)]
        self.wbase = [0] * S
        rows = 0
        for s in range(1, S):
            self.wbase[s] = rows
            rows += self.out_features[s] * self.chunks[s]
        self.weight_rows = rows
        self.weight_addr_width = max(1, ceil_log2(rows))
        # The accumulator memory: a ring of partial sums, then the biases.
        self.ring_depth = _pow2_ceil(self.out_max)
        self.bias_base = [0] * S
        addr = self.ring_depth
        for s in range(1, S):
            self.bias_base[s] = addr
            addr += self.out_features[s]
        self.acc_memory_depth = addr
        self.bias_addr_width = max(1, ceil_log2(addr))
        self.act_word = self.lanes
        self.load_words = self.cpow
        self.word_index_width = (self.cpow - 1).bit_length()
        self.lane_index_width = (self.lanes - 1).bit_length()
        # The float sequencer reads one chunk per pass itself (not the
        # integer core's direct reads); the pixel FIFO is in logic.
        self.direct = False
        self.pixel_queue_block_ram = False
        self.ready_queue_block_ram = False
        self.ready_queue_depth = self.buffers
        # At most buffers − 1 pixels are in flight (the core's admission
        # limit), so the pixel queue never holds more.
        self.pixel_queue_depth = self.buffers - 1
        self.accumulator_queue_depth = _pow2_ceil(self.out_max + 4)

    def _latencies(self):
        u = self.units
        self.mul_latency, self.add_latency, self.sine_latency = u.mul_latency, u.add_latency, u.sine_latency
        self.sine_ii = u.sine_ii
        self.tree_levels = ceil_log2(self.lanes)
        # weight read and its register, multiply, adder tree, accumulator memory read, accumulate
        self.lanes_latency = (2 if self.weight_register else 1) + self.mul_latency + self.tree_levels * self.add_latency + 1 + self.add_latency
        self.sine_delay = (self.sine_latency - 1) * self.sine_ii + 1
        self.pixel_latency = 2
        # Vectors that can be in the sine at once: it holds at most one
        # element per register stage; one more for the queue's own latency.
        hidden = [self.out_features[s] for s in range(1, self.n_layers - 1)]
        self.sine_vector_depth = math.ceil((self.sine_latency + 2) / min(hidden)) + 2
        # The sine's input queue: two entries for a phase every cycle, else one.
        self.sine_skid = 2 if self.sine_ii == 1 else 1

    def _dsps(self):
        self.multipliers = self.lanes
        mul_pieces, mul_dsps = multipliers_needed([(24, 24)], dsp=self.dsp)
        sine = sine_geometry(ii=self.sine_ii, dsp=self.dsp)
        self.mul_pieces = mul_pieces
        self.sine_pieces = sine["multipliers"]
        self.sine_rom_width = sum(sine["c_widths"])
        self.sine_rom_depth = sine["depth"]
        #: 16×16 multipliers in all (``SB_MAC16`` on iCE40, one ``MULT18X18D`` each on ECP5).
        self.dsp_blocks = self.lanes * mul_pieces + self.sine_pieces
        self.dual = False

    def _memories(self):
        P, m = self.lanes, self.model
        return [
            MemoryPlan("buffers.activations", "activation buffers", P * 32, self.buffers * self.load_words,
                       undefined_collisions=True),
            MemoryPlan("buffers.ready_queue.mem", "ready queue", self.buffer_width + self.layer_width + 3,
                       self.ready_queue_depth, undefined_collisions=True),
            MemoryPlan("mac.weights", "weights", P * 32, self.weight_rows, rom=True, block_ram=True),
            MemoryPlan("mac.acc_memory", "partial sums and biases", 32, self.acc_memory_depth, block_ram=True),
            MemoryPlan("accumulators.fifo.mem", "accumulator FIFO",
                       self.acc_bits + self.layer_width + self.index_width + 3, self.accumulator_queue_depth,
                       undefined_collisions=True),
            MemoryPlan("post.sine.table", "sine table", self.sine_rom_width, self.sine_rom_depth, rom=True),
            MemoryPlan("post.vectors.mem", "vectors in the sine", self.buffer_width + self.layer_width
                       + self.index_width, self.sine_vector_depth, undefined_collisions=True),
            MemoryPlan("pixel_queue.fifo.mem", "pixel FIFO", self.pixel_bits * m.channels, self.pixel_queue_depth,
                       undefined_collisions=True),
        ]

    # ---------------------------------------------------------- performance
    def job_cycles(self, s):
        """Cycles the MAC lanes spend on stage ``s`` (≥ 1) of one pixel:
        ``chunks · slots``."""
        return self.chunks[s] * self.slots[s]

    def beats_per_pixel(self):
        """Beats issued per pixel (each: ``lanes`` multiplier slots)."""
        return sum(self.out_features[s] * self.chunks[s] for s in range(1, self.n_layers))

    def mac_cycles_per_pixel(self):
        """Cycles per pixel the MAC lanes need (their jobs back to back)."""
        return sum(self.job_cycles(s) for s in range(1, self.n_layers))

    def sine_cycles_per_pixel(self):
        """Cycles per pixel the sine needs: one phase per ``sine_ii`` cycles."""
        return sum(self.out_features[s] for s in range(1, self.n_layers - 1)) * self.sine_ii

    def arbiter_cycles_per_pixel(self):
        """Cycles per pixel the vector arbiter needs, one vector at a time:
        the coordinates (``n₀ + 5``: a decision, the registered request and
        the generator's latency), each hidden vector at the sine's pace (a
        decision, then one element per ``sine_ii`` cycles), the output
        vector (``n + 1``)."""
        hidden = sum(1 + self.out_features[s] * self.sine_ii for s in range(1, self.n_layers - 1))
        return (self.out_features[0] + 5) + hidden + self.out_features[-1] + 1

    def cycles_per_pixel(self):
        """Steady-state cycles per pixel, bounded below by the busier of the
        MAC lanes and the arbiter (whose hidden vectors go at the sine's
        pace); the RTL is within 10 % above it on the shapes
        ``tests/test_core_float32.py`` measures."""
        return max(self.mac_cycles_per_pixel(), self.arbiter_cycles_per_pixel())

    def macs_per_pixel(self):
        """Multiplications per pixel (every layer, the first included)."""
        return self.model.macs_per_pixel(include_first=True)

    def ideal_cycles_per_pixel(self):
        return self.macs_per_pixel() / self.multipliers

    def efficiency(self, cycles_per_pixel=None):
        """MACs issued per cycle ÷ multipliers available."""
        c = self.cycles_per_pixel() if cycles_per_pixel is None else cycles_per_pixel
        return self.macs_per_pixel() / (self.multipliers * c)

    def summary(self):
        return {
            "arith": self.arith, "lanes": self.lanes, "multipliers": self.multipliers,
            "dsp_blocks": self.dsp_blocks, "buffers": self.buffers, "sine_ii": self.sine_ii,
            "beats_per_pixel": self.beats_per_pixel(), "macs_per_pixel": self.macs_per_pixel(),
            "first_layer": "a MAC job like the others (float32)",
            "cycles_per_pixel": self.cycles_per_pixel(), "mac_cycles_per_pixel": self.mac_cycles_per_pixel(),
            "sine_cycles_per_pixel": self.sine_cycles_per_pixel(),
            "ideal_cycles_per_pixel": self.ideal_cycles_per_pixel(), "multiplier_efficiency": self.efficiency(),
        }
