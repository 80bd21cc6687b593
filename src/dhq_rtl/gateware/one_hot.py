"""A state machine with one flip-flop per state, for the control blocks
whose decisions sit on the critical path.

Yosys re-encodes no Amaranth state machine (every register has an initial
value, which its FSM extraction refuses), so ``m.FSM`` stays binary and
testing a state costs a decoder: a LUT level, with the state register's
fanout, in front of every decision. :class:`OneHotStates` keeps a flip-flop
per state instead; a state's test is that flip-flop. Its states are
``m.If`` blocks of their own, so exactly one flip-flop must be set (the
initial state's at reset; every ``goto`` clears the current state's and
sets the next one's).

Usage, inside ``elaborate``::

    states = OneHotStates(m, ("IDLE", "RUN"), init="IDLE", name="ctl")
    with states.state("IDLE"):
        with m.If(go):
            states.goto("RUN")

Unlike ``m.next``, a state's body may move at most once per cycle (moves
in exclusive branches: ``If``/``Elif``/``Else``): each move clears its
state's flip-flop and sets its target's, so two moves taken in one cycle
would leave two states set.
"""

from contextlib import contextmanager

from amaranth.hdl import Signal

__all__ = ["OneHotStates"]


class OneHotStates:
    """``with states.state(name):`` holds what happens in state ``name``;
    ``states.goto(name)`` inside it moves there at the next cycle
    (``m.next``); ``on`` maps each state's name to its flip-flop
    (``<name>_<state>`` in the netlist). ``names``: the states, ``init`` the
    one at reset, ``domain`` the flip-flops' clock domain."""

    def __init__(self, m, names, init, *, name, domain="sync"):
        names = list(names)
        if not names or not all(isinstance(n, str) and n for n in names):
            raise TypeError(f"names must be non-empty strings, not {names!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"state names must differ: {names!r}")
        if init not in names:
            raise ValueError(f"initial state {init!r} is not one of {names!r}")
        self._m = m
        self._domain = domain
        self.on = {n: Signal(name=f"{name}_{n.lower()}", init=int(n == init)) for n in names}
        self._current = None

    @contextmanager
    def state(self, name):
        if name not in self.on:
            raise ValueError(f"no state {name!r}")
        with self._m.If(self.on[name]):
            outer, self._current = self._current, name
            try:
                yield
            finally:
                self._current = outer

    def ongoing(self, *names):
        """Whether the machine is in any of ``names`` (their flip-flops or-ed)."""
        bits = [self.on[n] for n in names]
        out = bits[0]
        for b in bits[1:]:
            out = out | b
        return out

    def goto(self, name):
        if self._current is None:
            raise RuntimeError("goto outside a state")
        if name not in self.on:
            raise ValueError(f"no state {name!r}")
        self._m.d[self._domain] += [self.on[self._current].eq(0), self.on[name].eq(1)]
