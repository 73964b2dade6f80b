"`python -m resnet_course`: the command line without the installed `resnet-course` script, run from the working tree."
import os, subprocess, sys
from conftest import ROOT, learner_env

def python_m(args, cwd, timeout=300):
    "Run `python -m resnet_course ARGS` from `cwd`, finding the package through PYTHONPATH only"
    env = {**learner_env(), 'PYTHONPATH': str(ROOT)}
    return subprocess.run([sys.executable, '-m', 'resnet_course', *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)

def test_python_m_runs_the_cli(tmp_path, small_dataset):
    r = python_m(['--help'], tmp_path)
    assert r.returncode == 0 and r.stdout.startswith('usage: python -m resnet_course') and 'speedrun' in r.stdout, r.stdout + r.stderr
    r = python_m(['data', '--data', str(small_dataset)], tmp_path)
    assert r.returncode == 0 and 'ok' in r.stdout and '3 classes' in r.stdout, r.stdout + r.stderr
    r = python_m(['reproduce', '--quick', '--models', 'vgg16', '--out', str(tmp_path/'out')], tmp_path)
    assert r.returncode == 2 and 'choose from fcn' in r.stderr and 'Traceback' not in r.stderr, r.stderr[-2000:]
