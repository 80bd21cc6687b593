"""The vector arbiter: which vector goes through post-processing next.

:class:`VectorArbiter` feeds the post-processing chain whole vectors, one at
a time and back to back: the accumulators of a MAC job (from the
accumulator queue) or the layer-0 phases of a new pixel (from the running-sum
coordinate generator). A state machine with three states:

* ``IDLE`` decides, in this order: the accumulator queue's head vector (an
  output-layer vector needs nothing; a hidden one needs a free activation
  buffer and its path, below), else a new pixel (the core has ``room`` for
  it, the generator is ready, a buffer is free and the path is free);
* ``MAC`` passes the vector's accumulators on as they arrive, one per cycle
  at most (the head may be a vector the MAC array is still producing);
* ``COORD`` requests the pixel's phases (``coords.next``, registered) and
  passes them on as the generator emits them (4 cycles later, one per cycle).

A vector costs one ``IDLE`` cycle plus one cycle per element (an accumulator
vector whose elements are all in the queue), and a pixel's phases ``n + 5``
cycles (``IDLE``, the registered request, the generator's latency of 4).

Paths: a vector whose next layer is rotated goes through the butterfly and
the requantizer, any other straight from the sine table to its buffer. The
two paths have different latencies, so a vector may enter one path only
when the other is empty; the arbiter counts the elements it sent into each
path and the post-processing chain's ``path_done`` strobes count them out.
"Empty" is registered and conservative: known one cycle late when the last
element leaves, never claimed while one enters.

Ports: ``acc`` (in stream of :func:`~.core_streams.accumulator_layout`), ``alloc`` (in stream of
buffer numbers: a transfer takes the buffer), ``coords`` (the generator's
:func:`~.core_streams.coord_source_signature`, flipped), ``room`` (in: the core
can take another pixel), ``admit`` (out: a pixel enters now), ``path_done``
(in), ``elements`` (out stream of :func:`~.core_streams.element_layout`:
``value`` an accumulator or, with ``coord``, an element of vector 0;
``layer``, ``index``, destination ``buffer``). ``elements`` is
``always_ready`` unless the plan's post-processing is paced
(``post_paced``: the float core's sine takes a phase every ``ii`` cycles);
then an accumulator passes on only when it is taken, and the elements of
vector 0 must always be taken.

Registered decisions (timing): the element taken next is the vector's last;
"a new pixel may enter" (one cycle stale only right after an admission,
when the arbiter is busy anyway); the pixel request. The states are one-hot
and the element's layer, index and buffer are registers in every state
(they address the scaler's table).
"""

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .core_streams import accumulator_layout, buffer_id_stream, coord_source_signature, element_layout, path_done_signature
from .descriptors import descriptor_init, descriptor_layout, layer_field
from .lookup import lookup
from .one_hot import OneHotStates

__all__ = ["VectorArbiter"]


