"""Writes the learners' copies of the notebooks: the same notebooks with every solution taken out.

    venvs/notebooks/bin/python scripts/notebooks/exercises.py [OUT_DIR]     (make exercises)

The solutions live in notebooks/, where CI runs them. A solution is a code cell tagged "solution":
the lines before its `# solution` line are the stub the learner starts from, the lines after it are
taken out (scikit-learn-mooc's convention). Outputs are cleared. Each exercise's check cell then
fails on the stub with a message saying what is still to do.
"""
import sys
from pathlib import Path

import nbformat

REPO_ROOT = Path(__file__).resolve().parents[2]
SOLUTION_MARK = "# solution"
STUB_END = "# Write your code here."


def split_solution(source):
    """(stub lines, solution lines) of a solution cell's source."""
    lines = source.splitlines()
    marks = [i for i, line in enumerate(lines) if line.strip() == SOLUTION_MARK]
    if len(marks) != 1:
        raise ValueError(f"a solution cell needs exactly one '{SOLUTION_MARK}' line:\n{source}")
    return lines[:marks[0]], lines[marks[0] + 1:]


def is_solution(cell):
    return cell.cell_type == "code" and "solution" in cell.metadata.get("tags", [])


def learner_copy(nb):
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        if is_solution(cell):
            stub, _ = split_solution(cell.source)
            cell.source = "\n".join(stub + [STUB_END])
            cell.metadata["tags"] = [t for t in cell.metadata["tags"] if t != "solution"] + ["exercise"]
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def main(out_dir):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    kept = []
    for path in sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        target = out_dir / path.name
        if target.exists():  # a learner's answers: never overwritten
            kept.append(target.name)
            continue
        nbformat.write(learner_copy(nbformat.read(path, as_version=4)), target)
    if kept:
        print(f"[exercises] kept {', '.join(kept)}: they may hold answers (delete one to get a fresh copy)", file=sys.stderr)
    print(f"[exercises] learners' copies in {out_dir}/: open them with 'make lab LAB_DIR={out_dir}'", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else REPO_ROOT / "exercises")
