"""The engine's threads change the speed, never the result."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import fastbp
from fastbp import _engine, _training


def _problem(dtype, n=400, sizes=(60, 200, 50, 7)):
    rng = np.random.default_rng(5)
    X = rng.random((n, sizes[0])).astype(dtype)
    Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], size=n)]
    return list(sizes), X, Y, rng.permutation(n)


def _train(threads, dtype, batch_size=16, monkeypatch=None):
    sizes, X, Y, order = _problem(dtype)
    net = fastbp.Network(sizes, activations=["tanh", "relu", "sigmoid"], dtype=dtype, seed=1)
    _training.train_epoch(net.weights, net.biases, sizes, [1, 2, 3, 0], 0, X, Y, order,
                          batch_size, 0.3, 0.999, threads=threads)
    return net


# Shapes whose layers the engine cuts differently: the default problem (a
# 7-wide output of one block, whose owner computes every block of the
# layer below); no hidden layer; a chain of one-block layers; one-block
# hidden layer under a wide output; the book's shape.
SHAPES = [(60, 200, 50, 7), (60, 40), (60, 40, 6, 6, 7), (60, 6, 40), (60, 30, 10)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("threads", [2, 3, 4])
@pytest.mark.parametrize("sizes", SHAPES, ids=lambda s: "-".join(map(str, s)))
def test_engine_threads_give_identical_weights(dtype, threads, sizes, blocks):
    sizes, X, Y, order = _problem(dtype, sizes=sizes)
    hidden = ["tanh", "relu"] * len(sizes)
    activations = hidden[:len(sizes) - 2] + ["sigmoid"]    # for the cross-entropy cost
    results = []
    for count in (1, threads):
        net = fastbp.Network(sizes, activations=activations, dtype=dtype, seed=1)
        acts, _ = net._codes()
        status, done = _engine.train_epoch(net.weights, net.biases, sizes, acts, 1,
                                           _engine.matrix_samples(X, Y), order, 16, 0.3,
                                           0.999, 0, -1.0, count)
        assert (status, done) == (_engine.OK, 25)
        results.append(net)
    for a, b in zip(results[0].weights + results[0].biases,
                    results[1].weights + results[1].biases):
        np.testing.assert_array_equal(a, b)


def test_thread_plan_probes_then_keeps_its_choice(monkeypatch, blocks):
    monkeypatch.setattr(_training, "_MIN_FLOPS_PER_THREAD", 1.0)
    monkeypatch.setattr(_training.ThreadPlan, "PROBE_FLOPS", 1.0)   # 2 batches per probe
    plan = _training.ThreadPlan(2)
    planned = _train(plan, np.float64)
    assert plan.chosen in (1, 2) and set(plan.timings) == {1, 2}
    single = _train(1, np.float64)
    for a, b in zip(planned.weights + planned.biases, single.weights + single.biases):
        np.testing.assert_array_equal(a, b)


class _FakeEngine:
    """Stands in for _training._run and the clock: each call 'trains' its
    part in simulated seconds per sample, the split slower than one thread
    by `slowdown` until `settle` simulated seconds of one-thread training
    have passed (idle BLAS threads spinning down), and records the calls."""

    def __init__(self, slowdown, settle):
        self.now, self.single_seconds, self.calls = 0.0, 0.0, []
        self.slowdown, self.settle = slowdown, settle

    def perf_counter(self):
        return self.now

    def run(self, weights, biases, sizes, act_codes, cost_code, data, order, batch_size,
            eta, decay, xmax, threads, per_batch, done_before, n, book=False):
        per_sample = 1e-5
        if threads > 1:
            per_sample *= 0.6 if self.single_seconds >= self.settle else self.slowdown
        seconds = per_sample * len(order)
        self.now += seconds
        if threads == 1:
            self.single_seconds += seconds
        self.calls.append((len(order), threads))
        return len(order) // batch_size

    def install(self, monkeypatch):
        """Train through this fake, with probes of 2 mini-batches."""
        monkeypatch.setattr(_training, "_run", self.run)
        monkeypatch.setattr(_training, "time", self)
        monkeypatch.setattr(_training, "_MIN_FLOPS_PER_THREAD", 1.0)
        monkeypatch.setattr(_training.ThreadPlan, "PROBE_FLOPS", 1.0)
        return self


@pytest.mark.parametrize("slowdown, settle, chosen, settled", [
    (2.0, 0.0, 2, False),       # an idle machine: the first probe keeps the split
    (2.0, 0.05, 2, True),       # spinning BLAS threads: settle, probe again, split
    (2.0, 1e9, 1, True),        # a busy machine: one thread
])
def test_thread_plan_settles_only_when_the_split_times_slow(monkeypatch, slowdown, settle,
                                                           chosen, settled):
    fake = _FakeEngine(slowdown if settle else 0.6, settle).install(monkeypatch)
    sizes, X, Y, _ = _problem(np.float64, n=20_000)
    net = fastbp.Network(sizes, seed=0)
    plan = _training.ThreadPlan(2)
    done = _training.train_epoch(net.weights, net.biases, sizes, [0, 0, 0, 0], 0, X, Y,
                                 np.arange(20_000), 10, 0.1, threads=plan)
    assert done == 2_000 and sum(k for k, _ in fake.calls) == 20_000
    assert plan.chosen == chosen
    counts = [t for _, t in fake.calls]
    assert counts[:4] == [1, 2, 1, 2]                   # the first probe, at once
    if settled:
        # one-thread parts until the settling time is spent, then a new probe
        assert counts[4:-5] == [1] * (len(counts) - 9) and len(counts) > 9
        assert counts[-5:-1] == [1, 2, 1, 2]
    else:
        assert len(counts) == 5
    assert counts[-1] == chosen                         # the rest of the epoch


def test_a_short_epoch_decides_on_its_first_probe(monkeypatch):
    """An epoch with no room to settle and probe again keeps the first
    probe's verdict (the split slow: one thread), and later epochs do not
    probe again."""
    fake = _FakeEngine(2.0, 1e9).install(monkeypatch)
    sizes, X, Y, _ = _problem(np.float64, n=100)
    net = fastbp.Network(sizes, seed=0)
    plan = _training.ThreadPlan(2)
    for epoch in range(3):
        fake.calls.clear()
        done = _training.train_epoch(net.weights, net.biases, sizes, [0, 0, 0, 0], 0, X, Y,
                                     np.arange(100), 10, 0.1, threads=plan)
        assert done == 10 and plan.chosen == 1
        counts = [t for _, t in fake.calls]
        assert counts == ([1, 2, 1, 2, 1] if epoch == 0 else [1])


def test_small_networks_train_on_one_thread():
    plan = _training.ThreadPlan(2)
    sizes, X, Y, order = _problem(np.float64, sizes=(3, 4, 2))
    net = fastbp.Network(sizes, seed=0)
    _training.train_epoch(net.weights, net.biases, sizes, [0, 0, 0], 0, X, Y, order, 4, 0.1,
                          threads=plan)
    assert plan.chosen == 1 and not plan.timings


def test_omp_num_threads_caps_the_default(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    with _training.engine_threads() as n:
        assert n == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "not a number")
    assert _training.usable_cores() >= 1


def test_thread_plan_keeps_the_split_unless_it_is_clearly_slower():
    choose = _training.ThreadPlan.choose
    assert choose({1: 1.0, 2: 0.6}) == 2
    assert choose({1: 1.0, 2: 1.05}) == 2          # a tie within the probe's noise
    assert choose({1: 1.0, 2: 1.2}) == 2
    assert choose({1: 1.0, 2: 1.3}) == 1
    assert choose({1: 1.0, 4: 10.0}) == 1          # a busy machine


FEWER_THREADS_CHILD = r"""
import numpy as np
from fastbp import _book, _engine
_engine._set_blocks(2)
rng = np.random.default_rng(3)
sizes = [30, 40, 10]
X, Y = rng.random((90, 30)), rng.random((90, 10))
order = rng.permutation(90)
results = []
for threads in (1, 2):
    W = [np.random.default_rng(4).standard_normal((o, i)) for i, o in zip(sizes, sizes[1:])]
    B = [np.random.default_rng(5).standard_normal(o) for o in sizes[1:]]
    _engine.train_epoch(W, B, sizes, [0, 0, 0], 0, _engine.matrix_samples(X, Y), order,
                        10, 0.5, 1.0, 0, -1.0, threads)
    pairs = [(x.reshape(-1, 1), y.reshape(-1, 1)) for x, y in zip(X, Y)]
    W2 = [w.copy() for w in W]
    B2 = [b.copy() for b in B]
    _engine.train_epoch_book(W2, B2, sizes, 0, _book.training_samples("d", pairs, sizes),
                             order, 10, 0.5, 1.0, 0, threads)
    A = _engine.feedforward(W, B, sizes, [0, 0, 0], X, threads, 8)
    results.append(W + B + W2 + B2 + [A])
