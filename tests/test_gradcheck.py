"""Backpropagation against central finite differences (Chapter 2's comparison),
through fastbp.gradcheck, and gradcheck's own power to see a wrong gradient."""
import contextlib

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import fastbp
import fastbp.network
import fastbp.network2
from fastbp.gradcheck import GradCheckResult

STACKS = [
    ["sigmoid", "tanh", "relu", "linear", "sigmoid"],
    ["tanh", "relu", "sigmoid", "linear", "tanh"],
    ["relu", "linear", "tanh", "sigmoid", "relu"],
    ["linear", "sigmoid", "relu", "tanh", "linear"],
]


def network(names, cost, seed):
    if cost == "cross-entropy":             # defined for outputs in (0, 1) only
        names = names[:-1] + ["sigmoid"]
    return fastbp.Network([6, 7, 5, 6, 4, 3], activations=names, cost=cost, seed=seed)


@pytest.mark.parametrize("cost", ["quadratic", "cross-entropy"])
@pytest.mark.parametrize("names", STACKS, ids=["-".join(s) for s in STACKS])
def test_native_backprop_matches_central_differences(make_problem, names, cost):
    X, labels, Y = make_problem(25, 6, 3, seed=len(names[0]))
    for seed in (0, 1):
        net = network(names, cost, seed)
        before = [p.copy() for p in net.weights + net.biases]
        result = fastbp.gradcheck(net, X, labels if seed else Y)
        assert isinstance(result, GradCheckResult)
        assert len(result.layers) == 5
        assert [c.n_weights for c in result.layers] == [42, 35, 30, 24, 12]
        assert [c.n_biases for c in result.layers] == [7, 5, 6, 4, 3]
        assert result.max_error <= 1e-5, str(result)
        assert result.max_error == max(max(c.weights, c.biases) for c in result.layers)
        for p, q in zip(net.weights + net.biases, before):      # restored exactly
            assert_array_equal(p, q)


def test_a_wrong_gradient_is_caught(make_problem, monkeypatch):
    X, labels, Y = make_problem(25, 6, 3)
    net = network(STACKS[0], "quadratic", 3)
    assert fastbp.gradcheck(net, X, Y).max_error <= 1e-5
    right = net.backprop

    def scaled(X, Y):
        nabla_b, nabla_w = right(X, Y)
        return nabla_b, [nabla_w[0] * 1.01] + nabla_w[1:]          # 1% off in layer 0

    monkeypatch.setattr(net, "backprop", scaled)
    result = fastbp.gradcheck(net, X, Y)
    assert 0.005 < result.layers[0].weights < 0.02
    assert result.layers[0].biases <= 1e-5
    assert all(c.max_error <= 1e-5 for c in result.layers[1:])

    def swapped(X, Y):                           # two biases of the last layer exchanged
        nabla_b, nabla_w = right(X, Y)
        b = nabla_b[-1].copy()
        b[[0, 1]] = b[[1, 0]]
        return nabla_b[:-1] + [b], nabla_w

    monkeypatch.setattr(net, "backprop", swapped)
    assert fastbp.gradcheck(net, X, Y).layers[-1].biases > 0.01


def test_sampled_checks_are_reproducible(make_problem):
    X, _, Y = make_problem(25, 6, 3)
    net = network(STACKS[1], "quadratic", 0)
    a = fastbp.gradcheck(net, X, Y, max_checks_per_layer=4, seed=7)
    b = fastbp.gradcheck(net, X, Y, max_checks_per_layer=4, seed=7)
    assert [c.n_weights for c in a.layers] == [4] * 5
    assert [c.n_biases for c in a.layers] == [4, 4, 4, 4, 3]
    assert a.layers == b.layers
    assert a.max_error <= 1e-5
    assert "worst relative error" in str(a)
    with pytest.raises(ValueError, match="eps"):
        fastbp.gradcheck(net, X, Y, eps=0.0)
    with pytest.raises(ValueError, match="max_checks_per_layer"):
        fastbp.gradcheck(net, X, Y, max_checks_per_layer=0)


def test_book_networks(problem):
    X, labels, Y = problem
    np.random.seed(0)
    for net in (fastbp.network.Network([5, 4, 3]),
                fastbp.network2.Network([5, 4, 3]),
                fastbp.network2.Network([5, 4, 3], cost=fastbp.network2.QuadraticCost)):
        result = fastbp.gradcheck(net, X, labels)
        assert result.max_error <= 1e-5, str(result)
        assert [c.n_weights for c in result.layers] == [20, 12]


@pytest.mark.parametrize("make", [lambda: fastbp.network.Network([5, 4, 3]),
                                  lambda: fastbp.network2.Network([5, 4, 3]),
                                  lambda: fastbp.Network([5, 4, 3], seed=0)],
                         ids=["network", "network2", "native"])
