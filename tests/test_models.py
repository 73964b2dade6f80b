"""The course's blocks start as the text says: the last batchnorm of every residual path zero-initialised (scale and shift),
so that a fresh block passes its input through; every other batchnorm as fastai starts it (scale 1, shift 1e-3)."""
import pytest, torch
from torch import nn
import resnet_course  # noqa: F401
from resnet_course.resblock import BasicConvs, ResBlock, resblock_fcn, resblock2_fcn
from resnet_course.resnet import resnet18, resnet34
from resnet_course.bottleneck import BottleneckConvs, resnet50

MODELS = {'resblock_fcn': resblock_fcn, 'resblock2_fcn': resblock2_fcn, 'resnet18': resnet18, 'resnet34': resnet34, 'resnet50': resnet50}

def residual_paths(model:nn.Module) -> list:
    return [m for m in model.modules() if isinstance(m, (BasicConvs, BottleneckConvs))]

def batchnorms(m:nn.Module) -> list: return [b for b in m.modules() if isinstance(b, nn.BatchNorm2d)]

@pytest.mark.parametrize('name', list(MODELS))
def test_the_last_batchnorm_of_every_residual_path_starts_at_zero(name):
    model = MODELS[name](10)
    paths = residual_paths(model)
    assert len(paths) == sum(isinstance(m, ResBlock) for m in model.modules()) > 0
    for p in paths:
        *others, last = batchnorms(p)
        assert torch.equal(last.weight, torch.zeros_like(last.weight)) and torch.equal(last.bias, torch.zeros_like(last.bias)), p
        for b in others: assert torch.equal(b.weight, torch.ones_like(b.weight)) and torch.allclose(b.bias, torch.full_like(b.bias, 1e-3))
    last_ones = {id(batchnorms(p)[-1]) for p in paths}   # every other batchnorm of the model (stem, shortcuts) starts as fastai's
    for b in batchnorms(model):
        if id(b) not in last_ones: assert torch.equal(b.weight, torch.ones_like(b.weight)), b

@pytest.mark.parametrize('convs', [BasicConvs, BottleneckConvs])
def test_a_fresh_block_passes_its_input_through(convs):
    "With the residual path's output at zero, a block with an identity shortcut is relu(x): the input, for non-negative x"
    torch.manual_seed(0)
    block = ResBlock(64, 64, convs=convs).eval()
    x = torch.randn(2, 64, 8, 8).relu()
    assert torch.equal(block(x), x)

def test_zero_init_off_is_fastais_batchnorm():
    last = batchnorms(BasicConvs(8, 8, zero_init=False))[-1]
    assert torch.equal(last.weight, torch.ones_like(last.weight))
