"""scripts/notebooks/run.py (make run-notebooks): the notebooks run in order from one papermill
process, each in a kernel of its own, and the first that fails stops the run with its error."""
import json
import subprocess
import sys

from kit import REPO_ROOT


def notebook(path, *sources):
    cells = [{"cell_type": "code", "id": f"cell-{i}", "metadata": {}, "source": source, "outputs": [],
              "execution_count": None} for i, source in enumerate(sources)]
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.write_text(json.dumps({"cells": cells, "metadata": {"kernelspec": kernel}, "nbformat": 4,
                                "nbformat_minor": 5}))
    return path


def printed(executed, cell):
    return "".join(json.loads(executed.read_text())["cells"][cell]["outputs"][0]["text"])


def test_notebooks_run_in_order_each_in_its_own_kernel_until_one_fails(tmp_path):
    first = notebook(tmp_path / "a.ipynb", "left_behind = 1", "print('a ran')")
    second = notebook(tmp_path / "b.ipynb", "print('left_behind' in globals())")
    failing = notebook(tmp_path / "c.ipynb", "raise RuntimeError('this cell failed')")
    after = notebook(tmp_path / "d.ipynb", "print('d ran')")
    out = tmp_path / "executed"

    done = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "notebooks" / "run.py"), str(out),
                           *map(str, (first, second, failing, after))],
                          capture_output=True, text=True, timeout=300)

    assert done.returncode == 1, done.stderr
    assert printed(out / "a.ipynb", 1) == "a ran\n"
    assert printed(out / "b.ipynb", 0) == "False\n"  # a fresh kernel: nothing of a.ipynb is left
    assert "RuntimeError: this cell failed" in done.stderr
    assert "c.ipynb failed" in done.stderr
    assert not (out / "d.ipynb").exists()
    assert (out / "a.log").read_text().startswith("Input Notebook:")
