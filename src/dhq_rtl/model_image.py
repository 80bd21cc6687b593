"""The model image: the versioned file that carries an integer INR to hardware.

It is the only thing the ML side hands to the hardware side. It holds every
integer the datapath needs (weights, scale multipliers and shifts, phase
offsets, sine tables) and the image geometry; ``docs/datapath.md`` defines how
they are used. From format version 3 on it may also carry the float model the
integer one was exported from (``float_weight``, ``float_bias`` per layer,
float32), which the full-precision core runs (:mod:`dhq_rtl.golden_float32`,
``docs/float32.md``): one file builds either core.

File layout (all integers little-endian)::

    offset  size  field
    0       4     magic  b"DHQM"
    4       2     format version (u16), currently FORMAT_VERSION
    6       4     header length H in bytes (u32)
    10      H     header: UTF-8 JSON (geometry, per-layer parameters,
                  and for each array its dtype, shape, offset and size)
    10+H    P     payload: the arrays, raw, at the offsets the header names
    10+H+P  4     CRC-32 of every preceding byte (u32)

:func:`load` checks everything (magic, version, sizes, CRC, JSON schema, array
shapes and ranges, and that no intermediate result of the datapath can
overflow 62 bits) and raises :class:`~dhq_rtl.errors.ModelImageError` naming
the problem; it never returns a model the golden model cannot run.
"""

import json
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from .errors import ModelImageError
from .fixedpoint import signed_bits, signed_max
from .hadamard import is_power_of_two, log2_exact
from .outputs import write_file

__all__ = ["FORMAT_VERSION", "READABLE_VERSIONS", "MAGIC", "LayerImage", "ModelImage", "load", "loads", "save", "dumps",
           "layer_bits_text"]

MAGIC = b"DHQM"
FORMAT_VERSION = 3
#: Versions :func:`loads` reads. Version 1 has no ``weight_midrise`` field
#: (every weight on the mid-tread grid); versions 1 and 2 have no float
#: parameters (version 3: optional, in every layer or in none).
READABLE_VERSIONS = (1, 2, 3)

_PREAMBLE = struct.Struct("<4sHI")
_CRC = struct.Struct("<I")

#: Arrays of each layer: name → (dtype stored in the file, whether layer 0 has it).
_ARRAYS = {
    "weight": ("<i2", True),
    "mult": ("<i4", True),
    "bias": ("<i8", True),
    "lut": ("<i4", False),
    "float_weight": ("<f4", True),
    "float_bias": ("<f4", True),
}
#: The float model's arrays (format version 3 on; optional).
FLOAT_ARRAYS = ("float_weight", "float_bias")

BITS_RANGE = (2, 16)
#: Widest mid-rise first-layer weight: its stored ``2q + 1`` needs one bit
#: more than the code, and the weight array is int16.
MAX_MIDRISE_WEIGHT_BITS = 15
PHASE_BITS_RANGE = (4, 16)
MAX_SHIFT = 48
MAX_DIM = 4096
MAX_FEATURES = 4096
#: Largest magnitude any intermediate may reach, so that int64 (and the RTL
#: widths derived from these bounds) can never overflow.
MAX_INTERMEDIATE_BITS = 62


@dataclass
class LayerImage:
    """One layer of the integer model; see ``docs/datapath.md`` for semantics.

    ``act_bits`` is the width of the layer's input activation ``q`` (for the
    first layer: of the integer coordinate vector ``v``). ``rotate`` means the
    input passes through the Hadamard butterfly (and, after the first layer,
    the requantizer ``req_mult``/``req_shift``). ``lut`` (absent for the first
    layer) is the sine table that turns the previous layer's phase into this
    layer's input, ``lut_bits`` wide. ``weight_midrise`` (first layer only):
    the ``weight_bits``-bit weight codes ``q`` are on the mid-rise grid and
    ``weight`` holds ``2q + 1`` (odd, ``|w| ≤ 2**weight_bits − 1``); ``mult``
    is the scale of one ``weight`` unit, half a step.

    ``float_weight`` (``(out_features, in_features)``) and ``float_bias``
    (``(out_features,)``), float32 and finite, or both ``None``: the float
    model's own layer, ``z = float_weight · h + float_bias``, never rotated
    (layer 0's input ``h`` is the real coordinate ``c = (u_x/(W−1),
    u_y/(H−1)) ∈ [−1, 1]²``, a hidden layer's the sine ``sin(ω0·z)`` of the
    previous one, the last layer's ``z`` is ``y``, the pixel ``(y + 1)·(2**pixel_bits − 1)/2``).
    """

    in_features: int
    out_features: int
    weight_bits: int
    act_bits: int
    rotate: bool
    mult_bits: int
    shift: int
    weight: np.ndarray
    mult: np.ndarray
    bias: np.ndarray
    lut: np.ndarray | None = None
    lut_bits: int = 0
    req_mult: int = 1
    req_shift: int = 0
    weight_midrise: bool = False
    float_weight: np.ndarray | None = None
    float_bias: np.ndarray | None = None


