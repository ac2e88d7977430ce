"""Copies executed notebooks into place, keeping their outputs but not what changes run to run.

nbval compares stored outputs, so outputs and execution counts stay; papermill's timings and
status, and kernel details, go.   usage: clean_notebooks.py SOURCE_DIR TARGET_DIR
"""
import sys
from pathlib import Path

import nbformat

VOLATILE_CELL_KEYS = ("papermill", "execution", "ExecuteTime")


def clean(nb):
    nb.metadata.pop("papermill", None)
    nb.metadata["kernelspec"] = {"name": "docker-model-kit", "display_name": "docker-model kit", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for cell in nb.cells:
        for key in VOLATILE_CELL_KEYS:
            cell.metadata.pop(key, None)
    return nb


def main(source, target):
    for path in sorted(Path(source).glob("[0-9][0-9]_*.ipynb")):
        nb = clean(nbformat.read(path, as_version=4))
        nbformat.write(nb, Path(target) / path.name)
        print(f"{path} -> {Path(target) / path.name}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
