"""Small data files for the loader tests, written from the file formats.

- IDX: a magic number (two zero bytes, a type code, the number of
  dimensions), each dimension as a big-endian 32-bit integer, then the values
  big-endian, row-major.
- Nielsen's mnist.pkl.gz: a gzip-compressed Python 2 pickle of
  ((train_x, train_y), (valid_x, valid_y), (test_x, test_y)), float32 images
  (n, 784) and int64 labels.  ``write_py2_pickle`` assembles such a pickle
  opcode by opcode the way Python 2 with NumPy 1 wrote it (byte strings as
  BINSTRING, arrays through numpy.core.multiarray._reconstruct), so the
  tests exercise ``encoding="latin1"`` without a Python 2 at hand.
"""
import gzip
import os
import pickle
import struct

import numpy as np

IDX_TYPE_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09,
                  np.dtype(np.int16): 0x0B, np.dtype(np.int32): 0x0C,
                  np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}

IDX_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def idx_bytes(array):
    """The IDX encoding of an array."""
    array = np.asarray(array)
    header = bytes([0, 0, IDX_TYPE_CODES[array.dtype], array.ndim])
    header += b"".join(struct.pack(">I", n) for n in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path, array, compress=None):
    """Write array as an IDX file; gzip-compressed if compress (default: the
    name ends in .gz)."""
    data = idx_bytes(array)
    if compress is None:
        compress = str(path).endswith(".gz")
    with open(path, "wb") as f:
        f.write(gzip.compress(data, compresslevel=1) if compress else data)
    return path


def make_images(n, seed, side=28):
    """n random 'images' of side x side unsigned bytes, and labels 0..9."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, side, side), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    return images, labels


def write_idx_directory(directory, n_train=120, n_test=30, seed=0, side=28):
    """The four MNIST IDX files in directory; returns the arrays written
    (train_images, train_labels, test_images, test_labels)."""
    os.makedirs(directory, exist_ok=True)
    train_images, train_labels = make_images(n_train, seed, side)
    test_images, test_labels = make_images(n_test, seed + 1, side)
    arrays = (train_images, train_labels, test_images, test_labels)
    for name, array in zip(IDX_NAMES, arrays):
        write_idx(os.path.join(directory, name), array)
    return arrays


def make_nielsen_sets(n_train=50, n_valid=20, n_test=20, width=784, seed=0):
    """((train_x, train_y), (valid_x, valid_y), (test_x, test_y)) as in
    Nielsen's file: float32 images in [0, 1) of shape (n, width), int64 labels."""
    rng = np.random.default_rng(seed)
    sets = []
    for n in (n_train, n_valid, n_test):
        x = (rng.integers(0, 256, size=(n, width)) / 256.0).astype(np.float32)
        y = rng.integers(0, 10, size=n).astype(np.int64)
        sets.append((x, y))
    return tuple(sets)


# -- a Python 2 pickle, opcode by opcode ---------------------------------------
def _py2_str(data):
    """A Python 2 byte string: SHORT_BINSTRING or BINSTRING."""
    if len(data) < 256:
        return b"U" + bytes([len(data)]) + data
    return b"T" + struct.pack("<i", len(data)) + data


def _py2_int(value):
    if 0 <= value < 256:
        return b"K" + bytes([value])
    return b"J" + struct.pack("<i", value)


def _py2_tuple(items):
    return b"(" + b"".join(items) + b"t"


def _py2_dtype(dtype):
    """numpy.dtype(code, 0, 1) with its state, as NumPy 1 pickled it."""
    dtype = np.dtype(dtype)
    code = f"{dtype.kind}{dtype.itemsize}".encode()
    state = _py2_tuple([_py2_int(3), _py2_str(b"<"), b"N", b"N", b"N",
                        _py2_int(-1), _py2_int(-1),
                        _py2_int(0)])
    return (b"cnumpy\ndtype\n" + _py2_tuple([_py2_str(code), _py2_int(0), _py2_int(1)]) +
            b"R" + state + b"b")


def _py2_array(array):
    array = np.ascontiguousarray(array)
    little = array.astype(array.dtype.newbyteorder("<"))
    head = (b"cnumpy.core.multiarray\n_reconstruct\n" +
            _py2_tuple([b"cnumpy\nndarray\n", _py2_tuple([_py2_int(0)]), _py2_str(b"b")]) +
            b"R")
    state = _py2_tuple([_py2_int(1), _py2_tuple([_py2_int(n) for n in array.shape]),
                        _py2_dtype(array.dtype), b"\x89", _py2_str(little.tobytes())])
    return head + state + b"b"


def py2_pickle_bytes(obj):
    """A protocol-2 pickle as Python 2 wrote it, of nested tuples of arrays."""
    def encode(item):
        if isinstance(item, np.ndarray):
            return _py2_array(item)
        return _py2_tuple([encode(x) for x in item])
    return b"\x80\x02" + encode(obj) + b"."


def write_py2_pickle(path, sets, compress=True):
    """Write sets in Nielsen's format, the way his mnist.pkl.gz was written."""
    data = py2_pickle_bytes(sets)
    with open(path, "wb") as f:
        f.write(gzip.compress(data, compresslevel=1) if compress else data)
    return path


def write_py3_pickle(path, obj, protocol=2):
    """Write obj with Python 3's pickle, gzip-compressed."""
    with gzip.open(path, "wb", compresslevel=1) as f:
        pickle.dump(obj, f, protocol=protocol)
    return path
