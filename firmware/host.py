"""The host side of the board's link: info, load a model, render an image.

::

    python -m dhq_rtl.host --port PORT info
    python -m dhq_rtl.host --port PORT status
    python -m dhq_rtl.host --port PORT load MODEL
    python -m dhq_rtl.host --port PORT render [--model MODEL] [--region x0,y0,x1,y1] --out PNG

``PORT`` is a serial device (the iCEBreaker's accelerator UART is the
FTDI's second port, ``/dev/ttyUSB1`` on Linux; needs pyserial: ``pip install
dhq_rtl[host]``) or ``sim://BOARD[/ENVELOPE]``: the same protocol against
the compiled cycle-accurate simulation of that board's top
(:mod:`dhq_rtl.rtlsim.board`), which starts with the bundled default model
loaded, as a freshly flashed board does.

Every exchange is checked (:mod:`dhq_rtl.protocol`): a command that gets no
answer in time, a NACK or a damaged reply is sent again (a bounded number of
times, then a clear error); timeouts scale with the bytes to move and the
board's clock. ``load`` first asks the board for its envelope and refuses a
model that does not fit before any byte is sent, and skips the load when
the board already holds the model (same load-image CRC); the image goes in
checked, acknowledged chunks (the chunk size halves after a failure and
grows back), and the model becomes active only with a commit whose CRC the
board checks. ``render`` receives the pixels in checked frames and asks
again for every row segment that did not arrive intact.

A float-core bitstream (``build --arith fp32``; ``sim://BOARD/fp32``) and
an integer one built with ``--fixed-model`` (``sim://BOARD/fixed``) hold
one fixed model: ``info`` says so, ``render`` renders it, and ``load`` (or
``render --model``) is refused before anything is sent (the board itself
answers load commands with ``NACK FIXED_MODEL``; docs/float32.md,
docs/loading.md).
"""

import random
import sys
import time

import numpy as np

from dhq_rtl import protocol
from dhq_rtl.cli import ArgumentParser, parse_region, run_main
from dhq_rtl.errors import DhqError
from dhq_rtl.protocol import Kind, Reason

__all__ = ["Board", "BoardInfo", "SerialPort", "FaultyPort", "open_port", "main", "LinkError"]

#: Largest load chunk (bytes of the image per frame).
MAX_CHUNK = protocol.MAX_PAYLOAD - protocol.fields_size(protocol.COMMAND_FIELDS[Kind.LOAD_CHUNK])
MIN_CHUNK = 32


class LinkError(DhqError):
    """The board did not answer correctly within the retries."""


# ------------------------------------------------------------------ ports

class SerialPort:
    """A serial device (pyserial) with the port interface of the host:
    ``write(bytes)``, ``read(n, timeout)`` (up to ``n`` bytes within
    ``timeout`` seconds), ``clock()`` (seconds), ``close()``."""

    #: Extra seconds every reply may take (USB latency, the OS).
    latency = 0.05

    def __init__(self, path, baud):
        try:
            import serial
        except ImportError:
            raise DhqError("a serial port needs pyserial: pip install pyserial (or pip install dhq_rtl[host])") \
                from None
        try:
            self.ser = serial.Serial(path, baud, timeout=1.0)
        except (serial.SerialException, ValueError) as e:
            raise DhqError(f"cannot open {path} at {baud} baud: {e}") from None
        if hasattr(self.ser, "set_low_latency_mode"):
            try:
                self.ser.set_low_latency_mode(True)
            except (OSError, ValueError, NotImplementedError):
                pass
        self.baud = baud
        self.ser.reset_input_buffer()

    def write(self, data):
        self.ser.write(bytes(data))

    def read(self, n, timeout):
        self.ser.timeout = max(timeout, 0.001)
        return self.ser.read(n)

    def clock(self):
        return time.monotonic()

    def close(self):
        self.ser.close()


