"""The image cache (nbs/57_cache.ipynb) under misuse: every damaged or stale cache is named and rebuilt, a build killed at
random moments never leaves a cache that passes for complete, a killed build never blocks the next, a full disk is refused
before anything is written, a cache larger than the memory is read a batch at a time, and builds run in parallel where they
can (worker processes in an ordinary process, threads in a daemon one)."""
import multiprocessing as mp
import errno, os, random, re, shutil, signal, time
from contextlib import contextmanager
from pathlib import Path
import numpy as np
import pytest
import resnet_course  # noqa: F401  (first: it quiets a torch warning that importing fastai triggers)
import resnet_course.cache as cache_module
from resnet_course.data import image_files
from resnet_course.cache import ImageCache, CacheSpaceError, SPACE_MARGIN, cache_dir, cache_key, cache_problem, decoder_pool, image_cache, pool_kind
from resnet_course.files import FolderBusyError, folder_lock
from resnet_course.loaders import CachedDL, cached_datasets, fast_batch_tfms
from conftest import IMAGENETTE
from cli_runner import FORKSERVER, server_pid

def _build(root, cache, pool=None, presize=32):
    return np.array(image_cache(image_files(root, ['train']), root, 'train', presize, cache=cache, pool=pool, workers=2).images)

# ---------------------------------------------------------------------------------------------------- damaged and stale
def _key(root): return cache_key(image_files(root, ['train']), root, 'train', 32)

def _folder(root, cache): return cache_dir(root, cache)/f'train-32px-{_key(root)}'

def _zero(f:Path, rows=slice(None), keep_time=False):
    "Overwrite rows `rows` of the array in `f` with zeros, in place (same size), restoring its modification time if `keep_time`"
    st, images = os.stat(f), np.load(f, mmap_mode='r')
    start, stop, _ = rows.indices(len(images))
    with open(f, 'r+b') as fh: fh.seek(images.offset + start * images[0].nbytes); fh.write(bytes((stop - start) * images[0].nbytes))
    if keep_time: os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))

def _header_edit(f:Path, old:bytes, new:bytes):
    "Replace `old` by `new` (as long) in the header of the .npy file `f`"
    b = f.read_bytes(); assert len(old) == len(new) and old in b[:128]
    f.write_bytes(b[:128].replace(old, new) + b[128:])

DAMAGE = {   # what happens to a finished cache (or to its dataset), and what `cache_problem` must then say
    'untouched': (lambda root, f: None, None),
    'killed after the array, before the manifest': (lambda root, f: (f/'manifest.json').unlink(), 'was never finished'),
    'array cut short': (lambda root, f: (f/'images.npy').write_bytes((f/'images.npy').read_bytes()[:-100]), 'has an images file of the wrong size'),
    'manifest cut short': (lambda root, f: (f/'manifest.json').write_text('{"version": 1, "ke'), 'has a damaged manifest'),
    'manifest of another key': (lambda root, f: (f/'manifest.json').write_text(re.sub(r'"key": "\w+"', '"key": "0000"', (f/'manifest.json').read_text())),
                                'was built for other files, sizes or code'),
    'array missing': (lambda root, f: (f/'images.npy').unlink(), 'has an images file of the wrong size'),
    'a temporary array left, no manifest': (lambda root, f: ((f/'manifest.json').unlink(), (f/'images.npy').rename(f/'.images.npy.x.tmp')), 'was never finished'),
    'pixels zeroed in the middle': (lambda root, f: _zero(f/'images.npy', slice(8, 12)), 'has 4 damaged images (pixels that differ from those it was built with)'),
    'pixels zeroed, time kept': (lambda root, f: _zero(f/'images.npy', slice(20, 21), keep_time=True), 'has 1 damaged images (pixels that differ from those it was built with)'),
    'every pixel zeroed': (lambda root, f: _zero(f/'images.npy'), 'has 24 damaged images (pixels that differ from those it was built with)'),
    'header: tokenize.TokenError': (lambda root, f: _header_edit(f/'images.npy', b"(24, 3, 32, 32), }", b"((24, 3, 32, 32 } "), 'has a damaged images header'),
    'header: ValueError': (lambda root, f: _header_edit(f/'images.npy', b"'descr'", b"'descr "), 'has a damaged images header'),
    'header: another shape, same size': (lambda root, f: _header_edit(f/'images.npy', b'(24, 3, 32, 32)', b'(12, 6, 32, 32)'), 'has a damaged images header'),
}

