"""Each compiled kernel against NumPy, for both dtypes and several shapes.

The kernels are reached through their test twins in fastbp._engine and
fastbp._blas.  Expected values are computed in float64 by NumPy from the
same inputs; tolerances are rtol 1e-12 (float64) and 1e-5 (float32), with
an absolute floor of rtol times the size of the terms that were summed
where a sum can cancel.
"""
import ctypes
import mmap
import zlib

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from fastbp import _blas, _engine
from fastbp.activations import CODES as ACT
from fastbp.costs import CODES as COST

DTYPES = [np.float64, np.float32]
RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}
SHAPES = [(1, 1), (1, 7), (6, 1), (4, 9), (33, 17)]
ACTIVATIONS = ["sigmoid", "tanh", "relu", "linear"]


def rtol(dtype):
    return RTOL[np.dtype(dtype)]


def rng_for(*keys):
    """A generator seeded from the test's parameters, so that every case
    sees different but reproducible numbers."""
    return np.random.default_rng([zlib.crc32(repr(k).encode()) for k in keys])


def f_numpy(name, z):
    """The activation in float64, from z."""
    z = np.asarray(z, dtype=np.float64)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    return z.copy()


def slope_from_a(name, a):
    """f'(z) written with a = f(z), in float64 (the kernels' contract)."""
    a = np.asarray(a, dtype=np.float64)
    if name == "sigmoid":
        return a * (1.0 - a)
    if name == "tanh":
        return 1.0 - a * a
    if name == "relu":
        return (a > 0).astype(np.float64)
    return np.ones_like(a)


