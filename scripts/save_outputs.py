"""Execute notebooks and save their outputs, except the outputs of cells that trained on the sample.

Saved outputs are what readers see on the site. Tables, figures and counts computed from the real data
belong there. A training log from the sample does not: its accuracy would be taken for a result. Cells
that train carry the directive `#| trains`; after execution their outputs are cleared, unless the cell
is also flagged `#| slow`, `#| full` or `#| gpu`, which run on the full data when asked to, so that their
outputs are real results.

A display cell (one that prints, displays or plots, or ends in an expression; see `is_display_cell`) must keep an
output: the script ends by listing any that has none, and exits 1.

usage: python scripts/save_outputs.py [NOTEBOOK ...] [--flags "slow"] [--no-run]
       make outputs        every notebook
"""
import argparse, ast, re, subprocess, sys
from pathlib import Path
import nbformat

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TRAINS = re.compile(r'^#\|\s*trains\s*$', re.M)
FULL_DATA_FLAGS = re.compile(r'^#\|\s*(slow|full|gpu)\s*$', re.M)

def trains_on_sample(source:str) -> bool:
    "Whether a cell with `source` trains, and runs on the sample when the notebook is tested"
    return bool(TRAINS.search(source)) and not FULL_DATA_FLAGS.search(source)

DIRECTIVE = re.compile(r'^#\|\s*([\w-]+)', re.M)
# Cells that show nothing by design (exported code, hidden set-up), or whose outputs are not kept here: `gpu` and `full` cells
# need a GPU (their pages show the pending table and the command that fills it), `slow` cells run for minutes, and cells
# that train on the sample have their outputs cleared.
NOT_SHOWN = {'export', 'exporti', 'exports', 'hide', 'gpu', 'full', 'slow', 'trains'}
SHOWING_CALL = re.compile(r'^(print|display|show_doc|show_\w+|plot_\w+|Markdown|HTML|show|plot|imshow|hist|bar|barh|scatter|matshow)$')
SILENT_CALL = re.compile(r'^(test_\w+|assert\w*|nbdev_export|close|savefig|seed|set_seed|manual_seed|sleep|unlink|rmtree|remove|mkdir|touch|write_text|write_bytes|append|extend|update|clear)$')   # calls that return None

def _name(call:ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else getattr(f, 'id', '')

def _calls_outside_defs(node:ast.AST):
    "The calls in `node` that run when the cell runs: those inside a function, class or lambda body are left out"
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)): continue
        if isinstance(child, ast.Call): yield child
        yield from _calls_outside_defs(child)

def is_display_cell(source:str) -> bool:
    "Whether a code cell is meant to show something a reader sees: it prints, displays or plots, or ends in an expression"
    if set(DIRECTIVE.findall(source)) & NOT_SHOWN: return False
    code = '\n'.join(l for l in source.splitlines() if not l.lstrip().startswith(('%', '!', '#|')))
    try: tree = ast.parse(code)
    except SyntaxError: return False
    if not tree.body: return False
    last = tree.body[-1]
    if isinstance(last, ast.Expr) and not code.rstrip().endswith(';') and not isinstance(last.value, ast.Constant):
        if not (isinstance(last.value, ast.Call) and SILENT_CALL.match(_name(last.value))): return True
    return any(SHOWING_CALL.match(_name(c)) for c in _calls_outside_defs(tree))

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

def missing_outputs(nb_path:Path) -> list:
    "The display cells of `nb_path` that keep no output, as (index, first line) pairs"
    nb = nbformat.read(nb_path, as_version=4)
    return [(i, c.source.strip().splitlines()[0]) for i, c in enumerate(nb.cells)
            if c.cell_type == 'code' and is_display_cell(c.source) and not c.outputs]

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('notebooks', nargs='*', help='notebooks to run (default: all in nbs/)')
    ap.add_argument('--flags', default='', help='nbdev-test flags to run as well, e.g. "slow"')
    ap.add_argument('--no-run', action='store_true', help='only clean the saved outputs, without executing')
    ap.add_argument('--timeout', type=int, default=600, help='seconds each cell may take (default: 600)')
    ap.add_argument('--workers', type=int, default=2, help='notebooks run at once when all are run (default: 2)')
    args = ap.parse_args()
    nbs = [Path(n).resolve() for n in args.notebooks] or sorted(p for p in (ROOT/'nbs').glob('*.ipynb') if not p.name.startswith('_'))
    common = ['--save', '--cell-timeout', str(args.timeout)] + (['--flags', args.flags] if args.flags else [])
    failed = []
    if not args.no_run:
        if args.notebooks:
            for nb in nbs:
                print(f'running {nb.name}', flush=True)
                if subprocess.run([BIN/'nbdev-test', str(nb), *common], cwd=ROOT).returncode: failed.append(nb.name)
        else:   # every notebook, in parallel workers; nbdev-test saves each one that succeeds
            print(f'running all {len(nbs)} notebooks', flush=True)
            subprocess.run([BIN/'nbdev-test', '--n-workers', str(args.workers), *common], cwd=ROOT)
    for nb in nbs: print(f'{nb.name}: cleared {clear_sample_training(nb)} sample-training output(s)')
    subprocess.run([BIN/'nbdev-clean'], cwd=ROOT, check=True)
    missing = {nb.name: m for nb in nbs if (m := missing_outputs(nb))}
    for name, cells in missing.items():
        for i, line in cells: print(f'{name}: cell {i} shows nothing: {line[:80]}')
    if failed: print(f"failed, outputs not saved: {', '.join(failed)}")
    sys.exit(1 if failed or missing else 0)