print(all(np.array_equal(a, b) for a, b in zip(*results)))
"""


def test_fewer_openmp_threads_than_asked_give_the_same_weights():
    """When the OpenMP runtime grants one thread where two were asked, both
    epoch loops fall back to training on that one, and feedforward computes
    every chunk on it: same weights, same outputs."""
    env = dict(os.environ, OMP_THREAD_LIMIT="1", OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", FEWER_THREADS_CHILD], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("threads", [2, 3, 4])
@pytest.mark.parametrize("n", [1, 7, 8, 9, 50, 83])
def test_feedforward_threads_give_identical_outputs(dtype, threads, n, blocks):
    """Chunks of 8 rows shared over the threads: every row is computed, by
    the same calls as on one thread."""
    sizes, X, _, _ = _problem(dtype, n=n)
    net = fastbp.Network(sizes, activations=["tanh", "relu", "sigmoid"], dtype=dtype, seed=2)
    acts, _ = net._codes()
    with threadpool_limits(limits=1, user_api="blas"):     # as the engine's threads need
        one = _engine.feedforward(net.weights, net.biases, sizes, acts, X, 1, 8)
        many = _engine.feedforward(net.weights, net.biases, sizes, acts, X, threads, 8)
    np.testing.assert_array_equal(one, many)
    np.testing.assert_allclose(one, net.feedforward(X), rtol=1e-5 if dtype == np.float32
                               else 1e-12)


def _record_feedforward_threads(monkeypatch):
    """Make _training.feedforward's engine calls note their thread counts."""
    seen = []
    engine_feedforward = _engine.feedforward

    def recording(*args):
        seen.append(args[5] if len(args) > 5 else 1)
        return engine_feedforward(*args)

    monkeypatch.setattr(_engine, "feedforward", recording)
    return seen


