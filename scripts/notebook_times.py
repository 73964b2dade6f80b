"""Time each notebook as `nbdev-test` runs it on the sample, and keep the times as a record: nbs/results/cpu/notebook_times.json.

The home page's reading-order table prints its "running it" column from that record, with the machine, the date and how many
notebooks ran at once. Run it on a quiet machine (nothing else running), from the repository's root:

    .venv/bin/python scripts/notebook_times.py            # one notebook at a time: about 4 minutes on two cores
"""
import argparse, json, os, re, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT/'nbs'/'results'/'cpu'/'notebook_times.json'

def parse_times(out:str) -> dict:
    "notebook name -> whole seconds, from the lines `NAME.ipynb: N secs` that `nbdev-test --timing` prints"
    return {m[1]: int(m[2]) for m in re.finditer(r'^(\S+\.ipynb): (\d+) secs$', out, re.M)}

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--workers', type=int, default=1, help='notebooks run at once (default 1: each timed alone)')
    ap.add_argument('--out', default=str(RECORD), help=f'record to write (default {RECORD.relative_to(ROOT)})')
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from resnet_course.machine import provenance, MachineLoad
    from resnet_course.files import signed
    threads = os.environ.get('OMP_NUM_THREADS') or str(max(1, (os.cpu_count() or 1) // args.workers))
    env = {**os.environ, 'OMP_NUM_THREADS': threads, 'MKL_NUM_THREADS': threads}
    n = len([p for p in (ROOT/'nbs').glob('*.ipynb') if not p.name.startswith(('_', '.'))])
    print(f'Timing {n} notebooks with nbdev-test, {args.workers} at a time, {threads} torch thread(s) each: '
          f'about {4 if args.workers == 1 else 2} minutes on two cores.', flush=True)
    t0 = time.time()
    with MachineLoad() as load:
        r = subprocess.run([str(Path(sys.executable).parent/'nbdev-test'), '--n-workers', str(args.workers), '--timing'], cwd=ROOT, env=env,
                           capture_output=True, text=True)
    times = parse_times(r.stdout)
    if r.returncode or len(times) != n:
        raise SystemExit(f'nbdev-test failed or timed {len(times)} of {n} notebooks; nothing written:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}')
    rec = {'what': 'seconds for nbdev-test to run each whole notebook (training cells on the sample)', **provenance('cpu'),
           'notebooks at once': args.workers, 'torch threads each': int(threads), 'load': load.facts, 'wall s': round(time.time() - t0),
           'seconds': dict(sorted(times.items()))}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(signed(rec), indent=1) + '\n')
    others = f"other processes used {rec['load']['others %']}% of the cores" if rec['load'] else 'the load of other processes is not known here'
    print(f"wrote {args.out}: {len(times)} notebooks, {sum(times.values())} s in all; {others}")

if __name__ == '__main__': main()
