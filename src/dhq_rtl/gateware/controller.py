"""The board's command handler: the protocol of :mod:`dhq_rtl.protocol` on the core.

:class:`BoardController` sits between the UART (bytes in, bytes out) and
the core (:class:`~.core.InrCore`): it receives frames
(:class:`~.link.FrameReceiver`), carries out the command of each good one
and answers with a frame (:class:`~.link.FrameTransmitter`):

* ``INFO`` / ``STATUS``: the reply's constant part (protocol, envelope,
  clock, …) comes from a small ROM, the loaded model's fields (whether there
  is one, its CRC, size, channels: the core's descriptors) and the load's
  state from registers;
* ``LOAD_BEGIN`` / ``LOAD_CHUNK``: a chunk at the expected offset is written
  into the core's staging memory byte by byte *as it arrives* (registered,
  two cycles after each byte), so no chunk buffer is needed; the expected
  offset advances only when the frame's CRC checks. A chunk with a damaged
  header cannot overwrite anything received already (its offset would
  differ from the expected one), and whatever a damaged chunk wrote at the
  expected offset is overwritten by its retry; the commit's CRC covers the
  rest;
* ``COMMIT``: all bytes received → the staged image is read back word by
  word through a bit-serial CRC-32 (about 20 cycles a word), compared with
  the host's CRC, and only then installed (``install``); the model's CRC
  and "a model is installed" change only after a good install;
* a core whose model is fixed (``plan.loadable`` false: the float core, the
  integer core built for a fixed model)
  has no staging memory and no installer: ``LOAD_BEGIN``, ``LOAD_CHUNK``
  and ``COMMIT`` are answered with ``NACK FIXED_MODEL``, ``INFO`` says
  :data:`~dhq_rtl.protocol.FIXED_MODEL_FORMAT`;
* ``RENDER``: the region is checked against the model's image, the core
  renders it, and the pixels leave in ``PIXELS`` frames of one row segment
  each (:data:`~dhq_rtl.protocol.FRAME_PIXELS` pixels at most), as the
  core produces them (back-pressure); then an ``ACK`` with the pixel count.

A frame whose CRC fails is answered with ``NACK BAD_FRAME``. A frame that
ends while a command is still being carried out (a reply being sent, a
commit, a render) gets no answer and writes nothing (the host retries after
its timeout). Staging writes happen only while the controller is idle.

Ports: ``rx`` (in, bytes from :class:`~.uart.UartRx`, each held on its
payload until the next), ``tx`` (out, bytes
to :class:`~.uart.UartTx`), and towards the core ``start``, ``region``
(out), ``busy`` (in), ``pixels`` (in), ``staging`` (out,
:func:`~.model_store.staging_signature`), ``install`` (out,
:func:`~.model_store.install_signature`; these two only for a loadable
core), ``desc`` (in). ``rendering``
(out) is high from a render's start to its last frame (an LED); ``idle``
(out): no command is being carried out and no frame is being received.
"""

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .. import protocol
from ..protocol import Kind, Reason
from .args import check_int
from .const_compare import at_least, below
from .coords import region_layout
from .descriptors import descriptor_init, descriptor_layout
from .lookup import lookup
from .link import FrameReceiver, FrameTransmitter, SharedCrc, crc_user_signature
from .model_store import STAGING_LATENCY, install_signature, staging_signature
from .one_hot import OneHotStates

__all__ = ["BoardController", "info_constants"]

#: Payload sources of a reply.
_ACK, _NACK, _INFO, _STATUS, _PIXELS = range(5)


def info_constants(plan, *, clock_hz, divisor):
    """The ``INFO`` reply's fields that the hardware fixes (everything but the
    loaded model's), as a dict of :data:`~dhq_rtl.protocol.INFO_FIELDS`. A
    core whose model is fixed (``plan.loadable`` false: the float core, the
    integer core built for a fixed model)
    reports :data:`~dhq_rtl.protocol.FIXED_MODEL_FORMAT`, no staging memory
    and its model's shape in the envelope fields."""
    if not plan.loadable:
        m = plan.model
        values = {name: 0 for name in protocol.ENVELOPE_FIELDS}
        values.update({"protocol": protocol.PROTOCOL_VERSION, "load_format": protocol.FIXED_MODEL_FORMAT,
                       "signature": 0, "lanes": plan.lanes, "clock_hz": int(round(clock_hz)), "divisor": divisor,
                       "staging_bytes": 0, "name": plan.arith.encode()[:protocol.NAME_BYTES],
                       "max_width": max(l.out_features for l in m.layers), "max_layers": len(m.layers),
                       "max_size": max(m.width, m.height), "max_channels": m.channels, "pixel_bits": m.pixel_bits})
        return values
    env = plan.envelope
    values = {"protocol": protocol.PROTOCOL_VERSION, "load_format": 1, "signature": plan.signature,
              "lanes": plan.lanes, "clock_hz": int(round(clock_hz)), "divisor": divisor,
              "staging_bytes": 2 * plan.staging_depth, "name": env.name.encode()[:protocol.NAME_BYTES]}
    from .plan import LOAD_FORMAT
    values["load_format"] = LOAD_FORMAT
    for name in protocol.ENVELOPE_FIELDS:
        v = getattr(env, name)
        values[name] = int(v == "spram") if name == "weight_memory" else int(v)
    return values


