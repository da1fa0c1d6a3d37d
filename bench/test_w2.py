"""W2, compute-bound: [784, 1024, 1024, 10], mini-batch 128, eta 3.0,
sigmoid + quadratic, float32, 50,000 samples.

The products are large enough for BLAS to run near its peak: compare the
GFLOP/s here (gflop_per_timed_run / seconds) with a large SGEMM's, which
``python -m fastbp bench --workload W2`` measures in the same run.
"""
import pytest

CONTENDERS = ["fastbp", "vectorized", "torch", "jax", "sklearn"]


@pytest.mark.parametrize("name", CONTENDERS)
def test_w2(benchmark, w2_case, name, contender_or_skip, time_epochs):
    contender = contender_or_skip(name, w2_case)
    time_epochs(benchmark, "W2", contender, w2_case)
