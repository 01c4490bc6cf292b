"""scikit-learn reference for `cargo bench --bench train`.

Reads the rows the Rust bench wrote (little-endian f64 features in row order, then one byte
per label), fits StandardScaler + LogisticRegression(lbfgs) on the same training rows, and
prints one JSON line: best fit time, hold-out ROC-AUC, iterations and coefficients.

usage: train_reference.py FILE ROWS FEATURES TRAIN_ROWS L2_PENALTY TOLERANCE MAX_ITER RUNS
"""

import json
import sys
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def main() -> None:
    path = sys.argv[1]
    rows, features, train_rows = (int(a) for a in sys.argv[2:5])
    l2_penalty, tolerance = float(sys.argv[5]), float(sys.argv[6])
    max_iter, runs = int(sys.argv[7]), int(sys.argv[8])

    with open(path, "rb") as f:
        x = np.fromfile(f, dtype="<f8", count=rows * features).reshape(rows, features)
        y = np.fromfile(f, dtype=np.uint8, count=rows).astype(bool)
    if x.shape != (rows, features) or y.shape != (rows,):
        raise SystemExit(f"short file: {x.shape} features, {y.shape} labels")
    x_train, y_train = x[:train_rows], y[:train_rows]
    x_hold, y_hold = x[train_rows:], y[train_rows:]

    best, model = float("inf"), None
    for _ in range(runs):
        # Same objective as rescue: sum of log-losses + l2_penalty/2 * |w|^2 on standardized
        # features, i.e. C = 1 / l2_penalty; scikit-learn's tol is the max gradient component
        # of the mean loss, which is what rescue's gradient_tolerance means too.
        candidate = make_pipeline(
            StandardScaler(),
            LogisticRegression(C=1.0 / l2_penalty, solver="lbfgs", tol=tolerance, max_iter=max_iter),
        )
        start = time.perf_counter()
        candidate.fit(x_train, y_train)
        best = min(best, time.perf_counter() - start)
        model = candidate

    scores = model.predict_proba(x_hold)[:, 1]
    logistic = model[-1]
    print(json.dumps({
        "seconds": best,
        "auc": roc_auc_score(y_hold, scores),
        "iterations": int(logistic.n_iter_[0]),
        "coefficients": logistic.coef_[0].tolist(),
        "intercept": float(logistic.intercept_[0]),
    }))


if __name__ == "__main__":
    main()