class BoardController(wiring.Component):
    """The command handler (module docstring).

    Parameters: ``plan`` (the core's :class:`~.plan.CorePlan` or
    :class:`~.float32.plan.FloatCorePlan`), ``divisor``
    (UART clock cycles per bit), ``clock_hz`` (for ``INFO``),
    ``model_crc`` (the load image CRC of the model the core starts with;
    ``None``: the core starts without a model, ``RENDER`` is refused until
    one is installed), ``timing_registers`` (default: the plan's
    ``link_timing_registers``): the reply path's and the decisions'
    registers that exist only for timing (each source's byte, the ``INFO``
    ROM's data, the selected byte, a pixel's byte, the frame's kind
    decoded, the one-hot action, the region's checks, the end of a row of
    a render, an argument byte on its way). Without them the same values
    are combinational, offered at the same cycles (a reply's byte still
    waits for its index to be still :data:`_SETTLE` cycles, and the
    decisions are exact long before a frame ends): the same protocol,
    fewer flip-flops, longer paths (a board whose clock is far below the
    link's paths, the float core on the UP5K).
    """

    def __init__(self, plan, *, divisor, clock_hz, model_crc, timing_registers=None):
        check_int("divisor", divisor, 4)
        if timing_registers is None:
            timing_registers = getattr(plan, "link_timing_registers", True)
        if not isinstance(timing_registers, bool):
            raise TypeError(f"timing_registers must be a bool, not {timing_registers!r}")
        self.timing_registers = timing_registers
        #: The domain of the registers that exist only for timing.
        self._late = "sync" if timing_registers else "comb"
        self.plan = plan
        self.divisor = divisor
        self.info = info_constants(plan, clock_hz=clock_hz, divisor=divisor)
        self.model_crc = model_crc
        size = plan.max_size
        members = {
            "rx": In(stream.Signature(8, always_ready=True)),
            "tx": Out(stream.Signature(8)),
            "start": Out(1),
            "region": Out(region_layout(size, size)),
            "busy": In(1),
            "pixels": In(stream.Signature(unsigned(plan.pixel_bits * plan.channels))),
        }
        if plan.loadable:
            members.update({"staging": Out(staging_signature(plan)), "install": Out(install_signature())})
        members.update({
            "desc": In(descriptor_layout(plan), init=descriptor_init(plan)),
            "rendering": Out(1),
            "idle": Out(1),
        })
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        # One CRC unit for the three users: the link is half duplex.
        # (The link's own timing registers follow the controller's.)
        reg = self.timing_registers
        m.submodules.receiver = rx = FrameReceiver(self.divisor, shared_crc=True, registered=reg)
        m.submodules.transmitter = tx = FrameTransmitter(shared_crc=True, registered=reg)
        # (The commit's check is the third; a fixed model has no commit.)
        loadable = self.plan.loadable
        m.submodules.crc = shared = SharedCrc(3 if loadable else 2, registered=reg)
        vcrc = crc_user_signature().create(path=("verify_crc",))
        wiring.connect(m, rx.crc, shared.user0)
        wiring.connect(m, tx.crc, shared.user1)
        if loadable:
            wiring.connect(m, vcrc, shared.user2)
        wiring.connect(m, wiring.flipped(self.rx), rx.rx)
        wiring.connect(m, tx.tx, wiring.flipped(self.tx))
        st = _State(self)
        # The region of a RENDER is its arguments (held while it runs).
        sb = self.plan.size_bits
        m.d.comb += [getattr(self.region, f).eq(st.args[16 * k:16 * k + sb])
                     for k, f in enumerate(("x0", "y0", "x1", "y1"))]
        # The core's pixels pass a one-word register (timing: the reply's
        # handshake does not reach into the core's pixel queue); the core
        # makes pixels only while a RENDER runs.
        m.d.comb += self.pixels.ready.eq(~st.pix_valid)
        with m.If(~st.pix_valid & self.pixels.valid):
            m.d.sync += [st.pix_valid.eq(1), st.pix_data.eq(self.pixels.payload)]
        self._chunk_writes(m, st, rx.frame)
        self._replies(m, st, tx)
        self._commands(m, st, rx.frame, tx, vcrc)
        return m

    # ------------------------------------------------------------ staging
    def _chunk_writes(self, m, st, frame):
        """Capture command arguments; write a chunk's data into staging as it
        arrives (registered, two cycles), only at the expected offset."""
        # The arguments change only while the controller is idle: a command
        # being carried out keeps reading them (region, commit length, CRC).
        # An argument byte's strobe and index pass a register on their way
        # (timing: the receiver's decoding and the index's comparison end
        # there; the next byte is many cycles away, the frame's end four
        # bytes); the byte itself stays on `frame.byte` until the next.
        # The index's checks are registered too (timing): the index changes
        # only as a byte comes, so at a byte it has been still for a byte's
        # time.
        arg_we, arg_index = Signal(), Signal(3)
        arg_slot = Signal(reset_less=True)
        m.d[self._late] += arg_slot.eq(below(frame.index, 8))
        arg_byte = frame.byte
        m.d[self._late] += [arg_we.eq(st.idle & frame.data & arg_slot), arg_index.eq(frame.index[:3])]
        with m.If(arg_we):
            if self.plan.loadable:
                m.d.sync += st.args.word_select(arg_index, 8).eq(arg_byte)
            else:
                with m.Switch(arg_index):
                    for k, (kept, high) in enumerate(st.arg_bytes):
                        with m.Case(k):
                            m.d.sync += kept.eq(arg_byte[:len(kept)])
                            if high is not None:
                                m.d.sync += high.eq(arg_byte[len(kept):] != 0)
        if not self.plan.loadable:
            return
        aw = st.aw
        offset = st.args[:aw]
        # A data byte goes to staging in two registered steps (timing): its
        # address and whether the chunk may write at all (`chunk_ok`: its
        # kind, the load's state and its offset, registered: they are final
        # long before its first data byte), then the address's range. The
        # address is held until the next data byte, the byte stays on
        # `frame.byte`: both are still there when the write happens.
        chunk_ok, is_chunk, small, at_expected = Signal(), Signal(), Signal(), Signal()
        m.d.sync += [is_chunk.eq(frame.kind == Kind.LOAD_CHUNK), small.eq(st.args[aw:32] == 0),
                     chunk_ok.eq(is_chunk & st.loading & small & at_expected)]
        _equal(m, offset, st.expected, at_expected)
        data_we, data_addr = Signal(), Signal(aw + 1)
        data_slot = Signal(reset_less=True)             # registered, like `arg_slot`
        m.d[self._late] += data_slot.eq(at_least(frame.index, 4))
        m.d.sync += data_we.eq(st.idle & frame.data & data_slot & chunk_ok)
        with m.If(frame.data):
            m.d.sync += data_addr.eq(offset + frame.index[:aw] - 4)
        we, waddr, wbyte = Signal(), data_addr[:aw], frame.byte
        m.d.sync += we.eq(data_we & (data_addr < st.load_length))
        staging = self.staging
        with m.If(we):
            m.d.comb += [staging.we.eq(1), staging.addr.eq(waddr[1:]), staging.wdata.eq(Cat(wbyte, wbyte)),
                         staging.wbytes.eq(Mux(waddr[0], 0b10, 0b01))]

    # ------------------------------------------------------------ replies
    def _replies(self, m, st, tx):
        """The reply's payload, byte by byte, from the selected source, through
        a one-byte register into the transmitter. ``fill_idx`` numbers the
        byte fetched next, ``fill_left`` counts those left; both are set when
        a frame starts.

        Timing: the byte of the selected source (the field multiplexers, the
        ``INFO`` ROM, a pixel's bytes) is computed into a register
        (``src_byte``, ``src_valid``) every cycle from registers, and offered
        only once the index (and the pixel's byte position, which changes
        with it) has been still for :data:`_SETTLE` cycles (``settled``:
        the deepest source's registers); a byte takes a UART's 10·divisor cycles, the
        settling costs nothing. "Bytes left" is a registered flag too."""
        idx = st.fill_idx
        pay = _SourceByte()
        # No resets (timing: the reset would join their enables): a frame's
        # start sets them all, and nothing reads them before.
        buf_valid, buf_byte = Signal(reset_less=True), Signal(8, reset_less=True)
        more = Signal(reset_less=True)          # fill_left != 0
        still = Signal(_SETTLE, reset_less=True)  # a shift register of "the index did not change"
        settled = still[-1]
        src_valid, src_byte = Signal(), Signal(8)
        comb_valid, comb_byte = Signal(), Signal(8)
        m.d[self._late] += [src_valid.eq(comb_valid), src_byte.eq(comb_byte)]
        m.d.comb += [tx.payload.valid.eq(buf_valid), tx.payload.payload.eq(buf_byte),
                     pay.ready.eq(~buf_valid & more), pay.valid.eq(settled & src_valid), pay.payload.eq(src_byte)]
        m.d.sync += still.eq(Cat(1, still[:-1]))
        # The index is below 8, registered (timing: the short payloads'
        # range checks and the header's are a LUT from registers).
        m.d[self._late] += st.idx_small.eq(idx[3:] == 0)
        # Every frame the controller sends has a payload (the replies' fixed
        # sizes, a PIXELS frame's header): "bytes left" starts true, without
        # comparing the length that the state selects (timing).
        assert min(protocol.fields_size(f) for f in (protocol.ACK_FIELDS, protocol.NACK_FIELDS, protocol.INFO_FIELDS,
                                                     protocol.STATUS_FIELDS, protocol.PIXELS_FIELDS)) > 0
        with m.If(tx.start):
            m.d.sync += [st.fill_idx.eq(0), st.fill_left.eq(tx.length), more.eq(1), buf_valid.eq(0),
                         still.eq(0)]
        with m.Elif(pay.valid & pay.ready):
            m.d.sync += [buf_valid.eq(1), buf_byte.eq(pay.payload), st.fill_idx.eq(st.fill_idx + 1),
                         st.fill_left.eq(st.fill_left - 1), more.eq(st.fill_left != 1), still.eq(0)]
        with m.Elif(tx.payload.ready):
            m.d.sync += buf_valid.eq(0)
        ack = {"command": st.reply_cmd, "detail": st.detail}
        nack = {"command": st.reply_cmd, "reason": st.reason, "detail": st.detail}
        status = {"loading": st.loading, "received": st.expected, "load_length": st.load_length,
                  "good_frames": st.good_frames, "bad_frames": st.bad_frames, "model_valid": st.model_valid,
                  "model_crc": st.model_crc}
        header = {"x": st.seg_x, "y": st.seg_y}
        # Each source's byte in two registered steps (its 4-byte word, then
        # the byte), then the selected one.
        byte = {}
        for src, fields, values in ((_ACK, protocol.ACK_FIELDS, ack), (_NACK, protocol.NACK_FIELDS, nack),
                                    (_STATUS, protocol.STATUS_FIELDS, status),
                                    (_PIXELS, protocol.PIXELS_FIELDS, header)):
            byte[src] = _byte_pipe(m, _payload_bits(fields, values), idx, f"byte_of_{src}", self._late,
                                   small=st.idx_small)
        byte[_INFO] = self._info_byte(m, st, idx)
        # The selected byte: an and-or of the sources' bytes under one-hot
        # selects, registered (timing: no decoding of `src` in front of the
        # multiplexer; the source is set cycles before a byte is taken, the
        # header's select follows the index like the bytes do).
        fixed = (_ACK, _NACK, _STATUS, _INFO)
        fixed_on = Signal(len(fixed), reset_less=True)
        m.d[self._late] += fixed_on.eq(Cat(*(st.src == src for src in fixed)))
        header_on, pixel_on, pixel_byte, pixel_ok = self._pixel_bytes(m, st, idx, pay)
        m.d.comb += [comb_valid.eq(fixed_on.any() | header_on | (pixel_on & pixel_ok)),
                     comb_byte.eq(_or_all([Mux(fixed_on[k], byte[src], 0) for k, src in enumerate(fixed)]
                                          + [Mux(header_on, byte[_PIXELS], 0), Mux(pixel_on, pixel_byte, 0)]))]

    def _info_byte(self, m, st, idx):
        """``INFO``'s byte ``idx``, registered: the constant part from a ROM
        (its data registered once more), the model's fields from registers
        (:func:`_byte_pipe`); the same three cycles after the index."""
        offsets = protocol.field_offsets(protocol.INFO_FIELDS)
        channels = Signal(range(self.plan.channels + 1))
        m.d.sync += channels.eq(self.desc.last_channel + 1)
        runtime = {"model_valid": st.model_valid, "model_crc": st.model_crc, "width": self.desc.width,
                   "height": self.desc.height, "channels": channels}
        const = dict(self.info)
        const.update({name: 0 for name in runtime})
        if not self.plan.loadable:
            # A fixed model: its fields are constants too, the whole reply a ROM.
            m_ = self.plan.model
            const.update({"model_valid": 1, "model_crc": self.model_crc, "width": m_.width, "height": m_.height,
                          "channels": m_.channels})
            runtime = {}
        rom_bytes = protocol.pack_fields(protocol.INFO_FIELDS, const)
        m.submodules.info_rom = rom = Memory(shape=8, depth=len(rom_bytes), init=list(rom_bytes),
                                             attrs={"ram_style": "block"})
        rd = rom.read_port()
        m.d.comb += rd.addr.eq(idx)
        rom_q = Signal(8)
        m.d[self._late] += rom_q.eq(rd.data)
        out = Signal(8, name="info_byte")
        if not runtime:                 # a fixed model: the ROM alone, with the same latency
            m.d[self._late] += out.eq(rom_q)
            return out
        # The model's fields: a payload of their own (zero elsewhere) over
        # the bytes below the first byte past them.
        end = max(offsets[name][0] + offsets[name][1] for name in runtime)
        lo = min(offsets[name][0] for name in runtime)
        fields = [(name, offsets[name][1]) for name in sorted(runtime, key=lambda n: offsets[n][0])]
        flat = Const(0, 8 * lo)
        for name, size in fields:
            v = Value.cast(runtime[name])
            flat = Cat(flat, v[:8 * size], Const(0, max(0, 8 * size - len(v))))
        rt_byte = _byte_pipe(m, flat, idx, "info_runtime", self._late, copy=False)
        is_rt, is_rt_q = Signal(), Signal()
        m.d.sync += [is_rt.eq(at_least(idx, lo) & below(idx, end)), is_rt_q.eq(is_rt)]
        m.d[self._late] += out.eq(Mux(is_rt_q, rt_byte, rom_q))
        return out

    def _pixel_bytes(self, m, st, idx, pay):
        """A ``PIXELS`` payload: the header, then the segment's pixels, each
        sent from the core's pixel register (``pix_data``), which takes the
        next pixel once its last byte is sent. Returns ``(header_on,
        pixel_on, pixel_byte, pixel_ok)``: the reply is a ``PIXELS`` frame
        at a header byte, at a pixel's byte (registered selects), the
        pixel's byte and whether it is there."""
        plan = self.plan
        pb = plan.pixel_bits
        per_value = 1 if pb <= 8 else 2
        bytes_of = []
        for c in range(plan.channels):
            for k in range(per_value):
                bytes_of.append((c * pb + 8 * k, min(8, pb - 8 * k)))
        pix_valid, pix_data = st.pix_valid, st.pix_data
        # The pixel's byte, registered (timing), offered a cycle after the
        # pixel came (`pix_seen`); the byte position changes only when a
        # byte is taken, the index with it (`settled`). The last byte's
        # flag likewise.
        pixel_byte, pix_seen, last_byte = Signal(8), Signal(), Signal()
        m.d[self._late] += [pix_seen.eq(pix_valid), last_byte.eq(st.bpos == st.last_bpos)]
        with m.Switch(st.bpos):
            for j, (lo, width) in enumerate(bytes_of):
                with m.Case(j):
                    m.d[self._late] += pixel_byte.eq(pix_data[lo:lo + width])
        in_header = Signal()
        header_size = protocol.fields_size(protocol.PIXELS_FIELDS)
        assert header_size <= 8
        header_here = st.idx_small & below(idx[:3], header_size)
        m.d[self._late] += in_header.eq(header_here)
        header_on, pixel_on = Signal(reset_less=True), Signal(reset_less=True)
        is_pixels = st.src == _PIXELS
        m.d[self._late] += [header_on.eq(is_pixels & header_here), pixel_on.eq(is_pixels & ~header_here)]
        # A byte is taken (pay.valid: the index, so bpos and in_header too,
        # have been still for several cycles); the core's next pixel comes in
        # once the last byte of this one is taken.
        with m.If(pay.valid & pay.ready & ~in_header):
            m.d.sync += st.bpos.eq(Mux(last_byte, 0, st.bpos + 1))
            with m.If(last_byte):
                m.d.sync += pix_valid.eq(0)
        m.d.sync += st.last_bpos.eq(st.bytes_per_pixel - 1)
        return header_on, pixel_on, pixel_byte, pix_valid & pix_seen

    # ----------------------------------------------------------- commands
    def _commands(self, m, st, frame, tx, vcrc):
        """The command state machine: a frame's end is decided (registered
        flags, :meth:`_decision`), IDLE carries out the action, the states
        after it send the reply, verify and install, render."""
        plan = self.plan
        names = ["IDLE", "SEND", "SENDING"]
        if plan.loadable:
            names += ["VERIFY_READ", "VERIFY_WAIT", "VERIFY_LOW", "VERIFY_HIGH", "VERIFY_NEXT", "VERIFY_MATCH",
                      "VERIFY_DONE", "INSTALL_GO", "INSTALLING"]
        names += ["RENDER_START", "RENDER_NEXT", "RENDER_FRAME", "RENDER_SENDING", "RENDER_DONE"]
        fsm = OneHotStates(m, names, "IDLE", name="controller")
        replies = _Replies(m, st, fsm)
        cmd = self._command_flags(m, st, frame)
        decided = self._decision(m, st, frame, cmd.flags)
        end = self._frame_end(m, st, decided, replies)
        self._transmitter_start(m, st, tx)
        # The CRC unit is cleared for a commit's check a cycle after the
        # decision (registered: timing); its first byte comes later.
        m.d.comb += vcrc.clear.eq(st.vclear)
        m.d.sync += st.vclear.eq(0)
        self._idle(m, st, fsm, frame, end, cmd)
        with fsm.state("SEND"):
            m.d.sync += [st.tx_go.eq(1), st.tx_idle.eq(0)]
            fsm.goto("SENDING")
        with fsm.state("SENDING"):
            with m.If(st.tx_idle):
                fsm.goto("IDLE")
        if plan.loadable:
            self._verify_and_install(m, st, fsm, vcrc, replies)
        self._render(m, st, fsm, replies)
        replies.write_detail()
        m.d.comb += [st.idle.eq(fsm.on["IDLE"]), self.idle.eq(st.idle & ~frame.in_frame)]
        m.d.comb += self.rendering.eq(fsm.ongoing("RENDER_START", "RENDER_NEXT", "RENDER_FRAME", "RENDER_SENDING"))

    def _frame_end(self, m, st, decided, replies):
        """A frame's end, registered (``ended``, ``ended_good``, ``ended2`` a
        cycle later, written in IDLE), and what IDLE does with it: the
        action of a good frame, one-hot (``go``), whether it is a reply from
        IDLE (``answer``), the reply's source and reason and which detail
        it carries (registered). Returns them as a :class:`_FrameEnd`."""
        plan = self.plan
        act_is, act_reason, act_staging, act_expected = decided
        end = _FrameEnd()
        ended, ended_good = end.ended, end.ended_good
        # The reply's source and reason for the decided action, registered
        # (timing): written when the frame ends, a cycle before the action
        # (nothing is sent while IDLE; an action that is no reply from IDLE
        # sets them again before it sends). A bad frame's (NACK BAD_FRAME)
        # replace them after it ends; they are written a cycle later
        # (`ended2`). The detail follows a cycle after them (`detail_end`),
        # once the action has run: a chunk's reply (and a NACK that reports
        # it) carries the bytes received in order, `expected` itself by
        # then (CHUNK_NEXT has advanced it to the chunk's end), a refused
        # LOAD_BEGIN the staging memory's size, every other reply 0 (a
        # render's pixel count starts there). No register of the detail's
        # own: two flags select its source.
        end.src = Signal.like(st.src)
        end.reason = Signal.like(act_reason)
        bad_end = ended & ~ended_good
        m.d.sync += end.reason.eq(Mux(bad_end, Reason.BAD_FRAME, act_reason))
        m.d.sync += end.src.eq(Mux(act_is[_Act.INFO] & ~bad_end, _INFO,
                                   Mux(act_is[_Act.STATUS] & ~bad_end, _STATUS,
                                       Mux(act_is[_Act.NACK] | bad_end, _NACK, _ACK))))
        end.act_detail_expected, end.act_detail_staging = Signal(), Signal()
        detail_end, detail_expected, detail_staging = end.detail_regs
        m.d.sync += [detail_end.eq(0), detail_expected.eq(0), detail_staging.eq(0)]
        if plan.loadable:
            m.d.sync += [
                end.act_detail_expected.eq(~bad_end & (act_is[_Act.CHUNK_NEXT] | act_is[_Act.CHUNK_AGAIN]
                                                   | (act_is[_Act.NACK] & act_expected))),
                end.act_detail_staging.eq(~bad_end & act_is[_Act.NACK] & act_staging),
            ]
        with m.If(detail_end):
            replies.set_detail(0)
        with m.If(detail_expected):
            replies.set_detail(st.expected)
        with m.If(detail_staging):
            replies.set_detail(2 * st.staging_depth)
        # The action of a good frame that just ended, one-hot, registered a
        # cycle after `ended` (the decision is exact long before the frame's
        # end): each of IDLE's branches reads one bit, not a chain of
        # priorities (timing: the render registers' enables). `answer`: the
        # action is a reply from IDLE (every bad frame's, most good ones').
        end.act_is = act_is
        end.go = Signal(len(_Act.ALL))
        end.answer = Signal()
        return end

    def _transmitter_start(self, m, st, tx):
        """A frame's start reaches the transmitter from a register, a cycle
        after SEND or RENDER_FRAME (timing: the state's decoding ends
        there); the state after waits out that cycle. Kind and length
        follow the reply's source (set cycles before). ``tx_idle``: the
        transmitter is done, registered (a cycle late; cleared while a
        frame starts)."""
        m.d.comb += tx.start.eq(st.tx_go)
        m.d.sync += [st.tx_go.eq(0), st.tx_idle.eq(~tx.busy & ~st.tx_go)]
        lookup(m, st.src, [Kind.ACK, Kind.NACK, Kind.INFO_REPLY, Kind.STATUS_REPLY, Kind.PIXELS], tx.kind)
        lookup(m, st.src, [protocol.fields_size(f) for f in (protocol.ACK_FIELDS, protocol.NACK_FIELDS,
                                                             protocol.INFO_FIELDS, protocol.STATUS_FIELDS)]
               + [st.pixels_length], tx.length)

    def _idle(self, m, st, fsm, frame, end, cmd):
        """IDLE: a frame's end is counted, its reply set up, its action
        started (a load's state, a commit's check, a render)."""
        plan = self.plan
        replying = sum(1 << a for a in (_Act.NACK, _Act.INFO, _Act.STATUS, _Act.BEGIN, _Act.CHUNK_NEXT,
                                        _Act.CHUNK_AGAIN))
        ended, ended_good, ended2, go = end.ended, end.ended_good, end.ended2, end.go
        detail_end, detail_expected, detail_staging = end.detail_regs
        with fsm.state("IDLE"):
            # The frame's end, registered (timing); the frame's kind and
            # the decision hold for many cycles after it.
            m.d.sync += [ended.eq(frame.end), ended_good.eq(frame.good), ended2.eq(ended),
                         go.eq(Mux(ended & ended_good, end.act_is, 0)),
                         end.answer.eq(ended & (~ended_good | (end.act_is & replying).any()))]
            with m.If(ended2):
                m.d.sync += [st.reply_cmd.eq(frame.kind), st.src.eq(end.src), st.reason.eq(end.reason),
                             detail_end.eq(1), detail_expected.eq(end.act_detail_expected),
                             detail_staging.eq(end.act_detail_staging)]
            with m.If(ended):
                with m.If(ended_good):
                    m.d.sync += st.good_frames.eq(st.good_frames + 1)
                with m.Else():
                    m.d.sync += st.bad_frames.eq(st.bad_frames + 1)
            # At most one bit of `go` is set (the action is one-hot).
            with m.If(end.answer):
                fsm.goto("SEND")
            if plan.loadable:           # (a fixed model: no load state at all)
                with m.If(go[_Act.BEGIN]):
                    m.d.sync += [st.loading.eq(1), st.load_length.eq(cmd.arg), st.expected.eq(0)]
                with m.If(go[_Act.CHUNK_NEXT]):
                    m.d.sync += st.expected.eq(cmd.end_of_chunk)
                with m.If(go[_Act.COMMIT]):
                    m.d.sync += [st.vaddr.eq(0), st.vleft.eq(cmd.words_left), st.vclear.eq(1)]
                    fsm.goto("VERIFY_READ")
            with m.If(go[_Act.RENDER]):
                m.d.sync += [st.seg_x.eq(cmd.x0), st.seg_y.eq(cmd.y0), st.bpos.eq(0),
                             st.bytes_per_pixel.eq(
                                 (self.desc.last_channel + 1) << (0 if plan.pixel_bits <= 8 else 1))]
                fsm.goto("RENDER_START")

    def _command_flags(self, m, st, frame):
        """The registered flags a command's decision reads, from the frame's
        length and arguments and the load's state, as a
        :class:`_CommandArgs`."""
        plan = self.plan
        args = st.args
        length = frame.length
        aw = st.aw
        staging_bytes = 2 * st.staging_depth
        desc = self.desc
        sb = plan.size_bits
        # Every decision of a command is a registered flag (timing): the
        # frame's length and arguments are final four CRC bytes before the
        # frame ends, the load's state changes only when a command is
        # decided, so the flags, up to four registers deep, are exact when
        # a frame ends. `arg`: the first argument as an offset or a length
        # within the staging memory (a larger one is out of range: `big`).
        arg = args[:aw]
        x0, y0, x1, y1 = (args[16 * k:16 * k + sb] for k in range(4))
        end_of_chunk = Signal(max(aw, 16) + 1)
        m.d.sync += end_of_chunk.eq(arg + (length - 4))
        # A commit's words after the first, registered (timing: the
        # subtraction was the default build's worst path into `vleft`).
        words_left = Signal.like(st.vleft)
        m.d.sync += words_left.eq(arg[1:] - 1)
        f = {name: Signal(name=name) for name in (
            "len4", "len8", "len_lt4", "big", "begin_big", "begin_odd", "begin_bad", "chunk_at", "chunk_fits",
            "chunk_next", "chunk_again", "commit_ok", "commit_length", "all_received", "region_bad")}
        m.d.sync += f["chunk_next"].eq(f["chunk_at"] & f["chunk_fits"])
        m.d.sync += [
            f["len4"].eq(length == 4), f["len8"].eq(length == 8), f["len_lt4"].eq(below(length, 4)),
            f["big"].eq(args[aw:32] != 0),
            # (in two registered steps: the range, odd or zero.)
            f["begin_big"].eq(at_least(arg, staging_bytes + 1)), f["begin_odd"].eq(args[0] | (arg == 0)),
            f["begin_bad"].eq(f["begin_big"] | f["begin_odd"]),

            f["commit_ok"].eq(st.loading & f["commit_length"] & f["all_received"]),
        ]
        _equal(m, arg, st.load_length, f["commit_length"])
        _equal(m, st.expected, st.load_length, f["all_received"])
        _equal(m, arg, st.expected, f["chunk_at"])
        _at_most(m, end_of_chunk, st.load_length, f["chunk_fits"])
        _at_most(m, end_of_chunk, st.expected, f["chunk_again"])
        # The region's checks, each a register, then or-ed (timing).
        region_checks = [Cat(*(args[16 * k + sb:16 * k + 16] for k in range(4))) != 0,
                         x0 >= x1, y0 >= y1, x1 > desc.width, y1 > desc.height]
        region_fails = Signal(len(region_checks))
        m.d[self._late] += region_fails.eq(Cat(*region_checks))
        m.d.sync += f["region_bad"].eq(region_fails.any())
        return _CommandArgs(arg=arg, end_of_chunk=end_of_chunk, words_left=words_left, x0=x0, y0=y0, flags=f)

    def _decision(self, m, st, frame, f):
        """What a good frame ending now asks for, from its kind and the
        ``flags`` of :meth:`_command_flags`: ``(act_is, reason, staging,
        expected)`` (the action one-hot; a NACK's reason and which detail it
        carries)."""
        plan = self.plan
        big = f["big"]
        # What a good frame ending now asks for: decided from the frame's
        # kind and the registered flags, itself registered, and one-hot a
        # register later (more levels: exact long before the frame's last
        # CRC byte).
        # No resets (timing: a reset would join the decision's logic; they
        # follow the flags every cycle).
        act = Signal(range(len(_Act.ALL) + 1), reset_less=True)
        act_reason = Signal(range(max(Reason) + 1), reset_less=True)
        act_staging = Signal(reset_less=True)   # the NACK's detail: the staging memory's size
        act_expected = Signal(reset_less=True)  # the NACK's detail: the bytes received in order
        d_act, d_reason = Signal.like(act), Signal.like(act_reason)
        d_staging, d_expected = Signal(), Signal()
        act_is = Signal(len(_Act.ALL), reset_less=True)   # act, one-hot (IDLE's decisions), a register later
        m.d[self._late] += act_is.eq(1 << act)
        m.d.sync += [act.eq(d_act), act_reason.eq(d_reason), act_staging.eq(d_staging),
                     act_expected.eq(d_expected)]

        def refuse(reason, staging=False, expected=False):
            m.d.comb += [d_act.eq(_Act.NACK), d_reason.eq(reason), d_staging.eq(staging), d_expected.eq(expected)]

        # The frame's kind, decoded into registered flags (it is set when
        # the kind byte arrives, long before the frame ends).
        is_kind = {k: Signal(name=f"is_{k.name.lower()}")
                   for k in (Kind.INFO, Kind.STATUS, Kind.LOAD_BEGIN, Kind.LOAD_CHUNK, Kind.COMMIT, Kind.RENDER)}
        m.d[self._late] += [flag.eq(frame.kind == k) for k, flag in is_kind.items()]
        with m.If(is_kind[Kind.INFO]):
            m.d.comb += d_act.eq(_Act.INFO)
        with m.Elif(is_kind[Kind.STATUS]):
            m.d.comb += d_act.eq(_Act.STATUS)
        if not plan.loadable:
            with m.Elif(is_kind[Kind.LOAD_BEGIN] | is_kind[Kind.LOAD_CHUNK] | is_kind[Kind.COMMIT]):
                refuse(Reason.FIXED_MODEL)
        else:
            with m.Elif(is_kind[Kind.LOAD_BEGIN]):
                with m.If(~f["len4"]):
                    refuse(Reason.BAD_LENGTH)
                with m.Elif(big | f["begin_bad"]):
                    refuse(Reason.TOO_LONG, staging=True)
                with m.Else():
                    m.d.comb += d_act.eq(_Act.BEGIN)
            with m.Elif(is_kind[Kind.LOAD_CHUNK]):
                with m.If(f["len_lt4"] | ~st.loading):
                    refuse(Reason.BAD_LENGTH, expected=True)
                with m.Elif(~big & f["chunk_next"]):
                    m.d.comb += d_act.eq(_Act.CHUNK_NEXT)
                with m.Elif(~big & f["chunk_again"]):
                    m.d.comb += d_act.eq(_Act.CHUNK_AGAIN)
                with m.Else():
                    refuse(Reason.BAD_OFFSET, expected=True)
            with m.Elif(is_kind[Kind.COMMIT]):
                with m.If(~f["len8"]):
                    refuse(Reason.BAD_LENGTH)
                with m.Elif(big | ~f["commit_ok"]):
                    refuse(Reason.INCOMPLETE, expected=True)
                with m.Else():
                    m.d.comb += d_act.eq(_Act.COMMIT)
        with m.Elif(is_kind[Kind.RENDER]):
            with m.If(~f["len8"]):
                refuse(Reason.BAD_LENGTH)
            with m.Elif(~st.model_valid):
                refuse(Reason.NO_MODEL)
            with m.Elif(f["region_bad"]):
                refuse(Reason.BAD_REGION)
            with m.Else():
                m.d.comb += d_act.eq(_Act.RENDER)
        with m.Else():
            refuse(Reason.UNKNOWN_COMMAND)

        return act_is, act_reason, act_staging, act_expected

    def _verify_and_install(self, m, st, fsm, vcrc, replies):
        """COMMIT: read the staged image back through the CRC, then install."""
        staging = self.staging
        word = Signal(16)
        left = st.vleft
        # Registered (timing): the last word (``left`` changes in
        # VERIFY_NEXT only, VERIFY_READ comes between).
        vlast = Signal()
        with fsm.state("VERIFY_READ"):
            m.d.comb += [staging.re.eq(1), staging.addr.eq(st.vaddr)]
            m.d.sync += vlast.eq(left == 0)
            fsm.goto("VERIFY_WAIT")
        with fsm.state("VERIFY_WAIT"):            # the staging memory's latency
            m.d.sync += st.vwait.eq(st.vwait + 1)
            with m.If(st.vwait == STAGING_LATENCY - 2):
                m.d.sync += st.vwait.eq(0)
                fsm.goto("VERIFY_LOW")
        # A byte reaches the CRC unit from registers, a cycle after its state
        # (timing); the state after waits out that cycle (`vgo`).
        vgo, vbyte = Signal(), Signal(8)
        m.d.comb += [vcrc.start.eq(vgo), vcrc.byte.eq(vbyte)]
        with fsm.state("VERIFY_LOW"):
            m.d.sync += [word.eq(staging.rdata), vgo.eq(1), vbyte.eq(staging.rdata[:8])]
            fsm.goto("VERIFY_HIGH")
        with fsm.state("VERIFY_HIGH"):
            m.d.sync += vgo.eq(0)
            with m.If(~vcrc.busy & ~vgo):
                m.d.sync += [vgo.eq(1), vbyte.eq(word[8:])]
                fsm.goto("VERIFY_NEXT")
        with fsm.state("VERIFY_NEXT"):
            m.d.sync += vgo.eq(0)
            with m.If(~vcrc.busy & ~vgo):
                m.d.sync += [st.vaddr.eq(st.vaddr + 1), left.eq(left - 1)]
                with m.If(vlast):
                    fsm.goto("VERIFY_MATCH")
                with m.Else():
                    fsm.goto("VERIFY_READ")
        # Registered (timing): the CRC matches (the unit finished a cycle
        # before VERIFY_DONE), the installer's start.
        crc_match, match_lo, match_hi = Signal(), Signal(), Signal()
        install_go = Signal()
        m.d.sync += [match_lo.eq(vcrc.value[:16] == st.args[32:48]), match_hi.eq(vcrc.value[16:] == st.args[48:64]),
                     crc_match.eq(match_lo & match_hi)]
        m.d.comb += [self.install.start.eq(install_go), self.install.length.eq(st.args[1:st.aw])]
        with fsm.state("VERIFY_MATCH"):          # the comparison's second register
            fsm.goto("VERIFY_DONE")
        # The reply's detail is the image's CRC either way: a mismatch's
        # NACK reports it, a good install's ACK the host's, equal to it.
        with fsm.state("VERIFY_DONE"):
            replies.set_detail(vcrc.value)
            with m.If(~crc_match):
                replies.nack(Reason.BAD_IMAGE_CRC, None)
            with m.Else():
                m.d.sync += install_go.eq(1)
                fsm.goto("INSTALL_GO")
        # The installer's end and verdict, registered (timing: they come
        # from the core's installer); INSTALLING sees them a cycle late.
        installed, install_ok = Signal(), Signal()
        with fsm.state("INSTALL_GO"):
            m.d.sync += [install_go.eq(0), installed.eq(0)]
            fsm.goto("INSTALLING")
        with fsm.state("INSTALLING"):
            m.d.sync += [installed.eq(~self.install.busy), install_ok.eq(self.install.ok)]
            with m.If(installed):
                with m.If(install_ok):
                    m.d.sync += [st.model_valid.eq(1), st.model_crc.eq(st.args[32:64])]
                    replies.ack(None)       # the CRC: in `detail` already
                with m.Else():
                    replies.nack(Reason.REFUSED_IMAGE)

    def _render(self, m, st, fsm, replies):
        """RENDER: start the core, then one ``PIXELS`` frame per row segment."""
        region = self.region
        # The pixels sent so far are counted in the reply's detail (zero
        # when the RENDER frame ended: see `detail_end`), the final ACK's.
        npix = st.detail[:2 * self.plan.size_bits]
        # The next segment's pixel count and its frame's length, registered
        # (three registers behind the segment's start: RENDER_NEXT waits
        # them out), count · bytes_per_pixel by shifts and adds. The count
        # holds while the segment's frame is sent (the segment moves at its
        # end): the segment's own count, without a copy.
        remaining = Signal(self.plan.size_bits + 1)
        count = Signal(range(protocol.FRAME_PIXELS + 1))
        frame_bytes = Signal((protocol.FRAME_PIXELS * 2 * self.plan.channels).bit_length())
        bpp = st.bytes_per_pixel
        m.d.sync += [remaining.eq(region.x1 - st.seg_x),
                     count.eq(Mux(at_least(remaining, protocol.FRAME_PIXELS + 1), protocol.FRAME_PIXELS, remaining)),
                     frame_bytes.eq(sum(Mux(bpp[b], count << b, 0) for b in range(len(bpp))))]
        wait = Signal(2)
        header = protocol.fields_size(protocol.PIXELS_FIELDS)
        m.d.comb += st.pixels_length.eq(header + frame_bytes)
        # The end of the row and of the region, registered (timing): the
        # segment is fixed from RENDER_FRAME on, its frame takes far longer
        # than a cycle. The next segment's position is taken from the same
        # registers (the adders feed one register each).
        row_end, last_row = Signal(), Signal()
        seg_end, next_y = Signal(len(st.seg_x) + 1), Signal(len(st.seg_y) + 1)
        m.d[self._late] += [seg_end.eq(st.seg_x + count), next_y.eq(st.seg_y + 1),
                            row_end.eq(seg_end == region.x1), last_row.eq(next_y == region.y1)]
        with fsm.state("RENDER_START"):
            m.d.comb += self.start.eq(1)
            m.d.sync += [st.src.eq(_PIXELS), wait.eq(0)]
            fsm.goto("RENDER_NEXT")
        with fsm.state("RENDER_NEXT"):
            m.d.sync += wait.eq(wait + 1)
            with m.If(wait == 2):
                fsm.goto("RENDER_FRAME")
        with fsm.state("RENDER_FRAME"):
            m.d.sync += [st.tx_go.eq(1), st.tx_idle.eq(0)]
            fsm.goto("RENDER_SENDING")
        with fsm.state("RENDER_SENDING"):
            with m.If(st.tx_idle):
                m.d.sync += wait.eq(0)
                replies.set_detail((npix + count)[:len(npix)])
                with m.If(row_end):
                    m.d.sync += [st.seg_x.eq(region.x0), st.seg_y.eq(next_y)]
                    with m.If(last_row):
                        fsm.goto("RENDER_DONE")
                    with m.Else():
                        fsm.goto("RENDER_NEXT")
                with m.Else():
                    m.d.sync += st.seg_x.eq(seg_end)
                    fsm.goto("RENDER_NEXT")
        with fsm.state("RENDER_DONE"):
            replies.ack(None)               # the pixel count: in `detail` already


