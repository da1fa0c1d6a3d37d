"""Saving and loading networks: network2's JSON, and a binary .npz.

JSON is the layout of the book's network2.py, so files go both ways between
it and fastbp::

    {"sizes": [784, 30, 10],
     "weights": [w.tolist() for each layer],     # (n_l, n_{l-1}) nested lists
     "biases": [b.tolist() for each layer],      # (n_l, 1) nested lists
     "cost": "CrossEntropyCost"}                 # or "QuadraticCost"

A native network whose layers are not all sigmoid, or whose dtype is
float32, adds the keys "activations" (one name per layer) and "dtype"; the
book's load ignores them (and would run such a network with sigmoids).

The .npz format (``np.savez``, read back with ``allow_pickle=False``) keeps
the dtype exactly: arrays ``weights_<l>``, ``biases_<l>``, ``sizes``, and the
strings ``activations``, ``cost``, ``dtype`` and ``format``.

Every file is written to a temporary file in the same directory and then
renamed over the target (os.replace), so a crash or an error while saving
leaves any previous file intact.  Loading checks everything and fails with a
NetworkFileError (a ValueError) naming the file.
"""
import contextlib
import json
import os
import tempfile

import numpy as np

from . import _checks, _training, activations as _activations, costs as _costs

# network2's cost class names for fastbp's cost names, and back.
COST_CLASS_NAMES = {"quadratic": "QuadraticCost", "cross-entropy": "CrossEntropyCost"}
COST_NAMES = {v: k for k, v in COST_CLASS_NAMES.items()}

NPZ_FORMAT = "fastbp.Network/1"
_ZIP_MAGIC = b"PK\x03\x04"


class NetworkFileError(ValueError):
    """A file that does not hold a network fastbp can load."""


def _file_name(path):
    """path (str, bytes or os.PathLike) as a str."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"the file name must be a str, bytes or os.PathLike, "
                        f"not {type(path).__name__}")
    return os.fsdecode(path)


# -- writing ------------------------------------------------------------------
def _new_file_mode(path):
    """The permission bits the saved file should get: those of the file it
    replaces, or what the umask gives a newly created file."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        pass
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path, write, binary=False):
    """Call write(f) on a temporary file beside ``path``, then rename it to
    ``path``.  On any error (or Ctrl-C) the temporary file is removed and an
    existing file at ``path`` is left as it was."""
    path = _file_name(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb" if binary else "w",
                       **({} if binary else {"encoding": "utf-8"})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _new_file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):        # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_json(path, sizes, weights, biases, cost_class_name, extra=None):
    """Write network2's JSON layout (plus the keys of ``extra``) atomically."""
    data = {"sizes": [int(s) for s in sizes],
            "weights": [np.asarray(w).tolist() for w in weights],
            "biases": [np.asarray(b).reshape(-1, 1).tolist() for b in biases],
            "cost": cost_class_name}
    data.update(extra or {})
    # allow_nan=False: a NaN is refused before the old file is touched
    atomic_write(path, lambda f: json.dump(data, f, allow_nan=False))


def save(net, path):
    """Save a native fastbp.Network to ``path``: the binary .npz format if
    the name ends in ".npz", else network2's JSON."""
    python = [a for a in net.activations if not isinstance(a, str)]
    if python:
        raise TypeError(f"cannot save a network with Python-defined activations "
                        f"({', '.join(a.name for a in python)}): only the built-in "
                        f"ones {sorted(_activations.CODES)} can be written to a file")
    weights, biases = _training.copied_parameters(net, net.dtype)
    if _file_name(path).lower().endswith(".npz"):
        _write_npz(path, net.sizes, weights, biases, net.activations, net.cost, net.dtype)
        return
    extra = {}
    if any(a != "sigmoid" for a in net.activations):
        extra["activations"] = list(net.activations)
    if net.dtype != np.float64:
        extra["dtype"] = net.dtype.name
    write_json(path, net.sizes, weights, biases, COST_CLASS_NAMES[net.cost], extra)


def _write_npz(path, sizes, weights, biases, activations, cost, dtype):
    arrays = {"format": np.array(NPZ_FORMAT),
              "sizes": np.asarray(sizes, dtype=np.int64),
              "activations": np.array(list(activations)),
              "cost": np.array(cost),
              "dtype": np.array(np.dtype(dtype).name)}
    for l, (w, b) in enumerate(zip(weights, biases)):
        arrays[f"weights_{l}"] = w
        arrays[f"biases_{l}"] = b
    atomic_write(path, lambda f: np.savez(f, **arrays), binary=True)


