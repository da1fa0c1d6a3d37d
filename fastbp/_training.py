"""The one road from Python into the engine.

Both the native API (fastbp.Network) and the book's layers (fastbp.network,
fastbp.network2) train through these functions.  They take checked,
C-contiguous arrays (see fastbp._checks), hold the network's lock, limit
BLAS's threads, run the compiled epoch, and turn the engine's statuses into
exceptions.
"""
import contextlib
import threading

import numpy as np
from threadpoolctl import threadpool_limits

from . import _engine

# Take the GIL to look for Ctrl-C about every this many floating-point
# operations of training (a few milliseconds of work).
_FLOPS_BETWEEN_SIGNAL_CHECKS = 5e7


class NetworkBusyError(RuntimeError):
    """Raised when a network is asked to train while it is training in another thread."""


@contextlib.contextmanager
def exclusive(lock):
    """Hold a network's lock for a training call, or refuse at once."""
    if not lock.acquire(blocking=False):
        raise NetworkBusyError(
            "this network is already being trained or evaluated in another thread; "
            "train a copy, or wait for that call to return")
    try:
        yield
    finally:
        lock.release()


def new_lock():
    return threading.Lock()


@contextlib.contextmanager
def blas_threads(n_threads):
    """Limit BLAS to n_threads for the duration (None: leave it as it is)."""
    if n_threads is None:
        yield
    else:
        with threadpool_limits(limits=int(n_threads), user_api="blas"):
            yield


def flops_per_sample(sizes):
    """Floating-point operations to train on one sample: 2 per weight for the
    feedforward and for BP4, and 2 per weight for BP2 above the first layer."""
    w = [a * b for a, b in zip(sizes[1:], sizes[:-1])]
    return 6 * sum(w) - 2 * w[0]


def train_epoch(weights, biases, sizes, act_codes, cost_code, X, Y, order,
                batch_size, eta, decay=1.0):
    """One epoch of SGD, in place.  Raises FloatingPointError on divergence,
    with the network left as after the last good mini-batch."""
    order = np.ascontiguousarray(order, dtype=np.intp)
    per_batch = flops_per_sample(sizes) * min(batch_size, len(order))
    check_every = max(1, int(_FLOPS_BETWEEN_SIGNAL_CHECKS // per_batch))
    try:
        status, done = _engine.train_epoch(
            weights, biases, sizes, act_codes, cost_code, X, Y, order,
            batch_size, eta, decay, check_every)
    except KeyboardInterrupt as exc:
        exc.add_note("fastbp: training was interrupted between two mini-batches; "
                     "the network holds the weights after the last complete one.")
        raise
    if status == _engine.DIVERGED:
        n_batches = -(-len(order) // batch_size)
        raise FloatingPointError(
            f"training diverged in mini-batch {done + 1} of {n_batches} of this epoch: "
            f"it would have made a weight, bias, activation or error NaN, infinite or "
            f"larger than {'1e36' if X.dtype == np.float32 else '1e300'}. That "
            f"mini-batch was not applied; the network holds the weights after the "
            f"mini-batch before it. A smaller learning rate eta usually helps.")
    return done


def feedforward(weights, biases, sizes, act_codes, X):
    """The output activations for the rows of X, an (n, n_L) array."""
    return _engine.feedforward(weights, biases, sizes, act_codes, X)


def backprop(weights, biases, sizes, act_codes, cost_code, X, Y):
    """(nabla_b, nabla_w) of the mean cost over the rows of X; nabla_b[l] is 1-d."""
    return _engine.backprop(weights, biases, sizes, act_codes, cost_code, X, Y)
