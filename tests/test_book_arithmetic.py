"""fastbp.network's SGD rounds every operation as the book's network.py does.

The path (fastbp/_engine.pyx, train_epoch_book; csrc/fastbp_book.c) rests
on two facts of this machine, checked first: SciPy's BLAS dgemv gives
np.dot's bits for a matrix times a column vector, and the exp loop it found
is np.exp's.  Then each kernel against NumPy written the way network.py
writes it, and whole epochs against reference.BookStyleNetwork, bit for bit.
"""
import functools
import random
import signal

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from scipy.linalg import blas
from threadpoolctl import threadpool_info, threadpool_limits

import fastbp.network as network
import fastbp.network2 as network2
from fastbp import _book, _engine, _training
from fastbp.bench import is_scipys_blas

import reference as ref
from reference_network2 import ReferenceNetwork2
from test_faults import _interrupt_main_thread_after

QUADRATIC, CROSS_ENTROPY = 0, 1     # cost codes (csrc/fastbp_kernels.h)

pytestmark = pytest.mark.skipif(not _engine.BOOK_ARITHMETIC,
                                reason="NumPy's exp loop was not found")


# Layers cut into up to four blocks, so that 3 and 4 threads really run (the
# engine clamps threads to the blocks: two on a 2-CPU machine).
FOUR_BLOCKS = pytest.mark.parametrize("blocks", [4], indirect=True,
                                      ids=lambda b: f"{b}-blocks")


class ColumnReference(ref.BookStyleNetwork):
    """reference.BookStyleNetwork with the per-sample gradients computed in
    the notation of network.py: every sample a
    column vector, every product np.dot (BookStyleNetwork uses matmul on 1-d
    vectors).  Written for these tests from BP1-BP4."""

    @staticmethod
    def sigma(z):
        return 1.0 / (1.0 + np.exp(-z))

    def backprop(self, x, y):
        a = [x]                                     # a[l]: activations of layer l
        z = [None]
        for W, b in zip(self.weights, self.biases):
            z.append(np.dot(W, a[-1]) + b)
            a.append(self.sigma(z[-1]))
        L = len(self.weights)
        # BP1, quadratic cost
        delta = (a[L] - y) * (self.sigma(z[L]) * (1 - self.sigma(z[L])))
        grad_b, grad_w = [None] * L, [None] * L
        for l in range(L, 0, -1):
            grad_b[l - 1] = delta                                    # BP3
            grad_w[l - 1] = np.dot(delta, a[l - 1].transpose())      # BP4
            if l > 1:                                                # BP2
                delta = (np.dot(self.weights[l - 1].transpose(), delta)
                         * (self.sigma(z[l - 1]) * (1 - self.sigma(z[l - 1]))))
        return grad_b, grad_w

    def step(self, batch, eta):
        self.update_mini_batch(batch, eta)


def assert_identical(arrays, expected):
    assert len(arrays) == len(expected)
    for a, b in zip(arrays, expected):
        assert_array_equal(np.asarray(a).ravel(), np.asarray(b).ravel())


# ---------------------------------------------------------------------------
# The premises

@pytest.mark.parametrize("n_out, n_in", [(30, 784), (10, 30), (100, 784), (3, 5), (2, 2)])
def test_scipy_dgemv_gives_numpys_dot(n_out, n_in):
    """np.dot(w, a) and np.dot(w.T, delta), as network.py calls them, against
    the dgemv calls of _book_sample."""
    rng = np.random.default_rng(n_out * n_in)
    for _ in range(20):
        w = rng.standard_normal((n_out, n_in))
        a = rng.random((n_in, 1))
        delta = rng.standard_normal((n_out, 1))
        assert_array_equal(blas.dgemv(1.0, w.T, a.ravel(), trans=1), np.dot(w, a).ravel())
        assert_array_equal(blas.dgemv(1.0, w.T, delta.ravel(), trans=0),
                           np.dot(w.T, delta).ravel())


def test_the_engine_checked_its_dgemv_when_it_loaded():
    assert _engine._dgemv_matches_numpy()


