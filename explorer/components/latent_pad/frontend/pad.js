// The latent pad: sliders (and, for a 2-D model, a draggable latent plane) whose decoded digit follows the
// pointer. The decoder runs here with TensorFlow.js core ops (WASM backend, CPU fallback); the server hears
// about z only on release (pointer up, a slider's `change` after a drag), or once the keys stop: arrow keys
// (on the pad or a focused slider) commit KEY_QUIET_MS after the last key, so ten presses are one server
// run, not ten runs whose images the next run drops while the browser still fetches them (404s).
//
// Streamlit's v1 component protocol, by hand (what streamlit-component-lib does):
//   page -> us   {type: 'streamlit:render', args, dfs, disabled, theme}   (bytes args arrive as Uint8Array)
//   us -> page   {isStreamlitMessage: true, type: 'streamlit:componentReady', apiVersion: 1}
//                {isStreamlitMessage: true, type: 'streamlit:setComponentValue', value, dataType: 'json'}
//                {isStreamlitMessage: true, type: 'streamlit:setFrameHeight', height}
//
// Values we send (each with a `seq` and this frame's `nonce`, so every one is new to the server):
//   {z: [...]}       the committed latent vector (release / change / key up)
//   {need: model}    render args named a model whose weights we do not hold: send them again
//   {error: text}    the decoder could not start: the server falls back to its own sliders
(() => {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const post = (type, data) => window.parent.postMessage(Object.assign({isStreamlitMessage: true, type}, data), '*');
  const nonce = Math.random().toString(36).slice(2);
  let seq = 0;

  const stats = {sent: 0, decodes: 0, decodeMs: [], latency: [], drawnAt: []};  // read by tests and bench/
  const S = {
    args: null, modelKey: null, net: null, d: 0, bounds: [], extent: null, step: 0.01,
    z: new Float32Array(0), preview: null, rev: null, dragging: false, committed: null,
    asked: new Set(), lastKey: null, backend: null, background: null,
  };
  const models = new Map();  // model key -> {layers, d}: weights arrive once per model and stay here

  const setValue = (value) => {
    stats.sent += 1;
    post('streamlit:setComponentValue', {value: Object.assign(value, {seq: ++seq, nonce}), dataType: 'json'});
  };
  const status = (text, isError) => { const el = $('status'); el.textContent = text; el.classList.toggle('error', !!isError); };

  // ------------------------------------------------------------------------------------- the decoder
  const ACT = {relu: (x) => tf.relu(x), sigmoid: (x) => tf.sigmoid(x), tanh: (x) => tf.tanh(x),
               linear: (x) => x};

  function buildNet(spec, bytes) {
    // One aligned copy of the weights, then one tensor per array (views into it).
    const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    const layers = spec.map((l) => {
      if (l.activation && !(l.activation in ACT)) throw new Error(`unsupported activation ${l.activation}`);
      const w = (l.weights || []).map((a) => tf.tensor(all.subarray(a.offset, a.offset + a.size), a.shape, 'float32'));
      return Object.assign({}, l, {w});
    });
    return {layers, d: spec[0].weights[0].shape[0]};
  }

  function forward(net, z2d) {  // z2d: tensor (N, d) -> (N, 28, 28, 1)
    let x = z2d;
    for (const l of net.layers) {
      if (l.kind === 'dense') {
        x = tf.add(tf.matMul(x, l.w[0]), l.w[1]);
      } else if (l.kind === 'reshape') {
        x = tf.reshape(x, [x.shape[0], ...l.shape]);
      } else if (l.kind === 'conv2d_transpose') {
        const [n, h, w] = x.shape, [kh, kw] = l.kernel_size, [sh, sw] = l.strides;
        const same = l.padding === 'same';
        const out = [n, same ? h * sh : (h - 1) * sh + kh, same ? w * sw : (w - 1) * sw + kw, l.filters];
        x = tf.add(tf.conv2dTranspose(x, l.w[0], out, [sh, sw], l.padding), l.w[1]);
      } else {
        throw new Error(`unsupported layer ${l.kind}`);
      }
      if (l.activation) x = ACT[l.activation](x);
    }
    return x;
  }

  // The first decodes of a new decoder are slow (the backend sets up its kernels: ~260 ms here against
  // 13-16 ms once warm). They run here, uncounted, so "ms per digit" reports the figure a user feels.
  const WARM_UP = 3;
  function warmUp(net) {
    const t = performance.now(), z = new Float32Array(net.d);
    for (let i = 0; i < WARM_UP; i++) decodeMany(net, [z]);
    stats.warmUpMs = performance.now() - t;
  }

  function decodeMany(net, zs) {  // zs: array of arrays -> Float32Array (N * 784)
    const out = tf.tidy(() => forward(net, tf.tensor2d(zs.map((z) => Array.from(z)), [zs.length, net.d])));
    const px = out.dataSync();
    out.dispose();
    return px;
  }

  async function initBackend() {
    if (typeof tf === 'undefined' || typeof tf.tensor !== 'function' || !tf.wasm
        || typeof tf.wasm.setWasmPaths !== 'function') {
      const why = window.__padBootErrors.length ? window.__padBootErrors.join('; ') : 'the script did not run';
      throw new Error(`TensorFlow.js did not load (${why})`);
    }
    // Only the SIMD binary is vendored: without WASM SIMD (or with threads, which Streamlit's page cannot
    // offer: no cross-origin isolation) we use the CPU backend instead.
    const simd = new URL('vendor/tfjs-backend-wasm-simd.wasm', location.href).href;
    tf.wasm.setWasmPaths({'tfjs-backend-wasm.wasm': simd, 'tfjs-backend-wasm-simd.wasm': simd,
                          'tfjs-backend-wasm-threaded-simd.wasm': simd});
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    let ok = false;
    const forced = new URLSearchParams(location.search).get('backend');  // ?backend=cpu (benchmarks)
    if (forced !== 'cpu') {
      try { ok = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) && await tf.setBackend('wasm'); }
      catch (e) { ok = false; }
    }
    if (!ok) ok = await tf.setBackend('cpu');  // no WASM SIMD here: the plain JS kernels
    if (!ok) throw new Error('no TensorFlow.js backend (wasm, cpu) could start');
    await tf.ready();
    return tf.getBackend();
  }

  // ------------------------------------------------------------------------------------- drawing
  const digit = $('digit'), pad = $('pad');
  const off = document.createElement('canvas');
  off.width = off.height = 28;
  const offCtx = off.getContext('2d');
  const img = offCtx.createImageData(28, 28);

  function fitCanvas(c) {
    const px = Math.max(1, Math.round(c.clientWidth * (window.devicePixelRatio || 1)));
    if (c.width !== px || c.height !== px) { c.width = px; c.height = px; }
  }

  function paintDigit(px) {
    for (let i = 0; i < 784; i++) {
      const v = Math.round(Math.min(1, Math.max(0, px[i])) * 255);
      img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v;
      img.data[4 * i + 3] = 255;
    }
    offCtx.putImageData(img, 0, 0);
    fitCanvas(digit);
    const ctx = digit.getContext('2d');
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(off, 0, 0, digit.width, digit.height);
  }

  const toPx = (zx, zy) => {
    const [x0, x1, y0, y1] = S.extent;
    return [(zx - x0) / (x1 - x0) * pad.width, (y1 - zy) / (y1 - y0) * pad.height];
  };

  // Axis ticks: "nice" steps (1, 2, 2.5 or 5 times a power of ten) giving 4 to 7 ticks over the extent.
  function niceTicks(lo, hi) {
    const span = hi - lo;
    if (!(span > 0)) return [];
    const raw = span / 5, p = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => span / s <= 7);
    const out = [];
    for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + 1e-9 * span; v += step) {
      out.push(Math.abs(v) < 1e-9 * span ? 0 : v);
    }
    return out;
  }
  const tickText = (v) => (v < 0 ? '−' : '') + String(+Math.abs(v).toFixed(2));
  let axesKey = null;
  function paintAxes() {  // the tick labels beside the pad (HTML, placed in % of the pad's side)
    const key = S.extent ? S.extent.join(',') : '';
    if (key === axesKey) return;
    axesKey = key;
    const [x0, x1, y0, y1] = S.extent;
    const label = (v, where) => {
      const el = document.createElement('span');
      el.className = 'tick';
      el.textContent = tickText(v);
      el.dataset.value = v;
      el.style[where[0]] = where[1];
      return el;
    };
    const xt = $('xTicks'), yt = $('yTicks');
    xt.replaceChildren(...niceTicks(x0, x1).map((v) => label(v, ['left', `${100 * (v - x0) / (x1 - x0)}%`])));
    const title = yt.querySelector('.ytitle');
    yt.replaceChildren(title, ...niceTicks(y0, y1).map((v) => label(v, ['top', `${100 * (y1 - v) / (y1 - y0)}%`])));
  }

  function paintPad() {
    if (S.d !== 2 || !S.extent) return;
    paintAxes();
    fitCanvas(pad);
    const ctx = pad.getContext('2d'), W = pad.width, H = pad.height, r = window.devicePixelRatio || 1;
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, W, H);
    if (S.background && S.background.complete && S.background.naturalWidth) {
      ctx.globalAlpha = 0.5;
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(S.background, 0, 0, W, H);
      ctx.globalAlpha = 1;
    }
    // outside the sliders' range (when one dimension's range is narrower than the square)
    const [bx0, by0] = toPx(-S.bounds[0], S.bounds[1]), [bx1, by1] = toPx(S.bounds[0], -S.bounds[1]);
    ctx.fillStyle = 'rgba(240, 242, 246, 0.8)';
    ctx.fillRect(0, 0, W, by0); ctx.fillRect(0, by1, W, H - by1);
    ctx.fillRect(0, by0, bx0, by1 - by0); ctx.fillRect(bx1, by0, W - bx1, by1 - by0);
    // tick marks on the four edges, and faint grid lines through the ticks
    const [ex0, ex1, ey0, ey1] = S.extent, tick = 5 * r;
    ctx.strokeStyle = 'rgba(49, 51, 63, 0.10)'; ctx.lineWidth = r;
    ctx.beginPath();
    for (const v of niceTicks(ex0, ex1)) { const [x] = toPx(v, 0); ctx.moveTo(x, 0); ctx.lineTo(x, H); }
    for (const v of niceTicks(ey0, ey1)) { const [, y] = toPx(0, v); ctx.moveTo(0, y); ctx.lineTo(W, y); }
    ctx.stroke();
    ctx.strokeStyle = 'rgba(49, 51, 63, 0.55)';
    ctx.beginPath();
    for (const v of niceTicks(ex0, ex1)) {
      const [x] = toPx(v, 0); ctx.moveTo(x, H); ctx.lineTo(x, H - tick); ctx.moveTo(x, 0); ctx.lineTo(x, tick);
    }
    for (const v of niceTicks(ey0, ey1)) {
      const [, y] = toPx(0, v); ctx.moveTo(0, y); ctx.lineTo(tick, y); ctx.moveTo(W, y); ctx.lineTo(W - tick, y);
    }
    ctx.stroke();
    const [cx, cy] = toPx(S.z[0], S.z[1]);
    ctx.strokeStyle = 'rgba(214, 39, 40, 0.45)';
    ctx.lineWidth = r;
    ctx.beginPath(); ctx.moveTo(0, cy); ctx.lineTo(W, cy); ctx.moveTo(cx, 0); ctx.lineTo(cx, H); ctx.stroke();
    ctx.fillStyle = '#d62728'; ctx.strokeStyle = '#fff'; ctx.lineWidth = 2 * r;
    ctx.beginPath(); ctx.arc(cx, cy, 5.5 * r, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
    if (S.preview) {
      const [hx, hy] = toPx(S.preview[0], S.preview[1]);
      ctx.strokeStyle = 'rgba(49, 51, 63, 0.8)'; ctx.lineWidth = 1.5 * r;
      ctx.beginPath(); ctx.arc(hx, hy, 7 * r, 0, 2 * Math.PI); ctx.stroke();
    }
  }

  const fmt = (v) => (v >= 0 ? '+' : '−') + Math.abs(v).toFixed(2);
  function paintText() {
    const shown = S.preview || S.z;
    $('digitCap').innerHTML = (S.preview ? 'preview under the pointer' : 'decoder(z), in your browser')
      + '<br><b>z = [' + Array.from(shown, fmt).join(', ') + ']</b>';
    const rows = $('sliders').children;
    for (let i = 0; i < rows.length && i < S.d; i++) {
      const input = rows[i].querySelector('input');
      if (document.activeElement !== input || !S.draggingSlider) input.value = S.z[i];
      input.style.setProperty('--p', `${(100 * (S.z[i] + S.bounds[i]) / (2 * S.bounds[i])).toFixed(2)}%`);
      rows[i].querySelector('output').textContent = fmt(S.z[i]);
    }
  }

  // ------------------------------------------------------------------------------------- frames
  // Input handlers only change state and ask for a frame; each frame decodes the latest z once.
  let raf = 0, inputAt = null;
  function request(t) {
    if (t != null && inputAt == null) inputAt = t;
    if (!raf) raf = requestAnimationFrame(frame);
  }
  function frame() {
    raf = 0;
    const t0 = inputAt;
    inputAt = null;
    paintPad();
    paintText();
    const net = S.net, z = S.preview || S.z;
    if (!net) return;
    const key = S.modelKey + '|' + Array.from(z).join(',');
    if (key === S.lastKey) return;
    const ts = performance.now();
    const px = decodeMany(net, [z]);
    paintDigit(px);
    const drawn = performance.now();
    S.lastKey = key;
    stats.decodes += 1;
    stats.decodeMs.push(drawn - ts);
    stats.drawnAt.push(drawn);
    if (stats.decodes % 10 === 1) showStatus();
    if (t0 != null) requestAnimationFrame(() => stats.latency.push([t0, drawn, performance.now()]));
    if (stats.decodeMs.length > 5000) { stats.decodeMs.splice(0, 2500); stats.drawnAt.splice(0, 2500); }
  }

  const KEY_QUIET_MS = 400;  // keys commit this long after the last one (a tap train is one commit)
  let keyTimer = 0;
  function commitSoon() {
    clearTimeout(keyTimer);
    keyTimer = setTimeout(commit, KEY_QUIET_MS);
  }
  function cancelSoon() { clearTimeout(keyTimer); keyTimer = 0; }

  function commit() {
    cancelSoon();
    const z = Array.from(S.z);
    if (S.committed && S.committed.every((v, i) => v === z[i])) return;
    S.committed = z;
    setValue({z});
  }

  // ------------------------------------------------------------------------------------- inputs
  const clampDim = (v, i) => Math.min(S.bounds[i], Math.max(-S.bounds[i], v));
  const q = (v) => Math.round(v * 1000) / 1000;  // the caption's precision: what you see is what is sent

  function pointerZ(e) {
    const rect = pad.getBoundingClientRect(), [x0, x1, y0, y1] = S.extent;
    const fx = (e.clientX - rect.left) / rect.width, fy = (e.clientY - rect.top) / rect.height;
    return [q(clampDim(x0 + fx * (x1 - x0), 0)), q(clampDim(y1 - fy * (y1 - y0), 1))];
  }

  pad.addEventListener('pointerdown', (e) => {
    if (e.button !== 0 || !S.extent) return;
    const t = performance.now();
    try { pad.setPointerCapture(e.pointerId); } catch (err) { /* a synthetic pointer (benchmarks) */ }
    pad.focus({preventScroll: true});
    S.dragging = true;
    S.preview = null;
    S.z.set(pointerZ(e));
    request(t);
    e.preventDefault();
  });
  pad.addEventListener('pointermove', (e) => {
    if (!S.extent) return;
    const t = performance.now();
    if (S.dragging) S.z.set(pointerZ(e));
    else if (e.pointerType === 'mouse') S.preview = pointerZ(e);
    else return;
    request(t);
  });
  const release = (e) => {
    if (!S.dragging) return;
    S.dragging = false;
    if (e.type === 'pointerup') S.z.set(pointerZ(e));
    request(performance.now());
    commit();
  };
  pad.addEventListener('pointerup', release);
  pad.addEventListener('pointercancel', release);
  pad.addEventListener('pointerleave', () => {
    if (S.dragging || !S.preview) return;
    S.preview = null;  // back to the cross's digit
    request(performance.now());
  });
  const ARROWS = {ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowDown: [1, -1], ArrowUp: [1, 1]};
  pad.addEventListener('keydown', (e) => {
    const a = ARROWS[e.key];
    if (!a) return;
    const [i, sign] = a;
    S.z[i] = q(clampDim(S.z[i] + sign * (e.shiftKey ? 0.25 : 0.05), i));
    cancelSoon();  // a held key repeats: commit only after it is released and the keys stay quiet
    request(performance.now());
    e.preventDefault();
  });
  pad.addEventListener('keyup', (e) => { if (ARROWS[e.key]) commitSoon(); });

  function buildSliders() {
    const box = $('sliders');
    box.innerHTML = '';
    box.classList.toggle('scroll', S.d > 6);
    for (let i = 0; i < S.d; i++) {
      const row = document.createElement('div');
      row.className = 'sl';
      row.innerHTML = `<label for="z${i}">z[${i}]</label><input type="range" id="z${i}" aria-label="z[${i}]">`
        + '<output></output>';
      const input = row.querySelector('input');
      input.min = -S.bounds[i]; input.max = S.bounds[i]; input.step = S.step; input.value = S.z[i];
      input.addEventListener('input', () => {
        const t = performance.now();
        S.z[i] = q(clampDim(parseFloat(input.value), i));
        S.preview = null;
        request(t);
      });
      // A change from the keyboard (arrows, Page Up/Down, Home/End) waits for the keys to stop; one from
      // the pointer (a drag's release, a click on the track) commits at once.
      let keyed = false;
      input.addEventListener('keydown', () => { keyed = true; cancelSoon(); });
      input.addEventListener('change', () => { if (keyed) commitSoon(); else commit(); });
      input.addEventListener('pointerdown', () => { keyed = false; S.draggingSlider = true; });
      input.addEventListener('pointerup', () => { S.draggingSlider = false; });
      box.appendChild(row);
    }
  }

  // ------------------------------------------------------------------------------------- render args
  const sameList = (a, b) => a && b && a.length === b.length && a.every((v, i) => v === b[i]);

  function apply(args) {
    S.args = args;
    const key = args.model;
    if (args.spec && args.weights && !models.has(key)) {
      const t = performance.now();
      const net = buildNet(args.spec, args.weights);
      stats.buildMs = performance.now() - t;
      warmUp(net);
      models.set(key, net);
      while (models.size > 2) {  // keep the two latest models
        const [old] = models.keys();
        models.get(old).layers.forEach((l) => l.w.forEach((w) => w.dispose()));
        models.delete(old);
      }
    }
    if (args.background && (!S.background || S.background.dataset.key !== key)) {
      const im = new Image();
      im.dataset.key = key;
      im.onload = () => request(null);
      im.src = args.background;
      S.background = im;
    }
    const modelChanged = key !== S.modelKey;
    const shapeChanged = args.d !== S.d || !sameList(args.bounds, S.bounds);
    S.modelKey = key;
    S.net = models.get(key) || null;
    S.d = args.d;
    S.bounds = args.bounds;
    S.extent = args.extent || null;
    S.step = args.step || 0.01;
    if (modelChanged || args.rev !== S.rev) {  // the server moved z (a pick, a new model): follow it
      cancelSoon();  // a pending key commit is for the z the server just replaced
      S.rev = args.rev;
      S.z = Float32Array.from(args.z);
      S.committed = Array.from(S.z);
      S.preview = null;
      S.dragging = false;
    }
    if (shapeChanged) buildSliders();
    $('padTile').classList.toggle('hidden', S.d !== 2 || !S.extent);
    $('root').classList.toggle('two', S.d === 2 && !!S.extent);
    if (!S.net && !S.asked.has(key)) { S.asked.add(key); setValue({need: key}); }
    showStatus();
    S.lastKey = null;
    request(null);
    height();
  }

  function showStatus() {
    if (!S.net) { status('Loading the decoder…'); return; }
    status(`Decoded in your browser: TensorFlow.js ${tf.version_core}, ${S.backend} backend`
      + (stats.decodeMs.length ? ` · ${median(stats.decodeMs.slice(-30)).toFixed(1)} ms per digit`
        + (stats.decodeMs.length > 1 ? ` (median of ${Math.min(30, stats.decodeMs.length)})` : '') : '')
      + ' · the server hears z when you let go');
  }
  const median = (a) => { const s = a.slice().sort((x, y) => x - y); return s.length ? s[s.length >> 1] : NaN; };
  let lastHeight = 0;
  function height() {
    const h = Math.ceil(document.documentElement.getBoundingClientRect().height) + 2;
    if (h !== lastHeight) { lastHeight = h; post('streamlit:setFrameHeight', {height: h}); }
  }
  new ResizeObserver(() => { height(); S.lastKey = null; request(null); }).observe(document.body);

  // ------------------------------------------------------------------------------------- start
  let started = false, waiting = null;
  const safeApply = (args) => {
    try { apply(args); } catch (e) {
      const msg = String(e && e.message || e);
      status('The in-browser decoder could not start: ' + msg, true);
      setValue({error: msg});
    }
  };
  initBackend().then((b) => {
    S.backend = b;
    started = true;
    if (waiting) safeApply(waiting);
  }, (e) => {
    const msg = String(e && e.message || e);
    status('The in-browser decoder could not start: ' + msg, true);
    setValue({error: msg});
  });
  window.addEventListener('message', (ev) => {
    const m = ev.data;
    if (!m || m.type !== 'streamlit:render') return;
    if (started) safeApply(m.args); else waiting = m.args;
  });

  // Test and benchmark hook: decode in this page exactly as the pad does.
  window.latentPad = {
    stats, state: S,
    get ready() { return !!S.net; },
    get backend() { return S.backend; },
    get z() { return Array.from(S.z); },
    decode(zs) {
      if (!S.net) throw new Error('no decoder yet');
      const many = Array.isArray(zs[0]) ? zs : [zs];
      return Array.from(decodeMany(S.net, many));
    },
  };
  post('streamlit:componentReady', {apiVersion: 1});
  height();
})();
