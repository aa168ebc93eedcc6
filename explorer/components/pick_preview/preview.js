// Browser side of explorer/components/pick_preview (see its __init__.py): hover a point of the test-set
// scatter -> its test image and reconstruction drawn here at once; click -> the same, then the server is
// told the pick once (a trigger value). No server round trip before the images show.
//
// The images come from two sprites per model (28x28 tiles, `cols` per row) that the server sends once
// when asked (`need`); this module keeps them for the page's lifetime (the module is evaluated once).
const TILE = 28;
const CHART_WAIT_MS = 30000;  // no scatter by then: report it, and the server falls back to its own pick
const ASK_AGAIN_MS = 10000;  // sprites asked for and not here after this long: ask again
const KEEP = 200;  // timing samples kept per kind

const G = window.__latentPick || (window.__latentPick = {
  models: new Map(),  // model key -> Promise of {orig, recon (decoded sprite images), labels, names, cols, n}
  ready: new Map(),  // model key -> the resolved value, for drawing synchronously
  asked: new Map(),  // model key -> when its sprites were last asked for
  pending: null,  // {model, row}: a click the server has not answered yet
  serverPick: new Map(),  // model key -> the pick the server last sent
  // read by tests and bench/ui_latency.py: per hover/click {row, t0 (the DOM event), drawn, painted}
  stats: {hover: [], click: [], attached: 0, row: null, kind: null},
});

function rowOf(point) {
  let cd = point ? point.customdata : undefined;
  if (cd !== null && typeof cd === 'object') cd = cd[0];  // [row], or a typed-array row
  return Number.isInteger(cd) && cd >= 0 ? cd : null;
}

function loadSprites(d) {
  const load = (url) => {
    const img = new Image();
    img.src = url;
    return img.decode().then(() => img);
  };
  return Promise.all([load(d.orig), load(d.recon)]).then(([orig, recon]) => {
    // The first draw from a big image costs a rasterisation (~100 ms here): pay it now, not on a hover.
    const ctx = document.createElement('canvas').getContext('2d');
    for (const img of [orig, recon]) ctx.drawImage(img, 0, 0, TILE, TILE, 0, 0, TILE, TILE);
    return {orig, recon, labels: d.labels || [], names: d.names || [], cols: d.cols, n: d.n};
  });
}

