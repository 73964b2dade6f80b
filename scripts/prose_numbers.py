"""Find the measured numbers that the course's prose types by hand.

A number in prose (the markdown cells of nbs/*.ipynb, and README.md) looks *measured* when it carries a unit of time
(s, min, hours), of accuracy (%, points), of speed (images/s), of memory (GB, GiB), or is a ratio (N times, 1.6x, 1/N).
Settings such as 128 px, 5 epochs or batch size 128 carry no such unit and are not looked at. A measured-looking number
is backed when one of these holds:

  (a) a code cell of the same notebook shows it in its saved output: the same value at the prose's precision, with a
      compatible unit (a number in a table takes the unit of its column; an accuracy column's 0.757 backs 75.7%; a
      whole number with one significant digit, which almost anything rounds to, only as the same number in the same
      unit: "3 points" by "3.0 points", not by "2.8 points");
      README.md is backed by the outputs of nbs/index.ipynb, from which it is generated;
  (b) a code cell next to it (the run of code cells just before or after its markdown cell) asserts it: the literal
      is compared in an `assert` or a `test_*`/`assert_*` call, or is the value of a variable such a check compares
      (`claimed = 71.8` ... `test_close(rec['top-1 %'], claimed)`); literals that index or size something, and 0 and 1,
      back nothing;
  (c) nbs/facts.yml lists it, with its source: a number from outside the course (the book, a paper, a leaderboard)
      or one that defines rather than measures (a goal, a threshold, arithmetic on definitions).

A table column whose header says "estimate" is left alone: the page labels those numbers as not measured.
Every other measured-looking number is *unbacked*. tests/test_prose_numbers.py fails on any, listing them all.

usage: python scripts/prose_numbers.py [PAGE ...]    print the unbacked numbers as a table (exit 1 if there are any)
       python scripts/prose_numbers.py --all          every measured-looking number, and what backs it
"""
from __future__ import annotations
import ast, functools, json, re, sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/'nbs'
FACTS = NBS/'facts.yml'

# ---------------------------------------------------------------------------------------------------------------------
# Numbers and their units

NUM = r'(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?'
# not part of a word, a version, a name such as top-5, ResNet-50 or x86-64, a date, or a path
BEFORE = r'(?<![\w.,/:#@\\-])(?<![A-Za-z]-)'
WORD_NUMBERS = {w: i for i, w in enumerate('zero one two three four five six seven eight nine ten eleven twelve thirteen '
                                           'fourteen fifteen sixteen seventeen eighteen nineteen twenty'.split())}
WORD_NUMBERS.update(thirty=30, forty=40, fifty=50, sixty=60, seventy=70, eighty=80, ninety=90, hundred=100)
# unit pattern -> (class, factor to the class's base unit); a unit must end the number's word
UNITS = [
    (r'\s?%|\s(?:per ?cent|percent)\b',                                              'percent', 1),
    (r'\s(?:percentage )?points?\b(?! per\b)|\spp\b',                               'points', 1),
    (r'\s?(?:images|img|samples|it|items|batches)/s\b|\s(?:images|samples) (?:per|a) second\b', 'speed', 1),
    (r'\s?(?:ms|milliseconds?)\b',                                                   'time', .001),
    (r'(?:\s(?:s|secs?|seconds?)|s(?=/))(?![\w-])',                                  'time', 1),
    (r'\s?(?:min|mins|minutes?)(?![\w-])|-minutes?\b',                               'time', 60),
    (r'\s(?:h|hrs?|hours?)(?![\w-])|-hours?\b',                                      'time', 3600),
    (r'\s(?:days?)\b',                                                               'time', 86400),
    (r'\s?(?:KiB|KB|kB)\b',                                                          'memory', 2**10),
    (r'\s?(?:MiB|MB)\b',                                                             'memory', 2**20),
    (r'\s?(?:GiB|GB)\b',                                                             'memory', 2**30),
    (r'\s?(?:TiB|TB)\b',                                                             'memory', 2**40),
    (r'\stimes\b|x(?![\w(])|×|-fold\b',                                              'ratio', 1),
]
UNIT_RE = [(re.compile(p), cls, f) for p, cls, f in UNITS]
SPELLED_UNITS = [(re.compile(r'\s(?:per ?cent|percent)\b'), 'percent', 1), (re.compile(r'\spoints?\b(?! per\b)'), 'points', 1),
                 (re.compile(r'\sseconds?\b'), 'time', 1), (re.compile(r'\sminutes?\b'), 'time', 60),
                 (re.compile(r'\shours?\b'), 'time', 3600), (re.compile(r'\stimes (?:as|more|less|fewer|faster|slower|longer|shorter)\b'), 'ratio', 1)]

