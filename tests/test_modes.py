"""The three training modes: the sample (tests, --quick), the reduced full-data version (a CPU's default) and the chapter's
full recipe (a GPU's default), as the environment, nbdev-test and the device pick them, and as `reproduce` labels them."""
import json
from pathlib import Path
import pandas as pd, pytest, torch
from conftest import make_small_dataset
from resnet_course import machine
from resnet_course.settings import train_mode, sample_mode, n_epochs, cpu_bf16, REDUCED, MODE_ENV, SAMPLE_ENV
from resnet_course.chapter import mode_settings, recipe_label, CHAPTER_MODELS
from resnet_course.reproduce import reproduce
import resnet_course.reproduce as rp
from resnet_course.cli import main

@pytest.fixture
def machine_with(monkeypatch):
    "machine_with(cuda, **env): a machine with or without CUDA, outside nbdev-test, with only the mode variables given set"
    def make(cuda:bool, **env):
        monkeypatch.setattr(torch.cuda, 'is_available', lambda: cuda)
        if cuda: monkeypatch.setattr(torch.cuda, 'get_device_name', lambda d=None: 'NVIDIA H200')
        if cuda: monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda d=None: (9, 0))
        for k in ('IN_TEST', SAMPLE_ENV, MODE_ENV): monkeypatch.delenv(k, raising=False)
        for k, v in env.items(): monkeypatch.setenv(k, v)
        machine._noticed.clear()
    return make

@pytest.mark.parametrize('cuda, env, mode', [
    (False, {}, 'reduced'),                                   # a laptop: real numbers at CPU scale
    (True, {}, 'full'),                                       # a GPU: the chapter's recipe
    (False, {'IN_TEST': '1'}, 'sample'),                      # nbdev-test, on either machine, stays fast
    (True, {'IN_TEST': '1'}, 'sample'),
    (False, {SAMPLE_ENV: '0'}, 'full'),                       # the old variable still asks for the full recipe on a CPU...
    (True, {SAMPLE_ENV: '1'}, 'sample'),                      # ...or for the sample on a GPU
    (False, {MODE_ENV: 'full', 'IN_TEST': '1'}, 'full'),      # a variable wins over nbdev-test
    (True, {MODE_ENV: 'reduced'}, 'reduced'),
    (False, {MODE_ENV: 'sample', SAMPLE_ENV: 'yes'}, 'sample'),
])
def test_the_mode_follows_the_environment_then_nbdev_test_then_the_device(machine_with, cuda, env, mode):
    machine_with(cuda, **env)
    assert train_mode() == mode
    assert sample_mode() == (mode != 'full')                   # code without a reduced version stays on the sample unless full
    assert n_epochs(20) == {'sample': 1, 'reduced': REDUCED.long_epochs, 'full': 20}[mode]
    assert n_epochs(5) == {'sample': 1, 'reduced': 5, 'full': 5}[mode]

def test_a_cpu_is_told_once_what_it_trains_and_how_to_change_it(machine_with, capsys):
    machine_with(False)
    train_mode(); train_mode(); sample_mode()
    out = capsys.readouterr().out
    assert out.count('Notice') == 1 and 'reduced version' in out and f'{REDUCED.size}-px' in out, out
    assert f'{MODE_ENV}=full' in out and f'{MODE_ENV}=sample' in out and 'how long it expects to take' in out, out
    machine_with(True); train_mode()
    assert capsys.readouterr().out == ''                      # a GPU trains the recipe: nothing to tell

@pytest.mark.parametrize('env, phrase', [({MODE_ENV: 'small'}, 'sample, reduced or full'), ({SAMPLE_ENV: 'maybe'}, 'set it to 1'),
                                         ({MODE_ENV: 'full', SAMPLE_ENV: '1'}, 'disagree')])
def test_a_bad_mode_variable_is_refused_with_the_fix(machine_with, env, phrase):
    machine_with(False, **env)
    with pytest.raises(ValueError, match=phrase): train_mode()

def test_the_reduced_settings_are_the_full_data_at_cpu_scale():
    for name, cm in CHAPTER_MODELS.items():
        s = mode_settings(name, 'reduced')
        epochs = 5 if cm.epochs <= 5 else 3              # ResNet50's 20 become 3: its epochs cost the most
        assert (s.size, s.epochs, s.bs, s.fast, s.aug, s.bf16, s.sample) == (64, epochs, cm.bs, True, 'crop', cpu_bf16(), False), name
        assert s.presize == round(64 * cm.presize / cm.size) and s.source.endswith('imagenette2-160.tgz'), name
        assert recipe_label(name, s) == 'reduced' and recipe_label(name, mode_settings(name, 'full')) == 'chapter'
    assert mode_settings('resnet50', 'reduced').epochs == 3 and CHAPTER_MODELS['resnet50'].epochs == 20

