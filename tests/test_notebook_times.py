"scripts/notebook_times.py: the home page's running times come from a record it writes, and it writes none from a failed run"
import json, subprocess, sys
from types import SimpleNamespace
import pytest
from conftest import ROOT
sys.path.insert(0, str(ROOT/'scripts'))
import notebook_times

OUT = "Success.\n10_pooling.ipynb: 46 secs\nindex.ipynb: 3 secs\n"

def test_parse_times_reads_nbdev_tests_timing_lines():
    assert notebook_times.parse_times(OUT) == {'10_pooling.ipynb': 46, 'index.ipynb': 3}
    assert notebook_times.parse_times('nbdev Tests Failed On The Following Notebooks:\n\t10_pooling.ipynb\n') == {}

def _fake_run(stdout, rc):
    return lambda *a, **k: SimpleNamespace(returncode=rc, stdout=stdout, stderr='')

def test_a_failed_or_partial_run_writes_no_record(tmp_path, monkeypatch):
    out = tmp_path/'times.json'
    monkeypatch.setattr(subprocess, 'run', _fake_run(OUT, 1))
    with pytest.raises(SystemExit, match='nothing written'): notebook_times.main(['--out', str(out)])
    monkeypatch.setattr(subprocess, 'run', _fake_run(OUT, 0))              # two notebooks timed, not all of them
    with pytest.raises(SystemExit, match='timed 2 of'): notebook_times.main(['--out', str(out)])
    assert not out.exists()

def test_a_full_run_writes_a_signed_record_naming_the_machine(tmp_path, monkeypatch):
    names = sorted(p.name for p in (ROOT/'nbs').glob('*.ipynb') if not p.name.startswith(('_', '.')))
    monkeypatch.setattr(subprocess, 'run', _fake_run(''.join(f'{n}: 7 secs\n' for n in names), 0))
    out = tmp_path/'times.json'
    notebook_times.main(['--out', str(out)])
    rec = json.loads(out.read_text())
    from resnet_course.files import content_digest
    assert rec['checksum'] == content_digest({k: v for k, v in rec.items() if k != 'checksum'})
    assert set(rec['seconds']) == set(names) and rec['machine']['processor'] and rec['date'] and rec['notebooks at once'] == 1
