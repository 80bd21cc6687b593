"""A board in compiled, cycle-accurate simulation, behind a serial-port interface.

``python -m dhq_rtl.host --port sim://BOARD[/ENVELOPE]`` (``sim://BOARD/fp32``:
the board's float-core build, ``sim://BOARD/fixed``: its integer
``--fixed-model`` build) talks to a
:class:`SimulatedBoard` instead of a serial device: the board's
:class:`~dhq_rtl.gateware.top.LinkedCore` (the core, the command handler
and the UART, everything of :class:`~dhq_rtl.gateware.top.BoardTop` but the
PLL and the pins), built as a build for that board would build it (its
envelope, lanes, clock and baud: the real UART divisor), compiled with
Verilator (:mod:`.compiled`, cached) and driven by ``sim/board_driver.cpp``:
the host's bytes go onto the board's receive line bit by bit, the board's
transmit line is decoded the same way.

The MAC array's products are fabric multipliers in the simulation (the
same cycles and values as the ``SB_MAC16`` instances of an iCE40 build,
which Verilator cannot run; that path is checked against Yosys's cell
models in ``tests/test_mac.py``): :func:`simulated_top` makes the top.

Time is the board's: :meth:`SimulatedBoard.read` waits ``timeout``
*simulated* seconds (clock cycles at the board's clock), so timeouts,
retries and transfer times behave as on the hardware, at whatever speed the
simulation runs; :attr:`SimulatedBoard.seconds` is the simulated time
elapsed. While the simulated board is idle and no byte is on the line, the
driver skips the cycles instead of simulating them (nothing changes in
them). The board lives as long as the object: a model loaded into it stays
until :meth:`close`.
"""

import struct
import subprocess

from ..errors import DhqError, ToolchainError
from .compiled import CompiledSim

__all__ = ["SimulatedBoard", "parse_sim_port", "simulated_top", "SIM_SCHEME"]

SIM_SCHEME = "sim://"


def parse_sim_port(port):
    """``(board name, envelope name or None)`` of ``sim://BOARD[/ENVELOPE]``;
    ``None`` if ``port`` is not a simulation port."""
    if not isinstance(port, str) or not port.startswith(SIM_SCHEME):
        return None
    rest = port[len(SIM_SCHEME):]
    board, _, envelope = rest.partition("/")
    if not board:
        raise DhqError(f"--port {port}: name the board to simulate, e.g. sim://icebreaker")
    return board, envelope or None


def simulated_top(model, board, **kwargs):
    """The :class:`~dhq_rtl.gateware.top.BoardDesign` a simulation of
    ``board`` runs: the board's build, with ``model`` loaded at the start
    and generic multipliers (module docstring); ``kwargs`` as for
    :class:`~dhq_rtl.gateware.top.BoardTop`."""
    import dataclasses

    from ..gateware.top import BoardDesign
    return BoardDesign(model, dataclasses.replace(board, dsp="generic"), **kwargs)


class SimulatedBoard:
    """A board in simulation (module docstring), with the methods of a
    serial port the host uses: :meth:`write`, :meth:`read`, :meth:`close`.

    ``top``: the :class:`~dhq_rtl.gateware.top.BoardDesign` whose linked
    core is simulated (:func:`simulated_top`; its model is the one the board
    starts with). ``simulator``: the compiled simulator of ``top.linked``
    with the driver ``board_driver.cpp`` (default: its RTL's; a
    :class:`~.netlist.NetlistSim` runs the board's gates).
    """

    def __init__(self, top, *, log=None, simulator=None):
        self.top = top
        self.clock_hz = top.pll_hz
        self.baud = top.pll_hz / top.divisor
        self.divisor = top.divisor
        self.cycles = 0
        sim = simulator or CompiledSim(top.linked, driver="board_driver.cpp", log=log)
        self.binary = sim.build()
        self.proc = subprocess.Popen([str(self.binary), str(top.divisor)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    @property
    def seconds(self):
        """Simulated time so far."""
        return self.cycles / self.clock_hz

    def write(self, data):
        data = bytes(data)
        self._send(b"W" + struct.pack("<I", len(data)) + data)

    def read(self, n, timeout):
        """Up to ``n`` bytes from the board, waiting at most ``timeout``
        simulated seconds."""
        cycles = max(1, int(timeout * self.clock_hz))
        self._send(b"R" + struct.pack("<IQ", n, cycles))
        ran, count = struct.unpack("<QI", self._recv(12))
        self.cycles += ran
        return self._recv(count)

    def close(self):
        if self.proc is not None:
            try:
                self.proc.stdin.write(b"Q")
                self.proc.stdin.close()
            except OSError:
                pass
            self.proc.wait()
            self.proc = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _send(self, data):
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (OSError, AttributeError):
            raise ToolchainError(f"the board simulation stopped: {self._error()}") from None

    def _recv(self, n):
        data = self.proc.stdout.read(n) if n else b""
        if len(data) != n:
            raise ToolchainError(f"the board simulation stopped: {self._error()}")
        return data

    def _error(self):
        if self.proc is None:
            return "it was closed"
        self.proc.poll()
        err = self.proc.stderr.read().decode(errors="replace").strip() if self.proc.returncode is not None else ""
        return err.splitlines()[-1] if err else f"exit status {self.proc.returncode}"
