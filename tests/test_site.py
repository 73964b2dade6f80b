"The offline documentation site, opened page by page in Debian's Chromium, headless."
import json, re, shutil, sys, time
from pathlib import Path
from urllib.parse import urlparse, unquote
import pytest
from conftest import ROOT
sys.path.insert(0, str(ROOT/'scripts'))
import build_site

CHROMIUM_FLAGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                  '--disable-dev-shm-usage', '--no-first-run', '--disable-component-update', '--window-size=1400,1000']

@pytest.fixture(scope='session')   # session: built once, though xdist may run other files' tests in between
def learner_site(tmp_path_factory):
    "The suite's one docs build: in a fresh copy where a learner has run `make reproduce` (tests/learner_copy.py)"
    from learner_copy import build_learner_site
    built = build_learner_site(tmp_path_factory.mktemp('learner'))
    build_site.PROC = built.repo/'_proc'   # the pages' front matter, as that build processed it (a fresh clone has no _proc of its own)
    return built

@pytest.fixture(scope='session')
def site(learner_site): return learner_site.out, learner_site.pages

def test_docs_build_installs_nothing(learner_site):
    "Without Quarto, the docs build never calls an installer: stand-ins for sudo, curl and dpkg record any call"
    assert learner_site.installer_calls == '', f'the docs build ran an installer:\n{learner_site.installer_calls}{learner_site.log[-2000:]}'
    assert (learner_site.out/'index.html').is_file()

def test_a_learners_results_do_not_change_the_pages(learner_site):
    """The README's two commands one after the other (issue 33): with a learner's quick and interrupted runs in results/, every page
    is built, and what the build computed from records is what the course's records give: nothing turns pending, and the
    "just as fast" comparison (which once read the learner's partial results and failed) prints what the notebook saved"""
    from learner_copy import outputs_text
    repo, out = learner_site.repo, learner_site.out
    for _, name in build_site.sidebar_entries(repo/'nbs'/'sidebar.yml'):
        proc = json.loads((repo/'_proc'/name).read_text())
        fm = build_site.front_matter(build_site.nbformat.reads(json.dumps(proc), as_version=4))
        assert (out/fm.get('output-file', Path(name).stem + '.html')).is_file(), f'{name}: no page'
        saved, built = outputs_text(json.loads((repo/'nbs'/name).read_text())), outputs_text(proc)
        new_pending = [i for i, t in built.items() if 'Pending' in t and 'Pending' not in saved.get(i, '')]
        assert not new_pending, f'{name}: cells the docs build found pending, though the course has their records: {new_pending}'
    saved = outputs_text(json.loads((repo/'nbs'/'13_resnet.ipynb').read_text()))['961e00dd']
    assert 'ResNet18 takes' in saved and saved == outputs_text(json.loads((repo/'_proc'/'13_resnet.ipynb').read_text()))['961e00dd']
    assert 'ResNet18 takes' in (out/'resnet.html').read_text()

@pytest.fixture(scope='session')   # session: built once, though xdist may run other files' tests in between
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    chromium, driver = shutil.which('chromium'), shutil.which('chromedriver')
    assert chromium and driver, "Debian's chromium and chromium-driver are needed: apt-get install chromium chromium-driver"
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for f in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]: opts.add_argument(f)
    opts.set_capability('goog:loggingPrefs', {'performance': 'ALL'})   # every request the pages make, read by requests_made()
    b = webdriver.Chrome(service=Service(driver), options=opts)
    yield b
    b.quit()

def expected_pages():
    "(notebook, title) for every page of the sidebar, titles read from the notebooks themselves"
    import nbformat
    out = []
    for _, name in build_site.sidebar_entries(ROOT/'nbs'/'sidebar.yml'):
        first = next(c for c in nbformat.read(ROOT/'nbs'/name, as_version=4).cells if c.cell_type == 'markdown')
        out.append((name, first.source.splitlines()[0].lstrip('# ').strip()))
    return out

def test_every_notebook_has_a_page_in_reading_order(site):
    out, pages = site
    nbs = sorted(p.name for p in (ROOT/'nbs').glob('*.ipynb'))
    in_sidebar = [name for _, name in build_site.sidebar_entries(ROOT/'nbs'/'sidebar.yml')]
    assert sorted(in_sidebar) == nbs, 'every notebook must be in the sidebar, once'
    chapter = [n for n in in_sidebar if n[:2] in ('10', '11', '12', '13', '14')]
    assert chapter == sorted(chapter), 'the chapter notebooks must appear in reading order'
    assert len(pages) == len(nbs)

