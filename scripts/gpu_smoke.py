"""One command through every GPU path of the course, on the sample and a tiny folder of real images: `make gpu-smoke`.

Each check prints `pass`, `FAIL` or `skip: needs CUDA`, with what it saw. On a machine without CUDA the same code runs on the
CPU and the checks that need CUDA are skipped. Exits 1 if any check fails. About 3 minutes on one GPU; `tests/test_gpu_smoke.py`
runs it on the CPU, and runs single checks with the code they check broken on purpose, to show that each of them fails then.

Every check looks at what the code did, not at a second copy of its rule: the precision chosen against torch's and the
kernel's own answers and against the learners' callbacks, the cache against the calls the loader made to it, a resume
against the record it wrote.

    python scripts/gpu_smoke.py [--device cuda|cpu] [--no-compile] [--keep DIR] [--only 'NAME;NAME']
"""
import argparse, io, json, os, shutil, subprocess, sys, tempfile, time, traceback
from contextlib import redirect_stdout, redirect_stderr
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault('MPLBACKEND', 'Agg')
RESULTS = []   # (name, status, detail), reset by main()
CHECKS = []    # (name, needs_cuda, function of the context), in the order they run

def check(name:str, needs_cuda:bool=False):
    "Register the decorated function, of the run's context, as the check `name`"
    def add(f): CHECKS.append((name, needs_cuda, f)); return f
    return add

def run_check(name:str, needs_cuda:bool, f, ctx):
    "Run one check: print pass (with what it returned), FAIL (with the error) or skip"
    if needs_cuda and not ctx.cuda:
        RESULTS.append((name, 'skip', 'needs CUDA')); print(f'skip: needs CUDA  {name}', flush=True); return
    t, log = time.time(), io.StringIO()
    try:
        with redirect_stdout(log), redirect_stderr(log): detail = f(ctx)     # what the check printed is shown only if it fails
        RESULTS.append((name, 'pass', detail)); print(f'pass  {name} ({time.time() - t:.1f} s): {detail}', flush=True)
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt) and not getattr(e, 'planned', False): raise
        RESULTS.append((name, 'FAIL', repr(e)))
        print(f'FAIL  {name} ({time.time() - t:.1f} s): {type(e).__name__}: {e}', flush=True)
        print(log.getvalue()[-3000:]); traceback.print_exc(limit=-3, file=sys.stdout)

def expect(cond, msg:str):
    if not cond: raise AssertionError(msg)

def tiny_folder(root:Path, n_classes:int=3, n_train:int=8, n_valid:int=4) -> Path:
    "An ImageNet-style folder of real Imagenette images: `n_classes` classes of `n_train` training and `n_valid` validation images"
    from resnet_course.data import dataset_path
    src = dataset_path('https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz')
    for split, n in (('train', n_train), ('val', n_valid)):
        for w in sorted(p.name for p in (src/'train').iterdir())[:n_classes]:
            (root/split/w).mkdir(parents=True, exist_ok=True)
            for f in sorted((src/split/w).glob('*.JPEG'))[:n]: shutil.copy(f, root/split/w)
    return root

class Context:
    "What the checks share: the device, the options, a work folder, and the tiny folder and fast loaders, made on first use"
    def __init__(self, a, work:Path, dev, cuda:bool): self.a, self.work, self.dev, self.cuda, self._folder, self._fast = a, work, dev, cuda, None, {}
    def folder(self) -> Path:
        if self._folder is None: self._folder = tiny_folder(self.work/'tiny')
        return self._folder
    def fast_dls(self, aug:str=None):
        "The fast path's loaders on the tiny folder, 72-px cache, 64-px crops, batches of 8, augmentation `aug` (default: the device's)"
        if aug not in self._fast:
            from resnet_course.settings import RunSettings, run_on
            from resnet_course.loaders import fast_data_for
            s = RunSettings(source=str(self.folder()), presize=72, size=64, bs=8, fast=True, aug=aug)
            self._fast[aug] = fast_data_for(run_on(s, self.dev), cache=self.work/'cache')
        return self._fast[aug]

