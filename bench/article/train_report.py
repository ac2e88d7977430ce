"""Runs the article's training code (train.py, verbatim) and prints what it fitted, with what."""
import os
import sys

exec(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "train.py")).read())

import numpy  # noqa: E402
import scipy  # noqa: E402
import sklearn  # noqa: E402
from sklearn.metrics import confusion_matrix  # noqa: E402

tn, fp, fn, tp = confusion_matrix(y_test, predictions).ravel()  # noqa: F821 - defined by train.py
print(f"python {sys.version.split()[0]}, scikit-learn {sklearn.__version__}, numpy {numpy.__version__}, "
      f"scipy {scipy.__version__}, OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE') or '(auto)'}: "
      f"TP {tp} FP {fp} TN {tn} FN {fn}, accuracy {accuracy:.8f} precision {precision:.8f} "  # noqa: F821
      f"recall {recall:.8f} f1 {f1:.8f}")  # noqa: F821
