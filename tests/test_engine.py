"""The compiled engine and fastbp.Network against the per-sample reference.

Same initial weights (copied into the reference), same sample order:
fit() draws ``net.rng.permutation(n)`` once at the start of every epoch and
nothing else from that generator while training, so a copy of the
generator taken before fit() replays the orders.  Float64 results must
agree with the reference to 1e-10 absolute after a few epochs.
"""
import copy

import numpy as np
import pytest
from numpy.testing import assert_allclose

import fastbp
from fastbp import _engine
from fastbp.activations import CODES as ACT
from fastbp.costs import CODES as COST

import reference as ref

# (sizes, activations, cost): cross-entropy only with a sigmoid output.
STACKS = [
    ([5, 7, 3], "sigmoid", "quadratic"),
    ([5, 7, 3], "sigmoid", "cross-entropy"),
    ([5, 8, 6, 3], ["tanh", "relu", "sigmoid"], "quadratic"),
    ([5, 8, 6, 3], ["tanh", "relu", "sigmoid"], "cross-entropy"),
    ([5, 6, 3], ["relu", "linear"], "quadratic"),
    ([5, 9, 4, 3], ["sigmoid", "tanh", "tanh"], "quadratic"),
    ([5, 4, 4, 4, 3], ["linear", "sigmoid", "relu", "sigmoid"], "cross-entropy"),
]
STACK_IDS = [f"{'-'.join(map(str, s))}-{a if isinstance(a, str) else '/'.join(a)}-{c}"
             for s, a, c in STACKS]


def fit_and_replay(net, X, Y, epochs, batch_size, eta, lmbda=0.0, **kw):
    """fit() the network, and train the reference from the same start with
    the orders fit() used.  Returns the reference's (weights, biases)."""
    start_w = [w.copy() for w in net.weights]
    start_b = [b.copy() for b in net.biases]
    replay = copy.deepcopy(net.rng)
    net.fit(X, Y, epochs, batch_size, eta, lmbda=lmbda, monitor=False, **kw)
    orders = [replay.permutation(len(X)) for _ in range(epochs)]
    return ref.train(start_w, start_b, net.activations, net.cost, np.asarray(X, float),
                     np.asarray(Y, float), orders, batch_size, eta, lmbda)


def assert_same_parameters(net, ref_w, ref_b, atol):
    for l, (W, Wr) in enumerate(zip(net.weights, ref_w)):
        assert_allclose(W, Wr, rtol=0, atol=atol, err_msg=f"weights[{l}]")
    for l, (b, br) in enumerate(zip(net.biases, ref_b)):
        assert b.shape == (br.size, 1)
        assert_allclose(b.ravel(), br, rtol=0, atol=atol, err_msg=f"biases[{l}]")


def changed(net, start_w):
    return max(float(np.max(np.abs(w - w0))) for w, w0 in zip(net.weights, start_w))


# ---------------------------------------------------------------------------
# Training

@pytest.mark.parametrize("sizes,acts,cost", STACKS, ids=STACK_IDS)
def test_fit_matches_reference(make_problem, sizes, acts, cost):
    X, _, Y = make_problem(61, sizes[0], sizes[-1], seed=len(sizes))
    net = fastbp.Network(sizes, activations=acts, cost=cost, seed=2024)
    start = [w.copy() for w in net.weights]
    # 61 = 8 * 7 + 5: the last mini-batch of each epoch is shorter
    ref_w, ref_b = fit_and_replay(net, X, Y, epochs=3, batch_size=7, eta=0.3)
    assert changed(net, start) > 1e-3
    assert_same_parameters(net, ref_w, ref_b, atol=1e-10)


@pytest.mark.parametrize("sizes,acts,cost", [STACKS[0], STACKS[3]], ids=[STACK_IDS[0], STACK_IDS[3]])
def test_fit_with_l2_decay(problem, sizes, acts, cost):
    X, _, Y = problem
    net = fastbp.Network(sizes, activations=acts, cost=cost, seed=5)
    ref_w, ref_b = fit_and_replay(net, X, Y, epochs=3, batch_size=8, eta=0.5, lmbda=3.0)
    assert_same_parameters(net, ref_w, ref_b, atol=1e-10)
    # the decay made a difference the reference sees too
    plain = fastbp.Network(sizes, activations=acts, cost=cost, seed=5)
    plain.fit(X, Y, 3, 8, 0.5, monitor=False)
    assert changed(net, plain.weights) > 1e-4