@pytest.mark.parametrize('case', list(DAMAGE))
def test_a_damaged_cache_is_named_then_rebuilt(case, small_dataset, tmp_path, capsys):
    change, problem = DAMAGE[case]
    good = _build(small_dataset, tmp_path)
    folder = _folder(small_dataset, tmp_path)
    change(small_dataset, folder)
    assert cache_problem(folder, _key(small_dataset)) == problem
    finished = (folder/'manifest.json').exists() and (folder/'images.npy').exists()
    cache_module._open.clear()                                   # as a new process would find it
    assert np.array_equal(_build(small_dataset, tmp_path), good)
    out = capsys.readouterr().out
    assert (out == '') == (problem is None), out
    if problem: assert len(out.splitlines()) == 1 and problem in out and 'rebuil' in out, out     # one line, naming the problem
    assert cache_problem(folder, _key(small_dataset)) is None and not list(folder.glob('.images.*'))
    assert len(list(folder.glob('images.npy.*'))) == (problem is not None and finished)          # a finished cache is moved aside, not deleted

def _same_size_and_time(f:Path):
    "Change the first value of the first quantisation table of the JPEG `f`: other pixels, the same size, its modification time put back"
    b, st = bytearray(f.read_bytes()), os.stat(f)
    i = b.index(b'\xff\xdb') + 5                       # DQT marker, its length (2 bytes), the table's precision and number (1 byte)
    b[i] = b[i] % 100 + 20
    f.write_bytes(b); os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(f).st_size == st.st_size and os.stat(f).st_mtime_ns == st.st_mtime_ns

@pytest.mark.parametrize('change', ['rewritten', 'same size and time', 'removed', 'added'])
def test_a_changed_dataset_gets_a_new_cache(change, small_dataset, tmp_path):
    "An image rewritten (even keeping its size and time), removed or added changes the key: the old cache is never looked at, and the new one holds the new files"
    old_key, first = _key(small_dataset), image_files(small_dataset, ['train'])[0]
    old = _build(small_dataset, tmp_path)
    if change == 'rewritten': os.utime(first, ns=(0, 0))
    if change == 'same size and time': _same_size_and_time(first)
    if change == 'removed': first.unlink()
    if change == 'added': (first.parent/'copy.JPEG').write_bytes(first.read_bytes())
    assert _key(small_dataset) != old_key
    old_folder = cache_dir(small_dataset, tmp_path)/f'train-32px-{old_key}'
    assert cache_problem(old_folder, _key(small_dataset)) == 'was built for other files, sizes or code'
    new = _build(small_dataset, tmp_path)
    assert len(new) == len(image_files(small_dataset, ['train']))
    if change == 'same size and time': assert not np.array_equal(new[0], old[0]) and np.array_equal(new[0], cache_module.presized(first, 32))

def test_the_wrong_shape_is_refused(small_dataset, tmp_path):
    files = image_files(small_dataset, ['train'])
    c = image_cache(files, small_dataset, 'train', 32, cache=tmp_path)
    with pytest.raises(ValueError, match='damaged. Delete the folder'): ImageCache(c.folder, files[:-1], 32)

# ---------------------------------------------------------------------------------------------------- killed mid-build
SLOW_BUILD = """
import time
from pathlib import Path
import resnet_course.cache as C
decode = C.presized
C.presized = lambda fn, presize: (time.sleep({per_image!r}), decode(fn, presize))[1]
C.image_cache([Path(f) for f in {files!r}], Path({root!r}), 'train', 48, cache={cache!r}, pool='serial')
"""

def _kill_mid_build(runner, files, root, cache:Path, rng, per_image:float=0.01) -> float:
    "Start a child that builds the cache of `files` slowly; SIGKILL it at a random moment after it starts writing; return that moment"
    p = runner.start([], code=SLOW_BUILD.format(files=[str(f) for f in files], root=str(root), cache=str(cache), per_image=per_image))
    while not any(Path(cache).rglob('*images*')):
        assert not p.done(), f'the build ended before it wrote anything:{p.wait()}'
        time.sleep(0.002)
    wait = rng.uniform(0, 0.9 * per_image * len(files))
    time.sleep(wait)
    p.kill(); r = p.wait(60)
    assert r.rc == -signal.SIGKILL, f'the build finished before it was killed:{r}'
    return wait

