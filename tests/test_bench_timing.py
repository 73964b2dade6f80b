"""`bench`'s timings against a loader of known speed: `loader_speed` measures what the loader delivers in a steady state, and
`train_speed`, loading included, never reports more than that, whatever the number of worker processes.

The loader sleeps in its workers (or in the main process, without workers) so that all of them together deliver RATE images a
second, a round of batches at a time. A fastai `DataLoader`'s own `num_workers` is always 1; the workers it starts are `fake_l.num_workers`. Workers started
together deliver their batches a round at a time, and each prepares two batches before it is asked: a timing that starts too
early, or covers part of a round, measures that burst instead (with 16 workers, several times the real speed)."""
import time
import pytest, torch
from fastai.vision.all import DataLoader, DataLoaders, Learner, CrossEntropyLossFlat, nn
from resnet_course.bench import loader_speed, train_speed, prefetched

RATE, BS = 565, 16     # images per second the loader delivers, in all; images per batch

class SlowLoader(DataLoader):
    """A loader of known speed: each worker finishes a batch at each tick of a clock they share, every `BS * workers / RATE`
    seconds, so that all of them deliver RATE images/s, in rounds, as workers started together do"""
    def create_batch(self, b):
        period = BS * max(1, self.fake_l.num_workers) / RATE
        time.sleep(period - time.time() % period)
        return super().create_batch(b)

def slow_loader(workers:int, batches:int=80) -> SlowLoader:
    items = [(torch.zeros(3), i % 2) for i in range(batches * BS)]
    return SlowLoader(items, bs=BS, num_workers=workers, shuffle=True, drop_last=True)

WORKERS = [0, 2, 16]

@pytest.mark.parametrize('workers', WORKERS)
def test_loader_speed_is_the_loaders(workers):
    dl = slow_loader(workers)
    assert prefetched(dl) == (workers, 2 * workers) and dl.num_workers == 1   # fastai's own attribute says 1 whatever the workers
    speed = loader_speed(dl)                              # as `bench` calls it: 8 batches asked for
    assert 0.75 * RATE < speed < 1.15 * RATE, f'{workers} workers: {speed:.0f} images/s measured, the loader delivers {RATE}'

@pytest.mark.parametrize('workers', WORKERS)
def test_train_speed_stays_under_the_loaders(workers):
    "A model that takes no time trains at the speed of its loader: loading included, never faster"
    dls = DataLoaders(slow_loader(workers), slow_loader(0, batches=2), device='cpu')
    learn = Learner(dls, nn.Linear(3, 2), loss_func=CrossEntropyLossFlat())
    speed = train_speed(learn)                            # as `bench` calls it: 2 batches asked for
    assert 0.6 * RATE < speed < 1.15 * RATE, f'{workers} workers: trains at {speed:.0f} images/s, but its loader delivers {RATE}'

def test_a_loader_shorter_than_the_warm_up_is_timed_across_epochs():
    "Fewer batches than the warm-up and the timed rounds need: the loader is drawn again (new workers), which can only lower the rate"
    speed = loader_speed(slow_loader(2, batches=3), n_batches=4)
    assert 0 < speed < 1.15 * RATE, speed
