import os, shutil, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent/'resnet-course')

@pytest.fixture
def cli_env(tmp_path):
    "Environment for running the CLI as a learner would: sample mode off unless asked, non-interactive plots"
    env = {k: v for k, v in os.environ.items() if k not in ('IN_TEST', 'RESNET_COURSE_SAMPLE')}
    env.update(MPLBACKEND='Agg', PYTHONUNBUFFERED='1')
    return env
