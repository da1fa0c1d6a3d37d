"""Chapter 2's comparison as a tool: backpropagation against finite differences.

For every weight w_j (or a random sample of them) the central difference

    (C(w + eps e_j) - C(w - eps e_j)) / 2 eps

of the mean cost C over the given samples costs two forward passes, while
one backward pass gives all of dC/dw.  ``gradcheck`` computes both and
reports, for each layer, the relative error of its weight gradient and of
its bias gradient, taken over the entries checked:

    max_j |backprop_j - difference_j|  /  max_j max(|backprop_j|, |difference_j|)

A norm-wise measure: an entry far smaller than the layer's largest is
judged against the layer's scale, not its own, because a central difference
carries a rounding error of about 1e-16 |C| / eps (1e-10 for eps = 1e-6)
whatever the size of the gradient it estimates; measured entry by entry,
tiny gradients would look wrong when they are not.  Correct float64
backpropagation typically gives 1e-7 or less; a wrong one, 1e-2 or more.
In float32 the step should be larger (eps ~ 1e-2) and ~1e-3 is the best to
expect.

It checks fastbp.Network (``backprop(X, Y)`` and ``cost_value(X, Y)``), and
networks of the book's shape (fastbp.network, fastbp.network2, or the
book's own modules): per-sample ``backprop(x, y)`` averaged over the samples,
against ``total_cost`` (network2) or the quadratic cost (network.py).
"""
from dataclasses import dataclass, field
import warnings

import numpy as np

from . import _checks


@dataclass
class LayerCheck:
    """The worst relative errors of one layer (``layer`` indexes ``weights``),
    how many entries were checked, and ``scale``, the largest magnitude
    either side gave for them (0: every one was exactly 0 on both sides)."""
    layer: int
    weights: float
    biases: float
    n_weights: int
    n_biases: int
    scale: float = 0.0

    @property
    def max_error(self):
        return max(self.weights, self.biases)


@dataclass
class GradCheckResult:
    """Per-layer results of ``gradcheck``; ``max_error`` is the worst of all."""
    layers: list = field(default_factory=list)
    eps: float = 1e-6

    @property
    def max_error(self):
        return max((c.max_error for c in self.layers), default=0.0)

    @property
    def compared(self):
        """Whether any checked entry was nonzero: where backprop and the
        differences are both exactly 0 everywhere (dead units, say), they
        agree and that tells nothing."""
        return any(c.scale > 0 for c in self.layers)

    def __str__(self):
        lines = [f"gradient check (eps={self.eps:g}): "
                 f"worst relative error {self.max_error:.3e}"
                 + ("" if self.compared else " (every gradient checked was exactly 0)"),
                 "layer   weights (checked)       biases (checked)"]
        for c in self.layers:
            lines.append(f"{c.layer:5d}   {c.weights:.3e} ({c.n_weights:6d})   "
                         f"{c.biases:.3e} ({c.n_biases:6d})")
        return "\n".join(lines)


def gradcheck(net, X, Y, eps=1e-6, max_checks_per_layer=None, seed=0):
    """Compare ``net``'s backpropagation with central finite differences.

    Parameters
    ----------
    net : fastbp.Network, or a network of the book's shape
    X : array (n, n_0), the samples as rows
    Y : array (n, n_L) of targets, or (n,) integer class labels
    eps : float, the step of the finite differences
    max_checks_per_layer : int or None
        Check at most this many weights and this many biases of each layer,
        chosen at random (None: all of them; each costs two forward passes).
    seed : seeds the choice of the parameters checked.

    Returns
    -------
    GradCheckResult: ``.layers`` (a LayerCheck per layer, with the relative
    error of its weights' gradient and of its biases'), ``.max_error``
    (inf where either side gave a NaN or an infinity) and ``.compared``
    (False when every entry checked was exactly 0 on both sides).

    The network's parameters are perturbed in place and restored exactly.
    """
    eps = _checks.check_float("eps", eps, minimum=0.0, strict=True)
    if max_checks_per_layer is not None:
        max_checks_per_layer = _checks.check_int("max_checks_per_layer",
                                                 max_checks_per_layer, minimum=1)
    rng = _checks.random_generator("seed", seed)
    if not all(hasattr(net, a) for a in ("sizes", "weights", "biases", "backprop")):
        raise TypeError(f"net must be a fastbp.Network or a network of the book's shape "
                        f"(with sizes, weights, biases and backprop), not "
                        f"{type(net).__name__}")
    gradients, cost = _adapter(net, X, Y)
    nabla_b, nabla_w = gradients()
    if np.result_type(*net.weights) == np.float32:
        warnings.warn("gradcheck on a float32 network: finite differences are only "
                      "accurate to about 1e-3 there; check a float64 copy for a "
                      "tight comparison", RuntimeWarning, stacklevel=2)
    result = GradCheckResult(eps=eps)
    for l in range(len(net.weights)):
        w_err, n_w, w_scale = _check(net.weights[l], np.asarray(nabla_w[l]), cost, eps,
                                     max_checks_per_layer, rng)
        b_err, n_b, b_scale = _check(net.biases[l], np.asarray(nabla_b[l]), cost, eps,
                                     max_checks_per_layer, rng)
        result.layers.append(LayerCheck(l, w_err, b_err, n_w, n_b, max(w_scale, b_scale)))
    return result


