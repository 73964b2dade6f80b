"""Saved outputs are never stale: every saved output that shows a record gives the numbers its record gives now
(scripts/record_outputs.py replays it), and every page's recorded reads are unchanged since its outputs were saved
(nbs/results/outputs.json, written by scripts/save_outputs.py)."""
import json, os, shutil, sys
import pytest
from conftest import ROOT
sys.path.insert(0, str(ROOT/'scripts'))
import record_outputs as ro
import save_outputs as so

RESULTS = ROOT/'nbs'/'results'

@pytest.mark.parametrize('rc', ro.RECORD_CELLS, ids=lambda rc: f'{rc.notebook}:{rc.cell}')
def test_saved_record_output_matches_its_record(rc):
    "Replayed on the records now, the cell shows the numbers its saved output shows"
    if (m := ro.stale(rc, RESULTS)): pytest.fail(m, pytrace=False)

def _table_cells():
    for p in sorted((ROOT/'nbs').glob('*.ipynb')):
        for c in json.loads(p.read_text())['cells']:
            if c['cell_type'] != 'code': continue
            for o in c.get('outputs', []):
                d = o.get('data', {})
                if '<table' in ''.join(d.get('text/html', '')) or '\n|--' in ''.join(d.get('text/markdown', '')).replace('|:-', '|--'):
                    yield p.name, c['id']; break

def test_every_saved_table_is_replayed_or_said_to_be_live():
    "A new table output must be added to RECORD_CELLS (it shows a record) or LIVE_TABLES (it is computed or measured there)"
    replayed = {(rc.notebook, rc.cell) for rc in ro.RECORD_CELLS}
    unknown = [t for t in _table_cells() if t not in replayed and t not in ro.LIVE_TABLES]
    assert not unknown, f'saved tables neither replayed nor live: {unknown}; add each to RECORD_CELLS or LIVE_TABLES in scripts/record_outputs.py'
    gone = [t for t in ro.LIVE_TABLES if t not in set(_table_cells())]
    assert not gone, f'LIVE_TABLES names cells that show no table: {gone}'

def test_a_stale_table_is_caught(tmp_path):
    "Broken on purpose: one value of a record changed after the page was saved fails its table's check, naming the cell"
    copy = tmp_path/'results'
    shutil.copytree(RESULTS, copy)
    rc = next(rc for rc in ro.RECORD_CELLS if rc.cell == 'eea62969')      # 31_figures: the degradation table, from degradation.csv
    assert ro.stale(rc, copy) is None
    csv = copy/'cpu'/'figures'/'degradation.csv'
    lines = csv.read_text().splitlines()
    head, last = lines[0].split(','), lines[-1].split(',')
    col = head.index('train_error')
    last[col] = f'{float(last[col]) + 0.05:.4f}'                             # five points more training error in the last row
    csv.write_text('\n'.join(lines[:-1] + [','.join(last)]) + '\n')
    msg = ro.stale(rc, copy)
    assert msg and '31_figures.ipynb cell eea62969' in msg and 'stale' in msg, msg

def test_every_page_has_its_reads_recorded_and_unchanged():
    "outputs.json lists, for every page, the records its saved outputs were made from; none has changed since"
    stale = so.changed_records(notebooks=sorted(p.name for p in (ROOT/'nbs').glob('*.ipynb')))
    lines = [f'{nb}: ' + ', '.join(f'{p} {what}' if p else f'its reads were {what}' for _, p, what in why) for nb, why in stale.items()]
    if lines: pytest.fail('saved outputs that may be stale; make outputs-stale reruns these pages (make outputs, all of them):\n' + '\n'.join(lines), pytrace=False)

def test_reads_are_recorded_and_a_changed_record_is_found(tmp_path, monkeypatch):
    "A page run by save_outputs notes the records it opens, lists and looks for; changing, adding or removing one flags it"
    (tmp_path/'nbs').mkdir()
    shutil.copy(ROOT/'pyproject.toml', tmp_path/'pyproject.toml')
    results = tmp_path/'nbs'/'results'
    (results/'cpu').mkdir(parents=True)
    (results/'cpu'/'runs.csv').write_text('a\n1\n2\n')
    src = ("import os\nfrom pathlib import Path\nR = Path(os.environ['RESNET_COURSE_RESULTS'])\n"
           "print(sum(int(l) for l in (R/'cpu'/'runs.csv').read_text().split()[1:]), sorted(p.name for p in (R/'cpu').iterdir()), (R/'gpu'/'runs.md').exists())\n"
           "(R/'cpu'/'written.txt').write_text('not a read')")
    nb = tmp_path/'nbs'/'page.ipynb'
    nb.write_text(json.dumps({'cells': [{'cell_type': 'code', 'id': 'a', 'metadata': {}, 'execution_count': None, 'outputs': [], 'source': src}],
                              'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}))
    monkeypatch.setenv('RESNET_COURSE_RESULTS', str(results))
    ok, entry = so.run_notebook(nb, timeout=120)
    assert ok
    assert ''.join(json.loads(nb.read_text())['cells'][0]['outputs'][0]['text']) == "3 ['runs.csv'] False\n"      # its outputs are saved
    assert set(entry) == {'cpu/runs.csv', 'cpu', 'gpu/runs.md'} and entry['gpu/runs.md'] == 'absent', entry
    m = {'page.ipynb': {'': entry}}
    assert so.changed_records(m, results) == {}
    (results/'cpu'/'runs.csv').write_text('a\n1\n3\n')
    (results/'gpu').mkdir(); (results/'gpu'/'runs.md').write_text('| a |')
    (results/'cpu'/'new.csv').write_text('b\n')
    assert sorted(so.changed_records(m, results)['page.ipynb']) == [('', 'cpu', 'changed'), ('', 'cpu/runs.csv', 'changed'), ('', 'gpu/runs.md', 'appeared')]