export default function (component) {
  const {data, parentElement, setTriggerValue} = component;
  const root = parentElement.querySelector('.pick-preview');
  const canvas = {orig: root.querySelector('canvas.orig'), recon: root.querySelector('canvas.recon')};
  const title = root.querySelector('.title');
  const note = root.querySelector('.note');
  const key = data.model;
  let live = true;
  let gd = null;
  let hovering = null;

  // The pick to show: the server's, unless a click is still on its way to the server.
  const last = G.serverPick.get(key);
  G.serverPick.set(key, data.pick);
  if (G.pending && (G.pending.model !== key || (last !== undefined && data.pick !== last))) G.pending = null;
  let pick = G.pending ? G.pending.row : data.pick;

  const record = (kind, row, t0) => {
    const s = {row, t0, drawn: performance.now()};
    const list = G.stats[kind];
    list.push(s);
    if (list.length > KEEP) list.splice(0, list.length - KEEP);
    requestAnimationFrame(() => setTimeout(() => { s.painted = performance.now(); }, 0));
  };

  function draw(row, kind, t0) {
    const sp = G.ready.get(key);
    if (!sp) {
      root.dataset.state = 'loading';
      title.textContent = 'Loading the test images…';
      note.textContent = '';
      return;
    }
    if (row === null || row === undefined || row >= sp.n) {
      root.dataset.state = 'empty';
      delete root.dataset.row;
      title.textContent = 'Hover a point to see its test image';
      note.textContent = 'and its reconstruction; click it to pick it.';
      return;
    }
    const sx = (row % sp.cols) * TILE;
    const sy = Math.floor(row / sp.cols) * TILE;
    for (const [name, img] of [['orig', sp.orig], ['recon', sp.recon]]) {
      const ctx = canvas[name].getContext('2d');
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(img, sx, sy, TILE, TILE, 0, 0, TILE, TILE);
    }
    const label = sp.labels[row];
    const name = label === undefined ? '?' : (sp.names[label] ?? String(label));
    const nTest = data.n_test ?? sp.n;
    const which = row < nTest ? `test #${row}` : `train #${row - nTest}`;
    const image = row < nTest ? `test image #${row}` : `training image #${row - nTest}`;
    title.textContent = `${which} · label ${name}`;
    canvas.orig.setAttribute('aria-label', `${image}, label ${name}`);
    canvas.recon.setAttribute('aria-label', `reconstruction of ${image} (label ${name})`);
    note.textContent = kind === 'hover' ? 'under the pointer (click to pick it)' : 'the pick';
    root.dataset.state = kind === 'hover' ? 'hover' : 'pick';
    root.dataset.row = String(row);
    G.stats.row = row;
    G.stats.kind = kind;
    if (t0 !== undefined) record(kind, row, t0);
  }

  const stamp = (ev) => (ev && ev.event && ev.event.timeStamp) || performance.now();
  const onHover = (ev) => {
    const row = rowOf(ev && ev.points && ev.points[0]);
    if (row === null) return;
    hovering = row;
    draw(row, 'hover', stamp(ev));
  };
  const onUnhover = () => {
    hovering = null;
    draw(pick, 'pick');
  };
  const onClick = (ev) => {
    const row = rowOf(ev && ev.points && ev.points[0]);
    if (row === null) return;
    pick = row;
    G.pending = {model: key, row};
    draw(row, 'click', stamp(ev));
    setTriggerValue('pick', row);  // the server's pick, sliders and URL follow; nothing here waits for it
  };

  // The scatter: Streamlit's Plotly chart with this widget key, in this document.
  // Streamlit's chart selects on a click (clickmode "event+select"): a repaint of every WebGL point and a
  // selection event to the server. The click is ours now: make it a plain Plotly click just before each
  // press (Plotly reads the mode at click time; a re-plot resets it, so it is set every time).
  const ownClicks = () => {
    const full = gd && gd._fullLayout;
    if (full && typeof full.clickmode === 'string' && full.clickmode.includes('select')) full.clickmode = 'event';
  };
  const detach = () => {
    if (gd) gd.removeEventListener('pointerdown', ownClicks, true);
    if (gd && typeof gd.removeListener === 'function') {
      gd.removeListener('plotly_hover', onHover);
      gd.removeListener('plotly_unhover', onUnhover);
      gd.removeListener('plotly_click', onClick);
    }
    gd = null;
  };
  const started = performance.now();
  let reported = false;
  const attach = () => {
    const box = document.querySelector(`.st-key-${CSS.escape(data.chart)}`);
    const el = box && box.querySelector('.js-plotly-plot');
    const found = el && typeof el.on === 'function' ? el : null;
    if (found !== gd) {  // first found, or the chart was rebuilt
      detach();
      gd = found;
      if (gd) {
        gd.on('plotly_hover', onHover);
        gd.on('plotly_unhover', onUnhover);
        gd.on('plotly_click', onClick);
        gd.addEventListener('pointerdown', ownClicks, true);
        G.stats.attached += 1;
      }
    }
    if (!gd && !reported && performance.now() - started > CHART_WAIT_MS) {
      reported = true;
      setTriggerValue('error', `the test-set scatter (widget key ${data.chart}) was not found in the page`);
    }
  };
  attach();
  const timer = setInterval(() => { attach(); ask(); }, 250);

  // The sprites: sent with this render, already here, or to ask for.
  if (data.orig && data.recon && !G.models.has(key)) {
    G.models.set(key, loadSprites(data));
    for (const k of [...G.models.keys()].slice(0, -2)) { G.models.delete(k); G.ready.delete(k); }
  }
  if (G.models.has(key)) {
    G.models.get(key).then((sp) => {
      G.ready.set(key, sp);
      if (live) draw(hovering ?? pick, hovering === null ? 'pick' : 'hover');
    }, (e) => {
      G.models.delete(key);
      if (live) setTriggerValue('error', 'the test images could not be decoded: ' + String(e && e.message || e));
    });
  }
  const ask = () => {  // again if the answer got lost (e.g. its run was interrupted by another)
    if (live && !G.models.has(key) && !(performance.now() - (G.asked.get(key) ?? -Infinity) < ASK_AGAIN_MS)) {
      G.asked.set(key, performance.now());
      setTriggerValue('need', key);
    }
  };
  ask();
  draw(pick, 'pick');

  return () => {
    live = false;
    clearInterval(timer);
    detach();
  };
}