#: Cycles the reply's byte index must be still before its byte is taken:
#: the INFO ROM's read and its data register, the byte register, the
#: selected byte's (the other sources: the index's copy, the range flag or
#: the word, the byte, the selected byte; a pixel: its byte, the selected
#: byte).
_SETTLE = 4


class _Act:
    """What a good command frame asks the controller to do (``NACK``: refuse
    it, with a reason)."""

    NACK, INFO, STATUS, BEGIN, CHUNK_NEXT, CHUNK_AGAIN, COMMIT, RENDER = range(8)
    ALL = range(8)


class _Replies:
    """Setting up a reply from a state of ``fsm``: its source (which fixes
    kind and length), why (NACK) and a detail; only what differs is
    assigned (the command it answers is the frame's kind, set in IDLE).

    The reply's detail has several writers (a frame's end: zero,
    `expected` or the staging size; a commit's CRC and its refusal; a
    render's count): each where it writes raises a strobe
    (:meth:`set_detail`), and the register takes the or of the values
    whose strobe is high (at most one with a value that is not zero: they
    are exclusive), not a chain of priorities (timing;
    :meth:`write_detail`, once all are known)."""

    def __init__(self, m, st, fsm):
        self._m, self._st, self._fsm = m, st, fsm
        self._detail_terms = []

    def reply(self, src, *, reason=None, detail=None):
        m, st = self._m, self._st
        m.d.sync += st.src.eq(src)
        if reason is not None:
            m.d.sync += st.reason.eq(reason)
        if detail is not None:
            self.set_detail(detail)
        self._fsm.goto("SEND")

    def ack(self, detail=0):
        self.reply(_ACK, detail=detail)

    def nack(self, reason, detail=0):
        self.reply(_NACK, reason=reason, detail=detail)

    def set_detail(self, value):
        strobe = Signal(name=f"detail_set{len(self._detail_terms)}")
        self._m.d.comb += strobe.eq(1)
        self._detail_terms.append((strobe, Value.cast(value)))

    def write_detail(self):
        m, terms = self._m, self._detail_terms
        with m.If(Cat(*(strobe for strobe, _ in terms)).any()):
            m.d.sync += self._st.detail.eq(_or_all([Mux(strobe, value, 0) for strobe, value in terms]))


