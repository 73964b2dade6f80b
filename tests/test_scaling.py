"Distributed training on CPU processes with the gloo backend: `reproduce` under torchrun, as a user would launch it."
import json, os, re, signal, subprocess, sys, time
from pathlib import Path
import pandas as pd, pytest, torch
from conftest import CLI, ROOT

TORCHRUN = str(Path(sys.executable).parent/'torchrun')
# Two gloo processes on the CPU, on any machine: a GPU machine with one GPU cannot give each of two processes its own.
DEVICE = 'cpu'
AUG = 'fastai' if DEVICE == 'cuda' else 'crop'   # the fast path's augmentation on that device

def launch(args, env, **kw):
    "torchrun with 2 processes running `resnet-course ARGS`, on a free port of its own (other tests may launch at the same time)"
    return subprocess.Popen([TORCHRUN, '--standalone', '--nproc_per_node', '2', '--no-python', CLI, *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)

def records(out:Path) -> dict:
    return {p.parent.name.rsplit('-', 1)[0]: json.loads(p.read_text()) for p in out.glob('runs/*/record.json')}

def all_load(out:Path):
    "Every table, record and weight file in `out` loads"
    pd.read_csv(out/'results.csv')
    for p in out.glob('runs/*/record.json'): json.loads(p.read_text())
    for p in out.glob('runs/*/*.pth'): torch.load(p, weights_only=False)

@pytest.fixture(scope='session')   # session: built once, though xdist may run other files' tests in between
def two_process_run(tmp_path_factory):
    """fcn on the sample as one process and as two gloo processes, by `compare_world_sizes` from an interpreter with the course's
    packages but no console scripts beside it, as on a hosted kernel (the torchrun script itself is launched in the tests below)"""
    import site, venv
    tmp = tmp_path_factory.mktemp('ddp')
    env_dir = tmp/'kernel'
    venv.EnvBuilder(with_pip=False, symlinks=True).create(env_dir)
    py = env_dir/'bin'/'python'
    purelib = subprocess.run([str(py), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, 'course.pth').write_text('\n'.join([str(ROOT), *site.getsitepackages()]) + '\n')   # the packages, not the scripts
    assert not (env_dir/'bin'/'resnet-course').exists() and not (env_dir/'bin'/'torchrun').exists()
    code = ('from resnet_course.scaling import compare_world_sizes\n'
            f"df = compare_world_sizes(['reproduce', '--quick', '--models', 'fcn', '--device', {DEVICE!r}], {str(tmp/'out')!r})\n"
            "print(df.to_dict('records'))")
    env = {k: v for k, v in os.environ.items() if k not in ('IN_TEST', 'RESNET_COURSE_SAMPLE', 'PYTHONPATH')}
    r = subprocess.run([str(py), '-c', code], env=env, cwd=tmp, capture_output=True, text=True, timeout=900)
    return tmp/'out'/'2-process', r.returncode, r.stdout + r.stderr

def test_two_processes_finish_and_write_once(two_process_run):
    out, rc, log = two_process_run
    assert rc == 0, log[-3000:]
    assert len(list(out.glob('runs/*/record.json'))) == 1 and len(list(out.glob('runs/*/model.pth'))) == 1
    assert pd.read_csv(out/'results.csv')['world size'].tolist() == [2]
    rec = records(out)['fcn']
    assert rec['settings']['world_size'] == 2 and 'Goyal' in rec['scaling']
    assert rec['settings']['fast'] is False

def test_compare_world_sizes_from_an_interpreter_without_scripts(two_process_run):
    "compare_world_sizes, run where no `resnet-course` or `torchrun` script lies beside the interpreter, trains as 1 and as 2 processes"
    out, rc, log = two_process_run
    assert rc == 0, log[-3000:]
    rows = eval(log.strip().splitlines()[-1])
    assert [row['processes'] for row in rows] == [1, 2] and all(row['top-1 %'] >= 0 for row in rows), rows

def test_gathered_accuracy_equals_one_process(two_process_run, runner):
    "The accuracy recorded by two processes, each validating its shard, equals one process validating all of it with the same weights"
    out, rc, log = two_process_run
    assert rc == 0, log[-3000:]
    code = f'''
import json, torch
from pathlib import Path
from resnet_course.settings import RunSettings, resolve
from resnet_course.data import data_for
from resnet_course.loaders import fast_data_for
from resnet_course.learner import get_learner
from resnet_course.pooling import fcn
rec = json.loads(next(Path({str(out)!r}).glob('runs/fcn-*/record.json')).read_text())
s = RunSettings(**rec['settings'])
run = resolve(s, {DEVICE!r})
dls = fast_data_for(run) if s.fast else data_for(run)
learn = get_learner(dls, fcn(dls.c))
learn.model.load_state_dict(torch.load(next(Path({str(out)!r}).glob('runs/fcn-*/model.pth')), weights_only=True))
with learn.no_bar(): loss, acc, top5 = learn.validate()
print('single', acc, rec['history'][-1]['accuracy'], top5, rec['history'][-1]['top_k_accuracy'])
'''
    r = runner.python(code, timeout=300)   # a process of its own, a child of the harness's fork server, which has imported the package
    single, acc2, top5_1, top5_2 = r.stdout.split('single')[-1].split()
    assert abs(float(single) - float(acc2)) < 1e-6 and abs(float(top5_1) - float(top5_2)) < 1e-6, r.stdout + r.stderr[-2000:]

def test_killed_rank_stops_the_launcher_and_the_rerun_resumes(tmp_path, cli_env):
    "From the fast data path, kill rank 1 while the second model trains: torchrun stops with a message naming the failure; the rerun reuses the first model"
    out = tmp_path/'ddp'
    args = ['reproduce', '--quick', '--fast', '--models', 'fcn,resblock', '--device', DEVICE, '--out', str(out)]
    p = launch(args, cli_env)
    t0 = time.time()
    while 'fcn' not in records(out) and p.poll() is None and time.time() - t0 < 300: time.sleep(0.1)
    assert 'fcn' in records(out), p.stdout.read()[-3000:] if p.poll() is not None else 'fcn never finished'
    ranks = {}
    for pid in os.listdir('/proc'):
        if not pid.isdigit(): continue
        try: env = dict(l.split('=', 1) for l in Path(f'/proc/{pid}/environ').read_bytes().decode(errors='ignore').split('\0') if '=' in l)
        except OSError: continue
        ppid = int(Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[1]) if Path(f'/proc/{pid}/stat').exists() else None
        if ppid == p.pid and 'RANK' in env: ranks[env['RANK']] = int(pid)
    assert set(ranks) == {'0', '1'}, ranks
    os.kill(ranks['1'], signal.SIGKILL)
    log = p.communicate(timeout=120)[0]
    assert p.returncode != 0
    assert 'exitcode  : -9' in log and 'rank      : 1' in log, log[-2000:]
    assert log.count('[1/2] fcn') == 1 and log.count('[2/2] resblock') == 1, 'only the main process prints'
    assert 'resblock' not in records(out)
    all_load(out)
    accelerate = [str(Path(sys.executable).parent/'accelerate'), 'launch', '--multi_gpu', '--num_processes', '2', '--num_machines', '1',
                  '--mixed_precision', 'no', '--dynamo_backend', 'no', '--no_python', CLI]
    r = subprocess.Popen(accelerate + args, env=cli_env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log2 = r.communicate(timeout=600)[0]   # the rerun goes through Accelerate's launcher: the same code, the other way in
    assert r.returncode == 0, log2[-3000:]
    assert 'fcn: done before, reusing' in log2
    assert set(records(out)) == {'fcn', 'resblock'} and records(out)['resblock']['settings']['world_size'] == 2
    assert all(r['settings']['fast'] and r['row']['data path'] == f'fast, {AUG} augmentation' for r in records(out).values())
    all_load(out)

# ---------------------------------------------------------------------------------------------- a hosted kernel's interpreter
# Colab's and Kaggle's Python has no `resnet-course` or `torchrun` script beside it: the notebooks launch through `-m`.
BESIDE = re.compile(r'Path\(sys\.executable\)\.parent|sys\.executable\)\.parent')

def test_notebooks_and_package_run_no_script_beside_the_interpreter():
    "No notebook cell and no module of the package builds the path of a script beside the interpreter (the tests may: they run in the venv)"
    found = [p.name for p in sorted((ROOT/'nbs').glob('*.ipynb')) if BESIDE.search(p.read_text())]
    found += [p.name for p in sorted((ROOT/'resnet_course').glob('*.py')) if BESIDE.search(p.read_text())]
    assert not found, f'these run a script from beside the interpreter, which a hosted kernel does not have: {found}'

# ---------------------------------------------------------------------------------------------- the full-data path under torchrun
def test_full_data_run_under_torchrun_resumes_and_finishes(tmp_path, cli_env, small_dataset):
    """Two gloo processes train on a real (small) dataset, not the sample, so that the full-data path runs: killed after an epoch,
    the rerun resumes from the progress file (saved with the model's own names, not DDP's `module.` ones), and the main process's
    confusion matrix and top losses (which fastai would gather from every process) do not wait for ever on the others"""
    out = tmp_path/'ddp'
    args = ['reproduce', '--data', str(small_dataset), '--models', 'fcn', '--epochs', '12', '--size', '32', '--bs', '4', '--device', DEVICE, '--out', str(out)]
    p = launch(args, cli_env)
    progress = lambda: next(out.glob('runs/fcn-*/progress.pth'), None)
    t0 = time.time()
    while progress() is None and p.poll() is None and time.time() - t0 < 300: time.sleep(0.1)
    assert progress() is not None, p.stdout.read()[-3000:] if p.poll() is not None else 'no progress after 300 s'
    children = [int(c) for c in Path(f'/proc/{p.pid}/task/{p.pid}/children').read_text().split()]   # the ranks (torchrun starts them in sessions of their own)
    for pid in children + [p.pid]: os.kill(pid, signal.SIGKILL)       # the file is renamed into place whole: it is complete or absent
    p.wait(60)
    t0 = time.time()
    while any(Path(f'/proc/{pid}').exists() and Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0] != 'Z' for pid in children) and time.time() - t0 < 30: time.sleep(0.1)
    saved = torch.load(progress(), weights_only=False)
    assert not any(k.startswith('module.') for k in saved['model']), list(saved['model'])[:3]
    r = launch(args, cli_env)
    log = r.communicate(timeout=300)[0]
    assert r.returncode == 0, log[-3000:]
    assert 'resuming after epoch' in log and 'does not fit this model' not in log, log[-3000:]
    rec = records(out)['fcn']
    assert [h['epoch'] for h in rec['history']] == list(range(1, 13)) and rec['settings']['world_size'] == 2 and rec.get('resumed_after_epoch')
    for f in ('confusion.json', 'confusion.png', 'top_losses.png'): assert (out/'runs'/f"fcn-{rec['row']['run']}"/f).exists(), f
    assert sum(map(sum, json.loads((out/'runs'/f"fcn-{rec['row']['run']}"/'confusion.json').read_text())['matrix'])) == 12   # every validation image, once
