"""Run every benchmark: ``python -m bench [NAME ...]``.

Each ``bench/bench_*.py`` defines ``run() -> list[Figure]``; this prints one line
per figure.  Pass names (e.g. ``engine``) to run only ``bench_engine.py``.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here.parent))
    from dlp.memory import tune_allocator

    tune_allocator()  # as DLP's own entry points do, before any thread allocates
    names = sorted(p.stem for p in here.glob("bench_*.py"))
    if argv:
        names = [n for n in names if n.removeprefix("bench_") in argv or n in argv]
    failed = 0
    for name in names:
        start = time.perf_counter()
        module = importlib.import_module(f"bench.{name}")
        print(f"# {name}", flush=True)
        try:
            figures = module.run()
        except Exception as exc:  # a broken benchmark must not hide the others
            failed += 1
            print(f"{name}: FAILED: {type(exc).__name__}: {exc}", flush=True)
            continue
        for figure in figures:
            print(figure.line(), flush=True)
        print(f"# {name} took {time.perf_counter() - start:.1f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
