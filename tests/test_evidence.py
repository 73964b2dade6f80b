"The saved evidence behind the Results page: what the course claims about its own runs holds for the records it ships."
import json
from conftest import ROOT

RESULTS = ROOT/'nbs'/'results'

def records(name):
    return [json.loads(p.read_text()) for p in RESULTS.glob(f'*/runs/{name}-*/record.json')]

def test_every_five_epoch_model_has_a_chapter_recipe_row_near_the_book():
    "Each 5-epoch model of the chapter has a full-data run at the chapter's recipe, within 2 points of the book's top-1"
    for name in ('fcn', 'resblock', 'resblock2', 'resnet18'):
        chapter = [r for r in records(name) if r.get('chapter_recipe') and not r['settings']['sample']]
        assert chapter, f'{name}: no run at the chapter recipe is saved'
        best = max(r['row']['top-1 %'] for r in chapter)
        book = chapter[0]['row']['book top-1 %']
        assert abs(best - book) <= 2, f'{name}: {best}% against the book\'s {book}%'

def test_resnet50_has_a_labelled_real_row():
    "ResNet50 has a full-data run; one that is not the chapter's recipe says so"
    recs = [r for r in records('resnet50') if not r['settings']['sample']]
    assert recs, 'no full-data ResNet50 run is saved'
    assert all(r['chapter_recipe'] == (r['settings']['epochs'] == 20 and r['settings']['size'] == 224) for r in recs)

def test_confusion_matrices_agree_with_their_records():
    "A saved confusion matrix counts every validation image once, and its diagonal gives the record's top-1"
    found = list(RESULTS.glob('*/runs/*/confusion.json'))
    assert any('resnet18-' in str(p) for p in found), 'the ResNet page needs a saved ResNet18 confusion matrix'
    for p in found:
        cm, rec = json.loads(p.read_text()), json.loads((p.parent/'record.json').read_text())
        total = sum(map(sum, cm['matrix']))
        diag = sum(cm['matrix'][i][i] for i in range(len(cm['matrix'])))
        assert total == 3925, f'{p}: {total} images, not the 3,925 of the validation set'
        assert abs(100 * diag / total - rec['row']['top-1 %']) < 0.06, (p, 100 * diag / total, rec['row']['top-1 %'])

def test_cpu_speed_recipes_are_judged_on_every_machine():
    "On every machine that ran a CPU recipe: at least two full-data seeds of its current version, run by the leaderboard's rules, and the chapter reference timed there, so that its goal can be judged"
    from resnet_course.fast import CPU_RECIPES, kept_runs, machines_of
    from resnet_course.goals import speed_target
    for name, r in CPU_RECIPES.items():
        every = kept_runs(RESULTS/'cpu'/'speedrun'/name, name)
        assert every, f'{name}: no run of the current recipe is saved'
        for m in machines_of(every):
            runs = kept_runs(RESULTS/'cpu'/'speedrun'/name, name, machine=m)
            assert len({x['recipe']['seed'] for x in runs}) >= 2, f'{name} on {m}: {len(runs)} seed(s) of the current recipe saved, not 2'
            for x in runs:
                assert x['data'] == 'imagenette2-160' and x['validation'] == f"3,925 images at {r.phases[-1][1]} px", (name, x['data'], x['validation'])
                assert not x['recipe']['tta'] and 'TTA top-1 %' not in x['result'], f'{name}: no test-time augmentation by the rules'
                assert x['hardware'].startswith('CPU') and len(x['history']) == r.epochs
                assert abs(sum(h['seconds'] for h in x['history']) - x['result']['training s']) < 0.02 * x['result']['training s'] + 2   # the epochs add up to the time claimed
            assert speed_target(name, m, RESULTS/'cpu'/'speedrun') is not None, f'{name} on {m}: no chapter reference timed on that machine'

def test_the_ablation_has_every_lever():
    "The ablation around book-in-3 is saved for the current recipe, on the first machine one run for each lever that changes it, on every later one at least its precision and layout levers"
    from resnet_course.fast import CPU_RECIPES, kept_runs, machines_of
    from resnet_course.goals import ABLATION, ablation_table, _as_recipe
    r = CPU_RECIPES['book-in-3']
    for i, m in enumerate(machines_of(kept_runs(RESULTS/'cpu'/'speedrun'/'book-in-3', 'book-in-3'))):
        df = ablation_table(RESULTS/'cpu'/'speedrun'/'book-in-3', machine=m)
        assert df is not None, f'no ablation of the current book-in-3 recipe is saved for {m}'
        ran = _as_recipe(kept_runs(RESULTS/'cpu'/'speedrun'/'book-in-3', 'book-in-3', machine=m)[0]['recipe'])
        want = [k for k in ABLATION if ABLATION[k](ran) != ran]
        if i: want = [k for k in want if k in ('fp32: no bf16 autocast', 'default memory layout, not channels-last')]
        assert set(want) <= set(df.lever), (m, set(want) - set(df.lever))
