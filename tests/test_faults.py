"""Faults: divergence, Ctrl-C, threads, and copies of networks.

- Divergence: a mini-batch that would make anything NaN, infinite or absurd
  is not applied; fit raises FloatingPointError and the network holds the
  weights of the last good mini-batch, checked by replaying the same
  mini-batches one engine call at a time on a copy.
- SIGINT during fit: KeyboardInterrupt promptly (in a child process: exit
  within 2 s of the signal), weights finite and those of a completed
  mini-batch.
- Threads: the GIL is released while training, two networks train in two
  threads to the same weights as one after the other; two threads training
  the same network are refused (NetworkBusyError), never interleaved.
  How much faster two threads are is measured by bench/threads.py, not here.
- Networks pickle and deepcopy (the lock is recreated), also mid-training
  from another thread: refused rather than copied half-updated.
"""
import contextlib
import copy
import dis
import itertools
import json
import os
import pickle
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pytest
import threadpoolctl
from numpy.testing import assert_array_equal
from threadpoolctl import threadpool_info

import fastbp
import fastbp.network as book
import fastbp.network2 as book2
from fastbp import _checks, _engine, _training


def all_parameters(net):
    return list(net.weights) + list(net.biases)


def assert_finite(net):
    for p in all_parameters(net):
        assert np.all(np.isfinite(p))


def assert_same_network(a, b):
    for x, y in zip(all_parameters(a), all_parameters(b)):
        assert_array_equal(x, y)


def one_batch(net, X, Y, rows, batch_size, eta, decay=1.0):
    """Apply one mini-batch to net through the engine (FloatingPointError if
    the engine refuses it)."""
    weights, biases = net._parameters()
    acts, cost = net._codes()
    _training.train_epoch(weights, biases, net.sizes, acts, cost,
                          np.ascontiguousarray(X, dtype=net.dtype),
                          np.ascontiguousarray(Y, dtype=net.dtype),
                          rows, batch_size, eta, decay)


def one_hot(labels, n_out):
    return np.eye(n_out)[labels]


# ---------------------------------------------------------------------------
# Divergence

@pytest.mark.parametrize("dtype, seed, width, threads", [
    (np.float64, 0, 32, None), (np.float64, 1, 32, None), (np.float32, 0, 32, None),
    (np.float64, 0, 128, 2), (np.float32, 0, 128, 2)])
