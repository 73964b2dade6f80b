"""One command through every GPU path of the course, on the sample and a tiny folder of real images: `make gpu-smoke`.

Each check prints `pass`, `FAIL` or `skip: needs CUDA`, with what it saw. On a machine without CUDA the same code runs on the
CPU and the checks that need CUDA are skipped. Exits 1 if any check fails. About 3 minutes on one GPU; `tests/test_gpu_smoke.py`
runs it on the CPU.

    python scripts/gpu_smoke.py [--device cuda|cpu] [--no-compile] [--keep DIR]
"""
import argparse, io, json, os, shutil, sys, tempfile, time, traceback
from contextlib import redirect_stdout, redirect_stderr
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault('MPLBACKEND', 'Agg')
RESULTS = []   # (name, status, detail)
CUDA = False   # set by main()

def check(name:str, needs_cuda:bool=False):
    "Run the decorated function as the check `name`, now; print pass (with what it returned), FAIL (with the error) or skip"
    def run(f):
        if needs_cuda and not CUDA:
            RESULTS.append((name, 'skip', 'needs CUDA')); print(f'skip: needs CUDA  {name}', flush=True); return f
        t, log = time.time(), io.StringIO()
        try:
            with redirect_stdout(log), redirect_stderr(log): detail = f()     # what the check printed is shown only if it fails
            RESULTS.append((name, 'pass', detail)); print(f'pass  {name} ({time.time() - t:.1f} s): {detail}', flush=True)
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt) and not getattr(e, 'planned', False): raise
            RESULTS.append((name, 'FAIL', repr(e)))
            print(f'FAIL  {name} ({time.time() - t:.1f} s): {type(e).__name__}: {e}', flush=True)
            print(log.getvalue()[-3000:]); traceback.print_exc(limit=-3, file=sys.stdout)
        return f
    return run

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