@pytest.mark.parametrize("n_out, n_in", [(30, 784), (100, 784), (33, 100)])
def test_a_block_of_rows_gives_those_rows_of_numpys_dot(n_out, n_in):
    """The premise of the book path's threads: with BLAS on one thread (as
    in training), dgemv over rows r0:r1 of w, r0 and r1 multiples of 8 (or
    r1 the last row), gives those rows of np.dot(w, a)."""
    if not _engine.BOOK_BLOCKS:
        pytest.skip("the premise does not hold here: the book path runs on one thread")
    rng = np.random.default_rng(n_out + n_in)
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in range(5):
            w = rng.standard_normal((n_out, n_in))
            a = rng.random((n_in, 1))
            whole = np.dot(w, a).ravel()
            for r0 in range(0, n_out, 8):
                for r1 in list(range(r0 + 8, n_out, 8)) + [n_out]:
                    assert_array_equal(blas.dgemv(1.0, w[r0:r1].T, a.ravel(), trans=1),
                                       whole[r0:r1])


def test_the_engine_checked_the_block_premise_when_it_loaded():
    assert _engine.BOOK_BLOCKS == (_engine.BOOK_ARITHMETIC
                                   and _engine._dgemv_blocks_match_numpy())


# OpenBLAS core types whose dgemv kernels fbp_book_gemv is known to repeat
# (dgemv_t_4.c with the Haswell micro-kernel): Haswell's own, and SkylakeX's,
# checked on a SkylakeX build (OpenBLAS 0.3.30).  Other cores may use them
# too; there the load-time check decides, and this test does not insist.
HASWELL_DGEMV = {"haswell", "skylakex"}


def scipy_openblas_architecture():
    """The core type of the OpenBLAS SciPy calls (lower case), or None."""
    for info in threadpool_info():
        if info.get("internal_api") == "openblas" and is_scipys_blas(info):
            return (info.get("architecture") or "").lower()
    return None


@pytest.mark.parametrize("wide", [False, True], ids=["avx2", "avx512"])
@pytest.mark.parametrize("n_in", [4, 12, 784, 1000, 2044])
@pytest.mark.parametrize("n_rows", [1, 2, 3, 4, 5, 6, 7, 8, 9, 14, 16, 30])
def test_the_batched_products_are_one_dgemv_per_sample(n_rows, n_in, wide):
    """fbp_book_gemv, the feedforward's products of a whole mini-batch in one
    pass over W, gives the bits of the one-thread dgemv call made per sample
    before it (which test_scipy_dgemv_gives_numpys_dot ties to np.dot), in
    both its variants: every remainder of 4 rows, 1 to 11, 17 and 23
    samples, rows of A apart by more than their length, values over six
    orders of magnitude."""
    if not _engine.BOOK_GEMV:
        pytest.skip("this BLAS sums in another order: the book path calls dgemv per sample")
    if wide and not _engine._book_gemv_wide():
        pytest.skip("no AVX-512 here")
    rng = np.random.default_rng(n_rows * 10007 + n_in)
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in range(3):
            w = rng.standard_normal((n_rows, n_in)) * 10.0 ** rng.uniform(-3, 3, (n_rows, n_in))
            wide_rows = rng.random((23, n_in + 8))
            A = wide_rows[:, 3:3 + n_in]
            for m in list(range(1, 12)) + [17, 23]:
                Z = _engine._book_gemv(w, A[:m], wide)
                for s in range(m):
                    assert_array_equal(Z[s], blas.dgemv(1.0, w.T, A[s], trans=1))
        # the rows wherever they lie: here in reverse
        Z = _engine._book_gemv(w, A[::-1], wide)
        for s in range(len(A)):
            assert_array_equal(Z[s], blas.dgemv(1.0, w.T, A[::-1][s], trans=1))
    with pytest.raises(ValueError, match="contiguous"):
        _engine._book_gemv(w, np.asfortranarray(A), wide)


def test_the_batched_products_are_used_where_openblas_has_those_kernels():
    """Where SciPy's OpenBLAS runs the kernels whose order fbp_book_gemv
    repeats, the load-time check found them (a change on either side shows
    here, not as a silent fallback to one dgemv call per sample)."""
    arch = scipy_openblas_architecture()
    if arch not in HASWELL_DGEMV:
        pytest.skip(f"SciPy's BLAS here ({arch}) is not OpenBLAS on one of "
                    f"{sorted(HASWELL_DGEMV)}")
    if not _engine._book_gemv_usable(4):
        pytest.skip("this processor has no AVX2 and FMA")
    assert _engine.BOOK_GEMV