def test_a_build_killed_at_random_moments_is_rebuilt_the_same(runner, tmp_path):
    "Three builds of 120 real images, each SIGKILLed at a random moment: the cache never looks complete, and the next build is byte for byte a clean one"
    files = image_files(IMAGENETTE, ['train'])[:120]
    reference = np.array(image_cache(files, IMAGENETTE, 'train', 48, cache=tmp_path/'reference', pool='serial').images)
    rng = random.Random()
    for k in range(3):
        cache = tmp_path/f'killed{k}'
        wait = _kill_mid_build(runner, files, IMAGENETTE, cache, rng)
        folder = cache_dir(IMAGENETTE, cache)/f"train-48px-{cache_key(files, IMAGENETTE, 'train', 48)}"
        assert cache_problem(folder, cache_key(files, IMAGENETTE, 'train', 48)) is not None, f'killed after {wait:.2f} s, the cache looks complete'
        assert np.array_equal(np.asarray(image_cache(files, IMAGENETTE, 'train', 48, cache=cache).images), reference)

# ---------------------------------------------------------------------------------------------------- locks: killed and live holders
@contextmanager
def _deadline(seconds:int):
    "Raise TimeoutError in the block after `seconds`, so that a wait that never ends fails the test instead of hanging it"
    def stop(*_): raise TimeoutError(f'still waiting after {seconds} s')
    old = signal.signal(signal.SIGALRM, stop); signal.alarm(seconds)
    try: yield
    finally: signal.alarm(0); signal.signal(signal.SIGALRM, old)

_presized = cache_module.presized

def _slow_presized(fn, presize):
    "`presized`, slowed down, leaving the pid of the worker that runs it in the folder $CACHE_TEST_PIDS"
    Path(os.environ['CACHE_TEST_PIDS'], str(os.getpid())).touch()
    time.sleep(0.05)
    return _presized(fn, presize)

def _alive(pid:int) -> bool:
    "Whether process `pid` exists and is not a zombie"
    try: return Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0] != 'Z'
    except FileNotFoundError: return False

SLOW_POOL_BUILD = """
from pathlib import Path
import resnet_course.cache as C
from test_cache import _slow_presized                   # by name, so that the build's worker processes can unpickle it
C.presized = _slow_presized
C.image_cache([Path(f) for f in {files!r}], Path({root!r}), 'train', 48, cache={cache!r}, pool='process', workers=2)
"""

def test_a_killed_builder_whose_workers_live_on_does_not_block_the_next(runner, tmp_path, monkeypatch, capsys):
    """A build with two decoder processes is SIGKILLed while they work: they live on, orphaned. The next build must not wait
    for them (the lock is a POSIX record lock, which the forked workers do not inherit) and builds the right images"""
    files = image_files(IMAGENETTE, ['train'])[:64]
    cache, pids = tmp_path/'cache', tmp_path/'pids'
    pids.mkdir()
    builder = runner.start([], code=SLOW_POOL_BUILD.format(files=[str(f) for f in files], root=str(IMAGENETTE), cache=str(cache)),
                           env={'CACHE_TEST_PIDS': str(pids)})
    workers = []
    try:
        with _deadline(120):
            while len(list(pids.iterdir())) < 2 or not list(cache.rglob('.images.*')): time.sleep(0.01)   # both workers decoding, the array begun
        builder.kill(); assert builder.wait(60).rc == -signal.SIGKILL
        workers = [int(p.name) for p in pids.iterdir()]
        assert len(workers) == 2 and all(map(_alive, workers)), 'the killed builder took its workers with it: this test tests nothing'
        assert not [w for w in workers if str(cache) in Path(f'/proc/{w}/maps').read_text()], 'the orphans map the unfinished array: its space stays taken'
        monkeypatch.setattr(cache_module, 'CACHE_PATIENCE', 5)
        with _deadline(120): c = image_cache(files, IMAGENETTE, 'train', 48, cache=cache, pool='serial')
        assert all(map(_alive, workers))                       # still there, and still no obstacle
    finally:
        for w in workers: os.kill(w, signal.SIGKILL)          # the builder's workers, by pid
    out = capsys.readouterr().out
    assert 'Waiting' not in out and 'was never finished: rebuilding it' in out, out
    assert np.array_equal(np.asarray(c.images), np.stack([_presized(f, 48) for f in files]))

HOLD_LOCK = """
import time
from pathlib import Path
from resnet_course.files import folder_lock
folder = Path({folder!r})
with folder_lock(folder, 'test'):
    print('LOCKED', flush=True); t0 = time.monotonic()
    while time.monotonic() - t0 < {seconds!r}:
        if {grow!r}:
            with open(folder/'.images.npy.progress.tmp', 'ab') as f: f.write(b'x' * 4096)
        time.sleep(0.2)
"""

