"The package is what the notebooks export, its modules import in the direction the data flows, and it works outside the notebooks."
import ast, json, re, shutil, subprocess, sys, textwrap
from pathlib import Path
import pytest
from conftest import ROOT

BIN = Path(sys.executable).parent

def test_nbdev_clean_and_export_change_nothing(tmp_path):
    "nbdev's CI check: after nbdev-clean and nbdev-export, the notebooks and the package are exactly as stored"
    for p in ('nbs', 'resnet_course', 'pyproject.toml'):
        src = ROOT/p
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path/p)
    for cmd in ('nbdev-clean', 'nbdev-export'):
        r = subprocess.run([str(BIN/cmd)], cwd=tmp_path, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    changed = [str(f.relative_to(ROOT)) for d in ('nbs', 'resnet_course') for f in sorted((ROOT/d).glob('*'))
               if f.suffix in ('.ipynb', '.py') and (tmp_path/f.relative_to(ROOT)).read_text() != f.read_text()]
    assert not changed, f'{changed} change under nbdev-clean and nbdev-export: run both and commit'
    assert sorted(p.name for p in (tmp_path/'resnet_course').glob('*.py')) == sorted(p.name for p in (ROOT/'resnet_course').glob('*.py'))

def test_one_module_per_notebook():
    nbs = {p.stem.split('_', 1)[1] for p in (ROOT/'nbs').glob('[0-9]*.ipynb')}
    mods = {p.stem for p in (ROOT/'resnet_course').glob('*.py') if not p.stem.startswith('_')}
    assert mods <= nbs, f'modules without a notebook: {mods - nbs}'

NBDEV_INDEX = '_modidx.py'   # nbdev's index of every name, in nbdev's own format (pformat at 160 columns)

def test_each_module_is_a_room_of_at_most_400_lines_each_at_most_120_characters():
    """Rooms by meaning: no module over 400 lines, no line over 120 characters. Only nbdev's own writing is left as it writes
    it: its index of names, and the `__all__` lines, whose list nbdev wraps at 120 characters before it puts `__all__ = ` in front"""
    problems = []
    for p in sorted((ROOT/'resnet_course').glob('*.py')):
        if p.name == NBDEV_INDEX: continue
        lines = p.read_text().splitlines()
        if len(lines) > 400: problems.append(f'{p.name}: {len(lines)} lines')
        long = [i + 1 for i, l in enumerate(lines) if len(l) > 120 and not l.startswith('__all__ = [')]
        if long: problems.append(f'{p.name}: line(s) {long} over 120 characters')
    assert not problems, problems

# The data flows one way: machine and files -> settings -> data (the chapter's loaders, the image cache, the fast loaders) -> model
# pieces -> models -> training (the learner and its speed options) -> records -> the chapter's recipes -> experiments -> command line.
LEVELS = {'machine': 0, 'files': 0, 'settings': 1, 'data': 2, 'cache': 2.3, 'loaders': 2.6,
          'costs': 3, 'diagrams': 3, 'pooling': 3, 'stem': 3, 'resblock': 4, 'resnet': 5, 'bottleneck': 6, 'reference': 7, 'beyond': 7,
          'learner': 8, 'speed': 8, 'records': 9, 'scaling': 9, 'chapter': 9.5, 'reproduce': 10, 'figures': 10, 'exercises': 10.5,
          'bench': 11, 'fast': 11, 'goals': 11.2, 'verdicts': 10.9, 'checks': 11, 'options': 11.5, 'cli': 12}
# (the exercises train their long runs through reproduce's `fit_resumable`, so they sit just above it)
# The checkers of the learners' attempts (checks) use the models and the exercises' solutions as references; no module imports
# them: only the exercise pages do, in notebook cells that are not exported. What the checkers share (verdicts) sits just
# below them. The command line's option types (options) sit below the commands (cli), and import nothing heavy.
NOBODY_IMPORTS = {'checks'}
MODEL_MODULES = {'costs', 'diagrams', 'pooling', 'stem', 'resblock', 'resnet', 'bottleneck', 'reference', 'beyond'}

def course_imports(path:Path) -> set:
    "The course modules that the module at `path` imports"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import): names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ''
            names = [f'resnet_course.{mod}'] if node.level else [mod]                        # `from .data import x`
            if node.level and not mod: names = [f'resnet_course.{a.name}' for a in node.names]   # `from . import data`
        else: continue
        found |= {n.split('.')[1] for n in names if n.startswith('resnet_course.')}
    return found

