"""Every notebook's fast-path cells, with each augmentation.

The fast path picks its augmentation with `default_aug`: the chapter's ('fastai') on a GPU, the cheap crop on a CPU. So
`nbdev-test` on a CPU only ever runs those cells with 'crop', and a cell that holds only for 'crop' breaks on every GPU
kernel (58_loaders once asserted that decoded batches lie in 0..1, which fastai's pipeline, decoding to bytes, does not do).
Here each notebook that uses the fast path runs as `nbdev-test` runs it, in one process (as each of nbdev-test's workers runs
several notebooks) whose `default_aug` answers the augmentation this machine does not default to (nbdev-test, in the same
suite, runs the default one)."""
import json, re, subprocess, sys
from pathlib import Path
import pytest
from conftest import ROOT

FAST_PATH = re.compile(r'\bfast_data_for\(|\breproduce\([^)]*fast=True|\bbench\(|\bspeed_runs?\(|\bablation\(|\bcompare_augs\(')

def fast_notebooks() -> list:
    "The notebooks with a code cell that runs the fast path with its default augmentation"
    found = []
    for p in sorted((ROOT/'nbs').glob('*.ipynb')):
        cells = [''.join(c['source']) for c in json.loads(p.read_text())['cells'] if c['cell_type'] == 'code']
        if any(FAST_PATH.search(s) and '#| export' not in s for s in cells): found.append(p.name)
    return found

RUN = '''
import json, sys
import resnet_course.settings as settings
settings.default_aug = lambda device: {aug!r}          # before any notebook or module imports it
from nbdev.config import get_config
from nbdev.test import test_nb
from resnet_course.settings import RunSettings, resolve
from resnet_course.loaders import fast_data_for
cfg = get_config()
flags = cfg.tst_flags.split() if isinstance(cfg.tst_flags, str) else list(cfg.tst_flags or [])
swapped = fast_data_for(resolve(RunSettings(sample=True, fast=True), 'cpu')).aug   # what the package's own code now picks
passed = {{nb: test_nb(nb, skip_flags=flags, basepath=cfg.config_path)[0] for nb in {paths!r}}}
print('RESULT', json.dumps({{'swapped': swapped, 'passed': passed}}))
'''

def test_the_fast_notebooks_are_found():
    assert {'33_bench.ipynb', '34_fast.ipynb', '38_goals.ipynb', '58_loaders.ipynb', '59_speed.ipynb'} <= set(fast_notebooks()), fast_notebooks()

def other_augs() -> list:
    "The augmentations nbdev-test does not run here: it runs each notebook with this machine's default already"
    import torch
    from resnet_course.settings import FAST_AUGS, default_aug
    return [a for a in FAST_AUGS if a != default_aug(torch.device('cuda' if torch.cuda.is_available() else 'cpu'))]

@pytest.mark.parametrize('aug', other_augs())
def test_every_fast_notebook_with_the_other_augmentation(aug):
    "Each notebook that uses the fast path, run as nbdev-test runs it, with `aug` as the default; all in one process, which imports fastai once"
    paths = [str(ROOT/'nbs'/nb) for nb in fast_notebooks()]
    r = subprocess.run([sys.executable, '-c', RUN.format(aug=aug, paths=paths)], cwd=ROOT/'nbs', capture_output=True, text=True, timeout=1200)
    lines = [l for l in r.stdout.splitlines() if l.startswith('RESULT ')]
    assert r.returncode == 0 and lines, f'the run did not finish:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}'
    got = json.loads(lines[-1][len('RESULT '):])
    assert got['swapped'] == aug, f"the swap did not reach the package's code: fast_data_for picked {got['swapped']!r}"
    failed = [Path(p).name for p, ok in got['passed'].items() if not ok]
    assert not failed, f'{failed} fail with the {aug!r} augmentation as the default:\n{r.stdout[-5000:]}\n{r.stderr[-5000:]}'