def test_batch_larger_than_n(problem):
    X, _, Y = problem
    net = fastbp.Network([5, 6, 3], seed=1)
    ref_w, ref_b = fit_and_replay(net, X, Y, epochs=4, batch_size=1000, eta=2.0)
    assert_same_parameters(net, ref_w, ref_b, atol=1e-10)


def test_batch_of_one(problem):
    X, _, Y = problem
    net = fastbp.Network([5, 4, 3], activations=["tanh", "sigmoid"], seed=11)
    ref_w, ref_b = fit_and_replay(net, X, Y, epochs=2, batch_size=1, eta=0.1)
    assert_same_parameters(net, ref_w, ref_b, atol=1e-10)


def test_labels_train_like_one_hot(problem):
    X, labels, Y = problem
    a = fastbp.Network([5, 6, 3], seed=3)
    b = fastbp.Network([5, 6, 3], seed=3)
    a.fit(X, labels, 2, 10, 1.0, monitor=False)
    b.fit(X, Y, 2, 10, 1.0, monitor=False)
    for wa, wb in zip(a.weights + a.biases, b.weights + b.biases):
        assert_allclose(wa, wb, rtol=0, atol=0)


def test_successive_fits_continue(problem):
    """Two calls of one epoch each equal one call of two epochs."""
    X, _, Y = problem
    net = fastbp.Network([5, 7, 3], seed=8)
    start_w = [w.copy() for w in net.weights]
    start_b = [b.copy() for b in net.biases]
    replay = copy.deepcopy(net.rng)
    net.fit(X, Y, 1, 9, 0.7, monitor=False)
    net.fit(X, Y, 1, 9, 0.7, monitor=False)
    orders = [replay.permutation(len(X)) for _ in range(2)]
    ref_w, ref_b = ref.train(start_w, start_b, "sigmoid", "quadratic", X, Y, orders, 9, 0.7)
    assert_same_parameters(net, ref_w, ref_b, atol=1e-10)


def test_zero_epochs_changes_nothing(problem):
    X, _, Y = problem
    net = fastbp.Network([5, 7, 3], seed=8)
    before = [p.copy() for p in net.weights + net.biases]
    history = net.fit(X, Y, 0, 10, 1.0)
    assert history["seconds"] == []
    for p, q in zip(net.weights + net.biases, before):
        assert p.tobytes() == q.tobytes()


def test_history_matches_reference(problem):
    X, labels, Y = problem
    Xv, Yv = X[:20] + 0.05, Y[:20]
    net = fastbp.Network([5, 7, 3], cost="cross-entropy", seed=4)
    history = net.fit(X, Y, 2, 10, 0.5, lmbda=0.1, validation_data=(Xv, Yv))
    assert len(history["seconds"]) == 2
    W, b = ref.copy_parameters(net.weights, net.biases)
    assert_allclose(history["train_cost"][-1],
                    ref.mean_cost(W, b, "sigmoid", "cross-entropy", X, Y, lmbda=0.1),
                    rtol=1e-12)
    out = ref.feedforward(W, b, "sigmoid", X)
    assert history["train_accuracy"][-1] == np.mean(np.argmax(out, axis=1) == labels)
    assert_allclose(history["val_cost"][-1],
                    ref.mean_cost(W, b, "sigmoid", "cross-entropy", Xv, Yv, lmbda=0.1),
                    rtol=1e-12)


# ---------------------------------------------------------------------------
# The engine's epoch entry point, called with a known order

def engine_parameters(weights, biases, dtype):
    """Fresh C-contiguous copies, as the engine trains them in place."""
    return ([np.array(w, dtype=dtype, order="C") for w in weights],
            [np.array(np.reshape(b, (-1, 1)), dtype=dtype, order="C") for b in biases])


@pytest.mark.parametrize("sizes,acts,cost", STACKS, ids=STACK_IDS)
def test_train_epoch_with_given_order(make_problem, sizes, acts, cost):
    X, _, Y = make_problem(40, sizes[0], sizes[-1], seed=99)
    rng = np.random.default_rng(17)
    weights = [rng.standard_normal((o, i)) / np.sqrt(i) for i, o in zip(sizes[:-1], sizes[1:])]
    biases = [rng.standard_normal(o) for o in sizes[1:]]
    names = ref.as_list(acts, len(sizes) - 1)
    codes = [0] + [ACT[a] for a in names]
    # an order that repeats some rows and leaves others out
    order = np.array([39, 0, 5, 5, 12, 3, 3, 3, 20, 7, 38, 1, 2, 30, 31, 9, 8], dtype=np.intp)
    W, b = engine_parameters(weights, biases, np.float64)
    decay = 1.0 - 0.4 * 0.5 / len(X)
    status, done = _engine.train_epoch(W, b, sizes, codes, COST[cost],
                                       _engine.matrix_samples(X, Y), order, 5, 0.4, decay)
    assert status == _engine.OK
    assert done == 4                     # 5 + 5 + 5 + 2
    ref_w, ref_b = ref.train(weights, biases, names, cost, X, Y, [order], 5, 0.4, lmbda=0.5)
    for l in range(len(W)):
        assert_allclose(W[l], ref_w[l], rtol=0, atol=1e-12)
        assert_allclose(b[l].ravel(), ref_b[l], rtol=0, atol=1e-12)


