"""Execute notebooks and save their outputs, except the outputs of cells that trained on the sample.

Saved outputs are what readers see on the site. Tables, figures and counts computed from the real data
belong there. A training log from the sample does not: its accuracy would be taken for a result. Cells
that train carry the directive `#| trains`; after execution their outputs are cleared (one meant to show something keeps
a one-line note in their place, saying why: `NOT_KEPT`), unless the cell is also flagged `#| slow`, `#| full` or `#| gpu`,
which run on the full data when asked to, so that their outputs are real results.

A display cell (one that prints, displays or plots, or ends in an expression; see `is_display_cell`) must keep an
output: the script ends by listing any that has none, and exits 1.

Each notebook runs in a child process that records which files under nbs/results it reads (opens, lists, or looks
for and does not find). After a notebook's outputs are saved, nbs/results/outputs.json holds, for that notebook and
the flags it ran with, a digest of each of those files (sha256), folders (their listing) and missing files. `--stale`
picks the notebooks whose outputs may be stale: a record they read has changed since, or appeared, or their reads
were never recorded, or one of their saved outputs no longer shows what its record gives (scripts/record_outputs.py
replays those cells); it reruns just those. tests/test_saved_outputs.py fails while any is stale.

usage: python scripts/save_outputs.py [NOTEBOOK ...] [--flags "slow"] [--no-run]
       python scripts/save_outputs.py --stale [--list]   rerun (or only list) the pages whose records changed
       make outputs        every notebook
       make outputs-stale  the stale ones
"""
import argparse, ast, hashlib, json, os, re, subprocess, sys, tempfile
from concurrent.futures import ThreadPoolExecutor
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
SHOWING_CALL = re.compile(r'^(print|display|show_doc|show_\w+|plot_\w+|Markdown|HTML|show|plot|imshow|hist|bar|barh|scatter|matshow|fit_resumable)$')   # fit_resumable prints its table of epochs
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

NOT_KEPT = ("(This cell's output is not kept on this page: the pages are run on the sample, a few images per class, and a sample's "
            "numbers are not results. Run the cell to see its output.)\n")   # what a reader sees in its place

def kept_in_place_of(source:str) -> list:
    "The outputs a cell that trains on the sample keeps: the note above where it would show something, else none"
    return [nbformat.v4.new_output('stream', name='stdout', text=NOT_KEPT)] if is_display_cell(TRAINS.sub('', source)) else []

def clear_sample_training(nb_path:Path) -> int:
    "Replace the outputs of cells of `nb_path` that train on the sample (`kept_in_place_of`), collapse progress bars; return how many were replaced"
    nb = nbformat.read(nb_path, as_version=4)
    n = 0
    for c in nb.cells:
        if c.cell_type != 'code': continue
        if trains_on_sample(c.source) and c.outputs != (kept := kept_in_place_of(c.source)): c.outputs = kept; n += 1
        for o in c.outputs:
            if o.output_type == 'stream': o.text = as_terminal_shows(o.text)
    nbformat.write(nb, nb_path)
    return n

def missing_outputs(nb_path:Path) -> list:
    "The display cells of `nb_path` that keep no output, as (index, first line) pairs"
    nb = nbformat.read(nb_path, as_version=4)
    return [(i, c.source.strip().splitlines()[0]) for i, c in enumerate(nb.cells)
            if c.cell_type == 'code' and is_display_cell(c.source) and not c.outputs]

# ---------------------------------------------------------------------------------------------------------------------
# Which records a notebook reads, and whether they changed since its outputs were saved

MANIFEST_NAME = 'outputs.json'

def results_dir() -> Path:
    "The saved records the notebooks read: $RESNET_COURSE_RESULTS if set (as results_root() reads it), else nbs/results"
    return Path(os.environ.get('RESNET_COURSE_RESULTS') or ROOT/'nbs'/'results').absolute()

def manifest_path() -> Path: return results_dir()/MANIFEST_NAME

def _listed(name:str) -> bool:
    "Whether a folder's listing counts `name`: not hidden or temporary files, nor the manifest itself"
    return not name.startswith('.') and name != MANIFEST_NAME

def _holds_files(p:Path) -> bool:
    "Whether `p` is a file or a folder with a file somewhere in it: git keeps no empty folder, so a clone's listing has none"
    return p.is_file() or (p.is_dir() and any(q.is_file() for q in p.rglob('*')))

def digest(path:Path) -> str:
    "What a notebook saw of `path`: a file's sha256, a folder's listing's sha256, or 'absent'"
    path = Path(path)
    if path.is_file(): return 'sha256:' + hashlib.sha256(path.read_bytes()).hexdigest()
    if path.is_dir(): return 'listing:' + hashlib.sha256('\n'.join(sorted(p.name for p in path.iterdir() if _listed(p.name) and _holds_files(p))).encode()).hexdigest()
    return 'absent'

