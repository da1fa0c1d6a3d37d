"""The one road from Python into the engine.

Both the native API (fastbp.Network) and the book's layers (fastbp.network,
fastbp.network2) train through these functions.  They take checked,
C-contiguous arrays (see fastbp._checks), hold the network's lock, limit
BLAS's threads, run the compiled epoch, and turn the engine's statuses into
exceptions.
"""
import contextlib
import os
import threading
import time

import numpy as np
from threadpoolctl import ThreadpoolController

from . import _checks, _engine, activations as _activations

# Take the GIL to look for Ctrl-C about every this many seconds of training.
# Each look waits for the GIL, which a busy Python thread may hold for up to
# sys.getswitchinterval() (5 ms): looking every 1.5 ms made such a thread
# slow W1's training 4-6 times.  The engine counts mini-batches, so the
# seconds are turned into mini-batches by _batches_between_signal_checks.
_SECONDS_BETWEEN_SIGNAL_CHECKS = 0.03


def _batches_between_signal_checks(per_batch_flops):
    """How many mini-batches take about _SECONDS_BETWEEN_SIGNAL_CHECKS, from
    a model of one's time: 5 us of fixed cost, and its floating-point
    operations at 30 GFLOP/s.  On a 2-core machine of 2026 that meant a
    look every 5 to 40 ms, from [2, 3, 1] on one sample a mini-batch (under
    1 us each) to [784, 30, 10] and [784, 100, 10] (10 to 80 us); the model
    errs towards looking more often."""
    seconds = 5e-6 + per_batch_flops / 3e10
    return max(1, int(_SECONDS_BETWEEN_SIGNAL_CHECKS / seconds))

# The engine's threads meet at a few barriers per mini-batch; below this much
# work per thread and mini-batch the split cannot pay, and is not even timed.
# W1's mini-batch (0.96 MFLOP) is above it for two threads: the probe decides.
_MIN_FLOPS_PER_THREAD = 4e5
MAX_THREADS = 64

# A feedforward of at least this many floating-point operations (several
# milliseconds on one core) shares its rows out over the engine's threads;
# below it, limiting BLAS's threads (about a millisecond) would not pay.
_MIN_FLOPS_FEEDFORWARD_THREADS = 2e8

_SIGMOID = _activations.CODES["sigmoid"]


class NetworkBusyError(RuntimeError):
    """Raised when a network is asked to train while it is training in another thread."""


def exclusive(lock):
    """Hold a network's lock for a training call (``with exclusive(lock):``),
    or refuse at once (see _engine.Exclusive)."""
    return _engine.Exclusive(lock, NetworkBusyError(
        "this network is already being trained or evaluated in another thread; "
        "train a copy, or wait for that call to return"))


def new_lock():
    return threading.Lock()


@contextlib.contextmanager
def between_epochs(net):
    """While a training call of this thread waits between two epochs (its
    callback runs), this thread may copy the network (save, pickle): its
    parameters are those of a finished epoch."""
    try:
        net._between_epochs = threading.get_ident()
        yield
    finally:
        net._between_epochs = None


def _for_reading(net):
    """The lock a copy of the network takes: exclusive(net._lock), or none
    for the thread whose training call is between epochs (see between_epochs)."""
    if getattr(net, "_between_epochs", None) == threading.get_ident():
        return contextlib.nullcontext()
    return exclusive(net._lock)


def network_state(net):
    """A network's state for pickle and deepcopy: everything but its lock,
    which cannot be pickled, with the weights and biases copied under the
    lock (NetworkBusyError while it trains in another thread, so a copy is
    never caught half-updated)."""
    with _for_reading(net):
        state = net.__dict__.copy()
        del state["_lock"]
        state.pop("_between_epochs", None)
        state["weights"] = [np.array(w, copy=True) for w in net.weights]
        state["biases"] = [np.array(b, copy=True) for b in net.biases]
    return state


def copied_parameters(net, dtype):
    """Copies of a network's checked weights and biases, taken under its lock
    (for saving: never a network caught half-updated)."""
    with _for_reading(net):
        weights, biases = _checks.bind_parameters(net, dtype)
        return ([np.array(w, copy=True) for w in weights],
                [np.array(b, copy=True) for b in biases])


def restore_network_state(net, state):
    """The inverse of network_state: the copy gets a lock of its own."""
    net.__dict__.update(state)
    net._lock = new_lock()


