"""The image cache (nbs/57_cache.ipynb) under misuse: every damaged or stale cache is named and rebuilt, a build killed at
random moments never leaves a cache that passes for complete, a cache larger than the memory is read a batch at a time,
and builds run in parallel where they can (worker processes in an ordinary process, threads in a daemon one)."""
import multiprocessing as mp
import os, random, re, signal, time
from pathlib import Path
import numpy as np
import pytest
import resnet_course  # noqa: F401  (first: it quiets a torch warning that importing fastai triggers)
import resnet_course.cache as cache_module
from resnet_course.data import image_files
from resnet_course.cache import ImageCache, cache_dir, cache_key, cache_problem, decoder_pool, image_cache, pool_kind
from resnet_course.loaders import CachedDL, cached_datasets, fast_batch_tfms
from conftest import IMAGENETTE

def _build(root, cache, pool=None, presize=32):
    return np.array(image_cache(image_files(root, ['train']), root, 'train', presize, cache=cache, pool=pool, workers=2).images)

# ---------------------------------------------------------------------------------------------------- damaged and stale
def _key(root): return cache_key(image_files(root, ['train']), root, 'train', 32)

def _folder(root, cache): return cache_dir(root, cache)/f'train-32px-{_key(root)}'

DAMAGE = {   # what happens to a finished cache (or to its dataset), and what `cache_problem` must then say
    'untouched': (lambda root, f: None, None),
    'killed after the array, before the manifest': (lambda root, f: (f/'manifest.json').unlink(), 'was never finished'),
    'array cut short': (lambda root, f: (f/'images.npy').write_bytes((f/'images.npy').read_bytes()[:-100]), 'has an images file of the wrong size'),
    'manifest cut short': (lambda root, f: (f/'manifest.json').write_text('{"version": 1, "ke'), 'has a damaged manifest'),
    'manifest of another key': (lambda root, f: (f/'manifest.json').write_text(re.sub(r'"key": "\w+"', '"key": "0000"', (f/'manifest.json').read_text())),
                                'was built for other files, sizes or code'),
    'array missing': (lambda root, f: (f/'images.npy').unlink(), 'has an images file of the wrong size'),
    'a temporary array left, no manifest': (lambda root, f: ((f/'manifest.json').unlink(), (f/'images.npy').rename(f/'.images.npy.x.tmp')), 'was never finished'),
}

@pytest.mark.parametrize('case', list(DAMAGE))
def test_a_damaged_cache_is_named_then_rebuilt(case, small_dataset, tmp_path, capsys):
    change, problem = DAMAGE[case]
    good = _build(small_dataset, tmp_path)
    folder = _folder(small_dataset, tmp_path)
    change(small_dataset, folder)
    assert cache_problem(folder, _key(small_dataset)) == problem
    cache_module._open.clear()                                   # as a new process would find it
    assert np.array_equal(_build(small_dataset, tmp_path), good)
    assert (problem is None) == ('rebuilding' not in capsys.readouterr().out)
    assert cache_problem(folder, _key(small_dataset)) is None and not list(folder.glob('.images.*'))

@pytest.mark.parametrize('change', ['rewritten', 'removed', 'added'])
def test_a_changed_dataset_gets_a_new_cache(change, small_dataset, tmp_path):
    "An image rewritten, removed or added changes the key: the old cache is never looked at, and the new one holds the new files"
    old_key, first = _key(small_dataset), image_files(small_dataset, ['train'])[0]
    _build(small_dataset, tmp_path)
    if change == 'rewritten': os.utime(first, ns=(0, 0))
    if change == 'removed': first.unlink()
    if change == 'added': (first.parent/'copy.JPEG').write_bytes(first.read_bytes())
    assert _key(small_dataset) != old_key
    old_folder = cache_dir(small_dataset, tmp_path)/f'train-32px-{old_key}'
    assert cache_problem(old_folder, _key(small_dataset)) == 'was built for other files, sizes or code'
    new = _build(small_dataset, tmp_path)
    assert len(new) == len(image_files(small_dataset, ['train']))

def test_the_wrong_shape_is_refused(small_dataset, tmp_path):
    files = image_files(small_dataset, ['train'])
    c = image_cache(files, small_dataset, 'train', 32, cache=tmp_path)
    with pytest.raises(ValueError, match='damaged. Delete the folder'): ImageCache(c.folder, files[:-1], 32)

# ---------------------------------------------------------------------------------------------------- killed mid-build
def _kill_mid_build(files, root, cache:Path, rng, per_image:float=0.01) -> float:
    "Fork a child that builds the cache of `files` slowly; SIGKILL it at a random moment after it starts writing; return that moment"
    pid = os.fork()
    if pid == 0:                                     # the child: a slowed-down build, which never returns here
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1); os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
            decode = cache_module.presized
            cache_module.presized = lambda fn, presize: (time.sleep(per_image), decode(fn, presize))[1]
            image_cache(files, root, 'train', 48, cache=cache, pool='serial')
        finally: os._exit(0)
    while not any(Path(cache).rglob('*images*')):
        assert os.waitpid(pid, os.WNOHANG) == (0, 0), 'the build ended before it wrote anything'
        time.sleep(0.002)
    wait = rng.uniform(0, 0.9 * per_image * len(files))
    time.sleep(wait)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, 'the build finished before it was killed'
    return wait

def test_a_build_killed_at_random_moments_is_rebuilt_the_same(tmp_path):
    "Three builds of 120 real images, each SIGKILLed at a random moment: the cache never looks complete, and the next build is byte for byte a clean one"
    files = image_files(IMAGENETTE, ['train'])[:120]
    reference = np.array(image_cache(files, IMAGENETTE, 'train', 48, cache=tmp_path/'reference', pool='serial').images)
    rng = random.Random()
    for k in range(3):
        cache = tmp_path/f'killed{k}'
        wait = _kill_mid_build(files, IMAGENETTE, cache, rng)
        folder = cache_dir(IMAGENETTE, cache)/f"train-48px-{cache_key(files, IMAGENETTE, 'train', 48)}"
        assert cache_problem(folder, cache_key(files, IMAGENETTE, 'train', 48)) is not None, f'killed after {wait:.2f} s, the cache looks complete'
        assert np.array_equal(np.asarray(image_cache(files, IMAGENETTE, 'train', 48, cache=cache).images), reference)

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
    ctx = mp.get_context('fork')
    q = ctx.Queue()
    p = ctx.Process(target=_in_daemon, args=(small_dataset, tmp_path/'daemon', q), daemon=True)
    p.start(); kind, arr = q.get(timeout=300); p.join(60)
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
