"""Execute the notebooks in ``notebooks/`` (or those given) and fail on the first error.

The notebooks run on a kernel of this Python interpreter (so in CI, the project's
virtual environment), in a temporary working folder; the files in the repository
are never modified. ``OMIO_NOTEBOOK_GB`` sets the size of the large-file notebook.

Usage: ``python scripts/run_notebooks.py [NOTEBOOK...]``
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from ipykernel.kernelspec import write_kernel_spec
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
KERNEL = "omio-notebooks"


def run(path: Path, workdir: Path) -> float:
    """Execute one notebook in ``workdir``; return the seconds it took."""
    book = nbformat.read(path, as_version=4)
    client = NotebookClient(book, kernel_name=KERNEL, timeout=900, resources={"metadata": {"path": str(workdir)}})
    started = time.perf_counter()
    client.execute()
    return time.perf_counter() - started


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted(NOTEBOOKS.glob("*.ipynb"))
    with tempfile.TemporaryDirectory(prefix="omio-notebooks-") as tmp:
        # a kernel spec for this interpreter, found first through JUPYTER_PATH; kernel log: errors only
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}", "--log-level=ERROR"]
        write_kernel_spec(Path(tmp, "kernels", KERNEL), overrides={"display_name": KERNEL, "argv": argv})
        os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [tmp, os.environ.get("JUPYTER_PATH")]))
        for path in paths:
            try:
                seconds = run(path, Path(tmp))
            except CellExecutionError as exc:
                print(f"{path.name}: FAILED\n{exc}", file=sys.stderr)
                return 1
            print(f"{path.name}: ok in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
