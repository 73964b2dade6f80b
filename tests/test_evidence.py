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

def test_cpu_speed_recipes_meet_their_targets_on_every_seed():
    "Each CPU recipe of Training fast has at least two saved full-data seeds of its current version, run by the leaderboard's rules, and its worst seed meets its target"
    from resnet_course.fast import CPU_RECIPES, kept_runs, seed_summary, speed_target
    for name, r in CPU_RECIPES.items():
        runs = kept_runs(RESULTS/'cpu'/'speedrun'/name, name)
        assert len({x['recipe']['seed'] for x in runs}) >= 2, f'{name}: {len(runs)} seed(s) of the current recipe saved, not 2'
        for x in runs:
            assert x['data'] == 'imagenette2-160' and x['validation'] == f"3,925 images at {r.phases[-1][1]} px", (name, x['data'], x['validation'])
            assert not x['recipe']['tta'] and 'TTA top-1 %' not in x['result'], f'{name}: no test-time augmentation by the rules'
            assert x['hardware'].startswith('CPU') and len(x['history']) == r.epochs
            assert abs(sum(h['seconds'] for h in x['history']) - x['result']['training s']) < 0.02 * x['result']['training s'] + 2   # the epochs add up to the time claimed
        s = seed_summary(runs, speed_target(name, RESULTS/'cpu'))
        assert s['met'], f"{name}: worst seed {s['worst top-1 %']}% in {s['worst training s']} s, target {s['target top-1 %']}% in {s['target s']} s"

def test_the_ablation_has_every_lever():
    "The ablation around book-in-3 is saved for the current recipe, one run for each lever that changes it"
    from resnet_course.fast import ABLATION, CPU_RECIPES, ablation_table
    r = CPU_RECIPES['book-in-3']
    df = ablation_table(RESULTS/'cpu'/'speedrun'/'book-in-3')
    assert df is not None, 'no ablation of the current book-in-3 recipe is saved'
    assert list(df.lever) == ['the recipe'] + [k for k in ABLATION if ABLATION[k](r) != r]
