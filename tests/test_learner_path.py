"""What a learner's first steps do to their machine and checkout: running a notebook changes no file, the docs build installs
nothing, and the venv is rebuilt only when the project's requirements change."""
import json, os, re, shutil, subprocess, sys
from pathlib import Path
import pytest
from conftest import ROOT

GIT = ['git', '-c', 'user.name=learner', '-c', 'user.email=learner@example.org', '-c', 'commit.gpgsign=false']

def checkout_copy(dest:Path) -> Path:
    "A fresh git repository holding the working tree's tracked files, committed, as a learner's clone would be"
    files = subprocess.run(['git', 'ls-files', '-z'], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split('\0')
    for f in filter(None, files):
        if (ROOT/f).is_file():
            (dest/f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT/f, dest/f)
    for cmd in (['init', '-q'], ['add', '-A'], ['commit', '-q', '-m', 'clone']): subprocess.run(GIT + cmd, cwd=dest, check=True)
    return dest

def stamps(root:Path) -> dict:
    "Each tracked file's modification time, in ns"
    files = subprocess.run(['git', 'ls-files'], cwd=root, capture_output=True, text=True, check=True).stdout.split()
    return {f: (root/f).stat().st_mtime_ns for f in files}

def export_cells(nb:Path) -> list:
    return [''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code' and 'RESNET_COURSE_EXPORT' in ''.join(c['source'])]

@pytest.mark.parametrize('nb', sorted(p.name for p in (ROOT/'nbs').glob('*.ipynb') if export_cells(p)))
def test_export_cell_is_for_maintainers_only(nb, monkeypatch):
    "Each notebook's export cell runs nbdev_export only when RESNET_COURSE_EXPORT=1, and runs where nbdev is missing (Colab)"
    (cell,) = export_cells(ROOT/'nbs'/nb)
    assert 'export_notebooks()' in cell, f'{nb}: its export cell calls nbdev_export itself, which exports a typo and can delete _modidx.py (issue 34, item 11)'
    calls = []
    fake = type(sys)('nbdev'); fake.nbdev_export = lambda *a, **k: calls.append(a)
    monkeypatch.delenv('RESNET_COURSE_EXPORT', raising=False)
    monkeypatch.chdir(ROOT/'nbs')                       # where a notebook's kernel runs
    monkeypatch.setitem(sys.modules, 'nbdev', None)     # as on Colab: `import nbdev` fails
    exec(cell, {})
    monkeypatch.setitem(sys.modules, 'nbdev', fake)
    exec(cell, {})
    assert calls == [], f'{nb}: its export cell exports for a learner, who has not set RESNET_COURSE_EXPORT=1'
    monkeypatch.setenv('RESNET_COURSE_EXPORT', '1')
    exec(cell, {})
    assert len(calls) == 1, f'{nb}: its export cell does not export with RESNET_COURSE_EXPORT=1'

def test_a_typo_saved_in_an_exported_cell_is_not_exported(tmp_path):
    "Issue 34, item 11: with RESNET_COURSE_EXPORT=1 set, a typo saved in an exported cell of 10_pooling is named, and the package (and nbdev's index) stay whole"
    repo = checkout_copy(tmp_path/'clone')
    path = repo/'nbs'/'10_pooling.ipynb'
    nb = json.loads(path.read_text())
    i, cell = next((i, c) for i, c in enumerate(nb['cells']) if c['cell_type'] == 'code' and ''.join(c['source']).startswith('#| export') and 'def ' in ''.join(c['source']))
    cell['source'] = [''.join(cell['source']).replace('def ', 'def def ', 1)]
    path.write_text(json.dumps(nb, indent=1))
    (export,) = export_cells(path)
    before = {p.name: p.read_bytes() for p in (repo/'resnet_course').glob('*.py')}
    env = {**{k: v for k, v in os.environ.items() if k != 'IN_TEST'}, 'RESNET_COURSE_EXPORT': '1', 'PYTHONPATH': str(repo)}
    r = subprocess.run([sys.executable, '-c', export], cwd=repo/'nbs', env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and f'10_pooling.ipynb, cell {i}' in r.stdout and 'Not exported' in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
    after = {p.name: p.read_bytes() for p in (repo/'resnet_course').glob('*.py')}
    assert after == before, f'the export changed the package: {sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))}'
    r = subprocess.run([sys.executable, '-c', 'import resnet_course.pooling, resnet_course._modidx'], cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]

def test_running_a_notebook_leaves_the_checkout_clean(tmp_path, monkeypatch):
    "12_stem run top to bottom as a learner runs it (a Jupyter kernel, sample mode, not under nbdev-test) changes no tracked file"
    import nbformat
    from nbclient import NotebookClient
    repo = checkout_copy(tmp_path/'clone')
    before = stamps(repo)
    for k in ('IN_TEST', 'RESNET_COURSE_EXPORT'): monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv('RESNET_COURSE_SAMPLE', '1')
    monkeypatch.setenv('PYTHONPATH', str(repo))       # the kernel imports the clone's package, as in the learner's venv
    monkeypatch.setenv('MPLBACKEND', 'Agg')
    nb = nbformat.read(repo/'nbs'/'12_stem.ipynb', as_version=4)
    NotebookClient(nb, timeout=600, kernel_name='python3', resources={'metadata': {'path': str(repo/'nbs')}}).execute()
    assert any('nbdev_export' in c.source for c in nb.cells), 'the notebook has no export cell, so this test shows nothing'
    status = subprocess.run(['git', 'status', '--porcelain'], cwd=repo, capture_output=True, text=True, check=True).stdout
    assert status == '', f'running 12_stem changed the checkout:\n{status}'
    touched = [f for f, t in stamps(repo).items() if t != before[f]]
    assert not touched, f'running 12_stem rewrote {touched} (same content, but make then rebuilds the venv)'

def stand_ins(folder:Path, names) -> Path:
    "Executables named `names` in `folder` that append their name and arguments to folder/calls.log and fail"
    folder.mkdir()
    for n in names:
        (folder/n).write_text(f'#!/bin/sh\necho "{n} $*" >> "{folder}/calls.log"\nexit 1\n')
        (folder/n).chmod(0o755)
    return folder

def make_setup(tmp_path:Path, marker:str|None) -> str:
    "Run `make setup` on a copy of the Makefile and pyproject.toml, with a python stand-in; return what the stand-in was asked"
    work = tmp_path/'work'; work.mkdir(exist_ok=True)
    for f in ('Makefile', 'pyproject.toml'): shutil.copy(ROOT/f, work/f)
    bin_ = stand_ins(tmp_path/'bin', ('python3',)) if not (tmp_path/'bin').exists() else tmp_path/'bin'
    (work/'venv').mkdir(exist_ok=True)
    if marker is not None: (work/'venv'/'.installed').write_text(marker)
    subprocess.run(['make', '-s', 'setup', 'VENV=venv', f'PYTHON={bin_}/python3'], cwd=work, capture_output=True, text=True)
    log = bin_/'calls.log'
    calls = log.read_text() if log.exists() else ''
    log.unlink(missing_ok=True)
    return calls

def setup_key(work:Path) -> str:
    "The key `make setup` writes to the venv's marker, as make computes it"
    r = subprocess.run(['make', '-s', '--eval=print-key: ; @echo $(SETUP_KEY)', 'print-key'], cwd=work, capture_output=True, text=True, check=True)
    return r.stdout.strip()

def test_setup_follows_the_content_of_pyproject_not_its_timestamp(tmp_path):
    assert make_setup(tmp_path, None) != '', 'a venv with no marker must be set up'
    work = tmp_path/'work'
    key = setup_key(work)
    assert re.fullmatch(r'\d+-\d+', key), key
    assert make_setup(tmp_path, 'stale') != '', 'a marker from other requirements must set the venv up again'
    os.utime(work/'pyproject.toml')                 # newer than the marker, same content
    assert make_setup(tmp_path, key) == '', 'a pyproject.toml with the same content must not reinstall anything'
    (work/'pyproject.toml').write_text((work/'pyproject.toml').read_text() + '\n# a change\n')
    assert setup_key(work) != key

FIRST_TRAINING_CELL = """
import resnet_course
from fastai.vision.all import *
from resnet_course.data import get_data
from resnet_course.learner import get_learner
from resnet_course.pooling import fcn
import torch
assert not torch.cuda.is_available(), 'this test is about a machine without a GPU'
dls = get_data(URLs.IMAGENETTE_160, presize=160, size=128, bs=128)
learn = get_learner(dls, fcn(dls.c))
print('batch', tuple(dls.one_batch()[0].shape))
"""

def test_a_learner_on_a_cpu_is_told_once_and_with_the_numbers(tmp_path):
    "A notebook's first training cell on a CPU, outside nbdev-test: one notice about the missing GPU, one line on what the sample changes"
    import torch
    if torch.cuda.is_available(): pytest.skip('this machine has a GPU: the notebooks train on the full data')
    env = {k: v for k, v in os.environ.items() if k not in ('IN_TEST', 'RESNET_COURSE_SAMPLE')}
    r = subprocess.run([sys.executable, '-c', FIRST_TRAINING_CELL], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    notices = [l for l in r.stdout.splitlines() if l.startswith('Notice')]
    cuda = [l for l in notices if 'CUDA' in l]
    assert len(cuda) == 1, f'the missing GPU is told {len(cuda)} times:\n' + '\n'.join(cuda)
    assert any('get_data(size=128, bs=128) gives 64-px crops' in l and 'batches of 32' in l for l in notices), notices
    assert 'batch (32, 3, 64, 64)' in r.stdout

@pytest.mark.parametrize('nb', sorted(p.name for p in (ROOT/'nbs').glob('*.ipynb')))
def test_notebook_opens_unmodified_in_jupyterlab(nb):
    """On opening, JupyterLab writes the kernel's kernelspec and language_info into the notebook, and marks it as modified if
    either differs. nbdev-clean writes the kernelspec's display name as its name, so `make setup` names the venv's kernel
    python3 too, and every notebook keeps language_info (allowed_metadata_keys), the same in all."""
    meta = json.loads((ROOT/'nbs'/nb).read_text())['metadata']
    assert meta.get('kernelspec') == {'display_name': 'python3', 'language': 'python', 'name': 'python3'}, meta.get('kernelspec')
    li = meta.get('language_info') or {}
    ref = json.loads((ROOT/'nbs'/'index.ipynb').read_text())['metadata'].get('language_info')
    assert li.get('name') == 'python' and li == ref, f'{nb}: language_info {li}, not as in index.ipynb: add it, then nbdev-clean keeps it'
    assert re.search(r'ipykernel install --sys-prefix --name python3 --display-name python3', (ROOT/'Makefile').read_text())

@pytest.mark.parametrize('nb', ['51_files', '52_settings', '60_records'])
def test_pages_run_as_a_learner_runs_them(nb, monkeypatch):
    """Issue 34, item 12: a learner who sets RESNET_COURSE_MODE=sample, as the README says, and runs a page in order in a kernel
    (not under nbdev-test), running each cell a second time as one does while reading, meets no error"""
    import nbformat
    from nbclient import NotebookClient
    for k in ('IN_TEST', 'RESNET_COURSE_SAMPLE', 'RESNET_COURSE_EXPORT'): monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv('RESNET_COURSE_MODE', 'sample')
    monkeypatch.setenv('PYTHONPATH', str(ROOT))
    monkeypatch.setenv('MPLBACKEND', 'Agg')
    book = nbformat.read(ROOT/'nbs'/f'{nb}.ipynb', as_version=4)
    client = NotebookClient(book, timeout=600, kernel_name='python3', resources={'metadata': {'path': str(ROOT/'nbs')}}, allow_errors=True)
    errors = []
    with client.setup_kernel():
        for i, cell in enumerate(book.cells):
            if cell.cell_type != 'code' or re.search(r'^#\|\s*(slow|full|gpu)\s*$', cell.source, re.M): continue
            for run in (1, 2):
                client.execute_cell(cell, i)
                errors += [f"cell {i} ({cell.get('id')}), run {run}: {o.ename}: {o.evalue[:200]}" for o in cell.outputs if o.output_type == 'error']
    assert not errors, f'{nb}, run as a learner runs it:\n  ' + '\n  '.join(errors)
