"""Runs notebooks in order with papermill, each in a fresh kernel, from one Python process: papermill
and nbformat take about a second to import, paid once here rather than once a notebook.
Each runs in the kit's kernel, docker-model-kit (make setup installs it), as in `make lab`.

    venvs/notebooks/bin/python scripts/notebooks/run.py OUT_DIR NOTEBOOK...

Each executed copy goes to OUT_DIR/<name>.ipynb, papermill's log to OUT_DIR/<name>.log. Stops at
the first notebook that fails, with its error, and exits 1.
"""
import logging
import sys
import time
from pathlib import Path

import papermill


def say(message):
    print(f"[notebooks] {message}", file=sys.stderr, flush=True)


def run(notebook, out_dir):
    log = logging.getLogger("papermill")
    handler = logging.FileHandler(out_dir / f"{notebook.stem}.log", mode="w")
    log.addHandler(handler)
    try:
        papermill.execute_notebook(notebook, out_dir / notebook.name, cwd=notebook.parent,
                                   kernel_name="docker-model-kit", progress_bar=False)
    finally:
        log.removeHandler(handler)
        handler.close()


def main(out_dir, notebooks):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    logging.getLogger("papermill").setLevel(logging.INFO)
    for notebook in map(Path, notebooks):
        say(f"running {notebook.name}")
        begin = time.monotonic()
        try:
            run(notebook, out_dir)
        except Exception as err:  # noqa: BLE001 - a cell's error, or the kernel's, is reported as it is
            print("\n".join(str(err).splitlines()[-30:]), file=sys.stderr)
            say(f"{notebook.name} failed: see {out_dir / notebook.name}")
            return 1
        say(f"  done in {time.monotonic() - begin:.0f} s -> {out_dir / notebook.name}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2:]))