@dataclass
class ModelImage:
    """A whole integer INR: geometry, phase resolution and the layers."""

    height: int
    width: int
    channels: int
    phase_bits: int
    omega0: float
    layers: list
    pixel_bits: int = 8
    meta: dict = field(default_factory=dict)

    @property
    def hidden_width(self):
        return self.layers[0].out_features

    @property
    def has_float(self):
        """Whether the model carries its float parameters (every layer's
        ``float_weight`` and ``float_bias``): the float core can run it."""
        return all(l.float_weight is not None for l in self.layers)

    @property
    def depth(self):
        """Number of sine layers (all layers but the output layer)."""
        return len(self.layers) - 1

    def macs_per_pixel(self, include_first=True):
        """Multiply-accumulates per pixel (the first layer's are optional:
        hardware can compute it as a running sum without multipliers)."""
        layers = self.layers if include_first else self.layers[1:]
        return sum(l.in_features * l.out_features for l in layers)

    def coordinate_range(self):
        """Inclusive range of the first layer's integer input vector ``v``."""
        m = max(self.height, self.width) - 1
        return (-2 * m, 2 * m) if self.layers[0].rotate else (-m, m)

    def accumulator_bounds(self, index):
        """Worst-case ``(lo, hi)`` of layer ``index``'s accumulator over all
        inputs its activation range allows, computed per output row and
        maximised: ``Σ_j |W[k, j]| · max|q|``. ``max|q|``: the coordinates'
        range (layer 0), the requantizer's saturation ``2**(act_bits−1) − 1``
        (rotated), else the larger of that and the sine table's largest
        magnitude (an unrotated table holds the codes themselves, and
        ``−2**(act_bits−1)`` is one of them on the mid-rise grid)."""
        layer = self.layers[index]
        if index == 0:
            lo, hi = self.coordinate_range()
            qmax = max(-lo, hi)
        elif layer.rotate or layer.lut is None or not layer.lut.size:
            qmax = signed_max(layer.act_bits)
        else:
            qmax = max(signed_max(layer.act_bits), int(np.abs(layer.lut.astype(np.int64)).max()))
        row = np.abs(layer.weight.astype(np.int64)).sum(axis=1).max(initial=0)
        return -int(row) * qmax, int(row) * qmax

    def accumulator_bits(self, index):
        """Two's-complement width that provably holds layer ``index``'s accumulator."""
        return signed_bits(*self.accumulator_bounds(index))

    def validate(self):
        """Check every invariant; raise :class:`ModelImageError` on the first violation."""
        _validate(self)
        return self


def layer_bits_text(model):
    """Every layer's weight and input bits, e.g. ``L0 W12 | L1 W8A8 | L2 W8A8``
    (layer 0's input is the exact coordinate), and the recipe that chose them
    when the model records one: ``… (recipe first-wide)``."""
    text = " | ".join(f"L{i} W{l.weight_bits}" + (f"A{l.act_bits}" if i else "") for i, l in enumerate(model.layers))
    recipe = model.meta.get("recipe")
    return text + (f" (recipe {recipe})" if recipe else "")


def _fail(msg):
    raise ModelImageError(msg)


