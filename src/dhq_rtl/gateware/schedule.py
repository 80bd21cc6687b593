"""The core's schedule, cycle by cycle, without data: how many cycles a pixel takes.

The core's throughput is not one formula. Per pixel the MAC array runs one
job per layer ``i ≥ 1`` and the vector arbiter passes one vector per layer
(the layer-0 phases first) through post-processing; each job waits for its
input vector, each vector for its accumulators, and at most ``buffers − 1``
pixels are in flight. For the default model the MAC array is the bottleneck
(``Σ max(beats, load_words + 2)`` cycles); for narrow models the arbiter (one
vector at a time, ``n + 1`` cycles a vector, ``n₀ + 5`` for the phases), the
coupling between the two (the arbiter waits on a vector the MAC array is
still producing) or a pixel's latency over the pixels in flight sets the
rate, and the bounds interact.

:class:`ScheduleModel` therefore steps the core's control the way the RTL
does: the arbiter's state machine and registered flags, the buffer
allocator, the three queues (each a :class:`~.fifo.FlagFIFO`: an entry
written in cycle *t* is offered from *t + 2*), the job sequencer's staging,
vector copy, beat loop and credit, and the fixed latencies of the pipelines
(MAC array, scaler, sine table, butterfly, requantizer) taken from the plan.
It carries tokens, not values, and runs some 10⁵ cycles per second.
:func:`steady_cycles_per_pixel` is what :meth:`CorePlan.cycles_per_pixel`
reports; ``tests/test_core.py`` checks the model's pixel times against the
RTL in simulation, cycle for cycle, on many shapes.
"""

from collections import deque

__all__ = ["ScheduleModel", "steady_cycles_per_pixel", "steady_rate"]


class _Fifo:
    """A :class:`~.fifo.FlagFIFO`: memory words, an output register, its valid flag."""

    def __init__(self):
        self.mem = deque()
        self.out = None
        self.count = 0          # the registered memory count (``mne`` is ``count != 0``)

    @property
    def valid(self):
        return self.out is not None

    @property
    def level(self):
        return self.count + self.valid

    def step(self, push, pop):
        """One clock edge: ``push`` (a word or ``None``), ``pop`` (the
        output register is read); the output register reloads from memory."""
        if pop:
            assert self.out is not None
            self.out = None
        load = self.out is None and self.count > 0
        if load:
            self.out = self.mem.popleft()
        if push is not None:
            self.mem.append(push)
        self.count = len(self.mem)


