"What the notebooks store: saved outputs come from real runs, and carry no noise."
import json, re, sys
from conftest import ROOT
sys.path.insert(0, str(ROOT/'scripts'))
from save_outputs import trains_on_sample, TRAINS

TRAINING_CALL = re.compile(r'\.(fit|fit_one_cycle|lr_find)\(|\b(reproduce|degradation_curves|activation_stats|compare_mnist_nets|label_smoothing_runs|figures_experiment)\(')

def notebooks(): return sorted((ROOT/'nbs').glob('*.ipynb'))

def code_cells(p): return [c for c in json.loads(p.read_text())['cells'] if c['cell_type'] == 'code']

def text_of(o): return ''.join(o.get('text', '')) + ''.join(''.join(v) for k, v in o.get('data', {}).items() if k.startswith('text/'))

def test_no_sample_training_output_is_saved():
    "A cell flagged `#| trains` keeps its output only if it is also flagged to run on full data (slow, full, gpu)"
    for p in notebooks():
        for c in code_cells(p):
            src = ''.join(c['source'])
            if trains_on_sample(src): assert not c['outputs'], f'{p.name}: a sample-training output is saved in the cell starting {src[:60]!r}'

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
