"""The test harness itself (tests/cli_runner.py): a child process it starts never hangs because of what this process ran
before, never outlives its test, and sees what a fresh process would: its folder, environment, thread count, Ctrl-C."""
import os, signal, time
from pathlib import Path
import pytest, torch
import cli_runner

PARALLEL = 'import torch\ntorch.set_num_threads(2)\nx = torch.randn(2000, 2000)\nprint("product", tuple((x @ x).shape))\n'

def test_a_child_runs_torch_in_parallel_after_this_process_did(runner):
    """This process runs a parallel torch op with 2 threads; then a child runs one with 2 threads too. A child forked from this
    process hangs there (a fork copies only the calling thread, and libgomp's copy of its team waits at the barrier for ever)"""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        x = torch.randn(2000, 2000); (x @ x).sum()
        r = runner.python(PARALLEL, timeout=60)
    finally: torch.set_num_threads(before)
    assert r.rc == 0 and 'product (2000, 2000)' in r.stdout, r

def threads_of(pid:int) -> int: return int(Path(f'/proc/{pid}/status').read_text().split('Threads:')[1].split()[0])

def test_the_fork_server_has_imported_and_run_nothing_else(runner):
    "The server has one thread (no OpenMP team, no BLAS pool), and its children start with `PRELOAD` imported"
    r = runner.python("import sys; from cli_runner import PRELOAD; print('missing', [m for m in PRELOAD if m not in sys.modules])")
    assert r.rc == 0 and 'missing []' in r.stdout, r
    assert threads_of(cli_runner.server_pid()) == 1

THREADS = '''import os, torch
x = torch.randn(3000, 3000); (x @ x).sum(); torch.randn(10**7).exp().sum()
print('threads', torch.get_num_threads(), 'running', len(os.listdir('/proc/self/task')))
'''

@pytest.mark.parametrize('n', ['1', '2', '4', None])
def test_a_child_has_the_thread_count_its_environment_asks(n, runner):
    "OMP_NUM_THREADS (or MKL_NUM_THREADS) in the command's environment sets its torch threads, as in a fresh process, and its parallel ops use them"
    env = {k: v for k, v in runner.env.items() if k not in cli_runner.THREAD_VARS}
    if n: env['OMP_NUM_THREADS'] = n
    want = int(n) if n else cli_runner._default_threads()
    r = cli_runner.Runner(runner.root, env).python(THREADS, timeout=120)
    assert r.rc == 0, r
    got, running = map(int, r.stdout.split()[1::2])
    assert got == want and running >= want, r

def wait_for(p, text:str, seconds:float=60):
    t0 = time.monotonic()
    while text not in p.stdout_so_far() and not p.done() and time.monotonic() - t0 < seconds: time.sleep(0.01)
    assert text in p.stdout_so_far(), p.wait(1) if p.done() else f'no {text!r} after {seconds} s'

def test_folder_environment_streams_and_exit_code(runner, tmp_path):
    code = "import os, sys; print(os.getcwd(), os.environ['SEEN']); print('to stderr', file=sys.stderr); sys.exit(3)"
    r = runner.python(code, env={'SEEN': 'yes'}, cwd=tmp_path)
    assert (r.rc, r.stdout, r.stderr) == (3, f'{tmp_path} yes\n', 'to stderr\n'), r

SLEEPER = "import subprocess, time\np = subprocess.Popen(['sleep', '600'])\nprint('ready', p.pid, flush=True)\ntime.sleep(600)\n"

def test_ctrl_c_and_sigkill(runner):
    "Ctrl-C raises KeyboardInterrupt in the command, though the fork server ignores SIGINT (as pytest-xdist's workers do); SIGKILL ends it with -9"
    p = runner.start([], code=SLEEPER); wait_for(p, 'ready'); p.interrupt(); r = p.wait(30)
    assert r.rc == 1 and 'KeyboardInterrupt' in r.stderr, r
    p = runner.start([], code=SLEEPER); wait_for(p, 'ready'); p.kill()
    assert p.wait(30).rc == -signal.SIGKILL

def alive(pid:int) -> bool:
    "Whether process `pid` exists and is not a zombie"
    try: return Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0] != 'Z'
    except FileNotFoundError: return False

def gone(*pids, seconds:float=10) -> bool:
    t0 = time.monotonic()
    while any(map(alive, pids)) and time.monotonic() - t0 < seconds: time.sleep(0.05)
    return not any(map(alive, pids))

def test_a_wait_that_times_out_kills_the_command_and_what_it_started(runner):
    p = runner.start([], code=SLEEPER); wait_for(p, 'ready')
    grandchild = int(p.stdout_so_far().split()[1])
    with pytest.raises(AssertionError, match='still running after 1 s'): p.wait(1)
    assert gone(p.pid, grandchild)

def test_close_kills_what_still_runs(runner, tmp_path):
    r = cli_runner.Runner(tmp_path, runner.env)
    p = r.start([], code=SLEEPER); wait_for(p, 'ready')
    grandchild = int(p.stdout_so_far().split()[1])
    r.close()
    assert p.done() and gone(p.pid, grandchild)

WORKER_PARENT = '''import os, torch
class Parent(torch.utils.data.Dataset):
    def __len__(self): return 1
    def __getitem__(self, i): return os.getppid()
print('pid', os.getpid(), 'worker of', int(next(iter(torch.utils.data.DataLoader(Parent(), num_workers=1)))[0]))
'''

def test_dataloader_workers_are_children_of_the_command(runner):
    "A command's DataLoader workers start as in a fresh process, as its own children (tests find them so), not through the fork server"
    r = runner.python(WORKER_PARENT)
    assert r.rc == 0, r
    pid, parent = map(int, r.stdout.split()[1::3])
    assert pid == parent, r

def test_every_torchrun_launch_takes_a_port_of_its_own():
    """Torchrun launches run side by side on the two pytest workers: each launch the course, the tests and the scripts make
    takes a free port (`--standalone`), not torchrun's default one, where a second launch would wait for ever"""
    from conftest import ROOT, scope_of
    from resnet_course.scaling import course_command
    assert '--standalone' in course_command(['reproduce'], processes=2)
    lines = [(f.name, l.strip()) for f in [*(ROOT/'tests').glob('*.py'), *(ROOT/'scripts').glob('*.py')]
             if f.name != Path(__file__).name for l in f.read_text().splitlines() if "'--nproc_per_node'" in l]
    assert lines and all("'--standalone'" in l for _, l in lines), [x for x in lines if "'--standalone'" not in x[1]]
    assert scope_of('tests/test_site.py::test_pages_in_browser') == 'tests/test_site.py'
    assert scope_of('tests/test_gpu_smoke.py::test_gpu_smoke_passes_here') == 'tests/test_gpu_smoke.py::test_gpu_smoke_passes_here'
