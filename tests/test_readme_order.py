"""A page that computes from records never fails on a missing record (issue 33): it says which record is missing and the command
that makes it. The docs build with a learner's results in place is tested in test_site.py (`learner_site`, the suite's one build).

Each page runs here as nbdev-test would run it, with `RESNET_COURSE_RESULTS` naming a results folder that holds none of the course's
records, but without its training cells (`#| trains`, and the cells that use what they trained), which read no record and take
most of a page's time."""
import ast, builtins, json, os
from pathlib import Path
import pytest
from conftest import ROOT

SKIPPED = ('#| trains', '#| slow', '#| full', '#| gpu', '#| notest', '#| eval: false')

def _names(src:str, ctx) -> set:
    try: tree = ast.parse('\n'.join(l for l in src.split('\n') if not l.lstrip().startswith(('%', '!'))))
    except SyntaxError: return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ctx)} | \
           ({n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))} if ctx is ast.Store else set())

def run_without_training(nb_path:Path, env:dict) -> list:
    "Run the page's code cells in order in one shell, leaving out training cells and every cell that uses what they made; the outputs' texts"
    from execnb.shell import CaptureShell
    old, cwd = dict(os.environ), os.getcwd()
    os.environ.update(env); os.chdir(nb_path.parent)
    try:
        sh, made_by_skipped, shown = CaptureShell(), set(), []
        for c in json.loads(nb_path.read_text())['cells']:
            if c['cell_type'] != 'code': continue
            s = ''.join(c['source'])
            lacking = _names(s, ast.Load) - _names(s, ast.Store) - set(sh.user_ns) - set(dir(builtins))   # names it needs that no cell run so far made
            if any(l.strip().startswith(SKIPPED) for l in s.split('\n')[:4]) or lacking & made_by_skipped:
                made_by_skipped |= _names(s, ast.Store); continue
            outs = sh.run(s)
            assert not sh.exc, f"{nb_path.name}, cell {c.get('id')}: {sh.exc!r}"
            shown += [''.join(o.get('text', '')) + ''.join(''.join(v) for v in o.get('data', {}).values() if isinstance(v, (str, list))) for o in outs]
        return shown
    finally: os.environ.clear(); os.environ.update(old); os.chdir(cwd)

# The pages with cells that compute from the course's records (the chapter pages only call `show_training`, tested in 60_records)
RECORD_PAGES = ('13_resnet.ipynb', '20_questionnaire.ipynb', '21_exercises.ipynb', '31_figures.ipynb', '33_bench.ipynb', '34_fast.ipynb', '38_goals.ipynb', 'results.ipynb')

@pytest.mark.parametrize('name', RECORD_PAGES)
def test_a_page_without_its_records_says_what_is_pending(tmp_path, name):
    records = tmp_path/'records'; (records/'cpu').mkdir(parents=True); (records/'gpu').mkdir()
    shown = '\n'.join(run_without_training(ROOT/'nbs'/name, {'RESNET_COURSE_RESULTS': str(records), 'IN_TEST': '1', 'MPLBACKEND': 'Agg'}))
    assert '**Pending' in shown and ('makes it' in shown or 'Pending.** `' in shown), f'{name}: no cell says what is pending'

def test_the_runner_fails_on_a_failing_cell(tmp_path):
    nb = {'cells': [{'cell_type': 'code', 'id': 'a', 'source': ['#| trains\n', 'x = 1']}, {'cell_type': 'code', 'id': 'b', 'source': ['print(x)']},
                    {'cell_type': 'code', 'id': 'c', 'source': ['1 / 0']}]}
    (tmp_path/'t.ipynb').write_text(json.dumps(nb))
    with pytest.raises(AssertionError, match="cell c: ZeroDivisionError"): run_without_training(tmp_path/'t.ipynb', {})
