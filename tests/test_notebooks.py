"What the notebooks store: saved outputs come from real runs, and carry no noise."
import json, re, sys
from conftest import ROOT
sys.path.insert(0, str(ROOT/'scripts'))
from save_outputs import trains_on_sample, TRAINS, kept_in_place_of, NOT_KEPT

TRAINING_CALL = re.compile(r'\.(fit|fit_one_cycle|lr_find)\(|\b(reproduce|fit_resumable|degradation_curves|activation_stats|compare_mnist_nets|label_smoothing_runs|figures_experiment)\(')

def notebooks(): return sorted((ROOT/'nbs').glob('*.ipynb'))

def code_cells(p): return [c for c in json.loads(p.read_text())['cells'] if c['cell_type'] == 'code']

def text_of(o): return ''.join(o.get('text', '')) + ''.join(''.join(v) for k, v in o.get('data', {}).items() if k.startswith('text/'))

def test_no_sample_training_output_is_saved():
    "A cell flagged `#| trains` keeps its output only if it is also flagged to run on full data (slow, full, gpu); else at most the note why"
    for p in notebooks():
        for c in code_cells(p):
            src = ''.join(c['source'])
            if not trains_on_sample(src): continue
            got = [(o.get('output_type'), text_of(o)) for o in c['outputs']]
            want = [(o['output_type'], text_of(o)) for o in kept_in_place_of(src)]
            assert got == want, f'{p.name}: the cell starting {src[:60]!r} keeps {got}, not {want or "nothing"}'

def test_cells_that_train_say_so():
    "Every cell outside the exported code that calls a training function carries `#| trains`, so the rule above applies to it"
    for p in notebooks():
        for c in code_cells(p):
            src = ''.join(c['source'])
            if '#| export' in src or '#| eval: false' in src: continue
            if TRAINING_CALL.search(src): assert TRAINS.search(src), f'{p.name}: this cell trains but is not flagged #| trains: {src[:80]!r}'

def test_saved_outputs_carry_no_noise():
    for p in notebooks():
        for c in code_cells(p):
            for o in c['outputs']:
                t = text_of(o)
                assert '\r' not in t, f'{p.name}: a console progress bar is saved'
                assert not re.search(r'[A-Za-z]+Warning\b', t), f'{p.name}: a Python warning is saved: {t[:200]}'   # the course's own "Warning: ..." lines are messages
                assert o.get('output_type') != 'error', f'{p.name}: an error is saved'

def test_stored_clean():
    for p in notebooks():
        for c in code_cells(p):
            assert c.get('execution_count') is None, f'{p.name} is not cleaned: run nbdev-clean'

def test_saved_benchmarks_name_their_hardware():
    for p in notebooks():
        for c in code_cells(p):
            src = ''.join(c['source'])
            if c['outputs'] and re.search(r'\bbenchmark_conv1x1\(|\btime_block\(|compare_mnist_nets\(', src):
                assert any('measured on:' in text_of(o) for o in c['outputs']), f'{p.name}: a saved benchmark does not say where it ran'

from save_outputs import is_display_cell, missing_outputs

def test_display_cell_rule():
    "What counts as a cell that shows something, on small sources: the rule the next test applies to every notebook"
    shows = ['st', "print('x')", "for i in range(2): print(i)", "plot_degradation(df);", "with ctx: display(df)", "x = 1\nx"]
    silent = ['x = 1', 'test_eq(1, 1)', "#| export\ndef f(): print('x')", "def f():\n    print('x')", '#| hide\nx', "#| gpu\nprint(1)",
              "#| trains\nlearn.fit(1)\nlearn", "plt.close('all')", "'a docstring'"]
    for s in shows: assert is_display_cell(s), s
    for s in silent: assert not is_display_cell(s), s