def record_reads(results:Path, found:dict):
    """From now on, note in `found` ('files', 'dirs', 'absent': sets of absolute paths) every file under `results` this
    process opens to read, every folder it lists, and every path it looks for there and does not find"""
    roots = {str(Path(results).absolute()), str(Path(results).resolve())}
    def under(p):
        if isinstance(p, int) or p is None: return None
        p = os.path.abspath(os.fsdecode(p))
        return p if any(p == r or p.startswith(r + os.sep) for r in roots) else None
    def hook(event, args):
        if event == 'open':
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            if isinstance(mode, str) and any(c in mode for c in 'wax'): return
            if mode is None and isinstance(flags, int) and flags & (os.O_WRONLY | os.O_CREAT): return
            if (p := under(path)): found['files'].add(p)
        elif event in ('os.listdir', 'os.scandir'):
            if (p := under(args[0] if args and args[0] is not None else '.')): found['dirs'].add(p)
    sys.addaudithook(hook)
    _stat = os.stat
    def stat(path, *a, **k):   # exists(), is_file(), is_dir() raise no audit event: a path looked for and missing is noted here
        try: return _stat(path, *a, **k)
        except FileNotFoundError:
            if (p := under(path)): found['absent'].add(p)
            raise
    os.stat = stat

def reads_entry(found:dict, results:Path=None) -> dict:
    "{path relative to `results`: digest} for what a run noted; the manifest's entry for one notebook and flags"
    results = Path(results or results_dir()).absolute()
    paths = {Path(p) for kind in ('files', 'dirs', 'absent') for p in found.get(kind, ())}
    rel = lambda p: p.absolute().relative_to(results).as_posix() if p.absolute() != results else '.'
    out = {}
    for p in sorted(paths):
        try: key = rel(p)
        except ValueError: key = rel(p.resolve())
        if key == MANIFEST_NAME or not all(_listed(part) for part in Path(key).parts if part != '.'): continue
        out[key] = digest(results/key)
    return out

def load_manifest(path:Path=None) -> dict:
    path = path or manifest_path()
    if not path.exists(): return {}
    try: return json.loads(path.read_text())
    except json.JSONDecodeError as e: sys.exit(f'{path} is not valid JSON ({e}): restore it with git, or delete it and run make outputs')

def save_manifest(m:dict, path:Path=None):
    "Write the manifest whole or not at all"
    path = path or manifest_path()
    tmp = path.with_name(f'.{path.name}.tmp')
    tmp.write_text(json.dumps(m, indent=1, sort_keys=True) + '\n'); os.replace(tmp, path)

def flags_key(flags:str) -> str: return ' '.join(sorted(flags.split()))

def changed_records(m:dict=None, results:Path=None, notebooks:list=None) -> dict:
    """{notebook: [(flags, path, 'changed'|'appeared'|'gone')]} for every record a notebook read, when its outputs were
    saved, that differs now; notebooks with no entry map to [('', None, 'never recorded')]"""
    m = load_manifest() if m is None else m
    results, out = Path(results or results_dir()), {}
    for nb in notebooks if notebooks is not None else sorted(m):
        if nb not in m: out[nb] = [('', None, 'never recorded')]; continue
        for flags, entry in sorted(m[nb].items()):
            for path, was in sorted(entry.items()):
                now = digest(results/path)
                if now != was: out.setdefault(nb, []).append((flags, path, 'appeared' if was == 'absent' else 'gone' if now == 'absent' else 'changed'))
    return out

# ---------------------------------------------------------------------------------------------------------------------
# Running notebooks

def run_child(nb:Path, flags:str, timeout:int, reads_to:Path) -> int:
    "In this process: record reads, execute `nb` with nbdev as nbdev-test does, save its outputs if every cell passed"
    found = {'files': set(), 'dirs': set(), 'absent': set()}
    record_reads(results_dir(), found)
    from nbdev.config import get_config
    from nbdev.test import test_nb
    from fastcore.xtras import working_directory
    cfg = get_config(nb.parent)
    skip = cfg.tst_flags.split() if isinstance(cfg.tst_flags, str) else list(cfg.tst_flags)
    with working_directory(cfg.nbs_path):
        ok, _ = test_nb(nb, skip_flags=skip, force_flags=flags.split(), basepath=cfg.config_path, save=True, cell_timeout=timeout or None)
    reads_to.write_text(json.dumps({k: sorted(v) for k, v in found.items()}))
    return 0 if ok else 1