@pytest.mark.parametrize("n_weights, n_codes", [(2, 2), (2, 4), (1, 3), (3, 3)])
def test_the_engine_refuses_lists_that_do_not_fit_the_sizes(n_weights, n_codes):
    """The engine reads its lists without bounds checks: a list of the wrong
    length is refused, never read past its end."""
    sizes = [6, 5, 3]
    rng = np.random.default_rng(0)
    shapes = [(5, 6), (3, 5), (3, 3)][:n_weights]
    W = [rng.standard_normal(s) for s in shapes]
    b = [rng.standard_normal(s[0]) for s in shapes]
    codes = [0, ACT["sigmoid"], ACT["sigmoid"], ACT["sigmoid"]][:n_codes]
    X, Y = rng.random((4, 6)), rng.random((4, 3))
    before = [w.copy() for w in W]
    with pytest.raises(ValueError, match="3 layer sizes need 2 weights"):
        _engine.train_epoch(W, b, sizes, codes, COST["quadratic"],
                            _engine.matrix_samples(X, Y), np.arange(4), 2, 0.5, 1.0)
    with pytest.raises(ValueError, match="3 layer sizes need 2 weights"):
        _engine.feedforward(W, b, sizes, codes, X)
    assert all(np.array_equal(w, v) for w, v in zip(W, before))
    if n_weights != 2:
        with pytest.raises(ValueError, match="one weight matrix and one bias vector"):
            _engine.train_epoch_book(W, b, sizes, COST["quadratic"],
                                     _engine.matrix_samples(X, Y), np.arange(4), 2, 0.5)


@pytest.mark.parametrize("sizes,acts,cost", STACKS[:4], ids=STACK_IDS[:4])
def test_train_epoch_float32(make_problem, sizes, acts, cost):
    X, _, Y = make_problem(50, sizes[0], sizes[-1], seed=5)
    rng = np.random.default_rng(23)
    weights = [rng.standard_normal((o, i)) / np.sqrt(i) for i, o in zip(sizes[:-1], sizes[1:])]
    biases = [rng.standard_normal(o) for o in sizes[1:]]
    names = ref.as_list(acts, len(sizes) - 1)
    codes = [0] + [ACT[a] for a in names]
    order = rng.permutation(50).astype(np.intp)
    W, b = engine_parameters(weights, biases, np.float32)
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    status, _ = _engine.train_epoch(W, b, sizes, codes, COST[cost],
                                    _engine.matrix_samples(X32, Y32), order, 6, 0.3, 1.0)
    assert status == _engine.OK
    assert all(w.dtype == np.float32 for w in W + b)
    ref_w, ref_b = ref.train(weights, biases, names, cost, X32.astype(float),
                             Y32.astype(float), [order], 6, 0.3)
    for l in range(len(W)):
        assert_allclose(W[l], ref_w[l], rtol=0, atol=2e-5)
        assert_allclose(b[l].ravel(), ref_b[l], rtol=0, atol=2e-5)


