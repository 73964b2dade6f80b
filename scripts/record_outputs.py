"""Saved outputs that show a record, replayed against the record as it is now.

A page's saved output goes stale when a record it shows changes after the page was run: the activations table of
31_figures kept showing an older activations.csv. Each entry of RECORD_CELLS names a code cell whose saved output shows
records from nbs/results (a table, or numbers printed from them), and the cells it needs before it. `replay` runs the
page's import cells, those cells and the cell itself, in this process, with `results_root()` pointing at the records: they
read files and build tables, they train nothing, so a replay takes well under a second once fastai is imported. `stale`
compares every number the replay shows with the numbers of the saved output, in order.

Every saved table output of every page is either in RECORD_CELLS or in LIVE_TABLES, which says why it shows no record
(computed from a model there and then, or measured live): tests/test_saved_outputs.py checks both.

usage: python scripts/record_outputs.py [NOTEBOOK ...]    replay each record cell; print the stale ones (exit 1 if any)
"""
from __future__ import annotations
import ast, contextlib, io, json, os, re, sys, warnings
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/'nbs'
sys.path.insert(0, str(Path(__file__).parent))
from prose_numbers import output_numbers

@dataclass(frozen=True)
class RecordCell:
    "A cell whose saved output shows records: `notebook`, its cell `cell`, run after the cells `after` (by id)"
    notebook: str
    cell: str
    after: tuple = ()
    shows: str = ''         # what it shows, for messages

RECORD_CELLS = [
    RecordCell('10_pooling.ipynb', 'b02c66ad', shows="the FCN's training record"),
    RecordCell('11_resblock.ipynb', '049e0e53', shows="the ResBlock net's training record"),
    RecordCell('11_resblock.ipynb', '069b4c2d', shows="the two-ResBlock net's training record"),
    RecordCell('13_resnet.ipynb', 'ae21a97d', shows="ResNet18's training record"),
    RecordCell('13_resnet.ipynb', '961e00dd', shows='epoch times of two records against their multiply-adds'),
    RecordCell('14_bottleneck.ipynb', '1162dada', shows="ResNet50's training record"),
    RecordCell('20_questionnaire.ipynb', '1d04f31a', shows='the loss landscape record, cpu/figures/landscape.csv'),
    RecordCell('21_exercises.ipynb', '4f3f7215', shows='the label-smoothing run against the chapter run'),
    RecordCell('31_figures.ipynb', '6aa747b4', ('d78eaf40',), 'how the degradation figure was made'),
    RecordCell('31_figures.ipynb', 'eea62969', ('d78eaf40',), 'the degradation table, cpu/figures/degradation.csv'),
    RecordCell('31_figures.ipynb', 'b84a9db5', ('d78eaf40',), 'the seed-spread table, cpu/figures/seeds.csv'),
    RecordCell('31_figures.ipynb', '2610ea10', ('d78eaf40', 'b84a9db5'), 'the effects across seeds, cpu/figures/seeds.csv'),
    RecordCell('31_figures.ipynb', '4d879dbd', ('d78eaf40',), 'how the landscape figure was made'),
    RecordCell('31_figures.ipynb', '112363b7', ('d78eaf40',), 'the landscape table, cpu/figures/landscape.csv'),
    RecordCell('31_figures.ipynb', '4aedea2d', ('d78eaf40',), 'how the gradient figure was made'),
    RecordCell('31_figures.ipynb', 'd41183ef', ('d78eaf40',), 'the gradient norms, cpu/figures/gradients.csv'),
    RecordCell('31_figures.ipynb', '50d3f586', ('d78eaf40',), 'how the activations figure was made'),
    RecordCell('31_figures.ipynb', '1791958b', ('d78eaf40',), 'the activations table, cpu/figures/activations.csv'),
    RecordCell('33_bench.ipynb', '30731a25', shows='the augmentation comparison, cpu/fast/augs.json'),
    RecordCell('33_bench.ipynb', 'b14b9dd8', shows='the CPU benchmark table, cpu/bench/bench.csv'),
    RecordCell('33_bench.ipynb', '77aa2d3c', ('b14b9dd8',), 'the loader ablation, cpu/bench/bench.csv'),
    RecordCell('33_bench.ipynb', '9408cec0', shows='the GPU benchmark table, gpu/bench/bench.md, or what is pending'),
    RecordCell('34_fast.ipynb', '385bf181', shows='the GPU speed run, gpu/speedrun/speedrun.md, or what is pending'),
    RecordCell('38_goals.ipynb', 'b6124cde', shows='the CPU speed runs, cpu/speedrun/*/speedrun.json'),
    RecordCell('38_goals.ipynb', 'cc4076ea', ('b6124cde',), 'the first "15 minutes" run, cpu/speedrun/15-minutes/speedrun.json'),
    RecordCell('38_goals.ipynb', '7ef5dee3', ('b6124cde',), 'the ablation table, cpu/speedrun/book-in-3/ablation.json'),
    RecordCell('38_goals.ipynb', 'a78e94e1', ('b6124cde', '7ef5dee3'), 'the speed runs against the chapter recipe'),
    RecordCell('10_pooling.ipynb', 'f1a7h3b2', shows="lr_find's valleys, from every full-data record"),
    RecordCell('index.ipynb', 'reduced-facts', shows='the reduced mode: cpu/reduced/runs (or the nearest runs), and the fp32 lever of each machine'),
    RecordCell('index.ipynb', 'reading-order', ('reduced-facts',), 'the reading order, with running times from cpu/notebook_times.json'),
    RecordCell('index.ipynb', '5d0b6c3f', ('reduced-facts',), "the chapter recipe's epochs at 128 px on two CPU cores"),
    RecordCell('results.ipynb', '521b2dc8', ('d3727efd',), 'the results table, */runs/*/record.json'),
    RecordCell('results.ipynb', 'e2f3a4b5', ('d3727efd',), "ResNet18's record and confusion matrix"),
    RecordCell('results.ipynb', '4eced15d', ('d3727efd',), 'how the degradation figure was made'),
    RecordCell('results.ipynb', '9159c4b8', ('d3727efd', '4eced15d'), 'how the landscape figure was made'),
    RecordCell('results.ipynb', '828ba69b', ('d3727efd', '4eced15d'), 'how the gradient figure was made'),
    RecordCell('results.ipynb', '4af55812', ('d3727efd', '4eced15d'), 'how the activations figure was made'),
    RecordCell('results.ipynb', 'bf23a434', ('d3727efd',), 'the benchmark tables, */bench/bench.md'),
]