def test_pages_in_browser(site, browser):
    out, pages = site
    titles = dict(expected_pages())
    files = {p.name for p in out.glob('*.html')}
    n_figures = 0
    for name, title in titles.items():
        page = build_site.front_matter_file(out, name)
        browser.get(page.as_uri())
        assert browser.title.startswith(title), f'{page.name}: title {browser.title!r}, expected {title!r}'
        assert browser.find_element('css selector', 'h1.page-title').text == title
        nav = [a.text for a in browser.find_elements('css selector', 'nav.site-nav a.page')]
        assert nav == list(titles.values()), f'{page.name}: sidebar out of order'
        imgs = browser.execute_script("return Array.from(document.images).map(i => [i.currentSrc.slice(0, 40), i.complete && i.naturalWidth > 0])")
        broken = [src for src, ok in imgs if not ok]
        assert not broken, f'{page.name}: figures that did not load: {broken}'
        n_figures += len(imgs)
        for href in browser.execute_script("return Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))"):
            u = urlparse(href)
            if u.scheme or href.startswith('#') or not u.path: continue
            assert unquote(u.path) in files, f'{page.name}: broken internal link {href}'
    assert n_figures >= 5, f'only {n_figures} figures in the whole site'

# Pages with diagrams drawn from the models, and how many each shows at least.
DIAGRAMS = {'56_diagrams.ipynb': 1, '11_resblock.ipynb': 1, '13_resnet.ipynb': 1, '14_bottleneck.ipynb': 1}
DRAWING_CELLS = r"Array.from(document.querySelectorAll('.jp-CodeCell')).filter(c => /\b(draw_model|beside)\(/.test((c.querySelector('.jp-InputArea') || {}).textContent || ''))"

def diagram_sizes(browser) -> list:
    "(width, height) of each image output of a cell that draws a model, on the page open in `browser`; (0, 0) if it did not load"
    js = f"return {DRAWING_CELLS}.flatMap(c => Array.from(c.querySelectorAll('.jp-OutputArea img'))).map(i => i.complete ? [i.naturalWidth, i.naturalHeight] : [0, 0])"
    return [tuple(wh) for wh in browser.execute_script(js)]

def test_diagrams_in_browser(site, browser):
    "The model diagrams are on their pages, as loaded images of a readable size; without them, the page has that many images fewer"
    out, _ = site
    for name, n in DIAGRAMS.items():
        page = build_site.front_matter_file(out, name)
        browser.get(page.as_uri())
        sizes = diagram_sizes(browser)
        assert len(sizes) >= n, f'{page.name}: {len(sizes)} diagram(s), expected {n}: save the outputs of its draw_model cells'
        assert all(w > 200 and h > 200 for w, h in sizes), f'{page.name}: a diagram did not load, or is too small to read: {sizes}'
        n_images = browser.execute_script('return document.images.length')
        browser.execute_script(f"{DRAWING_CELLS}.forEach(c => c.querySelectorAll('.jp-OutputArea img').forEach(i => i.remove()))")
        assert diagram_sizes(browser) == [] and browser.execute_script('return document.images.length') == n_images - len(sizes)

def test_hidden_cells_stay_hidden(site):
    out, _ = site
    html = (out/'resblock.html').read_text()
    assert 'nbdev_export' not in html            # a `#| hide` cell
    assert '#| export' not in html and '#|' not in html
    assert 'show_doc(' not in html               # show_doc cells are echo: false...
    assert '<h3 id="ResBlock">' in html           # ...but their reference output is there

def test_every_export_has_a_reference_section(site):
    "Each exported function and class has its show_doc heading on its module's page"
    import importlib
    out, _ = site
    for mod in sorted(p.stem for p in (ROOT/'resnet_course').glob('*.py') if not p.stem.startswith('_')):
        html = (out/f'{mod}.html').read_text()
        m = importlib.import_module(f'resnet_course.{mod}')
        names = [n for n in m.__all__ if callable(getattr(m, n))]   # functions and classes; constants have no show_doc
        missing = [n for n in names if f'<h3 id="{n}">' not in html]
        assert not missing, f'{mod}.html has no reference section for {missing}'

