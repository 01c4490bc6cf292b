"""scikit-learn reference for the tree part of `cargo bench --bench train`.

Reads the rows the Rust bench wrote (little-endian f64 features in row order, then one byte
per label), fits HistGradientBoostingClassifier (default settings, random_state=0) on the same
training rows, and prints one JSON line: best fit time and hold-out ROC-AUC.

usage: train_trees_reference.py FILE ROWS FEATURES TRAIN_ROWS RUNS
"""

import json
import sys
import time

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score


def main() -> None:
    path = sys.argv[1]
    rows, features, train_rows, runs = (int(a) for a in sys.argv[2:6])
    with open(path, "rb") as f:
        x = np.fromfile(f, dtype="<f8", count=rows * features).reshape(rows, features)
        y = np.fromfile(f, dtype=np.uint8, count=rows).astype(bool)
    x_train, y_train = x[:train_rows], y[:train_rows]
    x_hold, y_hold = x[train_rows:], y[train_rows:]
    best, model = float("inf"), None
    for _ in range(runs):
        candidate = HistGradientBoostingClassifier(random_state=0)
        start = time.perf_counter()
        candidate.fit(x_train, y_train)
        best = min(best, time.perf_counter() - start)
        model = candidate
    scores = model.predict_proba(x_hold)[:, 1]
    print(json.dumps({"seconds": best, "auc": roc_auc_score(y_hold, scores), "iterations": int(model.n_iter_)}))


if __name__ == "__main__":
    main()