@dataclass
class Num:
    "A number found in text: its value, how many decimals it was written with, its unit class and the unit's factor"
    text: str
    value: float
    decimals: int
    cls: str | None = None          # percent, points, time, speed, memory, ratio, share (1/N), fraction (an accuracy as 0.757), or None
    factor: float = 1               # for time and memory: the unit in seconds or bytes
    start: int = 0
    end: int = 0
    col: str = ''                   # the header of the table column it sits in

    @property
    def sig(self) -> int:
        "Significant digits as written (a number written in words: those of its value)"
        t = self.text[2:] if self.text.startswith('1/') else self.text
        if not t[:1].isdigit(): t = str(int(self.value))
        digits = t.replace(',', '').lstrip('0.').replace('.', '')
        return len(digits.rstrip('0')) if self.decimals == 0 else len(digits)

def _num(text:str, start=0, end=0) -> Num:
    t = text.replace(',', '')
    return Num(text, float(t), len(t.split('.')[1]) if '.' in t else 0, start=start, end=end)

def unit_at(text:str, pos:int) -> tuple:
    "The unit class and factor of the unit that starts at `pos` of `text`, or (None, 1)"
    for rx, cls, f in UNIT_RE:
        if rx.match(text, pos): return cls, f
    return None, 1

def header_unit(header:str) -> tuple:
    "The unit class a table column's header gives the bare numbers under it"
    h = header.lower()
    if 'estimate' in h: return 'estimate', 1
    if re.search(r'img/s|images/s|images per second|samples/s', h): return 'speed', 1
    if re.search(r'speed-?up|\bscaling\b|\bratio\b|\btimes\b| vs |\bgain\b', h): return 'ratio', 1
    if re.search(r'points', h): return 'points', 1
    if re.search(r'%|percent', h): return 'percent', 1
    if re.search(r'\baccuracy\b|error_rate|\btop_?[15]\b', h): return 'fraction', 1
    if re.search(r'\bms\b', h): return 'time', .001
    if re.search(r'\bminutes?\b|\bmin\b', h): return 'time', 60
    if re.search(r'\bhours?\b', h): return 'time', 3600
    if re.search(r'(^|\W)s(/|\W|$)|\bseconds?\b|\bsecs?\b|\btime\b', h): return 'time', 1
    if re.search(r'\b(gib|gb|mib|mb)\b', h): return 'memory', {'gib': 2**30, 'gb': 2**30, 'mib': 2**20, 'mb': 2**20}[re.search(r'\b(gib|gb|mib|mb)\b', h).group(1)]
    return None, 1

NUM_RE = re.compile(BEFORE + r'(' + NUM + r')')
MMSS = re.compile(r'(?<![\d:])(\d{1,2}):(\d\d)(?![\d:])')
FRACTION = re.compile(r'(?<![\w.])1/(' + NUM + r')(?![\w/])')

def numbers(text:str, col:str='') -> list:
    "Every number of `text` with its unit, where it has one; a bare number takes the unit of its table column `col`"
    found = []
    for m in NUM_RE.finditer(text):
        if text[m.end():m.end() + 1].isdigit() or re.match(r'[x×]\d', text[m.end():m.end() + 2]): continue   # 3x3, 64x64
        n = _num(m.group(1), m.start(), m.end())
        n.cls, n.factor = unit_at(text, m.end())
        n.col = col
        if n.cls is None and col: n.cls, n.factor = header_unit(col)
        found.append(n)
    for m in FRACTION.finditer(text):      # 1/16 of the time: a share, held as its denominator
        n = _num(m.group(1), m.start(), m.end()); n.text, n.cls, n.col = m.group(0), 'share', col
        found.append(n)
    for m in MMSS.finditer(text):          # fastai's training tables write times as mm:ss
        n = Num(m.group(0), int(m.group(1)) * 60 + int(m.group(2)), 0, 'time', 1, m.start(), m.end(), col)
        found = [f for f in found if not (m.start() <= f.start < m.end())] + [n]
    # a number just before another in "5 to 7 minutes", "13.3 and 12.5 times", "152–161 s" takes its unit
    for n in found:
        if n.cls: continue
        nxt = [o for o in found if o.start > n.start and o.cls and o.cls != 'estimate']
        if nxt:
            o = min(nxt, key=lambda o: o.start)
            between = text[n.end:o.start]
            if re.fullmatch(r'\s?%?\s*(?:to|or|and|–|—|-)\s*(?:about\s+)?|,\s', between): n.cls, n.factor = o.cls, o.factor
    return found