class _FrameEnd:
    """The registers of a frame's end and what IDLE does with it
    (:meth:`BoardController._frame_end` adds the decision's: ``act_is``,
    ``go``, ``answer``, the reply's ``src`` and ``reason``, and
    ``act_detail_expected`` and ``act_detail_staging``, which of the
    details it carries)."""

    def __init__(self):
        self.ended, self.ended_good, self.ended2 = Signal(), Signal(), Signal()
        #: The detail's sources for the reply (a cycle after `ended2`).
        self.detail_regs = Signal(name="detail_end"), Signal(name="detail_expected"), Signal(name="detail_staging")


@dataclass(frozen=True)
class _CommandArgs:
    """A command's arguments as the decisions read them (``arg``: the first
    as an offset or length within the staging memory; ``end_of_chunk``,
    registered; ``words_left``: a commit's words to verify after the first,
    registered; a region's corner ``x0``, ``y0``) and its registered flags
    (``flags``: by name)."""

    arg: Value
    end_of_chunk: Value
    words_left: Value
    x0: Value
    y0: Value
    flags: dict


class _SourceByte:
    """The reply's byte source (a stream's signals: ``valid``, ``payload``,
    ``ready``)."""

    def __init__(self):
        self.valid = Signal(name="source_valid")
        self.payload = Signal(8, name="source_byte")
        self.ready = Signal(name="source_ready")


