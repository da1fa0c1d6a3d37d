"""W1, the book's network: [784, 30, 10], mini-batch 10, eta 3.0, sigmoid +
quadratic, float64, 50,000 samples.

Every contender trains one epoch from the same initial weights over the same
fixed shuffled order.  ``per-sample`` is timed on the first 5,000 samples
only (its extra_info says so: multiply by scale_to_epoch = 10 for an epoch);
``network-sgd`` is fastbp.network's SGD on the book's list of (x, y) tuples,
which shuffles with Python's random as the book does; ``fastbp-float32`` is
the same epoch in single precision.
"""
import numpy as np
import pytest

from fastbp import bench

CONTENDERS = ["fastbp", "fastbp-float32", "fastbp-fit", "network-sgd", "vectorized",
              "per-sample", "torch", "jax", "sklearn"]
PER_SAMPLE_TIMED = 5_000


@pytest.mark.parametrize("name", CONTENDERS)
def test_w1(benchmark, w1_case, name, contender_or_skip, time_epochs):
    contender = contender_or_skip(name, w1_case, per_sample_subset=PER_SAMPLE_TIMED)
    time_epochs(benchmark, "W1", contender, w1_case)


@pytest.mark.parametrize("name", ["fastbp", "vectorized", "torch", "jax"])
def test_w1_contenders_train_the_same_network(w1_data, name, contender_or_skip,
                                              parameters_after_epoch):
    """Not a benchmark (skipped by --benchmark-only): on 500 W1 samples, each
    contender that follows the case's order ends the epoch with the
    per-sample reference's parameters, so they all time the same work."""
    case = bench.workload_case("W1", samples=500, data=w1_data)
    contender = contender_or_skip(name, case)
    expected = parameters_after_epoch(
        bench.make_contender("per-sample", case, per_sample_subset=None))
    actual = parameters_after_epoch(contender)
    for a, e in zip(actual[0] + actual[1], expected[0] + expected[1]):
        np.testing.assert_allclose(a, e, rtol=1e-9, atol=1e-11)
