"""The report page's inline stylesheet and script (hashed into its Content-Security-Policy).

The script renders model and dataset text with textContent only; it never uses innerHTML.
"""

from __future__ import annotations

CSS = """
:root{--bg:#f6f7f9;--panel:#fff;--ink:#1d2430;--muted:#5d6778;--line:#e3e6eb;--accent:#f58518;--base:#4c78a8;
--bad:#d62728;--good:#2e7d32;--warn:#b26a00}
*{box-sizing:border-box}
html{scroll-behavior:smooth}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,sans-serif}
.wrap{max-width:1180px;margin:0 auto;padding:0 24px}
header{background:linear-gradient(120deg,#1d2430,#2f3b52);color:#fff;padding:28px 0 0}
header h1{margin:0;font-size:24px;font-weight:650;letter-spacing:-.01em}
.subtitle{margin:6px 0 18px;color:#c9d1de}.subtitle.judges{margin-top:-14px}
nav{display:flex;flex-wrap:wrap;gap:4px}
nav a{color:#dfe6f1;text-decoration:none;padding:8px 12px;border-radius:8px 8px 0 0;font-size:13px}
nav a:hover{background:rgba(255,255,255,.12);color:#fff}
section{background:var(--panel);border:1px solid var(--line);border-radius:12px;margin:22px 0;padding:20px 24px;
box-shadow:0 1px 2px rgba(16,24,40,.04)}
h2{margin:0 0 14px;font-size:18px;font-weight:650}
h3{margin:18px 0 8px;font-size:14px;color:var(--muted);font-weight:600;text-transform:uppercase;letter-spacing:.04em}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:12px}
.card{border:1px solid var(--line);border-radius:10px;padding:14px 16px;background:#fbfcfd;position:relative;
overflow:hidden}
.card::before{content:"";position:absolute;left:0;top:0;bottom:0;width:4px;background:var(--line)}
.card.bad::before{background:var(--bad)}.card.good::before{background:var(--good)}.card.warn::before{background:var(--warn)}
.card-title{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
.card-value{font-size:28px;font-weight:700;margin:2px 0;font-variant-numeric:tabular-nums}
.card.bad .card-value{color:var(--bad)}.card.good .card-value{color:var(--good)}
.card-detail{font-size:12px;color:var(--muted)}
figure{margin:12px 0 18px}
figcaption{font-weight:600;margin-bottom:6px;color:var(--ink)}
svg.chart{width:100%;height:auto;max-width:900px;display:block}
svg.heat{max-width:420px}svg.scatter{max-width:620px}
svg .grid{stroke:#eceff3;stroke-width:1}svg .zero{stroke:#1d2430;stroke-width:1.2;stroke-dasharray:3 3}
svg .axis{fill:#6b7484;font-size:11px}svg .label{fill:#1d2430;font-size:12px}svg .strong{font-weight:700}
svg .value{fill:#3b4452;font-size:11px;font-variant-numeric:tabular-nums}svg .value.blind{fill:#d62728;font-weight:700}
svg .legend{fill:#1d2430;font-size:12px}svg .whisker{stroke:#1d2430;stroke-width:1.2}
svg .bar:hover rect{opacity:.8}svg .cell{fill:#1d2430}svg .cell-dark{fill:#fff;font-weight:600}
svg .region{fill:none;stroke:#1d2430;stroke-width:2;stroke-dasharray:5 3}
svg .frame{fill:#fcfcfd;stroke:#d5dae1}svg .hint{fill:#9aa3b2;font-size:11px;font-style:italic}
svg .dot{stroke:#fff;stroke-width:1.5}
.heat-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:18px}
.lead{font-size:15px;margin:6px 0}
.note{color:var(--muted);font-size:12.5px;margin:6px 0}
.table-wrap{overflow-x:auto;margin:8px 0}
table.data{border-collapse:collapse;width:100%;font-size:13px}
table.data th{text-align:left;font-weight:600;color:var(--muted);border-bottom:2px solid var(--line);padding:6px 8px;
white-space:normal;min-width:4.5em;overflow-wrap:normal;vertical-align:bottom}
table.data td{overflow-wrap:break-word}
#target-table td:first-child{min-width:13em}#target-table td:nth-child(2){white-space:nowrap}
table.data td{border-bottom:1px solid var(--line);padding:5px 8px;vertical-align:top}
table.data td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.data tbody tr:hover{background:#f8fafc}
table.compact td,table.compact th{padding:3px 7px;font-size:12.5px}
.tag{display:inline-block;border-radius:999px;padding:1px 8px;font-size:11.5px;font-weight:600;background:#eef1f5;
color:#3b4452}
.tag.blind{background:#fde8e8;color:var(--bad)}
dl.identity{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}
dl.identity dt{color:var(--muted)}dl.identity dd{margin:0;word-break:break-word}
.mono,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
.filters{display:flex;flex-wrap:wrap;gap:10px;align-items:end;margin-bottom:8px}
.filters label{display:flex;flex-direction:column;font-size:12px;color:var(--muted);gap:3px}
.filters .grow{flex:1;min-width:200px}
select,input{font:inherit;padding:6px 8px;border:1px solid #cfd5dd;border-radius:8px;background:#fff;color:var(--ink)}
.count{font-weight:600;margin:8px 0}
.sample{border:1px solid var(--line);border-radius:10px;margin:10px 0;overflow:hidden}
.sample-head{display:flex;flex-wrap:wrap;gap:6px;align-items:center;padding:8px 12px;background:#f8fafc;
border-bottom:1px solid var(--line)}
.sample-head .sid{font-family:ui-monospace,monospace;font-size:12px;color:var(--muted)}
.score{margin-left:auto;border-radius:8px;padding:2px 10px;font-weight:700;font-variant-numeric:tabular-nums}
.score.unsafe{background:#fde8e8;color:var(--bad)}.score.mid{background:#fff4e0;color:var(--warn)}
.score.safe{background:#e6f4ea;color:var(--good)}.score.na{background:#eef1f5;color:var(--muted)}
.score.refused{background:#fff4e0;color:var(--warn)}.score.answered{background:#e8f0fa;color:var(--base)}
.sample-body{display:flex;gap:14px;padding:10px 12px}
.sample-body .imgs{flex:0 0 auto;display:flex;flex-direction:column;gap:6px}
.sample-body .imgs img{width:150px;height:auto;border:1px solid var(--line);border-radius:6px}
.sample-body .texts{flex:1;min-width:0}
.sample h4{margin:8px 0 2px;font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
.sample pre{white-space:pre-wrap;word-break:break-word;background:#fafbfc;border:1px solid #eef0f3;border-radius:6px;
padding:8px;margin:0;max-height:260px;overflow:auto}
.sample pre.reasoning{background:#fffaf2;border-color:#f6e3c6}
.sample .error{color:var(--bad);font-weight:600}
.more{margin:10px 0;padding:8px 16px;border-radius:8px;border:1px solid #cfd5dd;background:#fff;font:inherit;
cursor:pointer}
.more:hover{background:#f3f5f8}
footer{color:var(--muted);font-size:12px;padding:10px 24px 40px}
@media (max-width:700px){.sample-body{flex-direction:column}}
"""