def amp_mode(learn) -> str:
    "The format `learn` trains in, read from its callbacks: fastai's MixedPrecision mode, bf16 for the CPU's autocast, else fp32"
    for c in learn.cbs:
        if type(c).__name__ == 'MixedPrecision': return str(getattr(c.amp_mode, 'value', c.amp_mode)).lower().rsplit('.', 1)[-1]
        if type(c).__name__ == 'CPUAutocast': return 'bf16'
    return 'fp32'

# ------------------------------------------------------------------------------------------------------------------ checks
@check('imports')
def _(ctx):
    import resnet_course, fastai, torchvision
    from resnet_course import cli, chapter, bench, fast, reproduce, figures, exercises, scaling
    from resnet_course.machine import versions
    return versions()

@check('device, compute capability and precision')
def _(ctx):
    "`precision` against sources it does not use (torch's bf16 query on a GPU, the kernel's CPU flags), and against what the learners do"
    import torch
    from resnet_course.machine import pick_device, hardware, precision
    from resnet_course.learner import get_learner
    from resnet_course.speed import fast_learner
    from resnet_course.pooling import fcn
    dev, p = ctx.dev, precision(ctx.dev)
    expect(pick_device(ctx.a.device).type == ('cuda' if ctx.cuda else 'cpu'), f'pick_device chose {pick_device(ctx.a.device)}')
    if ctx.cuda:
        native = torch.cuda.is_bf16_supported(including_emulation=False)   # the driver's answer, not the course's rule
        expect(p == ('bf16' if native else 'fp16'), f'precision {p}, but torch says native bf16 is {native} on {hardware(dev)}')
    else:
        flags = next((l.split(':', 1)[1].split() for l in Path('/proc/cpuinfo').read_text().splitlines() if l.startswith('flags')), []) if Path('/proc/cpuinfo').exists() else None
        expect(p in ('bf16', 'fp32'), f'precision {p} on a CPU: a CPU trains in bf16 or fp32')
        if flags is not None and p == 'bf16': expect({'avx512_bf16', 'amx_bf16'} & set(flags), 'precision bf16, but the kernel lists neither avx512_bf16 nor amx_bf16')
        capped = any(os.environ.get(k) for k in ('ONEDNN_MAX_CPU_ISA', 'DNNL_MAX_CPU_ISA', 'ATEN_CPU_CAPABILITY'))
        if flags is not None and not capped and 'avx512_bf16' in flags: expect(p == 'bf16', f'the kernel lists avx512_bf16 but precision says {p}')
    dls = ctx.fast_dls()
    chapter, quick = amp_mode(get_learner(dls, fcn(dls.c), device=dev)), amp_mode(fast_learner(get_learner(dls, fcn(dls.c), device=dev)))
    expect(quick == p, f"the fast path's learner trains in {quick}, precision says {p}")
    expect(chapter == (p if ctx.cuda else 'fp32'), f"the chapter's learner trains in {chapter} on {dev}, precision says {p}")
    expect(('CUDA' in hardware(dev)) == ctx.cuda and 'CUDA' not in hardware('cpu'), f'hardware says {hardware(dev)!r} / {hardware("cpu")!r}')
    cap = torch.cuda.get_device_capability(dev) if ctx.cuda else None
    return f"{hardware(dev)}; compute capability {'.'.join(map(str, cap)) if cap else 'none'}; precision {p}; chapter learner {chapter}, fast learner {quick}"

@check('tiny folder of real images')
def _(ctx): return f"{sum(1 for _ in ctx.folder().rglob('*.JPEG'))} images in {ctx.folder()}"

