"""Run the whole test suite and print one closing line `N passed, N failed`.

Steps: nbdev-test over every notebook (in parallel workers), then pytest over tests/ (two workers; the tests of the files that share a
costly fixture stay on one worker, see conftest.scope_of, so that the fixture is built once).
Each notebook counts as one test, each pytest test as one.
"""
import os, re, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WORKERS = 2
# Each of the two workers (and each command a test runs) gets its share of the cores as torch threads, unless the caller set
# OMP_NUM_THREADS: on two cores, two workers with two threads each oversubscribe them, and the suite runs about 20% slower.
THREADS = os.environ.get('OMP_NUM_THREADS') or str(max(1, (os.cpu_count() or 1) // WORKERS))
ENV = {**os.environ, 'OMP_NUM_THREADS': THREADS, 'MKL_NUM_THREADS': THREADS}

def run(cmd):
    "Run `cmd` in the project root, echoing its output; return (exit code, output)"
    print(f"\n$ {' '.join(map(str, cmd))}", flush=True)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = []
    for line in proc.stdout: print(line, end='', flush=True); out.append(line)
    return proc.wait(), ''.join(out)

def notebook_counts():
    "Run nbdev-test; count notebooks passed and failed"
    nbs = sorted(p.name for p in (ROOT/'nbs').glob('*.ipynb') if not p.name.startswith(('_', '.')))
    rc, out = run([BIN/'nbdev-test', '--n-workers', str(WORKERS), '--timing'])
    failed = set(re.findall(r'^\t(\S+\.ipynb)$', out.split('Failed On The Following Notebooks')[-1], re.M)) if rc else set()
    if rc and not failed: failed = set(nbs)   # nbdev-test itself broke
    return len(nbs) - len(failed), len(failed)

def pytest_counts():
    "Run pytest; read its counts from the summary line"
    rc, out = run([BIN/'python', '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-n', str(WORKERS), '--dist', 'load', '--durations=15', 'tests'])
    found = lambda word: sum(int(n) for n in re.findall(rf'(\d+) {word}', out.strip().splitlines()[-1])) if out.strip() else 0
    passed, failed = found('passed'), found('failed') + found('error')
    if rc not in (0, 1) and not failed: failed = 1   # pytest could not run at all
    return passed, failed

if __name__ == '__main__':
    t0 = time.time()
    print(f'{WORKERS} workers, {THREADS} torch thread(s) each', flush=True)
    nb_pass, nb_fail = notebook_counts()
    py_pass, py_fail = pytest_counts()
    print(f"\nnotebooks: {nb_pass} passed, {nb_fail} failed; pytest: {py_pass} passed, {py_fail} failed; {time.time()-t0:.0f} s")
    print(f"{nb_pass + py_pass} passed, {nb_fail + py_fail} failed")
    sys.exit(1 if nb_fail + py_fail else 0)