@pytest.mark.parametrize('cuda, env, args, mode', [
    (False, {}, [], 'reduced'), (True, {}, [], 'full'), (False, {}, ['--quick'], 'sample'), (True, {}, ['--quick'], 'sample'),
    (False, {}, ['--full'], 'full'), (False, {SAMPLE_ENV: '0'}, [], 'full'), (True, {MODE_ENV: 'sample'}, [], 'sample'),
    (False, {}, ['--device', 'cpu'], 'reduced'),
    (False, {}, ['--device', 'cuda'], 'reduced'),     # issue 34: no GPU, so it trains on the CPU, in the CPU's mode (not the full recipe: hours)
    (True, {}, ['--device', 'cuda'], 'full'),
])
def test_resnet_course_reproduce_picks_the_mode(machine_with, monkeypatch, cuda, env, args, mode):
    "The command's choice only: `reproduce` is replaced by a recorder of its arguments (the run itself is tested below)"
    machine_with(cuda, **env)
    got = {}
    monkeypatch.setattr(rp, 'reproduce', lambda *a, **kw: got.update(kw))
    main(['reproduce', *args])
    assert got['mode'] == mode

def test_quick_and_full_together_are_refused(machine_with):
    machine_with(False)
    with pytest.raises(SystemExit, match='--quick .* --full'): main(['reproduce', '--quick', '--full'])

def test_a_reduced_run_is_labelled_reduced_in_its_record_its_table_and_its_summary(machine_with, monkeypatch, tmp_path, capsys):
    """A real reduced run of the FCN on 140 real Imagenette images (one batch of 128 an epoch), into the default folder: every
    place its numbers appear says they are reduced, and not the chapter's recipe"""
    machine_with(False)
    data = make_small_dataset(tmp_path/'small', n_classes=10, n_train=14, n_valid=2)
    monkeypatch.setenv('RESNET_COURSE_CACHE', str(tmp_path/'cache'))
    monkeypatch.chdir(tmp_path)
    df = reproduce('fcn', mode='reduced', source=str(data), device='cpu')
    out = tmp_path/'results'/'reduced'                           # apart from results/full and results/sample
    rec = json.loads(next(out.glob('runs/fcn-*/record.json')).read_text())
    assert rec['chapter_recipe'] is False and rec['recipe'] == 'reduced'
    assert rec['settings']['bf16'] == cpu_bf16() and rec['settings']['fast'] and len(rec['history']) == 5
    row = rec['row']
    assert (row['size'], row['epochs'], row['recipe']) == (64, 5, 'reduced')
    assert row['data path'] == 'fast, crop augmentation' + (', bf16' if cpu_bf16() else '')
    assert df.recipe.tolist() == ['reduced'] and pd.read_csv(out/'results.csv').recipe.tolist() == ['reduced']
    assert '| reduced' in (out/'results.md').read_text()
    printed = capsys.readouterr().out
    table = printed[printed.index('| model'):]
    assert 'recipe' in table.splitlines()[0] and 'reduced' in table.splitlines()[2], table
    assert "These are reduced runs" in printed and "not the chapter's recipe" in printed and "The Results page shows the course's own runs" in printed
    assert "minus the book's" not in printed, printed           # a folder of other images: the book's numbers do not apply
    long = [l for l in printed.splitlines() if str(tmp_path) not in l and not l.startswith("Notice") and len(l) > 100]
    assert not long, long

@pytest.mark.parametrize('cuda, env, mode', [(False, {}, 'reduced'), (True, {}, 'full'), (False, {'IN_TEST': '1'}, 'sample')])
def test_a_notebook_training_cell_gets_the_settings_of_its_mode(machine_with, monkeypatch, capsys, cuda, env, mode):
    "What `notebook_learner` hands to the learner builder (replaced by a recorder: a reduced run is trained for real above), and what it prints"
    machine_with(cuda, **env)
    got = {}
    monkeypatch.setattr(rp, 'chapter_learner', lambda name, run, folder=None, cbs=None, make=None: got.update(s=run.settings, make=make) or type('L', (), {})())
    monkeypatch.setattr(rp, 'estimate_seconds', lambda learn, epochs, batches=3: got.update(estimated=epochs) or 150.)
    learn = rp.notebook_learner('resnet50', CHAPTER_MODELS['resnet18'].make)
    assert got['s'] == mode_settings('resnet50', mode).as_run() == learn.settings and got['make'] is CHAPTER_MODELS['resnet18'].make
    said = capsys.readouterr().out
    assert {'reduced': 'reduced version', 'full': "the chapter's recipe", 'sample': 'on the sample'}[mode] in said, said
    assert rp.n_epochs(20) == learn.settings.epochs == {'reduced': 3, 'full': 20, 'sample': 1}[mode]   # the cell's n_epochs(20) agrees with its data
    if mode == 'sample': assert 'estimated' not in got and 'minutes on this' not in said   # seconds: no estimate to wait for
    else: assert got['estimated'] == learn.settings.epochs and 'about 2 minutes on this' in said, said


def test_the_reduced_summary_prints_each_models_gap_to_the_book(capsys):
    "On Imagenette the summary gives top-1 minus the book's for each model, from the rows themselves (the saved reduced run's here)"
    from resnet_course.reproduce import print_summary
    from conftest import ROOT
    rows = pd.read_csv(ROOT/'nbs'/'results'/'cpu'/'reduced'/'results.csv')
    print_summary(rows, Path('results/reduced'), 'reduced')
    printed = capsys.readouterr().out
    for _, r in rows.iterrows(): assert f"  {r['model']}: {r['top-1 %'] - r['book top-1 %']:+.1f} points" in printed, printed