def test_the_engine_checked_the_batched_products_when_it_loaded():
    assert _engine.BOOK_GEMV == (_engine.BOOK_ARITHMETIC
                                 and _engine._book_gemv_matches_dgemv())


@FOUR_BLOCKS
@pytest.mark.parametrize("threads", [1, 3])
def test_without_the_batched_products_the_epochs_are_the_same(blocks, threads,
                                                              monkeypatch):
    """With one dgemv call per sample instead (where the check fails), the
    epochs still equal the reference bit for bit."""
    monkeypatch.setattr(_engine, "BOOK_GEMV", False)
    sizes = [20, 64, 33, 10]
    data = book_problem(sizes, 90, seed=21)
    ours, reference = book_epochs(sizes, data, 2, 8, 3.0, threads)
    assert_identical(ours, reference)


@FOUR_BLOCKS
@pytest.mark.parametrize("variant", ["avx512", "avx2", "portable"])
@pytest.mark.parametrize("threads", [1, 2])
def test_with_any_instruction_set_the_epochs_are_the_same(blocks, threads, variant,
                                                           monkeypatch):
    """The kernels' AVX-512 variants (BOOK_WIDE, and the weight step's),
    the weight step's AVX2 variant and its portable C all equal the
    reference bit for bit."""
    if variant not in _engine._book_step_variants():
        pytest.skip(f"this processor does not run the {variant} variant")
    monkeypatch.setattr(_engine, "BOOK_WIDE", variant == "avx512")
    monkeypatch.setattr(_engine, "BOOK_STEP", _engine.BOOK_STEP_VARIANTS[variant])
    sizes = [784, 30, 10]
    data = book_problem(sizes, 60, seed=22)
    ours, reference = book_epochs(sizes, data, 2, 10, 3.0, threads)
    assert_identical(ours, reference)


@pytest.mark.parametrize("sizes, threads, expected", [([784, 30, 10], 2, 2),
                                                      ([784, 30, 10], 4, 3),
                                                      ([20, 64, 33, 10], 4, 4),
                                                      ([5, 4, 3, 2], 2, 1),
                                                      ([784, 30, 10], 1, 1)])
@FOUR_BLOCKS
def test_the_book_path_shares_out_only_layers_of_8_neurons_a_thread(
        blocks, sizes, threads, expected):
    if not _engine.BOOK_BLOCKS:
        pytest.skip("the block premise does not hold here")
    assert _engine.book_threads(sizes, threads) == expected


@FOUR_BLOCKS
def test_without_the_block_premise_the_book_path_runs_on_one_thread(blocks, monkeypatch):
    monkeypatch.setattr(_engine, "BOOK_BLOCKS", False)
    sizes = [20, 40, 10]
    assert _engine.book_threads(sizes, 2) == 1
    data = book_problem(sizes, 60, seed=13)
    ours, reference = book_epochs(sizes, data, 1, 10, 3.0, 2)
    assert_identical(ours, reference)


def test_without_the_books_arithmetic_sgd_takes_the_mini_batch_form(monkeypatch):
    """Where NumPy's BLAS computes otherwise (simulated), SGD still trains,
    in the engine's mini-batch form: the same to rounding."""
    monkeypatch.setattr(_engine, "BOOK_ARITHMETIC", False)
    sizes = [6, 5, 3]
    assert not _training.book_arithmetic_fits([np.zeros((5, 6)), np.zeros((3, 5))],
                                              [np.zeros(5), np.zeros(3)], sizes)
    data = book_problem(sizes, 50, seed=1)
    np.random.seed(8)
    net = network.Network(sizes)
    np.random.seed(8)
    reference = ColumnReference(sizes)
    random.seed(3)
    net.SGD(list(data), 2, 5, 3.0)
    random.seed(3)
    shuffled = list(data)
    for _ in range(2):
        random.shuffle(shuffled)
        for k in range(0, 50, 5):
            reference.step(shuffled[k:k + 5], 3.0)
    for a, b in zip(net.weights + net.biases, reference.weights + reference.biases):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    with pytest.raises(RuntimeError, match="not available"):
        _engine.train_epoch_book(net.weights, net.biases, sizes, QUADRATIC,
                                 _book.training_samples("d", data, sizes), np.arange(50),
                                 5, 1.0)