def import_problems(package:Path) -> list:
    "Every import in the modules under `package` that goes against the data flow, as one sentence each"
    mods = sorted(p.stem for p in package.glob('*.py') if not p.stem.startswith('_'))
    problems = [f'place the new module {m} in LEVELS' for m in mods if m not in LEVELS]
    for m in mods:
        for dep in sorted(course_imports(package/f'{m}.py')):
            if m not in LEVELS or dep not in LEVELS: continue
            if LEVELS[dep] >= LEVELS[m]: problems.append(f'{m} imports {dep}, which sits at the same level or above it in the data flow')
            if m in MODEL_MODULES and dep not in MODEL_MODULES: problems.append(f'the model module {m} imports {dep}: a model needs only layers and blocks')
            if dep in NOBODY_IMPORTS: problems.append(f'{m} imports {dep}: only the exercise pages may, in cells that are not exported')
    return problems

def test_imports_follow_the_data_flow():
    assert import_problems(ROOT/'resnet_course') == []

@pytest.mark.parametrize('module, line, problem', [
    ('resnet', 'from .data import get_data', 'resnet imports data'),                       # a model that loads data
    ('loaders', 'from .resnet import resnet18', 'loaders imports resnet'),                 # the fast loaders depending on a model
    ('cache', 'from resnet_course.loaders import CachedDL', 'cache imports loaders'),     # a layer importing the one above it
    ('pooling', 'from .machine import pick_device', 'the model module pooling imports machine'),
    ('cli', 'from .checks import check_answer', 'cli imports checks: only the exercise pages may'),     # above checks in the flow, still refused
])
def test_the_import_direction_test_can_fail(tmp_path, module, line, problem):
    "Each kind of wrong import, added to a copy of the package, is reported by the same function the real test uses"
    pkg = shutil.copytree(ROOT/'resnet_course', tmp_path/'resnet_course')
    (pkg/f'{module}.py').write_text((pkg/f'{module}.py').read_text() + f'\n{line}\n')
    found = import_problems(pkg)
    assert any(problem in p for p in found), found
    assert import_problems(ROOT/'resnet_course') == []

def test_import_is_quiet():
    r = subprocess.run([sys.executable, '-W', 'default', '-c', 'import resnet_course.cli'], capture_output=True, text=True)
    assert r.returncode == 0 and 'jit' not in r.stderr, r.stderr

EXPERIMENTS = {   # each exported experiment, and what it must return on the sample
    'compare_mnist_nets': """
        from resnet_course.data import get_mnist_data
        from resnet_course.exercises import compare_mnist_nets
        mnist = compare_mnist_nets(get_mnist_data(sample=True), epochs=1)
        assert mnist.parameters.tolist() == [24058, 33658], mnist""",
    'label_smoothing_runs': """
        from resnet_course.exercises import label_smoothing_runs
        assert len(label_smoothing_runs(epochs=(1,), sample=True)) == 2""",
    'degradation_curves': """
        from resnet_course.data import get_data
        from resnet_course.figures import degradation_curves
        dls = get_data(URLs.IMAGENETTE_160, presize=40, size=32, bs=32, sample=True)
        assert len(degradation_curves(dls, depths=(8,), epochs=1, width=4)) == 2""",
    'loss_surface': """
        from resnet_course.data import get_data
        from resnet_course.figures import loss_surface, depth_net
        dls = get_data(URLs.IMAGENETTE_160, presize=40, size=32, bs=32, sample=True, device='cpu')   # where the model is
        alphas, losses = loss_surface(depth_net(8, True, width=4), [dls.valid.one_batch()], steps=3)
        assert losses.shape == (3, 3)""",
    'reproduce': """
        from resnet_course.reproduce import reproduce
        assert reproduce('fcn', sample=True, out='out').name.tolist() == ['fcn']""",
}

@pytest.mark.parametrize('name', list(EXPERIMENTS))
def test_experiments_run_from_the_installed_package(name, runner, tmp_path):
    "Each exported experiment, imported in a plain Python process (no notebook globals), runs on the sample"
    code = 'from fastai.vision.all import *' + textwrap.dedent(EXPERIMENTS[name]) + "\nprint('ran')\n"
    r = runner.python(code, cwd=tmp_path, timeout=600)
    assert r.rc == 0 and 'ran' in r.stdout, r

def test_readme_is_generated_from_index():
    sys.path.insert(0, str(ROOT/'scripts'))
    import build_site
    assert (ROOT/'README.md').read_text() == build_site.readme_text(), 'README.md is stale: run make readme'
    first = (ROOT/'README.md').read_text().split('```sh')[1].split('```')[0]
    assert 'make reproduce' in first and 'make test' in first