def test_divergence_keeps_the_last_good_mini_batch(dtype, seed, width, threads):
    """ReLU hidden layers, a linear output and a huge eta: the output grows
    without bound within the first epoch.  Through fit (one thread for a
    network this small), and through the engine's epoch on two threads.
    The refused mini-batch is the 4th, 5th or 3rd: the epoch loop alternates
    two sets of activations and maxima, and both are checked."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((200, 10))
    labels = rng.integers(0, 3, size=200)
    Y = one_hot(labels, 3)
    net = fastbp.Network([10, width, width, 3], activations=["relu", "relu", "linear"],
                         seed=seed, dtype=dtype)
    replay = copy.deepcopy(net)
    order = copy.deepcopy(net.rng).permutation(len(X))
    batch_size, eta = 10, 1e3

    with pytest.raises(FloatingPointError, match="mini-batch") as info:
        if threads is None:
            net.fit(X, labels, epochs=5, batch_size=batch_size, eta=eta, monitor=False)
        else:
            weights, biases = net._parameters()
            _training.train_epoch(weights, biases, net.sizes, *net._codes(),
                                  X.astype(dtype), Y.astype(dtype), order, batch_size, eta,
                                  threads=threads)
    assert_finite(net)

    # Replay on the copy: the same mini-batches, one engine call each, until
    # one is refused; the fit must have stopped at the same state.
    good = 0
    with pytest.raises(FloatingPointError):
        for start in range(0, len(X), batch_size):
            one_batch(replay, X, Y, order[start:start + batch_size], batch_size, eta)
            good += 1
    assert 1 <= good < len(X) // batch_size
    assert f"mini-batch {good + 1} of" in str(info.value)
    assert_same_network(net, replay)

    # Training on from there diverges at once, and changes nothing.
    before = [p.copy() for p in all_parameters(net)]
    with pytest.raises(FloatingPointError, match="mini-batch 1 of"):
        net.fit(X, labels, epochs=1, batch_size=batch_size, eta=eta, monitor=False)
    for p, q in zip(all_parameters(net), before):
        assert_array_equal(p, q)



def test_an_error_in_a_python_activation_keeps_the_last_complete_mini_batch():
    """A Python-defined activation that raises in the third mini-batch: fit
    raises its error, with a note saying so, and the network holds the two
    mini-batches before it, as a replay of those two on a copy does."""
    calls = {"n": 0}

    def f(z):
        calls["n"] += 1
        if calls["n"] == 3:               # one forward pass per mini-batch
            raise RuntimeError("boom")
        return np.tanh(z)

    def f_prime(z):
        return 1 - np.tanh(z) ** 2

    rng = np.random.default_rng(6)
    X, labels = rng.standard_normal((20, 3)), rng.integers(0, 2, size=20)
    net = fastbp.Network([3, 4, 2], activations=[(f, f_prime), "sigmoid"], seed=0)
    replay = copy.deepcopy(net)
    order = copy.deepcopy(net.rng).permutation(len(X))
    with pytest.raises(RuntimeError, match="boom") as info:
        net.fit(X, labels, epochs=1, batch_size=5, eta=0.5, monitor=False)
    assert any("mini-batch 3 of 4" in note for note in info.value.__notes__)
    weights, biases = replay._parameters()
    acts, cost = replay._codes()
    replay._path().train_epoch(weights, biases, replay.sizes, acts, cost, X,
                               one_hot(labels, 2), order[:10], 5, 0.5)
    assert_same_network(net, replay)

@pytest.mark.parametrize("activations", ["relu", ["relu", "relu", "linear"], "tanh"])
@pytest.mark.parametrize("eta", [1e2, 1e6, 1e12])
def test_huge_eta_never_leaves_non_finite_weights(activations, eta):
    """Whether training ends (dead ReLUs, saturated tanh) or is stopped by
    divergence, every weight and bias stays finite."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((100, 8)) * 10
    labels = rng.integers(0, 4, size=100)
    net = fastbp.Network([8, 16, 16, 4], activations=activations, seed=2)
    try:
        net.fit(X, labels, epochs=10, batch_size=5, eta=eta, monitor=False)
    except FloatingPointError:
        pass
    assert_finite(net)


# ---------------------------------------------------------------------------
# Ctrl-C

CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    import fastbp

    rng = np.random.default_rng(0)
    X = rng.random((20000, 400), dtype=np.float32)
    y = rng.integers(0, 10, size=20000)
    net = fastbp.Network([400, 300, 10], dtype=np.float32, seed=0)
    print("started", flush=True)
    try:
        net.fit(X, y, epochs=100000, batch_size=10, eta=0.1, monitor=False,
                n_threads=1)
    except KeyboardInterrupt:
        finite = all(np.isfinite(p).all() for p in net.weights + net.biases)
        print("interrupted, weights finite:", finite, flush=True)
        raise
    print("fit returned", flush=True)
