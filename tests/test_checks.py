"""The checkers of the learners' attempts, imported from the package in a plain process: functions defined here see this
module's globals, not a notebook's, as a learner's functions see theirs. Each checker passes the course's answer, fails
common mistakes with the message a learner reads, and calls an unfilled stub "not attempted"."""
import json, re
import pytest
from fastai.vision.all import nn, F, torch, ConvLayer, LabelSmoothingCrossEntropy, top_k_accuracy   # not *: it brings fastcore's test_ functions, which pytest would collect
from conftest import ROOT
from resnet_course.checks import *
from resnet_course.verdicts import _does_nothing
from resnet_course.exercises import conv1x1_einsum, top_k_accuracy_torch, mnist_pooled_net, mnist_flat_net
from resnet_course.pooling import fcn
from resnet_course.resblock import ResBlock, shortcut, final_conv
from resnet_course.bottleneck import BottleneckConvs

def says(verdict, status, *parts):
    "The verdict's status, and each of `parts` in its message"
    assert verdict.status == status, verdict
    for p in parts: assert p in verdict.message, (p, verdict.message)
    assert '\n' not in str(verdict)

def test_a_stub_is_not_attempted_whatever_its_body_says():
    def stub(x, w): ...
    def with_doc(x, w):
        "doc"
        pass   # a comment
    def forgot_return(x, w): y = x
    assert [_does_nothing(f) for f in (stub, with_doc, ..., forgot_return, len)] == [True, True, True, False, False]
    for check in (check_conv1x1, check_top_k, check_mnist_fcn, check_label_smoothing, check_shortcut, check_stem_params, check_bottleneck):
        says(check(stub), 'not attempted', 'fill in `stub` above')
        assert not check(stub)
    says(check_conv1x1(forgot_return), 'wrong', 'it returned None: does the function end with `return`?')

def test_conv1x1():
    says(check_conv1x1(conv1x1_einsum), 'right', 'the same as F.conv2d on all 9 cases')
    says(check_conv1x1(lambda x, w: torch.einsum('bihw,io->bohw', x, w[:, :, 0, 0])), 'wrong', 'the weights are transposed')
    says(check_conv1x1(lambda x, w: torch.einsum('bihw,oi->bhwo', x, w[:, :, 0, 0])), 'wrong',
         'shape (2, 5, 5, 4), expected (2, 4, 5, 5): the same sizes, with the axes in another order')
    says(check_conv1x1(lambda x, w: (x.permute(0, 2, 3, 1).view(-1, x.shape[1]) @ w[:, :, 0, 0].T).view(x.shape[0], *x.shape[2:], -1).permute(0, 3, 1, 2)),
         'wrong', 'it raised RuntimeError: view size is not compatible', 'use reshape')
    says(check_conv1x1(lambda x, w: F.conv2d(x, w) * 1.01), 'wrong', 'x of shape (2, 4, 5, 5), weight (4, 4, 1, 1): largest error')

def test_top_k():
    says(check_top_k(top_k_accuracy_torch), 'right')
    hits = lambda p, t, k: (p.topk(k).indices == t[:, None]).any(1).float()
    says(check_top_k(lambda p, t, k: hits(p, t, k).sum()), 'wrong', 'counts the hits instead of averaging them')
    says(check_top_k(lambda p, t, k: 100 * hits(p, t, k).mean()), 'wrong', 'a percentage; return a fraction between 0 and 1')
    says(check_top_k(lambda p, t, k: (p.argsort(1)[:, :k] == t[:, None]).any(1).float().mean()), 'wrong', 'the k lowest scores')
    says(check_top_k(lambda p, t, k: hits(p, t, k - 1).mean() if k > 1 else hits(p, t, k).mean()), 'wrong', 'That is the top-4 accuracy: keep k classes')
    says(check_top_k(lambda p, t, k: hits(p, t, min(k, p.shape[1])).mean()), 'wrong', 'k=5 (more than the classes): it returned', 'raise a ValueError')
    says(check_top_k(top_k_accuracy), 'wrong', 'it raised RuntimeError: selected index k out of range. Check k first')   # fastai's

def test_mnist_fcn_shapes_and_parameters():
    says(check_mnist_fcn(mnist_pooled_net, train=False), 'right', '24,058 parameters (not trained: train=False)')
    says(check_mnist_fcn(mnist_flat_net, train=False), 'wrong', 'digit(s) of 36x36', 'pool the grid to 1x1 before flattening')
    biased = lambda n_out=10: fcn(n_out, block=lambda ni, nf: ConvLayer(ni, nf, stride=2, bias=True), widths=(1, 16, 32, 64))
    says(check_mnist_fcn(biased, train=False), 'wrong', 'parameters: 24,170', 'Its convs have biases')
    says(check_mnist_fcn(lambda n_out=10: 'a net'), 'wrong', 'it returned str, not a module')
    says(check_mnist_fcn(lambda n_out=10: fcn(10, widths=(1, 16, 32, 64)), train=False), 'wrong', 'the net for 3 classes', 'expected (2, 3)')

