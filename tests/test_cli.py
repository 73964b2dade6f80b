"""The `resnet-course` command, run as a learner runs it: its own process, on the real datasets.

Each command runs in this process through its entry point (tests/cli_runner.py), with its own arguments, environment,
folder, output and exit code; Ctrl-C and SIGKILL go to a child process of its own (a child of the harness's fork server)."""
import json, time
from pathlib import Path
import numpy as np, pandas as pd, pytest
from PIL import Image
from conftest import ROOT

@pytest.fixture
def run(runner):
    "run(args, env, timeout, cwd): the finished command, with `returncode`, `stdout` and `stderr`"
    return lambda args, env=None, timeout=600, cwd=ROOT: runner.cli(args, env=env, cwd=cwd, timeout=timeout)

# matplotlib's first two colours: the chapter's bars and the training loss; the fast path's bars and the validation loss
CHAPTER_COLOUR, FAST_COLOUR = (31, 119, 180), (255, 127, 14)

def colour_share(png:Path, rgb:tuple, tol:int=40) -> float:
    "The share of the image's pixels within `tol` levels of the colour `rgb`: zero for a plot without lines or bars of that colour"
    a = np.asarray(Image.open(png).convert('RGB')).astype(int)
    return float((np.abs(a - np.array(rgb)).max(-1) <= tol).mean())

def check_loss_plot(png:Path, rec:dict):
    "The saved loss plot holds both curves: the training loss at every step, ending at the last epoch's, and the validation loss at each epoch's end"
    lines, hist = rec['loss_plot'], rec['history']
    assert set(lines) == {'train', 'valid'}, f'{png}: the plot has the lines {sorted(lines)}'
    train, valid = np.array(lines['train']), np.array(lines['valid'])
    assert len(train) >= len(hist) and np.all(np.diff(train[:, 0]) > 0), f'{png}: the training curve has {len(train)} points'
    assert np.isclose(train[-1, 1], hist[-1]['train_loss'], rtol=1e-4)
    assert np.allclose(valid[:, 1], [h['valid_loss'] for h in hist], rtol=1e-4) and len(valid) == len(hist)
    assert colour_share(png, CHAPTER_COLOUR) > 0.001 and colour_share(png, FAST_COLOUR) > 0.0002, f'{png}: the curves are not drawn'

def records(out:Path) -> dict:
    "name -> record of every finished run in `out`"
    return {p.parent.name.rsplit('-', 1)[0]: json.loads(p.read_text()) for p in out.glob('runs/*/record.json')}