def test_large_feedforwards_use_the_engine_threads(monkeypatch):
    monkeypatch.setattr(_training, "usable_cores", lambda: 2)
    seen = _record_feedforward_threads(monkeypatch)
    net = fastbp.Network([784, 30, 10], seed=0)
    rng = np.random.default_rng(1)
    small, large = rng.random((100, 784)), rng.random((5000, 784))   # 5e6 and 2.4e8 FLOP
    with threadpool_limits(limits=1, user_api="blas"):
        expected = _engine.feedforward(net.weights, net.biases, net.sizes, [0, 0, 0], large)
    seen.clear()
    net.feedforward(small)
    np.testing.assert_array_equal(net.feedforward(large), expected)
    assert seen == [1, 2]
    assert _engine.running_calls() == (0, 0) and not _engine.blas_limited()


def test_feedforward_inside_a_training_call_uses_its_threads(monkeypatch):
    """fit's monitoring pass reuses fit's thread count, also when the caller
    asked for one thread; BLAS stays limited until the training ends."""
    monkeypatch.setattr(_training, "usable_cores", lambda: 2)
    seen = _record_feedforward_threads(monkeypatch)
    rng = np.random.default_rng(2)
    X = rng.random((5000, 784))
    y = rng.integers(0, 10, 5000)
    for n_threads, expected in [(1, 1), (None, 2)]:
        seen.clear()
        net = fastbp.Network([784, 30, 10], seed=0)
        net.fit(X, y, epochs=1, batch_size=500, eta=0.1, n_threads=n_threads)
        assert seen == [expected]
    assert _engine.running_calls() == (0, 0) and not _engine.blas_limited()


def test_nested_engine_threads():
    with _training.engine_threads(3) as outer:
        with _training.engine_threads(training=False) as inner:
            assert (outer, inner) == (3, 3)
            with _training.engine_threads(2) as innermost:
                assert innermost == 2
        assert _engine.running_calls() == (1, 1)
    assert _engine.running_calls() == (0, 0) and not _engine.blas_limited()
    with pytest.raises(KeyboardInterrupt) as info:
        with _training.engine_threads(training=False):
            raise KeyboardInterrupt
    assert not getattr(info.value, "__notes__", None)


def test_engine_threads_left_out_of_order(monkeypatch):
    """Contexts closed out of order (interleaved generators, say) leave no
    stale count behind."""
    monkeypatch.setattr(_training, "usable_cores", lambda: 2)
    first = _training.engine_threads(3)
    assert first.__enter__() == 3
    second = _training.engine_threads(training=False)
    assert second.__enter__() == 3
    first.__exit__(None, None, None)
    second.__exit__(None, None, None)
    assert _engine.running_calls() == (0, 0) and not _engine.blas_limited()
    with _training.engine_threads() as n:
        assert n == 2


def test_a_running_feedforward_does_not_hold_trainings_to_one_thread(monkeypatch):
    """A feedforward (a short call) in another thread leaves a training the
    default of every core; a feedforward during a training in another
    thread takes one."""
    monkeypatch.setattr(_training, "usable_cores", lambda: 2)
    seen = []

    def other_thread(training):
        with _training.engine_threads(training=training) as n:
            seen.append(n)
            started.set()
            release.wait(10)

    for training, expected in [(False, 2), (True, 1)]:
        started, release = threading.Event(), threading.Event()
        worker = threading.Thread(target=other_thread, args=(training,))
        worker.start()
        assert started.wait(10)
        with _training.engine_threads() as n:
            seen.append(n)
        with _training.engine_threads(training=False) as n:
            seen.append(n)
        release.set()
        worker.join()
        assert seen[-2:] == [expected, 1 if training else 2]
    assert _engine.running_calls() == (0, 0)