""")


def test_sigint_stops_fit_in_a_child_process():
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        assert ready, "the child never started training"
        assert proc.stdout.readline().strip() == "started"
        time.sleep(2.0)
        assert proc.poll() is None, "the child stopped on its own"
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        try:
            proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            pytest.fail("fit did not stop within 2 s of SIGINT")
        stopped_after = time.monotonic() - sent
        out, err = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "interrupted, weights finite: True" in out, (out, err)
    assert "fit returned" not in out
    assert "KeyboardInterrupt" in err
    assert "interrupted between two mini-batches" in err
    assert proc.returncode != 0
    print(f"child stopped {stopped_after:.3f} s after SIGINT")


def _interrupt_main_thread_after(seconds):
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


@pytest.mark.skipif(signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
                    reason="SIGINT is not Python's default handler here")
def test_sigint_in_this_process_leaves_a_completed_mini_batch(monkeypatch):
    """os.kill from another thread; the main thread, inside fit, gets
    KeyboardInterrupt, and the weights equal those after some number of
    whole mini-batches (replayed one engine call each on a copy).  The
    engine looks for the signal after every mini-batch here, so that it,
    not the Python between two epochs, is what sees it."""
    monkeypatch.setattr(_training, "_SECONDS_BETWEEN_SIGNAL_CHECKS", 1e-6)
    rng = np.random.default_rng(3)
    n, batch_size, eta = 3000, 50, 0.5
    X = rng.random((n, 100))
    labels = rng.integers(0, 10, size=n)
    Y = one_hot(labels, 10)
    net = fastbp.Network([100, 200, 10], seed=4)
    replay = copy.deepcopy(net)
    orders = copy.deepcopy(net.rng)
    epochs = 400                   # many seconds of training, far longer than the wait

    timer = _interrupt_main_thread_after(0.5)
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            net.fit(X, labels, epochs=epochs, batch_size=batch_size, eta=eta,
                    monitor=False)
    finally:
        timer.cancel()
        timer.join()
    assert any("interrupted between two mini-batches" in note
               for note in getattr(info.value, "__notes__", []))
    assert_finite(net)

    # Find the mini-batch the fit stopped after: replay until equal (the
    # replay costs about what the 0.5 s of training before the signal did).
    target = all_parameters(net)

    def reached():
        return all(np.array_equal(a, b) for a, b in zip(all_parameters(replay), target))

    if reached():
        return
    for epoch in range(epochs):
        order = orders.permutation(n)
        for start in range(0, n, batch_size):
            one_batch(replay, X, Y, order[start:start + batch_size], batch_size, eta)
            if reached():
                return
    pytest.fail("no replayed mini-batch gives the interrupted weights")


# ---------------------------------------------------------------------------
# Threads

def _problem(seed, n=2000, n_in=200, n_out=10):
    rng = np.random.default_rng(seed)
    return rng.random((n, n_in)), rng.integers(0, n_out, size=n)


def test_two_networks_in_two_threads_train_as_one_after_the_other():
    X, y = _problem(5)
    nets = [fastbp.Network([200, 64, 10], seed=s) for s in (10, 11)]
    alone = [copy.deepcopy(net) for net in nets]
    # one engine thread each (fastbp keeps BLAS to one thread while training)
    kw = dict(epochs=3, batch_size=10, eta=0.5, monitor=False, n_threads=1)
    errors = []

    def train(net):
        try:
            net.fit(X, y, **kw)
        except BaseException as exc:        # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=train, args=(net,)) for net in nets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for net in alone:
        net.fit(X, y, **kw)
    for net, ref in zip(nets, alone):
        assert_same_network(net, ref)


def test_training_releases_the_gil():
    """A Python thread keeps counting while the main thread is inside one
    long compiled epoch.  Holding the GIL would freeze it at zero."""
    X, y = _problem(6, n=20000)
    net = fastbp.Network([200, 256, 10], seed=7)
    count = [0]
    inside = threading.Event()
    done = threading.Event()

    def counter():
        inside.wait()
        while not done.is_set():
            count[0] += 1

    t = threading.Thread(target=counter)
    t.start()
    try:
        inside.set()
        net.fit(X, y, epochs=1, batch_size=10, eta=0.5, monitor=False, n_threads=1)
        during = count[0]
    finally:
        done.set()
        t.join()
    assert during > 1000, f"the counter thread advanced only {during} times during fit"


def _fit_in_thread(target, *args, **kw):
    """Run target in a thread; return (thread, errors list)."""
    errors = []

    def run():
        try:
            target(*args, **kw)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    return t, errors


def _wait_until_training(net, thread, timeout=60.0):
    """Until the thread holds net's training lock."""
    deadline = time.monotonic() + timeout
    while not net._lock.locked():
        assert thread.is_alive() and time.monotonic() < deadline, "training never started"
        time.sleep(0.0005)


