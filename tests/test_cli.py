"The `resnet-course` command, run as a learner runs it: in a subprocess, on the real datasets."
import json, signal, subprocess, time
import pandas as pd
from conftest import CLI, ROOT

def run(args, env, timeout=600):
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)

def test_data_reports_real_counts(cli_env):
    r = run(['data'], cli_env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'train 9,469 (expected 9,469), val 3,925 (expected 3,925)' in r.stdout
    assert 'training 60,000' in r.stdout and 'testing 10,000' in r.stdout
    assert 'Warning' not in r.stderr, r.stderr

def test_bad_command_is_refused(cli_env):
    r = run(['train'], cli_env)
    assert r.returncode == 2 and "invalid choice: 'train'" in r.stderr

def test_unknown_model_names_the_choices(cli_env, tmp_path):
    r = run(['reproduce', '--quick', '--models', 'fcn,resnet9', '--out', str(tmp_path)], cli_env)
    assert r.returncode == 1
    assert 'resnet9' in r.stderr and 'choose from fcn,resblock,resblock2,resnet18,resnet50' in r.stderr
    assert not (tmp_path/'results.csv').exists()

def test_non_numeric_epochs_refused(cli_env):
    r = run(['reproduce', '--epochs', 'many'], cli_env)
    assert r.returncode == 2 and '--epochs' in r.stderr

def test_missing_dataset_fails_fast_with_fix(cli_env, tmp_path):
    env = dict(cli_env, FASTAI_HOME=str(tmp_path/'empty_home'))
    t0 = time.time()
    r = run(['reproduce', '--quick', '--models', 'fcn', '--out', str(tmp_path/'out')], env, timeout=120)
    assert r.returncode == 1
    assert "imagenette2-160" in r.stderr and 'data-install' in r.stderr, r.stderr
    assert time.time() - t0 < 60
    assert not list((tmp_path/'empty_home').rglob('*.JPEG'))

def test_reproduce_quick_writes_table_and_curves(cli_env, tmp_path):
    t0 = time.time()
    r = run(['reproduce', '--quick', '--out', str(tmp_path)], cli_env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert time.time() - t0 < 180, 'the quick run must take under 3 minutes on 2 CPU cores'
    df = pd.read_csv(tmp_path/'results.csv', comment='#')
    assert list(df.columns) == ['model', 'parameters', 'input size', 'epochs', 'top-1 %', 'top-5 %', 's/epoch', 'book top-1 %']
    assert df['book top-1 %'].tolist() == [65.9, 66.8, 69.3, 75.7, 87.3]
    assert df.parameters.tolist()[3] == 11_708_744 - 990 * 513   # ResNet18: timm's 1000-class count less 990 classes' weights and bias
    assert df['top-1 %'].between(0, 100).all() and (df['top-5 %'] >= df['top-1 %']).all()
    header = (tmp_path/'results.csv').read_text().splitlines()[:6]
    assert any(h.startswith('# hardware:') for h in header) and any('sample' in h for h in header)
    for name in ('fcn', 'resblock', 'resblock2', 'resnet18', 'resnet50'):
        assert (tmp_path/f'{name}_loss.png').stat().st_size > 5000
    assert '| ResNet18' in (tmp_path/'results.md').read_text()

def test_interrupted_run_resumes_without_retraining(cli_env, tmp_path):
    "Interrupt a run (Ctrl-C) after its first model is done; the rerun reuses that model's checkpoint."
    args = [CLI, 'reproduce', '--quick', '--models', 'fcn,resnet50', '--out', str(tmp_path)]
    proc = subprocess.Popen(args, env=cli_env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    done = tmp_path/'checkpoints'/'fcn.json'
    t0 = time.time()
    while not done.exists() and proc.poll() is None and time.time() - t0 < 120: time.sleep(0.05)
    assert done.exists(), 'the first model never finished'
    proc.send_signal(signal.SIGINT); proc.wait(timeout=60)
    assert not (tmp_path/'checkpoints'/'resnet50.json').exists(), 'the run should have been interrupted during resnet50'
    mtime = (tmp_path/'checkpoints'/'fcn.pth').stat().st_mtime
    r = subprocess.run(args, env=cli_env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'fcn: resumed from' in r.stdout
    assert (tmp_path/'checkpoints'/'fcn.pth').stat().st_mtime == mtime
    assert json.loads((tmp_path/'checkpoints'/'resnet50.json').read_text())['row']['model'] == 'ResNet50 (bottleneck)'
    assert len(pd.read_csv(tmp_path/'results.csv', comment='#')) == 2

def test_unknown_device_is_refused(cli_env, tmp_path):
    r = run(['reproduce', '--quick', '--models', 'fcn', '--device', 'gpu0', '--out', str(tmp_path)], cli_env)
    assert r.returncode == 1 and "use 'cuda' or 'cpu'" in r.stderr, r.stderr[-500:]

def test_missing_gpu_falls_back_with_notice(cli_env, tmp_path):
    import pytest, torch
    if torch.cuda.is_available(): pytest.skip('this machine has a GPU: there is nothing to fall back from')
    r = run(['reproduce', '--quick', '--models', 'fcn', '--device', 'cuda', '--out', str(tmp_path)], cli_env)
    assert r.returncode == 0, r.stderr[-500:]
    assert r.stdout.count('cuda was asked for but no CUDA GPU is available: training on the CPU') == 1