# Every page that has a module documents its functions and classes in the order the code defines them. nbdev's
# add_show_docs inserts the sections of an export cell that defines several names in reverse; the documentation processor
# named in pyproject.toml (doc_procs, `ShowDocsInOrder` in nbs/maintainers.ipynb) puts them back in order.
MODULE_PAGES = sorted(p.stem for p in (ROOT/'nbs').glob('[0-9]*.ipynb') if (ROOT/'resnet_course'/f"{p.stem.split('_', 1)[1]}.py").exists())

def reference_order(nb_path:Path, configured:bool=True) -> list:
    "The names whose reference sections the documentation build adds to the page of the notebook at `nb_path`, in page order"
    from nbdev.process import NBProcessor
    from nbdev.processors import FilterDefaults
    procs = [p for p in FilterDefaults().procs() if p.__name__ != 'exec_show_docs']   # all of nbdev-docs' processing but running the docs
    assert any(p.__name__ == 'ShowDocsInOrder' for p in procs), 'pyproject.toml names no doc_procs: the reference sections come out reversed'
    if not configured: procs = [p for p in procs if p.__name__ != 'ShowDocsInOrder']
    proc = NBProcessor(nb_path, procs, rm_directives='quarto'); proc.process()
    return [re.search(r'show_doc\(([\w.]+)\)', c.source)[1] for c in proc.nb.cells if getattr(c, 'has_sd', False)]

def code_order(module:Path, names:list) -> list:
    "`names` (functions, classes and `Class.method`s patched onto a class) sorted by where the source of `module` defines them"
    src = module.read_text()
    def at(n):
        cls, _, meth = n.rpartition('.')
        m = re.search(rf'^def {meth}\(self:\s*{cls}\b' if cls else rf'^(?:def|class) {n}\b', src, re.M)
        assert m, f'{n} is not defined in {module.name}'
        return m.start()
    return sorted(names, key=at)

def test_every_module_page_is_checked():
    assert len(MODULE_PAGES) >= 24 and {'50_machine', '60_records', '13_resnet'} <= set(MODULE_PAGES), MODULE_PAGES

@pytest.mark.parametrize('page', MODULE_PAGES)
def test_reference_sections_follow_the_code(page):
    "A page documents its functions and classes in the order its module defines them"
    import importlib
    nb, mod = ROOT/'nbs'/f'{page}.ipynb', page.split('_', 1)[1]
    m = importlib.import_module(f'resnet_course.{mod}')
    shown = reference_order(nb)
    defined = [n for n in m.__all__ if callable(getattr(m, n))]
    assert [n for n in shown if '.' not in n] == defined, f'{nb.name}: reference sections {shown}, code order {defined}'
    assert shown == code_order(ROOT/'resnet_course'/f'{mod}.py', shown), f'{nb.name}: reference sections {shown} are not in the order of the code'

def test_reference_order_check_can_fail(tmp_path):
    "An export cell with two definitions: nbdev alone shows them in reverse, which the test above would catch; the build shows them in order"
    nb = json.loads((ROOT/'nbs'/'13_resnet.ipynb').read_text())
    nb['cells'].append({'cell_type': 'code', 'execution_count': None, 'id': 'twodefs', 'metadata': {}, 'outputs': [],
                        'source': ['#| export\n', 'def first(): pass\n', 'def second(): pass']})
    (tmp_path/'13_resnet.ipynb').write_text(json.dumps(nb))
    assert reference_order(tmp_path/'13_resnet.ipynb', configured=False)[-2:] == ['second', 'first']
    assert reference_order(tmp_path/'13_resnet.ipynb')[-2:] == ['first', 'second']

@pytest.mark.parametrize('module', ['figures', 'learner', 'reproduce', 'speed'])
def test_callback_docs_list_only_their_own_parameters(module):
    "fastai's Callback takes every training hook as a keyword; a course callback defines its own __init__, so its docs list only its parameters"
    import importlib
    from fastai.callback.core import Callback
    from nbdev.showdoc import show_doc
    mod = importlib.import_module(f'resnet_course.{module}')
    cbs = [n for n in mod.__all__ if isinstance(getattr(mod, n), type) and issubclass(getattr(mod, n), Callback)]
    assert cbs, f'no callbacks in {module}'
    listed = [n for n in cbs if 'before_fit' in show_doc(getattr(mod, n))._repr_markdown_()]
    assert not listed, f'the docs of {listed} list every Callback hook as a parameter: give each its own __init__'
