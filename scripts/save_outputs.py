"""Execute notebooks and save their outputs, except the outputs of cells that trained on the sample.

Saved outputs are what readers see on the site. Tables, figures and counts computed from the real data
belong there. A training log from the sample does not: its accuracy would be taken for a result. Cells
that train carry the directive `#| trains`; after execution their outputs are cleared, unless the cell
is also flagged `#| slow`, `#| full` or `#| gpu`, which run on the full data when asked to, so that their
outputs are real results.

usage: python scripts/save_outputs.py [NOTEBOOK ...] [--flags "slow"] [--no-run]
"""
import argparse, re, subprocess, sys
from pathlib import Path
import nbformat

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TRAINS = re.compile(r'^#\|\s*trains\s*$', re.M)
FULL_DATA_FLAGS = re.compile(r'^#\|\s*(slow|full|gpu)\s*$', re.M)

def trains_on_sample(source:str) -> bool:
    "Whether a cell with `source` trains, and runs on the sample when the notebook is tested"
    return bool(TRAINS.search(source)) and not FULL_DATA_FLAGS.search(source)

def as_terminal_shows(text:str) -> str:
    "Keep, on each line, only what follows its last carriage return: console progress bars collapse to their end"
    return '\n'.join(line.rsplit('\r', 1)[-1] for line in text.split('\n'))

def clear_sample_training(nb_path:Path) -> int:
    "Clear outputs of cells of `nb_path` that train on the sample, collapse progress bars; return how many were cleared"
    nb = nbformat.read(nb_path, as_version=4)
    n = 0
    for c in nb.cells:
        if c.cell_type != 'code': continue
        if trains_on_sample(c.source) and c.outputs: c.outputs = []; n += 1
        for o in c.outputs:
            if o.output_type == 'stream': o.text = as_terminal_shows(o.text)
    nbformat.write(nb, nb_path)
    return n

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('notebooks', nargs='*', help='notebooks to run (default: all in nbs/)')
    ap.add_argument('--flags', default='', help='nbdev-test flags to run as well, e.g. "slow"')
    ap.add_argument('--no-run', action='store_true', help='only clean the saved outputs, without executing')
    ap.add_argument('--timeout', type=int, default=600, help='seconds each cell may take (default: 600)')
    args = ap.parse_args()
    nbs = [Path(n).resolve() for n in args.notebooks] or sorted(p for p in (ROOT/'nbs').glob('*.ipynb') if not p.name.startswith('_'))
    for nb in nbs:
        cmd = [BIN/'nbdev-test', str(nb), '--save', '--cell-timeout', str(args.timeout)] + (['--flags', args.flags] if args.flags else [])
        if not args.no_run:
            print(f'running {nb.name}', flush=True)
            subprocess.run(cmd, cwd=ROOT, check=True)
        print(f'  cleared {clear_sample_training(nb)} sample-training output(s)')
    subprocess.run([BIN/'nbdev-clean'], cwd=ROOT, check=True)