@pytest.mark.parametrize("change, error, match", [
    ({"labels": [-1]}, ValueError, r"Y: class labels must be in \[0, 3\)"),
    ({"labels": [3]}, ValueError, r"Y: class labels must be in \[0, 3\)"),
    ({"Y": np.zeros((5, 3))}, ValueError, "Y must have 10 rows"),
    ({"X": np.zeros(50)}, ValueError, "X must be 2-d"),
    ({"eps": "a"}, TypeError, "eps must be a real number"),
    ({"eps": None}, TypeError, "eps must be a real number"),
    ({"max_checks_per_layer": 2.7}, TypeError, "max_checks_per_layer must be an integer"),
    ({"max_checks_per_layer": True}, TypeError, "max_checks_per_layer must be an integer"),
    ({"seed": -1}, ValueError, "seed must be None, a non-negative integer"),
    ({"seed": 1.5}, TypeError, "seed must be None, a non-negative integer"),
])
def test_bad_arguments_are_named(problem, make, change, error, match):
    X, labels, _ = problem
    X, labels = X[:10], labels[:10].copy()
    net = make()
    kwargs = dict(change)
    if "labels" in kwargs:
        labels[4] = kwargs.pop("labels")[0]
    X, Y = kwargs.pop("X", X), kwargs.pop("Y", labels)
    before = [p.copy() for p in net.weights + net.biases]
    with pytest.raises(error, match=match):
        fastbp.gradcheck(net, X, Y, **kwargs)
    for p, q in zip(net.weights + net.biases, before):
        np.testing.assert_array_equal(p, q)


def test_something_that_is_not_a_network_is_refused(problem):
    X, labels, _ = problem
    for net in (None, object(), [np.zeros((3, 5))]):
        with pytest.raises(TypeError, match="net must be a fastbp.Network"):
            fastbp.gradcheck(net, X, labels)


def test_float32_warns(problem):
    X, _, Y = problem
    net = fastbp.Network([5, 3], dtype=np.float32, seed=0)
    with pytest.warns(RuntimeWarning, match="float32"):
        result = fastbp.gradcheck(net, X, Y, eps=1e-2)
    assert result.max_error < 0.05


def test_result_says_whether_anything_was_compared():
    """A ReLU network that no input wakes: backprop and the differences are
    both 0 everywhere, which agrees and tells nothing."""
    rng = np.random.default_rng(3)
    X, Y = rng.random((5, 4)), rng.random((5, 2))
    net = fastbp.Network([4, 3, 2], activations="relu", cost="quadratic", seed=0)
    assert fastbp.gradcheck(net, X, Y).compared
    for p in net.weights + net.biases:
        p[...] = -1.0
    result = fastbp.gradcheck(net, X, Y)
    assert not result.compared and result.max_error == 0.0
    assert all(c.scale == 0.0 for c in result.layers)
    assert "exactly 0" in str(result)


@pytest.mark.parametrize("broken", ["gradient", "cost"])
def test_a_nan_on_either_side_is_a_disagreement(broken, monkeypatch):
    """A NaN in backprop's gradient or in the cost is an infinite error (a
    plain max() over the entries would have dropped it as if it agreed)."""
    rng = np.random.default_rng(4)
    X, Y = rng.random((5, 4)), rng.random((5, 2))
    net = fastbp.Network([4, 3, 2], seed=0)
    if broken == "gradient":
        backprop = fastbp.Network.backprop

        def nan_backprop(self, X, Y):
            nabla_b, nabla_w = backprop(self, X, Y)
            nabla_w[1][0, 0] = np.nan
            return nabla_b, nabla_w
        monkeypatch.setattr(fastbp.Network, "backprop", nan_backprop)
    else:
        monkeypatch.setattr(fastbp.Network, "cost_value", lambda self, X, Y: np.nan)
    result = fastbp.gradcheck(net, X, Y)
    assert result.max_error == np.inf and result.compared
    assert result.layers[1].weights == np.inf


def test_a_step_that_rounds_away_is_refused():
    rng = np.random.default_rng(5)
    X, Y = rng.random((5, 4)), rng.random((5, 2))
    for dtype, eps in [(np.float64, 1e-20), (np.float32, 1e-9)]:
        net = fastbp.Network([4, 3, 2], dtype=dtype, seed=0)
        before = [p.copy() for p in net.weights + net.biases]
        with (pytest.warns(RuntimeWarning) if dtype == np.float32
              else contextlib.nullcontext()):
            with pytest.raises(ValueError, match="too small .* the step rounds away"):
                fastbp.gradcheck(net, X, Y, eps=eps)
        for p, q in zip(net.weights + net.biases, before):
            assert_array_equal(p, q)
