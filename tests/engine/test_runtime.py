"""The process settings behind the engine's speed: malloc thresholds, denormal flushing."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest
import torch

from dlp.engine.runtime import denormals_flushed, tune_allocator

DENORMAL = 1e-40  # below float32's smallest normal number (1.2e-38)

glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="malloc thresholds are glibc's",
)


def _survives(value: float) -> bool:
    return bool(torch.tensor([value], dtype=torch.float32)[0] * 1.0 != 0)


def test_denormals_are_flushed_only_inside_the_block() -> None:
    assert _survives(DENORMAL)
    with denormals_flushed():
        assert not _survives(DENORMAL)
    assert _survives(DENORMAL)


def test_a_failing_block_still_restores_denormals() -> None:
    with pytest.raises(RuntimeError), denormals_flushed():
        raise RuntimeError("boom")
    assert _survives(DENORMAL)


def test_solver_steps_leave_the_process_with_denormals(tmp_path) -> None:
    """Flushing process-wide sent SciPy's cKDTree (Hausdorff) into endless recursion."""
    from dlp.engine.solver.solver import Solver
    from dlp.net.prototxt import parse_solver_text

    net = """
    layer { name: "x" type: "DummyData" top: "x" top: "t" dummy_data_param {
      shape { dim: 2 dim: 3 } shape { dim: 2 dim: 1 } data_filler { type: "gaussian" } } }
    layer { name: "fc" type: "InnerProduct" bottom: "x" top: "y"
      inner_product_param { num_output: 1 weight_filler { type: "gaussian" std: 0.1 } } }
    layer { name: "loss" type: "EuclideanLoss" bottom: "y" bottom: "t" top: "loss" }
    """
    text = f'net_param {{ {net} }} base_lr: 0.1 lr_policy: "fixed" max_iter: 3 ' \
           f'snapshot_prefix: "{tmp_path}/s" random_seed: 1'
    solver = Solver(parse_solver_text(text, "solver.prototxt"), solver_dir=tmp_path)
    solver.step(3)
    assert solver.iter == 3
    assert _survives(DENORMAL)


@glibc
def test_tuned_allocator_keeps_a_training_loop_from_refaulting_its_memory() -> None:
    # A fresh process: the thresholds are process-wide and glibc's self-adjusting
    # defaults depend on everything allocated before.
    script = textwrap.dedent("""
        import resource, torch
        from dlp.engine.runtime import tune_allocator
        assert tune_allocator() and tune_allocator()
        torch.set_num_threads(1)
        model = torch.nn.Sequential(
            torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Upsample(scale_factor=2), torch.nn.Conv2d(32, 2, 1))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        data = torch.rand(4, 1, 96, 96)
        def iteration():
            optimizer.zero_grad(set_to_none=True)
            model(data).square().mean().backward()
            optimizer.step()
        for _ in range(5):
            iteration()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(20):
            iteration()
        print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    # Untuned, this loop re-faulted its activations: ~2,000 faults per iteration; tuned
    # ~60 remain (Python maps its small-object arenas itself, outside malloc).
    assert float(out) < 300


@glibc
def test_tune_allocator_reports_success_once_per_process() -> None:
    assert tune_allocator() is True
    assert tune_allocator() is True


@glibc
def test_free_memory_goes_back_to_the_system_when_a_job_ends() -> None:
    script = textwrap.dedent("""
        import torch
        from dlp.engine.runtime import release_free_memory, tune_allocator
        def rss_mb():
            return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
        tune_allocator()
        base = rss_mb()
        blocks = [torch.ones(64, 1024, 1024) for _ in range(3)]  # 3 x 256 MB, heap-served
        pin = torch.ones(256, 1024)  # allocated last: the heap top stays in use
        peak = rss_mb()
        del blocks
        kept = rss_mb()
        release_free_memory()
        print(base, peak, kept, rss_mb())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    base, peak, kept, released = map(float, out.split())
    assert peak - base > 700
    assert kept - base > 700  # freed, but kept in the heap for the next forward pass
    assert released - base < 100  # handed back when the job ends