def test_the_exp_loop_is_numpys():
    rng = np.random.default_rng(5)
    for x in (rng.uniform(-50, 50, 100_001), rng.standard_normal(999),
              np.array([-745.5, -700.0, 0.0, -0.0, 1e-300, 700.0]), np.array([1.5])):
        assert_array_equal(_engine._book_exp(x), np.exp(x))


# ---------------------------------------------------------------------------
# The kernels, against network.py's NumPy expressions

@pytest.mark.parametrize("n", [1, 7, 30, 64, 1000])
def test_sigmoid_output_error_and_derivative(n):
    rng = np.random.default_rng(n)
    wa = rng.standard_normal(n) * 8            # np.dot(w, a)
    b = rng.standard_normal(n)
    y = rng.random(n)

    a = wa.copy()
    _engine._book_sigmoid(a, b)
    z = wa + b
    expected = 1.0 / (1.0 + np.exp(-z))
    assert_array_equal(a, expected)

    delta = np.empty(n)
    _engine._book_output_error(QUADRATIC, delta, a, y)
    s = 1.0 / (1.0 + np.exp(-z))
    assert_array_equal(delta, (a - y) * (s * (1 - s)))
    _engine._book_output_error(CROSS_ENTROPY, delta, a, y)
    assert_array_equal(delta, a - y)

    wd = rng.standard_normal(n)                # np.dot(w.T, delta)
    delta = wd.copy()
    _engine._book_times_derivative(delta, a)
    assert_array_equal(delta, wd * (s * (1 - s)))


def test_the_weight_step_refuses_a_variant_the_processor_does_not_run():
    W, D, A = np.ones((2, 3)), np.ones((2, 2)), np.ones((2, 3))
    with pytest.raises(ValueError, match="no weight step named"):
        _engine._book_weight_step(np.empty_like(W), W, D, A, 0.1, variant="sse2")
    for variant in set(_engine.BOOK_STEP_VARIANTS) - set(_engine._book_step_variants()):
        with pytest.raises(ValueError, match="does not run"):
            _engine._book_weight_step(np.empty_like(W), W, D, A, 0.1, variant=variant)
    assert "portable" in _engine._book_step_variants()


@pytest.mark.parametrize("variant", ["avx512", "avx2", "portable"])
@pytest.mark.parametrize("m, n_out, n_in", [(10, 30, 784), (1, 3, 5), (7, 10, 30),
                                            (3, 2, 64), (4, 5, 129), (13, 9, 63),
                                            (10, 16, 784), (2, 3, 8), (5, 4, 71),
                                            (3, 2, 128), (2, 7, 200), (3, 4, 19),
                                            (2, 3, 35), (5, 2, 42), (4, 3, 52),
                                            (3, 2, 58)])
