"""The exercises: every notebook from 01 on has at least two, each a solution cell followed by a
check cell; the learners' copies (scripts/notebooks/exercises.py, make exercises) hold none of the
solutions' code, and, run against the served model, every check cell fails on the stub and nothing
else does."""
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from kit import REPO_ROOT
from kit.server import engine_available

sys.path.insert(0, str(REPO_ROOT / "scripts" / "notebooks"))
from exercises import is_solution, split_solution  # noqa: E402

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
WITH_EXERCISES = [p for p in NOTEBOOKS if not p.name.startswith("00_")]
NEEDS_DOCKER = {"03_build_image.ipynb", "07_scale_out.ipynb"}


@pytest.fixture(scope="module")
def learner_copies(tmp_path_factory):
    out = tmp_path_factory.mktemp("exercises")
    subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "notebooks" / "exercises.py"), str(out)],
                   check=True, capture_output=True, timeout=120)
    return out


def exercises_of(nb):
    """[(solution cell index, check cell index)] of a notebook with solutions, or of a learner's
    copy (where the solution cells are tagged "exercise")."""
    pairs = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and {"solution", "exercise"} & set(cell.metadata.get("tags", [])):
            check = next(j for j in range(i + 1, len(nb.cells)) if nb.cells[j].cell_type == "code")
            pairs.append((i, check))
    return pairs


@pytest.mark.parametrize("path", WITH_EXERCISES, ids=lambda p: p.stem)
def test_each_notebook_has_two_exercises_with_a_heading_and_a_check(path):
    nb = nbformat.read(path, as_version=4)
    pairs = exercises_of(nb)
    assert len(pairs) >= 2, f"{path.name}: {len(pairs)} exercises"
    for solution, check in pairs:
        heading = next(nb.cells[j].source for j in range(solution - 1, -1, -1) if nb.cells[j].cell_type == "markdown")
        assert "### Exercise" in heading, nb.cells[solution].source
        assert "checks." in nb.cells[check].source, nb.cells[check].source
        stub, answer = split_solution(nb.cells[solution].source)
        assert any("..." in line for line in stub) and answer


@pytest.mark.parametrize("path", WITH_EXERCISES, ids=lambda p: p.stem)
def test_learner_copies_hold_no_solution_code(path, learner_copies):
    solutions = nbformat.read(path, as_version=4)
    copy = nbformat.read(learner_copies / path.name, as_version=4)

    def lines(cells):
        return {line.strip() for cell in cells for line in cell.source.splitlines() if line.strip()}

    shared = lines(c for c in solutions.cells if not is_solution(c))  # `if have_docker:` and the like
    for cell in filter(is_solution, solutions.cells):
        answer = {line.strip() for line in split_solution(cell.source)[1] if line.strip()} - shared
        assert answer, cell.source
        assert answer.isdisjoint(lines(copy.cells)), answer & lines(copy.cells)
    assert "# solution" not in lines(copy.cells)
    assert all(not cell.get("outputs") for cell in copy.cells if cell.cell_type == "code")
    assert len(exercises_of(copy)) == len(exercises_of(solutions))


def error_of(cell):
    return next((o for o in cell.get("outputs", []) if o.output_type == "error"), None)


@pytest.mark.container
@pytest.mark.parametrize("path", WITH_EXERCISES, ids=lambda p: p.stem)
def test_check_cells_fail_on_the_stub_and_nothing_else_does(path, learner_copies, client):
    if path.name in NEEDS_DOCKER and not engine_available():
        pytest.skip("needs a Docker engine")
    copy = nbformat.read(learner_copies / path.name, as_version=4)
    NotebookClient(copy, kernel_name="python3", allow_errors=True, timeout=600,
                   resources={"metadata": {"path": str(learner_copies)}}).execute()
    checks = {check for _, check in exercises_of(copy)}
    for i, cell in enumerate(copy.cells):
        error = error_of(cell) if cell.cell_type == "code" else None
        if i in checks:
            assert error is not None and error.ename == "NotYet", (cell.source, error)
            assert "not answered yet" in error.evalue
        else:
            assert error is None, (cell.source, error and error.evalue)


# --- the checks refuse wrong answers, not only stubs ---------------------------------------------