def _hold_lock(runner, folder:Path, seconds:float, grow:bool=False):
    "Start a child that holds the lock of `folder` for `seconds` (writing a growing file there if `grow`); return it once it has the lock"
    p = runner.start([], code=HOLD_LOCK.format(folder=str(folder), seconds=seconds, grow=grow))
    with _deadline(120):
        while 'LOCKED' not in p.stdout_so_far():
            assert not p.done(), f'the holder ended before it took the lock:{p.wait()}'
            time.sleep(0.01)
    return p

def test_a_live_holder_without_progress_is_named_after_a_bounded_wait(runner, small_dataset, tmp_path, monkeypatch, capsys):
    "A process that holds the cache's lock and does nothing: the build waits `CACHE_PATIENCE` seconds, then gives up in one line naming its pid and the fixes"
    folder = _folder(small_dataset, tmp_path)
    holder = _hold_lock(runner, folder, 60); pid = holder.pid
    monkeypatch.setattr(cache_module, 'CACHE_PATIENCE', 2)
    t0 = time.monotonic()
    try:
        with _deadline(60), pytest.raises(FolderBusyError) as e: _build(small_dataset, tmp_path)
    finally: holder.stop()
    msg = str(e.value)
    assert f'process {pid}' in msg and f'kill {pid}' in msg and 'RESNET_COURSE_CACHE' in msg and str(folder) in msg and '\n' not in msg, msg
    assert 2 <= time.monotonic() - t0 < 30
    assert f'Waiting for process {pid}' in capsys.readouterr().out
    assert not (folder/'images.npy').exists() and not (folder/'manifest.json').exists()

def test_a_holder_that_makes_progress_is_waited_for(runner, small_dataset, tmp_path, monkeypatch):
    "A lock holder whose files keep changing is waited for past `CACHE_PATIENCE`, and the build follows it"
    folder = _folder(small_dataset, tmp_path)
    holder = _hold_lock(runner, folder, 4, grow=True)
    monkeypatch.setattr(cache_module, 'CACHE_PATIENCE', 1)
    t0 = time.monotonic()
    try:
        with _deadline(60): good = _build(small_dataset, tmp_path)
    finally: holder.stop()
    assert time.monotonic() - t0 > 3.5 and len(good) == 24

# ---------------------------------------------------------------------------------------------------- a full disk
def test_a_full_disk_is_refused_before_anything_is_written(small_dataset, tmp_path, monkeypatch):
    "Too little free space: one line naming the folder, the bytes needed and free, and RESNET_COURSE_CACHE; the folder holds only its lock"
    free = 10**6
    monkeypatch.setattr(shutil, 'disk_usage', lambda p: shutil._ntuple_diskusage(10**12, 10**12 - free, free))
    with pytest.raises(CacheSpaceError) as e: _build(small_dataset, tmp_path)
    folder, msg = _folder(small_dataset, tmp_path), str(e.value)
    assert str(folder) in msg and f'{24 * 3 * 32 * 32 + SPACE_MARGIN:,} bytes' in msg and f'{free:,} bytes' in msg and 'RESNET_COURSE_CACHE' in msg and '\n' not in msg, msg
    assert [p.name for p in folder.iterdir()] == ['.lock']
    monkeypatch.undo()
    assert len(_build(small_dataset, tmp_path)) == 24

def test_a_disk_that_fills_during_the_build_is_refused_not_sigbus(small_dataset, tmp_path, monkeypatch):
    "Space gone between the check and the writing: the array's blocks are reserved before any is written, so the build stops with the same message and leaves nothing"
    def no_space(fd, offset, length): raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, 'posix_fallocate', no_space)
    with pytest.raises(CacheSpaceError, match='RESNET_COURSE_CACHE'): _build(small_dataset, tmp_path)
    assert [p.name for p in _folder(small_dataset, tmp_path).iterdir()] == ['.lock']

# ---------------------------------------------------------------------------------------------------- larger than memory
def _anon_mib() -> float:
    "This process's anonymous resident memory, in MiB"
    return int(re.search(r'RssAnon:\s+(\d+)', Path('/proc/self/status').read_text()).group(1)) / 1024