def test_every_display_cell_keeps_its_output():
    "A cell meant to show something keeps its saved output, so that readers of the site see it (make outputs saves them)"
    missing = {p.name: m for p in notebooks() if (m := missing_outputs(p))}
    assert not missing, f'display cells with no saved output (run make outputs): {missing}'

def test_cells_that_train_on_the_sample_say_why_they_show_nothing():
    "A cell that would show something but trains on the sample keeps no output (above); it says so, where the reader meets it"
    for p in notebooks():
        for c in code_cells(p):
            src = ''.join(c['source'])
            if trains_on_sample(src) and is_display_cell(re.sub(r'^#\|\s*trains\s*$\n?', '', src, flags=re.M)):
                assert 'output is not kept' in src, f'{p.name}: this cell keeps no output and does not say why: {src[:80]!r}'
                assert [text_of(o) for o in c['outputs']] == [NOT_KEPT], f'{p.name}: the page shows no note where this cell shows nothing: {src[:80]!r}'

# ------------------------------------------------------------------------------------ the training cells' GPU estimates
FLAG = lambda name: re.compile(rf'^#\|\s*{name}\s*$', re.M)
PINS_CPU = re.compile(r"device\s*=\s*'cpu'|'--device',\s*'cpu'")

def gpu_training_cells() -> set:
    "(notebook, cell id) of the cells that train on the full data when the kernel has a GPU"
    found = set()
    for p in notebooks():
        for c in code_cells(p):
            src = ''.join(c['source'])
            if not TRAINS.search(src) or PINS_CPU.search(src): continue
            if 'notebook_learner(' in src or 'n_epochs(' in src or FLAG('gpu').search(src) or FLAG('slow').search(src): found.add((p.stem, c['id']))
    return found

def test_every_gpu_training_cell_has_an_estimate():
    "The home page's table of estimated GPU times lists every cell that trains on the full data on a GPU, and no other"
    from resnet_course.costs import GPU_TRAINING_CELLS
    listed = {(c.notebook, c.cell) for c in GPU_TRAINING_CELLS}
    found = gpu_training_cells()
    assert found == listed, f'cells training on a GPU without an estimate: {sorted(found - listed)}; estimates for no such cell: {sorted(listed - found)}'

def test_cells_over_ten_minutes_on_a_t4_resume_and_say_so():
    "A cell estimated at more than ten minutes on a T4 saves its progress as it trains (fit_resumable), and says so in the cell"
    import pandas as pd
    from resnet_course.costs import gpu_machines, cell_estimates, read_calibration
    from resnet_course.chapter import CHAPTER_MODELS
    bench = pd.read_csv(ROOT/'nbs'/'results'/'cpu'/'bench'/'bench.csv')
    machines = gpu_machines(tuple(bench[bench['size'] == s]['chapter loader img/s'].mean() for s in (128, 224)), CHAPTER_MODELS['resnet50'].make, read_calibration(ROOT/'nbs'/'results'))
    est = cell_estimates(machines, {k: m.make for k, m in CHAPTER_MODELS.items()})
    long = est[est['T4'] > 10]
    assert len(long) >= 1
    cells = {(p.stem, c['id']): ''.join(c['source']) for p in notebooks() for c in code_cells(p)}
    for _, r in long.iterrows():
        src = cells[(r.notebook, r.cell)]
        assert 'resum' in src.lower(), f'{r.notebook} {r.cell}: {r.T4:.0f} min on a T4, and the cell does not say it resumes'
        assert re.search(r'\bfit_resumable\(|\blabel_smoothing_runs\(', src), f'{r.notebook} {r.cell}: {r.T4:.0f} min on a T4, and it does not train resumably'

def test_label_smoothing_runs_train_resumably():
    "The exercises' long cells train through `label_smoothing_runs`, which resumes a stopped run through `fit_resumable`"
    import inspect
    from resnet_course.exercises import label_smoothing_runs
    assert 'fit_resumable(' in inspect.getsource(label_smoothing_runs)
