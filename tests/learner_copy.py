"""A copy of the repository as a learner has it after the README's first command, and the docs built there as `make docs` builds
them: the one docs build of the test suite, which the site tests, the installer check and the README-order checks all read.

`make reproduce` writes a learner's results into `results/` at the clone's root; the docs build runs the notebooks' cells that
import something, and those read records. So the copy holds a finished `reproduce --quick` run (results/sample) and an
interrupted reduced run (results/reduced: two finished models, the third with only its progress file), and installers on the
PATH are stand-ins that record any call: without Quarto, the build must install nothing."""
import json, os, shutil, subprocess, sys
from dataclasses import dataclass
from pathlib import Path
from conftest import ROOT, learner_env

BIN = Path(sys.executable).parent
COURSE_RUNS = ROOT/'nbs'/'results'/'cpu'/'runs'
INSTALLERS = ('sudo', 'curl', 'dpkg', 'installer', 'wget', 'apt-get')

def fresh_copy(dest:Path) -> Path:
    "The repository's files as a clone has them: tracked ones and new ones git does not ignore, from this working tree; no _proc, no results/"
    files = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], cwd=ROOT, capture_output=True, check=True).stdout
    for rel in filter(None, files.decode().split('\0')):
        src = ROOT/rel
        if src.is_file():
            (dest/rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest/rel)
    assert not (dest/'results').exists() and not (dest/'_proc').exists()
    return dest

def env_of(repo:Path, **extra) -> dict:
    "A learner's environment in the copy: its own package first, no test or mode variables, no results folder named"
    env = {k: v for k, v in learner_env().items() if k not in ('RESNET_COURSE_MODE', 'RESNET_COURSE_RESULTS')}
    return {**env, 'PYTHONPATH': str(repo), **extra}

def stand_ins(folder:Path, names) -> Path:
    "Executables named `names` in `folder` that append their name and arguments to folder/calls.log and fail"
    folder.mkdir(parents=True)
    for n in names:
        (folder/n).write_text(f'#!/bin/sh\necho "{n} $*" >> "{folder}/calls.log"\nexit 1\n')
        (folder/n).chmod(0o755)
    return folder

def add_learner_results(repo:Path):
    "What `make reproduce` leaves: a finished quick run of the FCN, and a reduced run interrupted in its third model"
    r = subprocess.run([str(BIN/'resnet-course'), 'reproduce', '--quick', '--models', 'fcn'], cwd=repo, env=env_of(repo),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert len(list((repo/'results'/'sample'/'runs').glob('*/record.json'))) == 1, 'the quick run wrote no record into results/sample'
    runs = repo/'results'/'reduced'/'runs'
    for name in ('fcn', 'resblock'): shutil.copytree(next(COURSE_RUNS.glob(f'{name}-*')), runs/f'{name}-reduced0000')
    (runs/'resblock2-reduced0000').mkdir()
    (runs/'resblock2-reduced0000'/'progress.pth').write_bytes(b'epoch 2 of 5')   # interrupted: progress, no record

@dataclass
class LearnerSite:
    "The site built in a learner's copy: its folder, its pages, the copy, and what the build printed and called"
    out:Path; pages:list; repo:Path; log:str; installer_calls:str

def build_learner_site(tmp:Path) -> LearnerSite:
    repo = fresh_copy(tmp/'repo')
    add_learner_results(repo)
    bin_ = stand_ins(tmp/'bin', INSTALLERS)
    path = os.pathsep.join([str(bin_)] + [d for d in os.environ['PATH'].split(os.pathsep) if d and not (Path(d)/'quarto').exists()])
    assert shutil.which('quarto', path=path) is None
    out = tmp/'site'
    r = subprocess.run([sys.executable, 'scripts/build_site.py', '--out', str(out)], cwd=repo, env=env_of(repo, PATH=path),
                       capture_output=True, text=True, timeout=1800)
    log = r.stdout + r.stderr
    errors = [l for l in log.splitlines() if l.startswith(('Exception:', 'ValueError', 'KeyError', 'FileNotFoundError', 'NameError', 'AssertionError'))]
    assert r.returncode == 0, "the docs build failed in a learner's copy:\n" + '\n'.join(errors[:6]) + '\n' + r.stderr[-3000:]
    calls = (bin_/'calls.log').read_text() if (bin_/'calls.log').exists() else ''
    return LearnerSite(out, sorted(out.glob('*.html')), repo, log, calls)

def outputs_text(nb:dict) -> dict:
    "cell id -> the text of its outputs"
    text = lambda o: ''.join(o.get('text', '')) + ''.join(''.join(v) for k, v in o.get('data', {}).items() if k in ('text/plain', 'text/markdown'))
    return {c.get('id'): ''.join(map(text, c.get('outputs', []))) for c in nb['cells'] if c['cell_type'] == 'code'}
