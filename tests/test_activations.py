"""Chapter 2's exercises as features: another activation f in a layer (f'
takes sigma''s place), a network of linear neurons (sigma' = 1), and
activations given as Python callables (f, f'), on the NumPy path."""
import copy

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import fastbp
from fastbp import activations as fba
import reference


def tanh_prime(z):
    return 1.0 - np.tanh(z) ** 2


def softplus(z):
    return np.logaddexp(0.0, z)


def logistic(z):
    return 1.0 / (1.0 + np.exp(-z))


def logistic_prime(z):
    return logistic(z) * (1.0 - logistic(z))


def epoch_orders(net, n, epochs):
    """The row orders fit will visit: a copy of the network's generator,
    drawn as fit draws it (one permutation per epoch)."""
    rng = copy.deepcopy(net.rng)
    return [rng.permutation(n) for _ in range(epochs)]


def assert_matches_reference(net, names, X, Y, epochs=3, batch_size=7, eta=0.3, lmbda=0.5,
                             rtol=1e-10, atol=1e-12):
    """backprop against the per-sample reference, then fit against the
    reference's mini-batch SGD over the same row orders."""
    gb, gw = net.backprop(X, Y)
    rb, rw = reference.mean_gradients(net.weights, net.biases, names, net.cost, X, Y)
    for g, r in zip(gb, rb):
        assert g.shape == (r.size, 1)
        assert_allclose(g.ravel(), r, rtol=rtol, atol=atol)
    for g, r in zip(gw, rw):
        assert_allclose(g, r, rtol=rtol, atol=atol)
    orders = epoch_orders(net, len(X), epochs)
    W_ref, b_ref = reference.train(net.weights, net.biases, names, net.cost, X, Y, orders,
                                   batch_size, eta, lmbda)
    net.fit(X, Y, epochs, batch_size, eta, lmbda=lmbda, monitor=False)
    for W, r in zip(net.weights, W_ref):
        assert_allclose(W, r, rtol=0, atol=1e-10)
    for b, r in zip(net.biases, b_ref):
        assert_allclose(b.ravel(), r, rtol=0, atol=1e-10)


@pytest.mark.parametrize("names, cost", [
    (["sigmoid", "tanh", "sigmoid"], "quadratic"),
    (["sigmoid", "tanh", "sigmoid"], "cross-entropy"),
    (["relu", "tanh", "linear"], "quadratic"),
    (["tanh", "relu", "tanh"], "quadratic"),
])
def test_a_layer_with_another_activation(make_problem, names, cost):
    X, _, Y = make_problem(40, 6, 3, seed=3)
    net = fastbp.Network([6, 5, 4, 3], activations=names, cost=cost, seed=8)
    assert_matches_reference(net, names, X, Y)


def test_a_network_of_linear_neurons(make_problem):
    X, _, Y = make_problem(30, 4, 3, seed=1)
    net = fastbp.Network([4, 5, 3], activations="linear", seed=2)
    # with sigma' = 1 the network is one affine map: X W1^T W2^T + (W2 b1 + b2)^T
    W1, W2 = net.weights
    b1, b2 = net.biases
    assert_allclose(net.feedforward(X), X @ W1.T @ W2.T + (W2 @ b1 + b2).T, rtol=1e-12)
    # the cost is quadratic in each single parameter, so the central
    # difference has no truncation error: only rounding separates the two
    assert fastbp.gradcheck(net, X, Y, eps=1e-3).max_error < 1e-8
    # the last layer's gradient is that of least squares: (A - Y)^T A^1 / m
    A1 = X @ W1.T + b1.T
    _, gw = net.backprop(X, Y)
    assert_allclose(gw[1], (net.feedforward(X) - Y).T @ A1 / len(X), rtol=1e-12)
    assert_matches_reference(net, ["linear", "linear"], X, Y, eta=0.05)


