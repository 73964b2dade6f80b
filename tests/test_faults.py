"""Fault injection for `resnet-course reproduce` (issue 11, "Nothing lost and nothing fake").

Every case runs the command line as a learner would, then asserts one of exactly two outcomes:

(A) a clear error before any training: exit code 1 (2 for argparse), a message naming the problem and the fix in the
    command line's own terms (`--size`, `--bs`, `--out`, ...), no Python traceback, within seconds of startup, and no
    file written or changed; or
(B) the run completes and nothing is lost: every file that was there before is still there and unchanged (a results
    table may only gain rows; a file a case damaged on purpose must be moved aside under a `.damaged-*` name and its
    run retrained), and every results table, record, weight file and plot loads.

How it runs, and why:

- Each case is a plain pytest test. A command runs in this process through its entry point (tests/cli_runner.py:
  `World.cli`, with its own environment, folder, output and exit code), or, where a process is the point (SIGKILL,
  a command still running while another starts, DataLoader workers to find), in a child process of its own (a child of
  the harness's fork server, never a fork of this process; the harness kills it, with what it started, when its case ends).
- Each command in a child process uses one torch thread (`RESNET_COURSE_TEST_THREADS`): pytest-xdist's two workers share
  2 cores. A command run in this process uses this process's threads (scripts/run_tests.py sets them).
- Data: a private `FASTAI_HOME` whose imagenette2-160 holds 10 classes of real Imagenette images, 4 training and 2
  validation images each, so that `--quick` and default-data runs take seconds, and code without `--data` can run
  the same cases. Cases about a learner's own folder use `--data`: conftest's 3-class `make_small_dataset`, or a
  copy of the tiny imagenette.
- One finished run (`fcn` and `resblock`) is made once; cases that need earlier results work on copies of it.
"""
import csv, hashlib, io, json, os, random, re, shutil, signal, subprocess, sys, textwrap, time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
import pytest
from conftest import IMAGENETTE, make_small_dataset, fake_gpu
from cli_runner import Result, Runner, threads_of_this_process

THREADS = os.environ.get('RESNET_COURSE_TEST_THREADS', '1')   # torch threads per command: several commands share 2 cores
ERROR_SECONDS = 10         # an (A) error must come this soon after the command's imports
ERROR_TIMEOUT = 60         # a command that should have refused is stopped after this long
SMALL = ['--size', '32', '--bs', '20', '--epochs', '1']  # two batches an epoch on the tiny data: seconds per model

# ----------------------------------------------------------------------------------------------------------------
# The harness: snapshots, the two outcomes, loading every file

@dataclass(frozen=True)
class Entry:
    sha:str
    text:str = None   # kept for results tables, whose rows are compared

def snapshot(folder:Path) -> dict:
    "Relative path -> `Entry` (sha256, and the text of results tables) for every file under `folder`, hidden ones included"
    folder, snap = Path(folder), {}
    if not folder.exists(): return snap
    for root, dirs, files in os.walk(folder):
        for name in files:
            p = Path(root)/name; rel = str(p.relative_to(folder))
            if p.is_symlink(): snap[rel] = Entry(f'link:{os.readlink(p)}'); continue
            data = p.read_bytes()
            snap[rel] = Entry(hashlib.sha256(data).hexdigest(), data.decode(errors='replace') if name in ('results.csv', 'results.md') else None)
    return snap

def table_rows(name:str, text:str) -> list:
    "The rows of a results table (csv, or the markdown table in results.md) as dicts of strings"
    if name.endswith('.csv'):
        return list(csv.DictReader(io.StringIO('\n'.join(l for l in text.splitlines() if not l.startswith('# ')))))
    lines = [l for l in text.splitlines() if l.startswith('|')]
    if not lines: return []
    cells = lambda l: [c.strip() for c in l.strip().strip('|').split('|')]
    head = cells(lines[0])
    return [dict(zip(head, cells(l))) for l in lines[1:] if not set(l) <= set('|:- ')]

def row_id(row:dict) -> tuple: return (row.get('name'), row.get('run'))

TRANSIENT = ('.lock', 'progress.pth', 'timings.json')   # the folder lock, progress that a run replaces every epoch and drops when it finishes, and the log of each run's wall time, which every run extends

def assert_nothing_lost(before:dict, after:dict, damaged=(), replaced=()):
    """Every file of `before` is in `after` unchanged; results tables only gain rows.
    `damaged`: files a case spoiled on purpose (or that go with one): each must be moved aside to `NAME.damaged-*`, contents kept.
    `replaced`: (name, run) of results rows that belong to a damaged run: a retrained row with that id must take their place.
    Nothing else of a retrained run may change: training on the CPU is deterministic, so even its loss plot comes out the same."""
    problems = []
    for rel, e in before.items():
        name = Path(rel).name
        if name in TRANSIENT or name.endswith('.tmp'): continue
        a = after.get(rel)
        if name in ('results.csv', 'results.md'):
            if a is None: problems.append(f'{rel} is gone'); continue
            new = table_rows(name, a.text)
            for row in table_rows(name, e.text):
                if row_id(row) in replaced and row_id(row) != (None, None):
                    if not any(row_id(n) == row_id(row) for n in new): problems.append(f'{rel}: no retrained row for {row_id(row)}')
                elif not any(all(n.get(k) == v for k, v in row.items()) for n in new):
                    problems.append(f'{rel} lost the row {row}')
            continue
        if a is not None and a.sha == e.sha: continue
        aside = [r for r, x in after.items() if r.startswith(rel + '.damaged-') and x.sha == e.sha]
        if rel in damaged:
            if not aside: problems.append(f'{rel} was damaged on purpose, but no {name}.damaged-* beside it holds what it held')
        elif a is None: problems.append(f'{rel} is gone' + (f' (moved aside as {aside[0]})' if aside else ''))
        else: problems.append(f'{rel} was changed')
    expected_aside = tuple(d + '.damaged-' for d in damaged)
    for rel in after:
        if '.damaged-' in rel and rel not in before and not rel.startswith(expected_aside):
            problems.append(f'{rel} was moved aside, though the case did not damage it')
    assert not problems, 'Something was lost:\n  ' + '\n  '.join(problems)

def assert_unchanged(before:dict, after:dict, what:str='folder'):
    "No file written, changed or removed"
    added = sorted(set(after) - set(before)); removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k].sha != after[k].sha)
    assert not (added or removed or changed), f'The {what} changed: written {added}, removed {removed}, changed {changed}'

def number(v) -> re.Pattern:
    "A phrase that matches the number `v` on its own, not as part of a longer number or a path"
    return re.compile(rf'(?<![\w/.,-]){re.escape(str(v))}(?![\w/.,])')

def says(text:str, phrase) -> bool:
    "Whether `text` has `phrase`: a string (any case), a regex, or a tuple of either, any of which will do"
    if isinstance(phrase, tuple): return any(says(text, p) for p in phrase)
    if isinstance(phrase, re.Pattern): return bool(phrase.search(text))
    return phrase.lower() in text.lower()

def assert_clear_error(r:Result, *phrases, code=(1, 2), seconds=None):
    """Outcome (A): exit code 1 (or 2, argparse's), a message on stderr with every phrase, no traceback, soon.
    Every case names a phrase of its own problem, so that argparse's usage line, which lists every option, cannot pass for one."""
    codes = code if isinstance(code, tuple) else (code,)
    assert r.rc in codes, f'expected exit code {" or ".join(map(str, codes))}, a clear error before training:{r}'
    assert 'Traceback' not in r.output, f'a Python traceback instead of a clear message:{r}'
    bare = r.stderr    # a message must not pass by echoing the command's own paths, such as a folder called too-large-for-memory
    for a in sorted((a for a in r.argv if '/' in a), key=len, reverse=True): bare = bare.replace(a, '<path>')
    has = lambda p: (says(r.stderr, p) if isinstance(p, str) and p.startswith('/') else
                     any(has(q) for q in p) if isinstance(p, tuple) else says(bare, p))
    missing = [p.pattern if isinstance(p, re.Pattern) else p for p in phrases if not has(p)]
    assert not missing, f'the message does not name {missing}:{r}'
    limit = seconds if seconds is not None else ERROR_SECONDS
    assert r.seconds <= limit, f'the error came after {r.seconds:.1f} s, not within {limit} s:{r}'

