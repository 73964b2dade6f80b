"""`reuse_or_make` (nbs/51_files.ipynb): a result is reused only for equal settings, a result of other settings is never
overwritten silently, and a damaged store is moved aside with a message instead of crashing."""
import json
import pytest
import resnet_course  # noqa: F401
from resnet_course.files import OtherSettingsError, load_results, reuse_or_make

class Counted:
    "A stand-in for a long run that counts how often it is made"
    def __init__(self): self.calls = []
    def __call__(self, **settings):
        def make():
            self.calls.append(settings)
            return {'top-1 %': 50 + settings['epochs'], 'date': '2026-11-30', 'hardware': 'CPU only'}
        return make

def test_equal_settings_are_reused_not_made_again(tmp_path, capsys):
    store, run = tmp_path/'runs.json', Counted()
    first = reuse_or_make(store, {'epochs': 3, 'sizes': (128, 160)}, run(epochs=3))
    before = store.stat().st_mtime_ns
    again = reuse_or_make(store, {'epochs': 3, 'sizes': (128, 160)}, run(epochs=3))    # read back, the stored tuple is a list: still equal
    as_list = reuse_or_make(store, {'epochs': 3, 'sizes': [128, 160]}, run(epochs=3))
    assert again == as_list == first and len(run.calls) == 1
    assert store.stat().st_mtime_ns == before                                         # not even rewritten
    assert f'Reusing the record {store}, made 2026-11-30 on CPU only.' in capsys.readouterr().out

def test_other_settings_are_kept_beside_in_a_keyed_store(tmp_path):
    store, run = tmp_path/'speedrun.json', Counted()
    for seed in (0, 1, 2): reuse_or_make(store, {'epochs': 3, 'seed': seed}, run(epochs=3, seed=seed))
    reuse_or_make(store, {'epochs': 3, 'seed': 1}, run(epochs=3, seed=1))
    assert len(run.calls) == 3                                                        # three seeds made once each
    assert [e['settings']['seed'] for e in load_results(store)] == [0, 1, 2]

def test_other_settings_are_refused_where_the_store_holds_one_result(tmp_path):
    store, run = tmp_path/'degradation.json', Counted()
    reuse_or_make(store, {'epochs': 3, 'size': 32}, run(epochs=3), keep_others=False)
    kept = store.read_text()
    with pytest.raises(OtherSettingsError, match=r'other settings \(epochs: 3 -> 5\).*another folder \(--out\)'):
        reuse_or_make(store, {'epochs': 5, 'size': 32}, run(epochs=5), keep_others=False)
    assert store.read_text() == kept and len(run.calls) == 1                          # nothing made, nothing overwritten

def test_a_missing_file_of_the_result_makes_it_again(tmp_path):
    store, csv, run = tmp_path/'landscape.json', tmp_path/'landscape.csv', Counted()
    reuse_or_make(store, {'epochs': 3}, run(epochs=3), keep_others=False, needs=[csv])
    csv.write_text('a,b\n')
    reuse_or_make(store, {'epochs': 3}, run(epochs=3), keep_others=False, needs=[csv])
    assert len(run.calls) == 1
    csv.unlink()
    reuse_or_make(store, {'epochs': 3}, run(epochs=3), keep_others=False, needs=[csv])
    assert len(run.calls) == 2 and len(load_results(store)) == 1

def test_defaults_fill_settings_added_since_an_entry_was_made(tmp_path):
    store, run = tmp_path/'augs.json', Counted()
    reuse_or_make(store, {'epochs': 3}, run(epochs=3))
    reuse_or_make(store, {'epochs': 3, 'bf16': False}, run(epochs=3), defaults={'bf16': False})
    assert len(run.calls) == 1
    reuse_or_make(store, {'epochs': 3, 'bf16': True}, run(epochs=3), defaults={'bf16': False})
    assert len(run.calls) == 2

DAMAGE = {'cut short': '[{"settings": {"epochs": 3}, "res', 'not JSON': 'garbage', 'not a list': '{"epochs": 3}',
          'an entry without settings': '[{"result": 1}]', 'not text': b'\xff\xfe\x00'}

@pytest.mark.parametrize('damage', list(DAMAGE))
def test_a_damaged_store_is_moved_aside_with_a_message(tmp_path, capsys, damage):
    store, run = tmp_path/'runs.json', Counted()
    bad = DAMAGE[damage]
    store.write_bytes(bad if isinstance(bad, bytes) else bad.encode())
    assert reuse_or_make(store, {'epochs': 3}, run(epochs=3))['top-1 %'] == 53        # made again, no crash
    aside = [p for p in tmp_path.iterdir() if p.name.startswith('runs.json.damaged-')]
    assert len(aside) == 1
    said = capsys.readouterr().out
    if damage == 'an entry without settings':                                          # one bad entry: it alone goes aside, as it was
        assert json.loads(aside[0].read_text()) == json.loads(bad) and f'an entry of {store}' in said and 'is not a {"settings"' in said, said
    else:
        assert aside[0].read_bytes() == (bad if isinstance(bad, bytes) else bad.encode())   # the damaged file is kept as it was
        assert f'{store} cannot be read as a store of results' in said
    assert len(load_results(store)) == 1
