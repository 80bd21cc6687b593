"""Envelopes: the set of model images one bitstream runs.

An accelerator built for an :class:`Envelope` holds every per-model number
in memories and registers the host can write (``docs/loading.md``), so it
runs any model image inside the envelope without a rebuild. The envelope
fixes what the hardware's structure depends on:

* the widest layer (``max_width``: neurons of a hidden layer, inputs of any
  layer), the number of layers (``max_layers``: sine layers plus the output
  layer), the image size (``max_size``: width and height) and the channels;
* the bit widths the datapath is built for: ``weight_bits``, ``act_bits``,
  ``lut_bits`` (sine-table entries), ``mult_bits`` (scale multipliers), the
  accumulator (``acc_bits``, by default the worst case of the widths) and the
  scaler's bias table (``bias_bits``); ``phase_bits`` and ``pixel_bits``
  exactly (they fix the sine tables' length and the output format);
* the largest scaler shift (``max_shift``), the width of the first layer's
  running sums (``first_sum_bits`` = its largest shift + ``phase_bits``), the
  requantizer's largest shift (``max_req_shift``);
* rotation: layer 0 may always be rotated (its rotation is folded into the
  running-sum constants the host computes); a later layer only if its input
  width is ``rotate_width`` (the Hadamard butterfly's size; 0: none), and
  with the requantizer multiplier 1 (what the exporter always makes);
* ``weight_memory``: where the weight rows live, ``"bram"`` (block RAM) or
  ``"spram"`` (the iCE40UP5K's single-port RAMs, 64 bits a cycle);
* the core's ``lanes`` (multipliers; ``None``: the board's default).

:meth:`Envelope.check` is the fit check of a model against an envelope; it
raises :class:`EnvelopeError` naming the first limit the model exceeds, so
the host refuses a model before a byte is sent. :meth:`Envelope.of_model`
is the tightest envelope around one model (what ``build --model M`` without
``--envelope`` builds). :data:`ENVELOPES` names the envelopes builds offer
(``python -m dhq_rtl.build --envelope NAME``).
"""

import zlib
from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from .errors import DhqError
from .fixedpoint import signed_bits, signed_max
from .hadamard import is_power_of_two
from .model_image import ModelImage

__all__ = ["Envelope", "EnvelopeError", "ENVELOPES", "get_envelope", "WEIGHT_MEMORIES"]

WEIGHT_MEMORIES = ("bram", "spram")


class EnvelopeError(DhqError, ValueError):
    """A model image outside an envelope, or an envelope that is not valid."""