LOADER = r'''
import json, sys, warnings
from pathlib import Path
warnings.simplefilter('ignore')
import numpy as np, pandas as pd, torch
from PIL import Image
folder, bad, n = Path(FOLDER), [], 0
only = None if ONLY is None else {folder/f for f in ONLY}
try:
    from fastcore.foundation import L
    allowed = [L, np.core.multiarray.scalar, np.dtype, *[getattr(np.dtypes, d) for d in np.dtypes.__all__]]
except Exception: allowed = []
for p in sorted(folder.rglob('*')):
    if not p.is_file() or p.is_symlink() or '.damaged-' in p.name or p.name.startswith('.') or (only is not None and p not in only): continue
    try:
        if p.name == 'results.csv':
            n += 1; pd.read_csv(p, comment='#' if p.read_text().startswith('# ') else None)
        elif p.suffix == '.json':
            n += 1; json.loads(p.read_text())
        elif p.suffix == '.pth':
            n += 1
            if p.name == 'progress.pth':   # optimiser state holds numpy scalars and fastcore lists, as the course's own loader allows
                with torch.serialization.safe_globals(allowed): obj = torch.load(p, map_location='cpu', weights_only=True)
            else:
                obj = torch.load(p, map_location='cpu', weights_only=True)
                assert isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()), f'not a state dict: {type(obj).__name__}'
        elif p.suffix == '.png':
            n += 1
            with Image.open(p) as im: im.load()
        elif p.suffix == '.md':
            n += 1; p.read_text()
    except Exception as e: bad.append(f'{p.relative_to(folder)}: {type(e).__name__}: {str(e)[:200]}')
print('LOADED ' + json.dumps({'bad': bad, 'n': n}))
'''

# ----------------------------------------------------------------------------------------------------------------
# The world the cases share: data, a finished run

def copy_images(src:Path, dst:Path, n:int, link:bool=False):
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.glob('*.JPEG'))[:n]:
        if link:
            try: os.link(f, dst/f.name); continue
            except OSError: pass
        shutil.copy(f, dst/f.name)

def write_16bit_png(path:Path):
    "A 16-bit greyscale PNG: a diagonal gradient over the whole 0..65535 range"
    import numpy as np
    from PIL import Image
    a = (np.add.outer(np.arange(96), np.arange(96)) * (65535 / 190)).astype(np.uint16)
    Image.fromarray(a).save(path)
    with Image.open(path) as im: assert im.mode.startswith('I'), im.mode

class World(Runner):
    def __init__(self, root:Path):
        self.home = root/'home'                                  # FASTAI_HOME with a tiny imagenette2-160
        env = {k: v for k, v in os.environ.items() if k not in ('IN_TEST', 'RESNET_COURSE_SAMPLE')}
        env.update(MPLBACKEND='Agg', PYTHONUNBUFFERED='1', FASTAI_HOME=str(self.home), RESNET_COURSE_MODE='full')   # the chapter's recipe, as on a GPU: a CPU's reduced default is tested in test_modes.py
        if THREADS: env.update(OMP_NUM_THREADS=THREADS, MKL_NUM_THREADS=THREADS)
        super().__init__(root, env)
        make_small_dataset(self.home/'data'/'imagenette2-160', n_classes=10, n_train=4, n_valid=2)
        self.small3 = make_small_dataset(root/'small3')           # conftest's small dataset: 3 classes, 8 + 4 images each
        self._base, self._shared = None, {}

    def unloadable(self, folder:Path, only=None) -> list:
        "Files under `folder` (results tables, records, weights, plots; or just the relative paths `only`) that fail to load, each with why"
        r = self.python(f'FOLDER, ONLY = {str(folder)!r}, {None if only is None else sorted(only)!r}\n' + LOADER)
        m = re.search(r'^LOADED (.*)$', r.stdout, re.M)
        assert r.rc == 0 and m, f'the loader itself failed:{r}'
        return json.loads(m[1])['bad']

    def assert_all_loadable(self, folder:Path):
        bad = self.unloadable(folder)
        assert not bad, f'Files in {folder} that do not load:\n  ' + '\n  '.join(bad)

    def assert_final(self, out:Path):
        "The end state of outcome (B): every file loads, and the results table has a row for every finished run's record"
        self.assert_all_loadable(out)
        recs = []
        for p in sorted(out.glob('runs/*/record.json')):
            try: recs.append((p, json.loads(p.read_text())['row']))
            except (ValueError, KeyError, TypeError): pass
        if recs:
            ids = {row_id(r) for r in table_rows('results.csv', (out/'results.csv').read_text())}
            missing = [str(p.relative_to(out)) for p, row in recs if row_id(row) not in ids]
            assert not missing, f'results.csv has no row for the finished run(s) {missing}:\n' + (out/'results.csv').read_text()

    def error_run(self, argv, *phrases, watch=(), env=None, code=(1, 2)) -> Result:
        "Outcome (A) for `argv`: a clear error naming `phrases`, and no file written or changed under `watch`"
        watch = [Path(w) for w in watch]
        before = [snapshot(w) for w in watch]
        r = self.cli(argv, timeout=ERROR_TIMEOUT, env=env, extra_memory=6 << 30)
        assert_clear_error(r, *phrases, code=code, seconds=ERROR_SECONDS)
        for w, b in zip(watch, before): assert_unchanged(b, snapshot(w), str(w))
        return r

    def base(self) -> Path:
        "A results folder with one finished run of fcn and resblock, made once"
        if self._base is None:
            out = self.root/'base'
            r = self.cli(['reproduce', '--models', 'fcn,resblock', *SMALL, '--out', out])
            assert r.rc == 0, f'the shared finished run failed, so no case that needs earlier results can run:{r}'
            self._base = out
        return self._base

    def copy_base(self, d:Path) -> Path:
        out = d/'results'; shutil.copytree(self.base(), out, symlinks=True); return out

    def shared(self, key, make):
        "`make()` once per key, shared between cases"
        if key not in self._shared: self._shared[key] = make()
        return self._shared[key]

def run_files(out:Path, name:str) -> tuple:
    "(weights, record) of model `name` in a results folder: runs/NAME-KEY/ since issue 11, checkpoints/ before"
    runs = sorted(out.glob(f'runs/{name}-*/record.json'))
    if runs: return runs[0].parent/'model.pth', runs[0]
    return out/'checkpoints'/f'{name}.pth', out/'checkpoints'/f'{name}.json'

def rel(p:Path, folder:Path) -> str: return str(p.relative_to(folder))

# ----------------------------------------------------------------------------------------------------------------
# The cases

@pytest.fixture(scope='session')   # session: built once per pytest worker, though xdist may run other files' tests in between
def w(tmp_path_factory) -> World:
    "The world the cases share"
    return World(tmp_path_factory.mktemp('faults'))

@pytest.fixture
def d(tmp_path) -> Path:
    "The case's own folder"
    return tmp_path

def quick(out, *more): return ['reproduce', '--quick', '--models', 'fcn', '--out', out, *more]

# 1. Never lose a result

def test_quick_run_after_full_run(w, d):
    out = w.copy_base(d); before = snapshot(out)
    r = w.cli(quick(out))
    assert r.rc == 0, f'the run did not complete:{r}'
    after = snapshot(out)
    assert_nothing_lost(before, after)
    assert len(table_rows('results.csv', after['results.csv'].text)) == 3, f"expected the 2 full rows and the quick one:\n{after['results.csv'].text}"
    w.assert_final(out)

def test_subset_of_models_keeps_other_rows(w, d):
    out = w.copy_base(d); before = snapshot(out)
    r = w.cli(['reproduce', '--models', 'resblock', *SMALL, '--out', out])
    assert r.rc == 0, f'the run did not complete:{r}'
    after = snapshot(out)
    assert_nothing_lost(before, after)
    w.assert_final(out)

def test_run_with_other_settings_keeps_earlier_run(w, d):
    out = w.copy_base(d); before = snapshot(out)
    r = w.cli(['reproduce', '--models', 'fcn', *SMALL, '--seed', '7', '--out', out])
    assert r.rc == 0, f'the run did not complete:{r}'
    after = snapshot(out)
    assert_nothing_lost(before, after)
    assert len(table_rows('results.csv', after['results.csv'].text)) == 3, after['results.csv'].text
    w.assert_final(out)

def test_second_run_into_busy_folder_refused(w, d):
    out = w.copy_base(d); before = snapshot(out)
    first = w.start(['reproduce', '--models', 'fcn', '--size', '32', '--bs', '4', '--epochs', '3', '--seed', '3', '--out', out])
    t0 = time.monotonic()
    while '[1/1]' not in first.stdout_so_far() and not first.done() and time.monotonic() - t0 < 120: time.sleep(0.05)
    assert '[1/1]' in first.stdout_so_far(), f'the first run never started training:{first.wait()}'
    second = w.cli(['reproduce', '--models', 'fcn', *SMALL, '--seed', '5', '--out', out], timeout=ERROR_TIMEOUT)
    assert not first.done(), 'the first run ended before the second was refused: the case proves nothing; make the first run longer'
    assert_clear_error(second, 'in use', '--out', code=1)
    r = first.wait()
    assert r.rc == 0, f'the first run did not complete:{r}'
    after = snapshot(out)
    assert_nothing_lost(before, after)
    new_runs = {Path(k).parts[1] for k in set(after) - set(before) if k.startswith('runs/')}
    assert len(new_runs) == 1, f'the refused run left files too: new run folders {sorted(new_runs)}'
    w.assert_final(out)