class _State:
    """The controller's registers."""

    def __init__(self, ctl):
        plan = ctl.plan
        preloaded = ctl.model_crc is not None
        self.idle = Signal()
        #: The command's first 8 payload bytes. A fixed model's only
        #: command with arguments is RENDER (four 16-bit coordinates, of
        #: which ``size_bits`` count and the rest must be zero): of each byte
        #: the bits below ``size_bits`` are kept and whether any other is set
        #: (``arg_bytes``: ``(kept, high)``; ``args`` reads them back with
        #: that flag in the first bit above the kept ones).
        if plan.loadable:
            self.args = Signal(64)
            self.arg_bytes = None
        else:
            self.arg_bytes, parts = [], []
            for k in range(8):
                n = min(8, max(0, plan.size_bits - 8 * (k % 2)))
                kept = Signal(n, name=f"arg{k}_kept")
                high = Signal(name=f"arg{k}_high") if n < 8 else None
                self.arg_bytes.append((kept, high))
                parts += [kept] if high is None else [kept, high, Const(0, 7 - n)]
            self.args = Cat(*parts)
        self.loading = Signal()
        #: Words of the staging memory (none: a fixed model).
        self.staging_depth = plan.staging_depth if plan.loadable else 0
        #: Width of a byte offset within the staging memory.
        self.aw = max(1, (2 * self.staging_depth).bit_length())
        self.load_length = Signal(self.aw)
        self.expected = Signal(self.aw)        # bytes of the load image received in order
        self.model_valid = Signal(init=int(preloaded))
        self.model_crc = Signal(32, init=ctl.model_crc or 0)
        self.good_frames = Signal(16)
        self.bad_frames = Signal(16)
        self.vaddr = Signal(range(self.staging_depth + 1))
        self.vleft = Signal(range(self.staging_depth + 1))     # words to verify after this one
        self.vwait = Signal(range(STAGING_LATENCY))
        self.vclear = Signal()
        # The reply being sent.
        self.src = Signal(range(5))
        self.tx_go = Signal()                  # the transmitter's start
        self.pixels_length = Signal(16)        # a PIXELS frame's length
        self.tx_idle = Signal()                # the transmitter is done, a cycle late
        self.reply_cmd = Signal(8)
        self.reason = Signal(range(max(Reason) + 1))
        self.detail = Signal(32)
        # Rendering.
        size_bits = plan.size_bits
        self.seg_x = Signal(size_bits)
        self.seg_y = Signal(size_bits)
        self.pix_valid = Signal()              # a pixel from the core, being sent
        self.pix_data = Signal(plan.pixel_bits * plan.channels)
        self.bpos = Signal(range(2 * plan.channels + 1))
        self.bytes_per_pixel = Signal(range(2 * plan.channels + 1))
        self.last_bpos = Signal(range(2 * plan.channels + 1))     # bytes_per_pixel − 1, registered
        # The reply's payload fetch (see _replies).
        self.fill_idx = Signal(protocol.MAX_PAYLOAD.bit_length())
        self.fill_left = Signal(range(protocol.MAX_PAYLOAD + 1))
        self.idx_small = Signal(reset_less=True)             # fill_idx < 8, a cycle late