def test_weight_and_bias_step_sum_in_sample_order(m, n_out, n_in, variant):
    if variant not in _engine._book_step_variants():
        pytest.skip(f"this processor does not run the {variant} variant")
    rng = np.random.default_rng(m + n_out + n_in)
    W = rng.standard_normal((n_out, n_in))
    b = rng.standard_normal(n_out)
    D = rng.standard_normal((m, n_out)) * 1e-3
    A = rng.random((m, n_in))
    c = 3.0 / m
    decay = 1 - 3.0 * (5.0 / 1000)
    # network.py: nabla_w = [nw+dnw ...] from zeros, sample after sample
    nabla_w = np.zeros((n_out, n_in))
    nabla_b = np.zeros(n_out)
    for k in range(m):
        nabla_w = nabla_w + np.dot(D[k].reshape(-1, 1), A[k].reshape(1, -1))
        nabla_b = nabla_b + D[k]
    W_new = np.empty_like(W)
    b_new = np.empty_like(b)
    assert _engine._book_weight_step(W_new, W, D, A, c, variant=variant)
    assert _engine._book_bias_step(b_new, b, D, c)
    assert_array_equal(W_new, W - c * nabla_w)
    assert_array_equal(b_new, b - c * nabla_b)
    # network2.py's L2 step
    assert _engine._book_weight_step(W_new, W, D, A, c, decay, variant=variant)
    assert_array_equal(W_new, decay * W - c * nabla_w)
    # A's rows apart, in a wider array, and in reverse
    wider = np.zeros((m, n_in + 11))
    wider[:, 3:3 + n_in] = A[::-1]
    W_new[...] = 0
    assert _engine._book_weight_step(W_new, W, D, wider[::-1, 3:3 + n_in], c, variant=variant)
    assert_array_equal(W_new, W - c * nabla_w)
    # a step that leaves the range is reported, wherever the weight lies
    assert not _engine._book_weight_step(W_new, W, D, A, 1e308, variant=variant)
    assert not _engine._book_weight_step(W_new, W, D, A, c, limit=float(np.max(np.abs(W))) / 2,
                                         variant=variant)
    for i, j in [(0, 0), (n_out - 1, n_in - 1), (n_out // 2, n_in // 2)]:
        W_big = W.copy()
        W_big[i, j] = 2e300
        assert not _engine._book_weight_step(W_new, W_big, D, A, c, variant=variant)
        W_nan = W.copy()
        W_nan[i, j] = np.nan
        assert not _engine._book_weight_step(W_new, W_nan, D, A, c, variant=variant)
    D[0, 0] = np.nan
    assert not _engine._book_bias_step(b_new, b, D, c)


# ---------------------------------------------------------------------------
# Whole epochs against the reference

def book_problem(sizes, n, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.random((n, sizes[0])).astype(dtype)
    Y = rng.random((n, sizes[-1]))
    return [(X[i].reshape(-1, 1).copy(), Y[i].reshape(-1, 1).copy()) for i in range(n)]


def book_epochs(sizes, data, epochs, batch_size, eta, threads, seed=1, lmbda=None):
    """(train_epoch_book's parameters, the reference's) after the same epochs:
    ColumnReference (network.py), or with lmbda network2.py's model with the
    cross-entropy cost (reference_network2, its initial weights N(0, 1)).
    The engine runs as SGD runs it: BLAS held to one thread, the batched
    feedforward products allowed (where BOOK_GEMV)."""
    np.random.seed(seed)
    n = len(data)
    if lmbda is None:
        reference, cost, decay = ColumnReference(sizes), QUADRATIC, 1.0
        step = reference.step
    else:
        reference = ReferenceNetwork2(sizes, "cross-entropy", init="large")
        cost, decay = CROSS_ENTROPY, 1 - eta * (lmbda / n)
        step = functools.partial(reference.step, lmbda=lmbda, n=n)
    W = [w.copy() for w in reference.weights]
    B = [b.copy() for b in reference.biases]
    samples = _book.training_samples("data", data, sizes)
    for epoch in range(epochs):
        random.seed(epoch)
        shuffled = list(data)
        random.shuffle(shuffled)
        with threadpool_limits(limits=1, user_api="blas"):
            status, done = _engine.train_epoch_book(W, B, sizes, cost, samples,
                                                    samples.order_of(shuffled), batch_size,
                                                    eta, decay, 0, threads,
                                                    one_blas_thread=True)
        assert status == _engine.OK and done == -(-n // batch_size)
        for k in range(0, n, batch_size):
            step(shuffled[k:k + batch_size], eta)
    return W + B, reference.weights + reference.biases


@pytest.mark.parametrize("sizes, n, batch_size", [([784, 30, 10], 600, 10),
                                                  ([5, 4, 3, 2], 101, 7),
                                                  ([20, 64, 33, 10], 200, 16),
                                                  ([3, 2], 50, 50)])
@FOUR_BLOCKS
@pytest.mark.parametrize("threads", [1, 2, 3, 4])
def test_epochs_equal_the_reference_bit_for_bit(blocks, sizes, n, batch_size, threads):
    data = book_problem(sizes, n, seed=len(sizes) + n)
    ours, reference = book_epochs(sizes, data, 2, batch_size, 3.0, threads)
    assert_identical(ours, reference)


@FOUR_BLOCKS
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_network2_epochs_equal_the_reference_bit_for_bit(blocks, threads):
    sizes = [30, 40, 10]
    data = book_problem(sizes, 150, seed=4)
    ours, reference = book_epochs(sizes, data, 2, 7, 0.5, threads, lmbda=5.0)
    assert_identical(ours, reference)


def test_the_column_reference_is_the_book_style_one():
    """Two references written apart, one with np.dot on columns, one with
    matmul on 1-d vectors, give the same bits (the premise tests above say
    why)."""
    sizes = [20, 9, 5]
    data = book_problem(sizes, 40, seed=5)
    np.random.seed(3)
    columns = ColumnReference(sizes)
    np.random.seed(3)
    vectors = ref.BookStyleNetwork(sizes)
    for k in range(0, 40, 8):
        columns.step(data[k:k + 8], 3.0)
        vectors.update_mini_batch(data[k:k + 8], 3.0)
    assert_identical(columns.weights + columns.biases, vectors.weights + vectors.biases)


@FOUR_BLOCKS
@pytest.mark.parametrize("sizes, batch_size", [([12, 6, 4], 9), ([784, 30, 10], 10)])
def test_float32_inputs_are_widened_as_numpy_widens_them(blocks, sizes, batch_size):
    """(float64 inputs are read where they lie, float32 ones widened into each
    thread's copy: [784, 30, 10] runs on 2 threads, [12, 6, 4] on 1.)"""
    data = book_problem(sizes, 90, seed=8, dtype=np.float32)
    assert data[0][0].dtype == np.float32
    ours, reference = book_epochs(sizes, data, 2, batch_size, 2.0, 2)
    assert_identical(ours, reference)


def test_network_sgd_and_update_mini_batch_take_the_books_path():
    sizes = [8, 5, 3]
    data = book_problem(sizes, 64, seed=2)
    random.seed(4)
    np.random.seed(4)
    net = network.Network(sizes)
    random.seed(4)
    np.random.seed(4)
    book = ref.BookStyleNetwork(sizes)
    for obj in (net, book):
        random.seed(9)
        obj.SGD(list(data), 3, 6, 3.0)
        obj.update_mini_batch(data[:5], 0.5)
    assert_identical(net.weights + net.biases, book.weights + book.biases)


@pytest.mark.parametrize("blas_threads", [1, 2, 4])
def test_update_mini_batch_matches_np_dot_on_any_blas_threads(blas_threads):
    """update_mini_batch runs outside fastbp's hold on BLAS threads, so
    np.dot shares a product of 784 x 600 weights out over BLAS's threads
    (summing a few rows in another order, with 4 of them); the book path
    then makes the same dgemv calls, never the one-thread order of
    fbp_book_gemv."""
    sizes = [784, 600, 10]
    data = book_problem(sizes, 10, seed=30)
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        np.random.seed(6)
        net = network.Network(sizes)
        np.random.seed(6)
        reference = ColumnReference(sizes)
        net.update_mini_batch(data, 3.0)
        reference.step(data, 3.0)
    assert_identical(net.weights + net.biases, reference.weights + reference.biases)


def test_a_single_neuron_layer_takes_the_mini_batch_form():
    """np.dot takes other routes for a 1-wide layer: such a network trains in
    the engine's mini-batch form, the same to rounding."""
    sizes = [4, 1, 3]
    assert not _training.book_arithmetic_fits([np.zeros((1, 4)), np.zeros((3, 1))],
                                              [np.zeros((1, 1)), np.zeros((3, 1))], sizes)
    data = book_problem(sizes, 40, seed=3)
    np.random.seed(2)
    net = network.Network(sizes)
    np.random.seed(2)
    book = ref.BookStyleNetwork(sizes)
    for obj in (net, book):
        random.seed(1)
        obj.SGD(list(data), 2, 5, 3.0)
    for a, b in zip(net.weights + net.biases, book.weights + book.biases):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="at least 2"):
        _engine.train_epoch_book(net.weights, [b.ravel() for b in net.biases], sizes,
                                 QUADRATIC, _book.training_samples("d", data, sizes),
                                 np.arange(40), 5, 1.0)


def test_shared_parameters_take_the_mini_batch_form():
    W = np.zeros((3, 3))
    biases = [np.zeros(3), np.zeros(3)]
    assert not _training.book_arithmetic_fits([W, W], biases, [3, 3, 3])
    assert _training.book_arithmetic_fits([W, W.copy()], biases, [3, 3, 3])


# ---------------------------------------------------------------------------
# Faults: nothing half-applied

@pytest.mark.parametrize("good", [0, 1, 2, 3])
def test_divergence_keeps_the_last_good_mini_batch(good):
    """Targets of 1e305 from mini-batch good + 1 on make its step overflow:
    the call stops there, the network as after the good ones (an even or an
    odd number: the call's two sets of weights take turns)."""
    sizes = [10, 8, 4]
    data = book_problem(sizes, 100, seed=6)
    data = data[:10 * good] + [(x, np.full_like(y, 1e305)) for x, y in data[10 * good:]]
    np.random.seed(3)
    net = network.Network(sizes)
    np.random.seed(3)
    book = ref.BookStyleNetwork(sizes)
    weights, biases = _book.parameters(net)
    samples = _book.training_samples("data", data, sizes)
    with pytest.raises(FloatingPointError, match=f"mini-batch {good + 1} of 10"):
        _training.train_epoch(weights, biases, sizes, [0] * 3, 0, samples, None,
                              np.arange(len(data)), 10, 3.0, book=True)
    for k in range(good):
        book.update_mini_batch(data[10 * k:10 * k + 10], 3.0)
    assert_identical(net.weights + net.biases, book.weights + book.biases)


@pytest.mark.skipif(signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
                    reason="SIGINT is not Python's default handler here")
def test_sigint_leaves_a_completed_mini_batch(monkeypatch):
    """KeyboardInterrupt inside SGD: the weights are those after some number
    of whole mini-batches, replayed one update_mini_batch call each.  The
    engine looks for the signal after every mini-batch here."""
    monkeypatch.setattr(_training, "_SECONDS_BETWEEN_SIGNAL_CHECKS", 1e-6)
    sizes = [100, 40, 10]
    data = book_problem(sizes, 2000, seed=9)
    np.random.seed(5)
    net = network.Network(sizes)
    np.random.seed(5)
    replay = network.Network(sizes)
    epochs, batch_size, eta = 1000, 20, 0.5
    training = list(data)
    random.seed(2)
    timer = _interrupt_main_thread_after(0.5)
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            net.SGD(training, epochs, batch_size, eta)
    finally:
        timer.cancel()
        timer.join()
    assert any("interrupted between two mini-batches" in note
               for note in getattr(info.value, "__notes__", []))
    target = net.weights + net.biases

    def reached():
        return all(np.array_equal(a, b) for a, b in zip(replay.weights + replay.biases, target))

    random.seed(2)
    replayed = list(data)
    if reached():
        return
    for _ in range(epochs):
        random.shuffle(replayed)
        for k in range(0, len(replayed), batch_size):
            replay.update_mini_batch(replayed[k:k + batch_size], eta)
            if reached():
                return
    pytest.fail("no replayed mini-batch gives the interrupted weights")


def test_network2_update_mini_batch_is_the_books_step():
    sizes = [9, 7, 4]
    data = book_problem(sizes, 30, seed=12)
    for cost, name in ((network2.CrossEntropyCost, "cross-entropy"),
                       (network2.QuadraticCost, "quadratic")):
        np.random.seed(7)
        net = network2.Network(sizes, cost=cost)
        np.random.seed(7)
        ref2 = ReferenceNetwork2(sizes, name)
        for k in range(0, 30, 8):
            net.update_mini_batch(data[k:k + 8], 0.5, 4.0, 30)
            ref2.step(data[k:k + 8], 0.5, 4.0, 30)
        assert_identical(net.weights + net.biases, ref2.weights + ref2.biases)


@FOUR_BLOCKS
@pytest.mark.parametrize("threads", [2, 4])
@pytest.mark.parametrize("good", [0, 1, 2, 3])
def test_divergence_on_threads_keeps_the_last_good_mini_batch(blocks, threads, good):
    """As above, with the feedforward and the step's rows split over threads
    that must all agree."""
    sizes = [10, 32, 4]
    data = book_problem(sizes, 100, seed=6)
    data = data[:10 * good] + [(x, np.full_like(y, 1e305)) for x, y in data[10 * good:]]
    np.random.seed(3)
    reference = ColumnReference(sizes)
    W = [w.copy() for w in reference.weights]
    B = [b.copy() for b in reference.biases]
    samples = _book.training_samples("data", data, sizes)
    status, done = _engine.train_epoch_book(W, B, sizes, QUADRATIC, samples,
                                            np.arange(len(data)), 10, 3.0, 1.0, 0, threads)
    assert status == _engine.DIVERGED and done == good
    for k in range(good):
        reference.step(data[10 * k:10 * k + 10], 3.0)
    assert_identical(W + B, reference.weights + reference.biases)


@pytest.mark.skipif(signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
                    reason="SIGINT is not Python's default handler here")
@FOUR_BLOCKS
@pytest.mark.parametrize("threads", [2, 4])
def test_sigint_on_threads_leaves_a_completed_mini_batch(blocks, threads):
    """Epochs on several threads, a signal checked after every mini-batch:
    the weights are those after some number of whole mini-batches, replayed
    one call each on one thread (which equals the reference, above)."""
    sizes = [100, 40, 10]
    data = book_problem(sizes, 400, seed=9)
    samples = _book.training_samples("data", data, sizes)
    np.random.seed(5)
    reference = ColumnReference(sizes)
    W = [w.copy() for w in reference.weights]
    B = [b.copy() for b in reference.biases]
    replay = ([w.copy() for w in W], [b.copy() for b in B])
    rng = np.random.default_rng(0)
    orders = []
    timer = _interrupt_main_thread_after(0.3)
    try:
        with pytest.raises(KeyboardInterrupt), _training.engine_threads():
            for _ in range(100_000):
                orders.append(rng.permutation(len(data)))
                _engine.train_epoch_book(W, B, sizes, QUADRATIC, samples, orders[-1], 20,
                                         0.5, 1.0, 1, threads)
    finally:
        timer.cancel()
        timer.join()

    def reached():
        return all(np.array_equal(a, b) for a, b in zip(replay[0] + replay[1], W + B))

    with _training.engine_threads():
        for order in orders:
            for k in range(0, len(data), 20):
                if reached():
                    return
                _engine.train_epoch_book(replay[0], replay[1], sizes, QUADRATIC, samples,
                                         order[k:k + 20], 20, 0.5, 1.0, 0, 1)
    assert reached(), "no replayed mini-batch gives the interrupted weights"


def test_backprop_and_feedforward_of_one_sample_are_the_books():
    sizes = [12, 7, 5, 3]
    data = book_problem(sizes, 6, seed=10)
    np.random.seed(6)
    net = network.Network(sizes)
    np.random.seed(6)
    reference = ColumnReference(sizes)
    for x, y in data:
        nabla_b, nabla_w = net.backprop(x, y)
        expected_b, expected_w = reference.backprop(x, y)
        assert [g.shape for g in nabla_b] == [b.shape for b in net.biases]
        assert_identical(nabla_b + nabla_w, expected_b + expected_w)
        a = x
        for W, b in zip(reference.weights, reference.biases):
            a = reference.sigma(np.dot(W, a) + b)
        out = net.feedforward(x)
        assert out.shape == (3, 1)
        assert_array_equal(out, a)


@pytest.mark.parametrize("cost, name", [(network2.CrossEntropyCost, "cross-entropy"),
                                        (network2.QuadraticCost, "quadratic")])
def test_network2_backprop_of_one_sample_is_the_books(cost, name):
    sizes = [9, 6, 4]
    data = book_problem(sizes, 5, seed=11)
    np.random.seed(2)
    net = network2.Network(sizes, cost=cost)
    np.random.seed(2)
    reference = ReferenceNetwork2(sizes, name)
    for x, y in data:
        nabla_b, nabla_w = net.backprop(x, y)
        expected_b, expected_w = reference.gradients(x, y)
        assert_identical(nabla_b + nabla_w, expected_b + expected_w)
        assert_array_equal(net.feedforward(x), reference.output(x))
