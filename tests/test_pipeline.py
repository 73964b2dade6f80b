"""The training pipeline's own facts, each checked where a realistic bug would break it: the results row's columns, the
speed run's loss and phase schedule, the reuse rule's defaults, and resume's optimiser state. Each test runs in seconds on
the sample, in this process, on the CPU."""
import json
from dataclasses import replace
import pytest, torch
from fastai.vision.all import Callback, LabelSmoothingCrossEntropyFlat, set_seed

@pytest.fixture(scope='module')
def quick_fcn(tmp_path_factory):
    "One `reproduce` of the FCN on the sample: its results table and its record"
    from resnet_course.reproduce import reproduce
    out = tmp_path_factory.mktemp('quick')
    df = reproduce('fcn', sample=True, out=out, device='cpu')
    rec = json.loads(next(out.glob('runs/fcn-*/record.json')).read_text())
    return df, rec

def test_top5_column_is_top5(quick_fcn):
    "The results row's top-5 is the last epoch's top-5 accuracy, not its top-1 (on the sample an untrained net's two differ)"
    df, rec = quick_fcn
    last = rec['history'][-1]
    assert rec['row']['top-5 %'] == round(100 * last['top_k_accuracy'], 1) and rec['row']['top-1 %'] == round(100 * last['accuracy'], 1)
    assert last['top_k_accuracy'] != last['accuracy'], 'the sample should tell top-5 from top-1'
    assert df['top-5 %'].iloc[-1] == rec['row']['top-5 %']

class Seen(Callback):
    "What the learner trained with: its loss function, and the image size of each epoch's first training batch"
    def before_fit(self): self.loss, self.sizes = self.learn.loss_func, []
    def before_batch(self):
        if self.training and self.iter == 0: self.sizes.append(self.xb[0].shape[-1])

TOY = dict(model='fcn', presize=56, bs=32, tta=False)

def test_speed_run_trains_with_its_label_smoothing_and_phases():
    "A recipe's label smoothing reaches the loss, and each multi-epoch phase starts at its own epoch"
    from resnet_course.fast import SpeedRun, speed_run
    r, seen = SpeedRun(phases=((2, 32), (2, 48)), label_smoothing=0.3, **TOY), Seen()
    rec = speed_run(r, sample=True, device='cpu', cbs=[seen], progress=False)
    assert isinstance(seen.loss, LabelSmoothingCrossEntropyFlat) and seen.loss.func.eps == 0.3, seen.loss
    assert seen.sizes == [32, 32, 48, 48], seen.sizes
    assert rec['recipe']['label_smoothing'] == 0.3 and len(rec['history']) == 4

def test_reuse_keeps_stored_settings_over_defaults(tmp_path):
    "`defaults` only fill settings an older entry lacks: a stored value that differs from its default is not overridden"
    from resnet_course.files import reuse_or_make
    store, calls = tmp_path/'s.json', []
    make = lambda: calls.append(1) or {'top-1 %': 50.0 + len(calls)}
    first = reuse_or_make(store, {'epochs': 3, 'size': 64}, make, defaults={'size': 128})
    assert reuse_or_make(store, {'epochs': 3, 'size': 64}, make, defaults={'size': 128}) == first and len(calls) == 1   # reused
    reuse_or_make(store, {'epochs': 3, 'size': 128}, make, defaults={'size': 128})   # the default's own value: another run
    assert len(calls) == 2
    old = tmp_path/'old.json'   # an entry made before `size` existed reads as having the default
    from resnet_course.files import signed
    old.write_text(json.dumps([signed({'settings': {'epochs': 3}, 'result': {'top-1 %': 40.0}})]))
    assert reuse_or_make(old, {'epochs': 3, 'size': 128}, make, defaults={'size': 128}) == {'top-1 %': 40.0} and len(calls) == 2

def test_resume_puts_back_the_optimiser_state(tmp_path):
    "After `resume`, the optimiser holds the state saved after the last finished epoch, on its parameters, not a fresh one"
    from resnet_course.chapter import chapter_settings, chapter_learner
    from resnet_course.settings import resolve
    from resnet_course.reproduce import resume, SaveProgress
    from resnet_course.records import RunFolder
    from resnet_course.learner import EpochHistory
    s = replace(chapter_settings('fcn', sample=True), epochs=1).as_run()
    run = RunFolder(tmp_path, 'fcn', s)
    learn, hist = chapter_learner('fcn', resolve(s, 'cpu'), run), EpochHistory()
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(1, 1e-3, cbs=[hist, SaveProgress(run, hist)])
    saved = learn.opt.state_dict()['state']
    again = chapter_learner('fcn', resolve(s, 'cpu'), run)
    assert resume(again, run)[0] == 1
    got = again.opt.state_dict()['state']
    tensors = lambda st: [(i, k, v) for i, d in enumerate(st) for k, v in d.items() if isinstance(v, torch.Tensor)]   # fastai: one dict per parameter
    assert tensors(saved) and len(tensors(got)) == len(tensors(saved))
    for (i, k, a), (_, _, b) in zip(tensors(saved), tensors(got)): assert torch.equal(a, b), (i, k)

