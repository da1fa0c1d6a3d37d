"""Two networks trained in two threads against one after the other.

    python bench/threads.py [--samples 20000] [--epochs 2] [--repeat 3]

fastbp's epoch loop runs without the GIL, so two networks can train at the
same time in two Python threads.  Each training here runs on one thread
(fit(n_threads=1); fastbp keeps BLAS to one thread while it trains), so the
two share nothing but the cores: on a machine with two free cores the
concurrent run should take about half the time of the sequential one.

Prints the best of --repeat timings of each, and the ratio
concurrent / sequential (1.0: no gain; 0.5: the ideal on two cores), beside
the cores this process may use.  For comparison it also times the two
trainings one after the other with fastbp's own threads (n_threads=None:
each mini-batch split over every core).  Like every benchmark here, the ratio is
the result; the absolute times depend on the machine and its load.  The
workload is the book's network (W1's shape: [784, 30, 10], mini-batch
10, eta 3.0, sigmoid + quadratic, float64) on random data.
"""
import argparse
import os
import threading
import time

import numpy as np

import fastbp


def make_data(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 784)), rng.integers(0, 10, size=n)


def train(net, X, y, epochs, n_threads=1):
    net.fit(X, y, epochs=epochs, batch_size=10, eta=3.0, monitor=False, n_threads=n_threads)


def sequential(nets, X, y, epochs, n_threads=1):
    t0 = time.perf_counter()
    for net in nets:
        train(net, X, y, epochs, n_threads)
    return time.perf_counter() - t0


def concurrent(nets, X, y, epochs):
    errors = []

    def run(net):
        try:
            train(net, X, y, epochs)
        except BaseException as exc:       # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(net,)) for net in nets]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    X, y = make_data(args.samples)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    best_seq = best_con = best_own = float("inf")
    # warm up: first touch of the data, BLAS and OpenMP start-up
    train(fastbp.Network([784, 30, 10], seed=0), X[:1000], y[:1000], 1)
    for _ in range(args.repeat):
        nets = [fastbp.Network([784, 30, 10], seed=s) for s in (1, 2)]
        twins = [fastbp.Network([784, 30, 10], seed=s) for s in (1, 2)]
        best_seq = min(best_seq, sequential(nets, X, y, args.epochs))
        best_con = min(best_con, concurrent(twins, X, y, args.epochs))
        same = all(np.array_equal(a, b) for n1, n2 in zip(nets, twins)
                   for a, b in zip(n1.weights + n1.biases, n2.weights + n2.biases))
        if not same:
            raise SystemExit("the threaded networks differ from the sequential ones")
        own = [fastbp.Network([784, 30, 10], seed=s) for s in (1, 2)]
        best_own = min(best_own, sequential(own, X, y, args.epochs, n_threads=None))

    print(f"two networks [784, 30, 10], {args.samples} samples x {args.epochs} epochs each, "
          f"{cores} cores available")
    print(f"  one after the other, one thread each:  {best_seq:.3f} s (best of {args.repeat})")
    print(f"  in two Python threads, one thread each: {best_con:.3f} s")
    print(f"  one after the other, n_threads=None:  {best_own:.3f} s")
    print(f"  ratio two threads / one after the other: {best_con / best_seq:.2f} "
          f"(1.00: no gain; ideal on two free cores: 0.50)")


if __name__ == "__main__":
    main()
