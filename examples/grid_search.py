"""A hyperparameter search over fastbp networks with scikit-learn's GridSearchCV.

    python examples/grid_search.py

Searches the learning rate eta and the hidden layer sizes of a
NetworkClassifier on the UCI digits shipped with fastbp, with 3-fold cross
validation, two fits at a time (n_jobs=2), then scores the best network on a
held-out test set.  Needs scikit-learn (pip install 'fastbp[sklearn]').

Threads: fastbp splits each mini-batch over the cores by itself, so with
n_jobs fits running at once each should keep to its share: n_threads=1 here
(two fits, two cores).  joblib's default (loky) backend runs the fits in
worker processes; fastbp's training also releases the GIL, so the threading
backend works as well (``with joblib.parallel_backend("threading"):
search.fit(...)``), with the same n_threads=1.

On a cluster: the same search runs on a Dask or Ray cluster through joblib's
backends, with no change to the estimator (fastbp networks pickle, so they
travel to the workers and back):

    import joblib

    # Dask (pip install dask distributed): start or connect to a cluster
    from dask.distributed import Client
    client = Client("tcp://scheduler-address:8786")   # or Client() for a local one
    with joblib.parallel_backend("dask"):
        search.fit(X_train, y_train)

    # Ray (pip install ray): ray.init(address="auto") on a running cluster
    import ray
    from ray.util.joblib import register_ray
    register_ray()
    ray.init(address="auto")
    with joblib.parallel_backend("ray"):
        search.fit(X_train, y_train)

Every worker needs fastbp installed (the same version), as for any estimator.
Set n_jobs=-1 in GridSearchCV to use every worker the cluster offers, and
n_threads to the cores each worker process may use.
"""
import time

from sklearn.model_selection import GridSearchCV, train_test_split

from fastbp.datasets import load_digits
from fastbp.sklearn import NetworkClassifier


def main():
    X, y = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0)

    grid = {
        "eta": [0.1, 0.5, 2.0],
        "hidden_layer_sizes": [(16,), (32,), (64,)],
    }
    search = GridSearchCV(NetworkClassifier(epochs=20, batch_size=10, random_state=0,
                                            n_threads=1),
                          grid, cv=3, n_jobs=2)
    t0 = time.perf_counter()
    search.fit(X_train, y_train)
    seconds = time.perf_counter() - t0

    results = search.cv_results_
    print(f"{len(results['params'])} settings x 3 folds in {seconds:.1f} s (n_jobs=2)")
    for params, mean, std in zip(results["params"], results["mean_test_score"],
                                 results["std_test_score"]):
        print(f"  eta={params['eta']:<4} hidden={str(params['hidden_layer_sizes']):<6} "
              f"accuracy {mean:.3f} +- {std:.3f}")
    print(f"best: {search.best_params_}, cross-validated accuracy {search.best_score_:.3f}")
    print(f"test accuracy of the best network: {search.score(X_test, y_test):.3f}")


if __name__ == "__main__":
    main()