# Saved tables that show no record: computed from a model when the page runs, or measured live (their cells say where)
LIVE_TABLES = {
    ('16_chapter.ipynb', 'd3f1c0a8'): "the chapter's models and recipes, read from CHAPTER_MODELS",
    ('12_stem.ipynb', '122340b4'): 'layer statistics of the stem, computed from the model',
    ('12_stem.ipynb', '0fc12363'): 'layer statistics of the 7x7 stem, computed from the model',
    ('13_resnet.ipynb', 'bec808f9'): "ResNet18's layer statistics, computed from the model",
    ('13_resnet.ipynb', '2348c346'): "ResNet18's shares per stage, computed from the model",
    ('14_bottleneck.ipynb', '4b422373'): 'multiply-adds per pixel, computed from the blocks',
    ('14_bottleneck.ipynb', '5fd03da2'): 'block timings, measured when the page runs',
    ('14_bottleneck.ipynb', 'b8dee4d7'): 'small nets counted, computed from the models',
    ('15_reference.ipynb', '6013a6e4'): "differences from timm's models, computed when the page runs",
    ('15_reference.ipynb', '64fe4019'): 'a wrong bottleneck against the reference, computed when the page runs',
    ('20_questionnaire.ipynb', '88d85a95'): 'forward and backward timings, measured when the page runs',
    ('21_exercises.ipynb', 'd4581604'): 'the MNIST comparison, a full-data run (#| slow) whose saved output is its record',
    ('21_exercises.ipynb', '7760b24d'): 'the 1x1 conv benchmark, measured when the page runs',
    ('30_beyond.ipynb', '7615250d'): 'blocks counted, computed from the models',
    ('33_bench.ipynb', '7a6b4e80'): "the chapter pipeline's timings, measured (#| slow)",
    ('33_bench.ipynb', '2cb99c60'): 'the augmentation comparison (#| slow; 30731a25 replays the same record, cpu/fast/augs.json)',
    ('35_scaling.ipynb', 'bb4bbf0f'): 'one process against two, measured (#| slow)',
    ('55_costs.ipynb', '633c1961'): 'a small net counted, computed from the model',
    ('10_pooling.ipynb', 'f1a7h3ae'): "a head's weights, computed from the layers' shapes",
    ('31_figures.ipynb', 'd0f70ff7'): 'gradient ratios over seeds and batches, computed when the page runs (on the sample)',
    ('index.ipynb', '394ba0a5'): 'estimates, computed from multiply-adds, the CPU benchmark and the H200 calibration record',
}