def spelled(text:str) -> list:
    "Numbers written as words before a unit of measurement: 'about ten minutes', 'three points'"
    out = []
    for m in re.finditer(r'\b(' + '|'.join(WORD_NUMBERS) + r')\b', text, re.I):
        for rx, cls, f in SPELLED_UNITS:
            if rx.match(text, m.end()):
                out.append(Num(m.group(1), WORD_NUMBERS[m.group(1).lower()], 0, cls, f, m.start(), m.end()))
                break
    return out

MEASURED = {'percent', 'points', 'time', 'speed', 'memory', 'ratio', 'share'}

# ---------------------------------------------------------------------------------------------------------------------
# Prose: what a reader reads, without code, links' targets and markup

def _blank(m): return ' ' * len(m.group(0))

def readable(md:str) -> str:
    "`md` with code spans, fenced code, HTML tags and comments, and link targets blanked out (positions are kept)"
    md = re.sub(r'```.*?```', _blank, md, flags=re.S)
    md = re.sub(r'<!--.*?-->', _blank, md, flags=re.S)
    md = re.sub(r'`[^`\n]*`', _blank, md)
    md = re.sub(r'\]\([^)\s]*\)', lambda m: ']' + ' ' * (len(m.group(0)) - 1), md)
    md = re.sub(r'https?://\S+', _blank, md)
    md = re.sub(r'</?[A-Za-z][^>\n]*>', _blank, md)
    return md

def table_columns(md:str) -> list:
    "(cell start, cell end, its column's header) for every body cell of every markdown pipe table in `md`"
    out = []
    lines = md.split('\n')
    pos, starts = 0, []
    for l in lines: starts.append(pos); pos += len(l) + 1
    i = 0
    while i < len(lines) - 1:
        if lines[i].lstrip().startswith('|') and re.fullmatch(r'\s*\|?[\s:|-]+\|?\s*', lines[i + 1]) and '-' in lines[i + 1]:
            heads = [h.strip() for h in lines[i].strip().strip('|').split('|')]
            cells, j = [], i + 2
            while j < len(lines) and lines[j].lstrip().startswith('|'):
                line, base = lines[j], starts[j]
                bars = [k for k, ch in enumerate(line) if ch == '|']
                for c, (a, b) in enumerate(zip(bars, bars[1:])):
                    if c < len(heads): cells.append((base + a + 1, base + b, heads[c]))
                j += 1
            out.append(cells)
            i = j
        else: i += 1
    return [c for t in out for c in t]

def prose_numbers(md:str) -> list:
    "The measured-looking numbers of markdown `md` (estimates in columns headed so are left out)"
    text = readable(md)
    cols = table_columns(text)
    found = []
    for n in numbers(text) + spelled(text):
        col = next((h for a, b, h in cols if a <= n.start < b), '')
        if col:
            cls, f = header_unit(col)
            if cls == 'estimate': continue
            if n.cls is None: n.cls, n.factor = cls, f
            n.col = col
        if n.cls in MEASURED: found.append(n)
    return sorted(found, key=lambda n: n.start)

def snippet(md:str, n:Num, width:int=70) -> str:
    a, b = max(0, n.start - width), min(len(md), n.end + width)
    return ('…' if a else '') + ' '.join(md[a:b].split()) + ('…' if b < len(md) else '')

# ---------------------------------------------------------------------------------------------------------------------
# What backs a number: outputs, asserts, the registry