def test_an_edited_run_record_is_retrained(tmp_path, capsys):
    "A finished run whose record's top-1 was raised by hand is not reused: the record goes aside, the model trains again, the table shows the real number"
    from resnet_course.reproduce import reproduce
    reproduce('fcn', sample=True, out=tmp_path, device='cpu')
    p = next(tmp_path.glob('runs/fcn-*/record.json')); rec = json.loads(p.read_text()); real = rec['row']['top-1 %']
    rec['row']['top-1 %'] = 99.9; p.write_text(json.dumps(rec))
    capsys.readouterr()
    df = reproduce('fcn', sample=True, out=tmp_path, device='cpu')
    assert 'does not match its checksum' in capsys.readouterr().out and list(p.parent.glob('record.json.damaged-*'))
    assert df['top-1 %'].tolist() == [real] and json.loads(p.read_text())['row']['top-1 %'] == real

class CountFits(Callback):
    "How many training phases the learner ran with this callback in it (get_preds starts a fit's events too, but never trains)"
    fits = 0
    def before_train(self): self.fits += 1

def test_a_callers_callback_sees_only_the_real_fit(small_dataset, tmp_path):
    """On real data (not the sample) `reproduce` first times a few steps for its estimate: a callback the caller passes (a logger,
    a planned interrupt) must see only the training itself, not that timing fit"""
    from resnet_course.reproduce import reproduce
    cb = CountFits()
    reproduce('fcn', epochs=1, size=32, bs=8, source=str(small_dataset), out=tmp_path/'out', device='cpu', cbs=[cb])
    assert cb.fits == 1, f'the callback saw {cb.fits} training phases for one epoch'

def spied(monkeypatch, *names) -> dict:
    "The calls of each of `names` (functions of machine or settings), in every course module that holds the name"
    import importlib, pkgutil, resnet_course
    from resnet_course import machine, settings
    calls = {}
    for name in names:
        real, seen = getattr(machine, name, None) or getattr(settings, name), calls.setdefault(name, [])
        def spy(*a, _real=real, _seen=seen, **k): _seen.append(a); return _real(*a, **k)
        for m in pkgutil.iter_modules(resnet_course.__path__):   # as `from .machine import *` gives it
            mod = importlib.import_module(f'resnet_course.{m.name}')
            if getattr(mod, name, None) is real: monkeypatch.setattr(mod, name, spy)
    return calls

def test_from_the_command_line_the_device_is_found_once_and_each_run_resolved_once(tmp_path, monkeypatch):
    """`resnet-course reproduce`'s command, followed down to the training loop: `pick_device` runs once, at the door, and
    each model's run is resolved once (`run_on`, which caps the sample's batch size); every layer below reads that `Run`"""
    from resnet_course.cli import COMMANDS
    calls = spied(monkeypatch, 'pick_device', 'run_on')
    COMMANDS['reproduce'](models='fcn,resblock', quick=True, device='cpu', out=str(tmp_path))
    assert len(calls['pick_device']) == 1, calls['pick_device']
    assert len(calls['run_on']) == 2 and all(s.bs == 128 for s, _ in calls['run_on']), calls['run_on']   # asked: 128; run: 32
    recs = [json.loads(p.read_text()) for p in tmp_path.glob('runs/*/record.json')]
    assert len(recs) == 2 and all(r['settings']['bs'] == 32 for r in recs), [r['settings']['bs'] for r in recs]

def test_a_speed_run_with_its_reference_and_a_lever_finds_the_device_once(tmp_path, monkeypatch):
    "`resnet-course speedrun --quick --reference --ablation --levers fp32`: the device is found once, at the command's door"
    from resnet_course.cli import COMMANDS
    calls = spied(monkeypatch, 'pick_device')
    COMMANDS['speedrun'](quick=True, reference=True, ablation=True, levers=('fp32',), device='cpu', out=str(tmp_path/'r'))
    assert len(calls['pick_device']) == 1, calls['pick_device']
    assert (tmp_path/'reference.json').exists() and (tmp_path/'r'/'speedrun.json').exists(), list(tmp_path.rglob('*.json'))

def test_reproduce_without_quick_leaves_finding_the_device_to_its_door(monkeypatch):
    """Without --quick or --full the command asks `train_mode` which mode the device means, and finds no device itself:
    `reproduce`, the door it calls, finds it once (the test above)"""
    import resnet_course.reproduce as rp
    from resnet_course.cli import COMMANDS
    from resnet_course.settings import train_mode
    calls, got = spied(monkeypatch, 'pick_device'), {}
    monkeypatch.setattr(rp, 'reproduce', lambda *a, **k: got.update(k))
    COMMANDS['reproduce'](models='fcn', device='cpu')
    assert calls['pick_device'] == [] and got['device'] == 'cpu' and got['mode'] == train_mode('cpu'), (calls, got)
