"""Network.backprop against central finite differences of Network.cost_value.

    dC/dp  ~  (C(p + eps) - C(p - eps)) / (2 eps)

for every weight and bias p of small float64 networks.  Each layer's
gradient is compared as a whole by the relative error

    ||g_backprop - g_numeric|| / (||g_backprop|| + ||g_numeric||)

which must stay below 1e-5.  ReLU has a kink at z = 0 where the derivative
is not defined: the seed of each network is chosen so that no z of the
batch comes within 1e-4 of 0 (a perturbation of 1e-6 then never crosses).
"""
import numpy as np
import pytest

import fastbp

import reference as ref

EPS = 1e-6
TOL = 1e-5
KINK_MARGIN = 1e-4

CASES = [
    ([3, 4, 2], "sigmoid", "quadratic"),
    ([3, 4, 2], "sigmoid", "cross-entropy"),
    ([4, 5, 4, 3], ["tanh", "relu", "sigmoid"], "quadratic"),
    ([4, 5, 4, 3], ["tanh", "relu", "sigmoid"], "cross-entropy"),
    ([3, 5, 2], ["relu", "linear"], "quadratic"),
    ([4, 3, 3, 3, 2], ["linear", "tanh", "relu", "tanh"], "quadratic"),
    ([4, 3, 5, 2], ["relu", "linear", "sigmoid"], "cross-entropy"),
    ([2, 6, 1], ["tanh", "linear"], "quadratic"),
]
IDS = [f"{'-'.join(map(str, s))}-{a if isinstance(a, str) else '/'.join(a)}-{c}"
       for s, a, c in CASES]


def batch(sizes, cost, m, seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.5, 1.5, size=(m, sizes[0]))
    if cost == "cross-entropy":
        Y = rng.uniform(0, 1, size=(m, sizes[-1]))        # soft targets in [0, 1]
    else:
        Y = rng.uniform(-1, 1, size=(m, sizes[-1]))
    return X, Y


def smallest_relu_z(net, X):
    """min |z| over the ReLU layers and the samples (inf without ReLU)."""
    W, b = ref.copy_parameters(net.weights, net.biases)
    smallest = np.inf
    for x in X:
        zs, _ = ref.forward_sample(W, b, net.activations, x)
        for z, name in zip(zs, net.activations):
            if name == "relu":
                smallest = min(smallest, float(np.min(np.abs(z))))
    return smallest


def network_away_from_kinks(sizes, acts, cost, X):
    for seed in range(200):
        net = fastbp.Network(sizes, activations=acts, cost=cost, seed=seed)
        if smallest_relu_z(net, X) > KINK_MARGIN:
            return net
    pytest.fail("no seed keeps every ReLU input away from 0")


def numeric_gradient(net, params, X, Y, lmbda=0.0):
    """Central differences of cost_value for every entry of each array in
    params (arrays the network uses, perturbed in place and restored)."""
    grads = []
    for p in params:
        g = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            keep = p[idx]
            p[idx] = keep + EPS
            c_plus = net.cost_value(X, Y, lmbda)
            p[idx] = keep - EPS
            c_minus = net.cost_value(X, Y, lmbda)
            p[idx] = keep
            g[idx] = (c_plus - c_minus) / (2 * EPS)
        grads.append(g)
    return grads


def relative_error(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300)


def assert_gradients_agree(analytic, numeric, name):
    for l, (ga, gn) in enumerate(zip(analytic, numeric)):
        assert ga.shape == gn.shape
        assert np.linalg.norm(gn) > 1e-8, f"{name}[{l}]: gradient too small to test"
        err = relative_error(ga, gn)
        assert err <= TOL, f"{name}[{l}]: relative error {err:.3g}"


@pytest.mark.parametrize("m", [1, 7])
@pytest.mark.parametrize("sizes,acts,cost", CASES, ids=IDS)
def test_backprop_matches_finite_differences(sizes, acts, cost, m):
    X, Y = batch(sizes, cost, m, seed=m + len(sizes))
    net = network_away_from_kinks(sizes, acts, cost, X)
    before = [p.copy() for p in net.weights + net.biases]
    nabla_b, nabla_w = net.backprop(X, Y)
    assert_gradients_agree(nabla_w, numeric_gradient(net, net.weights, X, Y), "weights")
    assert_gradients_agree(nabla_b, numeric_gradient(net, net.biases, X, Y), "biases")
    # the probing left the parameters exactly as they were
    for p, q in zip(net.weights + net.biases, before):
        assert p.tobytes() == q.tobytes()


@pytest.mark.parametrize("sizes,acts,cost", [CASES[1], CASES[3]], ids=[IDS[1], IDS[3]])
def test_l2_term_of_cost_value(sizes, acts, cost):
    """cost_value's L2 term 0.5 (lmbda/n) sum ||w||^2 has the gradient
    (lmbda/n) w, the term the weight decay of fit() applies."""
    lmbda, m = 0.8, 6
    X, Y = batch(sizes, cost, m, seed=3)
    net = network_away_from_kinks(sizes, acts, cost, X)
    _, nabla_w = net.backprop(X, Y)
    expected = [g + (lmbda / m) * w for g, w in zip(nabla_w, net.weights)]
    assert_gradients_agree(expected, numeric_gradient(net, net.weights, X, Y, lmbda),
                           "weights")
