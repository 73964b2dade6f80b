// The offline site's behaviour: the menu button on narrow screens, and search over the index in search-index.js.
(function () {
  var body = document.body, button = document.querySelector('.menu-button');
  if (button) button.addEventListener('click', function () {
    var open = body.classList.toggle('nav-open');
    button.setAttribute('aria-expanded', open ? 'true' : 'false');
  });

  // A link to a heading inside a folded answer (a search hit, say) opens the fold, so that the page can scroll to it
  // (Chromium does this by itself; browsers that do not get it here).
  function openFoldsAround() {
    var target = location.hash && document.getElementById(decodeURIComponent(location.hash.slice(1)));
    for (var el = target; el; el = el.parentElement) if (el.tagName === 'DETAILS') el.open = true;
    if (target) target.scrollIntoView();
  }
  window.addEventListener('hashchange', openFoldsAround);
  openFoldsAround();

  var box = document.getElementById('site-search'), out = document.getElementById('search-results');
  var index = window.SEARCH_INDEX || [];
  if (!box || !out) return;

  function escapeHtml(s) { return s.replace(/[&<>"]/g, function (c) { return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c]; }); }

  // Every word of the query must appear in a section (its page title, heading or text); headings and titles weigh most.
  function search(query) {
    var words = query.toLowerCase().split(/\s+/).filter(function (w) { return w.length > 1; });
    if (!words.length) return [];
    var hits = [];
    index.forEach(function (s) {
      var title = s.t.toLowerCase(), heading = s.h.toLowerCase(), text = s.x.toLowerCase(), all = title + ' ' + heading + ' ' + text;
      if (!words.every(function (w) { return all.indexOf(w) >= 0; })) return;
      var score = 0;
      words.forEach(function (w) {
        if (heading.indexOf(w) >= 0) score += 6;
        if (title.indexOf(w) >= 0) score += 3;
        score += Math.min(5, text.split(w).length - 1);
      });
      hits.push({score: score, s: s, at: text.indexOf(words[0])});
    });
    hits.sort(function (a, b) { return b.score - a.score; });
    return hits.slice(0, 15);
  }

  function snippet(hit) {
    var x = hit.s.x, at = Math.max(0, hit.at);
    var start = Math.max(0, at - 50), piece = x.slice(start, start + 140);
    return (start > 0 ? '…' : '') + piece + (start + 140 < x.length ? '…' : '');
  }

  function render() {
    var q = box.value.trim();
    if (!q) { out.innerHTML = ''; return; }
    var hits = search(q);
    out.innerHTML = hits.length ? hits.map(function (h) {
      var where = h.s.h && h.s.h !== h.s.t ? h.s.t + ' › ' + h.s.h : h.s.t;
      return '<a class="search-hit" href="' + escapeHtml(h.s.u) + '"><b>' + escapeHtml(where) + '</b><span>' + escapeHtml(snippet(h)) + '</span></a>';
    }).join('') : '<div class="none">No page mentions ' + escapeHtml(q) + '.</div>';
  }

  box.addEventListener('input', render);
  box.addEventListener('keydown', function (e) {
    if (e.key !== 'Enter') return;
    var first = out.querySelector('a.search-hit');
    if (first) window.location.href = first.getAttribute('href');
  });
})();