# -- reading ------------------------------------------------------------------
def read(path):
    """The network stored in ``path`` (either format), checked, as a dict:
    sizes (list), weights and biases (lists of float arrays in the book's
    shapes), cost (fastbp's name), activations (list of names), dtype."""
    path = _file_name(path)
    with open(path, "rb") as f:
        head = f.read(4)
    if head == _ZIP_MAGIC:
        return _read_npz(path)
    return _read_json(path)


def _fail(path, message):
    return NetworkFileError(f"{path}: {message}")


def _read_json(path):
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, f"not a network file: it is neither a fastbp .npz file nor "
                          f"valid JSON ({exc}); the file may be truncated or corrupt") from None
    except RecursionError:
        raise _fail(path, "not a network file: its JSON is nested too deeply "
                          "to read") from None
    if not isinstance(data, dict):
        raise _fail(path, "not a network file: the JSON holds a "
                          f"{type(data).__name__}, not an object with keys "
                          "sizes, weights, biases and cost")
    missing = [k for k in ("sizes", "weights", "biases", "cost") if k not in data]
    if missing:
        raise _fail(path, f"not a network file: the JSON lacks the keys {missing} "
                          "(network2's layout has sizes, weights, biases and cost)")
    cost = data["cost"]
    if not isinstance(cost, str) or cost not in COST_NAMES:
        raise _fail(path, f"unknown cost {cost!r}; fastbp knows {sorted(COST_NAMES)}")
    dtype = data.get("dtype", "float64")
    activations = data.get("activations", "sigmoid")
    return _checked(path, data["sizes"], data["weights"], data["biases"],
                    COST_NAMES[cost], activations, dtype)


def _read_npz(path):
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:       # BadZipFile, EOFError, zlib.error, ValueError...
        raise _fail(path, f"not a readable .npz file ({type(exc).__name__}: {exc}); "
                          "the file may be truncated or corrupt") from None
    strays = sorted(k for k, v in arrays.items() if not isinstance(v, np.ndarray))
    if strays:
        raise _fail(path, f"not a fastbp network file: the .npz members {strays} "
                          "are not NumPy arrays")
    fmt = arrays.get("format")
    if fmt is None or fmt.shape != () or str(fmt) != NPZ_FORMAT:
        raise _fail(path, f"not a fastbp network file: the .npz has no "
                          f"format = {NPZ_FORMAT!r} entry")
    try:
        sizes = arrays["sizes"].tolist()
        n_layers = len(sizes) - 1
        weights = [arrays[f"weights_{l}"] for l in range(n_layers)]
        biases = [arrays[f"biases_{l}"] for l in range(n_layers)]
        cost = str(arrays["cost"])
        activations = arrays["activations"].tolist()
        dtype = str(arrays["dtype"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise _fail(path, f"incomplete fastbp network file (missing {exc})") from None
    if cost not in _costs.CODES:
        raise _fail(path, f"unknown cost {cost!r}; fastbp knows {sorted(_costs.CODES)}")
    return _checked(path, sizes, weights, biases, cost, activations, dtype)


def _checked(path, sizes, weights, biases, cost, activations, dtype):
    """The parts of a network file, each checked; errors name the file."""
    try:
        sizes = _checks.check_sizes(sizes)
        dtype = _checks.check_dtype(dtype)
        n_layers = len(sizes) - 1
        if isinstance(activations, str):
            activations = [activations] * n_layers
        if (not isinstance(activations, list)
                or not all(isinstance(a, str) for a in activations)):
            raise ValueError(f"activations must be a list of names, got {activations!r}")
        activations = _activations.check_activations(activations, n_layers)
        _costs.check_output(cost, activations[-1])
        weights, biases = _checks.check_parameters(
            _as_list("weights", weights), _as_list("biases", biases), sizes, dtype)
    except (TypeError, ValueError) as exc:
        raise _fail(path, f"not a valid network file: {exc}") from None
    return {"sizes": sizes, "weights": weights, "biases": biases, "cost": cost,
            "activations": activations, "dtype": dtype}


def _as_list(name, value):
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{name} must be a list with one entry per layer")
    out = []
    for l, v in enumerate(value):
        try:
            arr = np.array(v, dtype=np.float64) if isinstance(v, list) else np.asarray(v)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"{name}[{l}] is not a rectangular array of numbers "
                             "within float64's range") from None
        out.append(arr)
    return out


def load(path):
    """The fastbp.Network saved in ``path`` (network2's JSON or fastbp's .npz).

    A JSON file written by the book's network2.py loads as a network of
    sigmoid layers, float64, with the cost it names."""
    from .native import Network           # native imports this module
    parts = read(path)
    net = Network(parts["sizes"], activations=parts["activations"], cost=parts["cost"],
                  dtype=parts["dtype"])
    net.weights = parts["weights"]
    net.biases = parts["biases"]
    return net
