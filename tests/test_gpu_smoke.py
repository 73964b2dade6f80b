"`make gpu-smoke` (scripts/gpu_smoke.py) on this machine: every check that does not need CUDA passes, and the rest say they were skipped."
import re, subprocess, sys
from conftest import ROOT, learner_env

def test_gpu_smoke_passes_here(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT/'scripts'/'gpu_smoke.py'), '--keep', str(tmp_path/'smoke')], cwd=ROOT,
                       env={**learner_env(), 'PYTHONPATH': str(ROOT)}, capture_output=True, text=True, timeout=600)
    lines = [l for l in r.stdout.splitlines() if re.match(r'(pass|FAIL|skip: needs CUDA) ', l)]
    names = [re.sub(r'^(pass|FAIL|skip: needs CUDA)\s+', '', l).split(' (')[0] for l in lines]
    assert r.returncode == 0 and not any(l.startswith('FAIL') for l in lines), r.stdout[-4000:] + r.stderr[-2000:]
    for must in ('imports', 'device, compute capability and precision', 'uint8 cache on the device', 'lr_find, fit and TTA',
                 'fp16 with loss scaling', 'bf16', 'torch.compile', 'interrupt, then resume on the device', 'resnet-course reproduce --quick',
                 'resnet-course speedrun --quick', 'resnet-course bench --quick', 'resnet-course figures --quick', 'benchmark_conv1x1',
                 "a notebook's device pattern"):
        assert any(n.startswith(must) for n in names), f'no check named {must!r} in {names}'
    import torch
    skipped = [l for l in lines if l.startswith('skip')]
    assert (len(skipped) == 0) if torch.cuda.is_available() else (len(skipped) == 3), lines   # fp16, bf16 and compile need CUDA
    assert sum(l.startswith('pass') for l in lines) == len(lines) - len(skipped)