def test_screenshots_for_a_person(site, browser):
    out, _ = site
    shots = ROOT/'screenshots'; shots.mkdir(exist_ok=True)
    for name, f in (('home', 'index.html'), ('chapter-resblock', 'resblock.html')):
        browser.get((out/f).as_uri())
        browser.set_window_size(1400, 1000)
        assert browser.save_screenshot(str(shots/f'{name}.png'))
        assert (shots/f'{name}.png').stat().st_size > 20_000

def requests_made(browser) -> list:
    "URLs of every request Chromium started since the last call, from its DevTools log"
    urls = []
    for e in browser.get_log('performance'):
        m = json.loads(e['message'])['message']
        if m['method'] == 'Network.requestWillBeSent': urls.append(m['params']['request']['url'])
    return urls

def wait_for(cond, seconds=5.0):
    t0 = time.time()
    while not cond():
        if time.time() - t0 > seconds: return False
        time.sleep(0.05)
    return True

def search(browser, query):
    "Type `query` into the search box, as a person would; return the hits as (text, href)"
    box = browser.find_element('id', 'site-search')
    box.clear(); box.send_keys(query)
    wait_for(lambda: browser.find_element('id', 'search-results').text.strip())
    return [(a.text, a.get_attribute('href')) for a in browser.find_elements('css selector', '#search-results a.search-hit')]

def test_search_finds_a_word_and_follows_the_hit(site, browser):
    "The search box finds a word that only one page's prose uses, and its hit opens that page at the section"
    out, _ = site
    browser.set_window_size(1400, 1000)
    browser.get((out/'index.html').as_uri())
    hits = search(browser, 'einsum')
    assert hits, 'no hit for einsum, which the Exercises page explains'
    assert all('exercises.html' in href for _, href in hits), hits
    assert any('#' in href for _, href in hits), 'no hit points at a section of the page'
    hits = search(browser, 'bottleneck ResNet50')           # every word must appear; the best hit is the Bottleneck page
    assert hits and 'bottleneck.html' in hits[0][1], hits[:3]
    assert search(browser, 'qwzxv') == [] and 'No page mentions' in browser.find_element('id', 'search-results').text
    search(browser, 'einsum')
    browser.find_element('css selector', '#search-results a.search-hit').click()
    assert wait_for(lambda: 'exercises.html' in browser.current_url), browser.current_url
    assert browser.find_element('css selector', 'h1.page-title').text == 'Further research, solved'
    browser.get((out/'index.html').as_uri())
    box = browser.find_element('id', 'site-search'); search(browser, 'label smoothing')
    from selenium.webdriver.common.keys import Keys
    box.send_keys(Keys.ENTER)                                 # Enter follows the first hit
    assert wait_for(lambda: 'index.html' not in browser.current_url), 'Enter did not follow the first hit'

def test_search_index_covers_every_page(site):
    out, pages = site
    idx = json.loads((out/'search-index.js').read_text().removeprefix('window.SEARCH_INDEX = ').rstrip().rstrip(';'))
    assert {s['u'].split('#')[0] for s in idx} == {p.name for p in pages}, 'a page is missing from the search index'
    assert not any('KAGGLE_KERNEL_RUN_TYPE' in s['x'] for s in idx), 'a hidden cell (the Colab install cell) is in the index'

def test_previous_and_next_follow_the_reading_order(site, browser):
    out, _ = site
    order = [build_site.front_matter_file(out, name).name for _, name in build_site.sidebar_entries(ROOT/'nbs'/'sidebar.yml')]
    for i, page in enumerate(order):
        browser.get((out/page).as_uri())
        rel = lambda r: [Path(unquote(urlparse(a.get_attribute('href')).path)).name for a in browser.find_elements('css selector', f'nav.pager a[rel={r}]')]
        assert rel('prev') == order[i-1:i], f'{page}: previous link {rel("prev")}, expected {order[i-1:i]}'
        assert rel('next') == order[i+1:i+2], f'{page}: next link {rel("next")}, expected {order[i+1:i+2]}'
    browser.get((out/order[0]).as_uri())
    browser.find_element('css selector', 'nav.pager a[rel=next]').click()
    assert wait_for(lambda: browser.current_url.endswith(order[1])), browser.current_url

