"""Chapter 2's comparison: the full gradient by backpropagation against central
finite differences, for sigmoid networks [10, h, 10] of growing h, over a
batch of 100 samples (float64).  One benchmark group per network size; the
finite-difference time grows like W^2 with the number of weights W, the
backprop time like W.  ``python -m fastbp bench --gradient-cost`` prints the
fitted exponents (and a plot with --plot FILE).
"""
import numpy as np
import pytest

import references
from fastbp import Network

HIDDEN = (10, 40, 160)
SAMPLES = 100


def _problem(hidden, seed=0):
    sizes = [10, hidden, 10]
    net = Network(sizes, seed=seed)
    rng = np.random.default_rng(seed)
    X = rng.random((SAMPLES, sizes[0]))
    Y = rng.random((SAMPLES, sizes[-1]))
    return net, X, Y


@pytest.mark.parametrize("method", ["backprop-fastbp", "backprop-numpy", "finite-differences"])
@pytest.mark.parametrize("hidden", HIDDEN)
def test_gradient_cost(benchmark, hidden, method):
    net, X, Y = _problem(hidden)
    W, B = net.weights, net.biases
    benchmark.group = f"gradient-cost [10, {hidden}, 10]"
    benchmark.extra_info.update({"weights": sum(w.size for w in W),
                                 "parameters": sum(w.size for w in W) + sum(b.size for b in B),
                                 "samples": SAMPLES})
    if method == "backprop-fastbp":
        benchmark(net.backprop, X, Y)
    elif method == "backprop-numpy":
        benchmark(references.backprop_gradient, W, B, X, Y)
    else:
        benchmark.pedantic(references.finite_difference_gradient, args=(W, B, X, Y),
                           rounds=3 if hidden < 100 else 1, iterations=1)


@pytest.mark.parametrize("hidden", [3, 12])
def test_gradients_agree(hidden):
    """Not a benchmark (skipped by --benchmark-only): the three gradients the
    benchmark times are the same gradient."""
    net, X, Y = _problem(hidden, seed=1)
    W, B = net.weights, net.biases
    fd_b, fd_w = references.finite_difference_gradient(W, B, X, Y)
    bp_b, bp_w = references.backprop_gradient(W, B, X, Y)
    nb, nw = net.backprop(X, Y)
    for fd, bp, fast in zip(fd_w + fd_b, bp_w + bp_b, nw + nb):
        np.testing.assert_allclose(bp, fd, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(fast, bp, rtol=1e-10, atol=1e-14)
