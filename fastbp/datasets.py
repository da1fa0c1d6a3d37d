"""Data sets: the embedded UCI digits, MNIST-format IDX files, Nielsen's
mnist.pkl.gz, and the one function that may download anything.

Images come back as float arrays in [0, 1], one sample per row; labels as
int64 arrays.  Every error about a file names the file.

- :func:`load_digits` -- the UCI optical digits shipped inside fastbp (offline).
- :func:`read_idx`, :func:`load_idx_files`, :func:`load_idx_directory` --
  MNIST and Fashion-MNIST in the IDX format (gzip-compressed or not).
- :func:`load_fashion_mnist` -- Fashion-MNIST where Debian's
  ``dataset-fashion-mnist`` package puts it, or from the download cache.
- :func:`load_mnist_pkl` -- the ``mnist.pkl.gz`` of *Neural Networks and Deep
  Learning* (a Python 2 pickle of NumPy arrays).
- :func:`load` -- any of the above by name or path, as the command line uses it.
- :func:`download` -- the only code in fastbp that touches the network, and
  only when a user calls it: fixed URLs, a checksum for every file, a cache
  directory (``$FASTBP_DATA``, else ``~/.cache/fastbp``).
"""
import collections
import gzip
import hashlib
import io
import math
import os
import pickle
import tempfile
import urllib.error
import urllib.request
import zlib
from importlib import resources

import numpy as np

from . import _checks, arrays

# Where Debian's dataset-fashion-mnist package puts the four IDX files.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

# The data sets download() knows: where each file comes from, where it goes
# in the cache directory, and its digest ("algorithm:hex").  The IDX digests
# are the SHA-256 sums of the files as their publishers distribute them.
# Nielsen's repository publishes no SHA-256 for mnist.pkl.gz; its digest is
# the MD5 sum that copies of that file are known by.
_MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_FASHION_URL = ("https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/"
                "master/data/fashion/")