@dataclass(frozen=True)
class Envelope:
    """The limits of the model images one bitstream runs (module docstring)."""

    name: str
    max_width: int
    max_layers: int
    max_size: int
    max_channels: int
    weight_bits: int
    act_bits: int
    lut_bits: int
    mult_bits: int
    phase_bits: int
    max_shift: int
    first_sum_bits: int
    rotate_width: int = 0
    max_req_shift: int = 0
    acc_bits: int = 0
    bias_bits: int = 0
    pixel_bits: int = 8
    weight_memory: str = "bram"
    lanes: int | None = None

    def __post_init__(self):
        def need(ok, what):
            if not ok:
                raise EnvelopeError(f"envelope {self.name!r}: {what}")
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type is int or f.name in ("acc_bits", "bias_bits"):
                need(isinstance(v, int) and not isinstance(v, bool), f"{f.name} must be an integer, got {v!r}")
        need(isinstance(self.name, str) and self.name, "the name must be a non-empty string")
        need(1 <= self.max_width <= 4096, f"max_width {self.max_width} is out of range [1, 4096]")
        need(2 <= self.max_layers <= 64, f"max_layers {self.max_layers} is out of range [2, 64]")
        need(2 <= self.max_size <= 4096, f"max_size {self.max_size} is out of range [2, 4096]")
        need(1 <= self.max_channels <= 4, f"max_channels {self.max_channels} is out of range [1, 4]")
        for name in ("weight_bits", "act_bits", "lut_bits"):
            need(2 <= getattr(self, name) <= 16, f"{name} {getattr(self, name)} is out of range [2, 16]")
        need(1 <= self.mult_bits <= 24, f"mult_bits {self.mult_bits} is out of range [1, 24]")
        need(4 <= self.phase_bits <= 16, f"phase_bits {self.phase_bits} is out of range [4, 16]")
        need(1 <= self.pixel_bits <= 16, f"pixel_bits {self.pixel_bits} is out of range [1, 16]")
        need(0 <= self.max_shift <= 48, f"max_shift {self.max_shift} is out of range [0, 48]")
        need(self.phase_bits <= self.first_sum_bits <= 64,
             f"first_sum_bits {self.first_sum_bits} must be in [phase_bits, 64]")
        need(self.rotate_width == 0 or (is_power_of_two(self.rotate_width) and 2 <= self.rotate_width <= self.max_width),
             f"rotate_width {self.rotate_width} must be 0 or a power of two in [2, max_width]")
        need(0 <= self.max_req_shift <= 48, f"max_req_shift {self.max_req_shift} is out of range [0, 48]")
        need(self.rotate_width or self.lut_bits == self.act_bits,
             "without rotated layers the sine tables hold the activations: lut_bits must equal act_bits")
        need(self.acc_bits == 0 or 2 <= self.acc_bits <= 62, f"acc_bits {self.acc_bits} is out of range [2, 62]")
        need(self.bias_bits == 0 or 2 <= self.bias_bits <= 63, f"bias_bits {self.bias_bits} is out of range [2, 63]")
        need(self.weight_memory in WEIGHT_MEMORIES, f"weight_memory must be one of {WEIGHT_MEMORIES}")
        need(self.lanes is None or (isinstance(self.lanes, int) and not isinstance(self.lanes, bool)
                                    and self.lanes >= 1 and not self.lanes & (self.lanes - 1)),
             f"lanes must be None or a power of two, got {self.lanes!r}")
        # Derived widths: written back so that the envelope reads complete.
        if not self.acc_bits:
            # Σ_j |W_kj|·max|q| for the widest layer of the widest codes;
            # max|q| is 2**(b-1) on the mid-rise grid of an unrotated input.
            bound = self.max_width * signed_max(self.weight_bits) * (1 << (self.act_bits - 1))
            object.__setattr__(self, "acc_bits", signed_bits(-bound, bound))
        if not self.bias_bits:
            # A sine layer's bias is below 2**(phase_bits + shift); the output
            # layer's (its ½ rounding and mid-rise offsets included) gets one
            # more bit of headroom.
            object.__setattr__(self, "bias_bits", self.phase_bits + self.max_shift + 3)

    # ------------------------------------------------------------ derived
    @property
    def max_rows_per_layer(self):
        return self.max_width

    def signature(self, lanes=None):
        """CRC-32 of the envelope's canonical description with the core's
        ``lanes`` (default: the envelope's): a load image carries it, and a
        board refuses an image made for another layout."""
        values = dict(asdict(self), lanes=self.lanes if lanes is None else lanes)
        text = ";".join(f"{k}={v}" for k, v in sorted(values.items()) if k != "name")
        return zlib.crc32(text.encode())

    def describe(self):
        """One line: the envelope's limits as a person reads them."""
        rot = f"hidden layers of width {self.rotate_width}" if self.rotate_width else "layer 0 only"
        return (f"envelope {self.name}: hidden width ≤ {self.max_width}, ≤ {self.max_layers - 1} sine layers, "
                f"image ≤ {self.max_size}×{self.max_size}, ≤ {self.max_channels} channel(s), "
                f"W{self.weight_bits}A{self.act_bits} or narrower, phase bits {self.phase_bits}, "
                f"rotation: {rot}, weights in {self.weight_memory}")

    def as_dict(self):
        return asdict(self)

    # ----------------------------------------------------------- fit check
    def check(self, model):
        """Raise :class:`EnvelopeError` unless ``model`` runs in this envelope
        (one line naming the first limit exceeded and what to do)."""
        if not isinstance(model, ModelImage):
            raise TypeError(f"model must be a ModelImage, got {type(model).__name__}")
        model.validate()
        for problem in self._problems(model):
            raise EnvelopeError(f"the model does not fit {self.name!r}: {problem} — use a larger envelope "
                                f"(build --envelope) or a smaller model")
        return True

    def fits(self, model):
        """True if :meth:`check` passes."""
        try:
            return self.check(model)
        except EnvelopeError:
            return False

    def _problems(self, m):
        layers = m.layers
        L = len(layers)
        widest = max(max(l.out_features for l in layers[:-1]), max(l.in_features for l in layers[1:]))
        yield from _over("layers", L, self.max_layers, f"{L - 1} sine layers", f"{self.max_layers - 1}")
        yield from _over("width", widest, self.max_width, f"hidden width {widest}", f"{self.max_width}")
        size = max(m.width, m.height)
        yield from _over("size", size, self.max_size, f"image {m.width}×{m.height}",
                         f"{self.max_size}×{self.max_size}")
        yield from _over("channels", m.channels, self.max_channels, f"{m.channels} channels", f"{self.max_channels}")
        if m.phase_bits != self.phase_bits:
            yield f"phase_bits {m.phase_bits} (the envelope's sine tables have {self.phase_bits})"
        if m.pixel_bits != self.pixel_bits:
            yield f"pixel_bits {m.pixel_bits} (the envelope's pixels have {self.pixel_bits})"
        for i, l in enumerate(layers):
            p = f"layer {i}"
            if i == 0:
                yield from _over("shift", l.shift + m.phase_bits, self.first_sum_bits,
                                 f"{p} needs running sums of {l.shift + m.phase_bits} bits", f"{self.first_sum_bits}")
            else:
                yield from _over("bits", l.weight_bits, self.weight_bits, f"{p} has {l.weight_bits}-bit weights",
                                 f"{self.weight_bits}")
                yield from _over("bits", l.act_bits, self.act_bits, f"{p} has {l.act_bits}-bit activations",
                                 f"{self.act_bits}")
                yield from _over("bits", l.lut_bits, self.lut_bits, f"{p} has {l.lut_bits}-bit sine table entries",
                                 f"{self.lut_bits}")
                yield from _over("shift", l.shift, self.max_shift, f"{p} has scaler shift {l.shift}",
                                 f"{self.max_shift}")
                acc = m.accumulator_bits(i)
                yield from _over("acc", acc, self.acc_bits, f"{p} needs a {acc}-bit accumulator", f"{self.acc_bits}")
                if l.rotate:
                    if l.in_features != self.rotate_width:
                        yield (f"{p} is rotated with input width {l.in_features}, but the envelope's butterfly "
                               + (f"has width {self.rotate_width}" if self.rotate_width else "is absent "
                                  "(only layer 0 may be rotated)"))
                    if l.req_mult != 1:
                        yield f"{p} has requantizer multiplier {l.req_mult} (the hardware shifts only: 1)"
                    yield from _over("shift", l.req_shift, self.max_req_shift, f"{p} has requantizer shift "
                                     f"{l.req_shift}", f"{self.max_req_shift}")
                from .gateware.sine_lut import is_quarter_wave_symmetric
                if not is_quarter_wave_symmetric(l.lut):
                    yield f"{p}'s sine table is not quarter-wave symmetric (the hardware stores a quarter)"
            yield from _over("bits", l.mult_bits, self.mult_bits, f"{p} has {l.mult_bits}-bit scale multipliers",
                             f"{self.mult_bits}")
            if i > 0:
                lo, hi = min(int(l.bias.min()), 0), max(int(l.bias.max()), 0)
                need = signed_bits(lo, hi)
                yield from _over("bits", need, self.bias_bits, f"{p}'s biases need {need} bits", f"{self.bias_bits}")

    # -------------------------------------------------------- construction
    @classmethod
    def for_board(cls, model, board, name="model"):
        """The tightest envelope around ``model`` for a build on ``board``:
        on a device with SPRAM the weight rows live there (the UP5K's block
        RAM does not hold them beside the rest of the loadable core)."""
        return cls.of_model(model, name=name, weight_memory="spram" if board.spram_bits > 0 else "bram")

    @classmethod
    def of_model(cls, model, name="model", **overrides):
        """The tightest envelope that holds ``model`` (every limit the model's
        own value); ``overrides`` replace fields. Raises ``EnvelopeError`` for
        a model no envelope holds (rotated layers of different widths, a
        requantizer multiplier other than 1, asymmetric sine tables)."""
        if not isinstance(model, ModelImage):
            raise TypeError(f"model must be a ModelImage, got {type(model).__name__}")
        model.validate()
        layers = model.layers
        mac = layers[1:]
        rot_widths = sorted({l.in_features for l in mac if l.rotate})
        if len(rot_widths) > 1:
            raise EnvelopeError(f"rotated layers of different input widths {rot_widths} are not supported")
        widest = max(max(l.out_features for l in layers[:-1]), max(l.in_features for l in mac))
        bias = [int(v) for l in mac for v in (min(int(l.bias.min()), 0), max(int(l.bias.max()), 0))]
        env = dict(
            name=name, max_width=widest, max_layers=len(layers), max_size=max(model.width, model.height),
            max_channels=model.channels, weight_bits=max(l.weight_bits for l in mac),
            act_bits=max(l.act_bits for l in mac), lut_bits=max(l.lut_bits for l in mac),
            mult_bits=max(l.mult_bits for l in layers), phase_bits=model.phase_bits,
            max_shift=max(l.shift for l in mac), first_sum_bits=layers[0].shift + model.phase_bits,
            rotate_width=rot_widths[0] if rot_widths else 0,
            max_req_shift=max((l.req_shift for l in mac if l.rotate), default=0),
            acc_bits=max(model.accumulator_bits(i) for i in range(1, len(layers))),
            bias_bits=signed_bits(min(bias), max(bias)), pixel_bits=model.pixel_bits)
        if not env["rotate_width"]:
            env["lut_bits"] = env["act_bits"]
        env.update(overrides)
        envelope = cls(**env)
        envelope.check(model)
        return envelope

    def with_lanes(self, lanes):
        return replace(self, lanes=lanes)


