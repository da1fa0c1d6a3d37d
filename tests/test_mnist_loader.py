"""fastbp.mnist_loader: the book's load_data / load_data_wrapper contract,
from Nielsen's pickle and from IDX directories, and where it
looks when no path is given."""
import os

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from fastbp import datasets, mnist_loader
from datafiles import make_nielsen_sets, write_idx_directory, write_py2_pickle


@pytest.fixture
def nielsen_file(tmp_path):
    """A small mnist.pkl.gz in Nielsen's format (written as Python 2 did) and
    the arrays in it."""
    sets = make_nielsen_sets(n_train=40, n_valid=15, n_test=12, seed=7)
    return write_py2_pickle(tmp_path / "mnist.pkl.gz", sets), sets


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """No data in any of the places mnist_loader searches."""
    work = tmp_path / "work" / "src"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.setenv("FASTBP_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "FASHION_MNIST_DIR", str(tmp_path / "no-fashion"))
    return tmp_path


def test_load_data_from_pickle(nielsen_file):
    path, sets = nielsen_file
    training, validation, test = mnist_loader.load_data(path)
    for (x, y), (x0, y0) in zip((training, validation, test), sets):
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.ndim == 2 and x.shape[1] == 784 and y.shape == (x.shape[0],)
        assert_array_equal(x, x0)
        assert_array_equal(y, y0)


def test_load_data_wrapper_gives_the_books_shapes(nielsen_file):
    path, sets = nielsen_file
    training, validation, test = mnist_loader.load_data_wrapper(path)
    assert isinstance(training, list) and isinstance(validation, list)
    assert isinstance(test, list)
    assert (len(training), len(validation), len(test)) == (40, 15, 12)
    for (x, y), image, label in zip(training, *sets[0]):
        assert isinstance((x, y), tuple)
        assert x.shape == (784, 1) and y.shape == (10, 1)
        assert_array_equal(x[:, 0], image)
        expected = np.zeros((10, 1))
        expected[label] = 1.0
        assert_array_equal(y, expected)
        assert y.dtype == np.float64
    for data, (images, labels) in ((validation, sets[1]), (test, sets[2])):
        for (x, label), image, label0 in zip(data, images, labels):
            assert x.shape == (784, 1)
            assert isinstance(label, int) and label == label0
            assert_array_equal(x[:, 0], image)


def test_wrapper_output_trains_the_book_network(nielsen_file):
    """The lists go straight into fastbp.network's SGD and evaluate."""
    import fastbp.network as network
    path, _ = nielsen_file
    training, validation, test = mnist_loader.load_data_wrapper(path)
    np.random.seed(0)
    net = network.Network([784, 5, 10])
    net.SGD(training, 1, 10, 3.0)
    correct = net.evaluate(test)
    assert 0 <= correct <= len(test)
    assert all(np.isfinite(w).all() for w in net.weights)


def test_load_data_from_idx_directory_splits_like_the_book(tmp_path):
    tri, trl, tei, tel = write_idx_directory(tmp_path, n_train=120, n_test=30, seed=3)
    training, validation, test = mnist_loader.load_data(tmp_path)
    # the last sixth of the training images (10,000 of MNIST's 60,000) validate
    assert training[0].shape == (100, 784) and validation[0].shape == (20, 784)
    images = tri.reshape(120, 784) / 255.0
    assert_allclose(training[0], images[:100], rtol=1e-6)
    assert_allclose(validation[0], images[100:], rtol=1e-6)
    assert_array_equal(training[1], trl[:100])
    assert_array_equal(validation[1], trl[100:])
    assert_allclose(test[0], tei.reshape(30, 784) / 255.0, rtol=1e-6)
    assert_array_equal(test[1], tel)
    assert training[0].dtype == np.float32 and test[1].dtype == np.int64
    wrapped = mnist_loader.load_data_wrapper(tmp_path)
    assert [len(part) for part in wrapped] == [100, 20, 30]


def test_vectorized_result():
    for j in range(10):
        e = mnist_loader.vectorized_result(j)
        assert e.shape == (10, 1) and e.dtype == np.float64
        expected = np.zeros((10, 1))
        expected[j, 0] = 1.0
        assert_array_equal(e, expected)


def test_labels_beyond_nine_are_refused(tmp_path):
    sets = list(make_nielsen_sets(6, 3, 3))
    sets[2] = (sets[2][0], np.array([1, 2, 12]))
    path = write_py2_pickle(tmp_path / "twelve.pkl.gz", tuple(sets))
    with pytest.raises(ValueError) as e:
        mnist_loader.load_data_wrapper(path)
    assert str(path) in str(e.value) and "12" in str(e.value)


def test_missing_path_is_named(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        mnist_loader.load_data(tmp_path / "mnist.pkl.gz")
    assert str(tmp_path / "mnist.pkl.gz") in str(e.value)


# -- where it looks with path=None ----------------------------------------------------
def test_search_finds_the_books_data_directory_first(nowhere):
    sets = make_nielsen_sets(5, 2, 2)
    (nowhere / "work" / "data").mkdir()
    write_py2_pickle(nowhere / "work" / "data" / "mnist.pkl.gz", sets)
    write_py2_pickle(nowhere / "work" / "src" / "mnist.pkl.gz", make_nielsen_sets(3, 2, 2))
    assert mnist_loader.find_data() == os.path.join("..", "data", "mnist.pkl.gz")
    training, _, _ = mnist_loader.load_data()
    assert_array_equal(training[0], sets[0][0])


def test_search_then_the_current_directory(nowhere):
    sets = make_nielsen_sets(3, 2, 2, seed=1)
    write_py2_pickle(nowhere / "work" / "src" / "mnist.pkl.gz", sets)
    assert mnist_loader.find_data() == "mnist.pkl.gz"
    assert_array_equal(mnist_loader.load_data()[2][1], sets[2][1])


def test_search_then_the_cache(nowhere):
    (nowhere / "cache").mkdir()
    arrays = write_idx_directory(nowhere / "cache" / "mnist", n_train=12, n_test=4)
    assert mnist_loader.find_data() == os.path.join(nowhere, "cache", "mnist")
    assert_array_equal(mnist_loader.load_data()[2][1], arrays[3])
    sets = make_nielsen_sets(3, 2, 2, seed=2)
    write_py2_pickle(nowhere / "cache" / "mnist.pkl.gz", sets)   # the pickle comes first
    assert mnist_loader.find_data() == os.path.join(nowhere, "cache", "mnist.pkl.gz")


def test_search_finds_nothing(nowhere):
    with pytest.raises(FileNotFoundError) as e:
        mnist_loader.load_data_wrapper()
    message = str(e.value)
    assert os.path.join("..", "data", "mnist.pkl.gz") in message
    assert str(nowhere / "no-fashion") in message


def test_search_falls_back_to_fashion_mnist_in_the_cache(nowhere):
    write_idx_directory(nowhere / "cache" / "fashion-mnist", n_train=18, n_test=6)
    assert mnist_loader.find_data() == os.path.join(nowhere, "cache", "fashion-mnist")
    training, validation, test = mnist_loader.load_data()
    assert (len(training[1]), len(validation[1]), len(test[1])) == (15, 3, 6)


@pytest.mark.skipif(not datasets.fashion_mnist_available(),
                    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_search_falls_back_to_debians_fashion_mnist(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FASTBP_DATA", str(tmp_path / "cache"))
    assert mnist_loader.find_data() == datasets.FASHION_MNIST_DIR
    training, validation, test = mnist_loader.load_data_wrapper()
    assert (len(training), len(validation), len(test)) == (50000, 10000, 10000)
    x, y = training[0]
    assert x.shape == (784, 1) and y.shape == (10, 1)
    x, label = test[0]
    assert x.shape == (784, 1) and isinstance(label, int)