def test_same_network_in_two_threads_is_refused_not_interleaved():
    X, y = _problem(8, n=8000)
    net = fastbp.Network([200, 128, 10], seed=9)
    alone = copy.deepcopy(net)
    kw = dict(epochs=2, batch_size=10, eta=0.5, monitor=False)

    first, errors = _fit_in_thread(net.fit, X, y, **dict(kw, epochs=6))
    _wait_until_training(net, first)
    with pytest.raises(fastbp.NetworkBusyError):
        net.fit(X, y, **kw)
    with pytest.raises(fastbp.NetworkBusyError):
        pickle.dumps(net)               # no copy of a half-updated network
    with pytest.raises(fastbp.NetworkBusyError):
        copy.deepcopy(net)
    busy = _training.exclusive(net._lock)
    with pytest.raises(RuntimeError):   # NetworkBusyError is a RuntimeError
        busy.__enter__()
    first.join()
    assert not errors, errors

    alone.fit(X, y, **dict(kw, epochs=6))   # one training, not two, happened
    assert_same_network(net, alone)


@pytest.mark.parametrize("module", [book, book2])
def test_a_read_never_undoes_arrays_bound_meanwhile(monkeypatch, module):
    """A read checks the network's parameters; if training binds new arrays
    to the network while the read checks the old ones (as SGD does at the
    end of each epoch, from another thread), the read must leave the new
    ones bound.  The binding is made here from inside the check, at the
    moment a thread switch could make it."""
    np.random.seed(0)
    net = module.Network([4, 3, 2])
    new_w = [w + 1.0 for w in net.weights]
    new_b = [b + 1.0 for b in net.biases]
    real_check = _checks.check_parameters

    def check_while_training_binds(weights, biases, sizes, dtype):
        checked = real_check(weights, biases, sizes, dtype)
        net.weights, net.biases = new_w, new_b
        return checked

    monkeypatch.setattr(_checks, "check_parameters", check_while_training_binds)
    net.feedforward(np.zeros((4, 1)))
    assert net.weights is new_w and net.biases is new_b

def test_book_network_in_two_threads_is_refused():
    rng = np.random.default_rng(10)
    np.random.seed(0)
    net = book.Network([50, 64, 10])
    data = [(rng.random((50, 1)), one_hot([k % 10], 10).reshape(10, 1))
            for k in range(5000)]
    first, errors = _fit_in_thread(net.SGD, data, 40, 10, 0.5)
    _wait_until_training(net, first)
    with pytest.raises(fastbp.NetworkBusyError):
        net.SGD(list(data), 1, 10, 0.5)
    with pytest.raises(fastbp.NetworkBusyError):
        net.update_mini_batch(data[:10], 0.5)
    first.join()
    assert not errors, errors


# ---------------------------------------------------------------------------
# Copies

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_network_pickles_and_deepcopies(dtype):
    X, y = _problem(11, n=300, n_in=20)
    net = fastbp.Network([20, 15, 10], activations=["tanh", "sigmoid"],
                         cost="cross-entropy", dtype=dtype, seed=12)
    net.fit(X, y, epochs=1, batch_size=10, eta=0.5, monitor=False)
    for other in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        assert other._lock is not net._lock and not other._lock.locked()
        assert other.weights[0] is not net.weights[0]
        assert (other.sizes, other.activations, other.cost, other.dtype) == \
               (net.sizes, net.activations, net.cost, net.dtype)
        assert_same_network(other, net)
        assert_array_equal(other.feedforward(X), net.feedforward(X))
    # the shuffling generator is copied too: both go on identically
    twin = copy.deepcopy(net)
    for a in (net, twin):
        a.fit(X, y, epochs=2, batch_size=10, eta=0.5, monitor=False)
    assert_same_network(net, twin)
    # and the copy trains while the original is locked by another thread
    with _training.exclusive(net._lock):
        twin.fit(X, y, epochs=1, batch_size=10, eta=0.5, monitor=False)


