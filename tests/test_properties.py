"""Property tests: the engine against the per-sample NumPy reference over
random networks, batch sizes, dtypes and memory layouts (hypothesis).

Every example draws a network of 1 to 4 layers after the input, each of 1
to 12 neurons, with a random activation per layer and a cost (cross-entropy
only over a sigmoid output, where BP1 is defined for every output); a data
set of 1 to 24 samples, a batch size from 1 to beyond the number of samples
(so short last batches and single whole-set batches both occur), float32 or
float64, and inputs laid out C-contiguous, Fortran-ordered, strided or with
negative strides.  The expected values are tests/reference.py's, computed
sample by sample in float64 from the same starting parameters.

An epoch is checked as a chain of exact and approximate equalities: fit()
on any layout == fit() on C-contiguous copies == one engine call per
mini-batch (bit for bit), and every such mini-batch step ~ the reference's
step from the same parameters (1e-9 in float64, 2e-4 in float32, relative to
the size of the values).  In float64 the whole epoch is also compared with
the reference's epoch.  Some draws (deep linear or ReLU stacks, eta = 2)
really diverge; then all three must stop at the same mini-batch with the
parameters of the one before.

The runs are derandomized (the same examples every time, so CI is
reproducible); FASTBP_PROPERTY_EXAMPLES=n sets the number of examples per
test (default 40) and FASTBP_PROPERTY_RANDOM=1 explores new ones.
"""
import copy
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st
from numpy.testing import assert_allclose, assert_array_equal

import fastbp
from fastbp import _training

import reference as ref

ACTIVATIONS = ["sigmoid", "tanh", "relu", "linear"]
LAYOUTS = ["C", "F", "strided", "negative"]
DTYPES = [np.float64, np.float32]
# Relative tolerances against the float64 reference, on the scale of the values.
TOL = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 2e-4}

PROPERTY = settings(
    max_examples=int(os.environ.get("FASTBP_PROPERTY_EXAMPLES", "40")),
    deadline=None,
    derandomize=os.environ.get("FASTBP_PROPERTY_RANDOM", "") in ("", "0"),
    suppress_health_check=[HealthCheck.too_slow],
)


def laid_out(A, layout):
    """The values of A in the memory layout asked for (a view where not C)."""
    if layout == "C":
        return np.ascontiguousarray(A)
    if layout == "F":
        return np.asfortranarray(A)
    if layout == "strided":
        big = np.full((2 * A.shape[0] + 1, 3 * A.shape[1]), np.nan, dtype=A.dtype)
        big[1::2, 2::3] = A
        return big[1::2, 2::3]
    if layout == "negative":
        return np.ascontiguousarray(A[::-1, ::-1])[::-1, ::-1]
    raise ValueError(layout)


@st.composite
def problems(draw):
    """A network and a data set: a dict of everything an example needs."""
    n_layers = draw(st.integers(1, 4))
    sizes = draw(st.lists(st.integers(1, 12), min_size=n_layers + 1, max_size=n_layers + 1))
    acts = draw(st.lists(st.sampled_from(ACTIVATIONS), min_size=n_layers,
                         max_size=n_layers))
    costs = ["quadratic", "cross-entropy"] if acts[-1] == "sigmoid" else ["quadratic"]
    n = draw(st.integers(1, 24))
    return {
        "sizes": sizes,
        "acts": acts,
        "cost": draw(st.sampled_from(costs)),
        "n": n,
        "batch_size": draw(st.integers(1, n + 6)),
        "dtype": np.dtype(draw(st.sampled_from(DTYPES))),
        "layout_X": draw(st.sampled_from(LAYOUTS)),
        "layout_Y": draw(st.sampled_from(LAYOUTS)),
        "labels": draw(st.booleans()),
        "eta": draw(st.sampled_from([0.05, 0.5, 2.0])),
        "lmbda": draw(st.sampled_from([0.0, 0.0, 0.7])),
        "seed": draw(st.integers(0, 2**20)),
    }


def make_network_and_data(p):
    """The network (seeded) and float64 data: X (n, n_0) in [-1, 1], and
    targets Y (n, n_L) in [0, 1] with the labels when p["labels"]."""
    net = fastbp.Network(p["sizes"], activations=p["acts"], cost=p["cost"],
                         dtype=p["dtype"], seed=p["seed"])
    rng = np.random.default_rng(p["seed"] + 1)
    n, n_out = p["n"], p["sizes"][-1]
    X = rng.uniform(-1.0, 1.0, size=(n, p["sizes"][0]))
    labels = rng.integers(0, n_out, size=n)
    if p["labels"]:
        Y = np.eye(n_out)[labels]
    else:
        Y = rng.uniform(0.0, 1.0, size=(n, n_out))
        labels = None
    # the inputs as the engine will see them (rounded to its dtype)
    X = X.astype(p["dtype"]).astype(np.float64)
    Y = Y.astype(p["dtype"]).astype(np.float64)
    return net, X, Y, labels