def test_mnist_fcn_training():
    "A few seconds of training on the sample: the course's net beats MNIST_ACCURACY, a net that pools first does not"
    says(check_mnist_fcn(mnist_pooled_net), 'right', f'accuracy on the MNIST sample after {MNIST_TRAINING["epochs"]} epochs')
    pools_first = lambda n_out=10: nn.Sequential(nn.AdaptiveAvgPool2d(1), *mnist_pooled_net(n_out))
    says(check_mnist_fcn(pools_first), 'wrong', 'training: ', f'not more than the {MNIST_ACCURACY:.0%} asked')

def test_label_smoothing():
    def written_out(logits, targets, eps=0.1):
        logp = F.log_softmax(logits, 1)
        return (1 - eps) * F.nll_loss(logp, targets) - eps * logp.mean(1).mean()
    says(check_label_smoothing(written_out), 'right', 'gradient included')
    says(check_label_smoothing(lambda o, t, eps: F.cross_entropy(o, t)), 'wrong', 'plain cross-entropy')
    says(check_label_smoothing(lambda o, t, eps: written_out(o, t, eps).item()), 'wrong', 'carries no gradient')
    says(check_label_smoothing(lambda o, t, eps: written_out(o, t, eps) * len(t)), 'wrong', 'It sums over the batch: take the mean')
    def softmax_then_log(o, t, eps=0.1):
        logp = o.softmax(1).log()
        return (1 - eps) * F.nll_loss(logp, t) - eps * logp.mean(1).mean()
    says(check_label_smoothing(softmax_then_log), 'wrong', 'logits as large as 100', 'take log_softmax')
    says(check_label_smoothing(lambda o, t, eps: LabelSmoothingCrossEntropy(eps=eps, reduction='none')(o, t)), 'wrong', 'one loss per row')

def test_shortcut():
    says(check_shortcut(shortcut), 'right')
    says(check_shortcut(lambda ni, nf, stride: nn.Identity() if (ni, stride) == (nf, 1) else shortcut(ni, nf, stride)), 'right')
    pool = lambda stride, **kw: [nn.AvgPool2d(2, **kw)] if stride > 1 else []
    says(check_shortcut(lambda ni, nf, stride: nn.Sequential(*pool(stride), *([ConvLayer(ni, nf, 1, act_cls=None)] if ni != nf else []))), 'wrong',
         'on a (3, 8, 7, 7) input: shape (3, 8, 3, 3), expected (3, 8, 4, 4)', 'ceil_mode=True')
    says(check_shortcut(lambda ni, nf, stride: ConvLayer(ni, nf, 1, stride=stride, act_cls=None)), 'wrong', 'the shortcut needs no weights')
    says(check_shortcut(lambda ni, nf, stride: nn.Sequential(*pool(stride, ceil_mode=True), *([nn.Conv2d(ni, nf, 1, bias=False)] if ni != nf else []))), 'wrong',
         'it lacks a BatchNorm2d weight of shape (16,)')
    says(check_shortcut(lambda ni, nf, stride: nn.Sequential(*pool(stride, ceil_mode=True), *([ConvLayer(ni, nf, 1)] if ni != nf else []))), 'wrong',
         'largest error', 'no activation')
    says(check_shortcut(lambda ni, nf, stride: 3), 'wrong', 'it returned an int, which cannot be called on a batch')

def test_stem_params():
    pairs = lambda s: zip(s[:-1], s[1:])
    says(check_stem_params(lambda *s: sum(9 * a * b + 2 * b for a, b in pairs(s))), 'right')
    says(check_stem_params(lambda *s: sum(9 * a * b for a, b in pairs(s))), 'wrong', '28,512, the stem has 28,768', 'leaves out the batchnorms')
    says(check_stem_params(lambda *s: sum(9 * a * b + 3 * b for a, b in pairs(s))), 'wrong', 'counts a bias per channel')
    says(check_stem_params(lambda *s: sum(9 * a * b + 4 * b for a, b in pairs(s))), 'wrong', 'running mean and variance')
    says(check_stem_params(lambda *s: sum(a * b + 2 * b for a, b in pairs(s))), 'wrong', 'a 3x3 kernel has 9')
    says(check_stem_params(lambda *s: 'many'), 'wrong', "it returned 'many'")