def test_narrow_screen_folds_the_sidebar(site, browser):
    "At 420 px the text takes the width, the sidebar opens from a button, and the page does not scroll sideways"
    out, _ = site
    shots = ROOT/'screenshots'; shots.mkdir(exist_ok=True)
    try:
        browser.set_window_size(420, 900)
        for page in ('index.html', 'resblock.html', 'resnet.html'):
            browser.get((out/page).as_uri())
            nav, main = browser.find_element('css selector', 'nav.site-nav'), browser.find_element('css selector', 'main.site-main')
            width = browser.execute_script('return window.innerWidth')
            assert width <= 420, width
            assert not nav.is_displayed(), f'{page}: the sidebar is open on a phone'
            assert main.rect['x'] < 20 and main.rect['width'] >= width - 40, f'{page}: the text does not take the width: {main.rect}'
            sideways = browser.execute_script('return document.documentElement.scrollWidth') - width
            assert sideways <= 1, f'{page}: the page scrolls {sideways} px sideways at {width} px'
            if page == 'resblock.html': assert browser.save_screenshot(str(shots/'narrow-resblock.png'))
            browser.find_element('css selector', 'button.menu-button').click()
            assert wait_for(nav.is_displayed), f'{page}: the menu button does not open the sidebar'
            assert [a.text for a in nav.find_elements('css selector', 'a.page')][:2] == ['resnet_course', 'Pooling and fully convolutional nets']
            if page == 'resblock.html':
                search(browser, 'stem')
                assert browser.save_screenshot(str(shots/'narrow-menu-search.png'))
    finally:
        browser.set_window_size(1400, 1000)

EXTERNAL = re.compile(r"""(?:\b(?:src|href|action|poster|data)\s*=\s*["']?|url\(\s*["']?|@import\s+["']|import\(\s*["'])(?:https?:)?//""", re.I)

def test_nothing_is_loaded_from_the_network(site, browser):
    "No page, script or style names an address on another host to load, and Chromium makes no request that leaves the machine"
    out, _ = site
    for f in sorted(out.iterdir()):
        if f.suffix not in ('.html', '.js', '.css'): continue
        text = f.read_text()
        text = re.sub(r'<a\s[^>]*>', '<a>', text)          # links a reader may follow are not loads
        found = [text[m.start():m.start() + 90] for m in EXTERNAL.finditer(text)]
        assert not found, f'{f.name} loads from the network: {found[:3]}'
    requests_made(browser)
    for page in sorted(out.glob('*.html')):
        browser.get(page.as_uri())
        away = [u for u in requests_made(browser) if not u.startswith(('file:', 'data:', 'blob:', 'about:'))]
        assert not away, f'{page.name} requested {away[:5]}'

def test_no_page_needs_math_rendering(site):
    "The site ships no MathJax: that holds only while no notebook writes TeX math"
    for p in sorted((ROOT/'nbs').glob('*.ipynb')):
        for c in json.loads(p.read_text())['cells']:
            if c['cell_type'] != 'markdown': continue
            src = re.sub(r'`[^`]*`', '', ''.join(c['source']))
            assert not re.search(r'\$\$|\$[^$\s][^$\n]*[^$\s]\$|\\\(|\\\[', src), f'{p.name} writes math: vendor MathJax into the site first'

def test_screenshots_of_the_new_parts(site, browser):
    out, _ = site
    shots = ROOT/'screenshots'; shots.mkdir(exist_ok=True)
    browser.set_window_size(1400, 1000)
    browser.get((out/'resnet.html').as_uri())
    search(browser, 'zero init batchnorm')
    assert browser.save_screenshot(str(shots/'search.png'))
    browser.execute_script("document.querySelector('nav.pager').scrollIntoView()")
    assert browser.save_screenshot(str(shots/'pager.png'))

# Pages whose outputs readers missed, and what their outputs must hold at least: (tables, images).
EVIDENCE = {'12_stem.ipynb': (2, 1), '15_reference.ipynb': (2, 0), '53_data.ipynb': (0, 1)}
CELL_IO = """return Array.from(document.querySelectorAll('.jp-CodeCell')).map(c => {
  const inp = c.querySelector('.jp-InputArea'), out = c.querySelector('.jp-OutputArea');
  return [inp ? inp.textContent : '', out ? out.textContent.trim().length : 0, out ? out.querySelectorAll('table').length : 0,
          out ? Array.from(out.querySelectorAll('img')).filter(i => i.complete && i.naturalWidth > 0).length : 0]; })"""

