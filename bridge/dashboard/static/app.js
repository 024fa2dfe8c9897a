// presenced dashboard: follows /v1/stream and renders the presence of every
// user. See docs/api.md for the frames and ../doc.go for the decisions.
'use strict';

const SHOWS = ['available', 'chat', 'away', 'xa', 'dnd', 'offline'];
const WINDOW_MS = 10 * 60 * 1000; // the chart's span
const SAMPLE_MS = 1000;           // one chart sample per second
const BACKOFF_MIN = 500, BACKOFF_MAX = 30000;
const TOKEN_KEY = 'presenced.token';

const $ = (id) => document.getElementById(id);

// State, as the stream says it is.
let users = new Map(); // bare JID -> {jid, online, show, status, priority, winner, resources: Map}
let lastSeq = null;    // seq of the last frame applied; null before a snapshot
let live = false;      // a snapshot arrived on the current socket

// Connection.
let token = localStorage.getItem(TOKEN_KEY) || '';
let socket = null;
let backoff = BACKOFF_MIN;
let retryTimer = 0;

// Chart samples: {t: ms since epoch, v: online users or null while not live}.
const samples = [];

// ---- state updates

function resourceFromWire(r) {
  return { resource: r.resource, show: r.show, status: r.status, priority: r.priority };
}

function userFromWire(u) {
  const resources = new Map();
  for (const r of u.resources || []) resources.set(r.resource, resourceFromWire(r));
  return {
    jid: u.jid, online: u.online, show: u.show, status: u.status, priority: u.priority,
    winner: u.resources && u.resources.length ? u.resources[0].resource : '',
    resources,
  };
}

function applySnapshot(f) {
  users = new Map();
  for (const u of f.users || []) users.set(u.jid, userFromWire(u));
  lastSeq = f.seq;
}

function applyChange(f) {
  let u = users.get(f.jid);
  if (!u) {
    u = { jid: f.jid, resources: new Map() };
    users.set(f.jid, u);
  }
  if (f.event === 'offline') {
    u.resources.delete(f.resource.resource);
  } else {
    u.resources.set(f.resource.resource, resourceFromWire(f.resource));
  }
  const a = f.user; // the aggregate after the change, as the server computed it
  Object.assign(u, {
    online: a.online, show: a.show, status: a.status, priority: a.priority,
    winner: a.resource || '',
  });
  if (!a.online) u.resources.clear();
  lastSeq = f.seq;
}

function setLive() {
  live = true;
  backoff = BACKOFF_MIN;
  setConn('live', 'live');
  sample();
}

// onChange applies one change frame; false means the socket was dropped.
function onChange(f) {
  if (lastSeq === null || f.seq <= lastSeq) return true; // before the snapshot, or seen
  if (f.seq !== lastSeq + 1) {
    // Unfiltered, the numbers have no gaps: one means the state is wrong.
    // Start again from a fresh snapshot.
    const missed = `missed changes ${lastSeq + 1}–${f.seq - 1}, resyncing…`;
    restart(true);
    setConn('connecting', missed);
    return false;
  }
  applyChange(f);
  return true;
}

function onFrame(f) {
  switch (f.type) {
    case 'snapshot':
      applySnapshot(f);
      setLive();
      break;
    case 'change':
      onChange(f);
      break;
    case 'changes': // a backlog, sent as one message: the frames in order
      for (const c of f.frames || []) if (!onChange(c)) break;
      break;
    case 'error':
      console.warn(`presenced stream: ${f.code}: ${f.message}`);
      return;
    default:
      return; // frame types for newer clients
  }
  scheduleRender();
}

// ---- connection