@check('uint8 cache on the device (fast_data_for)')
def _(ctx):
    "The loader's batches are cut from the cache, by the cache's batch call, on the device (from the GPU's copy of it on CUDA)"
    import numpy as np, torch
    dls = ctx.fast_dls(); dl = dls.train; cache = dl.dataset.cache
    calls, batch = [], cache.batch
    def spy(idx, device=None):
        out = batch(idx, device); calls.append((len(idx), out.device, out.dtype)); return out
    cache.batch = spy
    try: x, y = dl.one_batch()
    finally: del cache.batch                                  # the method again
    expect(calls == [(dl.bs, x.device, torch.uint8)], f"the loader's calls to the cache: {calls} (one batch of {dl.bs} uint8 rows expected)")
    expect(x.device.type == y.device.type == ctx.dev.type, f'batch on {x.device}, labels on {y.device}, device {ctx.dev}')
    expect(x.dtype == torch.float32 and tuple(x.shape[1:]) == (3, 64, 64), f'batch {x.dtype} {tuple(x.shape)}')
    raw = dl.new(after_batch=[], shuffle=False).do_batch(list(range(dl.bs)))[0]
    expect(torch.equal(raw.cpu(), torch.from_numpy(np.array(cache.images[:dl.bs]))), "the loader's raw rows differ from the cache's")
    seen = f'{len(calls)} batch call of {calls[0][0]} rows, {calls[0][2]} on {calls[0][1]}'
    if ctx.cuda:
        res = cache._resident.get(str(dl.device))
        expect(res is not None and res.device.type == 'cuda' and res.dtype == torch.uint8, f'no uint8 copy of the cache on {dl.device}')
        seen += f'; resident copy {tuple(res.shape)} on {res.device}'
    return seen + f'; augmentation {dls.aug}'

@check('crop augmentation on the device')
def _(ctx):
    "The cheap augmentation cuts each image's crop, flipped or not, on the device, and the batch reaches the model normalised"
    import numpy as np, torch
    from fastai.vision.all import TensorImage, set_seed
    from resnet_course.loaders import RandomCropFlip
    dls = ctx.fast_dls('crop'); dl = dls.train
    rcf = next((t for t in dl.after_batch.fs if isinstance(t, RandomCropFlip)), None)
    expect(rcf is not None, f"no RandomCropFlip among the loader's batch transforms: {dl.after_batch.fs}")
    x = TensorImage(dl.dataset.cache.batch(np.arange(8), ctx.dev))
    rcf.__dict__.pop('last', None)
    set_seed(0); y = rcf(x, split_idx=0); p = getattr(rcf, 'last', None)
    expect(p is not None and y.device == x.device and y.dtype == torch.uint8, f'crop on {y.device} ({y.dtype}), drew {p}')
    side = p['side']
    expect(tuple(y.shape[-2:]) == (side, side), f'crop side {side}, output {tuple(y.shape)}')
    for k in range(8):
        crop = x[k, :, p['top'][k]:p['top'][k] + side, p['left'][k]:p['left'][k] + side]
        expect(torch.equal(y[k], crop.flip(-1) if p['flip'][k] else crop), f'image {k}: not its crop')
    xb = dl.one_batch()[0]
    expect(xb.device.type == ctx.dev.type and xb.dtype == torch.float32 and tuple(xb.shape[1:]) == (3, 64, 64), f'batch {xb.device} {xb.dtype} {tuple(xb.shape)}')
    d = dl.decode((xb,))[0]
    expect(0 <= float(d.min()) and float(d.max()) <= 1, f'decoded batch from {float(d.min())} to {float(d.max())}')
    return f'crops of {side} px cut on {y.device}, {sum(p["flip"])} of 8 flipped; batch {tuple(xb.shape)} {xb.dtype} on {xb.device}'

@check('chapter loader with worker processes')
def _(ctx):
    "Batches made by 2 worker processes, each of them: the same validation batches as without workers, on the device"
    import multiprocessing as mp, torch
    from resnet_course.settings import RunSettings, run_on
    from resnet_course.data import data_for
    run = run_on(RunSettings(source=str(ctx.folder()), presize=72, size=64, bs=4), ctx.dev)
    dl = data_for(run, num_workers=2).valid
    ref = data_for(run, num_workers=0).valid
    made = mp.get_context('fork').Value('i', 0)
    create = dl.create_batch
    def counted(b):
        if torch.utils.data.get_worker_info() is not None:
            with made.get_lock(): made.value += 1
        return create(b)
    dl.create_batch = counted
    got, want = list(dl), list(ref)
    expect(dl.fake_l.num_workers == 2 and made.value == len(want), f'{made.value} of {len(want)} batches made in worker processes')
    expect(len(got) == len(want), f'{len(got)} batches with workers, {len(want)} without')
    for (xg, yg), (xw, yw) in zip(got, want):
        expect(xg.device.type == ctx.dev.type, f'a batch on {xg.device}')
        expect(torch.equal(yg, yw) and torch.allclose(xg, xw, atol=1e-5), 'a batch from the workers differs from the one made without them')
    return f'{len(got)} validation batches from 2 worker processes, equal to those made without, on {xg.device}'

