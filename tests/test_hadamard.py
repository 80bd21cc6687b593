import numpy as np
import pytest
import scipy.linalg

from dhq_rtl.hadamard import fwht_float, fwht_int, hadamard_matrix, log2_exact


@pytest.mark.parametrize("n", [1, 2, 4, 8, 16, 32, 64, 128, 256])
def test_matrix_matches_scipy(n):
    assert np.array_equal(hadamard_matrix(n), scipy.linalg.hadamard(n))


@pytest.mark.parametrize("n", [2, 8, 64, 256])
def test_orthogonal(n):
    h = hadamard_matrix(n)
    assert np.array_equal(h @ h.T, n * np.eye(n, dtype=np.int64))
    q = h / np.sqrt(n)
    assert np.allclose(q @ q.T, np.eye(n))


@pytest.mark.parametrize("n", [2, 4, 16, 64, 256])
def test_fwht_int_equals_matrix_product(n):
    rng = np.random.default_rng(n)
    x = rng.integers(-(1 << 15), 1 << 15, size=(50, n))
    assert np.array_equal(fwht_int(x), x @ scipy.linalg.hadamard(n).T)


@pytest.mark.parametrize("n", [2, 32, 128])
def test_fwht_int_corners_and_bit_growth(n):
    bits = 12
    hi, lo = (1 << (bits - 1)) - 1, -(1 << (bits - 1))
    corners = [np.full(n, hi), np.full(n, lo), np.zeros(n, dtype=np.int64),
               np.where(np.arange(n) % 2 == 0, hi, lo)]
    h = scipy.linalg.hadamard(n)
    limit = 1 << (bits - 1 + log2_exact(n))
    for x in corners:
        y = fwht_int(x)
        assert np.array_equal(y, h @ x)
        assert np.all(y >= -limit) and np.all(y < limit)  # exactly log2(n) bits of growth


def test_fwht_float_rotation_identity():
    rng = np.random.default_rng(1)
    w, x = rng.normal(size=(5, 16)), rng.normal(size=16)
    hq = hadamard_matrix(16) / 4.0
    assert np.allclose(w @ x, (w @ hq.T) @ fwht_float(x))


def test_rejects_non_power_of_two():
    with pytest.raises(ValueError, match="power of two"):
        hadamard_matrix(12)
    with pytest.raises(ValueError, match="power of two"):
        fwht_int(np.zeros(6))
