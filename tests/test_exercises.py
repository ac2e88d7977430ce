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
