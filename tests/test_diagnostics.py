"""The learning-speed diagnostics of Network.fit(diagnostics=True), against
the per-sample reference: gradient norms of the mean cost on the probe
samples, and the fraction of saturated units computed from z."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import fastbp
import reference as ref

@pytest.mark.parametrize("activations", ["sigmoid", ["tanh", "relu", "sigmoid"]])
def test_diagnostics_match_the_reference(activations):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((1200, 6)) * 3       # wide inputs: some units saturate
    labels = rng.integers(0, 3, size=1200)
    net = fastbp.Network([6, 8, 5, 3], activations=activations, cost="cross-entropy",
                         seed=2)
    history = net.fit(X, labels, epochs=2, batch_size=20, eta=0.5, monitor=False,
                      diagnostics=True)
    assert len(history["grad_norm_w"]) == len(history["saturated"]) == 2

    # After the last epoch, recompute on the probe (the first 1,000 samples).
    probe, Y = X[:1000], np.eye(3)[labels[:1000]]
    weights, biases = ref.copy_parameters(net.weights, net.biases)
    gb, gw = ref.mean_gradients(weights, biases, net.activations, "cross-entropy", probe, Y)
    assert_allclose(history["grad_norm_b"][-1], [np.linalg.norm(g) for g in gb], rtol=1e-9)
    assert_allclose(history["grad_norm_w"][-1], [np.linalg.norm(g) for g in gw], rtol=1e-9)

    names = ref.as_list(net.activations, 3)
    counts = np.zeros(3)
    for x in probe:
        zs, _ = ref.forward_sample(weights, biases, names, x)
        for l, (z, name) in enumerate(zip(zs, names)):
            _, slope = ref.ACTIVATIONS[name]
            biggest = {"sigmoid": 0.25, "tanh": 1.0, "relu": 1.0}[name]
            counts[l] += np.sum(slope(z) < 0.01 * biggest)
    expected = counts / (len(probe) * np.array(net.sizes[1:]))
    assert_allclose(history["saturated"][-1], expected, atol=1e-12)
    assert max(history["saturated"][-1]) > 0     # the check is not vacuous

def test_no_diagnostics_by_default():
    X = np.random.default_rng(0).random((30, 4))
    history = fastbp.Network([4, 3, 2], seed=0).fit(X, np.arange(30) % 2, 1, 5, 1.0)
    assert "grad_norm_w" not in history and "saturated" not in history
