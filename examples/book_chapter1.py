"""Chapter 1 of *Neural Networks and Deep Learning*, on fastbp.

    python examples/book_chapter1.py                 # 30 epochs, as in the book
    python examples/book_chapter1.py --data ~/nndl/data/mnist.pkl.gz

The book's experiment: a [784, 30, 10] network of sigmoid neurons with the
quadratic cost, trained by mini-batch SGD (mini-batches of 10, eta = 3.0)
for 30 epochs, printing the test accuracy after each one.  The only change
to the book's code is the imports: ``fastbp.network`` and
``fastbp.mnist_loader`` instead of ``network`` and ``mnist_loader``.

The data: MNIST from Nielsen's mnist.pkl.gz or the IDX files, found where
``fastbp.mnist_loader`` looks (../data/mnist.pkl.gz, ./mnist.pkl.gz, the
download cache), else Fashion-MNIST where Debian's dataset-fashion-mnist
installs it.  On MNIST the book reports about 95% after 30 epochs; on
Fashion-MNIST expect about 85%.
"""
import argparse
import random
import time

import numpy as np

import fastbp.mnist_loader as mnist_loader
import fastbp.network as network


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1].strip())
    parser.add_argument("--data", default=None,
                        help="a mnist.pkl.gz or a directory of IDX files "
                             "(default: search as fastbp.mnist_loader does)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--samples", type=int, default=None,
                        help="train on the first N training samples only")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed random and numpy.random, the book's way")
    args = parser.parse_args()

    if args.seed is not None:
        random.seed(args.seed)
        np.random.seed(args.seed)
    print("data:", mnist_loader.find_data(args.data))
    training_data, validation_data, test_data = mnist_loader.load_data_wrapper(args.data)
    if args.samples is not None:
        training_data = training_data[:args.samples]

    net = network.Network([784, 30, 10])
    start = time.perf_counter()
    net.SGD(training_data, args.epochs, 10, 3.0, test_data=test_data)
    elapsed = time.perf_counter() - start
    epochs = f"{args.epochs} epoch{'' if args.epochs == 1 else 's'}"
    print(f"{epochs} in {elapsed:.1f} s "
          f"({elapsed / max(args.epochs, 1):.2f} s per epoch, with the evaluations)")


if __name__ == "__main__":
    main()