def at_offset(a, offset):
    """A C-contiguous copy of a whose data starts `offset` bytes past a
    64-byte boundary."""
    raw = np.empty(a.nbytes + 128, dtype=np.uint8)
    start = (-raw.ctypes.data) % 64 + offset
    out = raw[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("eta", [0.05, 1e3], ids=["trains", "diverges"])
def test_train_epoch_gives_the_same_bits_whatever_the_alignment(dtype, eta, threads):
    """A call of many mini-batches trains cache-aligned copies of misaligned
    parameters and writes them back, also when it stops at a refused
    mini-batch: the caller's arrays end bit-identical to aligned ones."""
    sizes, names = [6, 16, 16, 3], ["relu", "relu", "linear"]
    rng = np.random.default_rng(8)
    X = rng.standard_normal((120, 6))
    Y = rng.standard_normal((120, 3))
    weights = [rng.standard_normal((o, i)) / np.sqrt(i) for i, o in zip(sizes[:-1], sizes[1:])]
    biases = [rng.standard_normal(o) for o in sizes[1:]]
    order = rng.permutation(120).astype(np.intp)
    data = _engine.matrix_samples(X.astype(dtype), Y.astype(dtype))
    codes = [0] + [ACT[a] for a in names]
    results = {}
    for offset in (0, 8, 16, 40):
        W = [at_offset(w.astype(dtype), offset) for w in weights]
        b = [at_offset(v.astype(dtype), offset) for v in biases]
        status, done = _engine.train_epoch(W, b, sizes, codes, COST["quadratic"], data,
                                           order, 5, eta, 1.0, 0, -1.0, threads)
        results[offset] = status, done, [p.copy() for p in W + b]
    status, done, params = results[0]
    if eta < 1:
        assert (status, done) == (_engine.OK, 24)
        if dtype == np.float64:
            ref_w, ref_b = ref.train(weights, biases, names, "quadratic", X, Y, [order], 5, eta)
            for l in range(len(weights)):
                assert_allclose(params[l], ref_w[l], rtol=0, atol=1e-12)
                assert_allclose(params[len(weights) + l], ref_b[l], rtol=0, atol=1e-12)
    else:
        assert status == _engine.DIVERGED and 1 <= done < 24
    assert not np.array_equal(params[0], weights[0].astype(dtype))
    for offset in (8, 16, 40):
        assert results[offset][:2] == (status, done)
        for p, q in zip(results[offset][2], params):
            np.testing.assert_array_equal(p, q)


def test_train_epoch_trains_one_array_given_twice_as_one():
    """The same array as two layers' weights (or biases): however it is
    aligned, it is trained as one array, in place, as a short call would."""
    sizes, codes = [16, 16, 16], [0, ACT["tanh"], ACT["linear"]]
    rng = np.random.default_rng(4)
    X = rng.standard_normal((80, 16))
    Y = rng.standard_normal((80, 16))
    data = _engine.matrix_samples(X, Y)
    W0 = rng.standard_normal((16, 16)) / 4
    results = []
    for offset, batches in ((0, 16), (16, 16), (16, 4)):
        W = at_offset(W0, offset)
        b = at_offset(np.zeros(16), offset)
        for part in np.array_split(np.arange(80, dtype=np.intp), 16 // batches):
            status, _ = _engine.train_epoch([W, W], [b, b], sizes, codes, COST["quadratic"],
                                            data, part, 5, 0.05, 1.0)
            assert status == _engine.OK
        results.append((W.copy(), b.copy()))
    for W, b in results[1:]:
        np.testing.assert_array_equal(W, results[0][0])
        np.testing.assert_array_equal(b, results[0][1])


# ---------------------------------------------------------------------------
# Feedforward, backprop and the cost

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("sizes,acts,cost", STACKS, ids=STACK_IDS)
def test_feedforward_matches_reference(make_problem, sizes, acts, cost, dtype):
    X, _, _ = make_problem(33, sizes[0], sizes[-1], seed=1)
    net = fastbp.Network(sizes, activations=acts, cost=cost, dtype=dtype, seed=6)
    W, b = ref.copy_parameters(net.weights, net.biases)
    expected = ref.feedforward(W, b, acts, X.astype(dtype).astype(float))
    got = net.feedforward(X)
    assert got.shape == (33, sizes[-1]) and got.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert_allclose(got, expected, rtol=tol, atol=tol)
    assert (net.predict(X) == np.argmax(got, axis=1)).all()


@pytest.mark.parametrize("hidden", [8, 40])       # chunks of 64 and of 512 rows
def test_feedforward_in_chunks(make_problem, hidden):
    """More rows than the engine's chunk, and a last chunk cut short."""
    assert _engine.feedforward_chunk([5, hidden, 3]) == (64 if hidden <= 32 else 512)
    X, _, _ = make_problem(1100, 5, 3, seed=2)
    net = fastbp.Network([5, hidden, 3], activations=["relu", "sigmoid"], seed=6)
    W, b = ref.copy_parameters(net.weights, net.biases)
    assert_allclose(net.feedforward(X), ref.feedforward(W, b, ["relu", "sigmoid"], X),
                    rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("m", [1, 2, 17])
@pytest.mark.parametrize("sizes,acts,cost", STACKS, ids=STACK_IDS)
def test_backprop_matches_reference(make_problem, sizes, acts, cost, m):
    X, _, Y = make_problem(m, sizes[0], sizes[-1], seed=m)
    net = fastbp.Network(sizes, activations=acts, cost=cost, seed=31)
    nabla_b, nabla_w = net.backprop(X, Y)
    W, b = ref.copy_parameters(net.weights, net.biases)
    ref_b, ref_w = ref.mean_gradients(W, b, acts, cost, X, Y)
    for l in range(len(W)):
        assert nabla_w[l].shape == net.weights[l].shape
        assert nabla_b[l].shape == net.biases[l].shape
        assert_allclose(nabla_w[l], ref_w[l], rtol=1e-10, atol=1e-13)
        assert_allclose(nabla_b[l].ravel(), ref_b[l], rtol=1e-10, atol=1e-13)


def test_backprop_leaves_parameters(problem):
    X, _, Y = problem
    net = fastbp.Network([5, 7, 3], seed=2)
    before = [p.copy() for p in net.weights + net.biases]
    net.backprop(X, Y)
    for p, q in zip(net.weights + net.biases, before):
        assert p.tobytes() == q.tobytes()


@pytest.mark.parametrize("lmbda", [0.0, 0.7])
@pytest.mark.parametrize("sizes,acts,cost", STACKS, ids=STACK_IDS)
def test_cost_value_matches_reference(problem, sizes, acts, cost, lmbda):
    X, _, Y = problem
    net = fastbp.Network(sizes, activations=acts, cost=cost, seed=12)
    W, b = ref.copy_parameters(net.weights, net.biases)
    assert_allclose(net.cost_value(X, Y, lmbda),
                    ref.mean_cost(W, b, acts, cost, X, Y, lmbda), rtol=1e-12)


# ---------------------------------------------------------------------------
# float32 reaches the accuracy of float64

def test_float32_reaches_float64_accuracy(digits):
    X, y = digits
    split = 1300
    accuracy = {}
    for dtype in (np.float64, np.float32):
        net = fastbp.Network([64, 30, 10], dtype=dtype, seed=0)
        net.fit(X[:split], y[:split], epochs=15, batch_size=10, eta=3.0, monitor=False)
        assert all(w.dtype == dtype for w in net.weights)
        accuracy[dtype] = net.accuracy(X[split:], y[split:])
    assert accuracy[np.float64] > 0.9
    assert accuracy[np.float32] >= accuracy[np.float64] - 0.02


def test_fit_calls_back_after_every_epoch():
    X = np.random.default_rng(0).random((30, 4))
    seen = []
    history = fastbp.Network([4, 3, 2], seed=0).fit(
        X, np.arange(30) % 2, 3, 5, 1.0,
        callback=lambda epoch, h: seen.append((epoch, len(h["seconds"]), h["train_cost"][-1])))
    assert [(e, k) for e, k, _ in seen] == [(0, 1), (1, 2), (2, 3)]
    assert [c for _, _, c in seen] == history["train_cost"]


# ---------------------------------------------------------------------------
# The products of narrow layers by the small kernels (AVX-512 or AVX2); the first
# layer's read each mini-batch's inputs where they lie in the data set.

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_small_kernels_only_for_narrow_layers_and_small_batches(dtype):
    widest = _engine.SMALL_WIDTH_MAX[np.dtype(dtype).name]
    on = _engine.SMALL_GEMM
    assert _engine.small_layers([784, 30, 10], 10, dtype) == (on, on)
    assert _engine.small_layers([784, widest, 10], 32, dtype) == (on, on)
    assert _engine.small_layers([784, 30, 10], 8, dtype) == (on, on)
    assert _engine.small_layers([784, widest + 1, 10], 10, dtype) == (False, on)
    assert _engine.small_layers([784, 30, widest + 1, 10], 10, dtype) == (on, False, on)
    assert _engine.small_layers([784, 30, 10], 33, dtype) == (False, False)
    assert _engine.small_layers([784, 30, 10], 4, dtype) == (False, False)
    assert _engine.small_layers([784], 10, dtype) == ()


# (network dtype, inputs dtype, tolerance against the float64 reference)
SMALL_CASES = [(np.float64, np.float64, 1e-12), (np.float64, np.float32, 1e-12),
               (np.float32, np.float32, 2e-5), (np.float32, np.float64, 2e-5)]


@pytest.mark.skipif(not _engine.SMALL_GEMM, reason="the small kernels need AVX2 or AVX-512")
@pytest.mark.parametrize("variant", _engine._small_variants())
@pytest.mark.parametrize("sizes,names", [([40, 30, 10], ["sigmoid", "sigmoid"]),
                                         ([40, 30, 20, 10], ["sigmoid", "tanh", "sigmoid"])])
@pytest.mark.parametrize("dtype,x_dtype,tol", SMALL_CASES)
def test_small_products_train_like_blas_the_reference_and_one_thread(blocks, dtype, x_dtype,
                                                                     tol, sizes, names,
                                                                     variant, monkeypatch):
    """W1's shape, narrower, and one more hidden layer: the layer of 30 is
    cut into blocks of 16 and 14 rows, 95 samples make a last mini-batch of
    5.  Inputs of the network's dtype are read in place; the others are
    converted into a thread's copy first.  Each variant of the kernels the
    processor runs (the epoch loop takes the best)."""
    monkeypatch.setattr(_engine, "SMALL_VARIANT", _engine.SMALL_VARIANTS[variant])
    rng = np.random.default_rng(21)
    X = rng.random((95, 40)).astype(x_dtype)
    X[X < 0.4] = 0                                  # zero pixels
    Y = np.eye(10)[rng.integers(0, 10, 95)]
    weights = [rng.standard_normal((o, i)) for i, o in zip(sizes[:-1], sizes[1:])]
    biases = [rng.standard_normal(o) for o in sizes[1:]]
    order = rng.permutation(95).astype(np.intp)
    codes = [0] + [ACT[a] for a in names]
    data = _engine.matrix_samples(X, Y)

    def train(threads):
        W, b = engine_parameters(weights, biases, dtype)
        assert _engine.train_epoch(W, b, sizes, codes, COST["quadratic"], data, order, 10,
                                   3.0, 1.0, 0, -1.0, threads) == (_engine.OK, 10)
        return W + b

    assert all(_engine.small_layers(sizes, 10, dtype))
    small = {threads: train(threads) for threads in (1, 2)}
    monkeypatch.setattr(_engine, "SMALL_GEMM", False)
    assert not any(_engine.small_layers(sizes, 10, dtype))
    blas = train(2)
    ref_w, ref_b = ref.train(weights, biases, names, "quadratic",
                             X.astype(dtype).astype(np.float64), Y, [order], 10, 3.0)
    for p1, p2, pb, pr in zip(small[1], small[2], blas, ref_w + ref_b):
        assert p1.dtype == dtype
        np.testing.assert_array_equal(p2, p1)       # whatever the number of threads
        assert_allclose(p1.ravel(), np.ravel(pr), rtol=0, atol=tol)
        assert_allclose(p1, pb, rtol=0, atol=tol)
    # The kernels sum in another order than BLAS: had the engine taken
    # BLAS in both runs, every layer's weights would be the same bits.
    for l in range(len(sizes) - 1):
        assert not np.array_equal(small[1][l], weights[l])
        assert not np.array_equal(small[1][l], blas[l])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_an_epoch_cut_into_calls_trains_as_one_call(dtype):
    """fit's thread probe runs an epoch's first mini-batches in calls of
    their own: how the small kernels or BLAS are chosen must not depend on
    a call's number of samples (here a last call of 5, below a batch)."""
    sizes, codes = [40, 30, 10], [0, ACT["sigmoid"], ACT["sigmoid"]]
    rng = np.random.default_rng(5)
    data = _engine.matrix_samples(rng.random((60, 40)).astype(dtype),
                                  rng.random((60, 10)).astype(dtype))
    weights = [rng.standard_normal((o, i)) for i, o in zip(sizes[:-1], sizes[1:])]
    biases = [rng.standard_normal(o) for o in sizes[1:]]
    order = rng.permutation(60)[:45].astype(np.intp)
    results = []
    for cuts in ([0, 45], [0, 20, 40, 45]):
        W, b = engine_parameters(weights, biases, dtype)
        for lo, hi in zip(cuts[:-1], cuts[1:]):
            status, done = _engine.train_epoch(W, b, sizes, codes, COST["quadratic"], data,
                                               order[lo:hi], 10, 2.0, 1.0, 0, -1.0, 1)
            assert (status, done) == (_engine.OK, -(-(hi - lo) // 10))
        results.append(W + b)
    for one, cut in zip(*results):
        np.testing.assert_array_equal(cut, one)


# ---------------------------------------------------------------------------
# Layers wide enough to be cut into blocks for the engine's threads.  A
# split layer's A^l and D^l rows are padded to whole cache lines and its
# blocks start on a cache line, so these widths (none a multiple of a
# cache line of values) take the padded layout, the output layer included.

WIDE = [20, 40, 30, 17]
WIDE_ACTS = ["sigmoid", "tanh", "sigmoid"]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("threads", [1, 2, 4])
def test_split_layers_train_like_the_reference(make_problem, blocks, threads, dtype):
    X, _, Y = make_problem(45, WIDE[0], WIDE[-1], seed=8)
    rng = np.random.default_rng(41)
    weights = [rng.standard_normal((o, i)) / np.sqrt(i) for i, o in zip(WIDE[:-1], WIDE[1:])]
    biases = [rng.standard_normal(o) for o in WIDE[1:]]
    codes = [0] + [ACT[a] for a in WIDE_ACTS]
    order = rng.permutation(45).astype(np.intp)
    W, b = engine_parameters(weights, biases, dtype)
    X_, Y_ = X.astype(dtype), Y.astype(dtype)
    # 45 = 4 * 11 + 1: the last mini-batch has one sample
    status, done = _engine.train_epoch(W, b, WIDE, codes, COST["quadratic"],
                                       _engine.matrix_samples(X_, Y_), order, 11, 0.5, 1.0,
                                       0, -1.0, threads)
    assert (status, done) == (_engine.OK, 5)
    ref_w, ref_b = ref.train(weights, biases, WIDE_ACTS, "quadratic", X_.astype(float),
                             Y_.astype(float), [order], 11, 0.5)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for l in range(len(W)):
        assert_allclose(W[l], ref_w[l], rtol=0, atol=tol)
        assert_allclose(b[l].ravel(), ref_b[l], rtol=0, atol=tol)


def test_split_layers_feedforward_backprop_and_activations(make_problem, blocks):
    X, _, Y = make_problem(23, WIDE[0], WIDE[-1], seed=9)
    net = fastbp.Network(WIDE, activations=WIDE_ACTS, seed=3)
    W, b = ref.copy_parameters(net.weights, net.biases)
    assert_allclose(net.feedforward(X), ref.feedforward(W, b, WIDE_ACTS, X),
                    rtol=1e-12, atol=1e-14)
    codes = [0] + [ACT[a] for a in WIDE_ACTS]
    layers = _engine.activations(net.weights, [bb.ravel() for bb in net.biases], WIDE, codes, X)
    for l, A in enumerate(layers, start=1):
        assert A.shape == (23, WIDE[l])
        assert_allclose(A, ref.feedforward(W[:l], b[:l], WIDE_ACTS[:l], X),
                        rtol=1e-12, atol=1e-14)
    nabla_b, nabla_w = net.backprop(X, Y)
    ref_b, ref_w = ref.mean_gradients(W, b, WIDE_ACTS, "quadratic", X, Y)
    for l in range(len(W)):
        assert_allclose(nabla_w[l], ref_w[l], rtol=1e-10, atol=1e-13)
        assert_allclose(nabla_b[l].ravel(), ref_b[l], rtol=1e-10, atol=1e-13)


# ---------------------------------------------------------------------------
# A single output neuron: a binary classifier

def _binary_problem(n=400, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.random((n, 4))
    return X, (X[:, 0] + X[:, 1] > 1.0).astype(np.int64)


def test_one_output_trains_on_labels_0_and_1_as_on_those_targets():
    X, y = _binary_problem()
    by_labels = fastbp.Network([4, 6, 1], seed=7)
    by_targets = fastbp.Network([4, 6, 1], seed=7)
    h_labels = by_labels.fit(X, y, 3, 10, 2.0)
    h_targets = by_targets.fit(X, y.reshape(-1, 1).astype(float), 3, 10, 2.0)
    for a, b in zip(by_labels.weights + by_labels.biases,
                    by_targets.weights + by_targets.biases):
        np.testing.assert_array_equal(a, b)
    assert h_labels["train_accuracy"] == h_targets["train_accuracy"]


def test_one_output_predicts_and_scores_at_one_half():
    X, y = _binary_problem()
    net = fastbp.Network([4, 6, 1], seed=2)
    history = net.fit(X[:300], y[:300], 30, 10, 2.0, validation_data=(X[300:], y[300:]))
    out = net.feedforward(X[300:])[:, 0]
    expected = float(np.mean((out >= 0.5).astype(int) == y[300:]))
    assert set(np.unique(net.predict(X))) <= {0, 1}
    assert net.accuracy(X[300:], y[300:]) == expected == history["val_accuracy"][-1]
    assert expected > 0.8 and history["train_accuracy"][0] < 1.0
    # targets given as an (n, 1) array are read at 0.5 too
    assert net.accuracy(X[300:], y[300:].reshape(-1, 1) * 0.9 + 0.05) == expected


def test_one_output_refuses_other_labels():
    X, y = _binary_problem(n=30)
    net = fastbp.Network([4, 3, 1], seed=0)
    with pytest.raises(ValueError, match="Y: with one output neuron the class labels must be 0 or 1"):
        net.fit(X, y + 1, 1, 10, 1.0)
    with pytest.raises(ValueError, match="0 or 1"):
        net.accuracy(X, -y)


def test_copy_arrays_copies_every_pair_in_one_call():
    targets = [np.zeros((3, 2)), np.zeros(4, dtype=np.float32)]
    values = [np.ones((3, 2)), np.arange(4, dtype=np.float32)]
    _engine.copy_arrays(targets, values)
    for t, v in zip(targets, values):
        np.testing.assert_array_equal(t, v)
    with pytest.raises(ValueError, match="as many targets as values"):
        _engine.copy_arrays(targets, values[:1])
    # refused before any copy: the first target is left alone
    targets[0][...] = 0
    with pytest.raises(ValueError, match="shape"):
        _engine.copy_arrays(targets, [np.ones((3, 2)), np.ones(5)])
    assert not targets[0].any()
    with pytest.raises(ValueError, match="C-contiguous writeable"):
        _engine.copy_arrays([np.zeros((4, 4))[:, ::2]], [np.ones((4, 2))])


def test_overlapping_pair_agrees_with_numpy_may_share_memory():
    """Random sets of views of a few buffers (reversed, strided, transposed,
    2-d with negative strides, 0-d, broadcast, empty) and of separate arrays: a pair is found exactly when NumPy says
    two of them may share memory, and that pair does."""
    rng = np.random.default_rng(7)
    buffers = [np.zeros(64), np.zeros((8, 8)), np.zeros(40, dtype=np.float32)]

    def view_2d():
        rows = slice(int(rng.integers(0, 8)), int(rng.integers(0, 9)), int(rng.choice([1, 2, -1])))
        cols = slice(int(rng.integers(0, 8)), int(rng.integers(0, 9)), int(rng.choice([1, 3, -2])))
        v = buffers[1][rows, cols]
        return v.T if rng.random() < 0.5 else v

    def view():
        if rng.random() < 0.3:
            return view_2d()
        if rng.random() < 0.1:                  # 0-d, and a stride-0 broadcast
            base = buffers[0]
            k = int(rng.integers(0, 64))
            return base[k, ...] if rng.random() < 0.5 else np.broadcast_to(base[k:k + 1], (5,))
        base = buffers[rng.integers(len(buffers))].reshape(-1)
        lo = int(rng.integers(0, base.size))
        hi = int(rng.integers(lo, base.size + 1))
        v = base[lo:hi:int(rng.integers(1, 4))]
        return v[::-1] if rng.random() < 0.3 else v

    found = 0
    for _ in range(500):
        arrays = [view() if rng.random() < 0.5 else np.zeros(int(rng.integers(1, 9)))
                  for _ in range(int(rng.integers(1, 6)))]
        if rng.random() < 0.2:
            arrays.append(buffers[1].T)
        pair = _engine.overlapping_pair(arrays)
        numpy_pairs = [(i, j) for i in range(len(arrays)) for j in range(i + 1, len(arrays))
                       if np.may_share_memory(arrays[i], arrays[j])]
        assert (pair is None) == (not numpy_pairs)
        if pair is not None:
            assert pair in numpy_pairs
            found += 1
    assert 50 < found < 450


@pytest.mark.parametrize("output", ["tanh", "relu", "linear"])
def test_engine_takes_the_cross_entropy_with_a_sigmoid_output_only(output):
    """Its BP1 is then delta^L = a^L - y; the Network refuses the pairing
    first, and the engine itself refuses it too."""
    sizes, acts = [3, 4, 2], [ACT["sigmoid"], ACT["sigmoid"], ACT[output]]
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal((4, 3)), rng.standard_normal((2, 4))]
    biases = [np.zeros(4), np.zeros(2)]
    X, Y = rng.random((5, 3)), rng.random((5, 2))
    before = [w.copy() for w in weights]
    with pytest.raises(ValueError, match="cross-entropy with a sigmoid output"):
        _engine.backprop(weights, biases, sizes, acts, COST["cross-entropy"], X, Y)
    with pytest.raises(ValueError, match="cross-entropy with a sigmoid output"):
        _engine.train_epoch(weights, biases, sizes, acts, COST["cross-entropy"],
                            _engine.matrix_samples(X, Y), np.arange(5), 5, 0.5, 1.0,
                            0, -1.0, 1)
    for w, w0 in zip(weights, before):
        np.testing.assert_array_equal(w, w0)
