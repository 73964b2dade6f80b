"""A measured number in prose is never typed by hand: it is printed by a cell, asserted next to the prose, or listed with its
source in nbs/facts.yml (scripts/prose_numbers.py holds the rule; nbs/maintainers.ipynb states it)."""
import json, shutil, sys
import pytest
from conftest import ROOT
sys.path.insert(0, str(ROOT/'scripts'))
import prose_numbers as pn

def test_every_measured_number_in_prose_is_backed():
    "Every page and README.md: each measured-looking number is shown by an output, asserted, or registered; all offenders at once"
    found = pn.scan(ROOT)
    assert len({f.page for f in found}) > 10, 'the scan found almost no numbers: is it reading the pages?'
    if pn.unbacked(found): pytest.fail(pn.report(found), pytrace=False)

MEASURED = ['it took 17 minutes', 'at 3,800 images/s', 'reached 75.9%', 'about 11 points behind', 'fp32 takes 1.6 times as long',
            'a 2.5x speed-up', 'the venv takes 6.4 GB', 'in 1/16 of the time', 'about ten minutes on two cores', 'between 44% and 61%',
            '12 to 13 seconds an epoch', '802 s of training', '0.2 s of CPU', '5 to 7 minutes an epoch']
NOT_MEASURED = ['5 epochs at 128 px', 'batch size 128', 'a 3x3 conv', 'ResNet-50 and top-5 accuracy', 'in 2015', 'on 2026-11-30',
                'version 2.8.12', '9,469 training images', '`--epochs 5` and `took 17 minutes`', 'x86-64 and AVX512-BF16',
                'the plot draws one point per epoch', '[a link](https://example.com/17%)', '3 x 64 x 49 = 9,408 weights', 'ResNet50']

@pytest.mark.parametrize('text', MEASURED)
def test_measured_numbers_are_found(text):
    assert pn.prose_numbers(text), f'{text!r}: no measured number found'

@pytest.mark.parametrize('text', NOT_MEASURED)
def test_settings_names_and_dates_are_not_measurements(text):
    assert not pn.prose_numbers(text), f'{text!r}: {[n.text for n in pn.prose_numbers(text)]} taken for a measurement'

def test_estimates_labelled_as_such_in_a_table_are_left_alone():
    md = '| step | estimate on one H200 | measured |\n|---|---|---|\n| a | ~5 min | 7 min |'
    assert [n.text for n in pn.prose_numbers(md)] == ['7']

def notebook(path, cells):
    "Write a notebook of `cells`: ('md', text), ('code', source) or ('code', source, printed text)"
    nb = {'cells': [], 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}
    for i, c in enumerate(cells):
        if c[0] == 'md': nb['cells'].append({'cell_type': 'markdown', 'id': f'c{i}', 'metadata': {}, 'source': c[1]})
        else:
            outs = [{'output_type': 'stream', 'name': 'stdout', 'text': c[2]}] if len(c) > 2 else []
            nb['cells'].append({'cell_type': 'code', 'id': f'c{i}', 'metadata': {}, 'execution_count': None, 'outputs': outs, 'source': c[1]})
    path.write_text(json.dumps(nb))

@pytest.fixture
def site(tmp_path):
    "A course of one page, with the real registry"
    (tmp_path/'nbs').mkdir()
    shutil.copy(ROOT/'nbs'/'facts.yml', tmp_path/'nbs'/'facts.yml')
    return tmp_path

def offenders(root): return [(f.cell, f.number) for f in pn.unbacked(pn.scan(root))]

def test_a_typed_number_fails_until_a_cell_prints_it(site):
    "Broken on purpose: a run's time typed into the prose is caught; printed by the cell next to it, it passes"
    page = site/'nbs'/'10_page.ipynb'
    notebook(page, [('md', 'The reduced ResNet50 took 17 minutes on two cores.'), ('code', "rec = load('resnet50')")])
    assert offenders(site) == [('c0', '17')]
    notebook(page, [('md', 'The reduced ResNet50 took 17 minutes on two cores.'),
                    ('code', "print(f\"{rec['minutes']:.1f} minutes\")", '17.3 minutes\n')])
    assert offenders(site) == []
    notebook(page, [('md', 'The reduced ResNet50 took 17 minutes on two cores.'),   # a different value printed does not back it
                    ('code', "print(f\"{rec['minutes']:.1f} minutes\")", '18.4 minutes\n')])
    assert offenders(site) == [('c0', '17')]

def test_an_assert_next_to_the_prose_backs_it(site):
    page = site/'nbs'/'10_page.ipynb'
    notebook(page, [('md', 'Label smoothing reached 75.8% after five epochs.'), ('code', "test_close(rec['top-1 %'], 75.8, eps=0.05)")])
    assert offenders(site) == []
    notebook(page, [('md', 'Label smoothing reached 75.8% after five epochs.'), ('code', "claimed = 75.8"),
                    ('code', "assert abs(rec['top-1 %'] - claimed) < 0.05")])
    assert offenders(site) == []
    # an assert on another part of the page does not count, nor a literal that only indexes or sizes something
    notebook(page, [('md', 'Label smoothing reached 75.8% after five epochs.'), ('code', 'x = 1'), ('md', 'Elsewhere.'),
                    ('code', "test_close(rec['top-1 %'], 75.8, eps=0.05)")])
    assert offenders(site) == [('c0', '75.8')]
    notebook(page, [('md', 'It gains 3 points.'), ('code', 'test_eq(len(runs), 3); x = rows[3]')])
    assert offenders(site) == [('c0', '3')]

def test_a_registered_number_needs_its_source(site, tmp_path):
    page = site/'nbs'/'10_page.ipynb'
    notebook(page, [('md', "The book's ResNet18 reached about 76% and ResNeXt-50 22.2% error.")])
    assert offenders(site) == [('c0', '22.2')]          # the book's 75.7 is registered for every page; ResNeXt's only for 30_beyond
    (site/'nbs'/'facts.yml').write_text('- {value: 22.2, unit: "%", what: ResNeXt-50 error}\n')
    with pytest.raises(ValueError, match='entry 1 .*missing source'): pn.scan(site)
    (site/'nbs'/'facts.yml').write_text('- {value: 22.2, unit: px, what: a, source: b}\n')
    with pytest.raises(ValueError, match='not a unit of measurement'): pn.scan(site)

def test_a_real_page_broken_on_purpose(site):
    "The Pooling page passes; a measured time typed into it fails, naming the page, the cell and the number"
    shutil.copy(ROOT/'nbs'/'10_pooling.ipynb', site/'nbs'/'10_pooling.ipynb')
    assert offenders(site) == []
    nb = json.loads((site/'nbs'/'10_pooling.ipynb').read_text())
    nb['cells'].insert(3, {'cell_type': 'markdown', 'id': 'typed', 'metadata': {}, 'source': 'On two cores an epoch takes about 412 s.'})
    (site/'nbs'/'10_pooling.ipynb').write_text(json.dumps(nb))
    report = pn.report(pn.scan(site))
    assert offenders(site) == [('typed', '412')] and '10_pooling.ipynb | typed | 412 | time |' in report

def test_readme_repeats_fold_into_the_home_page(site):
    notebook(site/'nbs'/'index.ipynb', [('md', 'A run takes about 40 minutes.')])
    (site/'README.md').write_text('# x\n\nA run takes about 40 minutes.\n\n```sh\nmake test   # 10 minutes\n```\n')
    found = pn.unbacked(pn.scan(site))
    assert [(f.page, f.number) for f in found] == [('index.ipynb', '40')]
