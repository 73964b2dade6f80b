"""`make gpu-smoke` (scripts/gpu_smoke.py) on this machine: every check that does not need CUDA passes, and the rest say they
were skipped. Then each check that can run on a CPU is run alone with what it checks broken on purpose, and must fail."""
import importlib.util, re, subprocess, sys
import pytest
from conftest import ROOT, learner_env

def test_gpu_smoke_passes_here(tmp_path):
    "Every check but the torchrun one, which test_the_torchrun_check_fails_when_the_processes_do_not_train_together runs whole first"
    r = subprocess.run([sys.executable, str(ROOT/'scripts'/'gpu_smoke.py'), '--keep', str(tmp_path/'smoke'), '--skip', 'torchrun'], cwd=ROOT,
                       env={**learner_env(), 'PYTHONPATH': str(ROOT)}, capture_output=True, text=True, timeout=1200)
    lines = [l for l in r.stdout.splitlines() if re.match(r'(pass|FAIL|skip: needs CUDA) ', l)]
    names = [re.sub(r'^(pass|FAIL|skip: needs CUDA)\s+', '', l).split(' (')[0] for l in lines]
    assert r.returncode == 0 and not any(l.startswith('FAIL') for l in lines), r.stdout[-4000:] + r.stderr[-2000:]
    for must in ('imports', 'device, compute capability and precision', 'uint8 cache on the device', 'crop augmentation on the device',
                 'chapter loader with worker processes', 'lr_find, fit and TTA', 'fp16 with loss scaling', 'bf16', 'torch.compile',
                 'interrupt, then resume on the device', 'resnet-course reproduce --quick', 'resnet-course speedrun --quick',
                 'resnet-course bench --quick', 'resnet-course figures --quick', 'benchmark_conv1x1',
                 "a notebook's device pattern"):
        assert any(n.startswith(must) for n in names), f'no check named {must!r} in {names}'
    assert not any(n.startswith('torchrun') for n in names), names
    import torch
    skipped = [l for l in lines if l.startswith('skip')]
    assert (len(skipped) == 0) if torch.cuda.is_available() else (len(skipped) == 3), lines   # fp16, bf16 and compile need CUDA
    assert sum(l.startswith('pass') for l in lines) == len(lines) - len(skipped)

@pytest.fixture
def smoke(monkeypatch):
    "The smoke command as a module, run in this process so that a test can break what a check checks"
    for k, v in learner_env().items(): monkeypatch.setenv(k, v)
    monkeypatch.delenv('IN_TEST', raising=False)
    spec = importlib.util.spec_from_file_location('gpu_smoke', ROOT/'scripts'/'gpu_smoke.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    def run(only:str, tmp) -> dict:
        rc = mod.main(['--device', 'cpu', '--only', only, '--keep', str(tmp)])
        got = {name: (status, detail) for name, status, detail in mod.RESULTS}
        assert got and all(n.startswith(only) for n in got), got
        return rc, got
    return run

def _raise(*a, **k): raise RuntimeError('broken on purpose')

def _unsharded(self):
    "fastai's `DataLoader.sample` without its split between workers: every worker makes every batch"
    return (b for b in self._DataLoader__idxs)

def _no_crop(aug, size, min_scale=0.5):
    from fastai.vision.all import imagenet_stats
    from resnet_course.loaders import ResizeBatch, NormalizeBytes
    return [ResizeBatch(size), NormalizeBytes(*imagenet_stats)]

def _precision_fp16(device=None): return 'fp16'

def _flip_cpu_bf16():
    import resnet_course.machine as m
    native = m.cpu_bf16()
    return lambda: not native

# (what is broken, the check that must catch it, module, attribute, broken value); None: made when the test runs
MUTATIONS = [
    ('resume cannot load its optimiser state', 'interrupt, then resume', 'resnet_course.reproduce', 'load_opt_state', _raise),
    ('the loader goes item by item, not through the cache', 'uint8 cache on the device', 'resnet_course.loaders', 'CachedDL.cached', property(lambda self: False)),
    ('precision answers fp16 on a CPU', 'device, compute capability and precision', 'resnet_course.machine', 'precision', _precision_fp16),
    ("the CPU's bf16 misread", 'device, compute capability and precision', 'resnet_course.machine', 'cpu_bf16', None),
    ('the crop left out', 'crop augmentation on the device', 'resnet_course.loaders', 'fast_batch_tfms', _no_crop),
    ("workers repeat each other's batches", 'chapter loader with worker processes', 'fastai.data.load', 'DataLoader.sample', _unsharded),
]

@pytest.mark.parametrize('what,name,mod,attr,value', MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_each_check_fails_when_what_it_checks_is_broken(what, name, mod, attr, value, smoke, monkeypatch, tmp_path):
    if value is None: value = _flip_cpu_bf16()
    target = importlib.import_module(mod)
    *owner, leaf = attr.split('.')
    for o in owner: target = getattr(target, o)
    rc, got = smoke(name, tmp_path/'whole')
    assert rc == 0 and all(s == 'pass' for s, _ in got.values()), f'the check fails before anything is broken: {got}'
    monkeypatch.setattr(target, leaf, value)
    rc, got = smoke(name, tmp_path/'broken')
    assert rc == 1 and all(s == 'FAIL' for s, _ in got.values()), f'{what}, but the check passed: {got}'

def test_the_torchrun_check_fails_when_the_processes_do_not_train_together(smoke, monkeypatch, tmp_path):
    "Each process that torchrun launches made to believe it trains alone (world size 1): the two no longer make one run"
    rc, got = smoke('torchrun', tmp_path/'whole')
    assert rc == 0 and all(s == 'pass' for s, _ in got.values()), f'the check fails before anything is broken: {got}'
    site = tmp_path/'site'; site.mkdir()
    (site/'sitecustomize.py').write_text('import resnet_course.scaling as s\ns.world_size = lambda: 1\n')
    monkeypatch.setenv('PYTHONPATH', f"{site}:{ROOT}")
    rc, got = smoke('torchrun', tmp_path/'broken')
    (status, detail), = got.values()
    assert rc == 1 and status == 'FAIL', got      # fastai's own all-reduce, still told of two processes, fails; or one writes alone
