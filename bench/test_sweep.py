"""The sweep: [784, h, 10] for h in (10, 30, 100, 300, 1024) and mini-batch
sizes (1, 10, 32, 128, 256), float64, on few samples per case so that the
whole sweep runs in minutes: 2,000, but at most 500 mini-batches (500
samples at mini-batch 1); see fastbp.bench.sweep_samples.  One benchmark
group per (h, mini-batch) pair, so each group's table compares the
contenders on one shape.
"""
import pytest

from fastbp import bench

CONTENDERS = ["fastbp", "vectorized", "torch", "jax", "sklearn"]

_cases = {}


@pytest.fixture
def sweep_case(sweep_data, hidden, batch_size):
    key = (hidden, batch_size)
    if key not in _cases:
        _cases.clear()          # the tests run case by case: keep one in memory
        _cases[key] = bench.workload_case("sweep", hidden=hidden, batch_size=batch_size,
                                          data=sweep_data)
    return _cases[key]


@pytest.mark.parametrize("name", CONTENDERS)
@pytest.mark.parametrize("batch_size", bench.SWEEP_BATCH_SIZES)
@pytest.mark.parametrize("hidden", bench.SWEEP_HIDDEN)
def test_sweep(benchmark, sweep_case, hidden, batch_size, name, contender_or_skip,
               time_epochs):
    contender = contender_or_skip(name, sweep_case)
    time_epochs(benchmark, f"sweep [784, {hidden}, 10] batch {batch_size}", contender,
                  sweep_case)