def test_pages_show_their_evidence(site, browser):
    "On the Stem, Reference and Data pages, every cell meant to show something shows it, and their tables and figures are there"
    from save_outputs import is_display_cell
    out, _ = site
    for name, (n_tables, n_images) in EVIDENCE.items():
        page = build_site.front_matter_file(out, name)
        browser.get(page.as_uri())
        cells = browser.execute_script(CELL_IO)
        empty = [src.strip()[:60] for src, chars, tables, imgs in cells if is_display_cell(src) and not (chars or tables or imgs)]
        assert not empty, f'{page.name}: cells that show nothing: {empty}'
        tables, imgs = sum(c[2] for c in cells), sum(c[3] for c in cells)
        assert tables >= n_tables and imgs >= n_images, f'{page.name}: {tables} tables and {imgs} figures in outputs, expected {n_tables} and {n_images}'

def test_jupyter_lists_the_notebooks_in_reading_order():
    "JupyterLab sorts files by name: the numbered notebooks' names sort in the sidebar's reading order (chapter, review, beyond, foundations)"
    numbered = [name for _, name in build_site.sidebar_entries(ROOT/'nbs'/'sidebar.yml') if name[:2].isdigit()]
    assert numbered == sorted(numbered), f'file names out of reading order: {numbered}'
    assert numbered[0].startswith('10_') and numbered[-1].startswith('60_'), numbered

# Folded answers (issue 32): the questionnaire and the exercises fold each answer in a collapsed Quarto callout, whose fences
# build_site.FoldAnswers turns into a <details> element. How many each page folds: every question's answer, every exercise's.
FOLDED = {'20_questionnaire.ipynb': 22, '21_exercises.ipynb': 7}
FOLD_OPEN = '::: {.callout-tip collapse="true" title="Show the answer"}'

def folded(*sources):
    "The cells FoldAnswers makes of markdown cells `sources` ('code:...' for a code cell), as (type, source) pairs"
    import nbformat
    cells = [nbformat.v4.new_code_cell(s[5:]) if s.startswith('code:') else nbformat.v4.new_markdown_cell(s) for s in sources]
    nb, _ = build_site.FoldAnswers().preprocess(nbformat.v4.new_notebook(cells=cells), {'metadata': {'name': 'a page'}})
    return [(c.cell_type, c.source) for c in nb.cells]

def test_fold_answers_turns_fences_into_details():
    assert folded('**1. A question?**', FOLD_OPEN, 'The answer.', 'code:print(1)', ':::', 'After it.') == [
        ('markdown', '**1. A question?**'), ('raw', '<details class="answer"><summary>Show the answer</summary>'),
        ('markdown', 'The answer.'), ('code', 'print(1)'), ('raw', '</details>'), ('markdown', 'After it.')]
    for cells, problem in (((FOLD_OPEN, 'The answer.'), 'never closed'), (('Text.', ':::'), 'never opened'),
                           ((FOLD_OPEN + '\n\nThe answer.', ':::'), 'give each fence a cell of its own'),
                           (('::: {.callout-note}', 'A note.', ':::'), 'only collapsed callouts')):
        with pytest.raises(ValueError, match=problem): folded(*cells)

def test_every_notebook_folds_cleanly():
    "Each notebook's fences pair up (Quarto would render a stray one as text, or swallow the rest of the page), and the two pages fold every answer"
    import nbformat
    for p in sorted((ROOT/'nbs').glob('*.ipynb')):
        nb, _ = build_site.FoldAnswers().preprocess(nbformat.read(p, as_version=4), {'metadata': {'name': p.name}})
        opened = sum(c.cell_type == 'raw' and c.source.startswith('<details') for c in nb.cells)
        assert opened == FOLDED.get(p.name, 0), f'{p.name}: {opened} folded answers, expected {FOLDED.get(p.name, 0)}'
        fences = [''.join(c['source']) for c in json.loads(p.read_text())['cells'] if ''.join(c['source']).startswith(':::')]
        assert all(f in (FOLD_OPEN, ':::') for f in fences), f'{p.name}: a fence other than the course\'s: {fences}'

ATTEMPTS = r"""return Array.from(document.querySelectorAll('.jp-CodeCell')).filter(c => /check_\w+\((my_\w+|'[^']+', \.\.\.)\)/.test(c.textContent))
  .map(c => [!!c.closest('details'), (c.querySelector('.jp-OutputArea') || {textContent: ''}).textContent.trim()])"""

