"""No stored number can change without the course noticing (issue 34, items 1 and 2): every stored result carries a checksum of
its own contents, and one reader validates each entry of a store as it reads it. An edited or damaged entry is named with
its file, moved aside, and made again; nothing crashes, nothing is trusted blindly."""
import json
from pathlib import Path
import pytest
from conftest import ROOT
import resnet_course  # noqa: F401
from resnet_course.files import signed, load_results
from resnet_course.fast import SpeedRun, speed_runs, kept_runs, seed_table, seed_summary
from resnet_course.goals import ablation, ablation_table

TOY = SpeedRun(model='fcn', phases=((1, 32),), presize=40, bs=32, tta=False)

@pytest.fixture(scope='module')
def store(tmp_path_factory):
    "A speed-run store with two toy seeds, made once; each test works on a copy"
    out = tmp_path_factory.mktemp('speed')
    speed_runs('book-in-3', (1, 2), out, sample=True, device='cpu', r=TOY)
    return (out/'speedrun.json').read_text()

def damaged(tmp_path, store, change) -> Path:
    "A copy of the store whose first entry `change` alters, keeping its old checksum unless `change` re-signs it"
    entries = json.loads(store)
    entries[0] = change(entries[0])
    (tmp_path/'speedrun.json').write_text(json.dumps(entries))
    return tmp_path

def edit_top1(e, value=99.9):
    e['result']['result']['top-1 %'] = value; e['result']['result']['training s'] = 1.0
    return e

CASES = {
    'a top-1 edited by hand': (lambda e: edit_top1(e), 'does not match its checksum'),
    'a result that is a string': (lambda e: signed({**e, 'result': 'seven percent'}), 'holds no run record'),
    'no history': (lambda e: signed({**e, 'result': {k: v for k, v in e['result'].items() if k != 'history'}}), 'has no history of epochs'),
    'a top-1 of "7%"': (lambda e: signed(edit_top1(e, '7%')), "has a top-1 of '7%'"),
    'unsigned': (lambda e: {k: v for k, v in e.items() if k != 'checksum'}, 'has no checksum'),
}

@pytest.mark.parametrize('case', list(CASES))
def test_a_bad_entry_is_named_moved_aside_and_made_again(tmp_path, store, capsys, case):
    change, why = CASES[case]
    out = damaged(tmp_path, store, change)
    runs = kept_runs(out, 'book-in-3', TOY)                          # the reader: the bad entry is left out, with one line
    said = capsys.readouterr().out
    assert [x['recipe']['seed'] for x in runs] == [2], runs
    assert why in said and str(out/'speedrun.json') in said and said.count('Warning') == 1, said
    aside = list(out.glob('speedrun.json.damaged-*'))
    assert len(aside) == 1 and len(json.loads(aside[0].read_text())) == 1    # kept beside the store, not deleted
    assert seed_summary(runs)['worst top-1 %'] <= 100 and len(seed_table(runs)) == 1   # no fake number reaches a table
    again = speed_runs('book-in-3', (1, 2), out, sample=True, device='cpu', r=TOY)   # seed 1 is trained again, seed 2 reused
    assert sorted(x['recipe']['seed'] for x in again) == [1, 2] and all(x['result']['top-1 %'] <= 100 for x in again)
    assert len(load_results(out/'speedrun.json')) == 2

def test_an_ablation_entry_without_its_lever_is_refused(tmp_path, capsys):
    "An ablation entry that names no lever is moved aside when read, before anything is trained for it"
    out = tmp_path
    ablation(out, levers=['no label smoothing'], sample=True, device='cpu', r=TOY)
    entries = json.loads((out/'ablation.json').read_text())
    entries[0]['settings'].pop('lever'); (out/'ablation.json').write_text(json.dumps([signed(e) for e in entries]))
    capsys.readouterr()
    df = ablation_table(out, r=TOY, seed=42)
    assert list(df.lever) == ['the recipe'] and 'names no lever of the ablation' in capsys.readouterr().out

def test_the_h200_calibration_record_is_signed_and_complete():
    "The record the GPU estimates read: its checksum matches its contents (an edit by hand shows), and it names its source and date"
    import json
    from resnet_course.costs import CALIBRATION_KEYS, H200_CALIBRATION, read_calibration
    from resnet_course.files import content_digest
    p = ROOT/'nbs'/'results'/H200_CALIBRATION
    rec = json.loads(p.read_text())
    assert rec['checksum'] == content_digest({k: v for k, v in rec.items() if k != 'checksum'}), f'{p} was edited without its checksum'
    assert rec['source'] and rec['date'] and rec['machine']['gpu'] and all(k in read_calibration(ROOT/'nbs'/'results') for k in CALIBRATION_KEYS)