function streamURL(resume) {
  const url = new URL('/v1/stream', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  if (resume !== null) url.searchParams.set('resume', String(resume));
  if (token) url.searchParams.set('access_token', token);
  return url;
}

function authHeaders() {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

// connect opens the stream. With a state to continue from, it asks to
// resume after lastSeq: the server then sends the changes since (or a
// snapshot when it no longer has them), so the state is current from the
// moment the socket opens.
function connect() {
  clearTimeout(retryTimer);
  setConn('connecting', 'connecting…');
  let opened = false;
  const resume = lastSeq;
  const sock = new WebSocket(streamURL(resume));
  socket = sock;
  sock.onopen = () => {
    opened = true;
    if (resume !== null && sock === socket) { setLive(); scheduleRender(); }
  };
  sock.onmessage = (e) => {
    if (sock !== socket) return;
    let f;
    try { f = JSON.parse(e.data); } catch { return; }
    onFrame(f);
  };
  sock.onclose = (e) => {
    if (sock !== socket) return; // replaced on purpose
    socket = null;
    lost(opened, e);
  };
}

// restart drops the current socket and connects again at once; fresh
// forgets the state, so that the server sends a snapshot.
function restart(fresh) {
  const old = socket;
  socket = null;
  if (old) old.close(1000);
  live = false;
  if (fresh) lastSeq = null;
  backoff = BACKOFF_MIN;
  connect();
}

async function lost(opened, e) {
  live = false;
  scheduleRender();
  const delay = Math.round(backoff * (0.75 + Math.random() * 0.5));
  backoff = Math.min(backoff * 2, BACKOFF_MAX);
  retryTimer = setTimeout(connect, delay);
  const secs = Math.max(1, Math.round(delay / 1000));
  let why = opened ? `closed (${e.code}${e.reason ? ' ' + e.reason : ''})` : 'cannot connect';
  if (!opened) {
    // A failed handshake is opaque to the page: ask the REST API why.
    try {
      const r = await fetch('/v1/presence', { method: 'HEAD', headers: authHeaders(), cache: 'no-store' });
      if (r.status === 401 || r.status === 403) why = `token rejected (${r.status})`;
      else if (!r.ok) why = `server answered ${r.status}`;
    } catch {
      why = 'server unreachable';
    }
  }
  if (!socket) setConn('down', `${why}, retrying in ${secs}s`);
}

function setConn(state, text) {
  $('conn').dataset.state = state;
  $('conn-text').textContent = text;
}

// ---- rendering

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; render(); });
}

function onlineCount() {
  let n = 0;
  for (const u of users.values()) if (u.online) n++;
  return n;
}

function sortedResources(u) {
  return [...u.resources.values()].sort((a, b) =>
    (b.resource === u.winner) - (a.resource === u.winner) ||
    b.priority - a.priority || a.resource.localeCompare(b.resource));
}

const rows = new Map(); // bare JID -> <tr>

function row(jid) {
  let tr = rows.get(jid);
  if (tr) return tr;
  tr = document.createElement('tr');
  tr.dataset.jid = jid;
  tr.innerHTML =
    '<th scope="row" class="jid"></th>' +
    '<td><span class="dot" aria-hidden="true"></span> <span class="show"></span></td>' +
    '<td class="status"></td>' +
    '<td class="resources"><span class="n"></span><ul></ul></td>';
  tr.querySelector('.jid').textContent = jid;
  rows.set(jid, tr);
  return tr;
}

function render() {
  $('seq').textContent = lastSeq === null ? '–' : String(lastSeq);

  const counts = Object.fromEntries(SHOWS.map((s) => [s, 0]));
  for (const u of users.values()) if (u.show in counts) counts[u.show]++;
  for (const li of $('counts').children) li.querySelector('.n').textContent = counts[li.dataset.show];

  const tbody = $('users');
  for (const [jid, tr] of rows) {
    if (!users.has(jid)) { tr.remove(); rows.delete(jid); }
  }
  const list = [...users.values()].sort((a, b) => a.jid.localeCompare(b.jid));
  for (const u of list) {
    const tr = row(u.jid);
    tr.dataset.show = u.show;
    tr.classList.toggle('offline', !u.online);
    tr.querySelector('.show').textContent = u.show;
    tr.querySelector('.status').textContent = u.status;
    const res = sortedResources(u);
    tr.querySelector('.resources .n').textContent = String(res.length);
    const ul = tr.querySelector('.resources ul');
    ul.replaceChildren(...res.map((r) => {
      const li = document.createElement('li');
      const p = document.createElement('span');
      p.className = 'prio';
      p.textContent = `priority ${r.priority}`;
      li.append(r.resource, ' ', p);
      li.title = `${r.show}${r.status ? ': ' + r.status : ''}`;
      return li;
    }));
    tbody.append(tr); // moves it into sorted position
  }
  $('empty').hidden = users.size > 0;
  $('users-table').classList.toggle('stale', !live);
  document.title = live ? `presenced: ${onlineCount()} online` : 'presenced (disconnected)';
  drawChart();
}

