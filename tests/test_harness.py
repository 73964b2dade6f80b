"""The test harness itself (tests/cli_runner.py): a child process it starts never hangs because of what this process ran
before, and never outlives the test that started it."""
import os
import torch
from cli_runner import Runner

PARALLEL = 'import torch\ntorch.set_num_threads(2)\nx = torch.randn(2000, 2000)\nprint("sum", float((x @ x).sum() * 0))\n'

def test_a_child_runs_torch_in_parallel_after_this_process_did(tmp_path):
    """This process runs a parallel torch op with 2 threads; then a child runs one with 2 threads too. A child forked from this
    process hangs there (libgomp's team of threads is not copied by a fork, and the child waits at its barrier for ever)"""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        x = torch.randn(2000, 2000); (x @ x).sum()
        r = Runner(tmp_path, dict(os.environ)).python(PARALLEL, timeout=60)
    finally: torch.set_num_threads(before)
    assert r.rc == 0 and 'sum 0.0' in r.stdout, r