def parameters(net):
    return ([np.array(w, dtype=np.float64) for w in net.weights],
            [np.array(b, dtype=np.float64) for b in net.biases])


def assert_close(actual, expected, dtype, what, scale=1.0):
    """|actual - expected| <= tol * max(scale, max |expected|), tol by dtype."""
    expected = np.asarray(expected, dtype=np.float64)
    tol = TOL[np.dtype(dtype)]
    scale = max(scale, float(np.max(np.abs(expected))))
    assert_allclose(np.asarray(actual, dtype=np.float64).reshape(expected.shape), expected,
                    rtol=0, atol=tol * scale, err_msg=what)


def replay_by_steps(net, X, Y, order, p, lmbda):
    """Train copies of net's parameters one mini-batch per engine call, and
    check each step against the reference's step from the same parameters.

    Per-step checks keep float32 rounding from being amplified by the
    dynamics of a whole epoch.  Returns (weights, biases, diverged): the
    parameters after the last step the engine applied, and whether a step
    raised FloatingPointError (the reference is not asked about that step)."""
    dtype, bs, eta, n = p["dtype"], p["batch_size"], p["eta"], len(X)
    weights = [np.array(w, dtype=dtype) for w in net.weights]
    biases = [np.array(b, dtype=dtype) for b in net.biases]
    acts, cost = net._codes()
    X_c = np.ascontiguousarray(X, dtype=dtype)
    Y_c = np.ascontiguousarray(Y, dtype=dtype)
    for start in range(0, len(order), bs):
        rows = np.asarray(order[start:start + bs], dtype=np.intp)
        before_w = [w.astype(np.float64) for w in weights]
        before_b = [b.astype(np.float64).ravel() for b in biases]
        try:
            _training.train_epoch(weights, biases, net.sizes, acts, cost, X_c, Y_c, rows,
                                  bs, eta, 1.0 - eta * lmbda / n)
        except FloatingPointError:
            for l in range(len(weights)):   # the step was not applied
                assert_array_equal(weights[l], before_w[l].astype(dtype))
                assert_array_equal(biases[l].ravel(), before_b[l].astype(dtype))
            return weights, biases, True
        ref_w, ref_b = list(before_w), list(before_b)
        ref.sgd_step(ref_w, ref_b, p["acts"], p["cost"], X[rows], Y[rows], eta, lmbda, n)
        for l in range(len(weights)):
            scale = max(1.0, float(np.max(np.abs(before_w[l]))),
                        float(np.max(np.abs(before_b[l]))))
            assert_close(weights[l], ref_w[l], dtype, f"step at {start}: weights[{l}]", scale)
            assert_close(biases[l], ref_b[l], dtype, f"step at {start}: biases[{l}]", scale)
    return weights, biases, False


def assert_same(actual_w, actual_b, expected_w, expected_b):
    for a, b in zip(list(actual_w) + list(actual_b), list(expected_w) + list(expected_b)):
        assert np.all(np.isfinite(a))
        assert_array_equal(a, b)


# ---------------------------------------------------------------------------

@PROPERTY
@given(problems())
def test_fit_one_epoch_matches_reference(p):
    """Network.fit, one epoch, any layout and target form: exactly as fit()
    on C-contiguous copies and as one engine call per mini-batch, each
    mini-batch as the reference's; in float64 the whole epoch as the
    reference's too.  A divergence stops all three at the same mini-batch."""
    net, X, Y, labels = make_network_and_data(p)
    twin = copy.deepcopy(net)
    start = copy.deepcopy(net)
    start_w, start_b = parameters(net)
    order = copy.deepcopy(net.rng).permutation(p["n"])
    kw = dict(epochs=1, batch_size=p["batch_size"], eta=p["eta"], lmbda=p["lmbda"],
              monitor=False)

    X_in = laid_out(X.astype(p["dtype"]), p["layout_X"])
    Y_in = labels if labels is not None else laid_out(Y.astype(p["dtype"]), p["layout_Y"])
    diverged = False
    try:
        net.fit(X_in, Y_in, **kw)
    except FloatingPointError:
        diverged = True
    event(f"diverged: {diverged}")
    assert all(w.dtype == p["dtype"] for w in net.weights + net.biases)

    Y_c = labels if labels is not None else np.ascontiguousarray(Y.astype(p["dtype"]))
    twin_diverged = False
    try:
        twin.fit(np.ascontiguousarray(X.astype(p["dtype"])), Y_c, **kw)
    except FloatingPointError:
        twin_diverged = True
    assert twin_diverged == diverged
    assert_same(net.weights, net.biases, twin.weights, twin.biases)

    step_w, step_b, step_diverged = replay_by_steps(start, X, Y, order, p, p["lmbda"])
    assert step_diverged == diverged
    assert_same(net.weights, net.biases, step_w, step_b)

    if p["dtype"] == np.float64 and not diverged:
        ref_w, ref_b = ref.train(start_w, start_b, p["acts"], p["cost"], X, Y, [order],
                                 p["batch_size"], p["eta"], p["lmbda"])
        for l in range(len(ref_w)):
            assert_close(net.weights[l], ref_w[l], p["dtype"], f"weights[{l}]")
            assert_close(net.biases[l], ref_b[l], p["dtype"], f"biases[{l}]")