def main():
    global CUDA
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', default=None, help="'cuda' or 'cpu' (default: CUDA if present)")
    p.add_argument('--no-compile', action='store_true', help='skip the torch.compile check')
    p.add_argument('--keep', default=None, help='a folder to keep the runs in (default: a temporary one)')
    a = p.parse_args()
    work = Path(a.keep or tempfile.mkdtemp(prefix='gpu-smoke-')); work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    import torch
    CUDA = torch.cuda.is_available() and (a.device is None or a.device.startswith('cuda'))
    st = {}

    @check('imports')
    def _():
        import resnet_course, fastai, torchvision
        from resnet_course import cli, fast, reproduce, figures, exercises, scaling
        from resnet_course.machine import versions
        return versions()

    @check('device, compute capability and precision')
    def _():
        from resnet_course.machine import pick_device, hardware, precision
        st['dev'] = dev = pick_device(a.device)
        expect(dev.type == ('cuda' if CUDA else 'cpu'), f'pick_device chose {dev}')
        cap = torch.cuda.get_device_capability(dev) if CUDA else None
        want = 'fp32' if not CUDA else 'bf16' if cap >= (8, 0) else 'fp16'
        expect(precision(dev) == want, f'precision {precision(dev)}, expected {want} for capability {cap}')
        expect(('CUDA' in hardware(dev)) == CUDA and 'CUDA' not in hardware('cpu'), f'hardware says {hardware(dev)!r} / {hardware("cpu")!r}')
        return f"{hardware(dev)}; compute capability {'.'.join(map(str, cap)) if cap else 'none'}; precision {precision(dev)}"
    dev = st.get('dev', torch.device('cuda' if CUDA else 'cpu'))

    @check('tiny folder of real images')
    def _():
        st['folder'] = tiny_folder(work/'tiny')
        return f"{sum(1 for _ in st['folder'].rglob('*.JPEG'))} images in {st['folder']}"

    @check('uint8 cache on the device (fast_data_for)')
    def _():
        from resnet_course.settings import RunSettings
        from resnet_course.fast import fast_data_for
        dls = fast_data_for(RunSettings(source=str(st['folder']), presize=72, size=64, bs=8, fast=True, aug=None), dev, cache=work/'cache')
        dl = dls.train
        raw = dl.dataset.cache.batch(list(range(4)), dl.device)
        x, y = dl.one_batch()
        seen = {'cache rows': (raw.device, raw.dtype), 'images': (x.device, x.dtype), 'labels': (y.device, y.dtype)}
        if CUDA:
            res = dl.dataset.cache._resident.get(str(dl.device))
            expect(res is not None and res.device.type == 'cuda' and res.dtype == torch.uint8, f'no uint8 copy of the cache on {dl.device}')
            seen['resident copy'] = (res.device, res.dtype)
        expect(all(d.type == dev.type for d, _ in seen.values()), f'pieces off the device: {seen}')
        expect(raw.dtype == torch.uint8 and x.dtype == torch.float32 and tuple(x.shape[1:]) == (3, 64, 64), f'dtypes/shapes: {seen}, {tuple(x.shape)}')
        st['fast_dls'] = dls
        return ', '.join(f'{k} {d} {t}' for k, (d, t) in seen.items()) + f'; augmentation {dls.aug}'

    @check('lr_find, fit and TTA (chapter pipeline, sample)')
    def _():
        from resnet_course.data import get_data
        from resnet_course.learner import get_learner
        from resnet_course.pooling import fcn
        dls = get_data(sample=True, presize=72, size=64, bs=16, device=dev)
        learn = get_learner(dls, fcn(dls.c), device=dev)
        with learn.no_bar(), learn.no_logging():
            lr = learn.lr_find(show_plot=False, num_it=20).valley
            learn.fit_one_cycle(1, 3e-3)
            preds, targs = learn.tta(n=2)
        expect(next(learn.model.parameters()).device.type == dev.type, 'model off the device')
        expect(torch.isfinite(preds).all() and len(preds) == len(dls.valid_ds), 'TTA predictions')
        fp16 = any(type(c).__name__ == 'MixedPrecision' for c in learn.cbs)
        expect(fp16 == CUDA, f'mixed precision {fp16} on {dev}')
        return f'lr_find valley {lr:.2e}; TTA accuracy {(preds.argmax(1) == targs).float().mean():.2f} on {len(preds)} images; mixed precision {fp16}'

    @check('fp16 with loss scaling', needs_cuda=True)
    def _():
        from resnet_course.learner import get_learner
        from resnet_course.pooling import fcn
        from fastai.callback.core import Callback
        class Scales(Callback):
            order = 11                       # after MixedPrecision's steps
            def before_fit(self): self.seen = []
            def after_batch(self):
                if self.training: self.seen.append((self.learn.scaler.get_scale(), self.learn.scaler.is_enabled()))
        learn = get_learner(st['fast_dls'], fcn(st['fast_dls'].c), device=dev, fp16=True)
        cb = Scales()
        with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3, cbs=cb)
        mp = next(c for c in learn.cbs if type(c).__name__ == 'MixedPrecision')
        expect(str(mp.amp_mode).lower().endswith('fp16'), f'amp mode {mp.amp_mode}')
        expect(cb.seen and all(on and sc > 0 for sc, on in cb.seen), f'loss scaling: {cb.seen}')
        expect(all(float(v) == float(v) for v in learn.recorder.values[-1]), f'metrics {learn.recorder.values[-1]}')
        return f'loss scale {cb.seen[-1][0]:g} after {len(cb.seen)} steps; valid loss {learn.recorder.values[-1][1]:.3f}'

    @check('bf16 (the fast path)', needs_cuda=True)
    def _():
        from resnet_course.machine import precision
        from resnet_course.learner import get_learner
        from resnet_course.pooling import fcn
        from resnet_course.fast import fast_learner
        learn = fast_learner(get_learner(st['fast_dls'], fcn(st['fast_dls'].c), device=dev), bf16=True)
        with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)
        mp = [c for c in learn.cbs if type(c).__name__ == 'MixedPrecision']
        expect(len(mp) == 1 and str(mp[0].amp_mode).lower().endswith('bf16'), f'callbacks {[type(c).__name__ for c in learn.cbs]}')
        default = fast_learner(get_learner(st['fast_dls'], fcn(st['fast_dls'].c), device=dev))
        mode = next((str(c.amp_mode).lower().rsplit('.', 1)[-1] for c in default.cbs if type(c).__name__ == 'MixedPrecision'), None)
        expect(mode == precision(dev), f"fast_learner's default precision is {mode}; `precision` says {precision(dev)} (its call must switch to `precision`)")
        return f'valid loss {learn.recorder.values[-1][1]:.3f}; fast_learner default on this GPU: {mode}'

    @check('torch.compile', needs_cuda=True)
    def _():
        if a.no_compile: return 'not asked for (--no-compile)'
        from resnet_course.learner import get_learner
        from resnet_course.pooling import fcn
        from resnet_course.fast import fast_learner
        learn = fast_learner(get_learner(st['fast_dls'], fcn(st['fast_dls'].c), device=dev), compile=True)
        with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)
        return f'valid loss {learn.recorder.values[-1][1]:.3f}'

    @check('interrupt, then resume on the device')
    def _():
        from fastai.callback.core import Callback
        from resnet_course.reproduce import reproduce, SaveProgress
        class Interrupt(Callback):
            order = SaveProgress.order + 1      # after the epoch's progress is saved
            def after_epoch(self):
                e = KeyboardInterrupt('planned'); e.planned = True; raise e
        class OptOnDevice(Callback):
            def before_batch(self):
                off = [v.device for p, s in self.opt.state.items() for v in s.values() if torch.is_tensor(v) and v.device != p.device]
                if off: raise AssertionError(f'optimiser state on {off[0]}, parameters on {dev}')
        out, kw = work/'resume', dict(models='fcn', epochs=2, size=32, bs=8, source=str(st['folder']), device=dev)
        try: reproduce(out=out, cbs=[Interrupt()], **kw); raise AssertionError('the planned interrupt did not stop the run')
        except KeyboardInterrupt: pass
        expect(len(list(out.glob('runs/fcn-*/progress.pth'))) == 1, 'no progress file after the interrupt')
        reproduce(out=out, cbs=[OptOnDevice()], **kw)
        rec = json.loads(next(out.glob('runs/fcn-*/record.json')).read_text())
        expect([h['epoch'] for h in rec['history']] == [1, 2], f"history {rec['history']}")
        return f"resumed after epoch 1; record of 2 epochs on {rec['row']['hardware']}"

    def cli_check(argv:list, what):
        "Run `resnet-course ARGV --quick` in this process, through the command line's own entry function"
        from resnet_course.cli import main
        out = work/'cli'/argv[0]
        main([*argv, '--quick', '--out', str(out), '--device', str(dev)])
        return what(out)

    @check('resnet-course reproduce --quick')
    def _(): return cli_check(['reproduce', '--models', 'fcn', '--fast'], lambda o: f"{len(list(o.glob('runs/*/record.json')))} record(s), fast path")

    @check('resnet-course speedrun --quick')
    def _(): return cli_check(['speedrun'], lambda o: json.loads((o/'speedrun.json').read_text())[0]['result']['result'])

    @check('resnet-course bench --quick')
    def _(): return cli_check(['bench', '--models', 'fcn'], lambda o: (o/'bench.md').read_text().splitlines()[0][:120])

    @check('resnet-course figures --quick')
    def _(): return cli_check(['figures', '--epochs', '1', '--size', '16'], lambda o: sorted(p.name for p in o.glob('*.png')))

    @check('benchmark_conv1x1')
    def _():
        from resnet_course.machine import precision
        from resnet_course.exercises import benchmark_conv1x1
        dtype = {'bf16': torch.bfloat16, 'fp16': torch.float16}.get(precision(dev), torch.float32)
        df = benchmark_conv1x1(shapes=((8, 64, 16, 16, 64),), device=dev, dtype=dtype, reps=3)
        expect((df['einsum ms'] > 0).all() and (df['conv2d ms'] > 0).all(), str(df))
        return f"{dtype}: einsum {df['einsum ms'][0]:.3f} ms, conv2d {df['conv2d ms'][0]:.3f} ms"

    @check("a notebook's device pattern (index.ipynb's first example, and model.to(dls.device))")
    def _():
        from resnet_course.data import get_data
        from resnet_course.resnet import resnet18
        cells = [''.join(c['source']) for c in json.loads((ROOT/'nbs'/'index.ipynb').read_text())['cells'] if c['cell_type'] == 'code']
        example = [c for c in cells if 'from resnet_course.resnet import resnet18' in c or 'untrained guess' in c]
        expect(len(example) == 2, 'the first example of index.ipynb was not found')
        exec('\n'.join(example), {})
        dls = get_data(sample=True, presize=72, size=64, bs=8, device=dev)
        model = resnet18(dls.c).to(dls.device)
        xb, _ = dls.one_batch()
        with torch.no_grad(): out = model.eval()(xb)
        expect(out.device.type == dev.type == xb.device.type, f'batch on {xb.device}, output on {out.device}')
        return f'index example ran; batches and model on {dls.device}'

    fails = [r for r in RESULTS if r[1] == 'FAIL']
    print(f"\n{sum(r[1] == 'pass' for r in RESULTS)} passed, {len(fails)} failed, {sum(r[1] == 'skip' for r in RESULTS)} skipped "
          f"(needs CUDA) in {time.time() - t0:.0f} s on {dev}" + (f": FAILED {', '.join(r[0] for r in fails)}" if fails else ''))
    if not a.keep: shutil.rmtree(work, ignore_errors=True)
    return 1 if fails else 0

if __name__ == '__main__': sys.exit(main())