class _Tables(HTMLParser):
    "The text of an HTML output, with each table cell's number tied to its column's header"
    def __init__(self):
        super().__init__(); self.rows, self.row, self.cell, self.in_cell, self.text, self.head_rows = [], None, [], False, [], 0
        self.in_thead = False
    def handle_starttag(self, tag, attrs):
        if tag == 'thead': self.in_thead = True
        elif tag == 'tr': self.row = []
        elif tag in ('td', 'th'): self.in_cell, self.cell = True, []
        elif tag in ('style', 'script'): self.skip = True
    def handle_endtag(self, tag):
        if tag == 'thead': self.in_thead = False
        elif tag == 'tr' and self.row is not None:
            self.rows.append((self.in_thead, self.row)); self.row = None
        elif tag in ('td', 'th') and self.row is not None:
            self.row.append(''.join(self.cell).strip()); self.in_cell = False
        elif tag in ('style', 'script'): self.skip = False
    skip = False
    def handle_data(self, data):
        if self.skip: return
        if self.in_cell: self.cell.append(data)
        else: self.text.append(data)

def html_numbers(html:str) -> list:
    p = _Tables(); p.feed(html)
    if any(h for h, _ in p.rows): heads, body = [r for h, r in p.rows if h], [r for h, r in p.rows if not h]
    else: heads, body = [r for _, r in p.rows[:1]], [r for _, r in p.rows[1:]]
    cols = {}
    for r in heads:
        for i, h in enumerate(r): cols[i] = (cols.get(i, '') + ' ' + h).strip()
    out = numbers(' '.join(p.text))
    for r in body:
        for i, cell in enumerate(r): out += numbers(cell, cols.get(i, ''))
    for r in heads:   # numbers in headers (a column named 20) count too, without a unit
        for cell in r: out += numbers(cell)
    return out

def markdown_numbers(md:str) -> list:
    cols = table_columns(md)
    out = []
    for n in numbers(md):
        col = next((h for a, b, h in cols if a <= n.start < b), '')
        if col and n.col == '':
            n.col = col
            if n.cls is None: n.cls, n.factor = header_unit(col)
        out.append(n)
    return out

OBJECT_REPR = re.compile(r'^<[\w.]+ object>$|^<Figure size [^>]*>$')

def output_numbers(outputs:list) -> list:
    "Every number shown by a code cell's saved `outputs`"
    found = []
    for o in outputs:
        if o.get('output_type') == 'stream': found += markdown_numbers(''.join(o.get('text', ''))); continue
        data = o.get('data', {})
        if 'text/html' in data: found += html_numbers(''.join(data['text/html']))
        elif 'text/markdown' in data: found += markdown_numbers(''.join(data['text/markdown']))
        elif 'text/plain' in data:
            t = ''.join(data['text/plain'])
            if not OBJECT_REPR.match(t.strip()): found += markdown_numbers(t)
    return found

def _close(x:float, v:float, decimals:int) -> bool:
    "Whether `x`, printed with `decimals` decimals, reads `v`"
    return float(f'{x:.{decimals}f}') == v

def shown(n:Num, o:Num) -> bool:
    """Whether output number `o` shows prose number `n`: the same value at the prose's precision, in a compatible unit
    (a bare number, whose unit the output does not say, only where the prose number has three significant digits or more;
    a whole number with one significant digit only as the same number in the same unit)"""
    if o.cls == 'estimate': return False
    if n.sig == 1 and n.decimals == 0:   # 3 points, one second, 20%: matched by almost anything rounded; only the same number and unit
        return o.cls == n.cls and o.factor == n.factor and o.value == n.value
    if o.cls == n.cls or (o.cls is None and n.sig >= 3):
        x = o.value * o.factor / n.factor if n.cls in ('time', 'memory') and o.cls == n.cls else o.value
        return _close(x, n.value, n.decimals)
    if n.cls in ('percent',) and o.cls == 'fraction': return _close(100 * o.value, n.value, n.decimals)
    return False

CHECK_CALL = re.compile(r'^(test_\w+|test|assert\w*|check\w*|is_?close|allclose)$')

def _call_name(call:ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else getattr(f, 'id', '')

def _literal_numbers(node:ast.AST) -> list:
    "Numbers of a literal: a number, a string that holds numbers, or a list, tuple or dict of those; [] for anything else"
    try: value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError): return []
    def walk(v):
        if isinstance(v, bool): return []
        if isinstance(v, (int, float)): return [float(v)]
        if isinstance(v, str): return [n.value for n in numbers(v)] if NUMBER_STRING.fullmatch(v) else []
        if isinstance(v, dict): return [x for k in v for x in walk(k) + walk(v[k])]
        if isinstance(v, (list, tuple, set)): return [x for i in v for x in walk(i)]
        return []
    return walk(value)

NUMBER_STRING = re.compile(r'\s*[-+]?' + NUM + r'\s*%?\s*')