class FaultyPort:
    """A port that damages bytes in both directions: each byte is, with
    probability ``rate``, flipped (one random bit), dropped or duplicated
    (one of ``kinds`` at random, from a ``seed``). ``injected`` counts the
    faults by kind. For testing the link's recovery."""

    KINDS = ("flip", "drop", "duplicate")

    def __init__(self, port, rate, *, seed=0, kinds=KINDS):
        if not 0 <= rate < 1:
            raise ValueError(f"fault rate must be in [0, 1), got {rate}")
        self.port = port
        self.rate = rate
        self.kinds = tuple(kinds)
        self.rng = random.Random(seed)
        self.injected = dict.fromkeys(self.KINDS, 0)
        self.latency = getattr(port, "latency", 0.0)
        self.baud = port.baud
        self._pending = bytearray()     # bytes received but not yet handed out

    def _damage(self, data):
        out = bytearray()
        for b in data:
            if self.rng.random() >= self.rate:
                out.append(b)
                continue
            kind = self.rng.choice(self.kinds)
            self.injected[kind] += 1
            if kind == "flip":
                out.append(b ^ (1 << self.rng.randrange(8)))
            elif kind == "duplicate":
                out += bytes([b, b])
        return bytes(out)

    def write(self, data):
        self.port.write(self._damage(data))

    def read(self, n, timeout):
        if len(self._pending) < n:
            self._pending += self._damage(self.port.read(n - len(self._pending), timeout))
        out = bytes(self._pending[:n])
        del self._pending[:n]
        return out

    def clock(self):
        return self.port.clock()

    def close(self):
        self.port.close()


class _SimPort:
    """:class:`~dhq_rtl.rtlsim.board.SimulatedBoard` with the host's port
    interface (simulated time)."""

    latency = 0.001

    def __init__(self, board):
        self.board = board
        self.baud = board.baud

    def write(self, data):
        self.board.write(data)

    def read(self, n, timeout):
        return self.board.read(n, timeout)

    def clock(self):
        return self.board.seconds

    def close(self):
        self.board.close()


def open_port(name, baud=None, *, log=None):
    """A port for ``name``: ``sim://BOARD[/ENVELOPE]`` (a simulated board
    starting with the bundled model; ``sim://BOARD/fp32``: the float core's
    build, ``sim://BOARD/fixed``: the integer core's ``--fixed-model``
    build, their model fixed) or a serial device at ``baud``."""
    from dhq_rtl.rtlsim.board import parse_sim_port
    sim = parse_sim_port(name)
    if sim is None:
        from dhq_rtl.gateware.top import DEFAULT_BAUD
        return SerialPort(name, baud or DEFAULT_BAUD)
    from dhq_rtl.boards import get_board
    from dhq_rtl.envelope import get_envelope
    from dhq_rtl.firmware import default_model
    from dhq_rtl.rtlsim.board import SimulatedBoard, simulated_top
    board_name, envelope_name = sim
    board = get_board(board_name)
    if envelope_name == "fp32":
        # The float core's build: the bundled model, fixed.
        top = simulated_top(default_model()[0], board, arith="fp32")
    elif envelope_name == "fixed":
        # The integer core's --fixed-model build: the bundled model, fixed.
        top = simulated_top(default_model()[0], board, fixed_model=True)
    else:
        envelope = get_envelope(envelope_name or "default")
        top = simulated_top(default_model()[0], board, envelope=envelope)
    return _SimPort(SimulatedBoard(top, log=log))


# ------------------------------------------------------------------ board

