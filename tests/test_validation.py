"""Bad input is refused before any compiled code runs, and changes nothing.

Every bad argument to the native API (fastbp.Network) and to the book's API
(fastbp.network) must raise ValueError or TypeError whose message names the
argument, and leave the network bit-identical: weights, biases, and the
random state it shuffles from.  Strided and Fortran-ordered arrays are
accepted and train exactly as their C-contiguous copies.
"""
import random

import numpy as np
import pytest
from numpy.testing import assert_allclose

import fastbp
import fastbp.network as network
from fastbp import _checks, _engine

N, N_IN, N_OUT = 40, 5, 3
BAD = (ValueError, TypeError)


def snapshot(net):
    """Everything a failed call must leave alone, as comparable values."""
    state = [(p.shape, p.dtype.str, p.tobytes()) for p in net.weights + net.biases]
    if hasattr(net, "rng"):
        state.append(repr(net.rng.bit_generator.state))
    return state


def assert_refused(net, call, match):
    """call() raises ValueError/TypeError matching ``match`` and the network
    is exactly as before."""
    before = snapshot(net)
    with pytest.raises(BAD, match=match):
        call()
    assert snapshot(net) == before


@pytest.fixture
def data(make_problem):
    X, labels, Y = make_problem(N, N_IN, N_OUT, seed=21)
    return X, labels, Y


@pytest.fixture
def net():
    return fastbp.Network([N_IN, 6, N_OUT], seed=3)


# ---------------------------------------------------------------------------
# Layer sizes

BAD_SIZES = [
    [N_IN, 0, N_OUT], [0, 3], [3, 0], [-1, 3], [3, -4],
    [3, 2.5], [2.5, 3], [3.0, 2],
    [10**12, 3], [3, 10**12], [3, 2**31],
    [784, 10**5, 10**5],              # 10^10 weights
    [True, 3], [3, False],
    "abc", ["3", 2], [3, "2"], [3, None],
    [3], [], None, 7,
    np.array([3, 2.5]),
]


@pytest.mark.parametrize("sizes", BAD_SIZES, ids=repr)
def test_native_sizes_refused(sizes):
    with pytest.raises(BAD, match="sizes"):
        fastbp.Network(sizes)


@pytest.mark.parametrize("sizes", BAD_SIZES, ids=repr)
def test_book_sizes_refused(sizes):
    np.random.seed(5)
    state = repr(np.random.get_state())
    with pytest.raises(BAD, match="sizes"):
        network.Network(sizes)
    # no draw was taken from the global generator a seeded script relies on
    assert repr(np.random.get_state()) == state


def test_native_numpy_integer_sizes_accepted():
    net = fastbp.Network(np.array([4, 3, 2]))
    assert [w.shape for w in net.weights] == [(3, 4), (2, 3)]


# ---------------------------------------------------------------------------
# fit