@PROPERTY
@given(problems(), st.data())
def test_train_epoch_with_any_order(p, data):
    """_training.train_epoch over an arbitrary visiting order: rows may
    repeat or be left out, and the order may be longer than the data."""
    net, X, Y, _ = make_network_and_data(p)
    order = np.array(data.draw(st.lists(st.integers(0, p["n"] - 1), min_size=1,
                                        max_size=2 * p["n"] + 3)), dtype=np.intp)
    start = copy.deepcopy(net)
    start_w, start_b = parameters(net)
    weights, biases = net._parameters()
    acts, cost = net._codes()
    try:
        done = _training.train_epoch(weights, biases, net.sizes, acts, cost,
                                     np.ascontiguousarray(X, dtype=p["dtype"]),
                                     np.ascontiguousarray(Y, dtype=p["dtype"]),
                                     order, p["batch_size"], p["eta"])
    except FloatingPointError:
        done = None
    step_w, step_b, step_diverged = replay_by_steps(start, X, Y, order, p, 0.0)
    assert step_diverged == (done is None)
    assert_same(weights, biases, step_w, step_b)
    if done is None:
        return
    assert done == -(-len(order) // p["batch_size"])
    if p["dtype"] == np.float64:
        ref_w, ref_b = ref.train(start_w, start_b, p["acts"], p["cost"], X, Y, [order],
                                 p["batch_size"], p["eta"])
        for l in range(len(ref_w)):
            assert_close(weights[l], ref_w[l], p["dtype"], f"weights[{l}]")
            assert_close(biases[l], ref_b[l], p["dtype"], f"biases[{l}]")


@PROPERTY
@given(problems())
def test_backprop_matches_reference(p):
    """Network.backprop (gradients of the batch-mean cost) for any layout."""
    net, X, Y, labels = make_network_and_data(p)
    weights, biases = parameters(net)
    X_in = laid_out(X.astype(p["dtype"]), p["layout_X"])
    Y_in = labels if labels is not None else laid_out(Y.astype(p["dtype"]), p["layout_Y"])
    nabla_b, nabla_w = net.backprop(X_in, Y_in)
    ref_b, ref_w = ref.mean_gradients(weights, biases, p["acts"], p["cost"], X, Y)
    for l in range(len(ref_w)):
        assert nabla_w[l].shape == net.weights[l].shape
        assert nabla_b[l].shape == net.biases[l].shape
        assert_close(nabla_w[l], ref_w[l], p["dtype"], f"nabla_w[{l}]")
        assert_close(nabla_b[l], ref_b[l], p["dtype"], f"nabla_b[{l}]")


@PROPERTY
@given(problems())
def test_feedforward_matches_reference(p):
    net, X, _, _ = make_network_and_data(p)
    weights, biases = parameters(net)
    out = net.feedforward(laid_out(X.astype(p["dtype"]), p["layout_X"]))
    assert out.shape == (p["n"], p["sizes"][-1]) and out.dtype == p["dtype"]
    assert_close(out, ref.feedforward(weights, biases, p["acts"], X), p["dtype"], "a^L")


@pytest.mark.parametrize("dtype", DTYPES)
def test_layout_helper(dtype):
    """laid_out gives the same values in the layouts it claims."""
    A = np.arange(12.0, dtype=dtype).reshape(3, 4)
    views = {k: laid_out(A, k) for k in LAYOUTS}
    assert views["C"].flags.c_contiguous
    assert views["F"].flags.f_contiguous and not views["F"].flags.c_contiguous
    assert not views["strided"].flags.c_contiguous and not views["strided"].flags.f_contiguous
    assert views["negative"].strides[0] < 0 and views["negative"].strides[1] < 0
    for v in views.values():
        assert_array_equal(v, A)
