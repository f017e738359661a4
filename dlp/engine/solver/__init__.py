"""Training with Caffe's solver semantics: ``Solver``, update rules, lr policies, snapshots.

The command modules (``command_train`` …) are imported by ``python -m dlp`` without
torch, so the heavy names here are loaded on first use.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "Solver": "dlp.engine.solver.solver",
    "SolveResult": "dlp.engine.solver.solver",
    "TrainingDiverged": "dlp.engine.solver.solver",
    "LogWriter": "dlp.engine.solver.logwriter",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dlp.engine.solver' has no attribute {name!r}")