def test_book_network_pickles_and_deepcopies():
    np.random.seed(1)
    net = book.Network([4, 3, 2])
    for other in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        assert other._lock is not net._lock
        assert_same_network(other, net)
        x = np.linspace(0, 1, 4).reshape(4, 1)
        assert_array_equal(other.feedforward(x), net.feedforward(x))


def test_an_interrupt_between_engine_calls_gets_the_note_once():
    """A KeyboardInterrupt raised in the Python between two epochs (not in
    the engine) still tells the user what state training left, once."""
    from fastbp import _checks, _training
    with pytest.raises(KeyboardInterrupt) as info:
        with _training.engine_threads():
            exc = KeyboardInterrupt()
            _training.note_interrupted(exc)      # as the engine's caller does
            raise exc
    notes = [n for n in info.value.__notes__ if "interrupted between two mini-batches" in n]
    assert len(notes) == 1
    with pytest.raises(KeyboardInterrupt) as info:
        with _training.engine_threads():
            raise KeyboardInterrupt
    assert any("interrupted between two mini-batches" in n for n in info.value.__notes__)


# Python raises a KeyboardInterrupt (Ctrl-C) only where the interpreter
# looks for signals: when a function starts, on a backward jump, and as a
# call returns.  _interrupt_at injects one at the k-th such point of the
# traced code (as the call event, before the jump, and before the
# instruction after the call), so that a loop over k tries every point.
_BACKWARD_JUMPS = {"JUMP_BACKWARD", "POP_JUMP_BACKWARD_IF_FALSE", "POP_JUMP_BACKWARD_IF_TRUE",
                   "POP_JUMP_BACKWARD_IF_NONE", "POP_JUMP_BACKWARD_IF_NOT_NONE"}


def _signal_points(code, cache={}):
    if code not in cache:
        ins = list(dis.get_instructions(code))
        after_calls = {b.offset for a, b in zip(ins, ins[1:])
                       if a.opname in ("CALL", "CALL_FUNCTION_EX")}
        cache[code] = after_calls | {i.offset for i in ins if i.opname in _BACKWARD_JUMPS}
    return cache[code]


def _interrupt_at(k, traced):
    """A trace function (sys.settrace) that raises KeyboardInterrupt at the
    k-th point where Python looks for signals in the code ``traced(code)``
    selects, and how many points it passed."""
    seen = [0]

    def point():
        seen[0] += 1
        if seen[0] == k:
            raise KeyboardInterrupt         # also ends the tracing

    def local(frame, event, arg):
        if event == "opcode" and frame.f_lasti in _signal_points(frame.f_code):
            point()
        return local

    def enter(frame, event, arg):
        if traced(frame.f_code):
            point()                         # the function starts
            frame.f_trace_opcodes = True
            return local
        return None
    return enter, seen


def _training_then_feedforward():
    with _training.engine_threads():
        with _training.engine_threads(training=False):
            pass


def _blas_thread_counts():
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def _fastbp_and_blas_setting(code):
    """fastbp's Python, the test's with statement, and threadpoolctl's
    functions that read and set a library's threads (its search for the
    libraries changes nothing, and runs before fastbp records anything)."""
    return (code.co_filename in (_training.__file__, __file__, contextlib.__file__)
            or (code.co_filename == threadpoolctl.__file__
                and code.co_name in ("set_num_threads", "_real_set_num_threads",
                                     "get_num_threads", "num_threads")))


def test_no_ctrl_c_leaves_an_engine_call_counted():
    """A Ctrl-C at any point where Python could raise it -- in fastbp's
    Python, in threadpoolctl's setting of BLAS's threads, or in the
    caller's with statement -- leaves no call counted and BLAS's threads
    as they were.  Otherwise every later training would take one core, or
    BLAS would stay on one thread for the rest of the process."""
    blas_before = _blas_thread_counts()
    interrupted = 0
    previous = sys.gettrace()
    for k in itertools.count(1):
        tracer, seen = _interrupt_at(k, _fastbp_and_blas_setting)
        sys.settrace(tracer)
        try:
            _training_then_feedforward()
        except KeyboardInterrupt:
            interrupted += 1
        finally:
            sys.settrace(previous)
        assert _engine.running_calls() == (0, 0) and not _training._calls_inside(), k
        assert not _engine.blas_limited() and _blas_thread_counts() == blas_before, k
        if seen[0] < k:
            break
    assert interrupted == k - 1 > 50          # (88 points with threadpoolctl 3.8)


