"""The GitHub Actions workflows the course ships: CI (test.yaml) and the Pages site (deploy.yaml).

They cannot run here, so they are checked offline: against GitHub's workflow schema (vendored in
check-jsonschema), and for the few things that would break CI or the site without any schema noticing.
"""
import importlib.util, re, subprocess, sys, tomllib
import pytest, yaml
from conftest import ROOT

WORKFLOWS = ROOT/'.github'/'workflows'
TEST, DEPLOY = WORKFLOWS/'test.yaml', WORKFLOWS/'deploy.yaml'

def load(path):
    wf = yaml.safe_load(path.read_text())
    assert isinstance(wf, dict), f'{path.name} is not a YAML mapping'
    # PyYAML reads the bare key `on` as the boolean True (YAML 1.1); GitHub reads it as "on"
    if True in wf: wf['on'] = wf.pop(True)
    return wf

def triggers(wf):
    on = wf.get('on')
    return {on: None} if isinstance(on, str) else dict.fromkeys(on) if isinstance(on, list) else (on or {})

def steps(wf):
    "(job name, index, step) for every step of every job, in order"
    return [(name, i, s) for name, job in wf['jobs'].items() for i, s in enumerate(job.get('steps', []))]

def step_index(wf, pred, what):
    found = [(job, i) for job, i, s in steps(wf) if pred(s)]
    assert found, f'no step that {what}'
    return found[0]

def runs(pattern): return lambda s: bool(re.search(pattern, s.get('run', '')))
def uses(action): return lambda s: s.get('uses', '').split('@')[0] == action

def nbdev_cfg(): return tomllib.loads((ROOT/'pyproject.toml').read_text())['tool']['nbdev']

def test_workflows_match_github_schema():
    "Both files validate against GitHub's workflow schema, with no network (the schema ships with check-jsonschema)"
    if importlib.util.find_spec('check_jsonschema') is None:
        pytest.fail("check-jsonschema is not installed, so the workflows cannot be validated. It is a dev dependency: "
                    "`.venv/bin/pip install -e '.[dev]'` (or `.venv/bin/pip install check-jsonschema`).")
    for f in (TEST, DEPLOY): assert f.is_file(), f'{f.relative_to(ROOT)} is missing'
    proc = subprocess.run([sys.executable, '-m', 'check_jsonschema', '--builtin-schema', 'vendor.github-workflows',
                           str(TEST), str(DEPLOY)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f'the workflows do not match GitHub\'s schema:\n{proc.stdout}{proc.stderr}'

def test_every_job_has_a_timeout():
    "A job without `timeout-minutes` that hangs (a stuck download, a training cell) holds a runner for 6 hours"
    for f in (TEST, DEPLOY):
        for name, job in load(f)['jobs'].items():
            assert 'timeout-minutes' in job, f'{f.name}: job {name!r} has no timeout-minutes'

def test_ci_runs_on_push_and_pull_request():
    on = triggers(load(TEST))
    assert 'push' in on and 'pull_request' in on, f'test.yaml must run on push and pull_request, not only on {sorted(on)}'

def test_ci_checks_notebooks_clean_and_exported_before_testing():
    wf = load(TEST)
    clean = step_index(wf, runs(r'nbdev-clean[\s\S]*nbdev-export[\s\S]*git status --porcelain'),
                       'runs nbdev-clean and nbdev-export, then checks `git status --porcelain`')
    tests = step_index(wf, runs(r'\bmake test\b|scripts/run_tests\.py'), 'runs `make test` (or scripts/run_tests.py)')
    assert clean[0] == tests[0] and clean[1] < tests[1], 'the clean-tree check must come before the tests, in the same job'

def test_ci_fetches_and_caches_datasets_before_tests():
    "On GitHub there is no ../shared/bin/data-install: the datasets are downloaded (once, then cached) before the tests"
    wf = load(TEST)
    setup = step_index(wf, runs(r'\bmake setup\b'), 'runs `make setup`')
    fetch = step_index(wf, lambda s: all(u in s.get('run', '') for u in ('untar_data', 'URLs.IMAGENETTE_160', 'URLs.MNIST')),
                       'fetches Imagenette-160 and MNIST with untar_data')
    tests = step_index(wf, runs(r'\bmake test\b|scripts/run_tests\.py'), 'runs `make test` (or scripts/run_tests.py)')
    assert setup[0] == fetch[0] == tests[0], 'setup, data and tests must run in the same job'
    assert setup[1] < fetch[1] < tests[1], 'the datasets must be fetched after setup (with the course\'s fastai) and before the tests'
    job = wf['jobs'][fetch[0]]
    fetch_run = job['steps'][fetch[1]]['run']
    assert '.venv/bin/python' in fetch_run, 'fetch the datasets with the venv\'s python, where fastai is installed'
    cache = step_index(wf, uses('actions/cache'), 'caches the datasets with actions/cache')
    c = job['steps'][cache[1]].get('with', {})
    assert cache[1] < fetch[1] and '.fastai/data' in str(c.get('path')), 'cache ~/.fastai/data, restored before the fetch'
    for name in ('imagenette2-160', 'mnist_png'):
        assert name in c.get('key', ''), f'the cache key should name every fetched dataset; {name} is missing'

def test_deploy_publishes_docs_to_pages():
    wf, cfg = load(DEPLOY), nbdev_cfg()
    push = triggers(wf).get('push') or {}
    assert cfg['branch'] in push.get('branches', []), f"deploy.yaml must run on push to {cfg['branch']} (pyproject's [tool.nbdev] branch)"
    assert 'concurrency' in wf, 'deploy.yaml needs a concurrency group, so two deployments never overlap'
    deploy_jobs = [name for name, job in wf['jobs'].items() if any(uses('actions/deploy-pages')(s) for s in job.get('steps', []))]
    assert deploy_jobs, 'no job deploys with actions/deploy-pages'
    for name in deploy_jobs:
        perms = {**(wf.get('permissions') or {}), **(wf['jobs'][name].get('permissions') or {})}
        for p in ('pages', 'id-token'):
            assert perms.get(p) == 'write', f'job {name!r} deploys to Pages, so it needs `{p}: write` permission'
    quarto = step_index(wf, uses('quarto-dev/quarto-actions/setup'), 'sets up Quarto')
    render = step_index(wf, runs(r'\bnbdev-docs\b'), 'renders the site with nbdev-docs')
    upload = step_index(wf, uses('actions/upload-pages-artifact'), 'uploads the site with actions/upload-pages-artifact')
    assert quarto[0] == render[0] == upload[0] and quarto[1] < render[1] < upload[1], 'set up Quarto, render, then upload, in one job'
    path = str(wf['jobs'][upload[0]]['steps'][upload[1]].get('with', {}).get('path', '')).strip('/').removeprefix('./')
    assert path == cfg['doc_path'], f"the Pages artifact is {path!r}, but nbdev-docs renders into doc_path = {cfg['doc_path']!r}"
