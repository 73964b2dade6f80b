"""Run the whole test suite and print one closing line `N passed, N failed`.

Steps: nbdev-test over every notebook (in parallel workers), then pytest over tests/ (two workers, each test file on one worker,
so that the torchrun tests never share a port).
Each notebook counts as one test, each pytest test as one.
"""
import re, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

def run(cmd):
    "Run `cmd` in the project root, echoing its output; return (exit code, output)"
    print(f"\n$ {' '.join(map(str, cmd))}", flush=True)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = []
    for line in proc.stdout: print(line, end='', flush=True); out.append(line)
    return proc.wait(), ''.join(out)

def notebook_counts():
    "Run nbdev-test; count notebooks passed and failed"
    nbs = sorted(p.name for p in (ROOT/'nbs').glob('*.ipynb') if not p.name.startswith(('_', '.')))
    rc, out = run([BIN/'nbdev-test', '--n-workers', '2', '--timing'])
    failed = set(re.findall(r'^\t(\S+\.ipynb)$', out.split('Failed On The Following Notebooks')[-1], re.M)) if rc else set()
    if rc and not failed: failed = set(nbs)   # nbdev-test itself broke
    return len(nbs) - len(failed), len(failed)

def pytest_counts():
    "Run pytest; read its counts from the summary line"
    rc, out = run([BIN/'python', '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-n', '2', '--dist', 'loadfile', '--durations=12', 'tests'])
    found = lambda word: sum(int(n) for n in re.findall(rf'(\d+) {word}', out.strip().splitlines()[-1])) if out.strip() else 0
    passed, failed = found('passed'), found('failed') + found('error')
    if rc not in (0, 1) and not failed: failed = 1   # pytest could not run at all
    return passed, failed

if __name__ == '__main__':
    t0 = time.time()
    nb_pass, nb_fail = notebook_counts()
    py_pass, py_fail = pytest_counts()
    print(f"\nnotebooks: {nb_pass} passed, {nb_fail} failed; pytest: {py_pass} passed, {py_fail} failed; {time.time()-t0:.0f} s")
    print(f"{nb_pass + py_pass} passed, {nb_fail + py_fail} failed")
    sys.exit(1 if nb_fail + py_fail else 0)