# ---------------------------------------------------------------------------
# Activation:  A <- f(A + 1 b^T), returns max |z|

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activate(name, shape, dtype):
    rng = rng_for("activate", name, shape, dtype)
    m, n = shape
    A = rng.uniform(-4, 4, size=shape).astype(dtype)
    b = rng.uniform(-2, 2, size=n).astype(dtype)
    z = (A + b).astype(np.float64)        # z rounded as the kernel rounds it
    expected = f_numpy(name, z)
    zmax = _engine._activate(ACT[name], A, b)
    assert A.dtype == dtype
    assert_allclose(A, expected, rtol=rtol(dtype), atol=rtol(dtype) * 1e-3)
    assert_allclose(zmax, np.max(np.abs(z)), rtol=rtol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activate_a_block_alike_whole_or_in_parts(name, dtype):
    """Blocks of up to 1024 values are activated as one run, larger ones row
    by row: the same operations on every value, so the same bits, here on
    a 40 x 30 block of a wider array (rows 37 values apart), whole (row by
    row) and as four blocks of 10 rows or a column block (one run each)."""
    rng = rng_for("activate parts", name, dtype)
    wide = rng.uniform(-6, 6, size=(40, 37)).astype(dtype)
    b = rng.uniform(-2, 2, size=30).astype(dtype)
    whole = wide.copy()
    zmax = _engine._activate(ACT[name], whole[:, 3:33], b)
    parts = wide.copy()
    zmaxes = [_engine._activate(ACT[name], parts[r:r + 10, 3:33], b) for r in range(0, 40, 10)]
    assert_array_equal(parts, whole)            # the columns outside untouched in both
    assert_array_equal(whole[:, :3], wide[:, :3])
    assert_array_equal(whole[:, 33:], wide[:, 33:])
    assert zmax == max(zmaxes)
    columns = wide.copy()
    _engine._activate(ACT[name], columns[:, 3:18], b[:15])
    _engine._activate(ACT[name], columns[:, 18:33], b[15:])
    assert_array_equal(columns, whole)
    z = (wide[:, 3:33] + b).astype(np.float64)
    assert_allclose(whole[:, 3:33], f_numpy(name, z), rtol=rtol(dtype), atol=rtol(dtype) * 1e-3)
    assert_allclose(zmax, np.max(np.abs(z)), rtol=rtol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activate_reports_nan(name, dtype):
    A = np.array([[0.5, np.nan, -1.0], [2.0, 0.0, 1.0]], dtype=dtype)
    b = np.zeros(3, dtype=dtype)
    assert np.isnan(_engine._activate(ACT[name], A, b))


@pytest.mark.parametrize("dtype, reach", [(np.float64, 760.0), (np.float32, 110.0)])
def test_sigmoid_over_its_whole_range(dtype, reach):
    """The sigmoid's e^-z is built as 2^k e^r with 2^k in two factors made
    from their bits: checked against NumPy's exp (in float64) across every
    k the type reaches, where the factors' exponents are at their ends,
    and where the result is subnormal or saturates."""
    z = np.linspace(-reach, reach, 400_001).astype(dtype)
    A = z.reshape(1, -1).copy()
    _engine._activate(ACT["sigmoid"], A, np.zeros(z.size, dtype))
    with np.errstate(over="ignore"):
        expected = 1.0 / (1.0 + np.exp(-z.astype(np.float64)))
    tiny = np.finfo(dtype).tiny
    normal = expected >= tiny
    assert_allclose(A[0, normal], expected[normal], rtol=rtol(dtype), atol=0)
    # below the smallest normal number (where e^-z overflows the type, as
    # in float32 for z < -88.7, the kernel gives 0)
    assert_allclose(A[0, ~normal], expected[~normal], rtol=0, atol=tiny)
    assert np.all(np.diff(A[0]) >= 0)           # and it never steps back


@pytest.mark.parametrize("dtype", DTYPES)
def test_activate_saturates_without_overflow(dtype):
    A = np.array([[-1000.0, 1000.0, -80.0, 80.0]], dtype=dtype)
    b = np.zeros(4, dtype=dtype)
    with np.errstate(over="ignore"):
        _engine._activate(ACT["sigmoid"], A, b)
    assert_allclose(A, [[0.0, 1.0, 0.0, 1.0]], rtol=rtol(dtype), atol=1e-30)
    assert np.all(np.isfinite(A))


# ---------------------------------------------------------------------------
# BP2's factor:  D <- D * f'(z), f' from A = f(z), returns max |D|

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_times_derivative(name, shape, dtype):
    rng = rng_for("times_derivative", name, shape, dtype)
    A = f_numpy(name, rng.uniform(-3, 3, size=shape)).astype(dtype)
    D = rng.standard_normal(shape).astype(dtype)
    expected = D.astype(np.float64) * slope_from_a(name, A)
    dmax = _engine._times_derivative(ACT[name], D, A)
    assert_allclose(D, expected, rtol=rtol(dtype), atol=1e-300)
    assert_allclose(dmax, np.max(np.abs(expected)), rtol=rtol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_delta_kernels_alike_whole_or_in_parts(name, dtype):
    """BP2's factor and BP1 work on rows apart (a column slice, as a thread's
    block of a split layer), on contiguous rows as one run, on blocks of
    up to 1024 values as one run in scratch rows, on larger ones row by
    row: the same bits every way, and no value outside the block written.
    D, A and Y have rows 37, 41 and 43 values apart."""
    rng = rng_for("delta parts", name, dtype)
    A = f_numpy(name, rng.uniform(-3, 3, size=(40, 41))).astype(dtype)[:, 2:39]
    A[A <= 0.02] = 0.02                         # (0, 1) for the cross-entropy
    A[A >= 0.98] = 0.98
    D0 = rng.standard_normal((40, 37)).astype(dtype)
    Y = rng.uniform(0, 1, size=(40, 43)).astype(dtype)[:, 6:43]
    cols = slice(3, 33)
    whole = D0.copy()                           # 1200 values: row by row
    dmax = _engine._times_derivative(ACT[name], whole[:, cols], A[:, cols])
    assert_array_equal(whole[:, :3], D0[:, :3])
    assert_array_equal(whole[:, 33:], D0[:, 33:])
    parts = D0.copy()                           # 300 values each: one run
    dmaxes = [_engine._times_derivative(ACT[name], parts[r:r + 10, cols], A[r:r + 10, cols])
              for r in range(0, 40, 10)]
    assert_array_equal(parts, whole)
    assert dmax == max(dmaxes)
    packed = np.ascontiguousarray(D0[:, cols])  # contiguous rows: one run
    _engine._times_derivative(ACT[name], packed, np.ascontiguousarray(A[:, cols]))
    assert_array_equal(packed, whole[:, cols])
    assert_allclose(whole[:, cols], D0[:, cols].astype(np.float64) * slope_from_a(name, A[:, cols]),
                    rtol=rtol(dtype), atol=1e-300)
    for cost in ["quadratic", "cross-entropy"]:
        if cost == "cross-entropy" and name != "sigmoid":
            continue
        out = D0.copy()
        dmax = _engine._output_error(COST[cost], ACT[name], out[:, cols], A[:, cols],
                                     Y[:, cols])
        assert_array_equal(out[:, :3], D0[:, :3])
        assert_array_equal(out[:, 33:], D0[:, 33:])
        packed = np.empty((40, 30), dtype=dtype)
        dmax_packed = _engine._output_error(COST[cost], ACT[name], packed,
                                            np.ascontiguousarray(A[:, cols]),
                                            np.ascontiguousarray(Y[:, cols]))
        assert_array_equal(packed, out[:, cols])
        assert dmax_packed == dmax
        assert_allclose(out[:, cols], expected_output_error(cost, name, A[:, cols], Y[:, cols]),
                        rtol=rtol(dtype), atol=1e-300)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_times_derivative_reports_nan(name, dtype):
    A = np.full((2, 3), 0.5, dtype=dtype)
    D = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, np.nan]], dtype=dtype)
    assert np.isnan(_engine._times_derivative(ACT[name], D, A))