def _check(param, grad, cost, eps, max_checks, rng):
    """The norm-wise relative error over (a sample of) the entries of
    ``param``, how many were checked, and the largest magnitude compared."""
    flat_grad = grad.reshape(-1)
    if flat_grad.size != param.size:
        raise ValueError(f"backprop returned a gradient of {flat_grad.size} entries "
                         f"for a parameter of shape {param.shape}")
    idx = np.arange(param.size)
    if max_checks is not None and max_checks < param.size:
        idx = np.sort(rng.choice(param.size, size=max_checks, replace=False))
    worst_difference, scale = 0.0, 0.0
    for checked, k in enumerate(idx, 1):
        pos = np.unravel_index(k, param.shape)
        original = param[pos]
        try:
            param[pos] = original + eps
            up = param[pos]
            c_plus = cost()
            param[pos] = original - eps
            down = param[pos]
            c_minus = cost()
        finally:
            param[pos] = original
        # divide by the step actually taken, after rounding
        if up == down:
            raise ValueError(f"eps={eps:g} is too small for {param.dtype} parameters "
                             f"of this size: the step rounds away (at {original!r})")
        difference = (c_plus - c_minus) / float(up - down)
        analytic = float(flat_grad[k])
        if not (np.isfinite(analytic) and np.isfinite(difference)):
            return np.inf, checked, np.inf      # (max() would drop a NaN)
        worst_difference = max(worst_difference, abs(analytic - difference))
        scale = max(scale, abs(analytic), abs(difference))
    return (worst_difference / scale if scale > 0 else 0.0), len(idx), scale


def _adapter(net, X, Y):
    """(gradients(), cost()) for ``net``: the batch-mean gradients as
    (nabla_b, nabla_w), and the batch-mean cost, over the rows of X."""
    if hasattr(net, "cost_value"):                     # fastbp.Network
        return (lambda: net.backprop(X, Y)), (lambda: float(net.cost_value(X, Y)))
    X = _checks.check_matrix("X", X, net.sizes[0], np.float64)      # (refuses no samples)
    Y, _ = _checks.check_targets("Y", Y, len(X), net.sizes[-1], np.float64)
    pairs = [(x.reshape(-1, 1), y.reshape(-1, 1)) for x, y in zip(X, Y)]
    m = len(pairs)

    def gradients():
        sum_b = [np.zeros(np.shape(b)) for b in net.biases]
        sum_w = [np.zeros(np.shape(w)) for w in net.weights]
        for x, y in pairs:
            gb, gw = net.backprop(x, y)
            for l in range(len(sum_w)):
                sum_b[l] += np.reshape(gb[l], sum_b[l].shape)
                sum_w[l] += gw[l]
        return [s / m for s in sum_b], [s / m for s in sum_w]

    if hasattr(net, "total_cost"):                     # network2's shape
        def cost():
            return float(net.total_cost(pairs, 0.0))
    else:                                              # network.py: quadratic
        def cost():
            A = np.asarray(net.feedforward(X.T)).T
            return 0.5 * float(np.sum((A - Y) ** 2)) / m
    return gradients, cost
