"""Activation functions by name, and their codes in the C kernels.

Each built-in activation f has its derivative written in terms of a = f(z)
in csrc/fastbp_kernels_impl.h, so that z need not be kept:
sigmoid' = a (1 - a), tanh' = 1 - a^2, relu' = [a > 0], linear' = 1.
"""
import numpy as np

# The codes of enum fbp_activation in csrc/fastbp_kernels.h.
CODES = {"sigmoid": 0, "linear": 1, "tanh": 2, "relu": 3}
NAMES = {code: name for name, code in CODES.items()}


def check_activations(activations, n_layers):
    """The per-layer activation names, one for each of the n_layers non-input layers."""
    if isinstance(activations, str):
        activations = [activations] * n_layers
    try:
        activations = list(activations)
    except TypeError:
        raise TypeError("activations must be a name or a list of names, "
                        f"one per layer, not {activations!r}") from None
    if len(activations) != n_layers:
        raise ValueError(f"activations needs one name for each of the {n_layers} "
                         f"layers after the input, got {len(activations)}")
    for i, name in enumerate(activations):
        if name not in CODES:
            raise ValueError(f"activations[{i}] = {name!r} is not one of {sorted(CODES)}")
    return activations


def codes(activations):
    """The C codes for the layers, with a placeholder for the input layer."""
    return [CODES["linear"]] + [CODES[name] for name in activations]


# NumPy versions, for the Python-side helpers and the tests.
def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    s = sigmoid(z)
    return s * (1 - s)