class _FakeBlasThreads:
    """Stands for _training._BlasThreads: records limit() and restore() calls
    and raises from restore() as told."""
    calls = []
    fail_restore = []           # what the next restore()s raise, in turn

    def limit(self):
        self.calls.append("limit")

    def restore(self):
        self.calls.append("restore")
        if self.fail_restore:
            raise self.fail_restore.pop(0)


@pytest.fixture
def fake_blas_threads(monkeypatch):
    _FakeBlasThreads.calls, _FakeBlasThreads.fail_restore = [], []
    monkeypatch.setattr(_training, "_BlasThreads", _FakeBlasThreads)
    yield _FakeBlasThreads
    _FakeBlasThreads.fail_restore = []
    with _training.engine_threads(training=False):      # clears any limit left
        pass
    assert not _engine.blas_limited()


def test_an_interrupted_blas_restore_is_finished(fake_blas_threads):
    """Cut short by one Ctrl-C, the restore is tried again at once; by two,
    by the next call."""
    fake_blas_threads.fail_restore = [KeyboardInterrupt()]
    with pytest.raises(KeyboardInterrupt):
        with _training.engine_threads(training=False):
            pass
    assert fake_blas_threads.calls == ["limit", "restore", "restore"]
    assert _engine.running_calls() == (0, 0) and not _engine.blas_limited()
    fake_blas_threads.calls.clear()
    fake_blas_threads.fail_restore = [KeyboardInterrupt(), KeyboardInterrupt()]
    with pytest.raises(KeyboardInterrupt):
        with _training.engine_threads(training=False):
            pass
    assert _engine.running_calls() == (0, 0) and _engine.blas_limited()
    with _training.engine_threads(training=False):
        assert fake_blas_threads.calls == ["limit", "restore", "restore", "restore", "limit"]
        assert _engine.running_calls() == (1, 0)
    assert fake_blas_threads.calls[-1] == "restore" and not _engine.blas_limited()


def test_a_failing_blas_restore_is_a_warning(fake_blas_threads):
    """A restore that raises an error is reported as a warning and not
    retried: raised, it would replace what the call raised (a Ctrl-C, say),
    and retried, it would fail every later call."""
    fake_blas_threads.fail_restore = [OSError("no"), OSError("still no")]
    with pytest.warns(RuntimeWarning, match="could not restore BLAS's thread counts"):
        with pytest.raises(KeyboardInterrupt):
            with _training.engine_threads():
                raise KeyboardInterrupt
    assert not _engine.blas_limited()
    ran = []
    with pytest.warns(RuntimeWarning, match="OSError..still no"):
        with _training.engine_threads(training=False):
            ran.append(True)
    assert ran == [True] and not _engine.blas_limited()
    assert fake_blas_threads.calls == ["limit", "restore", "limit", "restore"]