@check('lr_find, fit and TTA (chapter pipeline, sample)')
def _(ctx):
    import torch
    from resnet_course.data import get_data
    from resnet_course.learner import get_learner
    from resnet_course.pooling import fcn
    dev = ctx.dev
    dls = get_data(sample=True, presize=72, size=64, bs=16, device=dev)
    learn = get_learner(dls, fcn(dls.c), device=dev)
    with learn.no_bar(), learn.no_logging():
        lr = learn.lr_find(show_plot=False, num_it=20).valley
        learn.fit_one_cycle(1, 3e-3)
        preds, targs = learn.tta(n=2)
    expect(next(learn.model.parameters()).device.type == dev.type, 'model off the device')
    expect(torch.isfinite(preds).all() and len(preds) == len(dls.valid_ds), 'TTA predictions')
    mixed = amp_mode(learn)
    expect((mixed != 'fp32') == ctx.cuda, f'mixed precision {mixed} on {dev}')
    return f'lr_find valley {lr:.2e}; TTA accuracy {(preds.argmax(1) == targs).float().mean():.2f} on {len(preds)} images; trained in {mixed}'

@check('fp16 with loss scaling', needs_cuda=True)
def _(ctx):
    from resnet_course.learner import get_learner
    from resnet_course.pooling import fcn
    from fastai.callback.core import Callback
    class Scales(Callback):
        order = 11                       # after MixedPrecision's steps
        def before_fit(self): self.seen = []
        def after_batch(self):
            if self.training: self.seen.append((self.learn.scaler.get_scale(), self.learn.scaler.is_enabled()))
    dls = ctx.fast_dls()
    learn = get_learner(dls, fcn(dls.c), device=ctx.dev, fp16=True)
    cb = Scales()
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3, cbs=cb)
    expect(amp_mode(learn) == 'fp16', f'amp mode {amp_mode(learn)}')
    expect(cb.seen and all(on and sc > 0 for sc, on in cb.seen), f'loss scaling: {cb.seen}')
    expect(all(float(v) == float(v) for v in learn.recorder.values[-1]), f'metrics {learn.recorder.values[-1]}')
    return f'loss scale {cb.seen[-1][0]:g} after {len(cb.seen)} steps; valid loss {learn.recorder.values[-1][1]:.3f}'

@check('bf16 (the fast path)', needs_cuda=True)
def _(ctx):
    import torch
    from resnet_course.learner import get_learner
    from resnet_course.pooling import fcn
    from resnet_course.fast import fast_learner
    if not torch.cuda.is_bf16_supported(including_emulation=False): return 'this GPU has no native bf16: the fast path trains in fp16 here (see the precision check)'
    dls = ctx.fast_dls()
    learn = fast_learner(get_learner(dls, fcn(dls.c), device=ctx.dev), bf16=True)
    seen = []
    learn.model[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)
    expect(amp_mode(learn) == 'bf16' and seen and set(seen) == {torch.bfloat16}, f'amp mode {amp_mode(learn)}, first layer outputs {set(seen)}')
    return f'valid loss {learn.recorder.values[-1][1]:.3f}; first layer computed in {seen[0]}'

@check('torch.compile', needs_cuda=True)
def _(ctx):
    if ctx.a.no_compile: return 'not asked for (--no-compile)'
    from resnet_course.learner import get_learner
    from resnet_course.pooling import fcn
    from resnet_course.fast import fast_learner
    dls = ctx.fast_dls()
    learn = fast_learner(get_learner(dls, fcn(dls.c), device=ctx.dev), compile=True)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)
    return f'valid loss {learn.recorder.values[-1][1]:.3f}'