def _check_int(name, value, lo, hi):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        _fail(f"{name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        _fail(f"{name} = {value} is out of range [{lo}, {hi}]")


def _check_array(name, arr, shape, lo, hi):
    if not isinstance(arr, np.ndarray):
        _fail(f"{name} is missing")
    if arr.shape != tuple(shape):
        _fail(f"{name} has shape {arr.shape}, expected {tuple(shape)}")
    if arr.size and (int(arr.min()) < lo or int(arr.max()) > hi):
        _fail(f"{name} has values in [{int(arr.min())}, {int(arr.max())}], outside [{lo}, {hi}]")


def _validate(m):
    _check_int("height", m.height, 2, MAX_DIM)
    _check_int("width", m.width, 2, MAX_DIM)
    _check_int("channels", m.channels, 1, 4)
    _check_int("phase_bits", m.phase_bits, *PHASE_BITS_RANGE)
    _check_int("pixel_bits", m.pixel_bits, 1, 16)
    if not isinstance(m.omega0, (int, float)) or not np.isfinite(m.omega0) or m.omega0 <= 0:
        _fail(f"omega0 must be a positive number, got {m.omega0!r}")
    if not isinstance(m.layers, list) or len(m.layers) < 2:
        _fail("a model needs at least two layers (one sine layer and the output layer)")
    if not isinstance(m.meta, dict):
        _fail("meta must be a JSON object")
    lut_size = 1 << m.phase_bits
    for i, l in enumerate(m.layers):
        p = f"layer {i}"
        first, last = i == 0, i == len(m.layers) - 1
        _check_int(f"{p} in_features", l.in_features, 1, MAX_FEATURES)
        _check_int(f"{p} out_features", l.out_features, 1, MAX_FEATURES)
        if not isinstance(l.rotate, bool):
            _fail(f"{p} rotate must be true or false")
        if first and l.in_features != 2:
            _fail(f"{p} must take the 2 pixel coordinates, not {l.in_features} inputs")
        if not first and l.in_features != m.layers[i - 1].out_features:
            _fail(f"{p} takes {l.in_features} inputs but layer {i - 1} gives {m.layers[i - 1].out_features}")
        if last and l.out_features != m.channels:
            _fail(f"output layer gives {l.out_features} values per pixel but the image has {m.channels} channels")
        if l.rotate and not is_power_of_two(l.in_features):
            _fail(f"{p} is rotated but its input width {l.in_features} is not a power of two")
        _check_int(f"{p} weight_bits", l.weight_bits, *BITS_RANGE)
        _check_int(f"{p} mult_bits", l.mult_bits, 1, 24)
        _check_int(f"{p} shift", l.shift, 0, MAX_SHIFT)
        if first:
            lo, hi = m.coordinate_range()
            if l.act_bits != signed_bits(lo, hi):
                _fail(f"{p} act_bits must be {signed_bits(lo, hi)} (the width of the coordinates), got {l.act_bits}")
        else:
            _check_int(f"{p} act_bits", l.act_bits, *BITS_RANGE)
        if not isinstance(l.weight_midrise, bool):
            _fail(f"{p} weight_midrise must be true or false")
        if l.weight_midrise:
            if not first:
                _fail(f"{p} has mid-rise weights; only the first layer may (the MACs multiply the code itself)")
            if l.weight_bits > MAX_MIDRISE_WEIGHT_BITS:
                _fail(f"{p} has {l.weight_bits}-bit mid-rise weights; at most {MAX_MIDRISE_WEIGHT_BITS} "
                      f"(2q + 1 is stored as int16)")
            wmax = (1 << l.weight_bits) - 1
            _check_array(f"{p} weight", l.weight, (l.out_features, l.in_features), -wmax, wmax)
            if np.any(l.weight % 2 == 0):
                _fail(f"{p} has mid-rise weights, so every weight must be odd (2q + 1)")
        else:
            wmax = signed_max(l.weight_bits)
            _check_array(f"{p} weight", l.weight, (l.out_features, l.in_features), -wmax, wmax)
        _check_array(f"{p} mult", l.mult, (l.out_features,), 0, (1 << l.mult_bits) - 1)
        if last:
            blim = 1 << MAX_INTERMEDIATE_BITS
            _check_array(f"{p} bias", l.bias, (l.out_features,), -blim, blim)
        else:
            _check_array(f"{p} bias", l.bias, (l.out_features,), 0, (1 << (m.phase_bits + l.shift)) - 1)
        if first:
            if l.lut is not None:
                _fail(f"{p} must not carry a sine table (its input is the coordinates)")
        else:
            if l.rotate:
                _check_int(f"{p} lut_bits", l.lut_bits, *BITS_RANGE)
                _check_int(f"{p} req_mult", l.req_mult, 1, (1 << 16) - 1)
                _check_int(f"{p} req_shift", l.req_shift, 0, MAX_SHIFT)
            else:
                if l.lut_bits != l.act_bits:
                    _fail(f"{p} is not rotated, so its sine table must be act_bits = {l.act_bits} wide, got {l.lut_bits}")
                if l.req_mult != 1 or l.req_shift != 0:
                    _fail(f"{p} is not rotated, so it has no requantizer (req_mult 1, req_shift 0)")
            lmax = signed_max(l.lut_bits)
            # an unrotated table holds the input codes: the whole signed range (mid-rise grid)
            _check_array(f"{p} lut", l.lut, (lut_size,), -lmax - (0 if l.rotate else 1), lmax)
        # Overflow proof: every intermediate must fit MAX_INTERMEDIATE_BITS.
        widths = {"accumulator": m.accumulator_bits(i)}
        widths["scaled accumulator"] = widths["accumulator"] + l.mult_bits + 1
        if not first and l.rotate:
            widths["butterfly output"] = l.lut_bits + log2_exact(l.in_features)
            widths["requantizer product"] = widths["butterfly output"] + 17
        for what, bits in widths.items():
            if bits > MAX_INTERMEDIATE_BITS:
                _fail(f"{p}: the {what} needs {bits} bits, more than {MAX_INTERMEDIATE_BITS}")
    _validate_float(m)


def _validate_float(m):
    """The float parameters: in every layer or in none, float32, the layer's
    shapes, finite."""
    present = [l.float_weight is not None or l.float_bias is not None for l in m.layers]
    if any(present) and not all(present):
        _fail(f"float parameters are in layers {[i for i, p in enumerate(present) if p]} only; "
              f"a model carries them in every layer or in none")
    if not any(present):
        return
    for i, l in enumerate(m.layers):
        for name, shape in (("float_weight", (l.out_features, l.in_features)), ("float_bias", (l.out_features,))):
            arr = getattr(l, name)
            if not isinstance(arr, np.ndarray) or arr.dtype != np.float32:
                _fail(f"layer {i} {name} must be a float32 array, got "
                      f"{type(arr).__name__ if not isinstance(arr, np.ndarray) else arr.dtype}")
            if arr.shape != shape:
                _fail(f"layer {i} {name} has shape {arr.shape}, expected {shape}")
            if not np.all(np.isfinite(arr)):
                _fail(f"layer {i} {name} holds a value that is not finite (Inf or NaN)")


# ---------------------------------------------------------------- serialisation

_LAYER_SCALARS = ("in_features", "out_features", "weight_bits", "act_bits", "rotate",
                  "mult_bits", "shift", "lut_bits", "req_mult", "req_shift", "weight_midrise")
_BOOL_SCALARS = ("rotate", "weight_midrise")
#: Fields a version-1 file does not have, with the value they mean there.
_ADDED_IN_2 = {"weight_midrise": False}


def dumps(model):
    """Serialise a (validated) model image to bytes."""
    model.validate()
    payload = bytearray()
    layers = []
    for l in model.layers:
        entry = {k: (bool(v) if k in _BOOL_SCALARS else int(v)) for k in _LAYER_SCALARS for v in [getattr(l, k)]}
        arrays = {}
        for name, (dtype, _) in _ARRAYS.items():
            arr = getattr(l, name)
            if arr is None:
                continue
            raw = np.ascontiguousarray(arr, dtype=dtype).tobytes()
            arrays[name] = {"dtype": dtype, "shape": list(arr.shape), "offset": len(payload), "size": len(raw)}
            payload += raw
        entry["arrays"] = arrays
        layers.append(entry)
    header = {
        "height": model.height, "width": model.width, "channels": model.channels,
        "phase_bits": model.phase_bits, "omega0": float(model.omega0), "pixel_bits": model.pixel_bits,
        "payload_size": len(payload), "layers": layers, "meta": model.meta,
    }
    hbytes = json.dumps(header, sort_keys=True).encode()
    body = _PREAMBLE.pack(MAGIC, FORMAT_VERSION, len(hbytes)) + hbytes + bytes(payload)
    return body + _CRC.pack(zlib.crc32(body))


def save(model, path):
    """Write ``model`` to ``path`` (validated first; nothing is written if
    invalid) atomically: a failed write leaves a previous file unchanged."""
    write_file(path, dumps(model))


def _get(d, key, kind, where):
    if not isinstance(d, dict) or key not in d:
        _fail(f"{where}: field {key!r} is missing")
    v = d[key]
    if kind is int and (not isinstance(v, int) or isinstance(v, bool)):
        _fail(f"{where}: field {key!r} must be an integer, got {v!r}")
    if kind is bool and not isinstance(v, bool):
        _fail(f"{where}: field {key!r} must be true or false, got {v!r}")
    if kind is float and (not isinstance(v, (int, float)) or isinstance(v, bool)):
        _fail(f"{where}: field {key!r} must be a number, got {v!r}")
    if kind in (dict, list) and not isinstance(v, kind):
        _fail(f"{where}: field {key!r} must be a JSON {kind.__name__}")
    return v


def loads(data, source="model image"):
    """Parse and validate a model image from bytes."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("loads() needs bytes")
    data = bytes(data)
    if len(data) < _PREAMBLE.size + _CRC.size:
        _fail(f"{source} is truncated ({len(data)} bytes): not a dhq_rtl model image")
    magic, version, hlen = _PREAMBLE.unpack_from(data)
    if magic != MAGIC:
        _fail(f"{source} is not a dhq_rtl model image (bad magic {magic!r}); "
              f"make one with `python -m dhq_rtl.train`")
    if version not in READABLE_VERSIONS:
        _fail(f"{source} has format version {version}, this dhq_rtl reads versions "
              f"{', '.join(map(str, READABLE_VERSIONS))}; "
              f"re-export it with `python -m dhq_rtl.train`")
    body, (crc,) = data[:-_CRC.size], _CRC.unpack_from(data, len(data) - _CRC.size)
    if _PREAMBLE.size + hlen > len(body):
        _fail(f"{source} is truncated: header claims {hlen} bytes, file has {len(body) - _PREAMBLE.size}")
    if zlib.crc32(body) != crc:
        _fail(f"{source} is corrupt (CRC mismatch) or truncated")
    try:
        header = json.loads(body[_PREAMBLE.size:_PREAMBLE.size + hlen].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        _fail(f"{source} has an unreadable header: {e}")
    payload = body[_PREAMBLE.size + hlen:]
    if not isinstance(header, dict):
        _fail(f"{source}: header must be a JSON object")
    if _get(header, "payload_size", int, "header") != len(payload):
        _fail(f"{source}: payload is {len(payload)} bytes, header says {header['payload_size']}")
    layers = []
    for i, entry in enumerate(_get(header, "layers", list, "header")):
        where = f"layer {i}"
        kw = {k: (_ADDED_IN_2[k] if version < 2 and k in _ADDED_IN_2
                  else _get(entry, k, bool if k in _BOOL_SCALARS else int, where)) for k in _LAYER_SCALARS}
        arrays = _get(entry, "arrays", dict, where)
        for name, (dtype, in_first) in _ARRAYS.items():
            if name not in arrays:
                if (name == "lut" and i == 0) or name in FLOAT_ARRAYS:
                    kw[name] = None
                    continue
                _fail(f"{where}: array {name!r} is missing")
            if name in FLOAT_ARRAYS and version < 3:
                _fail(f"{where}: array {name!r} is not part of format version {version}")
            kw[name] = _read_array(payload, arrays[name], dtype, f"{where} {name}")
        unknown = set(arrays) - set(_ARRAYS)
        if unknown:
            _fail(f"{where}: unknown arrays {sorted(unknown)}")
        layers.append(LayerImage(**kw))
    model = ModelImage(
        height=_get(header, "height", int, "header"),
        width=_get(header, "width", int, "header"),
        channels=_get(header, "channels", int, "header"),
        phase_bits=_get(header, "phase_bits", int, "header"),
        omega0=float(_get(header, "omega0", float, "header")),
        pixel_bits=_get(header, "pixel_bits", int, "header"),
        layers=layers,
        meta=_get(header, "meta", dict, "header"),
    )
    try:
        return model.validate()
    except ModelImageError as e:
        raise ModelImageError(f"{source}: {e}") from None


def _read_array(payload, desc, dtype, where):
    if not isinstance(desc, dict):
        _fail(f"{where}: array description must be a JSON object")
    if desc.get("dtype") != dtype:
        _fail(f"{where}: dtype must be {dtype!r}, got {desc.get('dtype')!r}")
    shape = _get(desc, "shape", list, where)
    if len(shape) > 2 or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= 1 << 20 for s in shape):
        _fail(f"{where}: bad shape {shape!r}")
    offset = _get(desc, "offset", int, where)
    size = _get(desc, "size", int, where)
    itemsize = np.dtype(dtype).itemsize
    if size != int(np.prod(shape, dtype=np.int64)) * itemsize:
        _fail(f"{where}: size {size} does not match shape {shape}")
    if offset < 0 or offset + size > len(payload):
        _fail(f"{where}: array lies outside the payload")
    arr = np.frombuffer(payload, dtype=dtype, count=size // itemsize, offset=offset).reshape(shape)
    return arr.astype(np.float32) if dtype.startswith("<f") else arr.astype(np.int64)


def load(path):
    """Read and validate a model image file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ModelImageError(f"cannot read model image {path}: {e.strerror}") from None
    return loads(data, source=str(path))
