"The fast data path's cache builds in parallel where it can: worker processes in an ordinary process, threads in a daemon one."
import multiprocessing as mp
import numpy as np
import resnet_course  # noqa: F401  (first: it quiets a torch warning that importing fastai triggers)
from resnet_course.data import image_files
from resnet_course.fast import image_cache, pool_kind

def _build(root, cache, pool=None):
    return np.array(image_cache(image_files(root, ['train']), root, 'train', 32, cache=cache, pool=pool, workers=2).images)

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
    import os, threading, time
    time.sleep(0.05)
    return os.getpid(), threading.get_ident()

def test_pools_really_use_several_workers():
    "A build's pool spreads its items over its workers: processes for 'process', threads for 'thread', one for 'serial'"
    from resnet_course.fast import decoder_pool
    seen = {}
    for kind in ('process', 'thread', 'serial'):
        with decoder_pool(kind, 2) as ex: seen[kind] = set(ex.map(_worker_id, range(16), chunksize=1))
    assert len({pid for pid, _ in seen['process']}) == 2, seen['process']
    assert len({pid for pid, _ in seen['thread']}) == 1 and len({t for _, t in seen['thread']}) == 2, seen['thread']
    assert len(seen['serial']) == 1