def test_data_reports_real_counts(run, cli_env):
    r = run(['data'], cli_env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'train 9,469 (expected 9,469), val 3,925 (expected 3,925)' in r.stdout
    assert 'training 60,000' in r.stdout and 'testing 10,000' in r.stdout
    assert 'Warning' not in r.stderr, r.stderr

def test_data_checks_any_imagenet_style_folder(run, cli_env, small_dataset):
    r = run(['data', '--data', str(small_dataset)], cli_env)
    assert r.returncode == 0 and '3 classes, train 24, val 12' in r.stdout, r.stdout + r.stderr
    (small_dataset/'val').rename(small_dataset/'valid')
    r = run(['data', '--data', str(small_dataset)], cli_env)
    assert r.returncode == 1 and 'has no val/ folder' in r.stdout, r.stdout + r.stderr

def test_bad_command_is_refused(run, cli_env):
    r = run(['train'], cli_env)
    assert r.returncode == 2 and "invalid choice: 'train'" in r.stderr

def test_unknown_model_names_the_choices(run, cli_env, tmp_path):
    r = run(['reproduce', '--quick', '--models', 'fcn,resnet9', '--out', str(tmp_path)], cli_env)
    assert r.returncode == 2 and 'argument --models' in r.stderr   # refused by argparse, before any import
    assert 'resnet9' in r.stderr and 'choose from fcn,resblock,resblock2,resnet18,resnet50' in r.stderr
    assert not (tmp_path/'results.csv').exists()

def test_non_numeric_epochs_refused(run, cli_env):
    r = run(['reproduce', '--epochs', 'many'], cli_env)
    assert r.returncode == 2 and '--epochs' in r.stderr

def test_missing_dataset_fails_fast_with_fix(run, cli_env, tmp_path):
    env = dict(cli_env, FASTAI_HOME=str(tmp_path/'empty_home'))
    t0 = time.time()
    r = run(['reproduce', '--quick', '--models', 'fcn', '--out', str(tmp_path/'out')], env, timeout=120)
    assert r.returncode == 1
    assert "imagenette2-160" in r.stderr and 'data-install' in r.stderr, r.stderr
    assert time.time() - t0 < 60
    assert not list((tmp_path/'empty_home').rglob('*.JPEG'))

def test_reproduce_quick_writes_table_and_curves(run, cli_env, tmp_path):
    "The quick run, as `make reproduce` runs it on a CPU: its default folder, every model, the table and a record per model"
    r = run(['reproduce', '--quick'], cli_env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = tmp_path/'results'/'sample'
    df = pd.read_csv(out/'results.csv')
    assert df.name.tolist() == ['fcn', 'resblock', 'resblock2', 'resnet18', 'resnet50']
    assert df['book top-1 %'].tolist() == [65.9, 66.8, 69.3, 75.7, 87.3]
    assert df.parameters.tolist()[3] == 11_708_744 - 990 * 513   # ResNet18: timm's 1000-class count less 990 classes' weights and bias
    assert (df.data == 'imagenette2-160 sample').all() and df.hardware.str.len().gt(0).all()
    for name, rec in records(out).items():
        check_loss_plot(out/'runs'/f"{name}-{rec['row']['run']}"/'loss.png', rec)
    assert '| ResNet18' in (out/'results.md').read_text()
    assert 'they show that every step runs, not how good the models are' in r.stdout

def test_interrupted_run_resumes_without_retraining(run, runner, cli_env, tmp_path):
    "Interrupt a run (Ctrl-C) after its first model is done; the rerun reuses that model's record and weights."
    args = ['reproduce', '--quick', '--models', 'fcn,resblock,resblock2,resnet18', '--out', str(tmp_path)]   # three models left when fcn ends: the interrupt lands in one of them
    proc = runner.start(args, env=cli_env, cwd=ROOT)
    t0 = time.time()
    while 'fcn' not in records(tmp_path) and not proc.done() and time.time() - t0 < 120: time.sleep(0.05)
    assert 'fcn' in records(tmp_path), 'the first model never finished' + str(proc.wait(1) if proc.done() else '')
    proc.interrupt(); r = proc.wait(60)
    assert r.rc == 130 and 'Interrupted. Every finished model' in r.stderr and 'Traceback' not in r.stderr, r
    assert 'resnet18' not in records(tmp_path), 'the run should have been interrupted before its last model'
    weights = next(tmp_path.glob('runs/fcn-*/model.pth')); mtime = weights.stat().st_mtime
    r = run(args, cli_env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'fcn: done before, reusing' in r.stdout
    assert weights.stat().st_mtime == mtime
    assert records(tmp_path)['resblock']['row']['model'] == 'ResBlock per stage'
    assert len(pd.read_csv(tmp_path/'results.csv')) == 4

def test_killed_run_resumes_from_its_last_epoch(run, runner, cli_env, tmp_path, small_dataset):
    "Kill a 4-epoch run on a small real dataset during epoch 3; the rerun continues from epoch 3, and its record covers all 4 epochs"
    args = ['reproduce', '--data', str(small_dataset), '--models', 'fcn', '--epochs', '4', '--size', '32', '--bs', '8', '--out', str(tmp_path)]
    proc = runner.start(args, env=cli_env, cwd=ROOT)
    progress = lambda: next(tmp_path.glob('runs/fcn-*/progress.pth'), None)
    t0 = time.time()
    import torch
    def epochs_done():
        p = progress()
        try: return torch.load(p, weights_only=False)['epochs_done'] if p else 0
        except Exception: return 0
    while epochs_done() < 2 and not proc.done() and time.time() - t0 < 300: time.sleep(0.1)
    assert epochs_done() >= 2, str(proc.wait(1)) if proc.done() else 'no progress after 300 s'
    proc.kill(); proc.wait(60)
    assert 'fcn' not in records(tmp_path)
    r = run(args, cli_env, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert 'resuming after epoch' in r.stdout
    rec = records(tmp_path)['fcn']
    assert [h['epoch'] for h in rec['history']] == [1, 2, 3, 4]
    assert not progress()

def test_unknown_device_is_refused(run, cli_env, tmp_path):
    for dev, msg in (('gpu0', "use 'cuda' or 'cpu'"), ('mps', "only on 'cuda'"), ('meta', "only on 'cuda'"), ('garbage', "use 'cuda' or 'cpu'")):
        r = run(['reproduce', '--quick', '--models', 'fcn', '--device', dev, '--out', str(tmp_path)], cli_env)
        assert r.returncode == 2 and msg in r.stderr and '--device' in r.stderr and 'Traceback' not in r.stderr, r.stderr[-500:]   # refused by argparse

def test_missing_gpu_falls_back_with_notice(run, cli_env, tmp_path):
    import pytest, torch
    if torch.cuda.is_available(): pytest.skip('this machine has a GPU: there is nothing to fall back from')
    r = run(['reproduce', '--quick', '--models', 'fcn', '--device', 'cuda', '--out', str(tmp_path)], cli_env)
    assert r.returncode == 0, r.stderr[-500:]
    assert r.stdout.count('cuda was asked for but no CUDA GPU is available: training on the CPU') == 1
    assert 'fp32' not in r.stdout.split('training on the CPU', 1)[1].split('\n', 1)[0], r.stdout   # the notice names no precision: the run says its own

def test_reproduce_fast_keeps_its_runs_apart(run, cli_env, tmp_path):
    "--fast trains from the fast data path into its own runs; the chapter pipeline's run of the same model stays"
    for extra in ([], ['--fast']):
        r = run(['reproduce', '--quick', '--models', 'fcn', '--out', str(tmp_path), *extra], cli_env)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    df = pd.read_csv(tmp_path/'results.csv')
    import torch
    aug = 'fastai' if torch.cuda.is_available() else 'crop'   # the fast path's augmentation on the default device
    assert sorted(df['data path']) == ["chapter's", f'fast, {aug} augmentation'], df
    assert len(list(tmp_path.glob('runs/fcn-*/record.json'))) == 2

def test_bench_quick_writes_table_and_chart(run, cli_env, tmp_path):
    r = run(['bench', '--quick', '--models', 'fcn', '--out', str(tmp_path)], cli_env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    df = pd.read_csv(tmp_path/'bench.csv')
    assert df.model.tolist() == ['fully convolutional net'] and (df[['chapter loader img/s', 'fast loader img/s', 'loader speed-up']] > 0).all(axis=None)
    assert 'measured on:' in (tmp_path/'bench.md').read_text()
    assert colour_share(tmp_path/'bench.png', CHAPTER_COLOUR) > 0.005 and colour_share(tmp_path/'bench.png', FAST_COLOUR) > 0.005, 'bench.png lacks its bars'
    r = run(['bench', '--quick', '--models', 'vgg16', '--out', str(tmp_path)], cli_env)
    assert r.returncode != 0 and 'choose from fcn,resnet18,resnet50' in r.stderr

def test_speedrun_quick_keeps_each_seed_and_reuses_it(run, cli_env, tmp_path):
    "Each seed's run is kept in speedrun.json as it ends; asking again for a kept seed trains nothing and rewrites nothing"
    r = run(['speedrun', '--quick', '--seeds', '1,2', '--out', str(tmp_path)], cli_env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    entries = json.loads((tmp_path/'speedrun.json').read_text())
    assert [e['settings']['recipe']['seed'] for e in entries] == [1, 2]
    for e in entries:
        rec = e['result']
        assert set(rec['result']) == {'top-1 %', 'training s', 'TTA top-1 %'} and len(rec['history']) == 2
        assert 0 <= rec['result']['top-1 %'] <= 100 and rec['data'].endswith('sample') and rec['hardware'] and rec['date']
    md = (tmp_path/'speedrun.md').read_text()
    assert md.startswith('measured on:') and '2 seed(s)' in md and 'worst' in md, md
    kept = (tmp_path/'speedrun.json').read_text()
    r = run(['speedrun', '--quick', '--seeds', '2', '--out', str(tmp_path)], cli_env)
    assert r.returncode == 0 and (tmp_path/'speedrun.json').read_text() == kept, r.stdout[-2000:] + r.stderr[-2000:]
    assert 'Reusing the record' in r.stdout, r.stdout[-2000:]

def test_options_a_command_ignores_are_refused(run, cli_env, tmp_path):
    "An option the command would silently ignore stops it before any work, naming the option and what the command uses"
    r = run(['figures', '--quick', '--bs', '64', '--out', str(tmp_path)], cli_env)
    assert r.returncode == 2 and 'unrecognized arguments: --bs 64' in r.stderr, r.stderr[-1000:]
    assert 'usage: resnet-course figures' in r.stderr and '--size SIZE' in r.stderr, 'the usage shown is not the command\'s own'
    assert not any(tmp_path.iterdir())

HEAVY = ('torch', 'fastai', 'numpy', 'pandas', 'matplotlib')
PROBE = """import sys, time
t0 = time.time()
from resnet_course.cli import main
try: main(sys.argv[1:])
finally: print('HEAVY', [m for m in %r if m in sys.modules], 'SECONDS', round(time.time() - t0, 2), file=sys.stderr)
""" % (HEAVY,)

def probe(*argv, env):
    "Run the command line's entry point in a fresh process; its exit code, output and the heavy modules it imported"
    import subprocess, sys, re
    r = subprocess.run([sys.executable, '-c', PROBE, *argv], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    m = re.search(r"HEAVY (\[.*\]) SECONDS ([\d.]+)", r.stderr)
    assert m, r.stderr
    return r.returncode, r.stdout, r.stderr, eval(m[1]), float(m[2])

@pytest.mark.parametrize('command', ['data', 'reproduce', 'figures', 'bench', 'speedrun'])
def test_each_command_has_its_own_help_and_it_is_fast(command, cli_env):
    "`resnet-course COMMAND --help` lists that command's options only, with its defaults, and imports neither torch nor fastai"
    rc, out, err, heavy, seconds = probe(command, '--help', env=cli_env)
    assert rc == 0 and f'usage: resnet-course {command}' in out, out + err
    assert heavy == [], f'--help imported {heavy}: import them only when a command runs'
    own = {'data': {'--data'}, 'reproduce': {'--models', '--epochs', '--size', '--bs', '--seed', '--out', '--quick', '--device', '--lr-find', '--data', '--fast', '--lr', '--full'},
           'figures': {'--size', '--epochs', '--out', '--quick', '--device'}, 'bench': {'--models', '--epochs', '--out', '--quick', '--device', '--data'},
           'speedrun': {'--recipe', '--seeds', '--ablation', '--levers', '--reference', '--models', '--out', '--quick', '--device', '--data'}}[command]
    import re
    listed = set(re.findall(r'^  (--[\w-]+)', out, re.M))
    assert listed == own, f'{command} --help lists {sorted(listed)}, not its own options {sorted(own)}'
    if command == 'figures': assert '(default: 32)' in out and '(default: 3, or 1 with' in ' '.join(out.split()), out

@pytest.mark.parametrize('argv, phrase', [
    (['--help'], 'resnet-course COMMAND --help'),
    (['reproduce', '--models', ''], "argument --models: '' names no model"),
    (['bench', '--models', ','], 'names no model'),
    (['reproduce', '--bs', '1'], 'argument --bs: 1 is too small'),
    (['reproduce', '--lr', '0'], 'argument --lr: 0 is not a positive learning rate'),
    (['reproduce', '--lr', 'fast'], "argument --lr: 'fast' is not a number"),
    (['reproduce', '--lr-f'], 'unrecognized arguments: --lr-f'),
    (['figures', '--bs', '64'], 'unrecognized arguments: --bs 64'),
    (['train'], "invalid choice: 'train'"),
    (['speedrun', '--seeds', f'42,{2**64}'], f'argument --seeds: {2**64} is out of range'),   # issue 34: every seed, before seed 42 trains
    (['speedrun', '--seeds', '-1'], 'argument --seeds: -1 is out of range'),
    (['reproduce', '--seed', '-1'], 'argument --seed: -1 is out of range'),
    (['reproduce', '--epochs', '0'], 'argument --epochs: 0 is out of range'),
    (['reproduce', '--size', '100000'], 'argument --size: 100000 is out of range'),
    (['figures', '--size', '1000'], 'argument --size: 1000 is out of range'),
    (['reproduce', '--device', 'garbage'], "argument --device: 'garbage' is not a device"),
    (['bench', '--device', 'mps'], "only on 'cuda'"),
    (['reproduce', '--models', 'resnet9'], 'argument --models: unknown model(s) resnet9: choose from fcn,resblock,resblock2,resnet18,resnet50'),
    (['bench', '--models', 'vgg16'], 'choose from fcn,resnet18,resnet50'),
    (['speedrun', '--models', 'vgg16'], 'choose from fcn,resblock2,resnet18,resnet50,resnet10'),
    (['speedrun', '--models', 'fcn,resnet18'], 'a speed run trains one'),
])
def test_argument_mistakes_are_refused_at_once(argv, phrase, cli_env):
    "Help and argument errors come before any heavy import: no empty model list, no batch of one image, no abbreviations"
    rc, out, err, heavy, seconds = probe(*argv, env=cli_env)
    assert rc == (0 if argv == ['--help'] else 2) and phrase in out + err, out + err
    assert heavy == [], f'{argv} imported {heavy} before refusing: import them only when a command runs'

def test_the_command_line_knows_every_speed_recipe():
    "`--recipe` checks names without importing torch, so its list must be the fast module's"
    from resnet_course.options import SPEED_RECIPE_NAMES
    from resnet_course.fast import SPEED_RECIPES
    assert SPEED_RECIPE_NAMES == tuple(SPEED_RECIPES)

def test_the_command_line_knows_every_limit_and_model():
    "The parsers check ranges and names without importing torch, so their copies must be the modules' values"
    from resnet_course import options, settings, chapter, bench, fast
    assert (options.MAX_SIZE, options.MAX_EPOCHS, options.MAX_SEED) == (settings.MAX_SIZE, settings.MAX_EPOCHS, settings.MAX_SEED)
    assert options.SAMPLE_CAPS == {k: getattr(settings.SAMPLE, k) for k in options.SAMPLE_CAPS}
    assert options.CHAPTER_MODEL_NAMES == tuple(chapter.CHAPTER_MODELS) and options.BENCH_MODEL_NAMES == bench.BENCH_MODELS
    assert options.SPEED_MODEL_NAMES == tuple(fast.SPEED_MODELS)
    import torch
    with pytest.raises(ValueError, match='65,536'): settings.RunSettings(bs=options.MAX_BS + 1)
    for name in options.OTHER_DEVICES: torch.device(name)        # each is a device type PyTorch knows

@pytest.mark.parametrize('argv, phrase', [
    (['reproduce', '--quick', '--models', 'resnet50', '--size', '1000'], 'the sample trains 64 px crops at most'),
    (['reproduce', '--quick', '--bs', '64'], 'the sample trains 32 images a batch at most'),
    (['figures', '--quick', '--size', '100'], '--size 100 with --quick'),
    (['speedrun', '--levers', 'fp32'], 'add --ablation'),
])
def test_options_that_disagree_are_refused_before_torch(argv, phrase, cli_env):
    "Issue 34: what --quick would silently change, and an option that needs another, are refused before torch is imported"
    rc, out, err, heavy, seconds = probe(*argv, env=cli_env)
    assert rc == 1 and phrase in err and 'Traceback' not in err, out + err
    assert 'torch' not in heavy and 'fastai' not in heavy, f'{argv} imported {heavy} before refusing'

def test_the_command_line_knows_every_lever():
    "`--levers` checks names without importing torch, so its list must be the fast module's"
    from resnet_course.options import LEVER_NAMES
    from resnet_course.goals import LEVERS, ABLATION
    assert LEVER_NAMES == tuple(LEVERS) and list(LEVERS.values()) == list(ABLATION)