class VectorArbiter(wiring.Component):
    """Chooses and streams the next vector into post-processing (module docstring)."""

    def __init__(self, plan):
        self.plan = plan
        super().__init__({
            "acc": In(stream.Signature(accumulator_layout(plan))),
            "alloc": In(buffer_id_stream(plan)),
            "coords": In(coord_source_signature(plan)),
            "room": In(1),
            "admit": Out(1),
            "path_done": In(path_done_signature()),
            "elements": Out(stream.Signature(element_layout(plan), always_ready=not plan.post_paced)),
            "desc": In(descriptor_layout(plan), init=descriptor_init(plan)),
        })

    def elaborate(self, platform):
        m = Module()
        plan = self.plan
        head = self.acc.payload
        el = self.elements.payload
        # The vector being passed on.
        vec = Signal(el.shape())
        vec_rem = Signal(plan.index_width)    # elements left after the next one
        vec_end = Signal()                    # registered: the element taken next is the last
        path_free = self._paths(m, vec.layer)
        head_path_free = Mux(head.next_rotated, path_free["direct"], path_free["rotated"])
        coord_path_free = Mux(layer_field(self.desc.layers[0], "next_rotated"), path_free["direct"],
                              path_free["rotated"])

        coord_ok = Signal()
        m.d.sync += coord_ok.eq(self.room & self.coords.ready & ~self.admit)
        coord_next = Signal()
        m.d.sync += coord_next.eq(0)
        m.d.comb += self.coords.next.eq(coord_next)
        phase = self.coords.phases
        # The element's layer, index and buffer come straight from registers
        # in every state (timing: they address the scaler's table RAM): in
        # COORD, vec.layer is 0 and vec.index counts the phases, which the
        # generator emits in index order from 0.
        m.d.comb += [el.layer.eq(vec.layer), el.index.eq(vec.index), el.buffer.eq(vec.buffer)]
        # One-hot (timing: each state's decisions start at its own register).
        states = OneHotStates(m, ("IDLE", "MAC", "COORD"), init="IDLE", name="arbiter")
        with states.state("IDLE"):
            # The head vector's numbers are loaded in every IDLE cycle (timing:
            # not behind the decision; they are used only in the state entered
            # next). An output-layer vector's buffer is a don't-care.
            # (Without a head vector the only way out is a pixel: layer 0.)
            m.d.sync += [vec.layer.eq(Mux(self.acc.valid, head.layer, 0)), vec.buffer.eq(self.alloc.payload),
                         vec.index.eq(0),
                         vec_rem.eq(head.last_index), vec_end.eq(head.single)]
            with m.If(self.acc.valid):
                with m.If(head.output):
                    states.goto("MAC")
                with m.Elif(self.alloc.valid & head_path_free):
                    m.d.comb += self.alloc.ready.eq(1)
                    states.goto("MAC")
            with m.Elif(coord_ok & self.alloc.valid & coord_path_free):
                m.d.comb += [self.alloc.ready.eq(1), self.admit.eq(1)]
                m.d.sync += coord_next.eq(1)
                states.goto("COORD")
        with states.state("MAC"):
            # (ready is the constant 1 unless the plan's post-processing is paced)
            m.d.comb += [self.acc.ready.eq(self.elements.ready), el.coord.eq(0)]
            with m.If(self.acc.valid):
                m.d.comb += [self.elements.valid.eq(1), el.value.acc.eq(head.acc)]
            with m.If(self.acc.valid & self.elements.ready):
                m.d.sync += [vec.index.eq(vec.index + 1), vec_rem.eq(vec_rem - 1), vec_end.eq(vec_rem == 1)]
                with m.If(vec_end):
                    states.goto("IDLE")
        with states.state("COORD"):
            m.d.comb += [self.elements.valid.eq(phase.valid), el.coord.eq(1),
                         el.value.phase.eq(phase.payload.phase)]
            with m.If(phase.valid):
                m.d.sync += vec.index.eq(vec.index + 1)
            with m.If(phase.valid & phase.payload.last):
                states.goto("IDLE")
        return m

    def _paths(self, m, vec_layer):
        """Element counts of the two paths; returns the registered "empty" flags."""
        plan = self.plan
        if not plan.rot_n:
            # No rotated hidden layer: nothing enters the rotated path and no
            # vector waits for the direct one (a vector waits for the path it
            # does not take to be empty), so no counts.
            return {"direct": Const(1, 1), "rotated": Const(1, 1)}
        limit = 4 * plan.vec_max + 64
        counts = {p: Signal(range(limit), name=f"{p}_count") for p in ("direct", "rotated")}
        entering = {p: Signal(name=f"{p}_enter") for p in counts}
        empty = {p: Signal(init=1, name=f"{p}_empty") for p in counts}
        next_rot = Signal()
        lookup(m, vec_layer, [layer_field(self.desc.layers[i], "next_rotated") for i in range(plan.max_layers)],
               next_rot)
        with m.If(self.elements.valid & (self.elements.payload.layer != self.desc.last_layer)):
            m.d.comb += [entering["rotated"].eq(next_rot), entering["direct"].eq(~next_rot)]
        # The counts take an entering element a cycle late (timing: the
        # element's valid and layer reach the counter's adder through a
        # register, not through the arbiter's state logic). A count is then
        # the path's elements less the one that entered last cycle (none has
        # left by then), so the path is empty when the count is zero and no
        # element entered this cycle or the last: the same flag as counting
        # at once.
        for p, count in counts.items():
            done = getattr(self.path_done, p)
            entered = Signal(name=f"{p}_entered")
            m.d.sync += [entered.eq(entering[p]), count.eq(count + entered - done),
                         empty[p].eq((count == 0) & ~entering[p] & ~entered)]
        return empty