class ScheduleModel:
    """The core's control for ``plan``, stepped cycle by cycle (module docstring).

    :meth:`run` renders ``pixels`` pixels of a region (the pixel sink always
    ready) and returns the cycle in which each pixel is taken from
    ``pixels``, counted as the simulators count (``start`` high in cycle 0).
    Every attribute that mirrors a register holds its value in the current
    cycle; :meth:`_cycle` computes the cycle's decisions from them, then
    applies the clock edge.
    """

    def __init__(self, plan):
        self.plan = plan
        m = plan.model
        self.n0 = plan.out_features[0]
        self.last = plan.n_layers - 1
        coord_bits = max(1, (plan.envelope.max_size - 1).bit_length())
        # Cycle in which the phase generator first offers a pixel: start is
        # registered (cycle 1), the generator leaves IDLE (cycle 2), then
        # 2·bits Horner passes of n₀ + 2 cycles, the base (n₀) and a gap of 3.
        self.coords_ready_at = 2 + 2 * coord_bits * (self.n0 + 2) + self.n0 + 3

    def run(self, pixels, *, region_pixels=None, max_cycles=None):
        """Cycles of the first ``pixels`` pixels of a region of
        ``region_pixels`` pixels (default: ``pixels``; ``float("inf")``: an
        endless one, whose pipeline never drains)."""
        plan = self.plan
        if max_cycles is None:
            max_cycles = 2000 + 20 * pixels * (plan.mac_cycles_per_pixel() + 4 * plan.out_max + 64)
        self._reset(pixels if region_pixels is None else region_pixels)
        for t in range(max_cycles):
            self._cycle(t)
            if len(self.beats) == pixels:
                return self.beats
        raise RuntimeError(f"schedule model: {len(self.beats)} of {pixels} pixels after {max_cycles} cycles")

    def _reset(self, pixels):
        plan = self.plan
        self.beats = []
        self.events = {}                   # cycle → [(kind, item)] of the fixed-latency pipelines
        # Region control and the phase generator.
        self.active = False
        self.outstanding = 0
        self.pixels_left = pixels          # pixels the generator has not been asked for
        self.coords_free_at = self.coords_ready_at
        self.phases_from = None            # first phase of the pixel requested last
        self.phase_index = 0
        # Activation buffers and the queues.
        self.free = set(range(plan.buffers))
        self.offer = None
        self.readyq, self.accq, self.outq = _Fifo(), _Fifo(), _Fifo()
        # Vector arbiter.
        self.state = "IDLE"
        self.vec = None                    # (layer, buffer)
        self.vec_index = 0
        self.vec_rem = 0
        self.vec_end = False
        self.coord_ok = False
        self.coord_next = False
        self.count = {"direct": 0, "rotated": 0}
        self.empty = {"direct": True, "rotated": True}
        self.bf_end = -10                  # cycle of the butterfly's last output so far
        # Job sequencer and accumulator credit.
        self.nxt = None                    # staged job: (buffer, layer)
        self.ld_run, self.ld_w = False, 0
        self.rd_last = False
        self.full = False
        self.job = None                    # the running job's layer
        self.job_buffer = None
        self.c_rem = self.k_rem = 0
        self.c_last = self.k_last = self.j_last = False
        self.credit = False
        self.inflight = 0

    def _at(self, t, kind, item):
        self.events.setdefault(t, []).append((kind, item))

    def _cycle(self, t):
        plan = self.plan
        events = self.events.pop(t, [])
        # Post-processing outputs of this cycle (fixed latencies).
        writes, pixel_push, readyq_push, acc_push = [], None, None, None
        for kind, item in events:
            if kind == "scaled":
                self._scaled(t, item)
            elif kind == "table":
                self._table(t, item, writes)
            elif kind == "write":
                writes.append(item)
            elif kind == "ready":
                readyq_push = item
            elif kind == "pixel":
                pixel_push = item
            elif kind == "acc":
                acc_push = item
        done = {p: sum(w[3] == p for w in writes) for p in ("direct", "rotated")}
        accepted = self.outq.valid            # the sink is always ready
        if accepted:
            self.beats.append(t)
        # The job sequencer's decisions.
        issue = self.job is not None and self.credit
        job_end = issue and self.j_last
        full = self.nxt is not None if plan.direct else self.full
        take = full and (self.job is None or job_end)
        stage = self.nxt is None or take
        reserve = issue and self.c_last
        if plan.direct:
            release = self.job_buffer if job_end else None
        else:
            release = self.nxt[0] if self.rd_last else None
        if reserve:
            self._at(t + 1 + plan.mac_latency, "acc", self.job)
        credit_next = self.accq.level + self.inflight + 3 < plan.accumulator_queue_depth
        # The arbiter's decisions.
        admit, taken_buffer, element, pop_acc = self._arbiter(t)
        # ---- clock edge
        for layer, index, buffer, _ in writes:
            if index == plan.out_features[layer] - 1:
                self._at(t + 1, "ready", (buffer, layer + 1))
        if element is not None:
            self._at(t + plan.scaler_latency, "scaled", element)
        self._sequencer_edge(take, job_end, issue, stage)
        self.credit = credit_next
        self.inflight += reserve - (acc_push is not None)
        self.readyq.step(readyq_push, stage and self.readyq.valid)
        self.accq.step(acc_push, pop_acc)
        self.outq.step(pixel_push, accepted)
        offer = min(self.free) if self.free else None
        if taken_buffer is not None:
            self.free.discard(taken_buffer)
        if release is not None:
            self.free.add(release)
        self.offer = offer
        self.outstanding += admit - accepted
        if t == 1:
            self.active = True
        for p in ("direct", "rotated"):
            entering = element is not None and element[0] != self.last and self._path(element[0]) == p
            self.empty[p] = self.count[p] == 0 and not entering
            self.count[p] += entering - done[p]

    def _path(self, layer):
        return "rotated" if self.plan.next_rotated[layer] else "direct"

    def _arbiter(self, t):
        """The arbiter's cycle (decisions and its own clock edge); returns
        ``(admit, buffer taken, element passed on, accumulator popped)``."""
        plan = self.plan
        admit, taken, element, pop = False, None, None, False
        coords_ready = self.pixels_left > 0 and t >= self.coords_free_at
        room = self.active and self.outstanding < plan.buffers - 1
        if self.coord_next:
            # The generator sees `next`: it is busy for n₀ cycles, its phases
            # start 4 cycles later.
            self.pixels_left -= 1
            self.phases_from = t + 4
            self.coords_free_at = t + self.n0 + 1

        head = self.accq.out
        state, coord_next = self.state, False
        if self.state == "IDLE":
            other = {"direct": "rotated", "rotated": "direct"}
            if head is not None:
                n = plan.out_features[head]
                if head == self.last or (self.offer is not None and self.empty[other[self._path(head)]]):
                    if head != self.last:
                        taken = self.offer
                    self.vec, self.vec_index, self.vec_rem, self.vec_end = (head, taken), 0, n - 1, n == 1
                    state = "MAC"
            elif self.coord_ok and self.offer is not None and self.empty[other[self._path(0)]]:
                taken, admit, coord_next = self.offer, True, True
                self.vec, self.phase_index, state = (0, taken), 0, "COORD"
        elif self.state == "MAC":
            if head is not None:
                pop = True
                element = (self.vec[0], self.vec_index, self.vec[1])
                self.vec_index += 1
                if self.vec_end:
                    state = "IDLE"
                self.vec_end = self.vec_rem == 1
                self.vec_rem -= 1
        elif t >= self.phases_from:   # COORD: one phase a cycle from 4 cycles after `next`
            element = (0, self.phase_index, self.vec[1])
            self.phase_index += 1
            if self.phase_index == self.n0:
                state = "IDLE"
        self.coord_ok = room and coords_ready and not admit
        self.coord_next = coord_next
        self.state = state
        return admit, taken, element, pop

    def _scaled(self, t, element):
        layer, index, buffer = element
        if layer == self.last:
            if index == self.plan.model.channels - 1:
                self._at(t + 1, "pixel", t)          # the pixel word, registered
        else:
            self._at(t + self.plan.lut_latency, "table", element)

    def _table(self, t, element, writes):
        plan = self.plan
        layer, index, buffer = element
        if not plan.next_rotated[layer]:
            writes.append((layer, index, buffer, "direct"))
        elif plan.rot_n < 2:
            self._at(t + plan.requant_latency, "write", (layer, index, buffer, "rotated"))
        elif index == plan.rot_n - 1:
            # The butterfly's outputs start log2(n) cycles after the vector's
            # last input and after the previous vector's outputs.
            start = max(t + plan.butterfly_stages, self.bf_end + 1)
            for j in range(plan.rot_n):
                self._at(start + j + plan.requant_latency, "write", (layer, j, buffer, "rotated"))
            self.bf_end = start + plan.rot_n - 1

    def _sequencer_edge(self, take, job_end, issue, stage):
        plan = self.plan
        rd_last = self.ld_run and self.ld_w == plan.load_words - 1
        staged = self.nxt
        if stage:
            self.nxt = self.readyq.out
            self.ld_run, self.ld_w = self.nxt is not None, 0
        elif self.ld_run:
            self.ld_w += 1
            self.ld_run = self.ld_w < plan.load_words
        if take:
            self.full = False
        elif self.rd_last:
            self.full = True
        self.rd_last = rd_last
        if take:
            self.job_buffer, layer = staged
            self.job = layer
            c1, k1 = plan.chunks[layer] == 1, plan.out_features[layer] == 1
            self.c_rem, self.k_rem = plan.chunks[layer] - 1, plan.out_features[layer] - 1
            self.c_last, self.k_last, self.j_last = c1, k1, c1 and k1
        elif job_end:
            self.job = None
        elif issue:
            c1 = plan.chunks[self.job] == 1
            if self.c_last:
                k_one = self.k_rem == 1
                self.c_rem, self.k_rem = plan.chunks[self.job] - 1, self.k_rem - 1
                self.c_last, self.k_last, self.j_last = c1, k_one, c1 and k_one
            else:
                c_one = self.c_rem == 1
                self.c_rem -= 1
                self.c_last, self.j_last = c_one, c_one and self.k_last


