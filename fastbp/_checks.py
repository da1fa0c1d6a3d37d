"""Argument checking for every public entry point.

Everything a C kernel assumes is made true here, before any training code
runs: shapes, dtypes, finiteness, ranges, and sizes that fit BLAS's 32-bit
integers.  (The finiteness scan of a large array is the engine's read-only
max |x|.)  Errors name the argument that is wrong.
"""
import numbers

import numpy as np

from . import _engine, arrays

# BLAS takes dimensions as 32-bit ints.
BLAS_INT_MAX = 2**31 - 1
# A network of more parameters than this is refused as absurd.
MAX_PARAMETERS = 2**31

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_dtype(dtype):
    """The float dtype asked for: float32 or float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, not {dtype!r}") from None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, not {dt}")
    return dt


def check_int(name, value, minimum=None, maximum=None):
    """An integer argument (bool and fractional values refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, not {type(value).__name__} {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {value}")
    return value


def check_float(name, value, minimum=None, strict=False):
    """A finite real argument, >= minimum (> minimum when strict)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, not {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None:
        if strict and not value > minimum:
            raise ValueError(f"{name} must be greater than {minimum}, got {value}")
        if not strict and not value >= minimum:
            raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def random_generator(name, seed):
    """numpy.random.default_rng(seed), with an error naming the argument: seed
    is None, a non-negative integer, a SeedSequence, a BitGenerator or a
    Generator."""
    if isinstance(seed, (bool, float)):
        raise TypeError(f"{name} must be None, a non-negative integer or a "
                        f"numpy.random.Generator, not {type(seed).__name__} {seed!r}")
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError):
        raise (ValueError if isinstance(seed, numbers.Integral) else TypeError)(
            f"{name} must be None, a non-negative integer or a numpy.random.Generator, "
            f"got {seed!r}") from None


def check_sizes(sizes):
    """The layer sizes [n_0, n_1, ..., n_L] as a list of ints."""
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__"):
        raise TypeError(f"sizes must be a sequence of layer sizes, not {sizes!r}")
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least two layers (input and output), got {sizes}")
    out = [check_int(f"sizes[{i}]", s, minimum=1, maximum=BLAS_INT_MAX)
           for i, s in enumerate(sizes)]
    n_params = sum(a * b + a for a, b in zip(out[1:], out[:-1]))
    if n_params > MAX_PARAMETERS:
        raise ValueError(f"sizes {out} give {n_params} parameters, more than the "
                         f"{MAX_PARAMETERS} fastbp accepts")
    return out


def as_float_array(name, value, dtype):
    """value as a NumPy array of a float dtype, refusing what is not numeric
    (and masked arrays with masked entries, whose mask np.asarray would drop)."""
    if isinstance(value, np.ma.MaskedArray):
        if np.ma.is_masked(value):
            raise TypeError(f"{name} is a masked array with masked entries, which fastbp "
                            f"would read as they lie: pass {name}.filled(value), or "
                            f"leave out the masked samples")
        value = value.data
    try:
        arr = np.asarray(value)
    except Exception as exc:       # ragged nested lists, and the like
        raise ValueError(f"{name} could not be read as an array: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, not {arr.dtype} values")
    return arr


def max_abs(arr):
    """max |arr| of a C-contiguous float32 or float64 array (NaN if it holds
    a NaN): one compiled pass over the values."""
    return float(_engine._max_abs(arr.reshape(-1)))


def check_finite(name, arr):
    """Raise ValueError if arr holds NaN or infinity.  Returns max |arr| when
    the check computed it on the way (contiguous float32 and float64
    arrays), else None."""
    if arr.size == 0 or arr.dtype.kind in "biu":
        return None
    largest = None
    if arr.dtype in (np.float32, np.float64) and arr.flags.c_contiguous \
            and arr.flags.aligned:
        # one compiled pass, without np.isfinite's temporary of arr's size
        largest = max_abs(arr)
        finite = np.isfinite(largest)
    else:
        finite = np.isfinite(arr).all()
    if not finite:
        raise ValueError(f"{name} contains NaN or infinity")
    return largest


def check_matrix(name, value, n_cols, dtype, n_rows=None):
    """A 2-d array of n_cols columns, finite, as a C-contiguous array of dtype.

    Non-contiguous or Fortran-ordered input is copied once."""
    return _check_matrix(name, value, n_cols, dtype, n_rows)[0]


def check_matrix_bound(name, value, n_cols, dtype, n_rows=None):
    """check_matrix, and max |x| over the checked matrix: one pass over the
    data for both where the check can give it."""
    arr, largest = _check_matrix(name, value, n_cols, dtype, n_rows)
    if largest is None:
        largest = max_abs(arr)
    return arr, largest


def _check_matrix(name, value, n_cols, dtype, n_rows):
    """check_matrix's array, and max |x| if the finiteness check computed it
    on that very array (else None)."""
    arr = as_float_array(name, value, dtype)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-d (samples as rows), got shape {arr.shape}")
    if arr.shape[1] != n_cols:
        raise ValueError(f"{name} must have {n_cols} columns, got shape {arr.shape}")
    if n_rows is not None and arr.shape[0] != n_rows:
        raise ValueError(f"{name} must have {n_rows} rows, got {arr.shape[0]}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    largest = check_finite(name, arr)
    # C order, and aligned: C and BLAS may assume an array's elements are.
    # A copy, where one is needed, starts on a cache line (see arrays.py).
    if arr.dtype == dtype and arr.flags.c_contiguous and arr.flags.aligned:
        return arr, largest
    with np.errstate(over="ignore"):
        out = arrays.aligned(arr, dtype)
    if out.dtype.itemsize < arr.dtype.itemsize and out.dtype.kind == "f":
        # narrowed (float64 to float32, say): values beyond the new range
        # became infinite
        try:
            largest = check_finite(name, out)
        except ValueError:
            raise ValueError(f"{name} holds values beyond the range of {out.dtype} (at most "
                             f"{np.finfo(out.dtype).max:.4g}), the network's dtype") from None
    else:
        largest = None
    return out, largest


def check_targets(name, value, n_samples, n_out, dtype):
    """Targets Y as an (n, n_out) array, and the integer labels if given.

    Y is either an (n, n_out) array of targets or a 1-d array of integer class
    labels in [0, n_out), which are one-hot encoded -- or, for a single
    output neuron, labels 0 and 1, which are the targets themselves (a binary
    classifier).  Returns (Y, labels), labels None for targets given as an
    array."""
    arr = as_float_array(name, value, dtype)
    if arr.ndim == 1 and arr.dtype.kind in "iu":
        if arr.shape[0] != n_samples:
            raise ValueError(f"{name} has {arr.shape[0]} labels for {n_samples} samples")
        # the range is checked before the cast, which would wrap uint64
        if arr.size and (arr.min() < 0 or arr.max() >= max(n_out, 2)):
            rule = ("with one output neuron the class labels must be 0 or 1" if n_out == 1
                    else f"class labels must be in [0, {n_out})")
            raise ValueError(f"{name}: {rule}, got values from {arr.min()} to {arr.max()}")
        labels = arr.astype(np.intp)
        if n_out == 1:
            return labels.astype(dtype).reshape(-1, 1), labels
        return one_hot(name, labels, n_out, dtype), labels
    if arr.ndim == 1 and n_out == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be integer class labels of shape (n,) or "
                         f"targets of shape (n, {n_out}), got shape {arr.shape} "
                         f"of {arr.dtype}")
    return check_matrix(name, arr, n_out, dtype, n_rows=n_samples), None


def one_hot(name, labels, n_out, dtype):
    """Integer class labels (1-d) as the rows of an (n, n_out) one-hot matrix."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= n_out):
        raise ValueError(f"{name}: class labels must be in [0, {n_out}), "
                         f"got values from {labels.min()} to {labels.max()}")
    Y = np.zeros((len(labels), n_out), dtype=dtype)
    Y[np.arange(len(labels)), labels] = 1
    return Y


def check_parameters(weights, biases, sizes, dtype):
    """The weights and biases as C-contiguous arrays of dtype in the book's shapes.

    Arrays that already are so are returned as they are (the engine then
    trains them in place); others are converted.  Returns the two lists."""
    n_layers = len(sizes) - 1
    for name, seq in (("weights", weights), ("biases", biases)):
        if not isinstance(seq, (list, tuple)) or len(seq) != n_layers:
            raise ValueError(f"{name} must be a list of {n_layers} arrays")
    new_w, new_b = [], []
    for l in range(n_layers):
        shape_w = (sizes[l + 1], sizes[l])
        w = as_float_array(f"weights[{l}]", weights[l], dtype)
        if w.shape != shape_w:
            raise ValueError(f"weights[{l}] must have shape {shape_w}, got {w.shape}")
        b = as_float_array(f"biases[{l}]", biases[l], dtype)
        if b.shape not in ((sizes[l + 1], 1), (sizes[l + 1],)):
            raise ValueError(f"biases[{l}] must have shape {(sizes[l + 1], 1)}, got {b.shape}")
        check_finite(f"weights[{l}]", w)
        check_finite(f"biases[{l}]", b)
        new_w.append(_contiguous(w, dtype))
        new_b.append(_contiguous(b, dtype).reshape(sizes[l + 1], 1))
    return new_w, new_b


def _contiguous(arr, dtype):
    flags = arr.flags
    if arr.dtype == dtype and flags.c_contiguous and flags.aligned and flags.writeable:
        return arr
    return np.array(arr, dtype=dtype, order="C")


def bind_parameters(net, dtype):
    """A network's weights and biases checked and as the engine needs them,
    in new lists (so that what the engine reads is what was checked, whatever
    is done to the network's lists meanwhile); the lists on ``net`` are
    rebound if an entry had to be converted (the engine then trains the
    converted arrays in place)."""
    weights, biases = net.weights, net.biases       # read once: the lists checked
    w, b = check_parameters(weights, biases, net.sizes, dtype)
    # Only where an entry was converted, and only if the lists are still the
    # ones checked: a training call in another thread may have bound new
    # arrays meanwhile, which a reader must not undo.
    if (not isinstance(weights, list) or any(x is not y for x, y in zip(w, weights))) \
            and net.weights is weights:
        net.weights = list(w)
    if (not isinstance(biases, list) or any(x is not y for x, y in zip(b, biases))) \
            and net.biases is biases:
        net.biases = list(b)
    return w, b


def parameter_names(weights, biases):
    """(name, array) for each parameter, named as on the network."""
    return ([(f"weights[{l}]", w) for l, w in enumerate(weights)]
            + [(f"biases[{l}]", b) for l, b in enumerate(biases)])


def check_separate(weights, biases):
    """Refuse parameters that share memory: training updates each array in
    place, so two layers (or a layer's weights and biases) in one buffer
    would each take the other's steps."""
    named = parameter_names(weights, biases)
    pair = _engine.overlapping_pair([a for _, a in named])
    if pair is not None:
        name_a, name_b = (named[k][0] for k in pair)
        raise ValueError(f"{name_a} and {name_b} share memory, and training "
                         "updates each in place: give each its own array "
                         "(e.g. with .copy())")


def shares_with_parameters(arr, weights, biases):
    """Whether arr may share memory with one of the parameters."""
    return any(np.may_share_memory(arr, p) for p in list(weights) + list(biases))


def apart_from(arr, weights, biases):
    """arr, or a copy of it where it shares memory with a parameter, so that
    training, which updates the parameters in place, reads it unchanged."""
    if shares_with_parameters(arr, weights, biases):
        return np.array(arr, order="C")
    return arr
