"""fastbp's native API in a few lines: arrays in, arrays out, samples as rows.

    python examples/native_api.py

Trains a [64, 30, 10] network on the UCI digits shipped with fastbp (8x8
images, 1797 samples), keeping a fifth of them aside to test it.
"""
import numpy as np

import fastbp
from fastbp.datasets import holdout_split, load_digits

X, y = load_digits()                                 # X (1797, 64) in [0, 1], y int labels
(X_train, y_train), (X_test, y_test) = holdout_split(X, y, test_fraction=0.2, seed=0)

net = fastbp.Network([64, 30, 10], cost="cross-entropy", seed=0)
history = net.fit(X_train, y_train, epochs=30, batch_size=10, eta=0.5,
                  validation_data=(X_test, y_test))

print(f"after {len(history['seconds'])} epochs: "
      f"training accuracy {history['train_accuracy'][-1]:.4f}, "
      f"test accuracy {history['val_accuracy'][-1]:.4f}, "
      f"{np.mean(history['seconds']) * 1e3:.1f} ms per epoch")

predicted = net.predict(X_test[:10])                 # class labels
outputs = net.feedforward(X_test[:10])               # (10, 10) output activations
print("predicted:", predicted)
print("actual:   ", y_test[:10])
print("output activations for the first:", np.round(outputs[0], 3))
print(f"test accuracy: {net.accuracy(X_test, y_test):.4f}")
