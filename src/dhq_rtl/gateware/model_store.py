"""The load path inside the core: the staging memory and the installer.

A new model reaches the core in two steps, so that a model that arrives
only in part never replaces the one running:

1. The board's link writes the *load image* (:mod:`dhq_rtl.loader`: a
   header, then one section per loadable memory) into the **staging
   memory**, byte by byte, through the ``staging`` port; it can read it
   back through the same port (the commit's CRC check). The live memories
   are not touched, the loaded model keeps rendering.
2. A pulse on ``install.start`` (after the link has checked the whole
   image's CRC) runs the **installer**: it reads the header, checks it
   (format, the envelope's signature, every section's entry count within
   its memory, the image's length equal to ``install.length``) and only
   then copies every entry into its memory through the core's
   configuration bus (``config``). ``install.busy`` is high meanwhile,
   ``install.ok`` says afterwards whether the image was installed (a
   refused header writes nothing). The core must be idle during an
   install (the board's link renders nothing while it runs).

Staging memory: ``staging_depth`` words of 16 bits. With ``plan.spram``
it is made of :class:`~.spram.Spram` (``SB_SPRAM256KA``, one per 16 384
words), otherwise a :class:`~amaranth.lib.memory.Memory` (block RAM).
Port ``staging``: ``addr`` (word), ``wdata``, ``wbytes`` (byte enables:
bit 0 the low byte), ``we``, ``re``; ``rdata`` holds the word read one
cycle after ``re``. The installer owns the port while it runs.

Installer timing: two cycles per staging word (address, then data), one
write per entry after its last word: about ``2·W + E`` cycles for an image
of ``W`` words and ``E`` entries (the default model in its own envelope:
some 3 000 cycles).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .lookup import lookup
from .plan import LOAD_FORMAT, SPRAM_WORDS, STAGING_WORD_BITS
from .spram import Spram

__all__ = ["ModelStore", "staging_signature", "install_signature"]


def staging_signature(plan):
    """The staging memory's port, seen from its user (the board's link)."""
    return wiring.Signature({
        "addr": Out(range(plan.staging_depth)),
        "wdata": Out(STAGING_WORD_BITS),
        "wbytes": Out(2),
        "we": Out(1),
        "re": Out(1),
        "rdata": In(STAGING_WORD_BITS),
    })


def install_signature():
    """The installer's control, seen from the board's link: ``start`` (pulse),
    ``length`` (the image's length in staging words), ``busy``, ``ok``."""
    return wiring.Signature({"start": Out(1), "length": Out(32), "busy": In(1), "ok": In(1)})


class ModelStore(wiring.Component):
    """Staging memory and installer (module docstring).

    Ports: ``staging`` (in, :func:`staging_signature`), ``install`` (in,
    :func:`install_signature`), ``config`` (out, the core's configuration
    bus, :func:`~.core.config_signature`).
    """

    def __init__(self, plan):
        from .core import config_signature
        self.plan = plan
        super().__init__({
            "staging": In(staging_signature(plan)),
            "install": In(install_signature()),
            "config": Out(config_signature(plan)),
        })

    def elaborate(self, platform):
        m = Module()
        port = self._staging_memory(m)
        self._installer(m, port)
        return m

    def _staging_memory(self, m):
        """The memory, and the port that reaches it (the link's or the
        installer's)."""
        plan = self.plan
        port = {"addr": Signal(range(plan.staging_depth)), "wdata": Signal(16), "wbytes": Signal(2),
                "we": Signal(), "re": Signal(), "rdata": Signal(16)}
        if plan.spram:
            banks = plan.staging_depth // SPRAM_WORDS
            bank = port["addr"][14:] if banks > 1 else Const(0, 1)
            bank_q = Signal.like(bank)
            with m.If(port["re"]):
                m.d.sync += bank_q.eq(bank)
            rdata = []
            for b in range(banks):
                m.submodules[f"spram{b}"] = ram = Spram()
                mask = Cat(port["wbytes"][0], port["wbytes"][0], port["wbytes"][1], port["wbytes"][1])
                m.d.comb += [ram.addr.eq(port["addr"][:14]), ram.wdata.eq(port["wdata"]), ram.mask.eq(mask),
                             ram.we.eq(port["we"]), ram.cs.eq((port["we"] | port["re"]) & (bank == b))]
                rdata.append(ram.rdata)
            m.d.comb += port["rdata"].eq(Cat(*rdata).word_select(bank_q, 16) if banks > 1 else rdata[0])
        else:
            m.submodules.staging = mem = Memory(shape=16, depth=plan.staging_depth, init=[])
            wr = mem.write_port(granularity=8)
            rd = mem.read_port()
            m.d.comb += [wr.addr.eq(port["addr"]), wr.data.eq(port["wdata"]),
                         wr.en.eq(Mux(port["we"], port["wbytes"], 0)),
                         rd.addr.eq(port["addr"]), rd.en.eq(port["re"]), port["rdata"].eq(rd.data)]
        return port

    def _installer(self, m, port):
        plan = self.plan
        sections = plan.sections
        n_sec = len(sections)
        header_words = plan.header_words
        ext = self.staging
        busy = Signal()
        ok = Signal()
        m.d.comb += [self.install.busy.eq(busy), self.install.ok.eq(ok)]
        # Installer-side port signals.
        i_addr = Signal.like(port["addr"])
        i_re = Signal()
        with m.If(busy):
            m.d.comb += [port["addr"].eq(i_addr), port["re"].eq(i_re)]
        with m.Else():
            m.d.comb += [port["addr"].eq(ext.addr), port["wdata"].eq(ext.wdata), port["wbytes"].eq(ext.wbytes),
                         port["we"].eq(ext.we), port["re"].eq(ext.re)]
        m.d.comb += ext.rdata.eq(port["rdata"])

        header = Signal(16 * header_words)       # the header words, as read
        count_of = [header[16 * (3 + 2 * s):16 * (5 + 2 * s)] for s in range(n_sec)]
        ptr = Signal(range(plan.staging_depth + 1))
        word_i = Signal(range(header_words + 1))
        sec = Signal(range(n_sec + 1))
        entry = Signal(32)
        wsel = Signal(range(max(s.words for s in sections) + 1))
        assembled = Signal(16 * max(s.words for s in sections))
        sec_words = Signal.like(wsel)
        sec_count = Signal(32)
        lookup(m, sec, [s.words for s in sections], sec_words)
        lookup(m, sec, count_of, sec_count)
        total = Signal(40)
        length = Signal(32)

        cfg = self.config
        with m.FSM(name="installer"):
            with m.State("IDLE"):
                with m.If(self.install.start):
                    m.d.sync += [busy.eq(1), ok.eq(0), word_i.eq(0), length.eq(self.install.length)]
                    m.next = "HEADER_ADDR"
            with m.State("HEADER_ADDR"):
                m.d.comb += [i_addr.eq(word_i), i_re.eq(1)]
                m.next = "HEADER_DATA"
            with m.State("HEADER_DATA"):
                m.d.sync += [header.word_select(word_i, 16).eq(port["rdata"]), word_i.eq(word_i + 1)]
                with m.If(word_i == header_words - 1):
                    m.d.sync += [sec.eq(0), total.eq(header_words)]
                    m.next = "CHECK"
                with m.Else():
                    m.next = "HEADER_ADDR"
            with m.State("CHECK"):
                # One section a cycle: its count within its memory, the total length.
                max_ok = Signal()
                sec_total = Signal(40)
                lookup(m, sec, [count_of[i] <= s.max_entries for i, s in enumerate(sections)], max_ok)
                lookup(m, sec, [count_of[i] * s.words for i, s in enumerate(sections)], sec_total)
                with m.If(sec == n_sec):
                    signature = plan.signature
                    good = ((header[:16] == LOAD_FORMAT) & (header[16:48] == signature) & (total == length))
                    with m.If(good):
                        m.d.sync += [sec.eq(0), entry.eq(0), ptr.eq(header_words), wsel.eq(0)]
                        m.next = "NEXT"
                    with m.Else():
                        m.d.sync += busy.eq(0)
                        m.next = "IDLE"
                with m.Elif(max_ok):
                    m.d.sync += [total.eq(total + sec_total), sec.eq(sec + 1)]
                with m.Else():
                    m.d.sync += busy.eq(0)
                    m.next = "IDLE"
            with m.State("NEXT"):
                # The next entry of the current section, or the next section.
                with m.If(sec == n_sec):
                    m.d.sync += [busy.eq(0), ok.eq(1)]
                    m.next = "IDLE"
                with m.Elif(entry == sec_count):
                    m.d.sync += [sec.eq(sec + 1), entry.eq(0)]
                with m.Else():
                    m.next = "WORD_ADDR"
            with m.State("WORD_ADDR"):
                m.d.comb += [i_addr.eq(ptr), i_re.eq(1)]
                m.d.sync += ptr.eq(ptr + 1)
                m.next = "WORD_DATA"
            with m.State("WORD_DATA"):
                m.d.sync += [assembled.word_select(wsel, 16).eq(port["rdata"]), wsel.eq(wsel + 1)]
                with m.If(wsel == sec_words - 1):
                    m.next = "WRITE"
                with m.Else():
                    m.next = "WORD_ADDR"
            with m.State("WRITE"):
                m.d.comb += [cfg.en.eq(1), cfg.target.eq(sec), cfg.addr.eq(entry), cfg.data.eq(assembled)]
                m.d.sync += [entry.eq(entry + 1), wsel.eq(0)]
                m.next = "NEXT"
