"""The slow path: backpropagation in NumPy, for activations defined in Python.

Same functions, arguments and results as the engine's road in
fastbp/_training.py (train_epoch, feedforward, backprop), so a network can
call either.  A layer's code is a built-in activation code or a
PythonActivation (fastbp.activations); the cost is a built-in cost code, or
an object with ``delta(Z, A, Y)`` giving BP1's error for samples as rows.

The mini-batch form, one sample per row:

    Z^l = A^{l-1} (W^l)^T + 1 (b^l)^T,   A^l = f_l(Z^l)       feedforward
    D^L = grad_A C (.) f_L'(Z^L)                                 BP1
    D^l = (D^{l+1} W^{l+1}) (.) f_l'(Z^l)                        BP2
    dC/db^l = column sums of D^l                                 BP3
    dC/dW^l = (D^l)^T A^{l-1}                                    BP4

Unlike the engine, z is kept, because a Python f' is a function of z.  As
in the engine, a mini-batch is applied whole or not at all.
"""
import numpy as np

from . import _engine, _training, activations as _activations, costs as _costs

_SIGMOID = _activations.CODES["sigmoid"]
_QUADRATIC = _costs.CODES["quadratic"]
_CROSS_ENTROPY = _costs.CODES["cross-entropy"]


def _evaluate(fn, z, what, l):
    """fn(z) as an array of z's shape and dtype."""
    out = np.asarray(fn(z))
    if out.shape != z.shape:
        raise ValueError(f"the {what} of layer {l} returned shape {out.shape} "
                         f"for z of shape {z.shape}; it must work element-wise")
    return out.astype(z.dtype, copy=False)


def _forward(weights, biases, acts, X):
    """Lists zs (Z^1..Z^L) and activations (A^0..A^L) for the rows of X."""
    activations, zs = [X], []
    for l, (w, b) in enumerate(zip(weights, biases), start=1):
        z = activations[-1] @ w.T + b.reshape(1, -1)        # Z^l = A^{l-1} W^T + 1 b^T
        f, _ = _activations.functions(acts[l])
        zs.append(z)
        activations.append(_evaluate(f, z, "activation", l))
    return zs, activations


def _output_error(cost, act, z, a, Y):
    """BP1: D^L = grad_A C (.) f_L'(Z^L)."""
    if cost == _CROSS_ENTROPY and act == _SIGMOID:
        return a - Y                                        # sigma' cancels
    if isinstance(cost, (int, np.integer)):
        _, f_prime = _activations.functions(act)
        sp = _evaluate(f_prime, z, "derivative", "L")
        if cost == _QUADRATIC:
            return (a - Y) * sp
        return (a - Y) / (a * (1 - a)) * sp
    delta = np.asarray(cost.delta(z, a, Y))
    if delta.shape != a.shape:
        raise ValueError(f"the cost's delta returned shape {delta.shape}, "
                         f"expected {a.shape}")
    return delta.astype(a.dtype, copy=False)


def _deltas(weights, acts, cost, zs, activations, Y):
    """D^1..D^L by BP1 and BP2."""
    L = len(weights)
    deltas = [None] * L
    deltas[-1] = _output_error(cost, acts[L], zs[-1], activations[-1], Y)
    for l in range(L - 1, 0, -1):
        _, f_prime = _activations.functions(acts[l])
        sp = _evaluate(f_prime, zs[l - 1], "derivative", l)
        deltas[l - 1] = (deltas[l] @ weights[l]) * sp       # BP2
    return deltas


def feedforward(weights, biases, sizes, acts, X):
    """The output activations A^L for the rows of X, an (n, n_L) array."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _forward(weights, biases, acts, X)[1][-1]


def backprop(weights, biases, sizes, acts, cost, X, Y):
    """(nabla_b, nabla_w) of the mean cost over the rows of X; nabla_b[l] is 1-d."""
    m = X.shape[0]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        zs, activations = _forward(weights, biases, acts, X)
        deltas = _deltas(weights, acts, cost, zs, activations, Y)
        nabla_b = [d.sum(axis=0) / m for d in deltas]                    # BP3
        nabla_w = [(d.T @ a) / m for d, a in zip(deltas, activations)]   # BP4
    return nabla_b, nabla_w


def _step(weights, biases, acts, cost, X, Y, eta, decay):
    """The new weights and biases after one mini-batch, or None if any z,
    delta or new parameter would be NaN or infinite."""
    m = X.shape[0]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        zs, activations = _forward(weights, biases, acts, X)
        deltas = _deltas(weights, acts, cost, zs, activations, Y)
        new_w = [decay * w - (eta / m) * (d.T @ a)                       # BP4 + step
                 for w, d, a in zip(weights, deltas, activations)]
        new_b = [b - (eta / m) * d.sum(axis=0).reshape(-1, 1)            # BP3 + step
                 for b, d in zip(biases, deltas)]
    for arr in (*zs, *deltas, *new_w, *new_b):
        if not np.isfinite(arr).all():
            return None
    return new_w, new_b


def train_epoch(weights, biases, sizes, acts, cost, X, Y, order, batch_size, eta,
                decay=1.0, xmax=None, **engine_options):
    """One epoch of SGD in place, like fastbp._training.train_epoch (whose
    engine-only options, xmax and any keyword, are accepted and ignored).

    Returns the number of mini-batches applied; raises FloatingPointError,
    with the network left as after the last good mini-batch, if a step would
    make anything non-finite."""
    order = np.asarray(order, dtype=np.intp)
    n = len(order)
    dtype = X.dtype
    eta, decay = dtype.type(eta), dtype.type(decay)
    done = 0
    try:
        for start in range(0, n, batch_size):
            rows = order[start:start + batch_size]
            try:
                step = _step(weights, biases, acts, cost, X[rows], Y[rows], eta, decay)
            except Exception as exc:      # raised by an activation or a cost in Python
                _training.note_not_applied(exc, done + 1, -(-n // batch_size))
                raise
            if step is None:
                raise _training.diverged(done + 1, -(-n // batch_size))
            new_w, new_b = step
            # all arrays or none: a Ctrl-C never leaves a step half-applied
            _engine.copy_arrays(list(weights) + list(biases), new_w + new_b)
            done += 1
    except KeyboardInterrupt as exc:
        _training.note_interrupted(exc)
        raise
    return done