def finished_files(snap:dict) -> dict:
    "The entries of a snapshot that belong to finished runs and tables: files in a run folder without a record are work in progress"
    return {k: v for k, v in snap.items() if not (k.startswith('runs/') and f"runs/{Path(k).parts[1]}/record.json" not in snap)}

def test_sigkill_20_times(w, d):
    """Kill a quick run with SIGKILL at a random moment, 20 times in a row: no results table, record, weight file or plot may
    fail to load, nothing finished may be lost, every run that is not killed must succeed, and the next run completes"""
    out = d/'results'    # its own folder, so that it need not wait for the shared run; its first run is the earlier result to keep
    args = lambda seed: quick(out, '--seed', seed)
    ref = w.cli(args(0))    # one uninterrupted run: how long a run takes here, now
    assert ref.rc == 0, f'the run did not complete:{ref}'
    took, rng, landed, log, refused = [ref.seconds], random.Random(11), 0, [], []
    keep, last = finished_files(snapshot(out)), {}   # the first check loads everything
    for i in range(20):
        seed = 1 + i         # a new run each time, so that the delay covers a whole run
        span = 1.2 * sorted(took)[len(took) // 2]   # the machine's speed drifts: every run that finishes updates the estimate
        p = w.start(args(seed))
        delay = rng.uniform(0, span)
        while time.monotonic() - p.t0 < delay and not p.done(): time.sleep(0.01)
        p.kill(); r = p.wait()
        landed += r.rc == -signal.SIGKILL
        if r.rc == 0: took.append(r.seconds)
        log.append(f'kill {i + 1}: seed {seed}, at {delay:.2f} of {span:.2f} s, exit {r.rc}' + ('' if r.rc in (0, -signal.SIGKILL) else f': {r.stderr.strip()[-300:]}'))
        if r.rc not in (0, -signal.SIGKILL): refused.append(str(r))
        now = snapshot(out)
        bad = w.unloadable(out, only={k for k, v in now.items() if last.get(k) != v})   # what did not change loaded before
        assert not bad, f'after kill {i + 1} at {delay:.2f} s, files do not load:\n  ' + '\n  '.join(bad) + '\n' + '\n'.join(log)
        assert_nothing_lost(keep, now)
        keep, last = finished_files(now), now
    final = w.cli(args(1))   # the first killed run again: it must complete
    assert final.rc == 0, f'the run after 20 kills did not complete:{final}\n' + '\n'.join(log)
    assert_nothing_lost(keep, snapshot(out))
    w.assert_final(out)
    (w.root/'sigkill-20-times.log').write_text('\n'.join(log) + '\n')
    assert not refused, f'{len(refused)} run(s) between the kills failed by themselves:\n' + '\n'.join(log) + '\nThe first:' + refused[0]
    assert landed >= 10, f'only {landed} of 20 kills hit a running process:\n' + '\n'.join(log)

def open_files(pid:int, folder:Path) -> list:
    "Files under `folder` that process `pid` (our own child) has open right now, its folder lock and write probe aside"
    found = []
    try: fds = os.listdir(f'/proc/{pid}/fd')
    except OSError: return found
    for fd in fds:
        try: target = os.readlink(f'/proc/{pid}/fd/{fd}')
        except OSError: continue
        if target.startswith(f'{folder}/') and not target.endswith('/.lock') and '.write-test' not in target: found.append(target)
    return found

def test_sigkill_while_writing_results(w, d):
    """Random kills rarely land inside a write, which lasts milliseconds. So kill the run the moment it has a given output
    (or its temporary file) open: the progress file, loss plot, weights, record, or a results table"""
    out = d/'results'
    first = w.cli(quick(out, '--seed', 0))
    assert first.rc == 0, f'the run did not complete:{first}'
    keep, last, log, landed = finished_files(snapshot(out)), {}, [], 0
    targets, seeds = ['progress.pth', 'loss.png', 'model.pth', 'record.json', 'results.csv', 'results.md'], iter(range(100, 200))
    for target in targets:
        for attempt in range(3):     # a busy machine can hide a write of a few milliseconds from the poll: try again
            p = w.start(quick(out, '--seed', next(seeds)))
            hit = None
            while not p.done() and hit is None:
                hit = next((f for f in open_files(p.pid, out) if Path(f).name == target or Path(f).name.startswith(f'.{target}.')), None)
                if hit is None: time.sleep(0.001)
            if hit: p.kill()
            r = p.wait()
            log.append(f'{target}, try {attempt + 1}: ' + (f'killed with {hit} open, exit {r.rc}' if hit else f'never seen writing it, exit {r.rc}'))
            assert r.rc in (0, -signal.SIGKILL), f'a run was neither killed nor successful:{r}\n' + '\n'.join(log)
            now = snapshot(out)
            bad = w.unloadable(out, only={k for k, v in now.items() if last.get(k) != v})
            assert not bad, f'after a kill, files do not load:\n  ' + '\n  '.join(bad) + '\n' + '\n'.join(log)
            assert_nothing_lost(keep, now)
            keep, last = finished_files(now), now
            if r.rc == -signal.SIGKILL: landed += 1; break
    final = w.cli(quick(out, '--seed', 100))
    assert final.rc == 0, f'the run after the kills did not complete:{final}\n' + '\n'.join(log)
    w.assert_final(out)
    (w.root/'sigkill-while-writing.log').write_text('\n'.join(log) + '\n')
    assert landed >= 4, f'only {landed} of {len(targets)} outputs were caught being written:\n' + '\n'.join(log)

def child_pids(pid:int) -> list:
    try: return [int(c) for c in Path(f'/proc/{pid}/task/{pid}/children').read_text().split()]
    except OSError: return []

def test_sigkill_during_training_then_rerun_at_once(w, d):
    "Kill a full-data run (which loads batches in worker processes) in the middle of an epoch, and start it again at once: it resumes and completes"
    out = w.copy_base(d)
    args = ['reproduce', '--models', 'fcn', '--size', '32', '--bs', '4', '--epochs', '3', '--seed', '13', '--out', out]
    p = w.start(args)
    t0 = time.monotonic()
    while not p.done() and time.monotonic() - t0 < 120 and not (list(out.glob('runs/fcn-*/progress.pth')) and child_pids(p.pid)): time.sleep(0.02)
    assert not p.done(), f'the run ended before it could be killed in an epoch after the first:{p.wait()}'
    assert child_pids(p.pid), 'the run never loaded batches in worker processes: this case needs a full-data run'
    p.kill(); killed = p.wait()
    assert killed.rc == -signal.SIGKILL, f'the kill did not land:{killed}'
    r = w.cli(args)
    assert r.rc == 0, f'the run started again right after a kill did not complete:{r}'
    assert 'resuming after epoch' in r.stdout, f'it did not resume from the saved epoch:{r}'
    w.assert_final(out)

# 2. Never report a number that means nothing

def test_bs_larger_than_training_set(w, d):
    w.error_run(['reproduce', '--data', w.small3, '--models', 'fcn', '--size', '32', '--bs', '25', '--epochs', '1', '--out', d/'out'],
                '--bs', number(25), number(24), watch=[d, w.small3])

def layout_error(w, d, spoil, *phrases):
    data = d/'data'; shutil.copytree(w.small3, data); spoil(data)
    w.error_run(['reproduce', '--data', data, '--models', 'fcn', *SMALL, '--out', d/'out'], (str(data), '--data'), *phrases, watch=[d])

def test_class_only_in_val(w, d):
    def spoil(data):
        shutil.copytree(data/'val'/'n01440764', data/'val'/'n99999999')
    layout_error(w, d, spoil, 'n99999999')

def test_class_only_in_train(w, d):
    cls = sorted(p.name for p in w.small3.joinpath('val').iterdir())[-1]
    layout_error(w, d, lambda data: shutil.rmtree(data/'val'/cls), cls)

def test_nan_loss_stops_run_without_record(w, d):
    out = w.copy_base(d); before = snapshot(out)
    code = textwrap.dedent(f'''
        import sys
        from fastai.vision.all import *
        from resnet_course.reproduce import reproduce
        class NanLoss(Callback):
            "Make the loss nan from the second batch of the second epoch on"
            def after_loss(self):
                if self.training and (self.epoch, self.iter) >= (1, 1):
                    self.learn.loss_grad = self.learn.loss_grad * float('nan'); self.learn.loss = self.learn.loss_grad.clone()
        try: reproduce('fcn', epochs=2, size=32, bs=10, seed=9, out={str(out)!r}, cbs=[NanLoss()])
        except Exception as e:
            print(f'RAISED {{type(e).__name__}}: {{e}}'); sys.exit(3)
        print('COMPLETED')''')
    r = w.python(code)
    assert r.rc == 3 and 'RAISED' in r.stdout, f'the run did not stop on a nan loss:{r}'
    assert 'nan' in r.stdout.split('RAISED', 1)[1].lower(), f'the message does not say the loss became nan:{r}'
    after = snapshot(out)
    assert_nothing_lost(before, after)
    new = sorted(k for k in set(after) - set(before) if Path(k).name in ('record.json', 'model.pth') or k.startswith('checkpoints/'))
    assert not new, f'a diverged run left a record or weights: {new}'
    assert after['results.csv'].sha == before['results.csv'].sha or \
        len(table_rows('results.csv', after['results.csv'].text)) == len(table_rows('results.csv', before['results.csv'].text)), 'a diverged run added a row'
    w.assert_final(out)

# 3. Check before training

def test_missing_val_folder(w, d): layout_error(w, d, lambda data: shutil.rmtree(data/'val'), re.compile(r'(?<![\w-])val/'))

def test_empty_class_folder(w, d):
    def spoil(data):
        for f in (data/'train'/'n01440764').iterdir(): f.unlink()
    layout_error(w, d, spoil, 'n01440764')

def test_out_under_a_regular_file(w, d):
    (d/'afile').write_text('not a folder')
    w.error_run(quick(d/'afile'/'results'), '--out', str(d/'afile'/'results'), watch=[d])

def test_out_under_proc(w, d):
    w.error_run(quick('/proc/resnet-course-results'), '--out', '/proc/resnet-course-results', watch=[d])
    assert not Path('/proc/resnet-course-results').exists()

def test_out_is_a_file(w, d):
    (d/'results.csv').write_text('a,b\n1,2\n')
    w.error_run(quick(d/'results.csv'), '--out', str(d/'results.csv'), watch=[d])

def test_too_large_for_memory(w, d):
    big = d/'big'    # enough training images that a batch of 512 is not refused for that reason first
    for split, n in (('train', 260), ('val', 2)):
        for wnid in ('n01440764', 'n02102040'): copy_images(IMAGENETTE/split/wnid, big/split/wnid, n, link=True)
    w.error_run(['reproduce', '--data', big, '--size', '1024', '--bs', '512', '--epochs', '1', '--out', d/'out'], '--size', '--bs', ('memory', 'GiB', 'GB'), watch=[d])

# 4. Damaged state: each is detected, named, moved aside and retrained

def sha256(p:Path) -> str: return hashlib.sha256(p.read_bytes()).hexdigest()

def damaged_case(w, d, spoil, which='fcn', spoiled='weights'):
    """Spoil the `spoiled` file (weights or record) of model `which` in a copy of the finished run with `spoil(out, weights, record)`,
    rerun: the file must be named in the output, moved aside (contents kept), and the model retrained; nothing else lost"""
    out = w.copy_base(d)
    weights, record = run_files(out, which)
    finished_before = json.loads(record.read_text()).get('finished_at')
    spoil(out, weights, record)
    target = weights if spoiled == 'weights' else record
    target_sha = sha256(target)
    before = snapshot(out)
    r = w.cli(['reproduce', '--models', 'fcn,resblock', *SMALL, '--out', out])
    assert r.rc == 0, f'the run did not complete:{r}'
    assert str(target) in r.output, f'the output does not name the damaged file {target}:{r}'
    aside = [p.name for p in target.parent.glob(f'{target.name}.damaged-*') if sha256(p) == target_sha]
    assert aside, f'the damaged {target.name} was not moved aside with its contents (files now: {sorted(p.name for p in target.parent.iterdir())}):{r}'
    after = snapshot(out)
    key = weights.parent.name.split('-', 1)[1] if weights.parent.name.startswith(which + '-') else None
    assert_nothing_lost(before, after, damaged={rel(p, out) for p in (weights, record) if rel(p, out) in before},
                        replaced={(which, key)})
    assert weights.exists() and record.exists(), f'{which} was not retrained:{r}'
    rec = json.loads(record.read_text())
    if finished_before and 'finished_at' in rec:
        assert rec['finished_at'] > finished_before, f'{which} was not retrained: its record is the one from before:{r}'
    if 'weights_sha256' in rec:
        assert rec['weights_sha256'] == sha256(weights), 'the new record does not vouch for the new weights'
    w.assert_final(out)
    return r

def test_weights_truncated(w, d): damaged_case(w, d, lambda out, wt, rec: wt.write_bytes(wt.read_bytes()[:wt.stat().st_size // 2]))

def test_weights_zero_bytes(w, d): damaged_case(w, d, lambda out, wt, rec: wt.write_bytes(b''))

def foreign_weights(rewrite_hash:bool):
    def spoil(out, wt, rec):
        other, _ = run_files(out, 'resblock')
        shutil.copy(other, wt)
        if rewrite_hash:
            r = json.loads(rec.read_text()); r['weights_sha256'] = hashlib.sha256(wt.read_bytes()).hexdigest()
            rec.write_text(json.dumps(r, indent=1))
    return spoil

def test_weights_of_another_model(w, d): damaged_case(w, d, foreign_weights(False))

def test_weights_of_another_model_hash_rewritten(w, d): damaged_case(w, d, foreign_weights(True))

def test_weights_of_another_run_same_shapes(w, d):
    "Weights that load into the model but are not the ones the record was written with: only the hash can tell"
    def spoil(out, wt, rec):
        r = w.python(f"import torch; p = {str(wt)!r}; sd = torch.load(p, weights_only=True); k = next(iter(sd)); sd[k] = sd[k] + 0.01; torch.save(sd, p)")
        assert r.rc == 0, f'the run did not complete:{r}'
    damaged_case(w, d, spoil)

def test_record_broken_json(w, d): damaged_case(w, d, lambda out, wt, rec: rec.write_text(rec.read_text()[:len(rec.read_text()) // 2]), spoiled='record')

def test_record_from_other_settings(w, d):
    def spoil(out, wt, rec):
        r = json.loads(rec.read_text()); r['settings']['seed'] = 7
        rec.write_text(json.dumps(r, indent=1))
    damaged_case(w, d, spoil, spoiled='record')

def test_record_of_another_model(w, d):
    def spoil(out, wt, rec): shutil.copy(run_files(out, 'resblock')[1], rec)
    damaged_case(w, d, spoil, spoiled='record')

def test_record_missing_fields_second_model(w, d):
    "resblock's record lost its fields: the run must not trip over it while it rebuilds the table after fcn"
    def spoil(out, wt, rec):
        r = json.loads(rec.read_text()); rec.write_text(json.dumps({'settings': r.get('settings')}))
    damaged_case(w, d, spoil, which='resblock', spoiled='record')

# 5. Images a user may have

def test_16_bit_greyscale_png_trains(w, d):
    data = d/'data'; shutil.copytree(w.home/'data'/'imagenette2-160', data)
    png = data/'train'/'n01440764'/'grey16.png'; write_16bit_png(png)
    r = w.cli(['reproduce', '--data', data, '--models', 'fcn', *SMALL, '--out', d/'out'])
    assert r.rc == 0, f'the run did not complete:{r}'
    assert 'grey16.png' not in r.output, f'the 16-bit image was skipped or failed:{r}'
    w.assert_final(d/'out')

def test_three_class_dataset_trains(w, d):
    "conftest's small dataset, 3 classes: fewer classes than top-5 accuracy looks at"
    r = w.cli(['reproduce', '--data', w.small3, '--models', 'fcn', *SMALL, '--out', d/'out'])
    assert r.rc == 0, f'the run did not complete:{r}'
    w.assert_final(d/'out')

def test_symlink_loop_in_dataset(w, d):
    data = d/'data'; shutil.copytree(w.small3, data)
    link = data/'train'/'n01440764'/'loop'; os.symlink('..', link)
    r = w.cli(['data', '--data', data], timeout=ERROR_TIMEOUT)
    assert r.rc == 0, f'the run did not complete:{r}'
    assert '3 classes, train 24, val 12' in r.stdout, f'wrong counts:{r}'
    assert str(link) in r.output, f'no warning names the link {link}:{r}'
    assert 'Traceback' not in r.output, f'a Python traceback:{r}'

# 6. Inputs at the edges: each refused clearly

def edge(*more, phrases, env=None, base=True):
    def run(w, d):
        out = w.copy_base(d) if base else d/'out'
        w.error_run(quick(out, *more), *phrases, watch=[d, w.home] if env is None else [d], env=env)
    return run

EDGES = {   # each refused clearly, nothing written
    'epochs-10**30':  edge('--epochs', str(10**30), phrases=['--epochs', number(10**30)]),
    'seed-2**70':     edge('--seed', str(2**70), phrases=['--seed', number(2**70)]),
    'epochs-negative': edge('--epochs', '-1', phrases=['--epochs', number(-1)]),
    'epochs-zero':    edge('--epochs', '0', phrases=['--epochs', number(0)]),
    'bs-negative':    edge('--bs', '-4', phrases=['--bs', number(-4)]),
    'bs-zero':        edge('--bs', '0', phrases=['--bs', number(0)]),
    'size-negative':  edge('--size', '-32', phrases=['--size', number(-32)]),
    'seed-negative':  edge('--seed', '-1', phrases=['--seed', number(-1)]),
    'size-100000':    edge('--size', '100000', phrases=['--size', number(100000)]),
    'device-meta':    edge('--device', 'meta', phrases=['--device', 'meta']),
    'device-mps':     edge('--device', 'mps', phrases=['--device', 'mps']),
}

@pytest.mark.parametrize('name', list(EDGES))
def test_input_at_the_edge(name, w, d): EDGES[name](w, d)

def test_fastai_home_is_a_file(w, d):
    (d/'home').write_text('not a folder')
    edge(phrases=['FASTAI_HOME', str(d/'home')], env={'FASTAI_HOME': str(d/'home')}, base=False)(w, d)

def test_fastai_home_under_proc(w, d):
    edge(phrases=['FASTAI_HOME', '/proc/x'], env={'FASTAI_HOME': '/proc/x'}, base=False)(w, d)

# 7. load_timm_weights: by name, whatever the order of the state dict

TIMM = r'''
import json, torch, timm
from resnet_course.resnet import resnet18
from resnet_course.reference import load_timm_weights
torch.manual_seed(0)
ref = timm.create_model('resnet18d', num_classes=10).eval()
with torch.no_grad():   # every batchnorm random, so that every residual branch shows in the outputs
    for m in ref.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.uniform_(0.5, 1.5); m.bias.uniform_(-0.5, 0.5); m.running_mean.uniform_(-0.5, 0.5); m.running_var.uniform_(0.5, 1.5)
sd = ref.state_dict(); x = torch.randn(2, 3, 64, 64)
with torch.no_grad(): want = ref(x)
def swapped(a, b):
    keys = list(sd); i, j = keys.index(a), keys.index(b); keys[i], keys[j] = keys[j], keys[i]
    assert sd[a].shape == sd[b].shape
    return {k: sd[k] for k in keys}
res = {}
for name, state in [('as-is', sd), ('sorted-keys', dict(sorted(sd.items()))),
                    ('swapped-bn-weight-and-bias', swapped('bn1.weight', 'bn1.bias')),
                    ('swapped-two-convs', swapped('layer1.0.conv1.weight', 'layer1.1.conv2.weight'))]:
    try:
        m = load_timm_weights(resnet18(10), state).eval()
        with torch.no_grad(): diff = (m(x) - want).abs().max().item()
        res[name] = 'ok' if diff < 1e-4 else f'loaded, but the outputs differ from timm by {diff:.3g}: tensors went to the wrong places'
    except Exception as e: res[name] = f'raised {type(e).__name__}: {e}'
try:
    load_timm_weights(resnet18(10), ref); res['model-object'] = 'accepted a model object'
except TypeError as e: res['model-object'] = 'ok' if 'state_dict()' in str(e) else f'TypeError without naming state_dict(): {e}'
except Exception as e: res['model-object'] = f'raised {type(e).__name__}: {e}'
print('TIMM ' + json.dumps(res))
'''

def timm_case(name):
    def run(w, d):
        def go():
            r = w.python(TIMM)
            m = re.search(r'^TIMM (.*)$', r.stdout, re.M)
            return (json.loads(m[1]) if m else None), r
        res, r = w.shared('timm', go)
        assert res is not None, f'the timm check did not run:{r}'
        assert res['as-is'] == 'ok', f'the check itself is broken: the plain state dict gives {res["as-is"]}'
        assert res[name] == 'ok', f'{name}: {res[name]}'
    return run

@pytest.mark.parametrize('name', ['sorted-keys', 'swapped-bn-weight-and-bias', 'swapped-two-convs', 'model-object'])
def test_timm(name, w, d): timm_case(name)(w, d)

# 8. The second misuse sweep (issue 22): nothing lost, nothing fake, found before the work

def test_stale_temps_only_the_courses(w, d):
    "A run clears the temporary files killed writes left, by the exact name it gives them; hidden .tmp files of the user's stay"
    out = w.copy_base(d)
    mine = [out/'.notes.tmp', out/'runs'/'.draft.txt.tmp', out/'sub'/'.results.csv.x.tmp']
    for p in mine: p.parent.mkdir(parents=True, exist_ok=True); p.write_text('the user wrote this')
    stale = out/'.results.csv.ab12cd34.resnet-course.tmp'; stale.write_text('half a write')
    r = w.cli(quick(out))
    assert r.rc == 0, f'the run did not complete:{r}'
    gone = [str(p) for p in mine if not p.exists() or p.read_text() != 'the user wrote this']
    assert not gone, f'the run deleted or changed files it did not write: {gone}'
    assert not stale.exists(), f'the stale temporary file of a killed write was not cleared: {stale}'
    w.assert_final(out)

def empty_out(cmd):
    def run(w, d): w.error_run([cmd, '--out', '', '--quick'], '--out', 'no folder', watch=[d])
    return run
@pytest.mark.parametrize('command', ['reproduce', 'figures', 'bench', 'speedrun'])
def test_out_empty(command, w, d): empty_out(command)(w, d)

def hand_row(w, d, *args):
    out = w.copy_base(d)
    rows = list(csv.DictReader(open(out/'results.csv')))
    with open(out/'results.csv', 'a', newline='') as f:     # a row of the user's own: an earlier row with another name and run
        csv.DictWriter(f, list(rows[0])).writerow({**rows[-1], 'name': 'mine', 'model': 'my own model', 'run': 'by-hand'})
    before = snapshot(out)
    r = w.cli(args[0](out) if callable(args[0]) else [*args, '--out', out])
    assert r.rc == 0, f'the run did not complete:{r}'
    assert_nothing_lost(before, snapshot(out))     # results.csv may only gain rows: the hand-added one included
    w.assert_final(out)

def test_hand_added_row_kept_by_a_run(w, d): hand_row(w, d, quick)

def test_hand_added_row_kept_by_a_run_that_trains_nothing(w, d): hand_row(w, d, 'reproduce', '--models', 'fcn,resblock', *SMALL)

def test_weights_without_record_moved_aside(w, d):
    out = w.copy_base(d)
    weights, record = run_files(out, 'fcn')
    old = sha256(weights); record.unlink()
    key = weights.parent.name.split('-', 1)[1]
    before = snapshot(out)
    r = w.cli(['reproduce', '--models', 'fcn,resblock', *SMALL, '--out', out])
    assert r.rc == 0, f'the run did not complete:{r}'
    kept = [p.name for p in weights.parent.glob('model.pth.*') if sha256(p) == old]
    assert kept, f'the weights whose record was lost were overwritten, not moved aside (files now: {sorted(p.name for p in weights.parent.iterdir())}):{r}'
    assert str(weights) in r.output, f'the output does not name the weights it moved aside:{r}'
    assert_nothing_lost({k: v for k, v in before.items() if k != rel(weights, out)}, snapshot(out), replaced={('fcn', key)})
    w.assert_final(out)

# These runs are compared bit for bit (weights' hashes), so they train on the CPU even on a GPU machine: on CUDA the backward of
# AdaptiveAvgPool2d is nondeterministic (torch's reproducibility notes), and two identical runs there differ in their last bits.
RESUME = ['--models', 'fcn', '--size', '32', '--bs', '6', '--epochs', '2', '--seed', '5', '--device', 'cpu']

def test_runs_compared_bit_for_bit_train_on_the_cpu():
    "With a GPU present (imitated here), the command line that the resume tests compare bit for bit still trains on the CPU"
    from resnet_course.cli import cli_parser
    from resnet_course.machine import pick_device
    args, extra = cli_parser()[0].parse_known_args(['reproduce', '--data', 'folder', *RESUME, '--out', 'out'])
    assert not extra
    with fake_gpu(): assert pick_device(args.device).type == 'cpu', f'RESUME trains on {pick_device(args.device)} where a GPU is present'

def interrupted_run(w) -> Path:
    "A run folder of fcn on the 3-class data stopped after its first of two epochs, so that its progress.pth is there; made once"
    def make():
        out = w.root/'interrupted'
        code = textwrap.dedent(f'''
            from fastai.vision.all import *
            from resnet_course.cli import main
            from resnet_course.reproduce import SaveProgress
            class Stop(Callback):
                order = SaveProgress.order + 1
                def after_epoch(self): raise KeyboardInterrupt()   # after the progress of epoch 1 is saved, as a kill would
            import resnet_course.reproduce as rp
            train = rp.train
            def stopped(learn, *a, **k):
                learn.add_cb(Stop()); return train(learn, *a, **k)
            rp.train = stopped
            try: main(['reproduce', '--data', {str(w.small3)!r}, *{RESUME!r}, '--out', {str(out)!r}])
            except BaseException as e: print('STOPPED', type(e).__name__, e)''')
        r = w.python(code, env=threads_of_this_process())   # resumed in this process: sums over other thread counts round otherwise
        prog = list(out.glob('runs/fcn-*/progress.pth'))
        assert prog, f'the interrupted run left no progress file:{r}'
        for p in out.glob('runs/fcn-*/*'):
            if p.name not in ('progress.pth', '.lock'): p.unlink()     # a kill would have left only the progress
        for p in ('results.csv', 'results.md'): (out/p).unlink(missing_ok=True)
        return out
    return w.shared('interrupted', make)

def uninterrupted_run(w) -> dict:
    def make():
        out = w.root/'uninterrupted'
        r = w.cli(['reproduce', '--data', w.small3, *RESUME, '--out', out])
        assert r.rc == 0, f'the uninterrupted run did not complete:{r}'
        return json.loads(next(out.glob('runs/fcn-*/record.json')).read_text())
    return w.shared('uninterrupted', make)

def test_resumed_run_equals_uninterrupted(w, d):
    "A run resumed from its progress file ends with the very weights and numbers of the same run never interrupted"
    out = d/'results'; shutil.copytree(interrupted_run(w), out)
    r = w.cli(['reproduce', '--data', w.small3, *RESUME, '--out', out])
    assert r.rc == 0 and 'resuming after epoch 1' in r.stdout, f'the run did not resume:{r}'
    rec, ref = json.loads(next(out.glob('runs/fcn-*/record.json')).read_text()), uninterrupted_run(w)
    losses = lambda rc: [(h['train_loss'], h['valid_loss']) for h in rc['history']]
    assert losses(rec) == losses(ref), f'the resumed run trained differently:\n{losses(rec)}\nuninterrupted:\n{losses(ref)}'
    assert rec['weights_sha256'] == ref['weights_sha256'] and rec['row']['top-1 %'] == ref['row']['top-1 %'], 'the resumed run ended with other weights'
    assert rec.get('resumed_after_epoch') == 1, 'the record does not say the run was resumed'

def damaged_progress(spoil):
    def run(w, d):
        out = d/'results'; shutil.copytree(interrupted_run(w), out)
        prog = next(out.glob('runs/fcn-*/progress.pth')); spoil(w, prog); spoiled = sha256(prog)
        r = w.cli(['reproduce', '--data', w.small3, *RESUME, '--out', out])
        assert r.rc == 0, f'the run did not complete:{r}'
        assert 'resuming' not in r.stdout and str(prog) in r.output, f'the damaged progress file was resumed, or not named:{r}'
        aside = [p for p in prog.parent.glob('progress.pth.damaged-*') if sha256(p) == spoiled]
        assert aside, f'the damaged progress file was not moved aside with its contents:{r}'
        rec = json.loads(next(out.glob('runs/fcn-*/record.json')).read_text())
        assert rec['weights_sha256'] == uninterrupted_run(w)['weights_sha256'], 'the run trained from scratch does not equal the uninterrupted run'
        w.assert_final(out)
    return run

def _garble(w, p):
    data = bytearray(p.read_bytes()); i = len(data) * 3 // 5
    data[i:i + 64] = bytes(random.Random(3).randrange(256) for _ in range(64)); p.write_bytes(bytes(data))

def _edit_tensor(value):
    def spoil(w, p):
        r = w.python(textwrap.dedent(f'''
            import torch
            from resnet_course.records import _safe_load
            st = _safe_load({str(p)!r}); k = [k for k, v in st['model'].items() if v.is_floating_point()][2]
            st['model'][k] = st['model'][k] + {value}
            torch.save(st, {str(p)!r})'''))
        assert r.rc == 0, f'could not spoil the progress file:{r}'
    return spoil

PROGRESS_DAMAGE = {'bytes-garbled': damaged_progress(_garble), 'tensor-changed': damaged_progress(_edit_tensor('0.01')),
                   'tensor-nan': damaged_progress(_edit_tensor("float('nan')"))}

@pytest.mark.parametrize('damage', list(PROGRESS_DAMAGE))
def test_progress_damaged(damage, w, d): PROGRESS_DAMAGE[damage](w, d)

def spoiled_data(w, d, spoil) -> Path:
    data = d/'data'; shutil.copytree(w.small3, data); spoil(data); return data

def truncate(p:Path): p.write_bytes(p.read_bytes()[:p.stat().st_size // 2])

def test_one_class_dataset(w, d):
    def spoil(data):
        for split in ('train', 'val'):
            for c in sorted((data/split).iterdir())[1:]: shutil.rmtree(c)
    data = spoiled_data(w, d, spoil)
    w.error_run(['reproduce', '--data', data, '--models', 'fcn', *SMALL, '--out', d/'out'], 'one class', 'second class', watch=[d])

def test_data_command_truncated_jpeg(w, d):
    bad = []
    data = spoiled_data(w, d, lambda data: (bad.append(sorted((data/'train'/'n01440764').iterdir())[0]), truncate(bad[0])))
    r = w.cli(['data', '--data', data], timeout=ERROR_TIMEOUT)
    assert r.rc == 1 and str(bad[0]) in r.stdout and 'unreadable' in r.stdout, f'the data check did not report the truncated image:{r}'
    assert 'Traceback' not in r.output, f'a Python traceback:{r}'

def test_data_command_class_of_garbage(w, d):
    def spoil(data):
        for f in (data/'train'/'n01440764').iterdir(): f.write_bytes(os.urandom(2000))
    data = spoiled_data(w, d, spoil)
    r = w.cli(['data', '--data', data], timeout=ERROR_TIMEOUT)
    assert r.rc == 1 and 'n01440764' in r.stdout and 'unreadable' in r.stdout, f'the data check did not report the unreadable class:{r}'
    assert 'Traceback' not in r.output, f'a Python traceback:{r}'

def test_truncated_jpeg_on_chapter_path(w, d):
    "A truncated JPEG is found before training, skipped with a warning that names it, and the run completes"
    bad = []
    data = spoiled_data(w, d, lambda data: (bad.append(sorted((data/'train'/'n01440764').iterdir())[0]), truncate(bad[0])))
    r = w.cli(['reproduce', '--data', data, '--models', 'fcn', *SMALL, '--out', d/'out'])
    assert r.rc == 0 and 'Traceback' not in r.output, f'the run failed on the truncated image:{r}'
    assert bad[0].name in r.output, f'no warning names the truncated image:{r}'
    w.assert_final(d/'out')

def test_class_with_every_training_file_unreadable(w, d):
    def spoil(data):
        for f in (data/'train'/'n01440764').iterdir(): f.write_bytes(os.urandom(2000))
    data = spoiled_data(w, d, spoil)
    # --bs 8: the 16 readable training images of the other two classes make two batches, so that nothing but the lost class can stop the run
    w.error_run(['reproduce', '--data', data, '--models', 'fcn', '--size', '32', '--bs', '8', '--epochs', '1', '--out', d/'out'],
                'n01440764', 'every image', 'unreadable', watch=[d])

def test_readable_name_beside_its_wnid(w, d):
    def spoil(data):
        for split in ('train', 'val'): shutil.copytree(data/split/'n02102040', data/split/'tench')
    data = spoiled_data(w, d, spoil)
    w.error_run(['reproduce', '--data', data, '--models', 'fcn', *SMALL, '--out', d/'out'], 'tench', 'n01440764', watch=[d])

def test_results_csv_is_a_folder(w, d):
    out = d/'out'; (out/'results.csv').mkdir(parents=True)
    w.error_run(quick(out), 'results.csv', 'folder', '--out', watch=[d])

def test_runs_is_a_file(w, d):
    out = d/'out'; out.mkdir(); (out/'runs').write_text('a file of mine')
    w.error_run(quick(out), 'runs', '--out', watch=[d])

def out_checked_first(cmd, cwd=None):
    def run(w, d):
        (d/'afile').write_text('not a folder')
        argv = [cmd, '--quick'] + ([] if cwd else ['--out', d/'afile'/'x'])
        before = snapshot(d)
        r = w.cli(argv, timeout=ERROR_TIMEOUT, cwd=cwd)
        assert_clear_error(r, '--out')
        assert_unchanged(before, snapshot(d), str(d))
    return run

OUT_FIRST = {'bench-out-under-a-file': out_checked_first('bench'), 'speedrun-out-under-a-file': out_checked_first('speedrun'),
             'bench-read-only-working-folder': out_checked_first('bench', cwd=Path('/proc')),
             'speedrun-read-only-working-folder': out_checked_first('speedrun', cwd=Path('/proc'))}

@pytest.mark.parametrize('name', list(OUT_FIRST))
def test_out_checked_first(name, w, d): OUT_FIRST[name](w, d)

def test_batch_larger_than_one_process_share(w, d):
    "Under torchrun each process trains on its share of the images: a batch larger than that share is refused before training"
    r = w.python(textwrap.dedent(f'''
        from pathlib import Path
        from resnet_course.chapter import chapter_settings
        from resnet_course.reproduce import preflight
        from resnet_course.settings import resolve
        s = chapter_settings('fcn', size=32, bs=16, epochs=1, source={str(w.small3)!r}, world_size=2)   # 24 images: 12 per process
        try: preflight([('fcn', resolve(s, 'cpu'))], Path({str(d/'out')!r})); print('PASSED')
        except ValueError as e: print('REFUSED', e)'''))
    assert 'REFUSED' in r.stdout and '--bs' in r.stdout and number(12).search(r.stdout), f'the preflight let a batch larger than a process share through:{r}'

@contextmanager
def folder_held(w, out):
    "Another process holds `out`'s lock while the block runs, as a second command started into the same folder would find it"
    holder = w.start([], code=textwrap.dedent(f'''
        import time
        from resnet_course.files import folder_lock
        with folder_lock({str(out)!r}):
            print('LOCKED', flush=True); time.sleep(120)'''))
    t0 = time.monotonic()
    while 'LOCKED' not in holder.stdout_so_far() and time.monotonic() - t0 < 60: time.sleep(0.05)
    try: yield
    finally: holder.kill()

def test_figures_folder_locked(w, d):
    out = d/'out'
    with folder_held(w, out):
        before = snapshot(out)
        r = w.cli(['figures', '--quick', '--out', out], timeout=ERROR_TIMEOUT)
        assert_clear_error(r, 'in use', '--out', code=1)
        assert_unchanged(before, snapshot(out), str(out))

def test_bench_one_training_batch(w, d):
    w.error_run(['bench', '--quick', '--models', 'fcn', '--out', d/'out'], 'batch', '--data', watch=[d])

def test_mplbackend_nonsense(w, d):
    w.error_run(quick(d/'out'), 'MPLBACKEND', 'nonsense', env={'MPLBACKEND': 'nonsense'}, watch=[d])   # matplotlib already imported (this process)
    before = snapshot(d)
    p = subprocess.run([sys.executable, '-m', 'resnet_course', 'data'], capture_output=True, text=True, timeout=ERROR_TIMEOUT,
                       env={**w.env, 'MPLBACKEND': 'nonsense'}, cwd=d)                         # a fresh process, where importing matplotlib fails
    assert p.returncode == 1 and 'MPLBACKEND' in p.stderr and 'Traceback' not in p.stderr, f'a fresh process: exit {p.returncode}\n{p.stderr[-2000:]}'
    assert_unchanged(before, snapshot(d), str(d))

def test_fast_cache_not_writable(w, d):
    "Where the image cache cannot be written (a read-only FASTAI_HOME; here, as root, a folder under /proc), the message names the cache and RESNET_COURSE_CACHE"
    w.error_run(quick(d/'out', '--fast'), 'RESNET_COURSE_CACHE', 'cache', env={'RESNET_COURSE_CACHE': '/proc/nocache'}, watch=[d])   # FASTAI_HOME gains fastai's config.ini on first use: not this case's

def test_options_fixed_by_the_cli_rewrite(w, d):
    "`--models \"\"`, `--lr` (no abbreviation of --lr-find) and `--bs 1`, each refused in the command's own terms"
    for argv, phrases in ((['reproduce', '--models', ''], ('--models', 'names no model')), (['bench', '--models', ''], ('--models', 'names no model')),
                          (['reproduce', '--lr', '0'], ('--lr',)), (['reproduce', '--bs', '1'], ('--bs', 'at least 2'))):
        w.error_run([*argv, '--out', d/'out'], *phrases, watch=[d])

# 9. The third misuse sweep (issue 34): nothing fake, nothing late

def speedrun(out, *more): return ['speedrun', '--quick', '--out', out, *more]

def package_root() -> str:
    "The folder of the package these tests import, for a fresh process to import the same"
    import resnet_course
    return str(Path(resnet_course.__file__).parents[1])

def test_every_seed_checked_before_the_first_trains(w, d):
    "Item 3: a seed out of range is refused before seed 42 trains, and the message names the option typed (--seeds, not --seed)"
    for seeds, bad in ((f'42,{2**64}', 2**64), ('-1', -1)):
        r = w.error_run(speedrun(d/'out', '--seeds', seeds), '--seeds', number(bad), watch=[d])
        assert not re.search(r'--seed(?!s)', r.stderr), f'the message names --seed, which speedrun does not have:{r}'
    w.error_run(quick(d/'out', '--seed', '-1'), '--seed', number(-1), watch=[d])

def test_validation_set_smaller_than_nine_images(w, d):
    "Item 4: six validation images: the run shows six top losses, and a rerun reuses it rather than retrying the interpretation"
    data = make_small_dataset(d/'data', n_classes=3, n_train=8, n_valid=2)
    args = ['reproduce', '--data', data, '--models', 'fcn', *SMALL, '--out', d/'out']
    r = w.cli(args)
    assert r.rc == 0, f'the run did not complete:{r}'
    run = next((d/'out').glob('runs/fcn-*'))
    assert (run/'top_losses.png').exists() and (run/'confusion.json').exists(), f'no interpretation was saved:{r}'
    r = w.cli(args)
    assert r.rc == 0 and 'done before' in r.stdout and 'saving the confusion matrix' not in r.stdout, f'the rerun did not just reuse the run:{r}'
    w.assert_final(d/'out')

def test_quick_ablation_is_quick_and_true(w, d):
    "Item 5: --quick --ablation keeps to its stated budget, and a lever that changes nothing on the sample is named and never tabulated"
    from resnet_course.cli import QUICK_ABLATION_SECONDS
    r = w.cli(speedrun(d/'out', '--ablation'), timeout=QUICK_ABLATION_SECONDS)
    assert r.rc == 0, f'the quick ablation failed:{r}'
    md = (d/'out'/'ablation.md').read_text()
    for lever in ('batch size 64', 'batch size 256', 'torch.compile'): assert lever not in md, f'{lever!r} is tabulated:\n{md}'
    assert 'batch size 64 (peak lr scaled with it) changes nothing on the sample' in r.stdout, r
    assert 'On the sample' in md and 'no label smoothing' in md, md

def test_two_speed_runs_into_one_folder(w, d):
    "Item 6: a second speed run into a folder in use is refused at once; the first trains each of its seeds once"
    out = d/'out'
    first = w.start(speedrun(out, '--seeds', ','.join(map(str, range(1, 9)))))
    t0 = time.monotonic()
    while ', seed 1:' not in first.stdout_so_far() and not first.done() and time.monotonic() - t0 < 120: time.sleep(0.05)
    assert ', seed 1:' in first.stdout_so_far(), f'the first run never started training:{first.wait()}'
    second = w.cli(speedrun(out, '--seeds', '1'), timeout=ERROR_TIMEOUT)
    assert not first.done(), 'the first run ended before the second was refused: make the first run longer'
    assert_clear_error(second, 'in use', '--out', code=1)
    r = first.wait()
    assert r.rc == 0, f'the first run did not complete:{r}'
    seeds = [e['settings']['recipe']['seed'] for e in json.loads((out/'speedrun.json').read_text())]
    assert seeds == list(range(1, 9)), seeds

def test_devices_and_modes(w, d):
    "Item 7: a device name PyTorch does not know, and --quick with a size the sample does not train, are refused in the command's own terms"
    w.error_run(quick(d/'out', '--device', 'garbage'), '--device', 'garbage', watch=[d])
    w.error_run(['reproduce', '--quick', '--models', 'resnet50', '--size', '1000', '--out', d/'out'], '--size', number(1000), '--quick', watch=[d])
    r = w.error_run(['figures', '--quick', '--size', '1000', '--out', d/'out'], '--size', number(1000), watch=[d])
    assert '--presize' not in r.stderr, f'the message names --presize, which figures does not have:{r}'
    import torch
    if torch.cuda.is_available(): return
    r = w.error_run(['speedrun', '--recipe', 'gpu', '--device', 'cpu', '--out', d/'out'], '--recipe', 'CPU recipe', watch=[d])

def test_speedrun_without_a_gpu_says_what_it_trains(w, d):
    "Item 7: `speedrun --device cuda` on a machine without a GPU does not announce fp32 and then train in bf16"
    import torch
    if torch.cuda.is_available(): pytest.skip('this machine has a GPU: there is nothing to fall back from')
    from resnet_course.machine import precision
    r = w.cli(speedrun(d/'out', '--device', 'cuda'))
    assert r.rc == 0, f'the run failed:{r}'
    other = {'bf16': 'fp32', 'fp32': 'bf16'}[precision('cpu')]
    assert 'training on the CPU' in r.stdout and f'in {other}' not in r.stdout, r

def test_full_stdout(w, d):
    "Item 9: a full standard output gets one line that says so, before any work, and nothing is trained"
    env = {**w.env, 'PYTHONPATH': package_root()}
    with open('/dev/full', 'w') as full:
        p = subprocess.run([sys.executable, '-m', 'resnet_course', *quick(d/'out')], stdout=full, stderr=subprocess.PIPE, text=True,
                           env=env, cwd=d, timeout=ERROR_TIMEOUT + 60)
    assert p.returncode == 1 and 'standard output' in p.stderr and 'Traceback' not in p.stderr and 'Exception ignored' not in p.stderr, p.stderr[-2000:]
    assert not (d/'out'/'runs').exists(), 'it trained, though its output went nowhere'

def nested(data:Path):
    for split in ('train', 'val'):
        for c in (data/split).iterdir():
            (c/'images').mkdir()
            for f in c.glob('*.JPEG'): f.rename(c/'images'/f.name)

def test_nested_class_folders(w, d):
    "Item 10: images in train/CLASS/images/ are refused by the data check, the chapter's path, the fast path and the speed run alike"
    data = spoiled_data(w, d, nested)
    r = w.cli(['data', '--data', data], timeout=ERROR_TIMEOUT)
    assert r.rc == 1 and 'WRONG' in r.stdout and 'subfolder' in r.stdout and 'Traceback' not in r.output, f'the data check passed nested folders:{r}'
    for extra in ([], ['--fast']):
        w.error_run(['reproduce', '--data', data, '--models', 'fcn', *SMALL, '--out', d/'out', *extra], 'subfolder', "'images'", watch=[d])
    w.error_run(speedrun(d/'out', '--data', data), 'subfolder', watch=[d])

def test_class_folder_linked_to_another(w, d):
    "Item 13: a class folder that is a link to another class folder is named as such, not as unreadable; a validation folder linked to its training folder too"
    def spoil(data):
        shutil.rmtree(data/'train'/'n02979186'); os.symlink('n02102040', data/'train'/'n02979186')
    data = spoiled_data(w, d, spoil)
    r = w.error_run(['reproduce', '--data', data, '--models', 'fcn', *SMALL, '--out', d/'out'], 'link', 'n02102040', watch=[d])
    assert 'unreadable' not in r.stderr, r
    def spoil(data):
        shutil.rmtree(data/'val'/'n02979186'); os.symlink(data/'train'/'n02979186', data/'val'/'n02979186')
    data = d/'data2'; shutil.copytree(w.small3, data); spoil(data)
    w.error_run(['reproduce', '--data', data, '--models', 'fcn', *SMALL, '--out', d/'out'], 'link', 'trained on', watch=[d])

def test_out_with_a_tilde(w, d):
    "Item 13: --out=~/x (which the shell leaves alone) means the home folder's x, not a folder named ~ in the working folder"
    work = d/'work'; work.mkdir()
    r = w.cli(speedrun('~/x'), env={'HOME': str(d/'home')}, cwd=work)
    assert r.rc == 0, f'the run failed:{r}'
    assert (d/'home'/'x'/'speedrun.json').exists() and not (work/'~').exists(), f'the results went to {sorted(map(str, work.rglob("*")))}'

def test_speedrun_data_smaller_than_a_batch(w, d):
    "Item 13: the message speaks of the recipe's batch and --data, not of --bs, which speedrun does not have; and nothing trains, not even the reference"
    r = w.error_run(['speedrun', '--recipe', 'book-in-3', '--reference', '--data', w.small3, '--out', d/'out'], '--data', number(128), watch=[d])
    assert '--bs' not in r.stderr, r

def test_out_on_a_full_disk(w, d, monkeypatch):
    "Item 13: an --out whose disk has no room is refused before the training, which would otherwise lose its result"
    import shutil as sh
    usage = sh.disk_usage
    monkeypatch.setattr(sh, 'disk_usage', lambda p: usage(p)._replace(free=0))
    for argv in (quick(d/'out'), speedrun(d/'out2'), ['figures', '--quick', '--out', d/'out3']):
        w.error_run(argv, '--out', 'MiB free', watch=[d/'out', d/'out2', d/'out3'])

def test_figures_rerun_after_its_weights_went(w, d):
    "Item 13: figures --quick keeps to its budget, and a rerun after a lost weight file (and an unfinished landscape) completes"
    from resnet_course.cli import QUICK_FIGURES_SECONDS
    out = d/'out'
    r = w.cli(['figures', '--quick', '--out', out], timeout=QUICK_FIGURES_SECONDS)
    assert r.rc == 0, f'figures --quick failed:{r}'
    (out/'plain-56.pth').unlink(); (out/'landscape.json').unlink()
    r = w.cli(['figures', '--quick', '--out', out], timeout=QUICK_FIGURES_SECONDS)
    assert r.rc == 0 and (out/'plain-56.pth').exists(), f'the rerun failed:{r}'

def test_no_torch_under_a_memory_limit(w, d):
    "Item 13: where PyTorch cannot load (an address-space limit), one line says so; no traceback, and the handler imports nothing again"
    import resource
    def limit(): resource.setrlimit(resource.RLIMIT_AS, (2 * 10**9, 2 * 10**9))
    env = {**w.env, 'PYTHONPATH': package_root()}
    p = subprocess.run([sys.executable, '-m', 'resnet_course', *quick(d/'out')], capture_output=True, text=True, env=env, cwd=d,
                       timeout=ERROR_TIMEOUT + 60, preexec_fn=limit)
    assert p.returncode == 1 and 'Traceback' not in p.stderr and 'address space' in p.stderr, p.stderr[-3000:]
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr[-3000:]

def test_speedrun_summary_covers_every_kept_seed(w, d):
    "Item 13: after adding a seed to a folder that keeps others, speedrun.md summarises every seed it keeps"
    for seeds in ('1,2', '3'): assert w.cli(speedrun(d/'out', '--seeds', seeds)).rc == 0
    md = (d/'out'/'speedrun.md').read_text()
    assert '3 seed(s) (1, 2, 3)' in md and len([l for l in md.splitlines() if re.match(r'\|\s+\d+ \|', l)]) == 3, md

# 10. Cases of the third sweep's own search (issue 34, "Deliver" 2)

def test_image_outside_any_class_folder(w, d):
    "A stray image in train/ itself made a class named 'train' on the fast path, and was dropped on the chapter's: both refuse it now, naming it"
    def spoil(data): shutil.copy(next((data/'train'/'n01440764').iterdir()), data/'train'/'stray.JPEG')
    data = spoiled_data(w, d, spoil)
    for extra in ([], ['--fast']):
        w.error_run(['reproduce', '--data', data, '--models', 'fcn', *SMALL, '--out', d/'out', *extra], 'stray.JPEG', 'class folder', watch=[d])

def test_a_lever_larger_than_the_data_is_found_first(w, d):
    "Each lever of --ablation is checked against the data before the recipe trains: here a batch of 256 from 200 training images"
    data = make_small_dataset(d/'data', n_classes=10, n_train=20, n_valid=2)
    w.error_run(['speedrun', '--recipe', 'book-in-3', '--ablation', '--levers', 'bs256', '--data', data, '--out', d/'out'],
                'batch size 256', number(200), '--data', watch=[d])

def test_a_sample_reference_sets_no_target(w, d):
    "A chapter reference timed on the sample (--quick --reference) never becomes the CPU target of a real run beside it"
    assert w.cli(speedrun(d/'runs'/'a', '--reference')).rc == 0
    from resnet_course.fast import machine_key
    from resnet_course.goals import speed_target
    assert speed_target('15-minutes', machine_key('cpu'), d/'runs') is None

def test_speedrun_files_that_are_folders(w, d):
    for name in ('speedrun.json', 'ablation.md'):
        out = d/name; (out/name).mkdir(parents=True)
        w.error_run(speedrun(out, '--ablation', '--levers', 'no-smoothing'), name, 'folder', '--out', watch=[d])

def test_bench_folder_locked(w, d):
    "Two benchmarks into one folder would time each other and write the same files: the second is refused, as for figures"
    out = d/'out'
    data = make_small_dataset(d/'data', n_classes=10, n_train=8, n_valid=2)   # two batches of 32 on the sample: enough to time
    with folder_held(w, out):
        before = snapshot(out)
        r = w.cli(['bench', '--quick', '--models', 'fcn', '--data', data, '--out', out], timeout=ERROR_TIMEOUT)
        assert_clear_error(r, 'in use', '--out', code=1)
        assert_unchanged(before, snapshot(out), str(out))

def test_sample_mode_set_for_a_command_that_follows_quick(w, d):
    "RESNET_COURSE_MODE=sample does not make speedrun train on the sample (only --quick does): it says so before it starts"
    r = w.cli(['speedrun', '--recipe', 'book-in-3', '--ablation', '--levers', 'bs256', '--data', w.small3, '--out', d/'out'], env={'RESNET_COURSE_MODE': 'sample'})
    assert r.rc == 1 and 'takes the sample only with --quick' in r.stdout, r

def test_interrupted_speed_run_says_what_is_kept(w, d):
    out = d/'out'
    p = w.start(speedrun(out, '--seeds', ','.join(map(str, range(1, 30)))))
    t0 = time.monotonic()
    while not (out/'speedrun.json').exists() and not p.done() and time.monotonic() - t0 < 120: time.sleep(0.05)
    assert not p.done(), f'the run ended before it could be interrupted:{p.wait()}'
    p.interrupt(); r = p.wait(60)
    assert r.rc == 130 and 'Every finished run' in r.stderr and 'Traceback' not in r.stderr, r
    w.assert_all_loadable(out)
