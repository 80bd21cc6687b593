"""Layer descriptors: the per-model numbers the core's control reads.

Everything the core's control needs to know about the loaded model, and
that a model built for the same envelope may change, is a *descriptor*
field held in registers (not a constant of the gateware):

per layer ``i`` (:func:`layer_descriptor_layout`, ``L_max`` entries; the
entries past the loaded model's last layer are zero and never read):

* ``last_k``: neurons − 1; ``last_c``: chunks of ``lanes`` inputs per neuron
  − 1 (0 for layer 0); ``wbase``: the layer's first weight row;
* ``next_rotated``: layer ``i + 1`` rotates its input (the vector goes
  through the butterfly and the requantizer);
* ``table``: the sine table applied to the layer's output (that of layer
  ``i + 1``) and ``complement``: that table's second half is the bitwise
  complement of the first (a mid-rise table), not the negation;
* ``shift``: the channel scaler's shift of the layer;
* ``req_shift``: the requantizer's shift for the vector (when
  ``next_rotated``) and ``act_limit``: the saturation ``2**(b−1) − 1`` of
  the fed layer's activations;

``next_rotated``, ``req_shift`` and ``act_limit`` exist only in an envelope
with rotated hidden layers (:func:`layer_field` reads them as 0 otherwise).
The float core (:class:`~.float32.plan.FloatCorePlan`, per *stage*) has
only ``last_k``, ``last_c`` and ``wbase``: its descriptors are constants
(the initial value of the parts' ``desc`` ports; nothing writes them).

global (:func:`global_descriptor_layout`): ``n0_last`` (layer 0's neurons −
1), ``last_layer``, ``last_channel`` (channels − 1), the image ``width`` and
``height``.

:func:`descriptor_layout` is the whole set as one
:class:`~amaranth.lib.data.StructLayout` (``layers``: an array of
``L_max`` layer descriptors, then the global fields); parts take it as an
``In`` port whose initial value is the loaded model's descriptors
(:func:`descriptor_init`), so a part simulated alone runs that model.
:class:`ModelDescriptors` holds the registers in the core and updates them
from the configuration bus (one entry per write: layer ``i`` at address
``i``, the global fields at address ``L_max``).
"""

from amaranth.hdl import Const, Module, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["layer_descriptor_layout", "layer_field", "ROTATION_FIELDS", "global_descriptor_layout", "descriptor_layout", "descriptor_values",
           "descriptor_init", "descriptor_entries", "descriptor_entry_bits", "ModelDescriptors", "pack"]


#: Fields a core without rotated hidden layers does not have (their value: 0).
ROTATION_FIELDS = ("next_rotated", "req_shift", "act_limit")


def layer_descriptor_layout(plan):
    """One layer's descriptor (module docstring; the rotation fields only
    when the envelope rotates hidden layers)."""
    fields = {
        "last_k": unsigned(plan.index_width),
        "last_c": unsigned(plan.chunk_width),
        "wbase": unsigned(plan.weight_addr_width),
    }
    if plan.arith != "int":
        return data.StructLayout(fields)        # the float core: no table, shift or rotation
    fields.update({
        "table": unsigned(plan.table_width),
        "complement": unsigned(1),
        "shift": unsigned(plan.shift_width),
    })
    if plan.rot_n:
        fields.update({"next_rotated": unsigned(1), "req_shift": unsigned(plan.req_shift_width),
                       "act_limit": unsigned(plan.act_bits)})
    return data.StructLayout(fields)


def layer_field(desc_layer, name):
    """Field ``name`` of a layer descriptor (a rotation field absent from
    the layout reads as the constant 0)."""
    layout = desc_layer.shape()
    return getattr(desc_layer, name) if name in dict(iter(layout)) else Const(0, 1)


def global_descriptor_layout(plan):
    """The model-wide descriptor fields (module docstring)."""
    return data.StructLayout({
        "n0_last": unsigned(plan.first_index_width),
        "last_layer": unsigned(plan.layer_width),
        "last_channel": unsigned(plan.channel_width),
        "width": unsigned(plan.size_bits),
        "height": unsigned(plan.size_bits),
    })


def descriptor_layout(plan):
    """All descriptors: ``layers`` (``L_max`` layer descriptors) and the
    global fields."""
    fields = {"layers": data.ArrayLayout(layer_descriptor_layout(plan), plan.max_layers)}
    fields.update({name: f.shape for name, f in global_descriptor_layout(plan)})
    return data.StructLayout(fields)


