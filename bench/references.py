"""Pure-NumPy references for the benchmarks, written from the book's equations.

Every function here trains or differentiates a network of sigmoid neurons
with the quadratic cost C_x = 0.5 ||a^L - y||^2, in the book's shapes:
``weights[l]`` is (n_{l+1}, n_l) and ``biases[l]`` is (n_{l+1}, 1).  The
arrays may be float32 or float64; the arithmetic stays in their dtype.  The
training functions update ``weights`` and ``biases`` in place.

Two ways to run one epoch of mini-batch SGD over the rows ``order`` of
(X, Y), cut into consecutive mini-batches of ``batch_size`` (the last may be
shorter and is divided by its own length):

* :func:`per_sample_epoch` is the book's per-sample algorithm, in network.py's shape:
  one backpropagation per sample with column vectors, the gradients summed
  over the mini-batch, then one gradient-descent step.
* :func:`vectorized_epoch` is the mini-batch form of the equations: the
  samples of a mini-batch are the rows of A^0, and the feedforward, BP2 and
  BP4 are one matrix product per layer per mini-batch.

And, for Chapter 2's comparison of costs: :func:`backprop_gradient` (the full
gradient by one forward and one backward pass) and
:func:`finite_difference_gradient` (central differences, two forward passes
per weight and per bias).
"""
import numpy as np


def sigmoid(z):
    """sigma(z) = 1 / (1 + e^{-z}), in the dtype of z."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    """sigma'(z) = sigma(z) (1 - sigma(z))."""
    s = sigmoid(z)
    return s * (1.0 - s)


# -- the book's per-sample algorithm ----------------------------------------

def backprop_one(weights, biases, x, y):
    """The gradient of C_x for one sample: x (n_0, 1), y (n_L, 1) columns.

    Returns ``(nabla_b, nabla_w)`` shaped like ``biases`` and ``weights``,
    computed with the equations as the book writes them: z^l = W^l a^{l-1} + b^l,
    BP1 delta^L = (a^L - y) * sigma'(z^L), BP2 delta^l = ((W^{l+1})^T delta^{l+1})
    * sigma'(z^l), BP3 dC/db^l = delta^l, BP4 dC/dW^l = delta^l (a^{l-1})^T."""
    activation = x
    activations = [x]
    zs = []
    for w, b in zip(weights, biases):
        z = w @ activation + b
        zs.append(z)
        activation = sigmoid(z)
        activations.append(activation)
    nabla_b = [None] * len(biases)
    nabla_w = [None] * len(weights)
    delta = (activations[-1] - y) * sigmoid_prime(zs[-1])                 # BP1
    nabla_b[-1] = delta                                                   # BP3
    nabla_w[-1] = delta @ activations[-2].T                               # BP4
    for l in range(2, len(weights) + 1):
        delta = (weights[-l + 1].T @ delta) * sigmoid_prime(zs[-l])       # BP2
        nabla_b[-l] = delta
        nabla_w[-l] = delta @ activations[-l - 1].T
    return nabla_b, nabla_w


def per_sample_step(weights, biases, X, Y, rows, eta):
    """One gradient-descent step on the mini-batch ``rows`` of (X, Y),
    summing one backpropagation per sample."""
    sum_b = [np.zeros_like(b) for b in biases]
    sum_w = [np.zeros_like(w) for w in weights]
    n_in, n_out = X.shape[1], Y.shape[1]
    for i in rows:
        nabla_b, nabla_w = backprop_one(weights, biases, X[i].reshape(n_in, 1),
                                        Y[i].reshape(n_out, 1))
        for s, g in zip(sum_b, nabla_b):
            s += g
        for s, g in zip(sum_w, nabla_w):
            s += g
    step = eta / len(rows)
    for w, s in zip(weights, sum_w):
        w -= step * s
    for b, s in zip(biases, sum_b):
        b -= step * s


def per_sample_epoch(weights, biases, X, Y, order, batch_size, eta):
    """One epoch of SGD, one backpropagation per sample (network.py's shape)."""
    for k in range(0, len(order), batch_size):
        per_sample_step(weights, biases, X, Y, order[k:k + batch_size], eta)


