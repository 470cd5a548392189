// Headroom's dashboard: polls /v1/dashboard (at most every 2 s, only while
// the page is visible) and draws what it says. Plain script, no build step,
// nothing loaded from elsewhere; every text goes in through textContent.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const TOKEN = 'headroom-ops-token';
  const RANGE = { hour: 3600e3, day: 86400e3 };
  const KEEP = { hour: 1800, day: 1440 };
  const F = { limit: 0, effective: 1, used: 2, reserved: 3, queued: 4 };
  const NF = 5;
  const KIND_ORDER = ['tpm', 'tpd', 'rpm', 'input-tpm', 'output-tpm', 'budget', 'queue', 'other'];

  let token = sessionStorage.getItem(TOKEN) || '';
  // #token=... fills the token once; a fragment never reaches a server log.
  if (location.hash.startsWith('#token=')) {
    token = decodeURIComponent(location.hash.slice(7));
    sessionStorage.setItem(TOKEN, token);
    history.replaceState(null, '', location.pathname + location.search);
  }
  let range = 'hour';
  let timer = null;
  let busy = false;
  const st = { step: 2000, series: [], key: '', hour: { seq: 0, t: [], v: [] }, day: { seq: 0, t: [], v: [] }, last: null };
  const cards = new Map(); // "upstream/bucket" -> card parts

  // el builds an element: el('td', {class: 'num'}, 'text', child...).
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    return e;
  }
  function tok(n) {
    if (n === undefined || n === null || !isFinite(n)) return '–';
    const a = Math.abs(n);
    if (a >= 1e9) return (n / 1e9).toFixed(a >= 1e10 ? 0 : 1) + 'B';
    if (a >= 1e6) return (n / 1e6).toFixed(a >= 1e7 ? 0 : 1) + 'M';
    if (a >= 1e4) return (n / 1e3).toFixed(0) + 'k';
    return Math.round(n).toLocaleString('en-US');
  }
  function pct(x) { return isFinite(x) ? (x * 100).toFixed(x < 0.1 && x > 0 ? 1 : 0) + '%' : '–'; }
  function dur(s) {
    if (s === undefined || s === null) return '–';
    if (s < 1) return Math.round(s * 1000) + ' ms';
    if (s < 120) return s.toFixed(s < 10 ? 1 : 0) + ' s';
    return Math.round(s / 60) + ' min';
  }
  function hhmm(ms) { return new Date(ms).toISOString().slice(11, 16); }
  function hhmmss(ms) { return new Date(ms).toISOString().slice(11, 19); }
  function setLive(text, bad) { const l = $('live'); l.textContent = text; l.className = bad ? 'bad' : ''; }

  function askToken(msg) {
    $('main').hidden = true;
    $('token-form').hidden = false;
    $('token-msg').textContent = msg || '';
    setLive('Waiting for the operations token', false);
    $('token').focus();
  }
  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    token = $('token').value.trim();
    sessionStorage.setItem(TOKEN, token);
    $('token').value = '';
    $('token-form').hidden = true;
    reset();
    poll();
  });
  for (const r of ['hour', 'day']) {
    $('range-' + r).addEventListener('click', () => {
      range = r;
      $('range-hour').setAttribute('aria-pressed', String(r === 'hour'));
      $('range-day').setAttribute('aria-pressed', String(r === 'day'));
      if (st.last) render(st.last);
    });
  }
  document.addEventListener('visibilitychange', () => { if (!document.hidden && !timer && !busy) poll(); });
  let resizeTimer = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { if (st.last) render(st.last); }, 100);
  });

  function reset() { st.hour = { seq: 0, t: [], v: [] }; st.day = { seq: 0, t: [], v: [] }; }
  function schedule() {
    if (!timer && !document.hidden) timer = setTimeout(() => { timer = null; poll(); }, st.step);
  }

  async function poll() {
    if (busy) return;
    busy = true;
    try {
      const headers = token ? { Authorization: 'Bearer ' + token } : {};
      let r;
      try {
        r = await fetch('/v1/dashboard?hour=' + st.hour.seq + '&day=' + st.day.seq, { headers, cache: 'no-store' });
      } catch (e) {
        setLive('Cannot reach the gateway (' + e.message + '); retrying', true);
        schedule();
        return;
      }
      if (r.status === 401 || r.status === 403) {
        let msg = '';
        try { msg = (await r.json()).message || ''; } catch (e) { msg = ''; }
        askToken(msg);
        return;
      }
      if (!r.ok) {
        setLive('The gateway answered HTTP ' + r.status + '; retrying', true);
        schedule();
        return;
      }
      const v = await r.json();
      merge(v);
      $('main').hidden = false;
      render(v);
      schedule();
    } finally {
      busy = false;
    }
  }

  function merge(v) {
    st.step = Math.max(v.step_ms || 2000, 2000);
    const key = JSON.stringify(v.series);
    if (key !== st.key) { st.key = key; st.series = v.series; reset(); v.hour.reset = v.day.reset = true; }
    for (const r of ['hour', 'day']) {
      const p = v[r], s = st[r];
      if (p.reset) { s.t = []; s.v = []; }
      s.t.push(...p.t);
      s.v.push(...p.v);
      if (s.t.length > KEEP[r]) { s.t.splice(0, s.t.length - KEEP[r]); s.v.splice(0, s.v.length - KEEP[r]); }
      s.seq = p.seq;
    }
    st.last = v;
  }

  function render(v) {
    const s = v.status;
    setLive('Live: updated ' + s.time.slice(11, 19) + ' UTC, day ' + s.day + ', every ' + st.step / 1000 + ' s', false);
    renderTiles(v);
    renderForecast(s);
    renderBuckets(v);
    renderKeys(v);
    renderThrottles(v);
    renderShadow(s);
  }

  function allBuckets(s) {
    const out = [];
    s.upstreams.forEach((u) => u.buckets.forEach((b) => out.push({ u, b })));
    return out;
  }
  function util(b) { return b.effective > 0 ? (b.used + b.reserved) / b.effective : 0; }

  function renderTiles(v) {
    const s = v.status;
    let inflight = 0, queued = 0;
    s.upstreams.forEach((u) => { inflight += u.in_flight; queued += u.queued; });
    let gw = 0, up = 0;
    for (const [k, n] of Object.entries(v.throttles)) { if (k.startsWith('gateway/')) gw += n; else up += n; }
    let busiest = null;
    for (const x of allBuckets(s)) if (!busiest || util(x.b) > util(busiest.b)) busiest = x;
    const active = s.keys.filter((k) => k.used_today > 0).length;
    const tiles = [
      [String(inflight), 'requests in flight'],
      [String(queued), 'requests queued', queued > 0 ? 'warn' : ''],
      [busiest ? pct(util(busiest.b)) : '–', busiest ? 'busiest: ' + busiest.b.name : 'no buckets', busiest && util(busiest.b) > 0.8 ? 'bad' : ''],
      [gw + ' / ' + up, '429s to clients: gateway / upstream', gw + up > 0 ? 'warn' : ''],
      [String(v.upstream_throttles_seen), 'upstream 429s seen (retried included)', v.upstream_throttles_seen > 0 ? 'warn' : ''],
      [active + ' / ' + s.keys.length, 'keys active today'],
    ];
    $('tiles').replaceChildren(...tiles.map(([val, label, cls]) =>
      el('div', { class: 'card tile' }, el('div', { class: 'v ' + (cls || '') }, val), el('div', { class: 'l' }, label))));
  }

  function renderForecast(s) {
    const items = [];
    let computed = false;
    for (const { u, b } of allBuckets(s)) {
      if ('forecast' in b) computed = true;
      if (b.forecast) items.push({ what: (s.upstreams.length > 1 ? u.name + ' / ' : '') + b.name + ' (' + b.kind + ')', f: b.forecast });
    }
    for (const k of s.keys) {
      if ('budget_forecast' in k) computed = true;
      if (k.budget_forecast) items.push({ what: 'key ' + k.name + "'s budget", f: k.budget_forecast });
    }
    const box = $('forecast');
    if (!items.length) {
      box.replaceChildren(el('p', { class: 'muted' }, computed || allBuckets(s).some((x) => 'top_5m' in x.b)
        ? 'No daily bucket or key budget to forecast.'
        : 'This gateway computes no forecast.'));
      return;
    }
    // Those that run out today (or are spent) get a card, soonest first;
    // the rest are named on one line.
    const when = (f) => (f.left <= 0 ? 0 : f.at ? Date.parse(f.at) : Infinity);
    items.sort((a, b) => when(a.f) - when(b.f) || a.what.localeCompare(b.what));
    const soon = items.filter((x) => when(x.f) < Infinity);
    const later = items.filter((x) => when(x.f) === Infinity);
    const kids = [];
    if (soon.length) {
      kids.push(el('div', { class: 'forecasts' }, ...soon.map(({ what, f }) =>
        el('div', { class: 'card forecast' }, el('h3', {}, what),
          el('p', { class: f.left <= 0 ? 'bad' : 'warn' }, f.text || f.status || ''),
          el('p', { class: 'muted' }, tok(Math.max(f.left, 0)) + ' of ' + tok(f.limit) + ' left')))));
    }
    if (later.length) {
      kids.push(el('p', { class: 'forecast-later' }, el('span', { class: 'good' }, (soon.length ? 'The others do not run out today' : 'Nothing runs out today') +
        ' at the recent rate: '), later.map((x) => x.what + ' (' + tok(x.f.left) + ' left)').join(', ')));
    }
    box.replaceChildren(...kids);
  }

  function seriesIndex(u, b) {
    return st.series.findIndex((x) => x.upstream === u && x.bucket === b);
  }
  // active: anything used, held, queued or lowered within the range shown.
  function activeIn(i, b) {
    if (b.used || b.reserved || b.effective < b.limit) return true;
    const d = st[range];
    const t0 = (d.t.length ? d.t[d.t.length - 1] : 0) - RANGE[range];
    for (let j = d.t.length - 1; j >= 0 && d.t[j] >= t0; j--) {
      const p = d.v[j], o = i * NF;
      if (p[o + F.used] || p[o + F.reserved] || p[o + F.queued] || p[o + F.effective] < p[o + F.limit]) return true;
    }
    return false;
  }

  function card(id, u, b, multi) {
    let c = cards.get(id);
    if (c) return c;
    const title = el('h3', {}, (multi ? u + ' / ' : '') + b.name + ' ');
    const kind = el('span', { class: 'muted' }, b.kind);
    title.append(kind);
    const nums = el('span', { class: 'nums' });
    const fill = el('span');
    const canvas = el('canvas', { role: 'img' });
    const top5 = el('ol');
    const today = el('ol');
    const root = el('div', { class: 'card bucket', 'data-bucket': id },
      el('div', { class: 'head' }, title, nums), el('div', { class: 'bar', 'aria-hidden': 'true' }, fill), canvas,
      el('div', { class: 'tops' },
        el('div', {}, el('strong', {}, 'Top, last 5 min'), top5),
        el('div', {}, el('strong', {}, 'Top, today'), today)));
    c = { root, nums, fill, canvas, top5, today };
    cards.set(id, c);
    return c;
  }
  function topList(ol, list) {
    if (!list) { ol.replaceChildren(el('li', { class: 'muted' }, '–')); return; }
    if (!list.length) { ol.replaceChildren(el('li', { class: 'muted' }, 'nobody')); return; }
    ol.replaceChildren(...list.map((c) => el('li', {}, c.key + ' ' + tok(c.tokens) + (c.share ? ' (' + pct(c.share) + ')' : ''))));
  }

  function renderBuckets(v) {
    const s = v.status;
    const multi = s.upstreams.length > 1;
    const busy = [], idle = [];
    for (const { u, b } of allBuckets(s)) {
      const id = u.name + '/' + b.name;
      const i = seriesIndex(u.name, b.name);
      (activeIn(i, b) ? busy : idle).push({ id, u, b, i });
    }
    busy.sort((x, y) => util(y.b) - util(x.b) || x.id.localeCompare(y.id));
    idle.sort((x, y) => x.id.localeCompare(y.id));
    const place = (list, box) => {
      const nodes = list.map(({ id, u, b, i }) => {
        const c = card(id, u.name, b, multi);
        const ut = util(b);
        c.nums.textContent = tok(b.used + b.reserved) + ' / ' + tok(b.effective) +
          (b.effective < b.limit ? ' (capacity ' + tok(b.limit) + ')' : '') + ' · ' + pct(ut);
        c.fill.style.width = Math.min(100, ut * 100) + '%';
        c.fill.className = ut > 0.8 ? 'hot' : '';
        topList(c.top5, b.top_5m);
        topList(c.today, b.top_today);
        return { c, i, b, u };
      });
      box.replaceChildren(...nodes.map((n) => n.c.root));
      for (const n of nodes) draw(n.c.canvas, n.i, n.b, n.u);
    };
    place(busy, $('buckets'));
    if (!busy.length) $('buckets').replaceChildren(el('p', { class: 'muted' }, 'No bucket has been used in the ' + (range === 'hour' ? 'last hour.' : 'last day.')));
    $('idle').hidden = !idle.length;
    $('idle-sum').textContent = idle.length + ' idle bucket' + (idle.length === 1 ? '' : 's') + ' (nothing used, held or queued in the ' + range + ')';
    if ($('idle').open) place(idle, $('idle-list'));
  }
  $('idle').addEventListener('toggle', () => { if (st.last) renderBuckets(st.last); });

  function draw(canvas, i, b, u) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (!w || !h) return;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const d = st[range];
    const cs = getComputedStyle(document.documentElement);
    const col = (n) => cs.getPropertyValue(n).trim();
    const L = 44, R = 6, T = 6, B = 16, QB = 18; // margins; QB: the queue band
    const pw = w - L - R, ph = h - T - B - QB - 4;
    const tEnd = d.t.length ? d.t[d.t.length - 1] : Date.now();
    // A gateway younger than the range shows its whole life (20 s at the
    // least) rather than a sliver at the right edge.
    const t0 = Math.max(tEnd - RANGE[range], Math.min(d.t.length ? d.t[0] : tEnd, tEnd - 20e3));
    const span = tEnd - t0;
    const o = i * NF;
    const pts = [];
    let ymax = 1, qmax = 0;
    for (let j = 0; j < d.t.length; j++) {
      if (d.t[j] < t0 || i < 0) continue;
      const p = d.v[j];
      pts.push([d.t[j], p[o + F.limit], p[o + F.effective], p[o + F.used], p[o + F.reserved], p[o + F.queued]]);
      ymax = Math.max(ymax, p[o + F.limit], p[o + F.used] + p[o + F.reserved]);
      qmax = Math.max(qmax, p[o + F.queued]);
    }
    ymax *= 1.05;
    const x = (t) => L + ((t - t0) / span) * pw;
    const y = (val) => T + ph - (val / ymax) * ph;
    // grid and labels
    g.font = '11px system-ui, sans-serif';
    g.fillStyle = col('--muted');
    g.strokeStyle = '#e3e6ea';
    g.lineWidth = 1;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (const f of [0, 0.5, 1]) {
      const yy = Math.round(y(ymax / 1.05 * f)) + 0.5;
      g.beginPath(); g.moveTo(L, yy); g.lineTo(w - R, yy); g.stroke();
      g.fillText(tok(ymax / 1.05 * f), L - 4, yy);
    }
    g.textBaseline = 'alphabetic';
    g.textAlign = 'left';
    const clock = span < 600e3 ? hhmmss : hhmm;
    g.fillText(clock(t0) + (span > 12 * 3600e3 ? ' yesterday' : ''), L, h - 3);
    g.textAlign = 'right';
    g.fillText(clock(tEnd) + ' UTC', w - R, h - 3);
    const qTop = T + ph + 4;
    g.strokeStyle = '#e3e6ea';
    g.strokeRect(L + 0.5, qTop + 0.5, pw - 1, QB - 1);
    if (pts.length) {
      const step = pts.length > 1 ? (pts[pts.length - 1][0] - pts[0][0]) / (pts.length - 1) : 2000;
      const bw = Math.max(1, (step / span) * pw);
      // used, then reserved stacked on it, as areas
      const area = (lo, hi, color) => {
        g.beginPath();
        pts.forEach((p, k) => { const xx = x(p[0]), yy = y(hi(p)); if (k) g.lineTo(xx, yy); else g.moveTo(xx, yy); });
        for (let k = pts.length - 1; k >= 0; k--) g.lineTo(x(pts[k][0]) + (pts.length === 1 ? bw : 0), y(lo(pts[k])));
        g.closePath();
        g.fillStyle = color;
        g.fill();
      };
      g.globalAlpha = 0.75;
      area(() => 0, (p) => p[3], col('--c-used'));
      area((p) => p[3], (p) => p[3] + p[4], col('--c-res'));
      g.globalAlpha = 1;
      const line = (val, color, width, dash) => {
        g.beginPath();
        pts.forEach((p, k) => { const xx = x(p[0]), yy = y(val(p)); if (k) g.lineTo(xx, yy); else g.moveTo(xx, yy); });
        if (pts.length === 1) g.lineTo(x(pts[0][0]) + bw, y(val(pts[0])));
        g.setLineDash(dash || []);
        g.strokeStyle = color;
        g.lineWidth = width;
        g.stroke();
        g.setLineDash([]);
      };
      line((p) => p[1], col('--c-limit'), 1.5, [5, 4]);
      line((p) => p[2], col('--c-eff'), 2);
      if (qmax > 0) {
        g.fillStyle = col('--c-queue');
        for (const p of pts) {
          if (!p[5]) continue;
          const hh = Math.max(2, (p[5] / qmax) * (QB - 2));
          const x1 = x(p[0]), x0 = Math.max(L, x1 - bw); // the step that ends at the sample
          g.fillRect(x0, qTop + QB - 1 - hh, Math.max(1, x1 - x0), hh);
        }
      }
    }
    const peakQ = qmax ? ', up to ' + qmax + ' queued' : '';
    canvas.setAttribute('aria-label', b.name + ' over the last ' + range + ': now ' + tok(b.used) + ' used and ' +
      tok(b.reserved) + ' reserved of ' + tok(b.effective) + ' effective capacity (' + tok(b.limit) + ' configured)' + peakQ +
      ', ' + u.queued + ' queued now');
  }

  function renderKeys(v) {
    const s = v.status;
    const total = s.keys.reduce((a, k) => a + k.used_today, 0);
    const perWeight = [];
    for (const { u, b } of allBuckets(s)) if (b.protected_per_weight) perWeight.push({ u: u.name, b });
    const rows = [...s.keys].sort((a, b) => b.used_today - a.used_today || a.name.localeCompare(b.name)).map((k) => {
      const f = v.keys[k.name] || {};
      let budget = '–';
      if (k.daily_budget) budget = tok(k.used_today) + ' of ' + tok(k.daily_budget) + ' (' + pct(k.used_today / k.daily_budget) + ')';
      // A key that used no daily bucket has its whole share of each: show
      // it in the busiest one.
      let prot = 'off';
      let protCls = 'muted';
      if (perWeight.length) {
        const busiest = perWeight.reduce((a, x) => (util(x.b) > util(a.b) ? x : a));
        const share = k.weight * busiest.b.protected_per_weight;
        prot = tok(share) + ' of ' + tok(share) + ' in ' + busiest.b.name;
        protCls = '';
      }
      if (k.protected && k.protected.length) {
        let worst = null;
        for (const p of k.protected) {
          const left = Math.max(0, p.share - p.used);
          const frac = p.share > 0 ? left / p.share : 0;
          if (!worst || frac < worst.frac) worst = { p, left, frac };
        }
        prot = tok(worst.left) + ' of ' + tok(worst.p.share) + ' in ' + worst.p.bucket;
        protCls = worst.frac <= 0 ? 'bad' : worst.frac < 0.2 ? 'warn' : '';
      }
      const budgetCls = k.daily_budget && k.used_today >= k.daily_budget ? 'num bad' : 'num';
      return el('tr', {},
        el('th', { scope: 'row' }, k.name + (k.weight !== 1 ? ' (×' + k.weight + ')' : '')),
        el('td', { class: 'num' }, tok(k.used_today)),
        el('td', { class: 'num' }, total ? pct(k.used_today / total) : '–'),
        el('td', { class: budgetCls }, budget),
        el('td', { class: protCls }, prot),
        el('td', { class: 'num' }, String(k.in_flight)),
        el('td', { class: k.queued ? 'num warn' : 'num' }, String(k.queued)),
        el('td', { class: 'num' }, dur(f.p95_wait_s)),
        el('td', { class: 'num' }, (f.clamps || 0) + ' / ' + (f.cuts || 0) + ' / ' + (f.escalations || 0)));
    });
    if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: '9', class: 'muted' }, 'No keys yet: create one with headroom keys create NAME')));
    $('keys').tBodies[0].replaceChildren(...rows);
  }

  function renderThrottles(v) {
    const kinds = new Set(['tpm', 'tpd', 'budget']);
    for (const k of Object.keys(v.throttles)) kinds.add(k.split('/')[1]);
    const order = [...kinds].sort((a, b) => (KIND_ORDER.indexOf(a) + 99) % 99 - (KIND_ORDER.indexOf(b) + 99) % 99);
    const t = $('throttles');
    t.tHead.rows[0].replaceChildren(el('th', { scope: 'col' }, 'Source'),
      ...order.map((k) => el('th', { scope: 'col', class: 'num' }, k === 'budget' || k === 'queue' || k === 'other' ? k : k.toUpperCase())));
    t.tBodies[0].replaceChildren(...['gateway', 'upstream'].map((src) => el('tr', {},
      el('th', { scope: 'row' }, src === 'gateway' ? 'Gateway (Headroom refused)' : 'Upstream (Bedrock refused)'),
      ...order.map((k) => {
        const n = v.throttles[src + '/' + k] || 0;
        return el('td', { class: n ? 'num warn' : 'num', 'data-throttle': src + '/' + k }, String(n));
      }))));
    const p = v.policy;
    const items = [
      ['max_tokens clamps', p.clamps],
      ['answers cut by the cap', p.cuts],
      ['output tokens of cut answers', tok(p.cut_tokens)],
      ['escalations after a cut', p.escalations],
      ['upstream 429s seen (retried included)', v.upstream_throttles_seen],
    ];
    $('policy').replaceChildren(...items.flatMap(([l, n]) => [el('dt', {}, l), el('dd', {}, String(n))]));
  }

  // Shadow mode (policy.mode: shadow) reports what enforcement would have
  // done under status.shadow; shown as it comes.
  function renderShadow(s) {
    const sh = s.shadow;
    $('shadow').hidden = !sh;
    if (!sh) return;
    const rows = [];
    const walk = (obj, prefix) => {
      for (const [k, val] of Object.entries(obj)) {
        const name = prefix ? prefix + ' ' + k : k;
        if (val && typeof val === 'object' && !Array.isArray(val)) { walk(val, name); continue; }
        let text = Array.isArray(val) ? val.length + ' entries' : val === null ? '–' : String(val);
        if (typeof val === 'number' && (/share|agreement/.test(k))) text = pct(val);
        else if (typeof val === 'number' && /seconds/.test(k)) text = dur(val);
        else if (typeof val === 'number') text = tok(val);
        // A duration is shown with its unit, so the name drops "seconds".
        const label = (typeof val === 'number' && /seconds/.test(k) ? name.replace(/_seconds$/, '') : name).replaceAll('_', ' ');
        rows.push(el('dt', {}, label), el('dd', {}, text));
      }
    };
    walk(sh, '');
    $('shadow-body').replaceChildren(el('dl', { class: 'policy' }, ...rows));
  }

  poll();
})();
