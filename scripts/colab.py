"""Give every notebook one click to a GPU kernel: an install cell for hosted kernels and an "Open in Colab" link.

Each notebook in nbs/ gets two cells. First, a hidden code cell that installs the course with pip, but only
on a hosted kernel (Colab or Kaggle) where the course is missing; on a machine set up with `make setup` it
does nothing. Second, right after the title, a markdown line linking to the notebook on Colab. Running the
script again changes nothing, and an out-of-date install cell or link is replaced, not duplicated.

usage: python scripts/colab.py [NOTEBOOK ...]           add the cells (default: every notebook in nbs/)
       python scripts/colab.py --check [NOTEBOOK ...]   exit 1, naming them, if any notebook lacks them
"""
import argparse, json, sys, tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUARD_ID, LINK_ID = 'colab-install', 'colab-link'
MARK = '# On a hosted kernel'   # the line that identifies an install cell, current or stale

def repo_settings(pyproject:Path=ROOT/'pyproject.toml') -> tuple:
    "The GitHub repository's URL and the docs' branch, from pyproject.toml"
    cfg = tomllib.loads(pyproject.read_text())
    return cfg['project']['urls']['Repository'].rstrip('/'), cfg['tool']['nbdev'].get('branch', 'main')

def guard_source(repo_url:str) -> str:
    """The install cell: stdlib only, since it runs before the course can be imported. A hosted kernel opens the notebook
    alone, so the cell also fetches the repository, whose saved results (nbs/results) the notebooks show, and points
    `RESNET_COURSE_RESULTS` at them"""
    return f"""#| hide
{MARK} (Colab or Kaggle): fetch the course with its saved results, and install it where it is missing. Anywhere else this does nothing.
import importlib.util, os, subprocess, sys
if 'google.colab' in sys.modules or 'KAGGLE_KERNEL_RUN_TYPE' in os.environ:
    clone = os.path.expanduser('~/resnet_course')
    if not os.path.isdir(clone): subprocess.run(['git', 'clone', '-q', '--depth', '1', '{repo_url}', clone], check=True)
    if importlib.util.find_spec('resnet_course') is None: subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', clone], check=True)
    os.environ['RESNET_COURSE_RESULTS'] = os.path.join(clone, 'nbs', 'results')"""

def link_source(repo_url:str, branch:str, name:str) -> str:
    "The markdown line that opens notebook `name` on Colab"
    path = repo_url.removeprefix('https://github.com/')
    return f"[Open in Colab](https://colab.research.google.com/github/{path}/blob/{branch}/nbs/{name}): run this page's code on a hosted GPU kernel."

def notebooks(paths=()) -> list:
    "The notebooks to handle: `paths`, or every notebook in nbs/"
    return [Path(p) for p in paths] or sorted((ROOT/'nbs').glob('*.ipynb'))

def src(cell) -> str: return ''.join(cell['source'])

def title_index(cells) -> int:
    "Position of the title cell: the first markdown cell that starts with '# '"
    return next(i for i, c in enumerate(cells) if c['cell_type'] == 'markdown' and src(c).startswith('# '))

def new_cell(kind:str, cell_id:str, source:str) -> dict:
    c = dict(cell_type=kind, id=cell_id, metadata={}, source=source.splitlines(True))
    if kind == 'code': c.update(execution_count=None, outputs=[])
    return c

def problems(nb:dict, name:str, repo_url:str, branch:str) -> list:
    "What notebook `nb`, called `name`, lacks; empty if it has both cells in place"
    cells, out = nb['cells'], []
    code = [c for c in cells if c['cell_type'] == 'code']
    if not code or src(code[0]) != guard_source(repo_url): out.append('its first code cell is not the install cell')
    t = title_index(cells)
    if t + 1 >= len(cells) or src(cells[t + 1]) != link_source(repo_url, branch, name): out.append('no Colab link right after its title')
    return out

def add_cells(nb:dict, name:str, repo_url:str, branch:str) -> dict:
    "`nb` with its install cell first and its Colab link after the title, replacing any older versions of either"
    ours = lambda c: MARK in src(c) if c['cell_type'] == 'code' else src(c).startswith('[Open in Colab](')
    cells = [c for c in nb['cells'] if not ours(c)]
    t = title_index(cells)
    cells.insert(t + 1, new_cell('markdown', LINK_ID, link_source(repo_url, branch, name)))
    return {**nb, 'cells': [new_cell('code', GUARD_ID, guard_source(repo_url))] + cells}

def write_nb(nb:dict, path:Path):
    "Write `nb` as nbdev-clean does, so that cleaning it changes nothing"
    path.write_text(json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + '\n')

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('notebooks', nargs='*', help='notebooks to handle (default: every notebook in nbs/)')
    ap.add_argument('--check', action='store_true', help='change nothing; exit 1 if any notebook lacks the cells')
    args = ap.parse_args(argv)
    repo_url, branch = repo_settings()
    failed = 0
    for p in notebooks(args.notebooks):
        nb = json.loads(p.read_text())
        todo = problems(nb, p.name, repo_url, branch)
        if not todo: continue
        if args.check: print(f'{p.name}: {"; ".join(todo)}'); failed += 1
        else: write_nb(add_cells(nb, p.name, repo_url, branch), p); print(f'{p.name}: added the install cell and the Colab link')
    if args.check and failed: print(f'{failed} notebook(s) lack the Colab cells: run python scripts/colab.py')
    return 1 if failed else 0

if __name__ == '__main__': sys.exit(main())