def _payload_bits(fields, values):
    """The payload of ``fields`` holding ``values`` as one value (byte ``k``
    in bits ``[8k, 8k + 8)``)."""
    parts = []
    at = 0
    for name, (offset, size) in sorted(protocol.field_offsets(fields).items(), key=lambda kv: kv[1][0]):
        if offset > at:
            parts.append(Const(0, 8 * (offset - at)))
        value = values[name]
        v = Const(value, 8 * size) if isinstance(value, int) else Value.cast(value)
        parts.append(v[:8 * size])
        if len(v) < 8 * size:
            parts.append(Const(0, 8 * size - len(v)))
        at = offset + size
    return Cat(*parts)


def _or_all(values):
    """The bitwise or of ``values`` (zero-extended to the widest)."""
    out = values[0]
    for v in values[1:]:
        out = out | v
    return out


def _equal(m, a, b, flag):
    """``flag`` ← ``a == b``, in two registered steps (timing: two
    half-width comparisons, then their and)."""
    width = max(len(a), len(b))
    a, b = a.as_unsigned(), b.as_unsigned()
    half = (width + 1) // 2
    lo_equal, hi_equal = Signal(), Signal()
    m.d.sync += [lo_equal.eq(a[:half] == b[:half]), hi_equal.eq(a[half:] == b[half:]), flag.eq(lo_equal & hi_equal)]