class BoardInfo:
    """The ``INFO`` reply: ``fields`` (the raw fields), ``envelope`` (an
    :class:`~dhq_rtl.envelope.Envelope`; None when ``fixed``: a bitstream
    whose model is fixed: the float core, an integer ``--fixed-model``
    build), ``name``, ``pixel_bits``,
    ``lanes``, ``clock_hz``, ``baud``, and the loaded model:
    ``model_valid``, ``model_crc``, ``width``, ``height``, ``channels``."""

    def __init__(self, payload):
        from dhq_rtl.envelope import Envelope, EnvelopeError
        from dhq_rtl.gateware.plan import LOAD_FORMAT
        f = protocol.unpack_fields(protocol.INFO_FIELDS, payload)
        if f["protocol"] != protocol.PROTOCOL_VERSION or f["load_format"] not in (LOAD_FORMAT,
                                                                                 protocol.FIXED_MODEL_FORMAT):
            raise LinkError(f"the board speaks protocol {f['protocol']} / load format {f['load_format']}, this "
                            f"host {protocol.PROTOCOL_VERSION} / {LOAD_FORMAT}: rebuild the bitstream with this "
                            f"dhq_rtl")
        self.fields = f
        self.fixed = f["load_format"] == protocol.FIXED_MODEL_FORMAT
        self.name = f["name"].rstrip(b"\0").decode(errors="replace") or "board"
        self.pixel_bits = f["pixel_bits"]
        self.envelope = None
        if not self.fixed:
            values = {k: f[k] for k in protocol.ENVELOPE_FIELDS}
            values["weight_memory"] = "spram" if values["weight_memory"] else "bram"
            try:
                self.envelope = Envelope(name=self.name, lanes=f["lanes"], **values)
            except EnvelopeError as e:
                raise LinkError(f"the board describes an envelope this host cannot read ({e})") from None
            if self.envelope.signature(self.envelope.lanes) != f["signature"]:
                raise LinkError("the board's envelope does not match its signature: rebuild the bitstream with "
                                "this dhq_rtl")
        self.lanes = f["lanes"]
        self.clock_hz = f["clock_hz"]
        self.baud = f["clock_hz"] / f["divisor"]
        self.staging_bytes = f["staging_bytes"]
        self.model_valid = bool(f["model_valid"])
        self.model_crc = f["model_crc"]
        self.width, self.height, self.channels = f["width"], f["height"], f["channels"]

    def describe(self):
        """One line: the envelope, or the fixed model's board."""
        if self.fixed:
            return (f"{self.name} core with a fixed model (not loadable): {self.fields['max_layers']} layers, "
                    f"up to {self.fields['max_width']} wide, {self.pixel_bits}-bit pixels")
        return self.envelope.describe()

    def plan(self, model):
        """The board's plan with ``model`` loaded (raises
        :class:`~dhq_rtl.envelope.EnvelopeError` naming the limit when the
        model does not fit the board's envelope; :class:`DhqError` when the
        board's model is fixed)."""
        from dhq_rtl.gateware.plan import CorePlan
        if self.fixed:
            raise DhqError(f"the board's bitstream holds a fixed model (the {self.name} core): it loads no "
                           f"model; render what it holds, or build a loadable integer bitstream (without --fixed-model) "
                           f"to load models")
        return CorePlan(model, lanes=self.lanes, envelope=self.envelope)

    def cycles_per_pixel_bound(self):
        """Cycles a pixel takes at most for any model of the envelope (a
        generous bound for timeouts: every weight row once, every element
        through post-processing, per layer; for a fixed model the same of
        its shape, with the float core's pace of 16 cycles an element)."""
        f = self.fields
        width, layers, channels = f["max_width"], f["max_layers"], f["max_channels"]
        chunks = -(-width // self.lanes)
        rows = (layers - 2) * width * chunks + channels * chunks
        if self.fixed:
            return 2 * (rows + 2 * chunks * width) + 16 * layers * (width + 16) * 2 + 500
        return 2 * rows + 16 * layers * (width + 16) + 500


class Board:
    """A board behind a ``port`` (module docstring), speaking
    :mod:`dhq_rtl.protocol`.

    ``retries``: attempts per exchange before a :class:`LinkError`;
    ``timeout_scale``: multiplies every timeout; ``progress``: tqdm bars on
    stderr. ``frames_bad`` counts damaged frames received, ``retried``
    exchanges sent again.
    """

    def __init__(self, port, *, retries=10, timeout_scale=1.0, progress=False):
        self.port = port
        self.retries = retries
        self.timeout_scale = timeout_scale
        self.progress = progress
        self.parser = protocol.FrameParser()
        self.retried = 0
        self._info = None
        self._queue = []                  # frames received, not yet looked at

    @property
    def frames_bad(self):
        return self.parser.bad_frames

    # -------------------------------------------------------------- plumbing
    def _byte_time(self):
        return 10.0 / (self._info.baud if self._info is not None else self.port.baud)

    def _timeout(self, nbytes, cycles=0):
        """Seconds to wait for ``nbytes`` on the line and ``cycles`` of the
        board's work: twice that, plus the port's latency."""
        clock = self._info.clock_hz if self._info is not None else 12e6
        return self.timeout_scale * (2 * (nbytes * self._byte_time() + cycles / clock) + self.port.latency
                                     + 20 * self._byte_time())

    def _frames(self, deadline):
        """Good frames as they come, until ``deadline`` (port clock)."""
        while True:
            while self._queue:
                yield self._queue.pop(0)
            now = self.port.clock()
            if now >= deadline:
                return
            buf = self.parser.buffer
            if len(buf) >= protocol.HEADER_BYTES and buf[:2] == protocol.SYNC:
                length = min(int.from_bytes(buf[3:5], "little"), protocol.MAX_PAYLOAD)
                want = protocol.frame_bytes(length) - len(buf)
            else:
                want = protocol.HEADER_BYTES
            self._queue += self.parser.feed(self.port.read(max(1, want), deadline - now))

    def _exchange(self, kind, payload, reply_kinds, timeout, accept=lambda f: True, tries=None):
        """Send a command until a reply of ``reply_kinds`` for it comes (and
        ``accept`` takes it) or a NACK for it; returns the frame. A NACK
        ``BAD_FRAME``, a timeout or a damaged reply are retried (``tries``
        attempts, default ``retries``)."""
        frame = protocol.encode_frame(kind, payload)
        last = "no answer"
        tries = self.retries if tries is None else tries
        for attempt in range(tries):
            if attempt:
                self.retried += 1
            self._drain()
            self.port.write(frame)
            deadline = self.port.clock() + timeout
            for reply in self._frames(deadline):
                if reply.kind in reply_kinds and (reply.kind not in (Kind.ACK, Kind.NACK)
                                                  or reply.payload[:1] == bytes([kind])):
                    if reply.kind == Kind.NACK:
                        nack = protocol.unpack_fields(protocol.NACK_FIELDS, reply.payload)
                        if nack["reason"] == Reason.BAD_FRAME:
                            last = "the board received a damaged command"
                            break
                        return reply
                    if accept(reply):
                        return reply
                elif reply.kind == Kind.NACK and protocol.unpack_fields(
                        protocol.NACK_FIELDS, reply.payload)["reason"] == Reason.BAD_FRAME:
                    last = "the board received a damaged command"
                    break
            else:
                last = f"no answer within {timeout:.3g} s"
        raise LinkError(f"the board did not answer {Kind(kind).name} after {tries} tries ({last}); "
                        f"is the bitstream loaded, the port right and the cable good?")

    def _drain(self):
        """Drop a partial frame and anything queued (a fresh exchange)."""
        self.parser.reset()
        self._queue = []

    # -------------------------------------------------------------- commands
    def info(self):
        """Ask for the board's :class:`BoardInfo`."""
        size = protocol.frame_bytes(protocol.fields_size(protocol.INFO_FIELDS))
        reply = self._exchange(Kind.INFO, b"", (Kind.INFO_REPLY,), self._timeout(size + 16))
        self._info = BoardInfo(reply.payload)
        return self._info

    def status(self):
        """The board's ``STATUS`` fields (a dict)."""
        size = protocol.frame_bytes(protocol.fields_size(protocol.STATUS_FIELDS))
        reply = self._exchange(Kind.STATUS, b"", (Kind.STATUS_REPLY,), self._timeout(size + 16))
        return protocol.unpack_fields(protocol.STATUS_FIELDS, reply.payload)

    def prepare(self, model):
        """``(plan, image, crc)`` of ``model`` for this board, checked
        against its envelope and staging memory before anything is sent."""
        from dhq_rtl.loader import image_crc, load_image
        info = self._info or self.info()
        plan = info.plan(model)
        image = load_image(plan)
        if len(image) > info.staging_bytes:
            raise DhqError(f"the model's load image has {len(image)} bytes, the board's staging memory "
                           f"{info.staging_bytes}: use a smaller model or a larger envelope")
        return plan, image, image_crc(image)

    def load(self, model, *, force=False):
        """Load ``model``; returns ``(loaded, seconds, bytes)``: ``loaded`` is
        False when the board already held it (``force`` loads anyway)."""
        plan, image, crc = self.prepare(model)
        info = self._info
        if info.model_valid and info.model_crc == crc and not force:
            return False, 0.0, 0
        t0 = self.port.clock()
        for attempt in range(3):
            self._send_image(image)
            ok, detail = self._commit(image, crc)
            if ok:
                break
            if detail != Reason.BAD_IMAGE_CRC:
                raise LinkError(f"the board refused the model ({Reason(detail).name.lower().replace('_', ' ')})")
        else:
            raise LinkError("the staged model's CRC did not match three times: the link corrupts data the "
                            "frame checks miss; check the cable")
        self._info = None
        return True, self.port.clock() - t0, len(image)

    def _send_image(self, image):
        n = len(image)
        begin = protocol.pack_fields(protocol.COMMAND_FIELDS[Kind.LOAD_BEGIN], {"length": n})
        self._exchange(Kind.LOAD_BEGIN, begin, (Kind.ACK,), self._timeout(64))
        bar = _bar(self.progress, n, "load", "B")
        offset, size, failures = 0, 256, 0
        try:
            while offset < n:
                data = image[offset:offset + size]
                payload = protocol.pack_fields(protocol.COMMAND_FIELDS[Kind.LOAD_CHUNK], {"offset": offset}) + data
                end = offset + len(data)
                try:
                    reply = self._exchange(Kind.LOAD_CHUNK, payload, (Kind.ACK, Kind.NACK),
                                           self._timeout(len(payload) + 64), tries=1,
                                           accept=lambda f: protocol.unpack_fields(
                                               protocol.ACK_FIELDS, f.payload)["detail"] >= end)
                except LinkError:
                    # Smaller chunks after a failure (fewer bytes to lose), larger again after success.
                    failures += 1
                    self.retried += 1
                    if failures >= self.retries:
                        raise LinkError(f"the board did not acknowledge the load chunk at byte {offset} after "
                                        f"{self.retries} tries; check the cable and the baud rate") from None
                    size = max(MIN_CHUNK, size // 2)
                    continue
                if reply.kind == Kind.NACK:
                    nack = protocol.unpack_fields(protocol.NACK_FIELDS, reply.payload)
                    if nack["reason"] != Reason.BAD_OFFSET or nack["detail"] > n:
                        raise LinkError(f"the board refused the load chunk at byte {offset} "
                                        f"({Reason(nack['reason']).name.lower().replace('_', ' ')})")
                    new = nack["detail"]
                else:
                    new = protocol.unpack_fields(protocol.ACK_FIELDS, reply.payload)["detail"]
                    failures = 0
                    size = min(MAX_CHUNK, size * 2)
                if bar is not None:
                    bar.update(new - offset)
                offset = new
        finally:
            if bar is not None:
                bar.close()

    def _commit(self, image, crc):
        """``(True, crc)`` or ``(False, reason)``."""
        commit = protocol.pack_fields(protocol.COMMAND_FIELDS[Kind.COMMIT], {"length": len(image), "crc": crc})
        words = len(image) // 2
        reply = self._exchange(Kind.COMMIT, commit, (Kind.ACK, Kind.NACK), self._timeout(64, 40 * words + 10_000))
        if reply.kind == Kind.ACK:
            return True, crc
        return False, protocol.unpack_fields(protocol.NACK_FIELDS, reply.payload)["reason"]

    def render(self, region=None):
        """The pixels of ``region`` (default: the whole image) as an array
        ``(rows, cols, channels)``; returns ``(image, seconds)``."""
        info = self._info or self.info()
        if not info.model_valid:
            raise DhqError("the board holds no model: load one first (host load MODEL)")
        region = _check_region(region, info)
        x0, y0, x1, y1 = region
        channels = info.channels
        per_value = 1 if info.pixel_bits <= 8 else 2
        image = np.zeros((y1 - y0, x1 - x0, channels), dtype=np.uint16 if per_value == 2 else np.uint8)
        have = np.zeros((y1 - y0, x1 - x0), dtype=bool)
        bar = _bar(self.progress, have.size, "render", "px")
        t0 = self.port.clock()
        try:
            pending = [region]
            for attempt in range(self.retries):
                for r in pending:
                    self._render_region(r, image, have, region, channels, per_value, bar)
                if have.all():
                    break
                self.retried += 1
                pending = _missing_segments(have, region)
            else:
                missing = int((~have).sum())
                raise LinkError(f"{missing} pixels did not arrive intact after {self.retries} requests; "
                                f"check the cable and the baud rate")
        finally:
            if bar is not None:
                bar.close()
        return image, self.port.clock() - t0

    def _render_region(self, r, image, have, region, channels, per_value, bar):
        """Ask for one region, store every pixel frame that arrives intact."""
        info = self._info
        x0, y0 = region[:2]
        rx0, ry0, rx1, ry1 = r
        payload = protocol.pack_fields(protocol.COMMAND_FIELDS[Kind.RENDER],
                                       {"x0": rx0, "y0": ry0, "x1": rx1, "y1": ry1})
        frame_px = min(protocol.FRAME_PIXELS, rx1 - rx0)
        frame_len = protocol.frame_bytes(4 + frame_px * channels * per_value)
        frame_timeout = self._timeout(frame_len, frame_px * info.cycles_per_pixel_bound() + 4000)
        self._drain()
        self.port.write(protocol.encode_frame(Kind.RENDER, payload))
        deadline = self.port.clock() + frame_timeout + self._timeout(32)
        while True:
            frame = None
            for frame in self._frames(deadline):
                break
            if frame is None:
                return                                   # timeout: the caller asks again for what is missing
            deadline = self.port.clock() + frame_timeout
            if frame.kind == Kind.PIXELS and len(frame.payload) >= 4:
                head = protocol.unpack_fields(protocol.PIXELS_FIELDS, frame.payload[:4])
                values = np.frombuffer(frame.payload[4:], dtype="<u2" if per_value == 2 else np.uint8)
                if values.size % channels:
                    continue
                px = values.reshape(-1, channels)
                row, col = head["y"] - y0, head["x"] - x0
                if not (0 <= row < have.shape[0] and 0 <= col and col + len(px) <= have.shape[1]):
                    continue
                new = int((~have[row, col:col + len(px)]).sum())
                image[row, col:col + len(px)] = px
                have[row, col:col + len(px)] = True
                if bar is not None and new:
                    bar.update(new)
            elif frame.kind in (Kind.ACK, Kind.NACK) and frame.payload[:1] == bytes([Kind.RENDER]):
                if frame.kind == Kind.NACK:
                    nack = protocol.unpack_fields(protocol.NACK_FIELDS, frame.payload)
                    if nack["reason"] == Reason.NO_MODEL:
                        raise DhqError("the board holds no model: load one first (host load MODEL)")
                    if nack["reason"] == Reason.BAD_REGION:
                        raise DhqError(f"the board refused the region {r}: outside its model's "
                                       f"{info.width}×{info.height} image")
                return
            elif frame.kind == Kind.NACK and frame.payload[1:2] == bytes([Reason.BAD_FRAME]):
                return                                   # the request was damaged: ask again


def _missing_segments(have, region):
    """Regions (one row each) of the pixels not received."""
    x0, y0 = region[:2]
    out = []
    for row in range(have.shape[0]):
        missing = np.flatnonzero(~have[row])
        if missing.size == 0:
            continue
        start = prev = missing[0]
        for col in list(missing[1:]) + [None]:
            if col is None or col != prev + 1:
                out.append((x0 + int(start), y0 + row, x0 + int(prev) + 1, y0 + row + 1))
                start = col
            prev = col
    return out


def _check_region(region, info):
    if region is None:
        return (0, 0, info.width, info.height)
    x0, y0, x1, y1 = region
    if not (0 <= x0 < x1 <= info.width and 0 <= y0 < y1 <= info.height):
        raise DhqError(f"--region {x0},{y0},{x1},{y1} is not a non-empty rectangle inside the board model's "
                       f"{info.width}×{info.height} image")
    return tuple(int(v) for v in region)


def _bar(progress, total, desc, unit):
    if not progress:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, file=sys.stderr, dynamic_ncols=True,
                leave=False)


# ------------------------------------------------------------------ CLI

def _parser():
    p = ArgumentParser(prog="python -m dhq_rtl.host", description=__doc__.split("\n")[0])
    p.add_argument("--port", required=True, help="serial port of the board (e.g. /dev/ttyUSB1) or sim://BOARD "
                                                 "(the board's simulation, e.g. sim://icebreaker)")
    p.add_argument("--baud", type=int, help="baud rate of a serial port (default: the builds' 3000000)")
    p.add_argument("--retries", type=int, default=10, help="tries per exchange before giving up (default 10)")
    p.add_argument("--timeout-scale", type=float, default=1.0, help="multiply every timeout (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    sub = p.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    sub.add_parser("info", help="the board's envelope and loaded model")
    sub.add_parser("status", help="the board's link counters and load state")
    load = sub.add_parser("load", help="load a model image into the board")
    load.add_argument("model", help="model image (.dhq)")
    load.add_argument("--force", action="store_true", help="load even if the board holds this model")
    render = sub.add_parser("render", help="render on the board and save the image")
    render.add_argument("--model", help="load this model first (skipped if the board holds it)")
    render.add_argument("--region", help="x0,y0,x1,y1 (half-open; default: the whole image)")
    render.add_argument("--out", required=True, help="PNG to write")
    return p


def _check_args(args):
    from dhq_rtl.model_image import load as load_model
    from dhq_rtl.outputs import check_output_file, is_png
    if args.baud is not None and args.baud <= 0:
        raise DhqError(f"--baud must be a positive integer, got {args.baud}")
    if args.retries < 1:
        raise DhqError(f"--retries must be at least 1, got {args.retries}")
    if not 0 < args.timeout_scale < 1e6:
        raise DhqError(f"--timeout-scale must be a positive number, got {args.timeout_scale}")
    model_path = getattr(args, "model", None)
    model = load_model(model_path) if model_path else None
    region = parse_region(args.region) if getattr(args, "region", None) else None
    if args.command == "render":
        # Checked before the board is asked: a bad path costs nothing.
        check_output_file(args.out, f"--out {args.out}", inputs={"--port": args.port, "--model": model_path},
                          keeps=(is_png, "a PNG"))
    return model, region


def main(argv=None):
    args = _parser().parse_args(argv)
    model, region = _check_args(args)
    log = (lambda msg: print(msg, file=sys.stderr))
    port = open_port(args.port, args.baud, log=log)
    try:
        board = Board(port, retries=args.retries, timeout_scale=args.timeout_scale,
                      progress=not args.no_progress)
        return _run(board, args, model, region)
    finally:
        port.close()


def _run(board, args, model, region):
    info = board.info()
    if args.command == "info":
        print(info.envelope.describe() if info.envelope is not None else info.describe())
        print(f"lanes {info.lanes}, clock {info.clock_hz / 1e6:g} MHz, UART {info.baud:,.0f} baud, "
              f"staging {info.staging_bytes} bytes")
        if info.model_valid:
            print(f"loaded model: {info.width}×{info.height}, {info.channels} channel(s), "
                  f"load image CRC {info.model_crc:08x}")
        else:
            print("no model loaded")
        return 0
    if args.command == "status":
        for k, v in board.status().items():
            print(f"{k}: {v}")
        return 0
    if model is not None:
        board.prepare(model)                      # refused here, before a byte of it is sent
        loaded, seconds, nbytes = board.load(model, force=getattr(args, "force", False))
        source = args.model
        if loaded:
            print(f"loaded {source}: {nbytes} bytes in {seconds:.3f} s ({nbytes / max(seconds, 1e-9) / 1e3:.1f} kB/s)")
        else:
            print(f"the board already holds {source}")
    if args.command == "render":
        from dhq_rtl.images import save_png
        img, seconds = board.render(region)
        info = board.info()
        save_png(img, args.out, info.envelope.pixel_bits if info.envelope is not None else info.pixel_bits)
        print(f"{img.shape[1]}×{img.shape[0]} pixels in {seconds:.3f} s → {args.out}")
    if board.retried or board.frames_bad:
        print(f"link: {board.retried} exchanges repeated, {board.frames_bad} damaged frames dropped",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_main(main)
