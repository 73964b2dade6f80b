"""Run the whole test suite and print one closing line `N passed, N failed`.

Steps: nbdev-test over every notebook (one notebook at a time) and pytest over tests/ (two workers) run side by side: both
are bound by the two cores, and many tests wait on the processes they start, so together they leave fewer cores idle than
one after the other. The tests of the files that share a costly fixture stay on one pytest worker (see
conftest.SHARED_FIXTURE_FILES), so that it is built once and torchrun tests never share a port. Each notebook counts as one
test, each pytest test as one. nbdev-test's output is printed when it ends, pytest's as it goes.
"""
import os, re, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NB_WORKERS, TEST_WORKERS = 1, 2
# Each worker (and each command a test runs) gets one torch thread, unless the caller set OMP_NUM_THREADS: three workers
# with two threads each would oversubscribe two cores, and the suite runs slower.
THREADS = os.environ.get('OMP_NUM_THREADS') or str(max(1, (os.cpu_count() or 1) // TEST_WORKERS))
ENV = {**os.environ, 'OMP_NUM_THREADS': THREADS, 'MKL_NUM_THREADS': THREADS}

def start(cmd):
    "Start `cmd` in the project root, its output kept in a pipe"
    print(f"\n$ {' '.join(map(str, cmd))}", flush=True)
    return subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

def streamed(proc):
    "Echo `proc`'s output as it comes; return (exit code, output)"
    out = []
    for line in proc.stdout: print(line, end='', flush=True); out.append(line)
    return proc.wait(), ''.join(out)

def notebook_counts(rc:int, out:str):
    "Count the notebooks nbdev-test passed and failed, from its exit code and output"
    nbs = sorted(p.name for p in (ROOT/'nbs').glob('*.ipynb') if not p.name.startswith(('_', '.')))
    failed = set(re.findall(r'^\t(\S+\.ipynb)$', out.split('Failed On The Following Notebooks')[-1], re.M)) if rc else set()
    if rc and not failed: failed = set(nbs)   # nbdev-test itself broke
    return len(nbs) - len(failed), len(failed)

def pytest_counts(rc:int, out:str):
    "Read pytest's counts from its summary line"
    found = lambda word: sum(int(n) for n in re.findall(rf'(\d+) {word}', out.strip().splitlines()[-1])) if out.strip() else 0
    passed, failed = found('passed'), found('failed') + found('error')
    if rc not in (0, 1) and not failed: failed = 1   # pytest could not run at all
    return passed, failed

if __name__ == '__main__':
    t0 = time.time()
    print(f'nbdev-test ({NB_WORKERS} notebook at a time) beside pytest ({TEST_WORKERS} workers); {THREADS} torch thread(s) each', flush=True)
    notebooks = start([BIN/'nbdev-test', '--n-workers', str(NB_WORKERS), '--timing'])
    py_rc, py_out = streamed(start([BIN/'python', '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-n', str(TEST_WORKERS), '--dist', 'load',
                                    '--durations=12', 'tests']))
    nb_out = notebooks.communicate()[0]
    print('\n$ nbdev-test (it ran beside pytest)\n' + nb_out, flush=True)
    nb_pass, nb_fail = notebook_counts(notebooks.returncode, nb_out)
    py_pass, py_fail = pytest_counts(py_rc, py_out)
    print(f"\nnotebooks: {nb_pass} passed, {nb_fail} failed; pytest: {py_pass} passed, {py_fail} failed; {time.time()-t0:.0f} s")
    print(f"{nb_pass + py_pass} passed, {nb_fail + py_fail} failed")
    sys.exit(1 if nb_fail + py_fail else 0)