# functions through which a checked literal still stands for the number it checks: abs(x - 71.8) < 0.05, round(x, 1) == 71.8
THROUGH = {'abs', 'round', 'float', 'int', 'min', 'max', 'isclose', 'approx', 'close'}

def _checked_literals(node:ast.AST) -> list:
    """The numbers a check `node` compares something with: literals that are operands of its comparisons and of its
    `test_*` calls, possibly within arithmetic; not literals that index, slice, size or build something (x[0],
    len(y) == 3, range(10), torch.randn(2, 3))"""
    out = []
    def visit(n, live=True):
        if isinstance(n, ast.Constant):
            if live: out.extend(_literal_numbers(n))
            return
        if isinstance(n, ast.Subscript): visit(n.value, live); return          # x[0]: the index is not a checked number
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mult) and isinstance(n.left, (ast.List, ast.Tuple)):
            visit(n.left, live); return                                         # [4096.0] * 3: the 3 repeats, it is not checked
        if isinstance(n, ast.Call):
            name = _call_name(n)
            if name == 'len': return
            sizes = any(isinstance(a, ast.Call) and _call_name(a) == 'len' for a in n.args)   # test_eq(len(x), 3): a size
            ok = live and (CHECK_CALL.match(name) or name in THROUGH) and not sizes
            for a in n.args: visit(a, ok)
            for k in n.keywords: visit(k.value, ok and k.arg in (None, 'eps', 'rtol', 'atol', 'b', 'expected', 'desired'))
            return
        if isinstance(n, ast.Compare):
            sides = [n.left, *n.comparators]
            lens = any(isinstance(x, ast.Call) and _call_name(x) == 'len' for x in sides)
            for x in sides: visit(x, live and not lens)
            return
        if isinstance(n, (ast.List, ast.Tuple, ast.Set, ast.Dict)):
            for c in ast.iter_child_nodes(n): visit(c, live)
            return
        for c in ast.iter_child_nodes(n): visit(c, live)
    visit(node)
    return out

def _code(source:str) -> str:
    return '\n'.join(l for l in source.splitlines() if not l.lstrip().startswith(('%', '!')))

@functools.lru_cache(maxsize=None)
def _tree(source:str):
    try: return ast.parse(_code(source))
    except SyntaxError: return None

def _trees(sources:list) -> list: return [t for s in sources if (t := _tree(s)) is not None]

def claimed(sources:list) -> dict:
    "{name: numbers} for the variables that the code `sources` set to claimed numbers (claimed = 71.8)"
    out = {}
    for t in _trees(sources):
        for a in ast.walk(t):
            if isinstance(a, (ast.Assign, ast.AnnAssign)) and a.value is not None and _claim(a.value):
                for tg in (a.targets if isinstance(a, ast.Assign) else [a.target]):
                    if isinstance(tg, ast.Name): out.setdefault(tg.id, []).extend(_literal_numbers(a.value))
    return out

def asserted_values(sources:list, page=None) -> list:
    """Numbers that the code `sources` check: literals compared in asserts and test calls, and the claimed numbers that
    the page's code (`page`: its sources, or `claimed` of them; default `sources`) assigned to the variables those checks compare"""
    checks = [n for t in _trees(sources) for n in ast.walk(t)
              if isinstance(n, ast.Assert) or (isinstance(n, ast.Call) and CHECK_CALL.match(_call_name(n)))]
    values = [v for c in checks for v in _checked_literals(c.test if isinstance(c, ast.Assert) else c)]
    claims = page if isinstance(page, dict) else claimed(sources if page is None else page)
    for name in {x.id for c in checks for x in ast.walk(c) if isinstance(x, ast.Name)}: values += claims.get(name, [])
    return values

def _claim(node:ast.AST) -> bool:
    "Whether an assigned value reads as claimed numbers: one number (claimed = 71.8), or a dict of non-integer numbers"
    if isinstance(node, ast.UnaryOp): node = node.operand
    if isinstance(node, ast.Constant): return isinstance(node.value, (int, float, str)) and not isinstance(node.value, bool)
    if isinstance(node, ast.Dict):
        vals = [v.operand if isinstance(v, ast.UnaryOp) else v for v in node.values]
        return bool(vals) and all(isinstance(v, ast.Constant) and isinstance(v.value, float) for v in vals)
    return False

