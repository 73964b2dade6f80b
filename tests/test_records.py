"""Showing saved runs survives damaged records: one unreadable or incomplete record is skipped with a warning that names it,
and the chapter notebooks still show the best valid run (nbs/60_records.ipynb, `best_record` and `show_training`)."""
import json, warnings
from pathlib import Path
import pytest
import resnet_course  # noqa: F401
from resnet_course.records import best_record, show_training
from resnet_course.files import signed

def record(sample=False, hardware='CPU only (x86_64, 2 cores)', top1=66.3) -> dict:
    "A record as `save_finished` writes it, with its checksum"
    return signed({'settings': {'sample': sample, 'epochs': 5, 'size': 128, 'presize': 160, 'bs': 128}, 'chapter_recipe': True,
                   'row': {'name': 'fcn', 'model': 'fully convolutional net', 'data': 'imagenette2-160', 'hardware': hardware, 'date': '2026-11-29',
                           's/epoch': 400.0, 'top-1 %': top1, 'book top-1 %': 65.9},
                   'history': [{'epoch': 1, 'train_loss': 1.5, 'valid_loss': 1.4, 'accuracy': 0.66, 'seconds': 400.0}], 'weights_sha256': '0' * 64})

DAMAGE = {'cut short': lambda p: p.write_text(json.dumps(record())[:50]),
          'not an object': lambda p: p.write_text('[1, 2]'),
          'a field missing': lambda p: p.write_text(json.dumps({**record(), 'row': {'model': 'fcn'}})),
          'settings missing': lambda p: p.write_text(json.dumps({k: v for k, v in record().items() if k != 'settings'})),
          'not text': lambda p: p.write_bytes(b'\xff\xfe\x00garbage'),
          'seconds not a number': lambda p: p.write_text(json.dumps(signed({**record(), 'row': {**record()['row'], 's/epoch': 'slow'}}))),
          'top-1 edited by hand': lambda p: p.write_text(json.dumps({**record(), 'row': {**record()['row'], 'top-1 %': 99.9}})),
          'top-1 not a number': lambda p: p.write_text(json.dumps(signed({**record(), 'row': {**record()['row'], 'top-1 %': '7%'}}))),
          'no name in its row': lambda p: p.write_text(json.dumps(signed({**record(), 'row': {k: v for k, v in record()['row'].items() if k != 'name'}}))),
          'unsigned': lambda p: p.write_text(json.dumps({k: v for k, v in record().items() if k != 'checksum'}))}

@pytest.mark.parametrize('damage', list(DAMAGE))
def test_a_damaged_record_is_skipped_with_a_warning(tmp_path, damage):
    good = tmp_path/'cpu'/'runs'/'fcn-aaaa'/'record.json'
    bad = tmp_path/'gpu'/'runs'/'fcn-bbbb'/'record.json'       # a GPU run: preferred, were it readable
    for p in (good, bad): p.parent.mkdir(parents=True)
    good.write_text(json.dumps(record()))
    DAMAGE[damage](bad)
    with pytest.warns(UserWarning, match=f'{bad}.*is not a valid record'):
        rec, folder = best_record('fcn', tmp_path)
    assert folder == good.parent and rec['row']['top-1 %'] == 66.3
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        assert show_training('fcn', tmp_path)['row']['top-1 %'] == 66.3

def test_the_best_valid_record_wins(tmp_path):
    for where, rec in (('cpu', record()), ('gpu', record(hardware='NVIDIA H200 (CUDA 13.0)', top1=70.0)), ('sample', record(sample=True, top1=99.0))):
        p = tmp_path/where/'runs'/'fcn-x'/'record.json'; p.parent.mkdir(parents=True); p.write_text(json.dumps(rec))
    assert best_record('fcn', tmp_path)[0]['row']['top-1 %'] == 70.0