def _at_most(m, a, b, flag):
    """``flag`` ← ``a <= b`` (unsigned), in two registered steps (timing: two
    half-width comparisons, then their combination)."""
    width = max(len(a), len(b))
    a, b = a.as_unsigned(), b.as_unsigned()
    half = (width + 1) // 2
    hi_a, hi_b = a[half:width] if len(a) > half else Const(0, 1), b[half:width] if len(b) > half else Const(0, 1)
    hi_less, hi_equal, lo_at_most = Signal(), Signal(), Signal()
    m.d.sync += [hi_less.eq(hi_a < hi_b), hi_equal.eq(hi_a == hi_b), lo_at_most.eq(a[:half] <= b[:half]),
                 flag.eq(hi_less | (hi_equal & lo_at_most))]


def _byte_pipe(m, flat, index, name, domain="sync", *, small=None, copy=True):
    """Byte ``index`` of ``flat`` (0 past its end), registered in three
    steps (``index`` held for three cycles), the first a copy of the index
    (timing: the multiplexers' selects have few loads): a payload of up to
    8 bytes: the copy, whether it is within the payload, then its byte; a
    longer one: the copy, the 4-byte word ``index // 4`` and whether that
    is within it, then its byte ``index % 4``. ``copy=False`` (a longer
    payload only): without the copy, two steps. ``domain="comb"``: the same
    selection without the registers. ``small`` (optional): ``index < 8``,
    registered like the copy (the short payload's range check from it, a
    LUT).
    The registers have no reset (timing: a reset would join the zeroing's
    logic; they follow ``index`` every cycle)."""
    in_range = Signal(name=f"{name}_in_range", reset_less=True)   # zeroes the byte (timing: 8 resets, not 32)
    out = Signal(8, name=f"{name}_q", reset_less=True)
    if len(flat) <= 64:
        nbytes = (len(flat) + 7) // 8
        padded = Cat(flat, Const(0, 8 * nbytes - len(flat)))
        sel = Signal(min(3, len(index)), name=f"{name}_index", reset_less=True)
        m.d[domain] += sel.eq(index[:len(sel)])
        if small is None:
            small = Signal(name=f"{name}_small", reset_less=True)
            m.d[domain] += small.eq(index[len(sel):] == 0)
        m.d[domain] += in_range.eq(small & below(sel, nbytes))
        m.d[domain] += out.eq(Mux(in_range, padded.word_select(sel[:max(1, (nbytes - 1).bit_length())], 8), 0))
        return out
    if copy:
        at = Signal(len(index), name=f"{name}_index", reset_less=True)
        m.d[domain] += at.eq(index)
        index = at
    words = (len(flat) + 31) // 32
    padded = Cat(flat, Const(0, 32 * words - len(flat)))
    word = Signal(32, name=f"{name}_word", reset_less=True)
    hi = index[2:]
    m.d[domain] += [word.eq(padded.word_select(hi[:max(1, (words - 1).bit_length())], 32) if words > 1 else padded),
                    in_range.eq(below(hi, words))]
    m.d[domain] += out.eq(Mux(in_range, word.word_select(index[:2], 8), 0))
    return out

