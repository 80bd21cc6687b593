"""A state machine's state as one flip-flop per state.

Amaranth's ``m.FSM`` keeps a binary state code, and Yosys does not re-encode
it (the register has an initial value), so every decision that depends on
the state first compares the code: a LUT level or two in front of each
enable. :class:`OneHotStates` gives each state its own flip-flop instead: a
state's decode is that register, and each flip-flop's next value depends
only on the transitions into and out of its own state.

Usage, inside ``elaborate``::

    states = OneHotStates(m, ("IDLE", "RUN"), init="IDLE", name="ctl")
    with states.state("IDLE"):
        with m.If(go):
            states.next = "RUN"
    with states.state("RUN"):
        ...

Unlike ``m.next`` in an ``m.FSM``, a state's body may set ``next`` at most
once per cycle (set it in exclusive branches: ``If``/``Elif``/``Else``):
each transition clears its state's flip-flop and sets its target's, so two
transitions taken in one cycle would leave two states active.
"""

from contextlib import contextmanager

from amaranth.hdl import Signal

__all__ = ["OneHotStates"]


class OneHotStates:
    """One flip-flop per state (module docstring).

    Parameters
    ----------
    m : Module
        The module whose ``sync`` domain holds the flip-flops.
    names : sequence of str
        The states, distinct.
    init : str
        The state at reset.
    name : str
        Prefix of the flip-flops' names (``<name>_<state>``).
    """

    def __init__(self, m, names, *, init, name):
        names = tuple(names)
        if not names or not all(isinstance(n, str) for n in names):
            raise TypeError("names must be a non-empty sequence of state names (str)")
        if len(set(names)) != len(names):
            raise ValueError(f"state names must be distinct, got {names!r}")
        if init not in names:
            raise ValueError(f"init must be one of the states {names!r}, got {init!r}")
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        self._m = m
        #: Each state's flip-flop, high while the machine is in that state.
        self.active = {n: Signal(init=(n == init), name=f"{name}_{n.lower()}") for n in names}
        self._current = None

    @contextmanager
    def state(self, name):
        """The body of state ``name`` (its statements apply while it is active)."""
        if name not in self.active:
            raise ValueError(f"unknown state {name!r}")
        if self._current is not None:
            raise RuntimeError(f"state {name!r} is opened inside state {self._current!r}")
        self._current = name
        try:
            with self._m.If(self.active[name]):
                yield
        finally:
            self._current = None

    @property
    def next(self):
        raise AttributeError("the next state is written, not read")

    @next.setter
    def next(self, name):
        if self._current is None:
            raise RuntimeError("the next state is set inside a state's body")
        if name not in self.active:
            raise ValueError(f"unknown state {name!r}")
        if name != self._current:
            self._m.d.sync += [self.active[self._current].eq(0), self.active[name].eq(1)]
