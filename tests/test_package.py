"The package is what the notebooks export, and it imports cleanly."
import shutil, subprocess, sys, warnings
from pathlib import Path
from conftest import ROOT

def test_nbdev_export_leaves_package_unchanged(tmp_path):
    for p in ('nbs', 'resnet_course', 'pyproject.toml'):
        src = ROOT/p
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path/p)
    subprocess.run([str(Path(sys.executable).parent/'nbdev-export')], cwd=tmp_path, check=True, capture_output=True)
    for f in sorted((ROOT/'resnet_course').glob('*.py')):
        assert (tmp_path/'resnet_course'/f.name).read_text() == f.read_text(), f'{f.name} is out of date: run nbdev-export'
    assert sorted(p.name for p in (tmp_path/'resnet_course').glob('*.py')) == sorted(p.name for p in (ROOT/'resnet_course').glob('*.py'))

def test_one_module_per_notebook():
    nbs = {p.stem.split('_', 1)[1] for p in (ROOT/'nbs').glob('[0-9]*.ipynb')}
    mods = {p.stem for p in (ROOT/'resnet_course').glob('*.py') if not p.stem.startswith('_')}
    assert mods <= nbs, f'modules without a notebook: {mods - nbs}'

def test_import_is_quiet():
    r = subprocess.run([sys.executable, '-W', 'default', '-c', 'import resnet_course.cli'], capture_output=True, text=True)
    assert r.returncode == 0 and 'jit' not in r.stderr, r.stderr

def test_readme_is_generated_from_index():
    sys.path.insert(0, str(ROOT/'scripts'))
    import build_site
    assert (ROOT/'README.md').read_text() == build_site.readme_text(), 'README.md is stale: run python scripts/build_site.py --readme-only'
    first = (ROOT/'README.md').read_text().split('```sh')[1].split('```')[0]
    assert 'make reproduce' in first and 'make test' in first