def descriptor_entry_bits(plan):
    """Width of one descriptor entry on the configuration bus (the wider of
    a layer descriptor and the global fields)."""
    return max(layer_descriptor_layout(plan).size, global_descriptor_layout(plan).size)


def descriptor_values(plan):
    """The loaded model's descriptors as ``{"layers": [dict per layer of
    L_max], global fields}``."""
    L = plan.n_layers
    m = plan.model
    layers = []
    for i in range(plan.max_layers):
        if i >= L:
            layers.append({name: 0 for name, _ in layer_descriptor_layout(plan)})
            continue
        entry = {
            "last_k": plan.out_features[i] - 1,
            "last_c": max(plan.chunks[i] - 1, 0),
            "wbase": plan.wbase[i],
        }
        if plan.arith != "int":
            layers.append(entry)
            continue
        nxt_rot = plan.next_rotated[i]
        table = plan.table_of[i]
        entry.update({
            "table": table if i < L - 1 else 0,
            "complement": int(i < L - 1 and plan.complement[table]),
            "shift": m.layers[i].shift if i > 0 else 0,
        })
        if plan.rot_n:
            entry.update({"next_rotated": int(nxt_rot), "req_shift": plan.requant_pairs[i][1] if nxt_rot else 0,
                          "act_limit": plan.act_limits[i]})
        layers.append(entry)
    return {"layers": layers, "n0_last": plan.out_features[0] - 1, "last_layer": L - 1,
            "last_channel": m.channels - 1, "width": m.width, "height": m.height}


def pack(layout, values):
    """The integer of ``layout`` holding ``values`` (a dict, or a list for an
    :class:`~amaranth.lib.data.ArrayLayout`); raises ``ValueError`` for a
    value that does not fit its field."""
    word = 0
    items = enumerate(values) if isinstance(layout, data.ArrayLayout) else values.items()
    for key, v in items:
        field = layout[key]
        shape = field.shape
        if isinstance(shape, data.Layout):
            v = pack(shape, v)
        v = int(v)
        if not 0 <= v < (1 << field.width):
            raise ValueError(f"descriptor field {key!r} = {v} does not fit {field.width} bits")
        word |= v << field.offset
    return word


def descriptor_init(plan):
    """The loaded model's descriptors as the initial value of a
    :func:`descriptor_layout` signal or port."""
    return descriptor_values(plan)


def descriptor_entries(plan):
    """The configuration-bus entries of the loaded model's descriptors:
    ``L_max`` layer entries, then the global one (integers)."""
    values = descriptor_values(plan)
    layer_layout = layer_descriptor_layout(plan)
    entries = [pack(layer_layout, v) for v in values["layers"]]
    entries.append(pack(global_descriptor_layout(plan), {k: v for k, v in values.items() if k != "layers"}))
    return entries


class ModelDescriptors(wiring.Component):
    """The descriptor registers (module docstring).

    Ports: ``write`` (in: ``en``, ``addr`` — layer number, or ``L_max`` for
    the global fields — and ``data``, one entry of
    :func:`descriptor_entry_bits` bits), ``desc`` (out, the registers, reset
    to the loaded model's descriptors). A write lands at the next clock edge.
    """

    def __init__(self, plan):
        self.plan = plan
        super().__init__({
            "write": In(wiring.Signature({"en": Out(1), "addr": Out(range(plan.max_layers + 1)),
                                          "data": Out(descriptor_entry_bits(plan))})),
            "desc": Out(descriptor_layout(plan), init=descriptor_init(plan)),
        })

    def elaborate(self, platform):
        m = Module()
        plan = self.plan
        regs = Signal(descriptor_layout(plan), init=descriptor_init(plan))
        m.d.comb += self.desc.eq(regs)
        w = self.write
        layer_bits = layer_descriptor_layout(plan).size
        with m.If(w.en):
            with m.Switch(w.addr):
                for i in range(plan.max_layers):
                    with m.Case(i):
                        m.d.sync += regs.layers[i].as_value().eq(w.data[:layer_bits])
                with m.Case(plan.max_layers):
                    for name, f in global_descriptor_layout(plan):
                        m.d.sync += getattr(regs, name).eq(w.data[f.offset:f.offset + f.width])
        return m
