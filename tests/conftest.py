import os, shutil, sys
from pathlib import Path
import pytest
from cli_runner import Runner, stop_all

ROOT = Path(__file__).resolve().parents[1]

CLI = str(Path(sys.executable).parent/'resnet-course')   # the console script, for launchers (torchrun, accelerate)
IMAGENETTE = Path(os.environ.get('FASTAI_HOME', '~/.fastai')).expanduser()/'data'/'imagenette2-160'

def learner_env() -> dict:
    "Environment for running the CLI as a learner would: sample mode off unless asked, non-interactive plots"
    env = {k: v for k, v in os.environ.items() if k not in ('IN_TEST', 'RESNET_COURSE_SAMPLE')}
    env.update(MPLBACKEND='Agg', PYTHONUNBUFFERED='1')
    env['RESNET_COURSE_MODE'] = 'full'   # these tests train the chapter's recipe on small folders; a CPU's reduced default is tested in test_modes.py
    return env

@pytest.fixture
def cli_env(): return learner_env()

@pytest.fixture(scope='session')
def runner(tmp_path_factory):
    """Runs the command line in this process through its entry point, or in a child of the fork server where a process is
    the point (tests/cli_runner.py)"""
    r = Runner(tmp_path_factory.mktemp('runner'), learner_env())
    yield r
    r.close()

@pytest.fixture(autouse=True)
def no_child_outlives_its_test():
    "Whether the test passed or failed, kill every command it started through tests/cli_runner.py that still runs, with its session"
    yield
    stop_all()

def make_small_dataset(root:Path, n_classes:int=3, n_train:int=8, n_valid:int=4) -> Path:
    "An ImageNet-style folder of real Imagenette images: `n_classes` classes, `n_train` and `n_valid` images each"
    wnids = sorted(p.name for p in (IMAGENETTE/'train').iterdir())[:n_classes]
    for split, n in (('train', n_train), ('val', n_valid)):
        for w in wnids:
            (root/split/w).mkdir(parents=True)
            for f in sorted((IMAGENETTE/split/w).glob('*.JPEG'))[:n]: shutil.copy(f, root/split/w)
    return root

def fake_gpu(name:str='NVIDIA H200', capability:tuple=(9, 0), count:int=1):
    "Patch torch's CUDA queries so that this process believes it has `count` GPUs called `name` (as 50_machine.ipynb's `fake_gpu`)"
    from unittest import mock
    import torch
    return mock.patch.multiple(torch.cuda, is_available=lambda: True, device_count=lambda: count, get_device_name=lambda d=None: name,
                               get_device_capability=lambda d=None: capability)

@pytest.fixture
def small_dataset(tmp_path):
    "A 3-class ImageNet-style folder of real images, small enough to train on in seconds"
    return make_small_dataset(tmp_path/'small')

# The longest tests first, so that pytest-xdist's two workers finish together rather than one waiting on a late long test.
LONGEST_FIRST = ('test_faults.py', 'test_scaling.py', 'test_readme_order.py::test_reproduce_quick', 'test_cli.py::test_reproduce_quick',
                 'test_package.py::test_experiments', 'test_site.py', 'test_readme_order.py', 'test_cli.py::test_interrupted')

def pytest_collection_modifyitems(items):
    rank = lambda item: next((i for i, p in enumerate(LONGEST_FIRST) if p in item.nodeid), len(LONGEST_FIRST))
    items.sort(key=rank)   # stable: the order within each rank stays as collected

# Files whose tests share a fixture that is costly to build (a site, a torchrun launch) go to one pytest-xdist worker whole, so
# that the fixture is built once; every other test is handed out on its own. Torchrun launches may run side by side: each one
# takes a free port of its own (`--standalone`, see test_harness). This hook replaces the scheduler that `--dist` names
# (scripts/run_tests.py passes `--dist load`). pytest-xdist's `xdist_group` mark does the same only under `--dist loadgroup`.
SHARED_FIXTURE_FILES = ('test_scaling.py', 'test_site.py')

def scope_of(nodeid:str) -> str:
    "The unit of tests one worker takes whole: a shared-fixture file, or the test alone"
    file = nodeid.split('::', 1)[0]
    return file if Path(file).name in SHARED_FIXTURE_FILES else nodeid

def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling
    class SharedFilesTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid:str) -> str: return scope_of(nodeid)
    return SharedFilesTogether(config, log)
