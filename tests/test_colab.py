"One click to a GPU kernel: each notebook installs the course on Colab or Kaggle where it is missing, and links to itself on Colab."
import ast, importlib.util, json, os, shutil, subprocess, sys, types
import pytest
from conftest import ROOT
sys.path.insert(0, str(ROOT/'scripts'))
import colab

REPO_URL, BRANCH = colab.repo_settings()
GUARD = colab.guard_source(REPO_URL)

@pytest.fixture
def kernel(monkeypatch, tmp_path):
    """Run the install cell on a kernel set up by the test: `host` is None, 'colab' or 'kaggle'; `cloned` says whether the
    repository was fetched before. Returns the commands it ran; its home folder is `tmp_path`"""
    def run(host=None, course_installed=False, cloned=False):
        calls = []
        monkeypatch.setattr(subprocess, 'run', lambda *a, **kw: calls.append((a, kw)))
        monkeypatch.setenv('HOME', str(tmp_path))
        # the install cell sets RESNET_COURSE_RESULTS in os.environ itself: set then delete it here, so that pytest restores the
        # variable's absence after the test (a bare delenv of an unset variable records nothing, and the value leaks into later tests)
        monkeypatch.setenv('RESNET_COURSE_RESULTS', '')
        monkeypatch.delenv('RESNET_COURSE_RESULTS')
        monkeypatch.delitem(sys.modules, 'google.colab', raising=False)
        monkeypatch.delenv('KAGGLE_KERNEL_RUN_TYPE', raising=False)
        if cloned: (tmp_path/'resnet_course').mkdir(exist_ok=True)
        if host == 'colab': monkeypatch.setitem(sys.modules, 'google.colab', types.ModuleType('google.colab'))
        if host == 'kaggle': monkeypatch.setenv('KAGGLE_KERNEL_RUN_TYPE', 'Interactive')
        find_spec = importlib.util.find_spec
        if not course_installed:
            monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *a: None if name == 'resnet_course' else find_spec(name, *a))
        exec(compile(GUARD, 'install-cell', 'exec'), {})
        return calls
    return run

def clone_of(home): return str(home/'resnet_course')
def git_clone(home): return ((['git', 'clone', '-q', '--depth', '1', REPO_URL, clone_of(home)],), {'check': True})
def pip_install(home): return (([sys.executable, '-m', 'pip', 'install', '-q', clone_of(home)],), {'check': True})

def test_guard_does_nothing_off_hosted_kernels(kernel):
    assert kernel(host=None, course_installed=False) == []
    assert 'RESNET_COURSE_RESULTS' not in os.environ

@pytest.mark.parametrize('host', ['kaggle', 'colab'])
def test_guard_fetches_and_installs_the_course_where_it_is_missing(kernel, host, tmp_path):
    assert kernel(host=host, course_installed=False) == [git_clone(tmp_path), pip_install(tmp_path)]
    assert os.environ['RESNET_COURSE_RESULTS'] == str(tmp_path/'resnet_course'/'nbs'/'results')

@pytest.mark.parametrize('host', ['colab', 'kaggle'])
def test_guard_fetches_the_results_once_where_the_course_is_installed(kernel, host, tmp_path):
    assert importlib.util.find_spec('resnet_course') is not None
    assert kernel(host=host, course_installed=True) == [git_clone(tmp_path)]
    assert kernel(host=host, course_installed=True, cloned=True) == []     # a second notebook in the same kernel fetches nothing

def test_saved_results_show_on_a_hosted_kernel(kernel, tmp_path, monkeypatch):
    "With only the notebook opened, in a folder with results of the learner's own, the notebooks' record lookup finds the fetched results, and only them"
    from resnet_course.records import course_results, learner_results, best_record
    kernel(host='colab', course_installed=True, cloned=True)
    shutil.copytree(ROOT/'nbs'/'results', tmp_path/'resnet_course'/'nbs'/'results')
    (tmp_path/'results'/'sample'/'runs').mkdir(parents=True)   # a learner's `resnet-course reproduce --quick` in the kernel's folder
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv('IN_TEST', raising=False)
    assert course_results() == tmp_path/'resnet_course'/'nbs'/'results'
    assert learner_results() is None                              # RESNET_COURSE_RESULTS overrides both
    rec, folder = best_record('resnet18')
    assert rec is not None and rec['row']['name'] == 'resnet18' and folder.is_relative_to(tmp_path)

def test_guard_does_not_depend_on_what_it_installs():
    "The install cell imports only the standard library, uses no IPython magics, and is hidden from the docs"
    assert GUARD.startswith('#| hide\n')
    assert not any(l.lstrip().startswith(('!', '%')) for l in GUARD.splitlines())
    imported = {a.name.split('.')[0] for n in ast.walk(ast.parse(GUARD)) if isinstance(n, ast.Import) for a in n.names}
    assert imported and imported <= sys.stdlib_module_names, imported

def test_colab_link_points_at_the_notebook():
    assert colab.link_source(REPO_URL, BRANCH, '11_resblock.ipynb').startswith(
        '[Open in Colab](https://colab.research.google.com/github/resnet-course/resnet_course/blob/main/nbs/11_resblock.ipynb)')

def test_insertion_is_idempotent_and_exports_the_same_package(tmp_path):
    "On a copy of the project: the cells go in once, --check passes, nbdev-clean changes nothing, and nbdev-export writes the same modules"
    for p in ('nbs', 'resnet_course', 'pyproject.toml'): (shutil.copytree if (ROOT/p).is_dir() else shutil.copy)(ROOT/p, tmp_path/p)
    bin_ = os.path.dirname(sys.executable)
    def export():
        r = subprocess.run([f'{bin_}/nbdev-export', '--path', 'nbs'], cwd=tmp_path, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return {p.name: p.read_text() for p in (tmp_path/'resnet_course').glob('*.py')}
    before = export()
    nbs = sorted((tmp_path/'nbs').glob('*.ipynb'))
    stale = json.loads(nbs[0].read_text())   # an install cell from an older version of the script is replaced, not kept
    stale['cells'].insert(0, colab.new_cell('code', 'old-install', GUARD.replace('-q', '-q -U')))
    colab.write_nb(stale, nbs[0])
    assert colab.main([str(p) for p in nbs] + ['--check']) == 1
    assert colab.main([str(p) for p in nbs]) == 0
    once = {p: p.read_text() for p in nbs}
    assert colab.main([str(p) for p in nbs]) == 0 and {p: p.read_text() for p in nbs} == once, 'a second run changed a notebook'
    assert colab.main([str(p) for p in nbs] + ['--check']) == 0
    for p in nbs:
        cells = json.loads(p.read_text())['cells']
        assert [c for c in cells if colab.MARK in ''.join(c['source'])] == [cells[0]], f'{p.name}: one install cell, first'
        t = colab.title_index(cells)
        assert ''.join(cells[t + 1]['source']) == colab.link_source(REPO_URL, BRANCH, p.name)
    r = subprocess.run([f'{bin_}/nbdev-clean'], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0 and {p: p.read_text() for p in nbs} == once, 'nbdev-clean changes what the script wrote'
    assert export() == before, 'the install cell changed the exported package'

def test_every_notebook_has_the_colab_cells():
    "The real notebooks: run `python scripts/colab.py` if this fails"
    r = subprocess.run([sys.executable, str(ROOT/'scripts'/'colab.py'), '--check'], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr

def test_the_install_cell_leaves_no_results_variable_behind():
    "Runs after the tests above in the same process (pytest keeps a file's order): what the install cell set is gone"
    assert 'RESNET_COURSE_RESULTS' not in os.environ
