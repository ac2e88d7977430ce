# The 513 test rows as the committed model (models/binary-lr.joblib) scores them: the article's own
# confusion matrix, from the fit OpenBLAS's AVX2 kernels give (the Makefile asks for them).
CURRENT = {"tp": 303, "fp": 15, "tn": 172, "fn": 23}


def served_with(step):
    """True if the served model runs with this serving/tuning step (make test passes SERVING_TUNING on)."""
    import os

    from serving.tuning import steps_named

    return step in steps_named(os.environ.get("SERVING_TUNING", "on"))