DIRECTIVE = re.compile(r'^\s*#\|.*$', re.M)

def _cells(nb_path:Path) -> list: return json.loads(nb_path.read_text())['cells']

def _src(cell:dict) -> str: return DIRECTIVE.sub('', ''.join(cell['source']))

def _is_imports(src:str) -> bool:
    try: body = ast.parse(src).body
    except SyntaxError: return False
    return bool(body) and all(isinstance(s, (ast.Import, ast.ImportFrom)) for s in body)

def context_code(nb_path:Path) -> list:
    "The code a replay of `nb_path` starts from: each of its cells that only imports, then its module's names"
    cells = _cells(nb_path)
    out = ['import resnet_course'] + [_src(c) for c in cells if c['cell_type'] == 'code' and _is_imports(_src(c))]
    for c in cells:   # last, as the notebook defines its own names after its imports (its resnet18, not fastai's)
        if c['cell_type'] == 'code' and (m := re.search(r'^#\|\s*default_exp\s+(\S+)', ''.join(c['source']), re.M)):
            out.append(f'from resnet_course.{m.group(1)} import *')
    return out

_target = []   # where display() puts what it is given during a replay: the cell being run's list

class _Shown(list):
    "What a replayed cell displays, as nbformat outputs"
    def add(self, obj):
        if obj is None: return
        name = type(obj).__name__
        if name in ('Figure', 'Image', 'Axes', 'AxesSubplot') or name.endswith('Axes'): return
        for meth, mime in (('_repr_html_', 'text/html'), ('_repr_markdown_', 'text/markdown')):
            f = getattr(obj, meth, None)
            if callable(f) and (text := f()) is not None:
                self.append({'output_type': 'display_data', 'data': {mime: text}}); return
        if name == 'Markdown': self.append({'output_type': 'display_data', 'data': {'text/markdown': obj.data}}); return
        self.append({'output_type': 'display_data', 'data': {'text/plain': repr(obj)}})

def _exec_cell(src:str, ns:dict, shown:_Shown):
    "Run a cell's code in `ns`, what it displays going to `shown`; its last expression, if not silenced with ';', is shown too"
    _target.append(shown)
    try: _run(src, ns, shown)
    finally: _target.pop()

def _run(src:str, ns:dict, shown:_Shown):
    tree = ast.parse(src)
    last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) and not src.rstrip().endswith(';') else None
    if last is not None: tree.body = tree.body[:-1]
    exec(compile(tree, '<cell>', 'exec'), ns)
    if last is not None: shown.add(eval(compile(ast.Expression(last.value), '<cell>', 'eval'), ns))