def usable_cores():
    """The number of cores this process may run on, capped by OMP_NUM_THREADS
    when that is set (as joblib does in its worker processes)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:          # not on Linux
        cores = os.cpu_count() or 1
    try:
        cores = min(cores, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        pass
    return max(1, cores)


# In each Python thread, the thread counts of the engine calls it is inside,
# innermost last (the counts of all running calls are kept by the engine:
# _engine.running_calls).
_inside = threading.local()
_blas_lock = threading.Lock()


def _calls_inside():
    return _inside.__dict__.setdefault("calls", [])


class _BlasThreads:
    """The thread counts of the loaded BLAS libraries (threadpoolctl) when
    made; limit() sets each to one thread, restore() puts them back.  Two
    steps, so that the counts are on record before any is changed (see
    _engine.EngineThreads)."""

    def __init__(self):
        self._counts = [(lib, lib.num_threads) for lib in
                        ThreadpoolController().select(user_api="blas").lib_controllers]

    def limit(self):
        for lib, _ in self._counts:
            _set_threads(lib, 1)

    def restore(self):
        for lib, n in self._counts:
            if lib.num_threads == 1:    # else a limit of another's changed it since
                _set_threads(lib, n)


def _set_threads(lib, n):
    """Set a BLAS library's threads, from whichever Python thread.

    threadpoolctl (3.8 on) lets only one Python thread at a time set a
    process-wide OpenBLAS pool's threads through set_num_threads -- the
    first to set them, until it hands the control back -- and silently
    ignores the others.  fastbp serialises its own settings, puts back the
    counts it found, and may limit in one thread and restore in another, so
    it sets them directly, as threadpoolctl did before 3.8, without taking
    that control (which a user's own limits in other threads rely on)."""
    getattr(lib, "_real_set_num_threads", lib.set_num_threads)(n)


def engine_threads(n_threads=None, training=True):
    """The number of threads an engine call may use, for its duration
    (``with engine_threads() as n:``).

    The engine shares its work out over its own threads, so BLAS is kept
    to one thread while any such call runs (restored after the last one
    ends).  n_threads=None takes every usable core, or one if a fastbp
    training is already running in this process: the default never puts
    more busy threads on the machine than it has cores for long.  Inside
    another engine_threads of the same Python thread (the monitoring
    feedforward of a training call, say), the outer call's count is the
    most it may use.

    training=False is for a short call (a feedforward), which other calls
    do not count as a running training.  With training=True, a
    KeyboardInterrupt anywhere in the training loop it wraps -- in the
    engine or in the Python between two engine calls -- gets the note of
    note_interrupted.  The bookkeeping is compiled (_engine.EngineThreads),
    so that a Ctrl-C cannot leave a call counted for good."""
    if n_threads is not None:
        n_threads = _checks.check_int("n_threads", n_threads, minimum=1, maximum=MAX_THREADS)
    return _engine.EngineThreads(n_threads, training, _calls_inside,
                                 min(usable_cores(), MAX_THREADS), _blas_lock, _BlasThreads,
                                 note_interrupted)


def _layer_weights(sizes):
    """The number of weights of each layer, W^1 first."""
    return [a * b for a, b in zip(sizes[1:], sizes[:-1])]


def flops_per_sample(sizes):
    """Floating-point operations to train on one sample: 2 per weight for the
    feedforward and for BP4, and 2 per weight for BP2 above the first layer."""
    w = _layer_weights(sizes)
    return 6 * sum(w) - 2 * w[0]


class ThreadPlan:
    """How many threads the epochs of one training call use.

    Splitting a mini-batch over threads pays on an idle machine and costs
    dearly on one whose cores are busy with other work, where every barrier
    waits for the scheduler.  So the first epoch of a call times a few
    mini-batches with each candidate count and keeps the faster.  The
    results do not depend on the count: the engine cuts each layer into
    fixed blocks whatever the number of threads, so every product is the
    same BLAS call either way (tests/test_thread_plan.py)."""

    # Time each candidate twice on about this many floating-point operations.
    PROBE_FLOPS = 5e7

    # When the split times slower than TOLERANCE allows, the plan trains
    # this many seconds on one thread and probes again before it decides:
    # OpenBLAS threads left spinning by NumPy work just before the call
    # (about 0.1 s) slow the split down meanwhile.
    SETTLE_SECONDS = 0.15

    # More threads are kept unless they time this much slower than one: the
    # probe is short, and on a noisy machine two close timings say little,
    # while a busy machine makes the split lose many times over.  On an idle
    # 2-core machine W1's probe timed two threads at 0.86-1.07 times one
    # (python -m fastbp bench --workload W1), and whole epochs on two threads
    # were as fast or faster (the same with --threads 1: see README, Speed).
    TOLERANCE = 1.25

    def __init__(self, n_max):
        self.n_max = n_max
        self.settle = self.SETTLE_SECONDS
        self.chosen = 1 if n_max <= 1 else None
        self.timings = {}

    @classmethod
    def choose(cls, timings):
        """The thread count to keep, from {count: seconds per sample}."""
        most = max(timings)
        return most if timings[most] <= cls.TOLERANCE * timings[1] else 1


def book_arithmetic_fits(weights, biases, sizes):
    """Whether train_epoch(..., book=True) can train these checked float64
    parameters of a sigmoid network (quadratic or cross-entropy cost):
    every layer at least 2 wide, no two arrays sharing memory, NumPy's exp
    loop found."""
    return (_engine.BOOK_ARITHMETIC and min(sizes) >= 2
            and _engine.overlapping_pair(list(weights) + list(biases)) is None)


def train_epoch(weights, biases, sizes, act_codes, cost_code, X, Y, order,
                batch_size, eta, decay=1.0, xmax=None, threads=1, book=False):
    """One epoch of SGD, in place, visiting the samples in ``order``.  Raises
    FloatingPointError on divergence, with the network left as after the
    last good mini-batch.

    The samples are the rows of the checked matrices X and Y, or X is an
    _engine.Samples (see _book.training_samples) and Y is None.
    xmax = max |X| (see _checks.max_abs) saves a pass over X when given.
    threads is a number of threads or a ThreadPlan; either way an upper
    bound, since a small network trains on fewer.  book=True rounds every
    operation as the book's network.py and network2.py do
    (_engine.train_epoch_book: sigmoid layers; see book_arithmetic_fits)."""
    if book and any(code != _SIGMOID for code in act_codes):
        raise ValueError("the book's arithmetic is for sigmoid layers only")
    data = X if isinstance(X, _engine.Samples) else _engine.matrix_samples(X, Y)
    order = np.ascontiguousarray(order, dtype=np.intp)
    n = len(order)
    per_batch = flops_per_sample(sizes) * min(batch_size, n)
    useful = int(max(1, min(per_batch // _MIN_FLOPS_PER_THREAD, _engine.BLOCKS)))
    if xmax is None:
        xmax = -1.0 if book else data.max_abs()     # the book's path needs no bound
    if not isinstance(threads, ThreadPlan):
        threads = ThreadPlan(min(int(threads), useful))
    elif threads.chosen is None and threads.n_max > useful:
        threads.chosen = useful if useful == 1 else None
    plan = threads
    done = 0
    if plan.chosen is None:
        # Probe: the same consecutive mini-batches, cut at batch boundaries,
        # so the epoch is exactly what one call would have done.
        probe = batch_size * max(2, int(plan.PROBE_FLOPS // per_batch))
        most = min(plan.n_max, useful)

        def run(part, count, done_before):
            return _run(weights, biases, sizes, act_codes, cost_code, data, part,
                        batch_size, eta, decay, xmax, count, per_batch, done_before, n,
                        book)

        done = _probe(plan, order, batch_size, probe, most, done, run)
        if len(plan.timings) == 2 and plan.choose(plan.timings) != most and plan.settle > 0:
            # The split timed slow.  Idle BLAS threads left spinning by NumPy
            # work just before (OpenBLAS spins ~0.1 s before sleeping) slow it
            # down, so train a little on one thread, then probe again -- where
            # the epoch has room for both; else the first timings decide.
            settled = _settle(plan, order, n, batch_size, probe, done, run)
            if settled > done:
                plan.timings.clear()
                done = _probe(plan, order, batch_size, probe, most, settled, run)
        if len(plan.timings) == 2:
            plan.chosen = plan.choose(plan.timings)
    rest = order[done * batch_size:]
    if len(rest):
        done += _run(weights, biases, sizes, act_codes, cost_code, data, rest,
                     batch_size, eta, decay, xmax, plan.chosen or 1, per_batch, done, n,
                     book)
    return done


def _probe(plan, order, batch_size, probe, most, done, run):
    """Time `probe` samples on one thread and on `most`, twice each,
    alternating, into plan.timings (the best of each: the first run of a
    thread count pays for starting its threads and warming its caches).
    run(part, count, done) trains; returns the mini-batches done, counting
    from `done`."""
    for count in (1, most, 1, most):
        part = order[done * batch_size:done * batch_size + probe]
        if len(part) < probe:
            break
        t0 = time.perf_counter()
        done += run(part, count, done)
        seconds = (time.perf_counter() - t0) / len(part)
        plan.timings[count] = min(seconds, plan.timings.get(count, seconds))
    return done


def _settle(plan, order, n, batch_size, probe, done, run):
    """Train on one thread for plan.settle seconds (spending them), leaving
    room in the epoch for a probe.  The parts grow (doubling, but not past
    the settling time left), so that a long settling takes few calls."""
    part_size = probe
    while plan.settle > 0:
        room = (n - done * batch_size - 4 * probe) // batch_size * batch_size
        part_size = min(part_size, room)
        if part_size < probe:
            break
        t0 = time.perf_counter()
        done += run(order[done * batch_size:done * batch_size + part_size], 1, done)
        seconds = time.perf_counter() - t0
        plan.settle -= seconds
        left = int(plan.settle / max(seconds / part_size, 1e-12))
        part_size = max(probe, min(2 * part_size, left // batch_size * batch_size))
    return done


def _run(weights, biases, sizes, act_codes, cost_code, data, order, batch_size,
         eta, decay, xmax, threads, per_batch, done_before, n, book=False):
    """One engine call over the mini-batches of ``order``; errors count the
    mini-batches of the whole epoch (done_before of them already applied)."""
    check_every = _batches_between_signal_checks(per_batch)
    try:
        if book:
            # Inside engine_threads BLAS is held to one thread (see there).
            status, done = _engine.train_epoch_book(
                weights, biases, sizes, cost_code, data, order, batch_size, eta, decay,
                check_every, threads, one_blas_thread=bool(_calls_inside()))
        else:
            status, done = _engine.train_epoch(
                weights, biases, sizes, act_codes, cost_code, data, order,
                batch_size, eta, decay, check_every, xmax, threads)
    except KeyboardInterrupt as exc:
        note_interrupted(exc)
        raise
    if status == _engine.DIVERGED:
        raise diverged(done_before + done + 1, -(-n // batch_size),
                       "1e36" if weights[0].dtype == np.float32 else "1e300")
    return done


def note_interrupted(exc):
    """Tell the user of a KeyboardInterrupt what state training left."""
    _note(exc, "fastbp: training was interrupted between two mini-batches; "
               "the network holds the weights after the last complete one.")


def note_not_applied(exc, batch, n_batches):
    """Tell the user of an error raised while a mini-batch was computed (by
    Python code the network calls) what state training left."""
    _note(exc, f"fastbp: raised while computing mini-batch {batch} of {n_batches} of "
               f"this epoch, which was not applied; the network holds the weights "
               f"after the mini-batch before it.")


def diverged(batch, n_batches, limit=None):
    """The FloatingPointError for a refused mini-batch (1-based number)."""
    what = f"NaN, infinite or larger than {limit}" if limit else "NaN or infinite"
    return FloatingPointError(
        f"training diverged in mini-batch {batch} of {n_batches} of this epoch: it would "
        f"have made a weight, bias, activation or error {what}. That mini-batch was not "
        f"applied; the network holds the weights after the mini-batch before it. A "
        f"smaller learning rate eta usually helps.")


def _note(exc, text):
    if hasattr(exc, "add_note") and text not in getattr(exc, "__notes__", ()):
        exc.add_note(text)              # Python 3.11+; once


def feedforward(weights, biases, sizes, act_codes, X):
    """The output activations for the rows of X, an (n, n_L) array.

    Large inputs are fed forward on the engine's threads (see
    engine_threads); the result does not depend on their number."""
    flops = 2 * X.shape[0] * sum(_layer_weights(sizes))
    if flops < _MIN_FLOPS_FEEDFORWARD_THREADS:
        return _engine.feedforward(weights, biases, sizes, act_codes, X)
    with engine_threads(training=False) as n_threads:
        return _engine.feedforward(weights, biases, sizes, act_codes, X, n_threads)


def backprop(weights, biases, sizes, act_codes, cost_code, X, Y):
    """(nabla_b, nabla_w) of the mean cost over the rows of X; nabla_b[l] is 1-d."""
    return _engine.backprop(weights, biases, sizes, act_codes, cost_code, X, Y)