def run_notebook(nb:Path, flags:str='', timeout:int=600) -> tuple:
    "Run `nb` in a child process that saves its outputs on success; return (succeeded, its manifest entry)"
    with tempfile.TemporaryDirectory() as tmp:
        reads = Path(tmp)/'reads.json'
        rc = subprocess.run([sys.executable, __file__, str(nb), '--flags', flags, '--timeout', str(timeout), '--child-reads', str(reads)], cwd=ROOT).returncode
        return rc == 0 and reads.exists(), reads_entry(json.loads(reads.read_text())) if reads.exists() else {}

def run_all(nbs:list, flags:str, timeout:int, workers:int) -> list:
    "Run `nbs`, `workers` at a time; record each success's reads in the manifest; return the names that failed"
    def one(nb):
        print(f'running {nb.name}', flush=True)
        return nb, *run_notebook(nb, flags, timeout)
    failed, m = [], load_manifest()
    with ThreadPoolExecutor(max(1, workers)) as ex:
        for nb, ok, entry in ex.map(one, nbs):
            if not ok: failed.append(nb.name); continue
            m.setdefault(nb.name, {})[flags_key(flags)] = entry
            if flags_key(flags): m[nb.name][''] = entry      # a flagged run also ran, and read for, every unflagged cell
            save_manifest(m)
    return failed

def stale_notebooks(notebooks:list=None, replay:bool=True) -> dict:
    "{notebook: (flags to rerun it with, [reasons])} for the pages whose saved outputs may be stale"
    names = notebooks or sorted(p.name for p in (ROOT/'nbs').glob('*.ipynb') if not p.name.startswith('_'))
    out = {}
    for nb, why in changed_records(notebooks=names).items():
        flags = ' '.join(sorted({f for fl, _, _ in why for f in fl.split()}))
        out[nb] = (flags, [f'{p} {what}' + (f' (read with --flags "{fl}")' if fl else '') if p else f'its reads were {what}' for fl, p, what in why])
    if replay:
        from record_outputs import stale_cells
        for rc, line in stale_cells(results_dir(), notebooks=names):
            out.setdefault(rc.notebook, ('', []))[1].append(f'cell {rc.cell} ' + line.split(f'cell {rc.cell} ', 1)[1].split(' Rerun the page')[0].rstrip('.'))
    return out

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('notebooks', nargs='*', help='notebooks to run (default: all in nbs/)')
    ap.add_argument('--flags', default='', help='nbdev-test flags to run as well, e.g. "slow"')
    ap.add_argument('--no-run', action='store_true', help='only clean the saved outputs, without executing')
    ap.add_argument('--stale', action='store_true', help='run only the notebooks whose saved outputs may be stale')
    ap.add_argument('--list', action='store_true', help='with --stale: list them and why, and run nothing')
    ap.add_argument('--timeout', type=int, default=600, help='seconds each cell may take (default: 600)')
    ap.add_argument('--workers', type=int, default=2, help='notebooks run at once (default: 2)')
    ap.add_argument('--child-reads', help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_reads: sys.exit(run_child(Path(args.notebooks[0]).resolve(), args.flags, args.timeout, Path(args.child_reads)))
    nbs = [Path(n).resolve() for n in args.notebooks] or sorted(p for p in (ROOT/'nbs').glob('*.ipynb') if not p.name.startswith('_'))
    runs = [(nbs, args.flags)]
    if args.stale:
        sys.path.insert(0, str(Path(__file__).parent))
        stale = stale_notebooks([nb.name for nb in nbs] if args.notebooks else None)
        for nb, (flags, why) in stale.items(): print(f'{nb}' + (f' (--flags "{flags}")' if flags else '') + ': ' + '; '.join(why))
        if not stale: print('No saved output is stale.')
        if args.list or not stale: sys.exit(0)
        for nb, (flags, _) in stale.items():   # cells flagged slow, full or gpu run only when asked: they train for long, or need a GPU
            if (extra := set(flags.split()) - set(args.flags.split())):
                where = ' on a GPU machine' if extra & {'gpu', 'full'} else ''
                print(f'{nb}: cells flagged {" ".join(sorted(extra))} read a changed record; to refresh them{where}: python scripts/save_outputs.py nbs/{nb} --flags "{flags}"')
        nbs = [ROOT/'nbs'/nb for nb in stale]
        runs = [(nbs, args.flags)]
    failed = []
    if not args.no_run:
        for batch, flags in runs: failed += run_all(batch, flags, args.timeout, args.workers)
    for nb in nbs: print(f'{nb.name}: cleared {clear_sample_training(nb)} sample-training output(s)')
    subprocess.run([BIN/'nbdev-clean'], cwd=ROOT, check=True)
    missing = {nb.name: m for nb in nbs if (m := missing_outputs(nb))}
    for name, cells in missing.items():
        for i, line in cells: print(f'{name}: cell {i} shows nothing: {line[:80]}')
    if failed: print(f"failed, outputs not saved: {', '.join(failed)}")
    sys.exit(1 if failed or missing else 0)