def test_a_failing_blas_restore_never_replaces_the_calls_exception(fake_blas_threads):
    """With warnings turned into errors, the warning of a failed restore
    becomes a note on the exception the call raises, not a replacement for
    it; raised where the call ends normally."""
    fake_blas_threads.fail_restore = [OSError("no"), OSError("still no")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(KeyboardInterrupt) as info:
            with _training.engine_threads():
                raise KeyboardInterrupt
        assert any("could not restore BLAS's thread counts" in note
                   for note in info.value.__notes__)
        with pytest.raises(RuntimeWarning, match="OSError..still no"):
            with _training.engine_threads(training=False):
                pass
    assert _engine.running_calls() == (0, 0) and not _engine.blas_limited()


def test_every_failed_blas_restore_is_reported(fake_blas_threads):
    """Also the retry after a Ctrl-C, and the clean-up of an entry that
    failed."""
    fake_blas_threads.fail_restore = [KeyboardInterrupt(), OSError("retry failed")]
    with pytest.warns(RuntimeWarning, match="retry failed"):
        with pytest.raises(KeyboardInterrupt):
            with _training.engine_threads(training=False):
                pass
    assert not _engine.blas_limited()

    class LimitFails(_FakeBlasThreads):
        def limit(self):
            raise MemoryError("limit failed")

    _training._BlasThreads = LimitFails
    try:
        fake_blas_threads.fail_restore = [OSError("clean-up failed")]
        with pytest.warns(RuntimeWarning, match="clean-up failed"):
            with pytest.raises(MemoryError, match="limit failed"):
                with _training.engine_threads(training=False):
                    pass
    finally:
        _training._BlasThreads = fake_blas_threads
    assert _engine.running_calls() == (0, 0) and not _engine.blas_limited()


def test_a_restore_left_by_another_call_is_reported(fake_blas_threads):
    """A call that finds, under the lock, a limit another call's exit left
    (two Ctrl-Cs cut its restore short) restores it there, and reports a
    failure when it ends, also when its own restore is cut short by a
    Ctrl-C (then retried)."""
    fake_blas_threads.fail_restore = [KeyboardInterrupt(), KeyboardInterrupt(),
                                      OSError("left behind"), KeyboardInterrupt()]

    def calls_inside():             # runs after the entry's first look, before the lock
        with contextlib.suppress(KeyboardInterrupt):
            with _training.engine_threads(training=False):
                pass
        assert _engine.blas_limited()
        return _training._calls_inside()

    ctx = _engine.EngineThreads(None, False, calls_inside, 2, _training._blas_lock,
                                _training._BlasThreads, _training.note_interrupted)
    with pytest.warns(RuntimeWarning, match="left behind"):
        with pytest.raises(KeyboardInterrupt):
            with ctx:
                assert _engine.running_calls() == (1, 0)
    assert fake_blas_threads.calls == ["limit", "restore", "restore", "restore", "limit",
                                       "restore", "restore"]
    assert _engine.running_calls() == (0, 0) and not _engine.blas_limited()
    # the exit's restore cut short twice: still reported; the limit is left
    # to the next call (the fixture's)
    fake_blas_threads.fail_restore = [KeyboardInterrupt(), KeyboardInterrupt(),
                                      OSError("left again"), KeyboardInterrupt(),
                                      KeyboardInterrupt()]
    ctx = _engine.EngineThreads(None, False, calls_inside, 2, _training._blas_lock,
                                _training._BlasThreads, _training.note_interrupted)
    with pytest.warns(RuntimeWarning, match="left again"):
        with pytest.raises(KeyboardInterrupt):
            with ctx:
                pass
    assert _engine.running_calls() == (0, 0) and _engine.blas_limited()


BLAS_THREADS_CHILD = textwrap.dedent("""
    import json, threading
    from threadpoolctl import threadpool_info, threadpool_limits
    from fastbp import _training

    def counts():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    def in_thread(work):
        thread = threading.Thread(target=work)
        thread.start()
        thread.join(30)
        assert not thread.is_alive()

    seen = {"before": counts()}
    started, release, finished, done = (threading.Event() for _ in range(4))

    def worker():                       # the first to limit BLAS in this process
        with _training.engine_threads(training=False):
            seen["worker first"] = counts()
            started.set()
            assert release.wait(30)
        finished.set()
        assert done.wait(30)            # alive until the main thread's call has ended

    thread = threading.Thread(target=worker)
    thread.start()
    assert started.wait(30)
    with _training.engine_threads(training=False):
        seen["main, overlapping"] = counts()
        release.set()
        assert finished.wait(30)
    seen["after both"] = counts()
    done.set()
    thread.join(30)

    def later_worker():                 # after calls in the main thread
        with _training.engine_threads(training=False):
            seen["a later worker"] = counts()

    with _training.engine_threads(training=False):
        pass
    in_thread(later_worker)
    seen["after the later worker"] = counts()

    def users_limit():                  # fastbp has not kept threadpoolctl's control
        with threadpool_limits(limits=1, user_api="blas"):
            seen["a user's limit in a worker"] = counts()

    in_thread(users_limit)
    seen["end"] = counts()

    user_started, user_release = threading.Event(), threading.Event()

    def users_limit_ending_in_a_call():
        with threadpool_limits(limits=max(seen["before"]) + 1, user_api="blas"):
            user_started.set()
            assert user_release.wait(30)

    thread = threading.Thread(target=users_limit_ending_in_a_call)
    thread.start()
    assert user_started.wait(30)
    with _training.engine_threads(training=False):
        user_release.set()
        thread.join(30)
    seen["after a user's limit ended in a call"] = counts()
    print(json.dumps(seen))
""")


def test_blas_is_limited_and_restored_across_threads():
    """In a fresh process, with threadpoolctl's rule that one Python thread
    at a time sets a shared OpenBLAS pool: a call in a worker limits BLAS,
    and the main thread's overlapping call, ending last, restores it; a
    worker's call after main-thread calls is limited too; a user's own
    limit in a worker still works after fastbp's calls; and one that began
    before a call and ended in it is not put back by fastbp's restore."""
    proc = subprocess.run([sys.executable, "-c", BLAS_THREADS_CHILD], capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    before = seen.pop("before")
    if not before or max(before) < 2:
        pytest.skip("BLAS runs on one thread here already")
    one = [1] * len(before)
    assert seen == {"worker first": one, "main, overlapping": one, "after both": before,
                    "a later worker": one, "after the later worker": before,
                    "a user's limit in a worker": one, "end": before,
                    "after a user's limit ended in a call": before}


def test_one_engine_threads_context_is_entered_once():
    """Two threads entering one context object (the first waiting for the
    BLAS lock): the second is refused, and one call is counted."""
    ctx = _training.engine_threads(training=False)
    entered, refused = [], []

    def enter():
        try:
            entered.append(ctx.__enter__())
        except RuntimeError:
            refused.append(True)

    threads = [threading.Thread(target=enter) for _ in range(2)]
    with _training._blas_lock:
        for t in threads:
            t.start()
        time.sleep(0.2)
    for t in threads:
        t.join(10)
    assert len(entered) == 1 and refused == [True]
    assert _engine.running_calls() == (1, 0)
    ctx.__exit__(None, None, None)
    assert _engine.running_calls() == (0, 0) and not _engine.blas_limited()
    with pytest.raises(RuntimeError, match="already in use"):
        with _training.engine_threads() as n:
            ctx2 = _training.engine_threads()
            ctx2.__enter__()
            ctx2.__enter__()
    ctx2.__exit__(None, None, None)
    assert _engine.running_calls() == (0, 0)


def test_fits_callback_may_save_and_pickle_the_network_between_epochs(tmp_path):
    """A checkpoint from the callback holds the epoch just finished; training
    the network from there is still refused."""
    X, y = _problem(3, n=60, n_in=5, n_out=3)
    net = fastbp.Network([5, 4, 3], seed=0)
    saved = {}

    def checkpoint(epoch, history):
        net.save(tmp_path / f"epoch{epoch}.npz")
        saved[epoch] = pickle.loads(pickle.dumps(net))
        with pytest.raises(_training.NetworkBusyError):
            net.fit(X, y, 1, 10, 0.5)

    net.fit(X, y, 2, 10, 0.5, monitor=False, callback=checkpoint)
    for copy_ in (fastbp.load(tmp_path / "epoch1.npz"), saved[1]):
        assert_same_network(copy_, net)
    assert not hasattr(saved[0], "_between_epochs") or saved[0]._between_epochs is None
    first = fastbp.Network([5, 4, 3], seed=0)
    first.fit(X, y, 1, 10, 0.5, monitor=False)
    assert_same_network(fastbp.load(tmp_path / "epoch0.npz"), first)
    pickle.dumps(net)                     # after fit: an ordinary network again
