"""Every notebook's fast-path cells, with each augmentation.

The fast path picks its augmentation with `default_aug`: the chapter's ('fastai') on a GPU, the cheap crop on a CPU. So
`nbdev-test` on a CPU only ever runs those cells with 'crop', and a cell that holds only for 'crop' breaks on every GPU
kernel (58_loaders once asserted that decoded batches lie in 0..1, which fastai's pipeline, decoding to bytes, does not do).
Here each notebook that uses the fast path runs as `nbdev-test` runs it, in a process of its own whose `default_aug` answers
the augmentation this machine does not default to (nbdev-test, in the same suite, runs the default one)."""
import json, re, subprocess, sys
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
import sys
import resnet_course.settings as settings
settings.default_aug = lambda device: {aug!r}          # before the notebook imports it
from nbdev.config import get_config
from nbdev.test import test_nb
cfg = get_config()
flags = cfg.tst_flags.split() if isinstance(cfg.tst_flags, str) else list(cfg.tst_flags or [])
ok, secs = test_nb({path!r}, skip_flags=flags, basepath=cfg.config_path)
sys.exit(0 if ok else 1)
'''

def test_the_fast_notebooks_are_found():
    assert {'33_bench.ipynb', '34_fast.ipynb', '58_loaders.ipynb', '59_speed.ipynb'} <= set(fast_notebooks()), fast_notebooks()

def other_augs() -> list:
    "The augmentations nbdev-test does not run here: it runs each notebook with this machine's default already"
    import torch
    from resnet_course.settings import FAST_AUGS, default_aug
    return [a for a in FAST_AUGS if a != default_aug(torch.device('cuda' if torch.cuda.is_available() else 'cpu'))]

@pytest.mark.parametrize('aug', other_augs())
@pytest.mark.parametrize('nb', fast_notebooks())
def test_notebook_with_each_augmentation(nb, aug):
    r = subprocess.run([sys.executable, '-c', RUN.format(aug=aug, path=str(ROOT/'nbs'/nb))], cwd=ROOT/'nbs',
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f'{nb} fails with the {aug!r} augmentation as the default:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}'

def test_the_default_is_swapped():
    "The swap this file relies on reaches the package's code too, which imports `default_aug` after the swap"
    code = ('import resnet_course.settings as s; s.default_aug = lambda d: "fastai"\n'
            'from resnet_course.settings import RunSettings\nfrom resnet_course.loaders import fast_data_for\n'
            'print(fast_data_for(RunSettings(sample=True), "cpu").aug)')
    r = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.stdout.strip().splitlines()[-1:] == ['fastai'], r.stdout + r.stderr[-3000:]