def refused(check, *args):
    from kit.checks import NotYet

    with pytest.raises(NotYet) as caught:
        check(*args)
    return str(caught.value)


def test_checks_refuse_wrong_answers(capsys):
    import pandas as pd

    from DockerModel import DockerModel
    from kit import checks
    from kit.training import load_test_set

    X_test, y_test = load_test_set()
    # 01: the Perceptron's test counts (shown in the notebook) are not its training counts
    assert "training rows" in refused(checks.perceptron_training_counts, {"tp": 309, "fp": 26, "tn": 161, "fn": 17})
    assert "an int" in refused(checks.unsure_rows, 31.0)
    # 02: seven rows fed back, but metrics() never called: typing 7 and 0 is not enough
    seven = DockerModel(feedback_db=":memory:")
    seven.send_feedback(X_test[:7], None, 0, y_test[:7])
    assert "call its metrics()" in refused(checks.handed_out_once, 7, 0, seven)
    assert "20 rows" in refused(checks.first_twenty_scores, {"tp": 20, "fp": 0, "tn": 0, "fn": 0})
    # 05: precision from a page that holds other counts than the answer's
    page = 'feedback_outcomes_total{outcome="tp",worker_id="1"} 30.0\nfeedback_outcomes_total{outcome="fp",worker_id="2"} 10.0\n'
    assert "precision" in refused(checks.precision_recall, 0.9, 1.0, page)
    checks.precision_recall(0.75, 1.0, page)
    # 07: a mean of per-replica precisions passed off as the precision of the sums
    shares = pd.DataFrame({"tp": [90, 10], "fp": [10, 10], "tn": [5, 5], "fn": [0, 0]})
    assert "summed counts" in refused(checks.average_of_ratios, (0.9 + 0.5) / 2, (0.9 + 0.5) / 2, shares)
    checks.average_of_ratios((0.9 + 0.5) / 2, 100 / 120, shares)
    assert "Right:" in capsys.readouterr().out


def test_the_ab_test_checks_refuse_wrong_answers(capsys):
    import pandas as pd

    from kit import checks

    table = pd.DataFrame({"rows": [257, 256], "right": [240, 232]}, index=["A", "B"])
    assert "Yates" in refused(checks.chi_square_p_value, 0.3128, table)  # with the correction: another p
    assert "not a probability" in refused(checks.chi_square_p_value, 1.33, table)
    from scipy.stats import chi2_contingency

    checks.chi_square_p_value(chi2_contingency([[240, 17], [232, 24]], correction=False)[1], table)
    assert "rows_needed" in refused(checks.rows_for_a_decision, 513, 1, 475 / 513, 470 / 513, 513)
    assert "split between them" in refused(checks.rows_for_a_decision, 12012, 24, 475 / 513, 470 / 513, 513)
    checks.rows_for_a_decision(12012, 47, 475 / 513, 470 / 513, 513)
    assert "Right: 12012 rows per variant, 47 days" in capsys.readouterr().out


def test_a_false_positive_rule_that_records_nan_or_ignores_zero_is_refused():
    import shutil

    from kit import checks

    if shutil.which("promtool") is None:
        pytest.skip("no promtool: make monitor installs it")
    plain_ratio = 'record: model:false_positive_rate:ratio\nexpr: sum(model:feedback_outcomes:sum{outcome="fp"}) / sum(model:feedback_outcomes:sum{outcome=~"fp|tn"})'
    assert "promtool's unit tests fail" in refused(checks.false_positive_rate_rule, plain_ratio)


def test_make_exercises_never_overwrites_a_learners_copy(tmp_path):
    script = [sys.executable, str(REPO_ROOT / "scripts" / "notebooks" / "exercises.py"), str(tmp_path)]
    subprocess.run(script, check=True, capture_output=True, timeout=120)
    answered = tmp_path / "05_feedback_replay.ipynb"
    answered.write_text(answered.read_text().replace("my_precision = ...", "my_precision = 0.95"))
    again = subprocess.run(script, check=True, capture_output=True, text=True, timeout=120)
    assert "my_precision = 0.95" in answered.read_text()
    assert "kept 00_check_setup.ipynb" in again.stderr
