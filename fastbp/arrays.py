"""Arrays laid out the way the engine reads them fastest.

NumPy aligns its allocations to 16 bytes, not to a 64-byte cache line (a
large array typically starts 16 bytes into one).  When a row of samples
starts off a line (every row of 784 float32 or float64 pixels does, if the
array does), some of the kernels' vector loads from it span two lines: with
AVX2, half of them.  On W1 with AVX2, a one-epoch fit on inputs that start
on a line took 0.90-0.92 times as long as on the same values 16 bytes off
(README, Data sets).  fastbp's data loaders return such arrays, and ``fit``
makes its copies (where it must convert) so; :func:`aligned` makes one of
any array.
"""
import numpy as np

from . import _engine

# The alignment, in bytes: an x86-64 cache line, as _engine.aligned_empty
# allocates.
CACHE_LINE = _engine.CACHE_LINE_BYTES


def is_aligned(arr):
    """Whether arr's first element starts on a cache line."""
    return arr.ctypes.data % CACHE_LINE == 0


def aligned(value, dtype=None):
    """``value`` as a C-contiguous array of ``dtype`` (default: its own)
    whose first element starts on a 64-byte cache line: ``value`` itself
    if it already is one, else a copy (cast as ``ndarray.astype`` casts).

    Rows then start on a line too where a row's bytes are a multiple of 64
    (784 pixels of float32 or float64, say)."""
    src = np.asarray(value)
    dtype = src.dtype if dtype is None else np.dtype(dtype)
    if src.dtype == dtype and src.flags.c_contiguous and is_aligned(src):
        return src
    out = _engine.aligned_empty(src.shape, dtype)
    np.copyto(out, src, casting="unsafe")
    return out
