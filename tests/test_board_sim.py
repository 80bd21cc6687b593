"""End to end through ``sim://``: the host (:mod:`dhq_rtl.firmware.host`)
against the compiled, cycle-accurate simulation of a board's top (UART at bit
level, the real baud divisor). Every rendered pixel is compared with the
golden model."""

import numpy as np
import pytest

from dhq_rtl.boards import get_board
from dhq_rtl.envelope import Envelope, EnvelopeError
from dhq_rtl.firmware.host import Board, FaultyPort, LinkError, _SimPort
from dhq_rtl.golden import GoldenModel
from dhq_rtl.loader import image_crc, load_image
from dhq_rtl.rtlsim.board import SimulatedBoard, simulated_top
from dhq_rtl.synthetic import random_model

pytestmark = pytest.mark.slow

#: Width ≤ 16, three sine layers, images up to 24², RGB: small enough that a
#: load and a whole render take a fraction of a simulated second.
ENVELOPE = Envelope(name="e2e", max_width=16, max_layers=4, max_size=24, max_channels=3, weight_bits=8,
                    act_bits=8, lut_bits=8, mult_bits=8, phase_bits=10, max_shift=24, first_sum_bits=32,
                    lanes=8)


def _models():
    gray = random_model(width=16, depth=2, size=24, seed=1, rotate=False)
    rgb = random_model(width=8, depth=3, size=20, seed=3, channels=3, rotate=False, rotate_first=True,
                       act_midrise=True)
    start = random_model(width=4, depth=1, size=8, seed=5, rotate=False)
    return gray, rgb, start


@pytest.fixture(scope="module")
def board():
    """One simulated iCEBreaker in the test envelope, starting with a small model."""
    _, _, start = _models()
    with SimulatedBoard(simulated_top(start, get_board("icebreaker"), envelope=ENVELOPE)) as sim:
        yield _SimPort(sim), start


class _Counting:
    """A port that counts the bytes written and can be cut off after some."""

    def __init__(self, port, cut_after=None):
        self.port, self.cut_after, self.written = port, cut_after, 0
        self.latency, self.baud = port.latency, port.baud

    def write(self, data):
        if self.cut_after is not None and self.written + len(data) > self.cut_after:
            data = data[:max(0, self.cut_after - self.written)]
        self.written += len(data)
        self.port.write(data)

    def read(self, n, timeout):
        return self.port.read(n, timeout)

    def clock(self):
        return self.port.clock()

    def close(self):
        pass


def test_two_models_one_after_the_other_bit_exact(board):
    port, start = board
    gray, rgb, _ = _models()
    host = Board(port)
    assert np.array_equal(host.render()[0], GoldenModel(start).render())
    for model in (gray, rgb):
        loaded, seconds, nbytes = host.load(model)
        assert loaded and nbytes == len(load_image(host.info().plan(model)))
        info = host.info()
        assert (info.width, info.height, info.channels) == (model.width, model.height, model.channels)
        assert info.model_crc == image_crc(load_image(info.plan(model)))
        image, _ = host.render()
        assert np.array_equal(image, GoldenModel(model).render())
        # a region, and the model already there: no load
        assert host.load(model)[0] is False
        region = (3, 2, 17, 5)
        assert np.array_equal(host.render(region)[0], GoldenModel(model).render(region=region))
    assert host.retried == 0 and host.frames_bad == 0


@pytest.mark.parametrize("rate,seed", [(0.003, 1), (0.01, 2)])
def test_faults_both_ways_end_bit_exact(board, rate, seed):
    port, _ = board
    gray, rgb, _ = _models()
    faulty = FaultyPort(port, rate, seed=seed)
    host = Board(faulty, retries=20)
    for model in (rgb, gray):
        host.load(model, force=True)
        image, _ = host.render()
        assert np.array_equal(image, GoldenModel(model).render())
    assert sum(faulty.injected.values()) > 5 and all(faulty.injected.values())
    assert host.retried > 0


def test_a_hopeless_link_ends_with_a_clear_error(board):
    port, _ = board
    gray, _, _ = _models()
    host = Board(FaultyPort(port, 0.3, seed=3), retries=3)
    with pytest.raises(LinkError, match="did not answer|did not acknowledge|did not arrive"):
        host.load(gray, force=True)
        host.render()
    Board(port).info()                     # the board is fine: the next session talks to it


def test_a_load_cut_midway_leaves_the_previous_model(board):
    port, _ = board
    gray, rgb, _ = _models()
    Board(port).load(gray)
    cut = _Counting(port, cut_after=600)
    with pytest.raises(LinkError):
        Board(cut, retries=2).load(rgb)
    host = Board(port)
    info = host.info()
    assert info.model_crc == image_crc(load_image(info.plan(gray)))
    assert np.array_equal(host.render()[0], GoldenModel(gray).render())
    assert host.status()["loading"] == 1            # the cut load's staging stays unused


def test_out_of_envelope_models_are_refused_before_sending(board):
    port, _ = board
    counting = _Counting(port)
    host = Board(counting)
    host.info()
    sent = counting.written
    for model, limit in ((random_model(width=32, depth=2, size=16, seed=1, rotate=False), "hidden width 32"),
                         (random_model(width=8, depth=2, size=32, seed=1, rotate=False), "image 32×32"),
                         (random_model(width=8, depth=2, size=16, seed=1, lut_bits=8), "rotated"),
                         (random_model(width=8, depth=4, size=16, seed=1, rotate=False), "4 sine layers")):
        with pytest.raises(EnvelopeError, match=limit):
            host.load(model)
    assert counting.written == sent