def test_a_cache_larger_than_memory_is_read_a_batch_at_a_time(tmp_path):
    "A sparse cache of 11,000 images at 1,024 px (32 GiB, more than this machine's memory): shuffled batches grow the process by a few batches, not by the array"
    from fastai.vision.all import CategoryMap
    n = 11_000
    arr = np.lib.format.open_memmap(tmp_path/'images.npy', mode='w+', dtype=np.uint8, shape=(n, 3, 1024, 1024)); del arr   # sparse: nothing written
    assert (tmp_path/'images.npy').stat().st_size > 32 * 2**30
    files = [IMAGENETTE/'train'/'n01440764'/f'{i}.JPEG' for i in range(n)]
    dl = CachedDL(cached_datasets(ImageCache(tmp_path, files, 1024), CategoryMap(['tench']), 0), bs=4, shuffle=True, num_workers=0,
                  after_batch=fast_batch_tfms('crop', 64), device='cpu')
    before = _anon_mib()
    for _, (xb, yb) in zip(range(8), dl): assert xb.shape == (4, 3, 64, 64)
    assert _anon_mib() - before < 300, f'memory grew by {_anon_mib() - before:.0f} MiB'

# ---------------------------------------------------------------------------------------------------- worker pools
def _in_daemon(root, cache, q):
    "What a daemon process sees: the pool kind it picks, and the cache it builds with it"
    try: q.put((pool_kind(), _build(root, cache)))
    except BaseException as e: q.put((repr(e), None))

def test_processes_outside_a_daemon(small_dataset, tmp_path):
    assert not mp.current_process().daemon and pool_kind() == 'process'
    assert np.array_equal(_build(small_dataset, tmp_path/'procs'), _build(small_dataset, tmp_path/'serial', 'serial'))

def test_threads_inside_a_daemon(small_dataset, tmp_path):
    "In a daemon process, where Python refuses child processes, the default build falls back to threads and still builds the same bytes"
    server_pid()                                     # the harness's fork server, started as the harness starts it
    q = FORKSERVER.Queue()
    p = FORKSERVER.Process(target=_in_daemon, args=(small_dataset, tmp_path/'daemon', q), daemon=True)
    p.start()
    try: kind, arr = q.get(timeout=300); p.join(60)
    finally:
        if p.is_alive(): p.kill(); p.join(60)
    assert kind == 'thread', kind
    assert np.array_equal(arr, _build(small_dataset, tmp_path/'serial', 'serial'))

def _worker_id(i):
    "Which worker ran item `i`: process and thread, after a pause long enough for every worker to take items"
    import threading
    time.sleep(0.05)
    return os.getpid(), threading.get_ident()

def test_pools_really_use_several_workers():
    "A build's pool spreads its items over its workers: processes for 'process', threads for 'thread', one for 'serial'"
    seen = {}
    for kind in ('process', 'thread', 'serial'):
        with decoder_pool(kind, 2) as ex: seen[kind] = set(ex.map(_worker_id, range(16), chunksize=1))
    assert len({pid for pid, _ in seen['process']}) == 2, seen['process']
    assert len({pid for pid, _ in seen['thread']}) == 1 and len({t for _, t in seen['thread']}) == 2, seen['thread']
    assert len(seen['serial']) == 1

# A build on a GPU machine forks its decoding workers from a process that may have initialised CUDA already (58_loaders builds
# caches after moving the chapter's loaders to the GPU). A child forked after CUDA was initialised must not touch CUDA: torch
# marks it as "in a bad fork", and its first CUDA call raises. So the workers' code, decoding and presizing with Pillow, must
# never reach CUDA. This machine has no GPU: each child is marked as torch marks it, then the build runs.
FORKED_AFTER_CUDA = '''
import os, sys, torch
import resnet_course.cache as C
from resnet_course.data import image_files
from pathlib import Path
os.register_at_fork(after_in_child=lambda: setattr(torch.cuda, '_is_in_bad_fork', lambda: True))   # what torch does to such a child
if sys.argv[3] == 'touch':                               # the mutation: workers that call CUDA, which the marking must catch
    decode = C.presized
    def presized(fn, presize): torch.cuda.current_device(); return decode(fn, presize)
    C.presized = presized
root = Path(sys.argv[1])
C.image_cache(image_files(root, ['train']), root, 'train', 40, cache=sys.argv[2], workers=2, pool='process')
print('built')
'''

@pytest.mark.parametrize('workers', ['decode', 'touch'])
def test_build_workers_never_touch_cuda(workers, small_dataset, tmp_path):
    import subprocess, sys
    r = subprocess.run([sys.executable, '-c', FORKED_AFTER_CUDA, str(small_dataset), str(tmp_path/'cache'), workers],
                       capture_output=True, text=True, timeout=600)
    if workers == 'decode': assert r.returncode == 0 and r.stdout.strip().endswith('built'), r.stdout + r.stderr[-3000:]
    else: assert r.returncode != 0 and 'Cannot re-initialize CUDA in forked subprocess' in r.stderr, r.stdout + r.stderr[-3000:]