# ---------------------------------------------------------------------------
# BP1:  D <- dC/da * f'(z);  cross-entropy + sigmoid: D = A - Y

def expected_output_error(cost, name, A, Y):
    A = A.astype(np.float64)
    Y = Y.astype(np.float64)
    if cost == "quadratic":
        return (A - Y) * slope_from_a(name, A)
    # dC/da = (a - y) / (a (1 - a)) times sigma'(z) = a (1 - a)
    return (A - Y) / (A * (1.0 - A)) * slope_from_a(name, A)


# The engine takes the cross-entropy with a sigmoid output only.
COST_OUTPUTS = ([("quadratic", name) for name in ACTIVATIONS]
                + [("cross-entropy", "sigmoid")])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("cost, name", COST_OUTPUTS)
def test_output_error(cost, name, shape, dtype):
    rng = rng_for("output_error", cost, name, shape, dtype)
    if cost == "cross-entropy":
        # activations in (0, 1), where ln a and ln(1 - a) are defined
        A = rng.uniform(0.05, 0.95, size=shape).astype(dtype)
    else:
        A = f_numpy(name, rng.uniform(-3, 3, size=shape)).astype(dtype)
    Y = rng.uniform(0, 1, size=shape).astype(dtype)
    D = np.full(shape, np.nan, dtype=dtype)       # every entry must be written
    expected = expected_output_error(cost, name, A, Y)
    dmax = _engine._output_error(COST[cost], ACT[name], D, A, Y)
    assert_allclose(D, expected, rtol=rtol(dtype), atol=1e-300)
    assert_allclose(dmax, np.max(np.abs(expected)), rtol=rtol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cost", ["quadratic", "cross-entropy"])
def test_output_error_reports_nan(cost, dtype):
    A = np.array([[0.5, np.nan]], dtype=dtype)
    Y = np.array([[1.0, 0.0]], dtype=dtype)
    D = np.zeros((1, 2), dtype=dtype)
    assert np.isnan(_engine._output_error(COST[cost], ACT["sigmoid"], D, A, Y))


# ---------------------------------------------------------------------------
# BP3:  b <- beta b + alpha (column sums of D)

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (-0.3, 1.0), (2.5, -0.75), (0.0, 1.0)])
def test_bias_update(alpha, beta, shape, dtype):
    rng = rng_for("bias_update", alpha, beta, shape, dtype)
    m, n = shape
    D = rng.standard_normal(shape).astype(dtype)
    b = rng.standard_normal(n).astype(dtype)
    b64, D64 = b.astype(np.float64), D.astype(np.float64)
    expected = beta * b64 + alpha * D64.sum(axis=0)
    scale = np.abs(beta * b64) + abs(alpha) * np.abs(D64).sum(axis=0)
    _engine._bias_update(b, D, alpha, beta)
    assert b.dtype == dtype
    assert_allclose(b, expected, rtol=rtol(dtype), atol=rtol(dtype) * scale.max())


@pytest.mark.parametrize("dtype", DTYPES)
def test_bias_update_beta_zero(dtype):
    # beta = 0: the old (finite) b is scaled away
    D = np.arange(6, dtype=dtype).reshape(3, 2)
    b = np.array([7.0, -7.0], dtype=dtype)
    _engine._bias_update(b, D, 0.5, 0.0)
    assert_allclose(b, 0.5 * D.astype(np.float64).sum(axis=0), rtol=rtol(dtype))


# ---------------------------------------------------------------------------
# Gather the rows of a mini-batch

@pytest.mark.parametrize("source", DTYPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (5, 1), (1, 8), (20, 13)])
def test_gather_rows(shape, dtype, source):
    """Rows of a matrix of either dtype, converted to the engine's as NumPy does."""
    rng = rng_for("gather", shape, dtype, source)
    X = rng.standard_normal(shape).astype(source)
    rows = rng.integers(0, shape[0], size=2 * shape[0] + 1).astype(np.intp)
    rows[0] = shape[0] - 1
    out = np.full((rows.size, shape[1]), np.nan, dtype=dtype)
    _engine._gather_rows(out, _engine.matrix_samples(X, X[:, :1].copy()), rows)
    assert_array_equal(out, X[rows].astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_gather_rows_permutation(dtype):
    X = np.arange(40, dtype=dtype).reshape(10, 4)
    rows = np.random.default_rng(3).permutation(10).astype(np.intp)
    out = np.empty_like(X)
    _engine._gather_rows(out, _engine.matrix_samples(X, X), rows)
    assert_array_equal(out, X[rows])


@pytest.mark.parametrize("source", DTYPES)
def test_gather_rows_from_pairs(source):
    """The book's column vectors, each its own array, read where they lie."""
    rng = np.random.default_rng(8)
    X = rng.standard_normal((12, 5)).astype(source)
    pairs = [(x.reshape(5, 1).copy(), np.ones((2, 1))) for x in X]
    data = _engine.pair_samples(pairs, 5, 2)
    rows = rng.permutation(12).astype(np.intp)
    out = np.empty((12, 5))
    _engine._gather_rows(out, data, rows)
    assert_array_equal(out, X[rows].astype(np.float64))


def test_gather_rows_refuses_a_sample_outside_the_data():
    X = np.zeros((3, 2))
    with pytest.raises(IndexError):
        _engine._gather_rows(np.empty((1, 2)), _engine.matrix_samples(X, X),
                             np.array([3], dtype=np.intp))


# ---------------------------------------------------------------------------
# max |x|, NaN-propagating

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 7, 64, 1001])
def test_max_abs(n, dtype):
    x = rng_for("max_abs", n, dtype).standard_normal(n).astype(dtype)
    assert _engine._max_abs(x) == np.max(np.abs(x))
    assert _engine._max_abs(-np.abs(x)) == np.max(np.abs(x))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("where", [0, 3, 9])
