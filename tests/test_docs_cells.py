"""The docs build (nbdev's processors, in `scripts/build_site.py` and `nbdev-docs`) executes only some cells of each notebook: those
with an import, an export, or `show_doc`, in order, in one namespace. Such a cell that uses a name only another kind of cell
defines fails the build on a fresh clone. This checks every notebook statically, in seconds, instead of building the site."""
import ast, builtins, importlib, json, re
from conftest import ROOT

IMPORT_LINE = re.compile(r'^\s*(import |from \S+ import )', re.M)   # a cell with such a line is run by the docs build
_STAR = {}
def _star(module:str) -> set:
    if module not in _STAR:
        try: m = importlib.import_module(module); _STAR[module] = set(getattr(m, '__all__', None) or [n for n in dir(m) if not n.startswith('_')])
        except Exception: _STAR[module] = set()
    return _STAR[module]

def _bound(tree) -> set:
    "Every name a cell binds: assignments, definitions, arguments, imports (a star import binds its module's names)"
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): out.add(n.name)
        elif isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)): out.add(n.id)
        elif isinstance(n, ast.arg): out.add(n.arg)
        elif isinstance(n, ast.ExceptHandler) and n.name: out.add(n.name)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            for a in n.names:
                out |= _star(n.module) if a.name == '*' else {(a.asname or a.name).split('.')[0]}
    return out

def docs_run_cells_missing_names(nb_path) -> list:
    "(cell id, names) for each cell the docs build runs that uses a name no cell it runs before defines"
    defined, found = set(dir(builtins)) | {'display', 'get_ipython'}, []
    for c in json.loads(nb_path.read_text())['cells']:
        s = ''.join(c['source'])
        if c['cell_type'] != 'code': continue
        if not (IMPORT_LINE.search(s) or 'show_doc' in s or s.startswith('#| export')): continue
        try: tree = ast.parse('\n'.join(l for l in s.split('\n') if not l.lstrip().startswith(('%', '!'))))
        except SyntaxError: continue
        here = _bound(tree)
        missing = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - here - defined
        if missing and not s.startswith('#| export'): found.append((c.get('id'), sorted(missing)))
        defined |= here
    return found

def test_cells_the_docs_build_runs_need_only_what_it_runs():
    bad = {p.name: m for p in sorted((ROOT/'nbs').glob('*.ipynb')) if (m := docs_run_cells_missing_names(p))}
    assert not bad, f"cells with an import that use names from cells the docs build does not run (move the import to the page's import cell): {bad}"

def test_the_check_finds_such_a_cell(tmp_path):
    nb = {'cells': [{'cell_type': 'code', 'id': 'a', 'source': ['x = 1']},
                    {'cell_type': 'code', 'id': 'b', 'source': ['import json\n', 'print(json.dumps(x))']}]}
    (tmp_path/'t.ipynb').write_text(json.dumps(nb))
    assert docs_run_cells_missing_names(tmp_path/'t.ipynb') == [('b', ['x'])]

def training_cells_the_docs_build_runs(nb_path) -> list:
    "The ids of cells that train (`#| trains`) or run for minutes (`#| slow`) and that the docs build would run, since they import"
    cells = [c for c in json.loads(nb_path.read_text())['cells'] if c['cell_type'] == 'code']
    return [c.get('id') for c in cells if re.search(r'^#\|\s*(trains|slow)\s*$', ''.join(c['source']), re.M) and IMPORT_LINE.search(''.join(c['source']))]

def test_the_docs_build_trains_nothing():
    "A training cell with an import would train at every docs build (nbdev runs every cell that imports), and show that run's output"
    bad = {p.name: ids for p in sorted((ROOT/'nbs').glob('*.ipynb')) if (ids := training_cells_the_docs_build_runs(p))}
    assert not bad, f"training cells with an import, which the docs build runs: {bad}; move their imports to the page's import cell"

def test_the_training_check_finds_such_a_cell(tmp_path):
    nb = {'cells': [{'cell_type': 'code', 'id': 'a', 'source': ['#| trains\n', 'import io\n', 'learn.fit(1)']},
                    {'cell_type': 'code', 'id': 'b', 'source': ['#| trains\n', 'learn.fit(1)']}]}
    (tmp_path/'t.ipynb').write_text(json.dumps(nb))
    assert training_cells_the_docs_build_runs(tmp_path/'t.ipynb') == ['a']
