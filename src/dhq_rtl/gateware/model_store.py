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

Weights in SPRAM (``plan.weights_in_spram``): the four SPRAMs side by side
hold the staging memory (word ``w`` in SPRAM ``w mod 4``, row ``w / 4``,
rows ``[0, weight_row0)``) and, after it, the weight rows (row ``r`` at
``weight_row0 + r``, 64 bits a row, the MAC array reads one a cycle through
``weight_read``); ``weight_row0`` is a multiple of the weight address's
span, so no address passes an adder on its way to the SPRAMs. The installer writes a weight row through ``weight_write`` (the
configuration bus's weights target). One access a cycle reaches the
SPRAMs: a weight write, else a staging access, else the MAC array's read
(the core renders only while nothing is loaded or installed). SPRAM has no
initial contents, so at power-on the installer runs once from a boot ROM
holding the loaded model's weight rows as a load image
(:meth:`~.plan.CorePlan.boot_image_words`); ``install.busy`` is high
meanwhile (some ``2·W`` cycles for ``W`` words).
Port ``staging``: ``addr`` (word), ``wdata``, ``wbytes`` (byte enables:
bit 0 the low byte), ``we``, ``re``; every access is registered on its way
to the memory and the word read on its way back, so ``rdata`` holds it
:data:`STAGING_LATENCY` (three) cycles after ``re``. The installer owns the port while it runs.

Installer timing: four cycles per staging word (address, two waits,
data), one write and one cycle to settle the entry's end per entry: about
``4·W + 3·E`` cycles for an image of ``W`` words and ``E`` entries. Every
decision of its state machine is a registered flag, and its states are
one-hot (:class:`~.one_hot.OneHotStates`; timing).
"""

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .const_compare import below
from .lookup import lookup
from .one_hot import OneHotStates
from .plan import LOAD_FORMAT, SPRAM_WORDS, STAGING_WORD_BITS, WEIGHT_SPRAMS
from .spram import Spram

__all__ = ["ModelStore", "staging_signature", "install_signature", "STAGING_LATENCY"]

#: The installer's states, in the order they are described.
INSTALLER_STATES = ("IDLE", "HEADER_ADDR", "HEADER_WAIT", "HEADER_DATA", "HEADER_SUM", "CHECK_WAIT", "CHECK",
                    "SECTION", "SETTLE", "NEXT", "WORD_ADDR", "WORD_WAIT", "WORD_DATA", "WRITE")

#: Cycles from a staging read request to its data: the request, the
#: memory's read and its data are each registered.
STAGING_LATENCY = 3


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
        members = {
            "staging": In(staging_signature(plan)),
            "install": In(install_signature()),
            "config": Out(config_signature(plan)),
        }
        if plan.weights_in_spram:
            row_bits = plan.lanes * plan.weight_bits
            members["weight_read"] = In(wiring.Signature({"addr": Out(plan.weight_addr_width), "en": Out(1),
                                                          "data": In(row_bits)}))
            members["weight_write"] = In(wiring.Signature({"en": Out(1), "addr": Out(plan.weight_addr_width),
                                                           "data": Out(row_bits)}))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        if self.plan.weights_in_spram:
            port = self._shared_sprams(m)
        else:
            port = self._staging_memory(m)
        self._installer(m, port)
        return m

    def _new_port(self):
        return {"addr": Signal(range(self.plan.staging_depth)), "wdata": Signal(16), "wbytes": Signal(2),
                "we": Signal(), "re": Signal(), "rdata": Signal(16)}

    def _shared_sprams(self, m):
        """Four SPRAMs: the staging words, then the weight rows (module docstring)."""
        plan = self.plan
        port = self._new_port()
        rams = []
        for k in range(WEIGHT_SPRAMS):
            m.submodules[f"spram{k}"] = ram = Spram()
            rams.append(ram)
        word_k = port["addr"][:2]
        word_row = port["addr"][2:]
        # The weight rows' base has no bit in common with a row number.
        base = Const(plan.weight_row0 >> plan.weight_addr_width, len(rams[0].addr) - plan.weight_addr_width)
        k_q = Signal(2)
        with m.If(port["re"]):
            m.d.sync += k_q.eq(word_k)
        m.d.comb += port["rdata"].eq(Cat(*[r.rdata for r in rams]).word_select(k_q, 16))
        wr, rd = self.weight_write, self.weight_read
        m.d.comb += rd.data.eq(Cat(*[r.rdata for r in rams]))
        byte_mask = Cat(port["wbytes"][0], port["wbytes"][0], port["wbytes"][1], port["wbytes"][1])
        # The address in two levels, each a LUT from registers: the store's
        # own (a weight write, else the staging port's), then the store's or
        # the MAC array's read (the SPRAMs sit far from most logic: every
        # level costs a long route).
        store_sel = Signal()
        store_addr = Signal(len(rams[0].addr))
        m.d.comb += [store_sel.eq(wr.en | port["we"] | port["re"]),
                     store_addr.eq(Mux(wr.en, Cat(wr.addr, base), word_row))]
        for k, ram in enumerate(rams):
            wr_word = wr.data.word_select(k, 16) if 16 * k < len(wr.data) else Const(0, 16)
            m.d.comb += [
                ram.addr.eq(Mux(store_sel, store_addr, Cat(rd.addr, base))),
                # Data and byte mask matter to a write only: the weight
                # write's, else the staging port's (one LUT each).
                ram.wdata.eq(Mux(wr.en, wr_word, port["wdata"])),
                ram.mask.eq(Mux(wr.en, 0b1111, byte_mask)),
                ram.we.eq(wr.en | (port["we"] & (word_k == k))),
                ram.cs.eq(Mux(store_sel, wr.en | port["re"] | (word_k == k), rd.en)),
            ]
        return port

    def _staging_memory(self, m):
        """The memory, and the port that reaches it (the link's or the
        installer's)."""
        plan = self.plan
        port = self._new_port()
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

    def _staging_port(self, m, port, booting, busy, boot_words):
        """The staging port's owner: nobody while booting (the installer
        reads the boot ROM), the installer while it is busy, else the link.
        Returns the installer's read address and strobe and the registered
        data read (from the boot ROM while booting)."""
        ext = self.staging
        i_addr = Signal.like(port["addr"])
        i_re = Signal()
        rdata = Signal(16)
        # Every access is registered on its way to the memories (timing: the
        # installer's state, the owner's choice and the SPRAMs' address
        # arithmetic would otherwise be one path): a read's data comes two
        # cycles after the request (STAGING_LATENCY).
        # The data read is registered too (timing: the SPRAMs' outputs pass
        # a multiplexer before the installer's checks).
        if boot_words is not None:
            m.submodules.boot = rom = Memory(shape=16, depth=len(boot_words), init=boot_words)
            rom_rd = rom.read_port()
            m.d.sync += rom_rd.addr.eq(i_addr)
            m.d.sync += rdata.eq(Mux(booting, rom_rd.data, port["rdata"]))
        else:
            m.d.sync += rdata.eq(port["rdata"])
        with m.If(booting):
            m.d.sync += [port["we"].eq(0), port["re"].eq(0)]
        with m.Elif(busy):
            m.d.sync += [port["addr"].eq(i_addr), port["re"].eq(i_re), port["we"].eq(0)]
        with m.Else():
            m.d.sync += [port["addr"].eq(ext.addr), port["wdata"].eq(ext.wdata), port["wbytes"].eq(ext.wbytes),
                         port["we"].eq(ext.we), port["re"].eq(ext.re)]
        m.d.comb += ext.rdata.eq(rdata)
        return i_addr, i_re, rdata

    def _header_word_checks(self, m, rdata, word_i, expect, total_width, summing):
        """The header word checks, registered in steps behind ``rdata`` (the
        word, held for one cycle, its ``HEADER_DATA`` cycle): nibble flags
        (each a function of four bits: one LUT), then every check of a header
        word, then the verdict of word ``word_i`` (its check selected by a
        register set in its ``HEADER_SUM`` cycle, ``summing``). Returns
        ``word_bad`` (high in the cycle after ``HEADER_SUM`` when the word
        failed its check) and the words its section count stands for (count
        × the section's words; 0 for the other header words), from ``rdata``."""
        sections = self.plan.sections
        # Timing: the word's checks compared as a whole against constants
        # and selected by the word's position were 5–6 LUT levels behind the
        # widely read data register (logic shared among the checks).
        nibbles = (len(rdata) + 3) // 4
        flags = {}

        def nibble_flag(kind, j, value):
            key = (kind, j, value)
            if key not in flags:
                nib = rdata[4 * j:4 * j + 4]
                flags[key] = Signal(name=f"hdr_{kind}{j}_{value}")
                m.d.sync += flags[key].eq(nib == value if kind == "eq" else below(nib, value))
            return flags[key]

        def equals(value):
            out = Const(1, 1)
            for j in range(nibbles):
                out = out & nibble_flag("eq", j, value >> 4 * j & 0xF)
            return out

        def at_most(bound):
            if bound >= (1 << len(rdata)) - 1:
                return Const(1, 1)
            limit = bound + 1       # rdata < limit, from the lowest nibble up
            out = Const(0, 1)
            for j in range(nibbles):
                digit = limit >> 4 * j & 0xF
                lower = nibble_flag("lt", j, digit) if digit else Const(0, 1)
                out = lower | (nibble_flag("eq", j, digit) & out) if j else lower
            return out

        # Each word position's check; positions with the same check share it.
        position_checks = {w: ("eq", value) for w, value in enumerate(expect)}
        for k, section in enumerate(sections):
            position_checks[3 + 2 * k] = ("le", section.max_entries)
            position_checks[4 + 2 * k] = ("eq", 0)
        checks = {}
        for kind, value in sorted(set(position_checks.values())):
            checks[kind, value] = ok = Signal(name=f"hdr_{kind}_{value}")
            m.d.sync += ok.eq(equals(value) if kind == "eq" else at_most(value))
        selected = {c: Signal(name=f"hdr_sel_{c[0]}_{c[1]}") for c in checks}
        judging = Signal()             # the cycle after HEADER_SUM
        m.d.sync += judging.eq(summing)
        with m.If(summing):
            for c, sel in selected.items():
                m.d.sync += sel.eq(Cat(*[word_i == w for w, pc in position_checks.items() if pc == c]).any())
        word_bad = Signal()
        m.d.comb += word_bad.eq(judging & Cat(*[sel & ~checks[c] for c, sel in selected.items()]).any())
        words_of = Signal(total_width)
        with m.Switch(word_i):
            for k, section in enumerate(sections):
                with m.Case(3 + 2 * k):
                    m.d.comb += words_of.eq(_times(rdata, section.words))
        return word_bad, words_of

    def _installer(self, m, port):
        plan = self.plan
        sections = plan.sections
        n_sec = len(sections)
        header_words = plan.header_words
        boot_words = plan.boot_image_words() if plan.weights_in_spram else None
        booting = Signal(init=boot_words is not None)     # the power-on install from the boot ROM
        busy = Signal(init=boot_words is not None)
        ok = Signal()
        m.d.comb += [self.install.busy.eq(busy), self.install.ok.eq(ok)]
        i_addr, i_re, rdata = self._staging_port(m, port, booting, busy, boot_words)

        # The header is checked word by word as it is read: the format and
        # the signature against constants, each count (its high word 0,
        # its low word within the section's memory) kept, and the image's
        # length summed (count × words, shifts and adds of constants).
        max_entries = max(s.max_entries for s in sections)
        counts = [Signal(range(s.max_entries + 1), name=f"count_{s.name.replace(' ', '_')}") for s in sections]
        expect = [LOAD_FORMAT, plan.signature & 0xFFFF, plan.signature >> 16]
        word_i = Signal(range(header_words + 1))
        bad = Signal()
        total = Signal(range(header_words + sum(s.words * s.max_entries for s in sections) + 1), init=header_words)
        length = Signal(32, init=len(boot_words) if boot_words is not None else 0)
        summing = Signal()                     # the HEADER_SUM state
        word_bad, words_of = self._header_word_checks(m, rdata, word_i, expect, len(total), summing)
        word_total_q = Signal(len(total))
        ptr = Signal(range(plan.staging_depth + 1))
        sec = Signal(range(n_sec + 1))
        entry = Signal(range(max_entries + 1))
        wsel = Signal(range(max(s.words for s in sections) + 1))
        assembled = Signal(16 * max(s.words for s in sections))
        # The current section's numbers, registered when it starts (timing:
        # the lookups by section number and the comparisons behind them end
        # at registers, never at the state machine's decisions).
        sec_words = Signal.like(wsel)
        sec_count = Signal.like(entry)
        sec_wlast = Signal.like(wsel)          # the section's words − 1
        sec_count_q = Signal.like(entry)
        sec_done = Signal()                    # every section installed (sec == n_sec)
        at_end = Signal()                      # entry == the section's count (one cycle behind)
        word_last = Signal()                   # wsel is the entry's last word (one cycle behind)
        len_ok = Signal()                      # total == length (one cycle behind)
        lookup(m, sec, [s.words for s in sections], sec_words)
        lookup(m, sec, counts, sec_count)
        m.d.sync += [at_end.eq(entry == sec_count_q), word_last.eq(wsel == sec_wlast),
                     len_ok.eq(total == length)]

        cfg = self.config
        writing = Signal(n_sec)
        sec_select = Signal(n_sec)             # one-hot: the current section
        wait = Signal(range(STAGING_LATENCY))
        # The installer's registers, for its two phases' states.
        r = SimpleNamespace(booting=booting, busy=busy, ok=ok, word_i=word_i, bad=bad, total=total,
                            header_words=header_words, length=length, i_addr=i_addr, i_re=i_re, wait=wait,
                            word_total_q=word_total_q, words_of=words_of, rdata=rdata, counts=counts,
                            n_sec=n_sec, summing=summing, word_bad=word_bad, len_ok=len_ok, sec=sec, entry=entry, ptr=ptr,
                            wsel=wsel, sec_count_q=sec_count_q, sec_count=sec_count, sec_wlast=sec_wlast,
                            sec_words=sec_words, sec_done=sec_done, at_end=at_end, assembled=assembled,
                            word_last=word_last, writing=writing, sec_select=sec_select)
        r.fsm = OneHotStates(m, INSTALLER_STATES, init="HEADER_ADDR" if boot_words is not None else "IDLE",
                             name="installer")
        self._header_states(m, r)
        self._entry_states(m, r)
        # The configuration bus: a write in the WRITE state, its strobes
        # registers, one per section (the section's one-hot select, set
        # when the section starts).
        m.d.comb += [cfg.en.eq(writing), cfg.addr.eq(entry), cfg.data.eq(assembled)]


    def _header_states(self, m, r):
        """The installer's states up to the header's verdict: wait for a start
        (the boot ROM's install needs none), read and check the header word by
        word, then go on to the sections or give up (``r``: its registers)."""
        # A word's verdict (r.word_bad) comes the cycle after its HEADER_SUM
        # (the next word's HEADER_ADDR, or CHECK_WAIT after the last word).
        # (Before IDLE's reset of r.bad, which takes precedence.)
        m.d.sync += r.bad.eq(r.bad | r.word_bad)
        with r.fsm.state("IDLE"):
            m.d.sync += r.booting.eq(0)
            with m.If(self.install.start):
                m.d.sync += [r.busy.eq(1), r.ok.eq(0), r.word_i.eq(0), r.bad.eq(0), r.total.eq(r.header_words),
                             r.length.eq(self.install.length)]
                r.fsm.goto("HEADER_ADDR")
        self._staging_read(m, r, "HEADER", r.word_i)
        with r.fsm.state("HEADER_DATA"):
            # The word's section words are registered (timing), and used
            # the next cycle (r.rdata holds a word for one cycle only).
            m.d.sync += r.word_total_q.eq(r.words_of)
            with m.Switch(r.word_i):
                for k in range(r.n_sec):
                    with m.Case(3 + 2 * k):
                        m.d.sync += r.counts[k].eq(r.rdata)
            r.fsm.goto("HEADER_SUM")
        with r.fsm.state("HEADER_SUM"):
            m.d.comb += r.summing.eq(1)
            m.d.sync += [r.word_i.eq(r.word_i + 1), r.total.eq(r.total + r.word_total_q)]
            with m.If(r.word_i == r.header_words - 1):
                r.fsm.goto("CHECK_WAIT")
            with m.Else():
                r.fsm.goto("HEADER_ADDR")
        with r.fsm.state("CHECK_WAIT"):            # r.len_ok and r.bad follow the last header word
            r.fsm.goto("CHECK")
        with r.fsm.state("CHECK"):
            with m.If(~r.bad & r.len_ok):
                m.d.sync += [r.sec.eq(0), r.entry.eq(0), r.ptr.eq(r.header_words), r.wsel.eq(0)]
                r.fsm.goto("SECTION")
            with m.Else():
                m.d.sync += r.busy.eq(0)
                r.fsm.goto("IDLE")


    @staticmethod
    def _staging_read(m, r, name, addr, *, advance=False):
        """States ``<name>_ADDR`` (read the staging word at ``addr``; with
        ``advance`` the address register counts on) and ``<name>_WAIT`` (the
        memory's latency), then ``<name>_DATA`` with the word in ``r.rdata``."""
        with r.fsm.state(f"{name}_ADDR"):
            m.d.comb += [r.i_addr.eq(addr), r.i_re.eq(1)]
            if advance:
                m.d.sync += addr.eq(addr + 1)
            r.fsm.goto(f"{name}_WAIT")
        with r.fsm.state(f"{name}_WAIT"):
            m.d.sync += r.wait.eq(r.wait + 1)
            with m.If(r.wait == STAGING_LATENCY - 2):
                m.d.sync += r.wait.eq(0)
                r.fsm.goto(f"{name}_DATA")

    def _entry_states(self, m, r):
        """The installer's states after a good header: each section's entries
        assembled from staging words and written over the configuration bus
        (``r``: its registers)."""
        with r.fsm.state("SECTION"):
            # A section starts: its numbers into registers.
            m.d.sync += [r.sec_count_q.eq(r.sec_count), r.sec_wlast.eq(r.sec_words - 1), r.sec_done.eq(r.sec == r.n_sec),
                         r.sec_select.eq(Cat(*[r.sec == k for k in range(r.n_sec)]))]
            r.fsm.goto("SETTLE")
        with r.fsm.state("SETTLE"):                # r.at_end follows r.entry and r.sec_count_q
            r.fsm.goto("NEXT")
        with r.fsm.state("NEXT"):
            # The next r.entry of the current section, or the next section.
            # (r.sec and r.entry move on at a section's end also when every
            # section is done, timing: CHECK sets them before they are used.)
            with m.If(r.at_end):
                m.d.sync += [r.sec.eq(r.sec + 1), r.entry.eq(0)]
            with m.If(r.sec_done):
                m.d.sync += [r.busy.eq(0), r.ok.eq(1)]
                r.fsm.goto("IDLE")
            with m.Elif(r.at_end):
                r.fsm.goto("SECTION")
            with m.Else():
                r.fsm.goto("WORD_ADDR")
        self._staging_read(m, r, "WORD", r.ptr, advance=True)
        with r.fsm.state("WORD_DATA"):
            # r.word_last: r.wsel has been stable since WORD_ADDR.
            m.d.sync += [r.assembled.word_select(r.wsel, 16).eq(r.rdata), r.wsel.eq(r.wsel + 1)]
            with m.If(r.word_last):
                m.d.sync += r.writing.eq(r.sec_select)
                r.fsm.goto("WRITE")
            with m.Else():
                r.fsm.goto("WORD_ADDR")
        with r.fsm.state("WRITE"):
            m.d.sync += [r.entry.eq(r.entry + 1), r.wsel.eq(0), r.writing.eq(0)]
            r.fsm.goto("SETTLE")


def _times(value, k):
    """``value · k`` for a constant ``k`` as shifts and adds (no multiplier
    for synthesis to map onto a DSP)."""
    terms = [value << b for b in range(k.bit_length()) if k >> b & 1]
    out = terms[0] if terms else Const(0, 1)
    for t in terms[1:]:
        out = out + t
    return out
