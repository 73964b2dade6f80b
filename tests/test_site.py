"The offline documentation site, opened page by page in Debian's Chromium, headless."
import shutil, sys
from pathlib import Path
from urllib.parse import urlparse, unquote
import pytest
from conftest import ROOT
sys.path.insert(0, str(ROOT/'scripts'))
import build_site

CHROMIUM_FLAGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                  '--disable-dev-shm-usage', '--no-first-run', '--disable-component-update', '--window-size=1400,1000']

@pytest.fixture(scope='session')   # session: built once, though xdist may run other files' tests in between
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp('site')
    pages = build_site.build(out)
    return out, pages

@pytest.fixture(scope='session')   # session: built once, though xdist may run other files' tests in between
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    chromium, driver = shutil.which('chromium'), shutil.which('chromedriver')
    assert chromium and driver, "Debian's chromium and chromium-driver are needed: apt-get install chromium chromium-driver"
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for f in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]: opts.add_argument(f)
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
DIAGRAMS = {'06_diagrams.ipynb': 1, '11_resblock.ipynb': 1, '13_resnet.ipynb': 1, '14_bottleneck.ipynb': 1}
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
