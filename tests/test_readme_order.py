"""The README's two commands, one after the other (issue 33): `make reproduce` writes a learner's results into `results/` at the
clone's root, then `make test` builds the docs there. The docs build runs the notebooks' cells that import something, and those
read records: they must read the course's records (nbs/results), whatever the learner's `results/` holds, finished or interrupted.

Each test works on a fresh copy of the repository's files (what `git clone` gives, with this working tree's changes), runs the
main command on the sample into its default folder as the README does, or leaves an interrupted reduced run there, then builds
the docs with scripts/build_site.py, exactly as `make docs` and the site tests do, and checks the pages.
"""
import json, os, shutil, subprocess, sys
from pathlib import Path
import pytest
from conftest import ROOT, learner_env
sys.path.insert(0, str(ROOT/'scripts'))
import build_site

BIN = Path(sys.executable).parent
COURSE_RUNS = ROOT/'nbs'/'results'/'cpu'/'runs'

def fresh_copy(dest:Path) -> Path:
    "The repository's files as a clone has them: tracked ones and new ones git does not ignore, from this working tree; no _proc, no results/"
    files = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], cwd=ROOT, capture_output=True, check=True).stdout
    for rel in filter(None, files.decode().split('\0')):
        src = ROOT/rel
        if src.is_file():
            (dest/rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest/rel)
    assert not (dest/'results').exists() and not (dest/'_proc').exists()
    return dest

def env_of(repo:Path) -> dict:
    "A learner's environment in the copy: its own package first, no test or mode variables, no results folder named"
    env = {k: v for k, v in learner_env().items() if k not in ('RESNET_COURSE_MODE', 'RESNET_COURSE_RESULTS')}
    env['PYTHONPATH'] = str(repo)
    return env

def build_docs(repo:Path, out:Path):
    "`make docs` in the copy: scripts/build_site.py from its root, with the venv's Python; fails with the build's own error"
    r = subprocess.run([sys.executable, 'scripts/build_site.py', '--out', str(out)], cwd=repo, env=env_of(repo),
                       capture_output=True, text=True, timeout=1800)
    errors = [l for l in (r.stdout + r.stderr).splitlines() if l.startswith(('Exception:', 'ValueError', 'KeyError', 'FileNotFoundError', 'NameError', 'AssertionError'))]
    assert r.returncode == 0, f'the docs build failed after the learner\'s run:\n' + '\n'.join(errors[:6]) + '\n' + r.stderr[-3000:]

def outputs_text(nb:dict) -> dict:
    "cell id -> the text of its outputs"
    text = lambda o: ''.join(o.get('text', '')) + ''.join(''.join(v) for k, v in o.get('data', {}).items() if k in ('text/plain', 'text/markdown'))
    return {c.get('id'): ''.join(map(text, c.get('outputs', []))) for c in nb['cells'] if c['cell_type'] == 'code'}

def check_pages(repo:Path, out:Path):
    "Every page is there, and what the build computed from records is what the course's records give, not a learner's"
    for _, name in build_site.sidebar_entries(repo/'nbs'/'sidebar.yml'):
        proc = json.loads((repo/'_proc'/name).read_text())
        fm = build_site.front_matter(build_site.nbformat.reads(json.dumps(proc), as_version=4))
        assert (out/fm.get('output-file', Path(name).stem + '.html')).is_file(), f'{name}: no page'
        saved, built = outputs_text(json.loads((repo/'nbs'/name).read_text())), outputs_text(proc)
        new_pending = [i for i, t in built.items() if 'Pending' in t and 'Pending' not in saved.get(i, '')]
        assert not new_pending, f'{name}: cells the docs build found pending, though the course has their records: {new_pending}'
    # the "just as fast" comparison, computed again by the build from the course's records: the numbers the notebook saved
    saved = outputs_text(json.loads((repo/'nbs'/'13_resnet.ipynb').read_text()))['961e00dd']
    assert 'ResNet18 takes' in saved and saved == outputs_text(json.loads((repo/'_proc'/'13_resnet.ipynb').read_text()))['961e00dd']
    assert 'ResNet18 takes' in (out/'resnet.html').read_text()
    site = (out, None)   # the site tests that read the pages' files
    from test_site import test_hidden_cells_stay_hidden, test_every_export_has_a_reference_section
    test_hidden_cells_stay_hidden(site); test_every_export_has_a_reference_section(site)

def test_reproduce_quick_then_docs(tmp_path):
    "`make reproduce ARGS=--quick`, then the docs build and the page checks"
    repo = fresh_copy(tmp_path/'repo')
    r = subprocess.run([str(BIN/'resnet-course'), 'reproduce', '--quick'], cwd=repo, env=env_of(repo), capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert len(list((repo/'results'/'sample'/'runs').glob('*/record.json'))) == 5, 'the quick run did not write its five records into results/sample'
    build_docs(repo, tmp_path/'site')
    check_pages(repo, tmp_path/'site')

def test_interrupted_reproduce_then_docs(tmp_path):
    """`make reproduce` interrupted during its third model, then the docs build and the page checks. The reduced runs are stood in
    for by the course's records of the first two models (what a finished run leaves), and the third has only its progress file"""
    repo = fresh_copy(tmp_path/'repo')
    runs = repo/'results'/'reduced'/'runs'
    for name in ('fcn', 'resblock'):
        shutil.copytree(next(COURSE_RUNS.glob(f'{name}-*')), runs/f'{name}-reduced0000')
    (runs/'resblock2-reduced0000').mkdir()
    (runs/'resblock2-reduced0000'/'progress.pth').write_bytes(b'epoch 2 of 5')   # interrupted: progress, no record
    build_docs(repo, tmp_path/'site')
    check_pages(repo, tmp_path/'site')

# The pages with cells that compute from the course's records (the chapter pages only call `show_training`, tested in 60_records)
RECORD_PAGES = ('13_resnet.ipynb', '20_questionnaire.ipynb', '21_exercises.ipynb', '31_figures.ipynb', '34_fast.ipynb', 'results.ipynb')

@pytest.mark.parametrize('name', RECORD_PAGES)
def test_a_page_without_its_records_says_what_is_pending(tmp_path, name):
    """With `RESNET_COURSE_RESULTS` naming a results folder that holds none of the course's records, a page that computes from them
    runs to its end under nbdev-test, and says which record is missing and the command that makes it, instead of failing"""
    repo = fresh_copy(tmp_path/'repo')
    records = tmp_path/'records'; (records/'cpu').mkdir(parents=True); (records/'gpu').mkdir()
    r = subprocess.run([str(BIN/'nbdev-test'), '--save', f'nbs/{name}'], cwd=repo, env={**env_of(repo), 'RESNET_COURSE_RESULTS': str(records)},
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, f'{name} failed without its records:\n' + (r.stdout + r.stderr)[-3000:]
    shown = '\n'.join(outputs_text(json.loads((repo/'nbs'/name).read_text())).values())
    assert '**Pending' in shown and ('makes it' in shown or 'Pending.** `' in shown), f'{name}: no cell says what is pending'
