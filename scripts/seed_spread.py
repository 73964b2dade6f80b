"""How much of the degradation experiment's residual-net differences is seed noise: a reduced rerun over three seeds.

The figures notebook's degradation run (full Imagenette training set, 32 px, 3 epochs) is one seed. Rerunning it over
several seeds takes hours on two CPU cores, so this reruns its residual nets, with and without zero-initialised batchnorm,
at 20 and 56 layers, on a class-balanced tenth of the training set (128 images a class), same size, widths, batch size,
learning rate and epochs, once per seed. It writes `seeds.csv` (one row per seed, net, depth and epoch, as
`degradation_curves` returns them) and `seeds.json` (how it was made) to the output folder.

usage: OMP_NUM_THREADS=1 nice -n 15 python scripts/seed_spread.py [OUT] (default: nbs/results/cpu/figures)
"""
import json, sys, time
from datetime import date
from pathlib import Path
import torch
from fastai.vision.all import *
from resnet_course.machine import hardware, versions
from resnet_course.files import atomic_write
from resnet_course.data import dataset_items, dataset_path, balanced_sample, readable_label, CheckedImage
from resnet_course.figures import degradation_curves

SEEDS, PER_CLASS, VALID_PER_CLASS, SIZE, EPOCHS = (0, 1, 2), 128, 20, 32, 3

def reduced_dls(seed:int=42) -> DataLoaders:
    "The figures experiment's DataLoaders (32 px crops of images presized to 40) on 128 training and 20 validation images a class"
    train, valid = dataset_items(dataset_path(URLs.IMAGENETTE_160), sample=False)
    items = balanced_sample(train, PER_CLASS) + balanced_sample(valid, VALID_PER_CLASS)
    dblock = DataBlock(blocks=(ImageBlock(cls=CheckedImage), CategoryBlock), splitter=GrandparentSplitter(valid_name='val'),
                       get_y=readable_label, item_tfms=Resize(round(SIZE * 1.25)),
                       batch_tfms=[*aug_transforms(min_scale=0.5, size=SIZE), Normalize.from_stats(*imagenet_stats)])
    set_seed(seed, reproducible=True)
    return dblock.dataloaders(items, bs=128, num_workers=0)

if __name__ == '__main__':
    out = Path(sys.argv[1] if len(sys.argv) > 1 else 'nbs/results/cpu/figures'); out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    started, dls, runs = time.time(), reduced_dls(), []
    for seed in SEEDS:
        c = degradation_curves(dls, depths=(20, 56), epochs=EPOCHS, kinds=('residual', 'residual, zero-init'), seed=seed)
        runs.append(c.assign(seed=seed)); print(f'seed {seed} done after {(time.time() - started) / 60:.1f} min', flush=True)
        atomic_write(out/'seeds.csv', pd.concat(runs).to_csv(index=False))
    atomic_write(out/'seeds.json', json.dumps({
        'data': f'imagenette2-160, {len(dls.train_ds):,} training images ({PER_CLASS} a class), {len(dls.valid_ds):,} validation images',
        'size': SIZE, 'epochs': EPOCHS, 'bs': 128, 'lr': 3e-3, 'widths': '16-32-64', 'seeds': list(SEEDS),
        'hardware': hardware() + ', one thread', 'versions': versions(), 'date': date.today().isoformat(),
        'minutes': round((time.time() - started) / 60, 1), 'made_by': 'scripts/seed_spread.py'}, indent=1))