DOWNLOADS = {
    "mnist": ("mnist", (
        ("mnist/train-images-idx3-ubyte.gz", _MNIST_URL + "train-images-idx3-ubyte.gz",
         "sha256:440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        ("mnist/train-labels-idx1-ubyte.gz", _MNIST_URL + "train-labels-idx1-ubyte.gz",
         "sha256:3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        ("mnist/t10k-images-idx3-ubyte.gz", _MNIST_URL + "t10k-images-idx3-ubyte.gz",
         "sha256:8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        ("mnist/t10k-labels-idx1-ubyte.gz", _MNIST_URL + "t10k-labels-idx1-ubyte.gz",
         "sha256:f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    )),
    "fashion-mnist": ("fashion-mnist", (
        ("fashion-mnist/train-images-idx3-ubyte.gz", _FASHION_URL + "train-images-idx3-ubyte.gz",
         "sha256:3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
        ("fashion-mnist/train-labels-idx1-ubyte.gz", _FASHION_URL + "train-labels-idx1-ubyte.gz",
         "sha256:a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
        ("fashion-mnist/t10k-images-idx3-ubyte.gz", _FASHION_URL + "t10k-images-idx3-ubyte.gz",
         "sha256:346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
        ("fashion-mnist/t10k-labels-idx1-ubyte.gz", _FASHION_URL + "t10k-labels-idx1-ubyte.gz",
         "sha256:67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
    )),
    "mnist-pkl": ("mnist.pkl.gz", (
        ("mnist.pkl.gz",
         "https://github.com/mnielsen/neural-networks-and-deep-learning/raw/master/"
         "data/mnist.pkl.gz",
         "md5:98100ca27dc0e07ddd9f822cf9d244db"),
    )),
}

# Names load() accepts besides paths.
NAMES = ("digits", "fashion-mnist", "mnist")


# -- the embedded digits ------------------------------------------------------
def load_digits():
    """The UCI optical handwritten digits shipped with fastbp.

    Returns (X, y): X of shape (1797, 64), the 8x8 images scaled from 0..16
    to [0, 1] as float64; y of shape (1797,), int64 labels 0..9."""
    with resources.files("fastbp").joinpath("data/digits.csv.gz").open("rb") as f:
        table = np.loadtxt(gzip.open(f, "rt"), delimiter=",", dtype=np.int64)
    X = arrays.aligned(table[:, :64], np.float64)
    X /= 16.0
    return X, table[:, 64].copy()


def holdout_split(X, y, test_fraction=0.2, seed=0):
    """Split samples at random into a training and a test part.

    Returns ((X_train, y_train), (X_test, y_test)); the test part holds
    round(test_fraction * n) samples, chosen by a permutation drawn from
    ``numpy.random.default_rng(seed)``, so a seed always gives the same split."""
    X, y = np.asarray(X), np.asarray(y)
    for name, arr in (("X", X), ("y", y)):
        if arr.ndim == 0:
            raise ValueError(f"{name} must hold one sample per row, got a scalar")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} samples but y has {y.shape[0]}")
    test_fraction = _checks.check_float("test_fraction", test_fraction)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    n = X.shape[0]
    n_test = int(round(test_fraction * n))
    if not 0 < n_test < n:
        raise ValueError(f"a test fraction of {test_fraction} of {n} samples "
                         f"leaves no training or no test samples")
    order = _checks.random_generator("seed", seed).permutation(n)
    test, train = order[:n_test], order[n_test:]
    return (X[train], y[train]), (X[test], y[test])


# -- reading files --------------------------------------------------------------
def _read_bytes(path, what):
    """The content of a file, gunzipped if it is gzip data; errors name the file."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file ({what})") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"{path}: is a directory, not a file ({what})") from None
    except PermissionError:
        raise PermissionError(f"{path}: cannot read {what}: permission denied") from None
    except OSError as exc:
        raise OSError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError:
        raise ValueError(f"{path}: truncated gzip file ({what}): it ends before "
                         f"its compressed data does") from None
    except (OSError, zlib.error) as exc:
        raise ValueError(f"{path}: corrupt gzip data ({what}): {exc}") from None


# The most dimensions a NumPy array can have.
_IDX_MAX_DIMS = 64

# The IDX element types: the third byte of the magic number.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    """The array stored in one IDX file (gzip-compressed or not).

    The file starts with a magic number: two zero bytes, a type code (0x08
    for unsigned bytes, as in MNIST) and the number of dimensions, followed
    by each dimension as a big-endian 32-bit integer, then the values.
    Raises FileNotFoundError, PermissionError or ValueError naming the file
    when it is missing, unreadable, not IDX, truncated or too long.  Arrays
    of bytes are returned read-only, without a copy."""
    path = os.fspath(path)
    data = _read_bytes(path, "IDX file")
    if len(data) < 4:
        raise ValueError(f"{path}: not an IDX file: only {len(data)} bytes, "
                         f"too short for the magic number")
    magic = int.from_bytes(data[:4], "big")
    if data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES or data[3] == 0:
        raise ValueError(f"{path}: not an IDX file: bad magic number 0x{magic:08x} "
                         f"(IDX files start 0x00000801 for labels, 0x00000803 for images)")
    ndim = data[3]
    if ndim > _IDX_MAX_DIMS:
        raise ValueError(f"{path}: not a usable IDX file: {ndim} dimensions, more "
                         f"than the {_IDX_MAX_DIMS} an array can have")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX file: the header needs {header} bytes, "
                         f"the file holds {len(data)}")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[data[2]])
    count = math.prod(shape)            # exact: no wraparound
    available = (len(data) - header) // dtype.itemsize
    if len(data) - header < count * dtype.itemsize:
        raise ValueError(f"{path}: truncated IDX file: its header promises {count} values "
                         f"of shape {shape}, the file holds {available}")
    if len(data) - header > count * dtype.itemsize:
        raise ValueError(f"{path}: not a valid IDX file: its header promises {count} values "
                         f"of shape {shape}, but more data follows them")
    arr = np.frombuffer(data, dtype=dtype, offset=header, count=count).reshape(shape)
    if dtype.itemsize > 1:
        arr = arr.astype(dtype.newbyteorder("="))
    return arr


def _idx_pair(images_path, labels_path, dtype):
    """(X, y) from an IDX file of images and one of labels."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim < 2:
        raise ValueError(f"{images_path}: expected images (an IDX array of 2 or more "
                         f"dimensions), found an array of shape {images.shape}")
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"{labels_path}: expected labels (a 1-d IDX array of integers), "
                         f"found an array of shape {labels.shape} and type {labels.dtype}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{images_path} holds {images.shape[0]} images but "
                         f"{labels_path} holds {labels.shape[0]} labels")
    if images.size == 0:
        raise ValueError(f"{images_path}: holds no images (shape {images.shape})")
    if labels.min() < 0:
        raise ValueError(f"{labels_path}: the labels contain negative values")
    with np.errstate(over="ignore", invalid="ignore"):
        X = arrays.aligned(images.reshape(images.shape[0], -1), dtype)
    if images.dtype == np.uint8:
        X /= dtype(255)
    elif not np.isfinite(X).all():
        raise ValueError(f"{images_path}: the images contain NaN, infinity or values "
                         f"beyond the range of {np.dtype(dtype).name}")
    return X, labels.astype(np.int64)


def load_idx_files(train_images, train_labels, test_images, test_labels, dtype=np.float32):
    """MNIST or Fashion-MNIST from the four IDX files named explicitly.

    Returns ((X_train, y_train), (X_test, y_test)) with X of shape (n, 784)
    (the images flattened; bytes scaled to [0, 1]) and y int64; dtype is
    float32 or float64."""
    dtype = _checks.check_dtype(dtype).type
    train = _idx_pair(train_images, train_labels, dtype)
    test = _idx_pair(test_images, test_labels, dtype)
    if train[0].shape[1] != test[0].shape[1]:
        raise ValueError(f"{test_images}: the test images have {test[0].shape[1]} pixels, "
                         f"the training images in {train_images} {train[0].shape[1]}")
    return train, test


def _find_idx_file(directory, gz_name):
    """The path of one of the four IDX files in directory, compressed or not,
    with '-idx' or '.idx' in its name; None if absent."""
    stem = gz_name[:-3]
    for name in (gz_name, stem, stem.replace("-idx", ".idx"),
                 stem.replace("-idx", ".idx") + ".gz"):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


def load_idx_directory(directory, dtype=np.float32):
    """MNIST or Fashion-MNIST from a directory holding the four IDX files
    (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
    t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz; gunzipped copies too).

    Returns ((X_train, y_train), (X_test, y_test)) with X of shape
    (n, 784) in [0, 1] and y int64."""
    directory = os.fspath(directory)
    if not os.path.exists(directory):
        raise FileNotFoundError(f"{directory}: no such directory (of IDX files)")
    if not os.path.isdir(directory):
        raise NotADirectoryError(f"{directory}: not a directory (of IDX files)")
    paths = []
    for name in IDX_FILES.values():
        path = _find_idx_file(directory, name)
        if path is None:
            raise FileNotFoundError(
                f"{os.path.join(directory, name)}: no such IDX file; a directory of IDX "
                f"files holds {', '.join(IDX_FILES.values())} (or their gunzipped copies)")
        paths.append(path)
    return load_idx_files(*paths, dtype=dtype)


def _idx_directory_complete(directory):
    return all(_find_idx_file(directory, n) is not None for n in IDX_FILES.values())


def fashion_mnist_available(directory=FASHION_MNIST_DIR):
    """True if the four Fashion-MNIST IDX files are in directory (by default
    where Debian's dataset-fashion-mnist package installs them)."""
    return all(os.path.exists(os.path.join(directory, n)) for n in IDX_FILES.values())


def find_fashion_mnist():
    """The directory holding Fashion-MNIST: Debian's, else the download cache;
    None if neither has it."""
    for directory in (FASHION_MNIST_DIR, os.path.join(cache_dir(), "fashion-mnist")):
        if _idx_directory_complete(directory):
            return directory
    return None


def load_fashion_mnist(directory=None, dtype=np.float32):
    """Fashion-MNIST as ((X_train, y_train), (X_test, y_test)): 60,000 and
    10,000 images of shape (784,) in [0, 1], int64 labels.

    By default from where Debian's dataset-fashion-mnist puts it
    (/usr/share/datasets/fashion-mnist), else from the download cache."""
    if directory is None:
        directory = find_fashion_mnist()
        if directory is None:
            raise FileNotFoundError(
                f"Fashion-MNIST not found in {FASHION_MNIST_DIR} nor in "
                f"{os.path.join(cache_dir(), 'fashion-mnist')}; on Debian or Ubuntu: "
                f"apt-get install dataset-fashion-mnist, or else: "
                f"python -m fastbp download fashion-mnist")
    return load_idx_directory(directory, dtype=dtype)


# -- Nielsen's mnist.pkl.gz -----------------------------------------------------
def _numpy_global(module, name):
    import importlib
    for prefix in ("numpy._core.", "numpy.core."):
        try:
            return getattr(importlib.import_module(prefix + module), name)
        except (ImportError, AttributeError):
            continue
    raise pickle.UnpicklingError(f"this NumPy has no {module}.{name}")


# What a pickle of NumPy arrays may ask for (written by Python 2 or 3, NumPy 1
# or 2, any protocol); anything else is refused, so loading a pickle cannot
# run code.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): lambda: _numpy_global("multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): lambda: _numpy_global("multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"): lambda: _numpy_global("multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"): lambda: _numpy_global("multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"): lambda: _numpy_global("numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"): lambda: _numpy_global("numeric", "_frombuffer"),
    ("_codecs", "encode"): lambda: __import__("codecs").encode,
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        make = _ALLOWED_GLOBALS.get((module, name))
        if make is None:
            raise pickle.UnpicklingError(
                f"the pickle asks for {module}.{name}, which a file of NumPy arrays "
                f"never needs; it was not loaded")
        return make()


def _describe(obj):
    if isinstance(obj, np.ndarray):
        return f"an array of shape {obj.shape} and type {obj.dtype}"
    if isinstance(obj, (tuple, list)):
        return f"a {type(obj).__name__} of {len(obj)} items"
    return f"a {type(obj).__name__}"


# The largest class label a data file may hold (a network's output layer
# has one neuron per class).
_LABEL_MAX = 2**31 - 1


def _check_nielsen(obj, path):
    """The three (images, labels) pairs of a mnist.pkl.gz, checked and converted."""
    layout = ("((train_x, train_y), (valid_x, valid_y), (test_x, test_y)) "
              "as in Nielsen's mnist.pkl.gz")
    if not isinstance(obj, (tuple, list)) or len(obj) != 3:
        raise ValueError(f"{path}: expected {layout}, found {_describe(obj)}")
    out, width = [], None
    for part, name in zip(obj, ("training", "validation", "test")):
        if not isinstance(part, (tuple, list)) or len(part) != 2:
            raise ValueError(f"{path}: the {name} set should be a pair (images, labels), "
                             f"found {_describe(part)}; expected {layout}")
        x, y = part
        if not isinstance(x, np.ndarray) or x.ndim != 2 or x.dtype.kind not in "fiu":
            raise ValueError(f"{path}: the {name} images should be a 2-d array of numbers "
                             f"(one image per row), found {_describe(x)}")
        if not isinstance(y, np.ndarray) or y.ndim != 1 or y.dtype.kind not in "iu":
            raise ValueError(f"{path}: the {name} labels should be a 1-d array of integers, "
                             f"found {_describe(y)}")
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"{path}: {x.shape[0]} {name} images but {y.shape[0]} labels")
        if width is not None and x.shape[1] != width:
            raise ValueError(f"{path}: the {name} images have {x.shape[1]} pixels, "
                             f"the training images {width}")
        width = x.shape[1]
        if y.size and y.min() < 0:
            raise ValueError(f"{path}: the {name} labels contain negative values")
        if y.size and y.max() > _LABEL_MAX:
            raise ValueError(f"{path}: the {name} labels go up to {y.max()}; class labels "
                             f"above {_LABEL_MAX} cannot be classes of a network")
        uint8 = x.dtype == np.uint8
        with np.errstate(over="ignore", invalid="ignore"):
            x = arrays.aligned(x, np.float32)       # a copy where x was uint8
        if uint8:
            x /= np.float32(255)
        if not np.isfinite(x).all():
            raise ValueError(f"{path}: the {name} images contain NaN, infinity or "
                             "values beyond the range of float32")
        out.append((x, y.astype(np.int64)))
    return tuple(out)


def load_mnist_pkl(path):
    """Nielsen's mnist.pkl.gz (gzip-compressed or not).

    Returns (training, validation, test), each a pair (images float32 of
    shape (n, 784), labels int64 of shape (n,)).  The file is a Python 2
    pickle; it is read with ``encoding="latin1"`` and only NumPy arrays are
    allowed in it.  A missing, unreadable, truncated or foreign file raises
    an error naming the file."""
    path = os.fspath(path)
    data = _read_bytes(path, "pickle")
    try:
        obj = _ArrayUnpickler(io.BytesIO(data), encoding="latin1").load()
    except EOFError:
        raise ValueError(f"{path}: truncated pickle: the data ends too early") from None
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{path}: not a pickle of NumPy arrays: {exc}") from None
    except Exception as exc:      # a damaged pickle can fail in many ways
        raise ValueError(f"{path}: not a readable pickle: "
                         f"{type(exc).__name__}: {exc}") from None
    return _check_nielsen(obj, path)


# -- finding MNIST --------------------------------------------------------------
def cache_dir():
    """Where download() keeps files: $FASTBP_DATA if set, else
    $XDG_CACHE_HOME/fastbp, else ~/.cache/fastbp."""
    env = os.environ.get("FASTBP_DATA")
    if env:
        return os.path.expanduser(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = os.path.expanduser(xdg) if xdg else os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "fastbp")


def mnist_candidates():
    """The places, in order, where fastbp looks for MNIST: the book's
    ../data/mnist.pkl.gz, ./mnist.pkl.gz, then the cache directory's
    mnist.pkl.gz and mnist/ (IDX files)."""
    cache = cache_dir()
    return [os.path.join(os.pardir, "data", "mnist.pkl.gz"), "mnist.pkl.gz",
            os.path.join(cache, "mnist.pkl.gz"), os.path.join(cache, "mnist")]


def find_mnist():
    """The first of :func:`mnist_candidates` that exists, or None."""
    for path in mnist_candidates():
        if os.path.isfile(path) or (os.path.isdir(path) and _idx_directory_complete(path)):
            return path
    return None


# -- one loader for the command line -------------------------------------------
Dataset = collections.namedtuple("Dataset", "train test validation description")
Dataset.__doc__ = """A data set split for training: ``train``, ``test`` and
``validation`` are pairs (X, y) of images as rows and int64 labels
(``validation`` is None when the source has none); ``description`` says
where the data came from."""


def _is_pickle_path(path):
    return path.endswith((".pkl.gz", ".pkl", ".pickle", ".pickle.gz"))


def load(name_or_path, dtype=None):
    """A data set by name or path, as :class:`Dataset` (train, test, validation, description).

    - ``"digits"``: the embedded UCI digits, split 80/20 into training and
      test with a fixed seed (1438 and 359 samples).
    - ``"fashion-mnist"``: Debian's copy, else the download cache.
    - ``"mnist"``: the first place of :func:`mnist_candidates` holding it.
    - a path ending in ``.pkl.gz`` (or ``.pkl``): Nielsen's pickle, with its
      training, validation and test sets.
    - a directory of the four IDX files: training and test sets.

    dtype: the float type of the images (None: float64 for digits, float32
    for the others)."""
    name = os.fspath(name_or_path)
    validation = None
    if name == "digits":
        X, y = load_digits()
        train, test = holdout_split(X, y, test_fraction=0.2, seed=0)
        description = "UCI digits (embedded), 8x8 images, 80/20 split with seed 0"
    elif name == "fashion-mnist":
        directory = find_fashion_mnist()
        train, test = load_fashion_mnist(directory)
        description = f"Fashion-MNIST from {directory}"
    elif name == "mnist":
        path = find_mnist()
        if path is None:
            raise FileNotFoundError(
                "MNIST not found; looked for " + ", ".join(mnist_candidates()) +
                ". Give the path of your mnist.pkl.gz or IDX directory, or fetch it with: "
                "python -m fastbp download mnist")
        return load(path, dtype=dtype)._replace(description=f"MNIST from {path}")
    elif os.path.isdir(name):
        train, test = load_idx_directory(name)
        description = f"IDX files in {name}"
    elif os.path.isfile(name) and _is_pickle_path(name):
        train, validation, test = load_mnist_pkl(name)
        description = f"{name} (Nielsen's pickle format)"
    elif os.path.exists(name):
        raise ValueError(f"{name}: cannot tell how to read this file: give a mnist.pkl.gz "
                         f"(a name ending in .pkl.gz) or a directory of IDX files")
    elif _is_pickle_path(name):
        raise FileNotFoundError(f"{name}: no such file (pickle)")
    else:
        raise FileNotFoundError(f"{name}: no such file or directory, and not one of the "
                                f"data set names {', '.join(NAMES)}")
    if dtype is not None:
        dtype = _checks.check_dtype(dtype)
        cast = lambda pair: None if pair is None else (pair[0].astype(dtype, copy=False), pair[1])
        train, test, validation = cast(train), cast(test), cast(validation)
    return Dataset(train, test, validation, description)


# -- downloading ----------------------------------------------------------------
# The opener download() fetches with; tests replace it.
_urlopen = urllib.request.urlopen
_CHUNK = 1 << 20


def _digest_of(path, algorithm):
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def download(name, cache_dir=None, verbose=False):
    """Fetch a data set into the cache directory, checking every file's digest.

    name: one of ``DOWNLOADS`` ("mnist", "fashion-mnist", "mnist-pkl").
    cache_dir: where to keep it (default: :func:`fastbp.datasets.cache_dir`,
    i.e. $FASTBP_DATA or ~/.cache/fastbp).  Files already there with the
    right digest are not fetched again; a fetched file is written under a
    temporary name and renamed only once its digest is right, so a failed or
    tampered download never leaves a file that looks complete.  Returns the
    path to give :func:`load` (the IDX directory, or the pickle file).

    This is the only function in fastbp that uses the network, and nothing
    in fastbp calls it unless a user asks (``python -m fastbp download NAME``)."""
    if name not in DOWNLOADS:
        raise ValueError(f"no download called {name!r}; known: {', '.join(sorted(DOWNLOADS))}")
    root = os.path.expanduser(os.fspath(cache_dir)) if cache_dir is not None else _default_cache()
    target, files = DOWNLOADS[name]
    for relpath, url, digest in files:
        algorithm, expected = digest.split(":", 1)
        dest = os.path.join(root, relpath)
        if os.path.isfile(dest) and _digest_of(dest, algorithm) == expected:
            if verbose:
                print(f"{dest}: already there, {algorithm} checked", flush=True)
            continue
        os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
        if verbose:
            print(f"downloading {url}", flush=True)
        _fetch(url, dest, algorithm, expected)
    return os.path.join(root, target)


def _default_cache():
    return cache_dir()


def _fetch(url, dest, algorithm, expected):
    """Fetch url into dest if its digest is the expected one."""
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(dest) + ".", suffix=".part",
                               dir=os.path.dirname(dest) or ".")
    try:
        h = hashlib.new(algorithm)
        with os.fdopen(fd, "wb") as out:
            try:
                with _urlopen(url, timeout=60) as response:
                    for block in iter(lambda: response.read(_CHUNK), b""):
                        h.update(block)
                        out.write(block)
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", None) or exc
                raise OSError(f"{url}: download failed: {reason}") from None
        got = h.hexdigest()
        if got != expected:
            raise ValueError(f"{url}: checksum mismatch: expected {algorithm} {expected}, "
                             f"got {got}; the file was not kept")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
