"""The fast loaders (nbs/58_loaders.ipynb) on real images: every cached image comes with its own label, in the order the
sampler asked for, and the vectorised crop cuts exactly the squares it reports."""
import numpy as np, pytest, torch
import resnet_course  # noqa: F401
from fastai.vision.all import Pipeline, TensorImage, set_seed
from resnet_course.settings import RunSettings, resolve
from resnet_course.data import image_files, readable_label
from resnet_course.cache import presized
from resnet_course.loaders import RandomCropFlip, fast_data_for

@pytest.fixture
def fast(small_dataset, tmp_path):
    "The fast path's loaders on a 3-class folder of real images, 32 px, batches of 8"
    s = RunSettings(source=str(small_dataset), presize=32, size=32, bs=8, fast=True)
    return fast_data_for(resolve(s, 'cpu'), cache=tmp_path/'cache', pool='serial')

def raw(dl): return dl.new(after_batch=Pipeline([]))     # uint8 batches as cut from the cache, before augmentation

def test_every_cached_image_comes_with_its_own_label(fast):
    "Shuffled training batches and validation batches: each image is its file's presized image, and each label that file's class"
    by_bytes = {presized(f, 32).tobytes(): readable_label(f) for f in fast.train_ds.items + fast.valid_ds.items}
    seen = 0
    for dl in (raw(fast.train), raw(fast.valid)):
        set_seed(3)
        for xb, yb in dl:
            for x, y in zip(xb, yb):
                assert by_bytes[x.numpy().tobytes()] == fast.vocab[y]; seen += 1
    assert seen == len(fast.valid_ds) + len(fast.train) * 8

@pytest.mark.parametrize('idx', [[7, 2, 23, 2, 0], [23, 22, 21], [5]])
def test_a_batch_keeps_the_order_it_was_asked_for(fast, idx):
    "Rows come back in the sampler's order, repeats included (fastai's distributed loader pads a shard with repeats)"
    xb, yb = raw(fast.train).do_batch(idx)
    items = [fast.train_ds.items[i] for i in idx]
    assert torch.equal(xb, TensorImage(torch.from_numpy(np.stack([presized(f, 32) for f in items]))))
    assert yb.tolist() == [fast.vocab.o2i[readable_label(f)] for f in items]

def test_the_vectorised_crop_cuts_what_it_reports():
    "Each image's square, at its own place, flipped where it says: the same as cutting them one by one"
    x = TensorImage(torch.randint(0, 256, (32, 3, 40, 56), dtype=torch.uint8))
    for seed in range(5):
        set_seed(seed)
        rcf = RandomCropFlip(0.3)
        y, p = rcf(x, split_idx=0), rcf.last
        s = p['side']
        assert y.shape == (32, 3, s, s) and y.dtype == torch.uint8
        for k in range(32):
            crop = x[k, :, p['top'][k]:p['top'][k] + s, p['left'][k]:p['left'][k] + s]
            assert torch.equal(y[k], crop.flip(-1) if p['flip'][k] else crop)
        assert 0 < sum(p['flip']) < 32 and len(set(p['left'])) > 1      # the images are wider than any square: each gets its own place

def test_a_copy_of_the_dataset_reads_its_own_files(fast):
    "fastai's test_dl (which ClassificationInterpretation uses for the top losses) copies the dataset: its batches hold its own files, not the cache's first rows"
    items = list(fast.valid_ds.items[::-1][:5])
    xb, yb = raw(fast.test_dl(items, with_labels=True)).one_batch()
    assert torch.equal(xb.cpu(), TensorImage(torch.from_numpy(np.stack([presized(f, 32) for f in items]))))
    assert yb.tolist() == [fast.vocab.o2i[readable_label(f)] for f in items]