def test_answers_are_folded_until_opened(site, browser):
    """On the questionnaire and the exercises every answer is closed when the page opens and its content hidden; the questions
    and the attempt cells stand outside the folds; a click on "Show the answer" shows it; a link into a fold opens it"""
    out, _ = site
    shots = ROOT/'screenshots'; shots.mkdir(exist_ok=True)
    browser.set_window_size(1400, 1000)
    for name, n in FOLDED.items():
        page = build_site.front_matter_file(out, name)
        browser.get(page.as_uri())
        folds = browser.find_elements('css selector', 'main details.answer')
        assert len(folds) == n, f'{page.name}: {len(folds)} folded answers, expected {n}'
        assert [f.get_attribute('open') for f in folds] == [None] * n, f'{page.name}: an answer is open when the page opens'
        assert {f.find_element('css selector', 'summary').text for f in folds} == {'Show the answer'}
        contents = [f.find_elements('xpath', './*[not(self::summary)]') for f in folds]
        assert all(contents) and not any(el.is_displayed() for els in contents for el in els), f'{page.name}: an answer is empty, or shows while folded'
        attempts = browser.execute_script(ATTEMPTS)
        assert attempts and all(not inside and shown.startswith('… Not attempted yet') for inside, shown in attempts), f'{page.name}: {attempts}'
        fold = folds[11] if n > 11 else folds[4]
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", fold)
        fold.find_element('css selector', 'summary').click()
        assert wait_for(lambda: all(el.is_displayed() for el in fold.find_elements('xpath', './*[not(self::summary)]'))), f'{page.name}: a click does not open the answer'
        assert browser.save_screenshot(str(shots/f'folded-{page.stem}.png'))
    browser.get(build_site.front_matter_file(out, '20_questionnaire.ipynb').as_uri())
    questions = browser.execute_script(r"return Array.from(document.querySelectorAll('main strong')).filter(s => /^\d+\. /.test(s.textContent)).map(s => !!s.closest('details'))")
    assert questions == [False] * FOLDED['20_questionnaire.ipynb'], 'every question is outside its fold'
    answer12 = browser.find_elements('css selector', 'details.answer')[11].get_attribute('textContent')
    assert 'The shortcut is changed as little as possible' in answer12, 'the twelfth fold holds the answer to question 12'
    page = build_site.front_matter_file(out, '21_exercises.ipynb')
    browser.get(page.as_uri() + '#On-this-CPU:-the-5-epoch-pair')      # a heading inside the label-smoothing fold, as a search hit links it
    assert wait_for(lambda: browser.execute_script("return document.getElementById('On-this-CPU:-the-5-epoch-pair').closest('details').open")), 'a link into a fold leaves it closed'

def test_the_build_names_what_it_cannot_build_from(tmp_path, monkeypatch):
    "Issue 34, item 13: a truncated notebook, and a sidebar entry whose notebook is missing, stop the build before any processing, each named"
    nbs = tmp_path/'nbs'; shutil.copytree(ROOT/'nbs', nbs, ignore=shutil.ignore_patterns('results', '_proc'))
    assert build_site.source_problems(nbs) == []
    pooling = nbs/'10_pooling.ipynb'; pooling.write_text(pooling.read_text()[:5000])
    (nbs/'11_resblock.ipynb').unlink()
    problems = build_site.source_problems(nbs)
    assert any(str(pooling) in p and 'cannot be read' in p for p in problems), problems
    assert any('lists 11_resblock.ipynb' in p for p in problems), problems
    monkeypatch.setattr(build_site, 'NBS', nbs)
    ran = []
    monkeypatch.setattr(build_site, 'process_notebooks', lambda: ran.append(1))
    with pytest.raises(SystemExit, match='10_pooling.ipynb'): build_site.build(tmp_path/'site')
    assert not ran and not (tmp_path/'site').exists()

def test_a_huge_page_is_named_with_its_output(tmp_path):
    "Issue 34, item 13: a page made large by one output image is named, with the notebook and cell that make it so"
    import base64, nbformat
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('1'), nbformat.v4.new_code_cell('plot()', outputs=[nbformat.v4.new_output(
        'display_data', data={'image/png': base64.b64encode(bytes(3 << 20)).decode()})])])
    src = tmp_path/'big.ipynb'; nbformat.write(nb, src)
    assert build_site.page_warning(tmp_path/'big.html', 1 << 20, src) is None
    w = build_site.page_warning(tmp_path/'big.html', 9 << 20, src)
    assert w and 'big.html is 9.0 MB' in w and f'cell 1 of {src}' in w and '4.0 MB of outputs' in w, w