@contextlib.contextmanager
def _replaying(results:Path, shown:_Shown, out:io.StringIO):
    "Point results_root() at `results`, capture display() and print, keep matplotlib off screen, in the notebooks' folder"
    import matplotlib; matplotlib.use('Agg')
    import IPython.display as ipd, IPython.core.display_functions as idf
    old = dict(env=os.environ.get('RESNET_COURSE_RESULTS'), cwd=os.getcwd(), d1=ipd.display, d2=idf.display)
    def capture(*objs, **kw):
        for o in objs: _target[-1].add(o)
    os.environ['RESNET_COURSE_RESULTS'] = str(Path(results).absolute())
    ipd.display = idf.display = capture
    os.chdir(NBS)
    try:
        with contextlib.redirect_stdout(out), warnings.catch_warnings():
            warnings.simplefilter('ignore')
            yield capture
    finally:
        os.chdir(old['cwd']); ipd.display, idf.display = old['d1'], old['d2']
        if old['env'] is None: os.environ.pop('RESNET_COURSE_RESULTS', None)
        else: os.environ['RESNET_COURSE_RESULTS'] = old['env']
        import matplotlib.pyplot as plt; plt.close('all')

def replay(rc:RecordCell, results:Path=NBS/'results') -> list:
    "The outputs cell `rc` shows when its code runs now on the records in `results`, as nbformat outputs"
    cells = {c.get('id'): c for c in _cells(NBS/rc.notebook)}
    missing = [i for i in (*rc.after, rc.cell) if i not in cells]
    if missing: raise KeyError(f'{rc.notebook} has no cell {", ".join(missing)}: update RECORD_CELLS in scripts/record_outputs.py')
    shown, out = _Shown(), io.StringIO()
    with _replaying(results, shown, out) as capture:
        ns = {'__name__': '__replay__', 'display': capture}
        for code in context_code(NBS/rc.notebook): _exec_cell(code, ns, _Shown())
        ns['display'] = capture
        for i in rc.after: _exec_cell(_src(cells[i]), ns, _Shown())
        text_before = out.getvalue(); out.seek(0); out.truncate()
        _exec_cell(_src(cells[rc.cell]), ns, shown)
    printed = out.getvalue()
    return ([{'output_type': 'stream', 'name': 'stdout', 'text': printed}] if printed else []) + list(shown)

def saved(rc:RecordCell) -> list:
    "The outputs saved in the notebook for cell `rc`"
    return next(c for c in _cells(NBS/rc.notebook) if c.get('id') == rc.cell)['outputs']

def _values(outputs:list) -> list:
    "The numbers `outputs` show: what was printed first (nbdev saves it so; Jupyter interleaves it with displays), then each display"
    printed = ''.join(''.join(o.get('text', '')) for o in outputs if o.get('output_type') == 'stream')
    shown = [o for o in outputs if o.get('output_type') != 'stream']
    return [n.value for n in output_numbers([{'output_type': 'stream', 'text': printed}] + shown)]

def stale(rc:RecordCell, results:Path=NBS/'results') -> str | None:
    "None if the saved output of `rc` shows what its records give now; else a line saying what differs"
    where = f'{rc.notebook} cell {rc.cell} ({rc.shows})'
    try: now = _values(replay(rc, results))
    except Exception as e: return f'{where}: replaying it on the records now fails: {type(e).__name__}: {str(e)[:300]}'
    before = _values(saved(rc))
    if now == before: return None
    diffs = [(i, a, b) for i, (a, b) in enumerate(zip(before, now)) if a != b][:6]
    said = '; '.join(f'saved {a:g}, now {b:g}' for _, a, b in diffs)
    if len(now) != len(before): said = f'{len(before)} numbers saved, {len(now)} now' + (f'; {said}' if said else '')
    return f'{where}: the saved output is stale ({said}). Rerun the page: python scripts/save_outputs.py nbs/{rc.notebook}'

def stale_cells(results:Path=NBS/'results', notebooks:list=None) -> list:
    "(cell, what differs) for each record cell of `notebooks` (default: all) whose saved output no longer matches its records"
    return [(rc, m) for rc in RECORD_CELLS if not notebooks or rc.notebook in notebooks if (m := stale(rc, results))]

if __name__ == '__main__':
    found = stale_cells(notebooks=[Path(a).name for a in sys.argv[1:]] or None)
    print('\n'.join(m for _, m in found) if found else f'Every record output ({len(RECORD_CELLS)} cells) matches its records.')
    sys.exit(1 if found else 0)
