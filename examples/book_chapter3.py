"""Chapter 3 of *Neural Networks and Deep Learning*, on fastbp: network2 with
the cross-entropy cost and L2 regularization.

    python examples/book_chapter3.py                   # the book's run: 30 epochs
    python examples/book_chapter3.py --init large      # the Chapter 3 comparison

The book's experiment: a [784, 30, 10] network with the cross-entropy cost,
mini-batches of 10, eta = 0.5 and lambda = 5.0 over the 50,000 training
images, monitoring the cost and accuracy on the validation data and on the
training data after each epoch.  The book first runs it with the "large"
initial weights (N(0, 1)), then with the default ones (N(0, 1/n_in)), which
learn faster.  The only change to the book's code is the imports:
``fastbp.network2`` and ``fastbp.mnist_loader``.

The data is found as in book_chapter1.py (MNIST, else Fashion-MNIST).
"""
import argparse
import random
import time

import numpy as np

import fastbp.mnist_loader as mnist_loader
import fastbp.network2 as network2


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1].strip())
    parser.add_argument("--data", default=None,
                        help="a mnist.pkl.gz or a directory of IDX files "
                             "(default: search as fastbp.mnist_loader does)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--hidden", type=int, default=30, help="hidden neurons (default: 30)")
    parser.add_argument("--eta", type=float, default=0.5)
    parser.add_argument("--lmbda", type=float, default=5.0)
    parser.add_argument("--init", choices=["default", "large"], default="default",
                        help="initial weights: N(0, 1/n_in) (default) or N(0, 1)")
    parser.add_argument("--samples", type=int, default=None,
                        help="train on the first N training samples only")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed random and numpy.random, the book's way")
    parser.add_argument("--save", default=None,
                        help="save the trained network to this JSON file "
                             "(network2's format: network2.load reads it back)")
    args = parser.parse_args()

    if args.seed is not None:
        random.seed(args.seed)
        np.random.seed(args.seed)
    print("data:", mnist_loader.find_data(args.data))
    training_data, validation_data, test_data = mnist_loader.load_data_wrapper(args.data)
    if args.samples is not None:
        training_data = training_data[:args.samples]

    net = network2.Network([784, args.hidden, 10], cost=network2.CrossEntropyCost)
    if args.init == "large":
        net.large_weight_initializer()
    start = time.perf_counter()
    evaluation_cost, evaluation_accuracy, training_cost, training_accuracy = net.SGD(
        training_data, args.epochs, 10, args.eta, lmbda=args.lmbda,
        evaluation_data=validation_data,
        monitor_evaluation_cost=True, monitor_evaluation_accuracy=True,
        monitor_training_cost=True, monitor_training_accuracy=True)
    elapsed = time.perf_counter() - start
    if evaluation_accuracy:
        best = int(np.argmax(evaluation_accuracy))
        print(f"best validation accuracy: {evaluation_accuracy[best]} / "
              f"{len(validation_data)} (epoch {best})")
    print(f"test accuracy: {net.accuracy(test_data)} / {len(test_data)}")
    epochs = f"{args.epochs} epoch{'' if args.epochs == 1 else 's'}"
    print(f"{epochs} in {elapsed:.1f} s, with the monitoring")
    if args.save:
        net.save(args.save)
        print("saved to", args.save)


if __name__ == "__main__":
    main()