def _periodic_rate(intervals):
    """Mean interval over the shortest period the last half of ``intervals``
    repeats with, or ``None``."""
    tail = intervals[len(intervals) // 2:]
    for p in range(1, len(tail) // 3 + 1):
        if all(tail[k] == tail[k + p] for k in range(len(tail) - p)):
            return sum(tail[-p:]) / p
    return None


def steady_rate(times):
    """Steady-state cycles per pixel from pixel output cycles.

    The schedule is a deterministic finite-state machine, so once filled it
    repeats: the intervals between pixels become periodic. The rate is the
    mean interval over the shortest period that the last half of the
    intervals repeats with (exact: 138 for the default model, 201/7 for a
    shape whose pattern repeats every 7 pixels); without one, the
    least-squares slope over the last half of the pixels."""
    rate = _periodic_rate([b - a for a, b in zip(times, times[1:])])
    if rate is not None:
        return rate
    ys = [float(v) for v in times[len(times) // 2:]]
    if len(ys) < 2:
        raise ValueError("too few pixels for a steady-state rate")
    mx, my = (len(ys) - 1) / 2, sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in enumerate(ys)) / sum((x - mx) ** 2 for x in range(len(ys)))


def steady_cycles_per_pixel(plan):
    """Steady-state cycles per pixel of the core for ``plan``: the
    :class:`ScheduleModel` over an endless region, until the intervals
    between pixels repeat (64 pixels, else 256)."""
    for pixels in (64, 256):
        times = ScheduleModel(plan).run(pixels, region_pixels=float("inf"))
        rate = _periodic_rate([b - a for a, b in zip(times, times[1:])])
        if rate is not None:
            return rate
    return steady_rate(times)
