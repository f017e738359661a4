"""dlp.memory: glibc keeps freed memory for the next pass and gives it back after a job."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

from dlp.memory import tune_allocator

glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="malloc parameters are glibc's",
)


def test_tune_allocator_is_false_where_glibc_does_not_allocate() -> None:
    is_glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert tune_allocator() is is_glibc
    assert tune_allocator() is is_glibc  # once per process, then a no-op


@glibc
def test_tuned_allocator_keeps_a_training_loop_from_refaulting_its_memory() -> None:
    # A fresh process: the thresholds are process-wide and glibc's self-adjusting
    # defaults depend on everything allocated before.
    script = textwrap.dedent("""
        import resource, torch
        from dlp.memory import tune_allocator
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
def test_free_memory_goes_back_to_the_system_when_a_job_ends() -> None:
    script = textwrap.dedent("""
        import torch
        from dlp.memory import release_free_memory, tune_allocator
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


_SETUPS = {
    "tuned": "from dlp.memory import tune_allocator\nassert tune_allocator()",
    # DLP's entry point (python -m dlp, main.py): it tunes before anything else runs
    "cli": "import contextlib\nfrom dlp.cli import main\n"
           "with contextlib.suppress(SystemExit):\n    main(['--version'])",
    "untuned": "",
}


@glibc
@pytest.mark.parametrize("setup", list(_SETUPS))
def test_a_worker_threads_large_blocks_are_reused_not_faulted_in_again(setup) -> None:
    # A 100 MB block (a batch's conv output) allocated and freed by a thread other than
    # the main one: glibc maps it afresh each time unless every thread uses the main heap.
    # The setup comes first: importing torch, say, starts threads that take arenas.
    script = _SETUPS[setup] + textwrap.dedent("""
        import resource, threading
        import numpy as np
        core = getattr(np, "_core", None) or np.core
        core.multiarray._set_madvise_hugepage(False)  # huge pages would hide the faults
        faults = []
        def work():
            for i in range(5):
                before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                block = np.empty(25_000_000, np.float32)
                block[::1024] = 1.0  # touch every page
                del block
                faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        print(max(faults[1:]))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    faults = int(out.split()[-1])  # (the cli prints its version first)
    pages = 100_000_000 // 4096
    if setup != "untuned":
        assert faults < pages // 20
    else:  # what the tuning is for (glibc's arenas for other threads)
        assert faults > pages // 2