def test_bottleneck():
    says(check_bottleneck(lambda ni, nf, stride: ResBlock(ni, nf, stride, convs=BottleneckConvs)), 'right')
    class NoReLU(ResBlock):
        def forward(self, x): return self.convs(x) + self.shortcut(x)
    says(check_bottleneck(lambda ni, nf, stride: NoReLU(ni, nf, stride, convs=BottleneckConvs)), 'wrong', 'the block ends with a ReLU')
    class StrideFirst(nn.Sequential):
        def __init__(self, ni, nf, stride=1): super().__init__(ConvLayer(ni, nf // 4, 1, stride=stride), ConvLayer(nf // 4, nf // 4), final_conv(nf // 4, nf, 1))
    says(check_bottleneck(lambda ni, nf, stride: ResBlock(ni, nf, stride, convs=StrideFirst)), 'wrong', 'stride=2', 'The stride-1 cases are right')
    says(check_bottleneck(lambda ni, nf, stride: ResBlock(ni, nf, stride)), 'wrong', "where the course's holds a Conv2d weight of shape (4, 16, 1, 1)", 'nf // 4 = 4')
    class Swapped(nn.Sequential):    # the last 1x1 conv's weight built the wrong way round: (mid, nf) for (nf, mid)
        def __init__(self, ni, nf, stride=1):
            super().__init__(ConvLayer(ni, nf // 4, 1), ConvLayer(nf // 4, nf // 4, stride=stride), final_conv(nf // 4, nf, 1))
            self[2][0].weight = nn.Parameter(torch.zeros(nf // 4, nf, 1, 1))
    says(check_bottleneck(lambda ni, nf, stride: ResBlock(ni, nf, stride, convs=Swapped)), 'wrong', 'input and output channels swapped')

def test_questions():
    says(check_answer('stride-2 block', ...), 'not attempted', 'ResBlock(8, 16, stride=2)')
    says(check_answer('stride-2 block', (2, 16, 4, 4)), 'right')
    says(check_answer('stride-2 block', '(2, 16, 4, 4)'), 'right')
    says(check_answer('stride-2 block', (2, 16, 3, 3)), 'wrong', 'the grid (height and width) is wrong')
    says(check_answer('stride-2 block', [2, 8, 4, 4]), 'wrong', 'the number of channels is wrong')
    says(check_answer('stride-2 block', (3, 16, 4, 4)), 'wrong', 'the batch size is wrong')
    says(check_answer('bottleneck macs', 69632), 'right', '16,384 + 36,864 + 16,384')
    says(check_answer('bottleneck macs', 1_179_648), 'wrong', 'two 3x3 convs at the full 256 channels')
    says(check_answer('bottleneck macs', 1), 'wrong', 'too low')
    says(check_answer('conv1x1 weights', True), 'wrong', 'is not a number')
    with pytest.raises(KeyError, match="no question 'stride 2'"): check_answer('stride 2', 1)
    assert {k: q.answer() for k, q in QUESTIONS.items()} == {'pooled shape': (2, 8, 1, 1), 'stride-2 block': (2, 16, 4, 4), 'conv1x1 weights': 32,
                                                              'conv1x1 shape': (1, 16, 160, 213), 'stem shape': (1, 64, 40, 54), 'bottleneck macs': 69_632}

def notebook_cells(name): return json.loads((ROOT/'nbs'/name).read_text())['cells']

def test_only_the_exercise_pages_import_the_checks():
    importing = sorted(p.name for p in (ROOT/'nbs').glob('*.ipynb')
                       if any(re.search(r'\bresnet_course\.checks\b', ''.join(c['source'])) for c in notebook_cells(p.name) if c['cell_type'] == 'code'))
    assert importing == ['20_questionnaire.ipynb', '21_exercises.ipynb'], importing   # 22_checks defines them

def test_every_attempt_cell_comes_before_its_answer_and_says_not_attempted():
    "On both pages, each check of a learner's attempt (a stub, or `...` for a short answer) stands before a fold, and its saved output is 'not attempted'"
    for name, n_attempts in (('20_questionnaire.ipynb', len(QUESTIONS)), ('21_exercises.ipynb', 7)):
        cells = notebook_cells(name)
        attempts = [i for i, c in enumerate(cells) if c['cell_type'] == 'code' and re.search(r"^check_\w+\((my_\w+|'[^']+', \.\.\.)\)", ''.join(c['source']), re.M)]
        assert len(attempts) == n_attempts, (name, len(attempts))
        for i in attempts:
            assert 'collapse="true"' in ''.join(cells[i + 1]['source']), f'{name}: the attempt cell {cells[i]["id"]} is not followed by a folded answer'
            shown = ''.join(''.join(o.get('data', {}).get('text/plain', o.get('text', ''))) for o in cells[i]['outputs'])
            assert shown.startswith('… Not attempted yet'), f'{name}: {cells[i]["id"]} shows {shown[:80]!r}'
    keys = {m for c in notebook_cells('20_questionnaire.ipynb') for m in re.findall(r"check_answer\('([^']+)'", ''.join(c['source']))}
    assert keys == set(QUESTIONS), 'every question of QUESTIONS is asked on the questionnaire page'