# -- the fully vectorized mini-batch form ------------------------------------

def vectorized_step(weights, biases, A0, Y, eta):
    """One gradient-descent step on the mini-batch whose samples are the rows
    of A0 (m, n_0), with targets the rows of Y (m, n_L)."""
    activations = [A0]
    for w, b in zip(weights, biases):
        activations.append(sigmoid(activations[-1] @ w.T + b.T))          # Z = A W^T + 1 b^T
    step = eta / A0.shape[0]
    a = activations[-1]
    delta = (a - Y) * a * (1.0 - a)                                       # BP1, sigma' = a(1-a)
    for l in range(len(weights) - 1, -1, -1):
        # BP2 needs W^l before it is updated, so compute delta^{l-1} first.
        if l > 0:
            a = activations[l]
            delta_below = (delta @ weights[l]) * a * (1.0 - a)            # BP2
        # BP4 with eta/m folded into the small factor: one temporary of W's size.
        weights[l] -= (step * delta).T @ activations[l]                   # BP4
        biases[l] -= step * delta.sum(axis=0).reshape(-1, 1)              # BP3
        if l > 0:
            delta = delta_below


def vectorized_epoch(weights, biases, X, Y, order, batch_size, eta):
    """One epoch of SGD, one matrix product per layer per mini-batch."""
    for k in range(0, len(order), batch_size):
        rows = order[k:k + batch_size]
        vectorized_step(weights, biases, X[rows], Y[rows], eta)


# -- Chapter 2's comparison: backprop against finite differences -------------

def feedforward(weights, biases, X):
    """The output activations for the rows of X: an (n, n_L) array."""
    a = X
    for w, b in zip(weights, biases):
        a = sigmoid(a @ w.T + b.T)
    return a


def mean_cost(weights, biases, X, Y):
    """C = (1/n) sum_x 0.5 ||a^L(x) - y(x)||^2 over the rows of X and Y."""
    diff = feedforward(weights, biases, X) - Y
    return 0.5 * float(np.sum(diff * diff)) / X.shape[0]


def backprop_gradient(weights, biases, X, Y):
    """(nabla_b, nabla_w) of the mean cost over the rows of (X, Y), shaped like
    ``biases`` and ``weights``: one forward and one backward pass (BP1-BP4)."""
    activations = [X]
    for w, b in zip(weights, biases):
        activations.append(sigmoid(activations[-1] @ w.T + b.T))
    n = X.shape[0]
    a = activations[-1]
    delta = (a - Y) * a * (1.0 - a)                                       # BP1
    nabla_b = [None] * len(biases)
    nabla_w = [None] * len(weights)
    for l in range(len(weights) - 1, -1, -1):
        nabla_w[l] = (delta.T @ activations[l]) / n                       # BP4
        nabla_b[l] = delta.sum(axis=0).reshape(-1, 1) / n                 # BP3
        if l > 0:
            a = activations[l]
            delta = (delta @ weights[l]) * a * (1.0 - a)                  # BP2
    return nabla_b, nabla_w


def finite_difference_gradient(weights, biases, X, Y, epsilon=1e-6):
    """(nabla_b, nabla_w) of the mean cost by central differences:
    dC/dp ~ (C(p + eps) - C(p - eps)) / (2 eps) for every weight and bias p,
    two forward passes each.  The parameters are restored afterwards."""
    def partials(params):
        grads = []
        for p in params:
            g = np.empty_like(p)
            flat, gflat = p.reshape(-1), g.reshape(-1)
            for j in range(flat.size):
                saved = flat[j]
                flat[j] = saved + epsilon
                c_plus = mean_cost(weights, biases, X, Y)
                flat[j] = saved - epsilon
                c_minus = mean_cost(weights, biases, X, Y)
                flat[j] = saved
                gflat[j] = (c_plus - c_minus) / (2.0 * epsilon)
            grads.append(g)
        return grads
    return partials(biases), partials(weights)