def asserted(n:Num, values:list) -> bool:
    "Whether a checked literal of `values` reads `n` (0 and 1, which bound and index everything in code, back nothing)"
    values = [v for v in values if v not in (0, 1)]
    return any(_close(v, n.value, n.decimals) or (n.cls in ('percent', 'points') and _close(100 * v, n.value, n.decimals))
               for v in values)

@dataclass
class Fact:
    "One entry of nbs/facts.yml: a number from outside the course, or one that defines rather than measures, and its source"
    value: float
    unit: str
    what: str
    source: str
    pages: list = field(default_factory=list)     # notebook names without .ipynb ('index' for the home page and README.md); empty: any page
    near: str = ''                                # a phrase within the same paragraph, where the same value means something else elsewhere
    cls: str = None
    factor: float = 1

def load_facts(path:Path=FACTS) -> list:
    "The registry's entries, checked: each has a value, a unit of measurement, what it is and its source"
    import yaml
    entries = yaml.safe_load(path.read_text()) or []
    facts = []
    for i, e in enumerate(entries):
        missing = [k for k in ('value', 'unit', 'what', 'source') if not e.get(k) and e.get(k) != 0]
        if missing: raise ValueError(f'{path.name}, entry {i + 1} ({e.get("value")!r}): missing {", ".join(missing)}; give each number its value, unit, what it is and its source')
        f = Fact(float(str(e['value']).replace(',', '')), str(e['unit']), e['what'], e['source'], list(e.get('pages') or []), e.get('near') or '')
        f.cls, f.factor = unit_at(' ' + f.unit if not f.unit.startswith(('%', 'x', '×')) else f.unit, 0)
        if f.cls is None: raise ValueError(f'{path.name}, entry {i + 1} ({e["value"]}): unit {f.unit!r} is not a unit of measurement (%, points, s, min, h, images/s, GB, times)')
        facts.append(f)
    return facts

def page_key(page:str) -> str:
    return 'index' if page == 'README.md' else Path(page).stem

def registered(n:Num, page:str, paragraph:str, facts:list) -> Fact | None:
    for f in facts:
        if f.pages and page_key(page) not in f.pages: continue
        if f.near and f.near.lower() not in ' '.join(paragraph.split()).lower(): continue
        if f.cls != n.cls: continue
        x = f.value * f.factor / n.factor if n.cls in ('time', 'memory') else f.value
        if _close(x, n.value, n.decimals): return f
    return None

# ---------------------------------------------------------------------------------------------------------------------
# Pages

@dataclass
class Finding:
    page: str
    cell: str
    number: str
    unit: str
    context: str
    backed_by: str = ''       # 'output', 'assert', 'facts.yml: ...'; empty when unbacked

def _paragraph(md:str, n:Num) -> str:
    a = md.rfind('\n\n', 0, n.start); b = md.find('\n\n', n.end)
    return md[a + 1 if a >= 0 else 0: b if b >= 0 else len(md)]

def check_text(page:str, cell:str, md:str, shown_nums:list, checked:list, facts:list) -> list:
    "The measured-looking numbers of markdown `md`, each with what backs it: an output number of `shown_nums`, a value of `checked`, or a fact"
    out = []
    for n in prose_numbers(md):
        by = ''
        if (o := next((o for o in shown_nums if shown(n, o)), None)): by = f'output: {o.text}' + (f' under {o.col!r}' if o.col else '')
        elif asserted(n, checked): by = 'assert'
        elif (f := registered(n, page, _paragraph(md, n), facts)): by = f'facts.yml: {f.what}'
        out.append(Finding(page, cell, n.text, n.cls, snippet(md, n), by))
    return out

def _sources(cells:list) -> list: return [''.join(c['source']) for c in cells]

def neighbours(cells:list, i:int) -> list:
    "The code cells next to cell `i`: the run of code cells just before it and the run just after it"
    out, j = [], i - 1
    while j >= 0 and cells[j]['cell_type'] == 'code': out.append(cells[j]); j -= 1
    j = i + 1
    while j < len(cells) and cells[j]['cell_type'] == 'code': out.append(cells[j]); j += 1
    return out

