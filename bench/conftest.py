"""Shared fixtures of the benchmark suite: the workloads' data and cases, and
one way to time a contender.

The contenders themselves (fastbp, the NumPy references of references.py,
PyTorch, JAX, scikit-learn) are built by fastbp.bench, the module behind
``python -m fastbp bench``, so the suite and the report time the same code.
Run with ``python -m pytest bench --benchmark-only``.
"""
import os
import time

import pytest

from fastbp import bench
from fastbp._training import flops_per_sample

# The most rounds a short benchmark gets (the default is 3).
MAX_ROUNDS = 15


@pytest.fixture(scope="session")
def w1_data():
    """50,000 samples (X float64, labels, source) for W1 and W2."""
    return bench.load_samples(50_000)


@pytest.fixture(scope="session")
def sweep_data():
    """The sweep's samples (2,000; a case may use fewer)."""
    return bench.load_samples(bench.WORKLOADS["sweep"]["samples"])


@pytest.fixture(scope="session")
def w1_case(w1_data):
    return bench.workload_case("W1", data=w1_data)


@pytest.fixture(scope="session")
def w2_case(w1_data):
    return bench.workload_case("W2", data=w1_data)


def pytest_report_header(config):
    from fastbp import datasets
    if datasets.fashion_mnist_available():
        lines = [f"fastbp bench data: Fashion-MNIST from {datasets.FASHION_MNIST_DIR}"]
    else:
        lines = ["fastbp bench data: generated uniform images and random labels "
                 "(Fashion-MNIST is not installed; apt-get install dataset-fashion-mnist)"]
    try:
        load = f"{os.getloadavg()[0]:.2f}"
    except (AttributeError, OSError):
        load = "unknown"
    lines.append(f"fastbp bench: load average {load} on {os.cpu_count()} cores; only "
                 "ratios within one group of one run count")
    return lines


def _contender_or_skip(name, case, **kwargs):
    if name in bench.THIRD_PARTY:
        pytest.importorskip(bench.THIRD_PARTY[name])
    try:
        return bench.make_contender(name, case, **kwargs)
    except bench.Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def contender_or_skip():
    """make(name, case, **kwargs): the contender ``name`` for ``case``, or a
    clean skip when its library is missing or it does not apply."""
    return _contender_or_skip


def _run_benchmark(benchmark, group, contender, case, rounds=3):
    benchmark.group = group
    benchmark.extra_info.update({
        "contender": contender.label,
        "sizes": list(case.sizes),
        "batch_size": case.batch_size,
        "dtype": contender.dtype.name,
        "data": case.source,
        "samples_per_epoch": case.n,
        "samples_timed": contender.samples,
        # multiply the timed seconds by this to get seconds per epoch
        "scale_to_epoch": case.n / contender.samples,
        "gflop_per_timed_run": contender.samples * flops_per_sample(case.sizes) / 1e9,
        "blas_threads": bench.blas_threads(),
    })
    if contender.note:
        benchmark.extra_info["note"] = contender.note
    t0 = time.perf_counter()
    bench.warm_up(contender)
    # Short runs are noisy: give them more rounds, about half a second in all.
    estimate = (time.perf_counter() - t0) * contender.samples / bench.warm_samples(case)
    rounds = max(rounds, min(MAX_ROUNDS, int(0.5 / max(estimate, 1e-9))))
    time.sleep(bench.SETTLE_PAUSE)      # the previous benchmark's threads go idle
    benchmark.pedantic(contender.run, setup=contender.reset, rounds=rounds, iterations=1,
                       warmup_rounds=0)


@pytest.fixture(scope="session")
def time_epochs():
    """time(benchmark, group, contender, case, rounds=3): time ``rounds``
    epochs of ``contender`` in pedantic mode (more, up to MAX_ROUNDS, when an
    epoch is short), each after an untimed reset of the weights, after an
    untimed warm-up of a few mini-batches."""
    return _run_benchmark


def _final_parameters(contender):
    contender.reset()
    contender.run()
    return contender.params()


@pytest.fixture(scope="session")
def parameters_after_epoch():
    """after(contender) -> (weights, biases) as float64 after one epoch from
    the initial parameters."""
    return _final_parameters