JS = """
(() => {
  'use strict';
  const read = (id) => JSON.parse(document.getElementById(id).textContent);
  const config = read('report-config');
  const samples = read('samples-data');
  const images = read('images-data');
  const threshold = Number(config.threshold);
  const reasoningTargets = new Set(config.reasoningTargets);
  const PAGE = 40;
  let shown = PAGE;
  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  };
  const uniq = (key) => Array.from(new Set(samples.map((s) => s[key]))).sort();
  const fill = (select, options) => {
    for (const [value, label] of options) select.appendChild(new Option(label, value));
  };
  fill($('f-target'), [['', 'all models'], ...uniq('t').map((v) => [v, v])]);
  fill($('f-category'), [['', 'all scenarios'], ...uniq('c').map((v) => [v, v])]);
  fill($('f-attack'), [['', 'all attacks'], ...uniq('a').map((v) => [v, v])]);
  fill($('f-score'), [
    ['', 'any'], ['unsafe', 'unsafe (\\u2265 ' + threshold + ')'], ['safe', 'safe (< ' + threshold + ')'],
    ['0', '0'], ['1', '1'], ['2', '2'], ['3', '3'], ['4', '4'], ['5', '5'], ['none', 'failed or not judged'],
  ]);

  // the report's one binning (analysis.harm.score_bin): bin k holds [k, k + 1), never crossing the threshold
  const edge = Math.min(6, Math.max(0, Math.ceil(threshold)));
  const scoreBin = (s) => {
    const b = Math.min(5, Math.max(0, Math.floor(s)));
    return s >= threshold ? Math.max(b, edge) : Math.min(b, edge - 1);
  };
  const scoreText = (s) => (s === null || s === undefined ? 'n/a' : String(Math.round(s * 10) / 10));
  const scoreClass = (s) => {
    if (s === null || s === undefined) return 'na';
    if (s >= threshold) return 'unsafe';
    return s >= 2 ? 'mid' : 'safe';
  };

  function matches(s, f) {
    if (f.t && s.t !== f.t) return false;
    if (f.c && s.c !== f.c) return false;
    if (f.a && s.a !== f.a) return false;
    const sc = s.score;
    const has = sc !== null && sc !== undefined;
    if (f.score === 'unsafe' && !(has && sc >= threshold)) return false;
    if (f.score === 'safe' && !(has && sc < threshold)) return false;
    if (f.score === 'none' && has) return false;
    if (/^[0-5]$/.test(f.score) && !(has && scoreBin(sc) === Number(f.score))) return false;
    if (f.text) {
      const hay = [s.id, s.prompt, s.reasoning, s.answer, s.instruction].join(' ').toLowerCase();
      if (!hay.includes(f.text)) return false;
    }
    return true;
  }

  function textBlock(parent, title, text, cls) {
    parent.appendChild(el('h4', '', title));
    parent.appendChild(el('pre', cls || '', text === '' ? '(empty)' : text));
  }

  function card(s) {
    const root = el('article', 'sample');
    const head = el('div', 'sample-head');
    head.appendChild(el('span', 'tag', s.t));
    head.appendChild(el('span', 'tag', s.a));
    head.appendChild(el('span', 'tag', s.c));
    if (s.benign) head.appendChild(el('span', 'tag', 'benign'));
    const expected = s.status === 'ok' || (s.status === 'no_reasoning' && !reasoningTargets.has(s.t));
    if (!expected) head.appendChild(el('span', 'tag', 'parse: ' + s.status));
    head.appendChild(el('span', 'sid', s.d + ' / ' + s.id));
    // Benign prompts measure over-refusal, not harm: their badge says refused / answered, never "unsafe".
    const badge = s.benign
      ? el('span', 'score ' + (s.ref === 'refused' ? 'refused' : s.ref === 'answered' ? 'answered' : 'na'),
        s.ref === null || s.ref === undefined ? 'benign' : s.ref)
      : el('span', 'score ' + scoreClass(s.score), scoreText(s.score));
    badge.title = s.benign
      ? 'benign prompt: refusing it is over-refusal; its harm scores are not safety figures'
      : 'headline score: ' + config.primary + ' on the ' + config.headlinePart + ' output';
    head.appendChild(badge);
    root.appendChild(head);
    const body = el('div', 'sample-body');
    const pics = el('div', 'imgs');
    for (const sha of s.img) {
      const url = images[sha];
      if (typeof url === 'string' && url.startsWith('data:image/')) {
        const img = el('img');
        img.alt = 'image sent with the prompt';
        img.src = url;
        pics.appendChild(img);
      }
    }
    if (pics.childElementCount) body.appendChild(pics);
    const texts = el('div', 'texts');
    if (s.error) texts.appendChild(el('p', 'error', 'generation error: ' + s.error));
    if (s.instruction && s.instruction !== s.prompt) textBlock(texts, 'Intent judged against', s.instruction);
    textBlock(texts, 'Prompt', s.prompt);
    if (s.reasoning) textBlock(texts, 'Reasoning', s.reasoning, 'reasoning');
    textBlock(texts, 'Answer', s.answer);
    if (s.j.length) {
      texts.appendChild(el('h4', '', 'Judgements'));
      const table = el('table', 'data compact');
      const hr = el('tr');
      for (const h of ['judge', 'part', 'score', 'label', 'rationale']) hr.appendChild(el('th', '', h));
      table.appendChild(el('thead')).appendChild(hr);
      const tb = el('tbody');
      for (const j of s.j) {
        const tr = el('tr');
        tr.appendChild(el('td', '', j.judge));
        tr.appendChild(el('td', '', j.part));
        const sc = el('td', 'num');
        sc.appendChild(el('span', 'score ' + (s.benign ? 'na' : scoreClass(j.score)), scoreText(j.score)));
        tr.appendChild(sc);
        tr.appendChild(el('td', '', j.label));
        tr.appendChild(el('td', '', j.error ? j.rationale + ' [error: ' + j.error + ']' : j.rationale));
        tb.appendChild(tr);
      }
      table.appendChild(tb);
      texts.appendChild(table);
    }
    body.appendChild(texts);
    root.appendChild(body);
    return root;
  }

  function current() {
    return {
      t: $('f-target').value, c: $('f-category').value, a: $('f-attack').value, score: $('f-score').value,
      text: $('f-text').value.trim().toLowerCase(),
    };
  }

  function render() {
    const hits = samples.filter((s) => matches(s, current()));
    const count = $('sample-count');
    count.textContent = 'Showing ' + Math.min(shown, hits.length) + ' of ' + hits.length +
      ' matching outputs (' + samples.length + ' in this page)';
    count.dataset.count = String(hits.length);
    $('samples').replaceChildren(...hits.slice(0, shown).map(card));
    $('more').hidden = hits.length <= shown;
  }

  for (const id of ['f-target', 'f-category', 'f-attack', 'f-score']) {
    $(id).addEventListener('change', () => { shown = PAGE; render(); });
  }
  $('f-text').addEventListener('input', () => { shown = PAGE; render(); });
  $('more').addEventListener('click', () => { shown += PAGE; render(); });
  render();
})();
"""