def check_notebook(path:Path, facts:list) -> list:
    "Every measured-looking number in the markdown of notebook `path`, and what backs it"
    cells = json.loads(path.read_text())['cells']
    code = [c for c in cells if c['cell_type'] == 'code']
    shown_nums = [n for c in code for n in output_numbers(c.get('outputs', []))]
    claims = claimed(_sources(code))
    out = []
    for i, c in enumerate(cells):
        if c['cell_type'] != 'markdown': continue
        near = neighbours(cells, i)
        # the checks next to the prose, and what the variables they compare were set to anywhere on the page
        checked = asserted_values(_sources(near), claims)
        out += check_text(path.name, c.get('id', '?'), ''.join(c['source']), shown_nums, checked, facts)
    return out

def readme_prose(md:str) -> list:
    "README.md's paragraphs as (line number, text), without its code blocks and the code cells' outputs (indented blocks)"
    md = re.sub(r'```.*?```', _blank, md, flags=re.S)
    out, para, start = [], [], 1
    for i, line in enumerate(md.split('\n'), 1):
        if not line.strip() or line.startswith('    '):
            if para: out.append((start, '\n'.join(para))); para = []
            continue
        if not para: start = i
        para.append(line)
    if para: out.append((start, '\n'.join(para)))
    return out

def check_readme(path:Path, index:Path, facts:list) -> list:
    "README.md, backed by the outputs and checks of nbs/index.ipynb, which it is generated from"
    nb = json.loads(index.read_text())
    code = [c for c in nb['cells'] if c['cell_type'] == 'code']
    shown_nums = [n for c in code for n in output_numbers(c.get('outputs', []))]
    checked = asserted_values(_sources(code))
    return [f for line, para in readme_prose(path.read_text()) for f in check_text('README.md', f'line {line}', para, shown_nums, checked, facts)]

def pages(root:Path=ROOT) -> list:
    return sorted(p for p in (root/'nbs').glob('*.ipynb') if not p.name.startswith(('_', '.')))

def scan(root:Path=ROOT, only:list=None) -> list:
    "Every measured-looking number of every page and of README.md, with what backs it"
    facts = load_facts(root/'nbs'/'facts.yml')
    out = []
    for p in pages(root):
        if only and p.name not in only and p.stem not in only: continue
        out += check_notebook(p, facts)
    if (root/'README.md').exists() and (not only or 'README.md' in only or 'README' in only):
        out += check_readme(root/'README.md', root/'nbs'/'index.ipynb', facts)
    return out

def unbacked(findings:list) -> list:
    "The findings nothing backs; README.md's that repeat the same number in the same words as index.ipynb are folded into it"
    bad = [f for f in findings if not f.backed_by]
    from collections import Counter
    index = Counter((f.number, f.unit) for f in bad if f.page == 'index.ipynb')
    out = []
    for f in bad:
        if f.page == 'README.md' and index[(f.number, f.unit)] > 0: index[(f.number, f.unit)] -= 1; continue
        out.append(f)
    return out

def table(findings:list) -> str:
    "One line per finding: page, cell, number, unit and the words around it"
    return '\n'.join(f"{f.page} | {f.cell} | {f.number} | {f.unit} | {f.context.replace('|', '¦')}" + (f'  [{f.backed_by}]' if f.backed_by else '')
                     for f in findings)

def report(findings:list) -> str:
    bad = unbacked(findings)
    if not bad: return 'No unbacked measured number in prose.'
    readme = ' (README.md repeats those of index.ipynb)' if any(f.page == 'index.ipynb' for f in bad) else ''
    return (f"{len(bad)} measured number(s) in prose are neither shown by a cell's output, nor asserted, nor listed in nbs/facts.yml{readme}.\n"
            "Print each from its record in a cell (e.g. display(Markdown(f'... {x:.1f} ...'))), or assert it next to the prose, "
            "or, if it comes from outside the course or defines rather than measures, add it to nbs/facts.yml with its source.\n"
            "page | cell | number | unit | context\n" + table(bad))

def unused_facts(findings:list, facts:list) -> list:
    "Registry entries that back no number on any page: the prose they were for has changed"
    used = {f.backed_by for f in findings}
    return [f for f in facts if f'facts.yml: {f.what}' not in used]

if __name__ == '__main__':
    args = [a for a in sys.argv[1:] if not a.startswith('--')]
    found = scan(only=args or None)
    if '--all' in sys.argv: print(table(found)); sys.exit(0)
    print(report(found))
    if not args:
        for f in unused_facts(found, load_facts()): print(f'note: nbs/facts.yml lists {f.value:g} {f.unit} ({f.what}), which no page uses now')
    sys.exit(1 if unbacked(found) else 0)