@check('interrupt, then resume on the device')
def _(ctx):
    "A run stopped after epoch 1 resumes from its progress file (its weights and optimiser state, on the device), and its record says so"
    import torch
    from fastai.callback.core import Callback
    from resnet_course.reproduce import reproduce, SaveProgress
    from resnet_course.records import _safe_load
    dev = ctx.dev
    class Interrupt(Callback):
        order = SaveProgress.order + 1      # after the epoch's progress is saved
        def after_epoch(self):
            e = KeyboardInterrupt('planned'); e.planned = True; raise e
    class OptOnDevice(Callback):
        def before_batch(self):
            off = [v.device for p, s in self.opt.state.items() for v in s.values() if torch.is_tensor(v) and v.device != p.device]
            if off: raise AssertionError(f'optimiser state on {off[0]}, parameters on {dev}')
    out, kw = ctx.work/'resume', dict(models='fcn', epochs=2, size=32, bs=8, source=str(ctx.folder()), device=dev)
    try: reproduce(out=out, cbs=[Interrupt()], **kw); raise AssertionError('the planned interrupt did not stop the run')
    except KeyboardInterrupt: pass
    progress = list(out.glob('runs/fcn-*/progress.pth'))
    expect(len(progress) == 1, 'no progress file after the interrupt')
    saved = _safe_load(progress[0])['history']
    reproduce(out=out, cbs=[OptOnDevice()], **kw)
    rec = json.loads(next(out.glob('runs/fcn-*/record.json')).read_text())
    aside = sorted(p.name for p in progress[0].parent.glob('progress.pth.*'))
    expect(not aside, f'the progress file was moved aside instead of resumed: {aside}')
    expect(rec.get('resumed_after_epoch') == 1, f"the record does not say the run resumed after epoch 1 (resumed_after_epoch={rec.get('resumed_after_epoch')}): it trained again from scratch")
    expect([h['epoch'] for h in rec['history']] == [1, 2] and rec['history'][0] == saved[0], f"history {rec['history']}, epoch 1 saved as {saved}")
    return f"resumed after epoch 1 (its row kept as saved); record of 2 epochs on {rec['row']['hardware']}"

def cli_check(ctx, argv:list, what):
    "Run `resnet-course ARGV --quick` in this process, through the command line's own entry function"
    from resnet_course.cli import main
    out = ctx.work/'cli'/argv[0]
    main([*argv, '--quick', '--out', str(out), '--device', str(ctx.dev)])
    return what(out)

@check('resnet-course reproduce --quick')
def _(ctx): return cli_check(ctx, ['reproduce', '--models', 'fcn', '--fast'], lambda o: f"{len(list(o.glob('runs/*/record.json')))} record(s), fast path")

@check('resnet-course speedrun --quick')
def _(ctx): return cli_check(ctx, ['speedrun'], lambda o: json.loads((o/'speedrun.json').read_text())[0]['result']['result'])

@check('resnet-course bench --quick')
def _(ctx): return cli_check(ctx, ['bench', '--models', 'fcn'], lambda o: (o/'bench.md').read_text().splitlines()[0][:120])

@check('resnet-course figures --quick')
def _(ctx): return cli_check(ctx, ['figures', '--epochs', '1', '--size', '16'], lambda o: sorted(p.name for p in o.glob('*.png')))

@check('torchrun, 2 gloo processes (sample)')
def _(ctx):
    "`python -m torch.distributed.run` with two processes on the CPU (one GPU cannot give each its own): one run, trained together, written once"
    out = ctx.work/'torchrun'
    env = {k: v for k, v in os.environ.items() if k not in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'IN_TEST', 'RESNET_COURSE_SAMPLE')}
    env['PYTHONPATH'] = os.pathsep.join(p for p in (env.get('PYTHONPATH'), str(ROOT)) if p)
    from resnet_course.scaling import course_command   # torchrun on a free port of its own (`--standalone`)
    cmd = course_command(['reproduce', '--quick', '--models', 'fcn', '--device', 'cpu', '--out', out], processes=2)
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    expect(r.returncode == 0, f'torchrun exited with {r.returncode}: {(r.stdout + r.stderr)[-1500:]}')
    recs = [json.loads(p.read_text()) for p in out.glob('runs/*/record.json')]
    expect(len(recs) == 1 and recs[0]['settings']['world_size'] == 2, f"records: {[r_['settings'].get('world_size') for r_ in recs]} (one, of world size 2, expected)")
    return f"one record, world size 2, top-1 {recs[0]['row']['top-1 %']}% on the sample"