// ---- chart

function sample() {
  const now = Date.now();
  samples.push({ t: now, v: live ? onlineCount() : null });
  while (samples.length && samples[0].t < now - WINDOW_MS) samples.shift();
}

// ticks returns the y axis's step and top: a step of 1, 2 or 5 times a
// power of ten (at least 1), and a top above max, so that the line never
// runs along the top edge.
function ticks(max) {
  const rough = Math.max(1, max / 4);
  const pow = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= rough);
  return { step, top: (Math.floor(max / step) + 1) * step };
}

function drawChart() {
  const canvas = $('chart');
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (!w || !h) return;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const css = getComputedStyle(canvas);
  const color = (name) => css.getPropertyValue(name).trim();
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.font = `12px ${css.fontFamily}`;

  const pad = { l: 36, r: 12, t: 10, b: 22 };
  const pw = w - pad.l - pad.r, ph = h - pad.t - pad.b;
  const now = Date.now();
  // The samples, and the current count as the line's last point.
  const points = live ? [...samples, { t: now, v: onlineCount() }] : samples;
  let max = 0;
  for (const s of points) if (s.v !== null && s.v > max) max = s.v;
  const { step, top } = ticks(max);
  const x = (t) => pad.l + ((t - (now - WINDOW_MS)) / WINDOW_MS) * pw;
  const y = (v) => pad.t + ph - (v / top) * ph;

  // Grid and labels.
  ctx.strokeStyle = color('--grid');
  ctx.fillStyle = color('--muted');
  ctx.lineWidth = 1;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (let v = 0; v <= top; v += step) {
    const yy = Math.round(y(v)) + 0.5;
    ctx.beginPath(); ctx.moveTo(pad.l, yy); ctx.lineTo(pad.l + pw, yy); ctx.stroke();
    ctx.fillText(String(v), pad.l - 6, yy);
  }
  ctx.textBaseline = 'top';
  const every = pw >= 480 ? 2 : 5; // minutes between time labels
  for (let m = 10; m >= 0; m -= every) {
    const xx = x(now - m * 60000);
    ctx.textAlign = m === 10 ? 'left' : m === 0 ? 'right' : 'center';
    ctx.fillText(m === 0 ? 'now' : `−${m} min`, xx, pad.t + ph + 6);
  }

  // The line, broken where there was no connection.
  ctx.strokeStyle = color('--accent');
  ctx.lineWidth = 2;
  ctx.lineJoin = 'round';
  ctx.beginPath();
  let pen = false;
  for (const s of points) {
    if (s.v === null) { pen = false; continue; }
    if (pen) ctx.lineTo(x(s.t), y(s.v)); else ctx.moveTo(x(s.t), y(s.v));
    pen = true;
  }
  ctx.stroke();
  const last = points.length ? points[points.length - 1] : null;
  if (last && last.v !== null) {
    ctx.fillStyle = color('--accent');
    ctx.beginPath(); ctx.arc(x(last.t), y(last.v), 3, 0, 2 * Math.PI); ctx.fill();
  }
  canvas.setAttribute('aria-label', last && last.v !== null
    ? `Chart of online users over the last 10 minutes; now ${last.v}, peak ${max}`
    : 'Chart of online users over the last 10 minutes; not connected');
}

// ---- start

$('token').value = token;
$('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  token = $('token').value.trim();
  if (token) localStorage.setItem(TOKEN_KEY, token); else localStorage.removeItem(TOKEN_KEY);
  restart(true); // another token may see other users
});
window.addEventListener('resize', drawChart);
setInterval(() => { sample(); drawChart(); }, SAMPLE_MS);
connect();
render();