def _nan_at(X, value=np.nan):
    X = X.copy()
    X[N // 2, 1] = value
    return X


def _strings(X):
    return X.astype(str)


def _objects(X):
    return X.astype(object)


# (id, function of (X, labels, Y) returning fit's arguments as a dict, match)
FIT_CASES = [
    ("X-nan", lambda X, l, Y: dict(X=_nan_at(X)), r"\bX\b"),
    ("X-inf", lambda X, l, Y: dict(X=_nan_at(X, np.inf)), r"\bX\b"),
    ("X-neg-inf", lambda X, l, Y: dict(X=_nan_at(X, -np.inf)), r"\bX\b"),
    ("Y-nan", lambda X, l, Y: dict(Y=_nan_at(Y)), r"\bY\b"),
    ("Y-inf", lambda X, l, Y: dict(Y=_nan_at(Y, np.inf)), r"\bY\b"),
    ("X-too-wide", lambda X, l, Y: dict(X=np.hstack([X, X[:, :1]])), r"\bX\b"),
    ("X-too-narrow", lambda X, l, Y: dict(X=X[:, :-1]), r"\bX\b"),
    ("Y-wrong-width", lambda X, l, Y: dict(Y=np.hstack([Y, Y[:, :1]])), r"\bY\b"),
    ("Y-fewer-rows", lambda X, l, Y: dict(Y=Y[:-1]), r"\bY\b"),
    ("X-fewer-rows", lambda X, l, Y: dict(X=X[:-1]), r"\bY\b|\bX\b"),
    ("labels-fewer", lambda X, l, Y: dict(Y=l[:-1]), r"\bY\b"),
    ("labels-too-big", lambda X, l, Y: dict(Y=np.where(l == 0, N_OUT, l)), r"\bY\b"),
    ("labels-negative", lambda X, l, Y: dict(Y=np.where(l == 0, -1, l)), r"\bY\b"),
    ("labels-float", lambda X, l, Y: dict(Y=l + 0.5), r"\bY\b"),
    ("empty", lambda X, l, Y: dict(X=X[:0], Y=Y[:0]), r"\bX\b|\bY\b"),
    ("empty-labels", lambda X, l, Y: dict(X=X[:0], Y=l[:0]), r"\bX\b|\bY\b"),
    ("X-1d", lambda X, l, Y: dict(X=X[:, 0]), r"\bX\b"),
    ("X-3d", lambda X, l, Y: dict(X=X[:, :, None]), r"\bX\b"),
    ("Y-3d", lambda X, l, Y: dict(Y=Y[:, :, None]), r"\bY\b"),
    ("X-strings", lambda X, l, Y: dict(X=_strings(X)), r"\bX\b"),
    ("X-objects", lambda X, l, Y: dict(X=_objects(X)), r"\bX\b"),
    ("X-complex", lambda X, l, Y: dict(X=X + 0j), r"\bX\b"),
    ("X-ragged-list", lambda X, l, Y: dict(X=[[1.0] * N_IN] * (N - 1) + [[1.0]]), r"\bX\b"),
    ("Y-strings", lambda X, l, Y: dict(Y=_strings(Y)), r"\bY\b"),
    ("labels-strings", lambda X, l, Y: dict(Y=l.astype(str)), r"\bY\b"),
    ("Y-objects", lambda X, l, Y: dict(Y=_objects(Y)), r"\bY\b"),
    ("X-None", lambda X, l, Y: dict(X=None), r"\bX\b"),
    ("batch-0", lambda X, l, Y: dict(batch_size=0), "batch_size"),
    ("batch-negative", lambda X, l, Y: dict(batch_size=-3), "batch_size"),
    ("batch-fraction", lambda X, l, Y: dict(batch_size=2.5), "batch_size"),
    ("batch-bool", lambda X, l, Y: dict(batch_size=True), "batch_size"),
    ("batch-string", lambda X, l, Y: dict(batch_size="10"), "batch_size"),
    ("batch-absurd", lambda X, l, Y: dict(batch_size=10**12), "batch_size"),
    ("epochs-negative", lambda X, l, Y: dict(epochs=-1), "epochs"),
    ("epochs-fraction", lambda X, l, Y: dict(epochs=1.5), "epochs"),
    ("epochs-string", lambda X, l, Y: dict(epochs="2"), "epochs"),
    ("eta-nan", lambda X, l, Y: dict(eta=float("nan")), "eta"),
    ("eta-inf", lambda X, l, Y: dict(eta=float("inf")), "eta"),
    ("eta-negative", lambda X, l, Y: dict(eta=-0.5), "eta"),
    ("eta-zero", lambda X, l, Y: dict(eta=0.0), "eta"),
    ("eta-string", lambda X, l, Y: dict(eta="0.5"), "eta"),
    ("eta-array", lambda X, l, Y: dict(eta=np.array([0.5, 0.5])), "eta"),
    ("lmbda-negative", lambda X, l, Y: dict(lmbda=-0.1), "lmbda"),
    ("lmbda-nan", lambda X, l, Y: dict(lmbda=float("nan")), "lmbda"),
    ("lmbda-inf", lambda X, l, Y: dict(lmbda=float("inf")), "lmbda"),
    ("validation-nan", lambda X, l, Y: dict(validation_data=(_nan_at(X), Y)),
     "validation_data"),
    ("validation-width", lambda X, l, Y: dict(validation_data=(X[:, :-1], Y)),
     "validation_data"),
    ("validation-labels", lambda X, l, Y: dict(validation_data=(X, l + N_OUT)),
     "validation_data"),
    ("validation-not-pair", lambda X, l, Y: dict(validation_data=X), "validation_data"),
    ("X-masked", lambda X, l, Y: dict(X=np.ma.masked_greater(X, 0.5)), r"\bX\b.*masked"),
]


@pytest.mark.parametrize("case,make_args,match", FIT_CASES, ids=[c[0] for c in FIT_CASES])
@pytest.mark.parametrize("targets", ["labels", "one-hot"])
def test_fit_refuses(net, data, case, make_args, match, targets):
    X, labels, Y = data
    args = dict(X=X, Y=labels if targets == "labels" else Y, epochs=2, batch_size=10, eta=0.5)
    args.update(make_args(X, labels, Y))
    assert_refused(net, lambda: net.fit(**args), match)


def test_fit_good_arguments_do_train(net, data):
    """The base arguments of the battery above are valid: the refusals come
    from the one bad argument."""
    X, labels, Y = data
    before = snapshot(net)
    net.fit(X, labels, epochs=2, batch_size=10, eta=0.5)
    assert snapshot(net) != before


# ---------------------------------------------------------------------------
# feedforward, predict, backprop, cost_value, accuracy

X_CASES = [
    ("nan", lambda X: _nan_at(X)),
    ("inf", lambda X: _nan_at(X, np.inf)),
    ("wide", lambda X: np.hstack([X, X])),
    ("narrow", lambda X: X[:, :2]),
    ("1d", lambda X: X[0]),
    ("3d", lambda X: X[None]),
    ("empty", lambda X: X[:0]),
    ("strings", _strings),
    ("objects", _objects),
    ("none", lambda X: None),
    ("masked", lambda X: np.ma.masked_greater(X, 0.5)),
]


@pytest.mark.parametrize("case,bad", X_CASES, ids=[c[0] for c in X_CASES])
@pytest.mark.parametrize("method", ["feedforward", "predict"])
def test_evaluation_refuses_bad_X(net, data, method, case, bad):
    X = data[0]
    assert_refused(net, lambda: getattr(net, method)(bad(X)), r"\bX\b")


@pytest.mark.parametrize("case,bad", X_CASES, ids=[c[0] for c in X_CASES])
def test_backprop_refuses_bad_X(net, data, case, bad):
    X, _, Y = data
    assert_refused(net, lambda: net.backprop(bad(X), Y), r"\bX\b")


@pytest.mark.parametrize("case,bad", [
    ("nan", lambda l, Y: _nan_at(Y)),
    ("wide", lambda l, Y: np.hstack([Y, Y])),
    ("short", lambda l, Y: Y[:-2]),
    ("3d", lambda l, Y: Y[:, :, None]),
    ("labels-out-of-range", lambda l, Y: l + 1),
    ("labels-short", lambda l, Y: l[:-1]),
    ("strings", lambda l, Y: _strings(Y)),
    ("masked", lambda l, Y: np.ma.masked_equal(l, 0)),
], ids=lambda v: v if isinstance(v, str) else "")
def test_backprop_refuses_bad_Y(net, data, case, bad):
    X, labels, Y = data
    assert_refused(net, lambda: net.backprop(X, bad(labels, Y)), r"\bY\b")


def test_cost_value_and_accuracy_refuse(net, data):
    X, labels, Y = data
    assert_refused(net, lambda: net.cost_value(_nan_at(X), Y), r"\bX\b")
    assert_refused(net, lambda: net.cost_value(X, _nan_at(Y)), r"\bY\b")
    assert_refused(net, lambda: net.cost_value(X, Y, lmbda=-1.0), "lmbda")
    assert_refused(net, lambda: net.accuracy(X, labels + N_OUT), r"\by\b")
    assert_refused(net, lambda: net.accuracy(X[:, :2], labels), r"\bX\b")


@pytest.mark.parametrize("kwargs,match", [
    (dict(activations="softmax"), "activations"),
    (dict(activations=["sigmoid"]), "activations"),
    (dict(activations=["sigmoid", "tanh", "relu"]), "activations"),
    (dict(activations=7), "activations"),
    (dict(cost="hinge"), "cost"),
    (dict(cost=["quadratic"]), "cost"),
    (dict(cost="cross-entropy", activations="tanh"), "cross-entropy cost needs outputs"),
    (dict(cost="cross-entropy", activations=["sigmoid", "linear"]),
     "cross-entropy cost needs outputs"),
    (dict(seed=-1), "seed must be None, a non-negative integer"),
    (dict(seed=1.5), "seed must be None, a non-negative integer"),
    (dict(seed="x"), "seed must be None, a non-negative integer"),
    (dict(dtype=np.int32), "dtype"),
    (dict(dtype=np.float16), "dtype"),
    (dict(dtype="complex128"), "dtype"),
    (dict(init="zeros"), "init"),
])
def test_native_constructor_options_refused(kwargs, match):
    with pytest.raises(BAD, match=match):
        fastbp.Network([N_IN, 6, N_OUT], **kwargs)


def test_bad_assigned_parameters_refused(net, data):
    """A script may assign weights; bad ones are refused by the next call."""
    X, labels, _ = data
    net.weights[0] = net.weights[0].copy()
    net.weights[0][0, 0] = np.nan
    assert_refused(net, lambda: net.fit(X, labels, 1, 10, 0.5), r"weights\[0\]")
    net.weights[0] = np.zeros((2, 2))
    assert_refused(net, lambda: net.feedforward(X), r"weights\[0\]")


# ---------------------------------------------------------------------------
# The book's API: fastbp.network

@pytest.fixture
def book_net():
    np.random.seed(8)
    return network.Network([N_IN, 6, N_OUT])


@pytest.fixture
def book_data(data):
    X, labels, Y = data
    training = [(x.reshape(-1, 1), y.reshape(-1, 1)) for x, y in zip(X, Y)]
    test = [(x.reshape(-1, 1), int(label)) for x, label in zip(X, labels)]
    return training, test


def _replace(seq, i, item):
    seq = list(seq)
    seq[i] = item
    return seq


def _x_with(value):
    x = np.ones((N_IN, 1))
    x[2, 0] = value
    return x


SGD_CASES = [
    ("x-nan", lambda tr, te: dict(training_data=_replace(tr, 5, (_x_with(np.nan), tr[5][1]))),
     "training_data"),
    ("x-inf", lambda tr, te: dict(training_data=_replace(tr, 5, (_x_with(np.inf), tr[5][1]))),
     "training_data"),
    ("y-nan", lambda tr, te: dict(training_data=_replace(tr, 0, (tr[0][0], np.full((N_OUT, 1), np.nan)))),
     "training_data"),
    ("x-wide", lambda tr, te: dict(training_data=_replace(tr, 3, (np.ones((N_IN + 1, 1)), tr[3][1]))),
     "training_data"),
    ("all-x-wide", lambda tr, te: dict(training_data=[(np.ones((N_IN + 1, 1)), y) for _, y in tr]),
     "training_data"),
    ("y-wide", lambda tr, te: dict(training_data=[(x, np.ones((N_OUT + 1, 1))) for x, _ in tr]),
     "training_data"),
    ("x-3d", lambda tr, te: dict(training_data=[(x[None], y) for x, y in tr]), "training_data"),
    ("x-strings", lambda tr, te: dict(training_data=[(np.full((N_IN, 1), "a"), y) for x, y in tr]),
     "training_data"),
    ("x-numeric-strings", lambda tr, te: dict(training_data=[(x.astype(str), y) for x, y in tr]),
     "training_data"),
    ("x-objects", lambda tr, te: dict(training_data=[(np.full((N_IN, 1), None), y) for x, y in tr]),
     "training_data"),
    ("not-pairs", lambda tr, te: dict(training_data=[x for x, _ in tr]), "training_data"),
    ("empty", lambda tr, te: dict(training_data=[]), "training_data"),
    ("mbs-0", lambda tr, te: dict(mini_batch_size=0), "mini_batch_size"),
    ("mbs-negative", lambda tr, te: dict(mini_batch_size=-10), "mini_batch_size"),
    ("mbs-fraction", lambda tr, te: dict(mini_batch_size=2.5), "mini_batch_size"),
    ("epochs-negative", lambda tr, te: dict(epochs=-1), "epochs"),
    ("eta-nan", lambda tr, te: dict(eta=float("nan")), "eta"),
    ("eta-inf", lambda tr, te: dict(eta=float("inf")), "eta"),
    ("eta-negative", lambda tr, te: dict(eta=-3.0), "eta"),
    ("test-nan", lambda tr, te: dict(test_data=_replace(te, 1, (_x_with(np.nan), 0))), "test_data"),
    ("test-wide", lambda tr, te: dict(test_data=[(np.ones((N_IN + 2, 1)), l) for _, l in te]),
     "test_data"),
]


@pytest.mark.parametrize("case,make_args,match", SGD_CASES,
                         ids=[c.values[0] if hasattr(c, "values") else c[0] for c in SGD_CASES])
def test_sgd_refuses(book_net, book_data, case, make_args, match):
    training, test = book_data
    args = dict(training_data=list(training), epochs=2, mini_batch_size=10, eta=3.0,
                test_data=None)
    args.update(make_args(training, test))
    order = [id(p) for p in args["training_data"]]
    random.seed(4)
    state = random.getstate()
    assert_refused(book_net, lambda: book_net.SGD(**args), match)
    # refused before the shuffle: the caller's list and Python's generator untouched
    assert [id(p) for p in args["training_data"]] == order
    assert random.getstate() == state


def test_sgd_good_arguments_do_train(book_net, book_data, capsys):
    training, test = book_data
    before = snapshot(book_net)
    book_net.SGD(list(training), 2, 10, 3.0, test_data=test)
    assert snapshot(book_net) != before
    assert capsys.readouterr().out.count("Epoch") == 2


@pytest.mark.parametrize("case,bad", [
    ("nan", lambda: _x_with(np.nan)),
    ("inf", lambda: _x_with(-np.inf)),
    ("rows", lambda: np.ones((N_IN + 1, 1))),
    ("3d", lambda: np.ones((N_IN, 1, 1))),
    ("strings", lambda: np.ones((N_IN, 1)).astype(str)),
    ("objects", lambda: np.full((N_IN, 1), None)),
], ids=lambda v: v if isinstance(v, str) else "")
def test_book_feedforward_refuses(book_net, case, bad):
    assert_refused(book_net, lambda: book_net.feedforward(bad()), r"\ba\b")


def test_book_evaluate_refuses(book_net, book_data):
    _, test = book_data
    assert_refused(book_net, lambda: book_net.evaluate(_replace(test, 0, (_x_with(np.nan), 1))),
                   "test_data")
    assert_refused(book_net, lambda: book_net.evaluate([(np.ones((2, 1)), 0)] * 3), "test_data")
    assert_refused(book_net, lambda: book_net.evaluate([]), "test_data")


def test_book_update_mini_batch_refuses(book_net, book_data):
    training, _ = book_data
    batch = training[:10]
    assert_refused(book_net, lambda: book_net.update_mini_batch(
        _replace(batch, 2, (_x_with(np.nan), batch[2][1])), 3.0), "mini_batch")
    assert_refused(book_net, lambda: book_net.update_mini_batch(
        [(np.ones((3, 1)), y) for _, y in batch], 3.0), "mini_batch")
    assert_refused(book_net, lambda: book_net.update_mini_batch([], 3.0), "mini_batch")
    for eta in (float("nan"), float("inf"), -1.0):
        assert_refused(book_net, lambda: book_net.update_mini_batch(batch, eta), "eta")


def test_book_backprop_refuses(book_net):
    y = np.zeros((N_OUT, 1))
    assert_refused(book_net, lambda: book_net.backprop(_x_with(np.nan), y), r"\bx\b")
    assert_refused(book_net, lambda: book_net.backprop(np.ones((N_IN + 1, 1)), y), r"\bx\b")
    assert_refused(book_net, lambda: book_net.backprop(np.ones((N_IN, 2)), y), r"\bx\b")
    assert_refused(book_net, lambda: book_net.backprop(_x_with(0.0), np.ones((N_OUT + 1, 1))),
                   r"\by\b")
    assert_refused(book_net, lambda: book_net.backprop(_x_with(0.0), np.full((N_OUT, 1), np.nan)),
                   r"\by\b")


# ---------------------------------------------------------------------------
# Strided and Fortran-ordered inputs train exactly as contiguous copies

def assert_same_network(a, b):
    for p, q in zip(a.weights + a.biases, b.weights + b.biases):
        assert p.dtype == q.dtype
        assert_allclose(p, q, rtol=0, atol=1e-15)


def _layouts(X):
    """(name, X in that layout) with equal values."""
    wide = np.zeros((X.shape[0], 2 * X.shape[1]))
    wide[:, ::2] = X
    tall = np.zeros((2 * X.shape[0], X.shape[1]))
    tall[::2] = X
    reversed_rows = X[::-1].copy()[::-1]
    return [
        ("columns-strided", wide[:, ::2]),
        ("rows-strided", tall[::2]),
        ("fortran", np.asfortranarray(X)),
        ("negative-strides", reversed_rows),
    ]


@pytest.mark.parametrize("layout", ["columns-strided", "rows-strided", "fortran",
                                    "negative-strides"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fit_layouts_match_contiguous(data, layout, dtype):
    X, labels, Y = data
    X_laid = dict(_layouts(X))[layout]
    Y_laid = dict(_layouts(Y))[layout]
    assert not X_laid.flags.c_contiguous
    a = fastbp.Network([N_IN, 6, N_OUT], dtype=dtype, seed=9)
    b = fastbp.Network([N_IN, 6, N_OUT], dtype=dtype, seed=9)
    a.fit(X_laid, Y_laid, 3, 7, 0.5, validation_data=(X_laid, Y_laid))
    b.fit(np.ascontiguousarray(X), np.ascontiguousarray(Y), 3, 7, 0.5,
          validation_data=(X, Y))
    assert_same_network(a, b)
    assert_allclose(a.feedforward(X_laid), b.feedforward(X), rtol=0, atol=1e-15)
    grads_a, grads_b = a.backprop(X_laid, Y_laid), b.backprop(X, Y)
    for ga, gb in zip(grads_a[0] + grads_a[1], grads_b[0] + grads_b[1]):
        assert_allclose(ga, gb, rtol=0, atol=1e-15)
    # the caller's arrays were read, not written
    assert_allclose(X_laid, X, rtol=0, atol=0)


def test_fit_converts_other_dtypes_once(data):
    """float32 or integer input to a float64 network trains as the float64 copy."""
    X, labels, _ = data
    X32 = X.astype(np.float32)
    a = fastbp.Network([N_IN, 6, N_OUT], seed=9)
    b = fastbp.Network([N_IN, 6, N_OUT], seed=9)
    a.fit(X32, labels.astype(np.int32), 2, 7, 0.5)
    b.fit(X32.astype(np.float64), labels, 2, 7, 0.5)
    assert_same_network(a, b)
    Xi = np.round(X * 10).astype(np.int16)
    a.fit(Xi, labels, 1, 7, 0.1)
    b.fit(Xi.astype(np.float64), labels, 1, 7, 0.1)
    assert_same_network(a, b)


def test_book_sgd_strided_vectors(data, capsys):
    """Column vectors that are views with strides train as contiguous ones."""
    X, labels, Y = data
    XF = np.asfortranarray(np.hstack([X, X]).T)       # (2 n_in, N), Fortran
    strided = [(XF[::2, i:i + 1], Y[i].reshape(-1, 1)) for i in range(N)]
    contiguous = [(np.ascontiguousarray(x), y) for x, y in strided]
    assert not strided[0][0].flags.c_contiguous
    nets = []
    for training in (strided, contiguous):
        np.random.seed(2)
        net = network.Network([N_IN, 6, N_OUT])
        random.seed(2)
        net.SGD(list(training), 2, 6, 3.0)
        nets.append(net)
    assert_same_network(*nets)
    a = XF[::2, :3]
    assert_allclose(nets[0].feedforward(a), nets[0].feedforward(np.ascontiguousarray(a)),
                    rtol=0, atol=1e-15)


# -- parameters assigned between calls, and unusual memory ------------------------
def test_weights_assigned_as_tuples_keep_working():
    net = fastbp.Network([3, 4, 2], seed=0)
    expected = net.feedforward(np.ones((4, 3)))
    net.weights = tuple(net.weights)
    net.biases = tuple(net.biases)
    np.testing.assert_array_equal(net.feedforward(np.ones((4, 3))), expected)
    net.fit(np.ones((4, 3)), np.array([0, 1, 0, 1]), 1, 2, 0.5)
    assert isinstance(net.weights, list) and isinstance(net.biases, list)


def test_misaligned_inputs_train_like_aligned_ones():
    rng = np.random.default_rng(3)
    X = rng.random((40, 5))
    raw = np.zeros(X.size * 8 + 1, dtype=np.uint8)
    misaligned = raw[1:].view(np.float64).reshape(X.shape)   # one byte off
    misaligned[...] = X
    assert not misaligned.flags.aligned
    labels = np.arange(40) % 3
    a = fastbp.Network([5, 4, 3], seed=1)
    b = fastbp.Network([5, 4, 3], seed=1)
    a.fit(X, labels, 2, 8, 0.5)
    b.fit(misaligned, labels, 2, 8, 0.5)
    for p, q in zip(a.weights + a.biases, b.weights + b.biases):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("form", ["C", "F", "strided", "float32", "int"])
def test_check_matrix_bound_gives_the_checked_matrix_and_its_max(form):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((20, 6)) * 3
    given = {"C": X, "F": np.asfortranarray(X), "strided": np.repeat(X, 2, axis=1)[:, ::2],
             "float32": X.astype(np.float32), "int": (X * 10).astype(np.int64)}[form]
    checked, bound = _checks.check_matrix_bound("X", given, 6, np.float64)
    assert checked.dtype == np.float64 and checked.flags.c_contiguous
    np.testing.assert_array_equal(checked, given)
    assert bound == np.max(np.abs(checked))
    with pytest.raises(ValueError, match="X contains NaN"):
        bad = given.astype(np.float64)
        bad[3, 2] = np.nan
        _checks.check_matrix_bound("X", bad, 6, np.float64)


@pytest.mark.parametrize("method", ["fit", "feedforward", "accuracy"])
def test_float64_inputs_beyond_float32s_range_are_refused_by_a_float32_network(method):
    X = np.ones((10, 3))
    X[2, 1] = -1e39                   # finite in float64, infinite in float32
    net = fastbp.Network([3, 4, 2], dtype=np.float32, seed=0)
    before = [p.copy() for p in net.weights + net.biases]
    call = {"fit": lambda: net.fit(X, np.arange(10) % 2, 1, 5, 0.1),
            "feedforward": lambda: net.feedforward(X),
            "accuracy": lambda: net.accuracy(X, np.arange(10) % 2)}[method]
    with pytest.raises(ValueError, match="X holds values beyond the range of float32"):
        call()
    for p, q in zip(net.weights + net.biases, before):
        np.testing.assert_array_equal(p, q)
    X[2, 1] = -3e38                   # within it
    assert np.isfinite(net.feedforward(X)).all()


# ---------------------------------------------------------------------------
# The parameters fit trains: checked every epoch, in memory of their own

def test_a_callback_that_is_not_callable_is_refused_before_training(net, data):
    X, labels, _ = data
    assert_refused(net, lambda: net.fit(X, labels, 2, 8, 0.5, callback=5), "callback")


def test_parameters_a_callback_assigns_are_checked_and_trained_from_the_next_epoch(data):
    X, labels, _ = data
    a = fastbp.Network([N_IN, 6, N_OUT], seed=3)
    b = fastbp.Network([N_IN, 6, N_OUT], seed=3)
    new_w = np.linspace(-1, 1, 6 * N_OUT).reshape(N_OUT, 6)

    def replace(epoch, history):
        if epoch == 0:
            a.weights[1] = np.asfortranarray(new_w)     # converted, then trained

    a.fit(X, labels, 3, 8, 0.5, callback=replace)
    b.fit(X, labels, 1, 8, 0.5)
    b.weights[1] = new_w.copy()
    b.fit(X, labels, 2, 8, 0.5)
    for p, q in zip(a.weights + a.biases, b.weights + b.biases):
        np.testing.assert_array_equal(p, q)

    guard = _engine.aligned_empty((64,), np.float64)   # trained in place, not copied
    guard[:] = 0.0

    def misshape(epoch, history):
        a.weights[1] = guard[:N_OUT].reshape(N_OUT, 1)  # the wrong shape

    with pytest.raises(ValueError, match=r"weights\[1\] must have shape"):
        a.fit(X, labels, 2, 8, 0.5, callback=misshape)
    assert not guard.any()


@pytest.mark.parametrize("shared", ["layers", "weights and biases"])
def test_parameters_that_share_memory_are_refused_by_fit(shared):
    net = fastbp.Network([4, 4, 4], seed=1)
    if shared == "layers":
        net.weights[1] = net.weights[0]
        match = r"weights\[0\] and weights\[1\] share memory"
    else:
        buffer = np.zeros(4 * 4 + 4)
        net.weights[0] = buffer[:16].reshape(4, 4)
        net.biases[0] = buffer[12:16].reshape(4, 1)    # overlaps the last row
        match = r"weights\[0\] and biases\[0\] share memory"
    X = np.random.default_rng(0).random((10, 4))
    assert_refused(net, lambda: net.fit(X, np.arange(10) % 4, 1, 5, 0.5), match)
    net.feedforward(X)                  # reading them is fine


@pytest.mark.parametrize("which", ["X", "Y"])
def test_training_data_in_the_networks_own_arrays_is_read_as_it_was(which):
    """fit reads a copy of data that shares memory with the parameters it
    updates: the result is that of training on the data's values."""
    rng = np.random.default_rng(5)
    a = fastbp.Network([4, 4, 4], seed=2)
    b = fastbp.Network([4, 4, 4], seed=2)
    X, Y = rng.random((4, 4)), rng.random((4, 4))
    if which == "X":
        a.weights[0][...] = b.weights[0][...] = X
        a.fit(a.weights[0], Y, 3, 2, 0.5)
    else:
        a.weights[1][...] = b.weights[1][...] = Y
        a.fit(X, a.weights[1], 3, 2, 0.5)
    b.fit(X, Y, 3, 2, 0.5)
    for p, q in zip(a.weights + a.biases, b.weights + b.biases):
        np.testing.assert_array_equal(p, q)



@pytest.mark.parametrize("method", ["fit", "fit-validation", "backprop", "cost_value"])
def test_the_cross_entropy_refuses_targets_outside_0_1(data, method):
    X, labels, Y = data
    net = fastbp.Network([N_IN, 6, N_OUT], cost="cross-entropy", seed=3)
    bad = Y - 0.5 * (np.arange(N) % 2)[:, None]          # some targets -0.5
    call = {"fit": lambda: net.fit(X, bad, 1, 10, 0.5),
            "fit-validation": lambda: net.fit(X, Y, 1, 10, 0.5, validation_data=(X, bad)),
            "backprop": lambda: net.backprop(X, bad),
            "cost_value": lambda: net.cost_value(X, bad)}[method]
    assert_refused(net, call, r"\bY: the cross-entropy cost needs targets in \[0, 1\]")
    quadratic = fastbp.Network([N_IN, 6, N_OUT], seed=3)
    quadratic.backprop(X, bad)                           # any targets for the quadratic


def test_a_masked_array_without_masked_entries_is_read_as_its_data(net, data):
    X, labels, _ = data
    np.testing.assert_array_equal(net.feedforward(np.ma.array(X)), net.feedforward(X))