@check('benchmark_conv1x1')
def _(ctx):
    import torch
    from resnet_course.machine import precision
    from resnet_course.exercises import benchmark_conv1x1
    dtype = {'bf16': torch.bfloat16, 'fp16': torch.float16}.get(precision(ctx.dev), torch.float32)
    df = benchmark_conv1x1(shapes=((8, 64, 16, 16, 64),), device=ctx.dev, dtype=dtype, reps=3)
    expect((df['einsum ms'] > 0).all() and (df['conv2d ms'] > 0).all(), str(df))
    return f"{dtype}: einsum {df['einsum ms'][0]:.3f} ms, conv2d {df['conv2d ms'][0]:.3f} ms"

@check("a notebook's device pattern (index.ipynb's first example, and model.to(dls.device))")
def _(ctx):
    import torch
    from resnet_course.data import get_data
    from resnet_course.resnet import resnet18
    cells = [''.join(c['source']) for c in json.loads((ROOT/'nbs'/'index.ipynb').read_text())['cells'] if c['cell_type'] == 'code']
    example = [c for c in cells if 'from resnet_course.resnet import resnet18' in c or 'untrained guess' in c]
    expect(len(example) == 2, 'the first example of index.ipynb was not found')
    exec('\n'.join(example), {})
    dls = get_data(sample=True, presize=72, size=64, bs=8, device=ctx.dev)
    model = resnet18(dls.c).to(dls.device)
    xb, _ = dls.one_batch()
    with torch.no_grad(): out = model.eval()(xb)
    expect(out.device.type == ctx.dev.type == xb.device.type, f'batch on {xb.device}, output on {out.device}')
    return f'index example ran; batches and model on {dls.device}'

# ------------------------------------------------------------------------------------------------------------------ main
def main(argv:list=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', default=None, help="'cuda' or 'cpu' (default: CUDA if present)")
    p.add_argument('--no-compile', action='store_true', help='skip the torch.compile check')
    p.add_argument('--keep', default=None, help='a folder to keep the runs in (default: a temporary one)')
    p.add_argument('--only', default=None, help='run only the checks whose names start with these, separated by semicolons (the tests use it)')
    p.add_argument('--skip', default=None, help='leave out the checks whose names start with these, separated by semicolons (the tests use it)')
    a = p.parse_args(argv)
    names = [n for n, _, _ in CHECKS]
    only = [o.strip() for o in a.only.split(';')] if a.only else None
    skip = [o.strip() for o in a.skip.split(';')] if a.skip else []
    for opt, given in (('--only', only or []), ('--skip', skip)):
        if unknown := [o for o in given if not any(n.startswith(o) for n in names)]:
            p.error(f"{opt} {';'.join(unknown)}: no check starts so; the checks are: {'; '.join(names)}")
    work = Path(a.keep or tempfile.mkdtemp(prefix='gpu-smoke-')); work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    import torch
    from resnet_course.machine import pick_device
    cuda = torch.cuda.is_available() and (a.device is None or a.device.startswith('cuda'))
    ctx = Context(a, work, pick_device(a.device) if cuda or a.device else torch.device('cpu'), cuda)
    RESULTS.clear()
    for name, needs_cuda, f in CHECKS:
        if (only is None or any(name.startswith(o) for o in only)) and not any(name.startswith(o) for o in skip): run_check(name, needs_cuda, f, ctx)
    fails = [r for r in RESULTS if r[1] == 'FAIL']
    print(f"\n{sum(r[1] == 'pass' for r in RESULTS)} passed, {len(fails)} failed, {sum(r[1] == 'skip' for r in RESULTS)} skipped "
          f"(needs CUDA) in {time.time() - t0:.0f} s on {ctx.dev}" + (f": FAILED {', '.join(r[0] for r in fails)}" if fails else ''))
    if not a.keep: shutil.rmtree(work, ignore_errors=True)
    return 1 if fails else 0

if __name__ == '__main__': sys.exit(main())