def test_max_abs_propagates_nan(where, dtype):
    x = np.linspace(-5, 5, 10).astype(dtype)
    x[where] = np.nan
    assert np.isnan(_engine._max_abs(x))


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_abs_nan_not_forgotten(dtype):
    # a NaN followed by larger values still poisons the result
    x = np.array([np.nan, 1.0, 1e30, -np.inf], dtype=dtype)
    assert np.isnan(_engine._max_abs(x))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", [3, 6000])     # 6000 x 784 values: split over two threads
@pytest.mark.parametrize("where", ["none", "first", "last", "middle", "row end", "target"])
def test_samples_max_abs(rows, where, dtype):
    """max |x| over a whole training set, each row read where it lies (the
    pairs in a shuffled order, as a list is after the book's SGD), and a
    NaN wherever it is: in the first or last row of the list, in the first
    of the second thread's half, at a row's last value, or in a target."""
    rng = rng_for("samples max", rows, where, dtype)
    X = rng.standard_normal((rows, 784)).astype(dtype)
    Y = rng.standard_normal((rows, 2))
    order = rng.permutation(rows)               # the pairs' order in the list
    spots = {"first": (order[0], 5), "last": (order[-1], 5),
             "middle": (order[rows // 2], 3), "row end": (order[rows // 3], 783)}
    if where in spots:
        X[spots[where]] = np.nan
    if where == "target":
        Y[order[rows // 2], 1] = np.nan
    expected = np.nan if where in spots else np.max(np.abs(X))
    assert_array_equal(_engine.matrix_samples(X, Y).max_abs(), expected)
    pairs = [(X[i].reshape(-1, 1), Y[i].reshape(-1, 1)) for i in order]
    data = _engine.pair_samples(pairs, 784, 2)
    if where == "none":
        assert data.max_abs() == expected
        assert data.max_abs_targets() == np.max(np.abs(Y))
    elif where == "target":
        assert data is None
        data = _engine.matrix_samples(X, Y)
        assert data.max_abs() == expected
        assert np.isnan(data.max_abs_targets())
    else:
        assert data is None         # refused: the stacking path reports the NaN


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form", ["some rows", "a row twice", "two matrices", "wider rows"])
def test_samples_max_abs_reads_only_the_rows_given(form, dtype):
    """Where the pairs' rows are all the rows of one matrix, the scan reads
    that matrix from end to end; where they are not -- a subset of its
    rows, a row twice, rows of two matrices, rows that are part of a wider
    matrix's -- it reads only them: a NaN next to them is not theirs."""
    rng = rng_for("samples max rows", form, dtype)
    X = rng.standard_normal((400, 800)).astype(dtype)
    Y = rng.standard_normal((400, 2))
    X[7, 3] = np.nan                            # outside the rows given (but "wider rows")
    X[:, 784:] = np.nan                         # outside every row given
    M = np.ascontiguousarray(X[:, :784])
    keep = [i for i in rng.permutation(400) if i != 7]
    rows = {"some rows": [M[i] for i in keep],
            "a row twice": [M[i] for i in keep] + [M[keep[0]]],
            "two matrices": [M[i] for i in keep] + [np.full(784, 0.5, dtype)],
            "wider rows": [X[i, :784] for i in keep]}[form]
    pairs = [(r.reshape(-1, 1), Y[0].reshape(-1, 1)) for r in rows]
    data = _engine.pair_samples(pairs, 784, 2)
    assert data is not None
    expected = max(np.max(np.abs(r)) for r in rows)
    assert data.max_abs() == expected
    # the same rows in the order of the matrix, and all of its rows
    whole = [(r.reshape(-1, 1), Y[0].reshape(-1, 1)) for r in M[8:]]
    assert _engine.pair_samples(whole, 784, 2).max_abs() == np.max(np.abs(M[8:]))
    assert _engine.pair_samples([(r.reshape(-1, 1), Y[0].reshape(-1, 1)) for r in M],
                                784, 2) is None


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("where", ["none", "first half", "second half", "last"])
def test_max_abs_of_a_large_array(where, dtype):
    """4,700,001 values (over the size that splits the pass over two
    threads, and odd): the largest and a NaN count wherever they are."""
    x = rng_for("max_abs large", where, dtype).standard_normal(4_700_001).astype(dtype)
    spot = {"none": None, "first half": 17, "second half": 3_000_000, "last": -1}[where]
    if spot is None:
        assert _engine._max_abs(x) == np.max(np.abs(x))
        return
    x[spot] = -1e30
    assert _engine._max_abs(x) == np.abs(x[spot])
    x[spot] = np.nan
    assert np.isnan(_engine._max_abs(x))


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_abs_inf_and_zero(dtype):
    assert _engine._max_abs(np.zeros(5, dtype=dtype)) == 0.0
    x = np.array([1.0, -np.inf, 2.0], dtype=dtype)
    assert _engine._max_abs(x) == np.inf


# ---------------------------------------------------------------------------
# The cost summed over the samples

def expected_cost(cost, A, Y):
    """Quadratic in float64; cross-entropy per term in the inputs' dtype,
    passed through nan_to_num in that dtype, then summed in float64."""
    if cost == "quadratic":
        return 0.5 * float(np.sum((A.astype(np.float64) - Y.astype(np.float64)) ** 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = -Y * np.log(A) - (1 - Y) * np.log(1 - A)
    return float(np.sum(np.nan_to_num(terms).astype(np.float64)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("cost", ["quadratic", "cross-entropy"])
def test_cost_total(cost, shape, dtype):
    rng = rng_for("cost", cost, shape, dtype)
    A = rng.uniform(0.01, 0.99, size=shape).astype(dtype)
    Y = (rng.uniform(size=shape) < 0.4).astype(dtype)
    assert_allclose(_engine.cost_total(COST[cost], A, Y), expected_cost(cost, A, Y),
                    rtol=rtol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_cost_total_cross_entropy_edges(dtype):
    # a = y = 1 and a = y = 0 give 0 * ln 0 = NaN -> 0
    A = np.array([[1.0, 0.0, 0.25]], dtype=dtype)
    Y = np.array([[1.0, 0.0, 1.0]], dtype=dtype)
    got = _engine.cost_total(COST["cross-entropy"], A, Y)
    assert_allclose(got, expected_cost("cross-entropy", A, Y), rtol=rtol(dtype))
    assert_allclose(got, -np.log(0.25), rtol=rtol(dtype))
    # a = 0 with y = 1: +inf -> the largest finite value of the dtype
    A = np.array([[0.0, 0.5]], dtype=dtype)
    Y = np.array([[1.0, 0.5]], dtype=dtype)
    got = _engine.cost_total(COST["cross-entropy"], A, Y)
    assert np.isfinite(got)
    assert_allclose(got, expected_cost("cross-entropy", A, Y), rtol=rtol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_cost_total_empty_is_zero(dtype):
    A = np.zeros((0, 3), dtype=dtype)
    assert _engine.cost_total(COST["quadratic"], A, A) == 0.0


# ---------------------------------------------------------------------------
# Row argmax (first maximum on ties, like numpy.argmax)

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_argmax(shape, dtype):
    rng = rng_for("argmax", shape, dtype)
    A = rng.integers(0, 3, size=shape).astype(dtype)      # many ties
    got = _engine.argmax(A)
    assert got.dtype == np.intp
    assert_array_equal(got, np.argmax(A, axis=1))
    A = rng.standard_normal(shape).astype(dtype)
    assert_array_equal(_engine.argmax(A), np.argmax(A, axis=1))


# ---------------------------------------------------------------------------
# Row-major gemm:  C <- alpha op(A) op(B) + beta C
# (alpha comes before the arrays in the signature, so Cython's dispatch
# would pick the double version from a Python float: the version is chosen
# explicitly.)

def gemm(dtype):
    return _blas._gemm["float" if np.dtype(dtype) == np.float32 else "double"]


GEMM_SHAPES = [(1, 1, 1), (1, 5, 3), (4, 1, 6), (3, 5, 7), (17, 4, 9), (64, 33, 65)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mnk", GEMM_SHAPES)
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (-0.5, 1.0), (2.0, -1.5)])
def test_gemm(alpha, beta, trans_b, trans_a, mnk, dtype):
    m, n, k = mnk
    rng = rng_for("gemm", alpha, beta, trans_a, trans_b, mnk, dtype)
    opA = rng.standard_normal((m, k))
    opB = rng.standard_normal((k, n))
    A = np.ascontiguousarray(opA.T if trans_a else opA, dtype=dtype)
    B = np.ascontiguousarray(opB.T if trans_b else opB, dtype=dtype)
    C = rng.standard_normal((m, n)).astype(dtype)
    A64 = (A.T if trans_a else A).astype(np.float64)
    B64 = (B.T if trans_b else B).astype(np.float64)
    C64 = C.astype(np.float64)
    expected = alpha * (A64 @ B64) + beta * C64
    scale = abs(alpha) * (np.abs(A64) @ np.abs(B64)) + abs(beta) * np.abs(C64)
    gemm(dtype)(trans_a, trans_b, alpha, A, B, beta, C)
    assert C.dtype == dtype
    assert_allclose(C, expected, rtol=rtol(dtype), atol=rtol(dtype) * scale.max())


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_beta_zero_ignores_old_c(dtype):
    # The engine writes products into uninitialised buffers with beta = 0:
    # whatever C held (even NaN) must not leak into the result.
    A = np.arange(6, dtype=dtype).reshape(2, 3)
    B = np.arange(12, dtype=dtype).reshape(3, 4)
    C = np.full((2, 4), np.nan, dtype=dtype)
    gemm(dtype)(False, False, 1.0, A, B, 0.0, C)
    assert_allclose(C, A.astype(np.float64) @ B.astype(np.float64), rtol=rtol(dtype))


def test_gemm_refuses_mismatched_shapes():
    A = np.ones((2, 3))
    B = np.ones((4, 5))
    C = np.zeros((2, 5))
    with pytest.raises(ValueError):
        _blas._gemm(False, False, 1.0, A, B, 0.0, C)


# ---------------------------------------------------------------------------
# The small products (csrc/fastbp_small_gemm.c) of narrow layers, float32
# and float64, in each variant this processor runs (AVX-512, AVX2): the
# feedforward and BP4 products take their inputs through a table of row
# pointers (the first layer's, rows of the data set where they lie), BP2's
# a block of columns.

needs_small_gemm = pytest.mark.skipif(not _engine.SMALL_GEMM,
                                      reason="the small kernels need AVX2 or AVX-512")
# Every variant this processor runs: an AVX-512 machine checks both.
each_variant = pytest.mark.parametrize("variant", _engine._small_variants())

# (m samples, n rows of W, k inputs): W1's blocks (16 and 14 rows of 784),
# every remainder of the tiles (AVX-512: 5 samples x 4 rows, 4 rows x 4
# vectors of columns; AVX2: 4 x 3 and 4 x 3) and of a vector (8 doubles,
# 16 floats; AVX2: 4 and 8), inputs shorter than a vector, the largest
# shapes the engine gives them (32 samples, 64 rows).
SMALL_SHAPES = [(1, 1, 1), (10, 16, 784), (10, 14, 784), (3, 5, 13), (7, 9, 8),
                (12, 33, 40), (5, 4, 17), (11, 30, 100), (2, 3, 5), (32, 64, 785),
                (6, 7, 48), (4, 6, 56)]

# Tolerances are rtol(dtype) times the sum of the products' magnitudes: the
# kernels against the same products in float64 arithmetic (NumPy's, on the
# same inputs).


def small_problem(m, n, k, seed, dtype=np.float64):
    """Inputs X (more rows than the mini-batch), the mini-batch's rows of X
    in shuffled order, W (n x k) and D (m x n), in dtype."""
    rng = rng_for("small", m, n, k, seed)
    X = rng.standard_normal((3 * m + 5, k))
    X[rng.random(X.shape) < 0.4] = 0.0         # zeros, like pixels
    rows = rng.permutation(X.shape[0])[:m].astype(np.intp)
    return (X.astype(dtype), rows, rng.standard_normal((n, k)).astype(dtype),
            rng.standard_normal((m, n)).astype(dtype))


def f64(a):
    return np.asarray(a, dtype=np.float64)


@needs_small_gemm
@each_variant
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mnk", SMALL_SHAPES)
def test_small_feedforward_product(mnk, dtype, variant):
    m, n, k = mnk
    X, rows, W, _ = small_problem(m, n, k, 0, dtype)
    Z = _engine._small_gemm_nt(X, rows, W, variant=variant)
    assert Z.dtype == dtype
    scale = np.abs(f64(X[rows])) @ np.abs(f64(W)).T
    assert_allclose(Z, f64(X[rows]) @ f64(W).T, rtol=0, atol=rtol(dtype) * scale.max())


@needs_small_gemm
@each_variant
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mnk", SMALL_SHAPES)
@pytest.mark.parametrize("alpha,beta", [(-0.3, 1.0), (2.0, 0.999), (1.0, 0.0)])
def test_small_bp4_step(mnk, alpha, beta, dtype, variant):
    m, n, k = mnk
    X, rows, W, D = small_problem(m, n, k, 1, dtype)
    expected = beta * f64(W) + alpha * (f64(D).T @ f64(X[rows]))
    scale = np.abs(beta * f64(W)) + abs(alpha) * (np.abs(f64(D)).T @ np.abs(f64(X[rows])))
    _engine._small_gemm_tn(alpha, D, X, rows, beta, W, variant=variant)
    assert W.dtype == dtype
    assert_allclose(W, expected, rtol=0, atol=rtol(dtype) * scale.max())


@needs_small_gemm
@each_variant
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mnk", [(10, 30, 784), (7, 13, 21), (32, 64, 100)])
def test_small_products_give_the_same_bits_in_blocks_of_rows(mnk, dtype, variant):
    # The engine's threads each take a block of rows of W: every result
    # must be computed the same way wherever the block boundary falls.  And
    # the feedforward kernel cuts the samples into tiles by their count (10
    # into 4, 3, 3 with AVX2's): a sample's products must not depend on it.
    m, n, k = mnk
    X, rows, W, D = small_problem(m, n, k, 2, dtype)
    whole = _engine._small_gemm_nt(X, rows, W, variant=variant)
    for cut in range(1, m):
        parts = [_engine._small_gemm_nt(X, np.ascontiguousarray(part), W, variant=variant)
                 for part in (rows[:cut], rows[cut:])]
        assert_array_equal(np.vstack(parts), whole)
    stepped = W.copy()
    _engine._small_gemm_tn(-0.7, D, X, rows, 1.0, stepped, variant=variant)
    for cut in range(1, n):
        parts = [_engine._small_gemm_nt(X, rows, np.ascontiguousarray(part), variant=variant)
                 for part in (W[:cut], W[cut:])]
        assert_array_equal(np.hstack(parts), whole)
        top, bottom = W[:cut].copy(), W[cut:].copy()
        for part, d in ((top, D[:, :cut]), (bottom, D[:, cut:])):
            _engine._small_gemm_tn(-0.7, np.ascontiguousarray(d), X, rows, 1.0, part,
                                   variant=variant)
        assert_array_equal(np.vstack([top, bottom]), stepped)


# (m samples, k neurons in the layer above, n columns, block lo:hi of them)
NN_SHAPES = [(1, 1, 1, 0, 1), (10, 10, 30, 0, 16), (10, 10, 30, 16, 30), (7, 3, 40, 5, 38),
             (32, 48, 96, 0, 96), (11, 20, 17, 1, 17), (5, 1, 64, 32, 64), (6, 9, 33, 0, 33)]


@needs_small_gemm
@each_variant
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", NN_SHAPES)
def test_small_bp2_product_writes_its_block_only(shape, dtype, variant):
    m, k, n, lo, hi = shape
    rng = rng_for("small-nn", *shape)
    D = rng.standard_normal((m, k)).astype(dtype)
    W = rng.standard_normal((k, n)).astype(dtype)
    out = np.full((m, n), np.nan, dtype=dtype)
    _engine._small_gemm_nn(D, W, lo, hi, out, variant=variant)
    scale = np.abs(f64(D)) @ np.abs(f64(W[:, lo:hi]))
    assert_allclose(out[:, lo:hi], f64(D) @ f64(W[:, lo:hi]), rtol=0,
                    atol=rtol(dtype) * scale.max())
    assert np.isnan(out[:, :lo]).all() and np.isnan(out[:, hi:]).all()


@needs_small_gemm
@each_variant
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_small_bp2_product_gives_the_same_bits_in_blocks_of_columns(dtype, variant):
    m, k, n = 10, 12, 45
    rng = rng_for("small-nn-blocks", m, k, n)
    D = rng.standard_normal((m, k)).astype(dtype)
    W = rng.standard_normal((k, n)).astype(dtype)
    whole = np.empty((m, n), dtype=dtype)
    _engine._small_gemm_nn(D, W, 0, n, whole, variant=variant)
    for cut in range(1, n):
        parts = np.empty((m, n), dtype=dtype)
        _engine._small_gemm_nn(D, W, 0, cut, parts, variant=variant)
        _engine._small_gemm_nn(D, W, cut, n, parts, variant=variant)
        assert_array_equal(parts, whole)


class GuardedArrays:
    """Arrays that end where a page the process may not touch begins, so
    that a kernel reading or writing one value past an array's end stops
    the process (SIGSEGV) instead of passing unseen."""

    PAGE = mmap.PAGESIZE

    def __init__(self):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        self.keep = []

    def __call__(self, values):
        values = np.ascontiguousarray(values)
        pages = -(-values.nbytes // self.PAGE) + 1
        buf = mmap.mmap(-1, pages * self.PAGE)
        base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
        guard = base + (pages - 1) * self.PAGE
        assert self.libc.mprotect(guard, self.PAGE, 0) == 0      # PROT_NONE
        out = np.frombuffer(buf, dtype=values.dtype, count=values.size,
                            offset=(pages - 1) * self.PAGE - values.nbytes)
        out = out.reshape(values.shape)
        out[...] = values
        self.keep.append(buf)
        return out


@needs_small_gemm
@each_variant
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_small_kernels_touch_nothing_past_their_arrays(dtype, variant):
    # Row ends are masked vector steps: every array here ends at a guard
    # page, with rows of 1 to 33 values (none, part of or several vectors).
    guarded = GuardedArrays()
    rng = rng_for("small-guard", np.dtype(dtype).name)
    for m in (1, 5, 10, 32):
        for n in (1, 3, 16, 17):
            for k in (1, 7, 8, 15, 16, 17, 30, 33):
                X = guarded(rng.standard_normal((m, k)).astype(dtype))
                rows = np.arange(m, dtype=np.intp)
                W = guarded(rng.standard_normal((n, k)).astype(dtype))
                D = guarded(rng.standard_normal((m, n)).astype(dtype))
                tol = rtol(dtype)
                scale = np.abs(f64(X)) @ np.abs(f64(W)).T
                assert_allclose(_engine._small_gemm_nt(X, rows, W, variant=variant),
                                f64(X) @ f64(W).T, rtol=0, atol=tol * scale.max())
                expected = f64(W) - 0.5 * f64(D).T @ f64(X)
                scale = np.abs(f64(W)) + 0.5 * np.abs(f64(D)).T @ np.abs(f64(X))
                _engine._small_gemm_tn(-0.5, D, X, rows, 1.0, W, variant=variant)
                assert_allclose(W, expected, rtol=0, atol=tol * scale.max())
                Wk = guarded(rng.standard_normal((n, k)).astype(dtype))
                out = guarded(np.zeros((m, k), dtype=dtype))
                _engine._small_gemm_nn(D, Wk, 0, k, out, variant=variant)
                scale = np.abs(f64(D)) @ np.abs(f64(Wk))
                assert_allclose(out, f64(D) @ f64(Wk), rtol=0, atol=tol * scale.max())


def test_the_small_kernels_variant_is_the_best_the_processor_has():
    # Read from the processor's flags as Linux reports them, independently of
    # the kernels' own check (GCC's __builtin_cpu_supports).
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line for line in f if line.startswith("flags")).split()
    except (OSError, StopIteration):
        pytest.skip("no /proc/cpuinfo flags to read")
    if not {"avx2", "fma"} <= set(flags):
        expected = []
    elif {"avx512f", "avx512vl", "avx512dq"} <= set(flags):
        expected = ["avx512", "avx2"]
    else:
        expected = ["avx2"]
    if not _engine.SMALL_GEMM and expected:
        pytest.skip("fastbp was built without the small kernels")
    assert _engine._small_variants() == expected
    assert _engine.SMALL_GEMM == bool(expected)


def test_the_small_kernels_refuse_a_variant_the_processor_does_not_run(monkeypatch):
    X, rows, W, D = small_problem(4, 3, 9, 5)
    with pytest.raises(ValueError, match="no small kernels named"):
        _engine._small_gemm_nt(X, rows, W, variant="sse2")
    for variant in set(_engine.SMALL_VARIANTS) - set(_engine._small_variants()):
        with pytest.raises(ValueError, match="does not run"):
            _engine._small_gemm_nt(X, rows, W, variant=variant)
        with pytest.raises(ValueError, match="does not run"):
            _engine._small_gemm_tn(1.0, D, X, rows, 1.0, W, variant=variant)
        with pytest.raises(ValueError, match="does not run"):
            _engine._small_gemm_nn(D, W, 0, 9, np.empty((4, 9)), variant=variant)
    # where the processor runs none, the default is refused too
    monkeypatch.setattr(_engine, "SMALL_VARIANT", 0)
    with pytest.raises(ValueError, match="runs none"):
        _engine._small_gemm_nt(X, rows, W)


@needs_small_gemm
def test_small_products_refuse_arrays_that_do_not_fit():
    X, rows, W, D = small_problem(4, 3, 9, 4)
    with pytest.raises(ValueError):
        _engine._small_gemm_nt(X, rows, np.ones((3, 8)))
    with pytest.raises(ValueError):
        _engine._small_gemm_tn(1.0, D[:, :2], X, rows, 1.0, W)
    with pytest.raises(IndexError):
        _engine._small_gemm_nt(X, np.array([0, X.shape[0]], dtype=np.intp), W)
    with pytest.raises((ValueError, TypeError)):     # one dtype for all arrays
        _engine._small_gemm_nt(X.astype(np.float32), rows, W)
    with pytest.raises(ValueError):
        _engine._small_gemm_nn(D, W[:2], 0, 9, np.empty((4, 9)))
    with pytest.raises(ValueError):
        _engine._small_gemm_nn(D, W[:3], 3, 3, np.empty((4, 9)))
