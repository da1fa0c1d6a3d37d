"""fastbp.arrays.aligned, and the arrays that loaders and checks hand the engine."""
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from fastbp import _checks, arrays, datasets


def off_line(shape, dtype, offset=16):
    """An array of shape and dtype whose data starts `offset` bytes after a
    cache line."""
    itemsize = np.dtype(dtype).itemsize
    raw = np.zeros(int(np.prod(shape)) * itemsize + 2 * arrays.CACHE_LINE, np.uint8)
    start = (-raw.ctypes.data) % arrays.CACHE_LINE + offset
    return raw[start:start + int(np.prod(shape)) * itemsize].view(dtype).reshape(shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_aligned_copies_an_array_off_a_line(dtype):
    X = off_line((7, 784), dtype)
    X[...] = np.arange(X.size).reshape(X.shape) / 7
    assert not arrays.is_aligned(X)
    A = arrays.aligned(X)
    assert A is not X and arrays.is_aligned(A) and A.flags.c_contiguous
    assert A.dtype == dtype
    assert_array_equal(A, X)
    # rows of 784 values are whole lines: each starts on one
    assert all(arrays.is_aligned(row) for row in A)


def test_aligned_returns_an_aligned_array_itself():
    A = arrays.aligned(np.arange(12.0).reshape(3, 4))
    assert arrays.aligned(A) is A
    assert arrays.aligned(A, np.float64) is A


def test_aligned_casts_as_astype_does():
    X = off_line((3, 5), np.float64)
    X[...] = np.array([[0.1, 1e300, -2.5, 3.0, 255.0]] * 3)
    with np.errstate(over="ignore"):
        A = arrays.aligned(X, np.float32)
        expected = X.astype(np.float32)
    assert arrays.is_aligned(A) and A.dtype == np.float32
    assert_array_equal(A, expected)
    B = arrays.aligned(np.arange(6, dtype=np.uint8).reshape(2, 3), np.float64)
    assert B.dtype == np.float64 and arrays.is_aligned(B)
    assert_array_equal(B, [[0, 1, 2], [3, 4, 5]])
    # a non-contiguous view: copied in C order
    C = arrays.aligned(np.arange(20.0).reshape(4, 5)[:, ::2])
    assert C.flags.c_contiguous and arrays.is_aligned(C)
    assert_array_equal(C, np.arange(20.0).reshape(4, 5)[:, ::2])


def test_checked_copies_start_on_a_line():
    """check_matrix copies only where it must (dtype, order), and its
    copies are aligned; an array it can take as it is, it takes."""
    X = off_line((4, 6), np.float64)
    X[...] = 0.5
    assert _checks.check_matrix("X", X, 6, np.float64) is X
    narrowed = _checks.check_matrix("X", X, 6, np.float32)
    assert narrowed.dtype == np.float32 and arrays.is_aligned(narrowed)
    transposed = _checks.check_matrix("X", np.asfortranarray(np.ones((4, 6))), 6, np.float64)
    assert transposed.flags.c_contiguous and arrays.is_aligned(transposed)
    with pytest.raises(ValueError, match="beyond the range of float32"):
        _checks.check_matrix("X", np.full((2, 6), 1e300), 6, np.float32)


def test_the_embedded_digits_start_on_a_line():
    X, y = datasets.load_digits()
    assert arrays.is_aligned(X) and X.dtype == np.float64
    assert X.min() == 0.0 and X.max() == 1.0
