"""Block-RAM read ports whose read-during-write result is undefined.

An iCE40 (``SB_RAM40_4K``) or ECP5 block RAM read in the cycle that writes
the same address gives data the vendor does not specify. Amaranth's
non-transparent read port promises the *old* word instead, and Yosys keeps
that promise in logic: it delays the write by a cycle and adds a bypass
(``emulate_read_first``): two registers per data bit, an address
comparator and a multiplexer per bit, on every such port. Measured on the
default iCEBreaker build (seven ports, up to 64 bits wide): 421 logic
cells, 8 % of the UP5K, for reads whose result no block uses.

A memory made with :func:`memory_attrs` and read through :func:`read_port`
says instead that a colliding read is *undefined*:

* **Synthesis.** The memory carries Yosys's ``no_rw_check`` attribute;
  :data:`YOSYS_SCRIPT` (run after the RTLIL is read, by every synthesis
  of the project) marks the read ports of such memories "don't care on
  collision", so each maps to a bare block RAM.
* **Simulation** (elaborated without a platform). A read that collides
  with a write returns :data:`POISON` (alternating bits) instead of the old
  word, so a block that uses such a read fails its bit-exact tests instead
  of working in simulation only. :func:`no_collision_check` turns this off
  (out-of-context synthesis and the activity simulator take the hardware's
  logic only).

Timing and latency are those of Amaranth's synchronous read port: data one
cycle after the address, held while ``en`` is low.
"""

from contextlib import contextmanager

from amaranth.hdl import Const, Signal, Value

__all__ = ["memory_attrs", "read_port", "ReadPort", "POISON", "YOSYS_SCRIPT", "no_collision_check"]

#: The bit pattern of a colliding read in simulation: 0101… (bit 0 set),
#: as wide as the port's data.
POISON = 0x5555_5555_5555_5555_5555_5555_5555_5555

#: The attribute Yosys reads: "read/write collisions are don't-care".
ATTRIBUTE = "no_rw_check"

#: The most read and write ports of one memory the script covers.
_MAX_READ_PORTS, _MAX_WRITE_PORTS = 4, 2


def _script():
    """Yosys commands: collect each memory into one ``$mem_v2`` cell (after
    ``proc``: ``memory_collect`` skips a module with processes; synthesis
    would run it first anyway), then set every read/write collision bit of
    the memories that carry :data:`ATTRIBUTE` (the mask is one bit per read
    port and write port pair, so one command per port count)."""
    lines = ["proc", "memory_collect"]
    for r in range(1, _MAX_READ_PORTS + 1):
        for w in range(1, _MAX_WRITE_PORTS + 1):
            lines.append(f"setparam -set RD_COLLISION_X_MASK {r * w}'b{'1' * (r * w)} "
                         f"t:$mem_v2 a:{ATTRIBUTE} %i r:RD_PORTS={r} %i r:WR_PORTS={w} %i")
    return "\n".join(lines)


#: Run after ``read_rtlil`` (before ``synth_ice40`` / ``synth_ecp5``).
YOSYS_SCRIPT = _script()

_poison_in_simulation = True


@contextmanager
def no_collision_check():
    """Within this block, designs elaborated without a platform get no
    simulation-only collision check (a colliding read gives the old word,
    Amaranth's behaviour): the hardware's logic only, for synthesis out of
    context and for counting activity."""
    global _poison_in_simulation
    saved, _poison_in_simulation = _poison_in_simulation, False
    try:
        yield
    finally:
        _poison_in_simulation = saved


def memory_attrs(*, block_ram=False):
    """Attributes for a :class:`~amaranth.lib.memory.Memory` read through
    :func:`read_port`: collisions undefined, and (``block_ram``) block RAM
    asked for even where the memory is small."""
    attrs = {ATTRIBUTE: 1}
    if block_ram:
        attrs["ram_style"] = "block"
    return attrs


class ReadPort:
    """A synchronous read port (:func:`read_port`): drive ``addr`` and
    ``en``, read ``data`` a cycle later."""

    def __init__(self, addr, en, data):
        self.addr, self.en, self.data = addr, en, data


def read_port(m, memory, platform, *, domain="sync"):
    """A synchronous, non-transparent read port of ``memory`` (made with
    :func:`memory_attrs`, its write ports created already) whose data is
    undefined after a read of an address written in the same cycle (module
    docstring). Returns a :class:`ReadPort`."""
    if memory.attrs.get(ATTRIBUTE) != 1:
        raise ValueError(f"the memory must be made with memory_attrs() (the {ATTRIBUTE} attribute) "
                         f"to have a read port with undefined collisions")
    if domain == "comb":
        raise ValueError("a combinational read port has no read-during-write collision; use memory.read_port()")
    rd = memory.read_port(domain=domain)
    if platform is not None or not _poison_in_simulation or not memory.write_ports:
        return ReadPort(rd.addr, rd.en, rd.data)
    # Simulation: a read that collides with a write returns the poison.
    collides = Const(0, 1)
    for wr in memory.write_ports:
        collides = collides | (Value.cast(wr.en).any() & (wr.addr == rd.addr))
    collided = Signal(name="read_collided")
    with m.If(rd.en):
        m.d[domain] += collided.eq(collides)
    data = Signal(memory.shape, name="read_data")
    width = len(Value.cast(rd.data))
    m.d.comb += Value.cast(data).eq(Value.cast(rd.data))
    with m.If(collided):
        m.d.comb += Value.cast(data).eq(Const(POISON & ((1 << width) - 1), width))
    return ReadPort(rd.addr, rd.en, data)