def test_python_activation_matches_finite_differences_and_reference(make_problem,
                                                                     monkeypatch):
    monkeypatch.setitem(reference.ACTIVATIONS, "softplus", (softplus, logistic))
    X, labels, Y = make_problem(40, 5, 3, seed=4)
    for cost in ("quadratic", "cross-entropy"):
        net = fastbp.Network([5, 6, 4, 3], cost=cost, seed=5,
                             activations=[(softplus, logistic), "tanh",
                                          (logistic, logistic_prime)])
        assert net._path() is not fastbp.Network([5, 3])._path()      # the NumPy path
        # eps = 1e-5 balances the truncation and rounding errors of the difference
        check = fastbp.gradcheck(net, X, Y, eps=1e-5)
        assert check.max_error < 1e-5, str(check)
        assert_matches_reference(net, ["softplus", "tanh", "sigmoid"], X, Y)
        assert net.predict(X).shape == (40,)
        assert 0.0 <= net.accuracy(X, labels) <= 1.0


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_python_pairs_train_like_the_builtins(problem, dtype, tol):
    """The NumPy path and the engine compute the same thing."""
    X, labels, _ = problem
    builtin = fastbp.Network([5, 6, 4, 3], activations=["tanh", "relu", "sigmoid"],
                             cost="cross-entropy", dtype=dtype, seed=6)
    python = fastbp.Network([5, 6, 4, 3], cost="cross-entropy", dtype=dtype, seed=6,
                            activations=[(np.tanh, tanh_prime), (fba.relu, fba.relu_prime),
                                         (logistic, logistic_prime)])
    gb_c, gw_c = builtin.backprop(X, labels)
    gb_p, gw_p = python.backprop(X, labels)
    for g, h in zip(gb_c + gw_c, gb_p + gw_p):
        assert h.dtype == dtype
        assert_allclose(h, g, rtol=tol, atol=tol)
    history_c = builtin.fit(X, labels, 3, 8, 0.5, lmbda=0.1, validation_data=(X, labels))
    history_p = python.fit(X, labels, 3, 8, 0.5, lmbda=0.1, validation_data=(X, labels))
    for W, V in zip(builtin.weights + builtin.biases, python.weights + python.biases):
        assert V.dtype == dtype
        assert_allclose(V, W, rtol=tol, atol=tol)
    assert_allclose(history_p["train_cost"], history_c["train_cost"], rtol=tol * 10)
    assert_allclose(history_p["val_accuracy"], history_c["val_accuracy"])


def test_python_path_divergence_leaves_the_last_good_weights(problem):
    X, _, Y = problem
    net = fastbp.Network([5, 4, 3], activations=[(np.exp, np.exp), "sigmoid"], seed=0)
    before = [p.copy() for p in net.weights + net.biases]
    with pytest.raises(FloatingPointError, match="mini-batch 1 of"):
        net.fit(1e4 * X, Y, 1, 10, 1.0)
    for p, q in zip(net.weights + net.biases, before):
        assert_array_equal(p, q)
    # a network that diverges later keeps the steps it had made
    net = fastbp.Network([5, 4, 3], activations=[(np.exp, np.exp), "linear"], seed=0)
    with pytest.raises(FloatingPointError):
        net.fit(X, 1e3 * Y, 5, 5, 10.0, monitor=False)
    assert all(np.isfinite(p).all() for p in net.weights + net.biases)


def test_activation_arguments():
    net = fastbp.Network([3, 4, 2], activations=(np.tanh, tanh_prime))
    assert all(isinstance(a, fba.PythonActivation) for a in net.activations)
    assert "tanh" in repr(net)
    with pytest.raises(TypeError, match="pair"):
        fastbp.Network([3, 4, 2], activations=[np.tanh, "sigmoid"])
    with pytest.raises(ValueError, match="softmax"):
        fastbp.Network([3, 4, 2], activations=["softmax", "sigmoid"])
    with pytest.raises(ValueError, match="one entry for each of the 2"):
        fastbp.Network([3, 4, 2], activations=["tanh"])
    bad = fastbp.Network([3, 2], activations=(lambda z: z.sum(axis=1), np.ones_like))
    with pytest.raises(ValueError, match="element-wise"):
        bad.feedforward(np.ones((4, 3)))