def _over(kind, value, limit, what, limit_text):
    if value > limit:
        yield f"{what}, more than the envelope's {limit_text}"


#: The envelopes builds offer. Both keep the bundled default model's
#: numerics (W8A8, 10 phase bits, 8-bit multipliers) and allow rotation of
#: layer 0 only (a rotated hidden layer needs the butterfly, which does not
#: fit beside the loading machinery on the iCE40UP5K; docs/loading.md).
#: ``default``: hidden width ≤ 64; ``large``: ≤ 128. Both keep the weight
#: rows in SPRAM on boards that have it (64 bits a cycle: 8 lanes of 8-bit
#: weights), in block RAM elsewhere.
ENVELOPES = {
    "default": Envelope(name="default", max_width=64, max_layers=4, max_size=256, max_channels=3,
                        weight_bits=8, act_bits=8, lut_bits=8, mult_bits=8, phase_bits=10,
                        max_shift=20, first_sum_bits=24, weight_memory="spram"),
    "large": Envelope(name="large", max_width=128, max_layers=4, max_size=256, max_channels=3,
                      weight_bits=8, act_bits=8, lut_bits=8, mult_bits=8, phase_bits=10,
                      max_shift=20, first_sum_bits=24, weight_memory="spram"),
}


def get_envelope(name):
    """The named envelope of :data:`ENVELOPES`; raises :class:`EnvelopeError`."""
    if name not in ENVELOPES:
        raise EnvelopeError(f"unknown envelope {name!r}; known envelopes: {', '.join(ENVELOPES)}")
    return ENVELOPES[name]
