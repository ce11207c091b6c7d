// The spatial-gpu history viewer: plain canvas 2D, no library, data inline (see docs/VIEWER.md).
// Every change of state (controls, mouse, the address's #hash) goes through applyState(), so a
// state loaded from the address draws exactly what the same clicks would.
"use strict";

const DATA = JSON.parse(document.getElementById("data").textContent);
const MARKERS = ["circle", "triangle", "square", "diamond", "star"];
// Connections drawn per layer pair while dragging (see draw()).
const DRAG_BUDGET = 3000;

function decode(b64, Type) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Type(bytes.buffer);
}

// Points are decoded on first use: a long history costs nothing until it is looked at.
const decoded = [];
function point(k) {
  if (!decoded[k]) {
    const p = DATA.points[k];
    decoded[k] = {
      pos: p.pos.map((s) => decode(s, Float32Array)),
      inc: p.inc.map((s) => decode(s, Float32Array)),
      out: p.out.map((s) => (s === null ? null : decode(s, Float32Array))),
      task: p.task.map((s) => decode(s, Uint8Array)),
      conn: p.conn.map((c) => ({
        from: decode(c.from, Uint32Array),
        to: decode(c.to, Uint32Array),
        w: decode(c.w, Float32Array),
      })),
    };
  }
  return decoded[k];
}
const drops = DATA.accuracyDrop.map((s) => (s === null ? null : decode(s, Float32Array)));

// One box for every split-layer position at every point: frames share their axes.
const bounds = (() => {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (let k = 0; k < DATA.points.length; k++) {
    for (const pos of point(k).pos) {
      for (let i = 0; i < pos.length; i += 2) {
        if (!isFinite(pos[i]) || !isFinite(pos[i + 1])) continue;
        x0 = Math.min(x0, pos[i]); x1 = Math.max(x1, pos[i]);
        y0 = Math.min(y0, pos[i + 1]); y1 = Math.max(y1, pos[i + 1]);
      }
    }
  }
  if (!isFinite(x0)) { x0 = -1; x1 = 1; y0 = -1; y1 = 1; }
  return { x0, x1, y0, y1, cx: (x0 + x1) / 2, cy: (y0 + y1) / 2,
           half: Math.max(x1 - x0, y1 - y0, 1e-3) / 2 };
})();

const DEFAULTS = {
  point: DATA.points.length - 1, view: "top", neuron: DATA.thresholds.minInput,
  conn: DATA.thresholds.minWeight, cross: true, yaw: -0.6, pitch: 0.35, zoom: 1, panx: 0, pany: 0,
};
const state = Object.assign({}, DEFAULTS);

const canvas = document.getElementById("canvas");
const ctx = canvas.getContext("2d");
const tooltip = document.getElementById("tooltip");
const $ = (id) => document.getElementById(id);

function colour(t, alpha) {
  const c = DATA.colours[t % DATA.colours.length];
  return `rgba(${c[0]},${c[1]},${c[2]},${alpha})`;
}
function crossColour(alpha) {
  const c = DATA.cross;
  return `rgba(${c[0]},${c[1]},${c[2]},${alpha})`;
}
function progressLabel(k) {
  const p = DATA.points[k];
  return p.batch === 0 ? `epoch ${p.epoch}` : `epoch ${p.epoch}, batch ${p.batch}`;
}

// The point an `epoch=E` in the address means: the end of epoch E (batch 0), else the first after.
function pointOfEpoch(e) {
  let best = DATA.points.length - 1;
  for (let k = DATA.points.length - 1; k >= 0; k--) {
    const p = DATA.points[k];
    if (p.epoch > e || (p.epoch === e && p.batch === 0)) best = k;
  }
  return best;
}

function parseHash() {
  const out = {};
  for (const part of location.hash.replace(/^#/, "").split("&")) {
    if (!part) continue;
    const [k, v = ""] = part.split("=").map(decodeURIComponent);
    if (k === "view") out.view = v === "perspective" ? "perspective" : "top";
    else if (k === "cross") out.cross = v !== "0" && v !== "false";
    else if (k === "epoch" && isFinite(+v)) out.point = pointOfEpoch(+v);
    else if (k in DEFAULTS && v !== "" && isFinite(+v)) out[k] = +v;
  }
  return out;
}

function writeHash() {
  const parts = [`point=${state.point}`, `view=${state.view}`, `neuron=${state.neuron}`,
    `conn=${state.conn}`, `cross=${state.cross ? 1 : 0}`];
  for (const k of ["yaw", "pitch", "zoom", "panx", "pany"]) {
    if (state[k] !== DEFAULTS[k]) parts.push(`${k}=${+state[k].toFixed(4)}`);
  }
  history.replaceState(null, "", "#" + parts.join("&"));
}

let pending = false;
function applyState(change, fromHash) {
  Object.assign(state, change);
  state.point = Math.max(0, Math.min(DATA.points.length - 1, Math.round(state.point)));
  state.zoom = Math.max(0.05, Math.min(50, state.zoom));
  state.pitch = Math.max(-1.5, Math.min(1.5, state.pitch));
  $("point").value = state.point;
  $("point-label").textContent = `${progressLabel(state.point)} (${state.point + 1} of ${DATA.points.length})`;
  $("neuron").value = state.neuron;
  $("neuron-label").textContent = state.neuron.toFixed(3);
  $("conn").value = state.conn;
  $("conn-label").textContent = state.conn.toFixed(3);
  $("cross").checked = state.cross;
  $("view-" + state.view).checked = true;
  if (!fromHash) writeHash();
  // Mouse moves may come faster than frames: draw once per animation frame, but draw the first
  // time at once so that a headless screenshot taken after loading sees the picture.
  if (!drawnOnce) draw();
  else if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; draw(); }); }
}

// Screen positions of the neurons drawn last, for hovering: [layer k, index, sx, sy].
let drawn = [];
let drawnOnce = false;

function projector(w, h) {
  const margin = 40;
  const n = DATA.layers.length;
  const half = bounds.half * 1.08;
  if (state.view === "top") {
    const scale = Math.min((w - 2 * margin) / (2 * half), (h - 2 * margin) / (2 * half)) * state.zoom;
    return (k, x, y) => [w / 2 + (x - bounds.cx) * scale + state.panx,
                         h / 2 - (y - bounds.cy) * scale + state.pany];
  }
  // Layers as slices along a depth axis, output last; a perspective camera orbits their centre.
  const gap = 2.2 * half;
  const extent = ((n - 1) * gap) / 2 + half;
  const dist = 3.2 * extent;
  const scale = (Math.min(w, h) / (2.2 * extent)) * state.zoom;
  const cy = Math.cos(state.yaw), sy = Math.sin(state.yaw);
  const cp = Math.cos(state.pitch), sp = Math.sin(state.pitch);
  return (k, x, y) => {
    const X = k * gap - ((n - 1) * gap) / 2, Y = x - bounds.cx, Z = y - bounds.cy;
    const sx = X * cy - Y * sy;
    const depth = X * sy + Y * cy;
    const d2 = depth * cp - Z * sp;
    const up = depth * sp + Z * cp;
    const f = dist / Math.max(dist + d2, 1e-3);
    return [w / 2 + sx * f * scale + state.panx, h / 2 - up * f * scale + state.pany];
  };
}

function markerPath(kind, x, y, s) {
  ctx.beginPath();
  if (kind === "circle") ctx.arc(x, y, s, 0, 2 * Math.PI);
  else if (kind === "triangle") { ctx.moveTo(x, y - s - 1); ctx.lineTo(x + s + 1, y + s); ctx.lineTo(x - s - 1, y + s); }
  else if (kind === "square") ctx.rect(x - s, y - s, 2 * s, 2 * s);
  else if (kind === "diamond") { ctx.moveTo(x, y - s - 2); ctx.lineTo(x + s + 1, y); ctx.lineTo(x, y + s + 2); ctx.lineTo(x - s - 1, y); }
  else {
    for (let a = 0; a < 10; a++) {
      const r = (s + 2) * (a % 2 === 0 ? 1 : 0.45);
      const t = Math.PI * (a / 5 - 0.5);
      if (a === 0) ctx.moveTo(x + r * Math.cos(t), y + r * Math.sin(t));
      else ctx.lineTo(x + r * Math.cos(t), y + r * Math.sin(t));
    }
  }
  ctx.closePath();
}

function draw() {
  const t0 = performance.now();
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
  }
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, w, h);
  const p = point(state.point);
  const proj = projector(w, h);
  const n = DATA.layers.length;
  const keep = p.inc.map((inc) => inc.map((s) => (s > state.neuron ? 1 : 0)));

  if (state.view === "perspective") {
    const half = bounds.half * 1.08;
    ctx.font = "13px sans-serif";
    for (let k = 0; k < n; k++) {
      const c = [[-1, -1], [1, -1], [1, 1], [-1, 1]].map(([a, b]) => proj(k, bounds.cx + a * half, bounds.cy + b * half));
      ctx.beginPath();
      c.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      ctx.closePath();
      ctx.fillStyle = "rgba(90,110,160,0.07)"; ctx.fill();
      ctx.strokeStyle = "rgba(0,0,0,0.35)"; ctx.lineWidth = 1; ctx.stroke();
      const [lx, ly] = proj(k, bounds.cx - half, bounds.cy + half * 1.08);
      ctx.fillStyle = "#222";
      ctx.fillText(`layer ${DATA.layers[k].layer}${k === n - 1 ? " (output)" : ""}`, lx, ly);
    }
  } else {
    ctx.strokeStyle = "rgba(0,0,0,0.12)"; ctx.lineWidth = 1;
    const [ax, ay] = proj(0, bounds.x0, bounds.y0), [bx, by] = proj(0, bounds.x1, bounds.y1);
    ctx.strokeRect(ax, by, bx - ax, ay - by);
  }

  // Every neuron projected once; connections look their ends up (a connection costs no projection).
  const screen = p.pos.map((pos, k) => {
    const xy = new Float32Array(pos.length);
    for (let i = 0; 2 * i < pos.length; i++) {
      const [x, y] = proj(k, pos[2 * i], pos[2 * i + 1]);
      xy[2 * i] = x; xy[2 * i + 1] = y;
    }
    return xy;
  });

  // Connections, bucketed by colour and opacity so that each bucket is one stroke: thousands of
  // lines cost a few strokes instead of one each.
  let nConn = 0, drawnConn = 0;
  const ALPHAS = 8;
  for (let k = 0; k + 1 < n; k++) {
    const c = p.conn[k];
    let max = 0;
    for (let e = 0; e < c.w.length; e++) max = Math.max(max, Math.abs(c.w[e]));
    const buckets = new Map();
    for (let e = 0; e < c.w.length; e++) {
      const a = Math.abs(c.w[e]), i = c.from[e], j = c.to[e];
      if (!(a > state.conn) || !keep[k][i] || !keep[k + 1][j]) continue;
      const ti = p.task[k][i], tj = p.task[k + 1][j];
      if (ti !== tj && !state.cross) continue;
      const key = (ti === tj ? ti : -1) * ALPHAS + Math.min(ALPHAS - 1, Math.floor((a / Math.max(max, 1e-12)) * ALPHAS));
      let list = buckets.get(key);
      if (!list) buckets.set(key, (list = { t: ti === tj ? ti : -1, level: key - (ti === tj ? ti : -1) * ALPHAS, edges: [] }));
      list.edges.push(i, j);
      nConn++;
    }
    const pa = screen[k], pb = screen[k + 1];
    // While the mouse drags, only the strongest connections (highest opacity first) are drawn, up to
    // a budget, so that rotating and panning stay fluid; the full picture comes back on release.
    let budget = drag ? DRAG_BUDGET : Infinity;
    const ordered = [...buckets.values()].sort((a, b) => b.level - a.level);
    const chosen = [];
    for (const b of ordered) {
      if (budget <= 0) break;
      if (b.edges.length / 2 > budget) b.edges.length = 2 * budget;
      budget -= b.edges.length / 2;
      drawnConn += b.edges.length / 2;
      chosen.push(b);
    }
    // Weakest first, so that the strong connections are drawn on top.
    for (const b of chosen.reverse()) {
      const alpha = 0.04 + 0.5 * ((b.level + 0.5) / ALPHAS);
      ctx.strokeStyle = b.t < 0 ? crossColour(alpha) : colour(b.t, alpha);
      ctx.lineWidth = 1;
      ctx.beginPath();
      for (let q = 0; q < b.edges.length; q += 2) {
        const i = b.edges[q], j = b.edges[q + 1];
        ctx.moveTo(pa[2 * i], pa[2 * i + 1]); ctx.lineTo(pb[2 * j], pb[2 * j + 1]);
      }
      ctx.stroke();
    }
  }

  drawn = [];
  const size = state.view === "top" ? 5 : 4;
  ctx.lineWidth = 1;
  ctx.strokeStyle = "rgba(0,0,0,0.7)";
  for (let k = 0; k < n; k++) {
    const xy = screen[k], kind = MARKERS[k % MARKERS.length];
    for (let i = 0; i < DATA.layers[k].size; i++) {
      if (!keep[k][i]) continue;
      const x = xy[2 * i], y = xy[2 * i + 1];
      drawn.push([k, i, x, y]);
      markerPath(kind, x, y, size);
      ctx.fillStyle = colour(p.task[k][i], 1);
      ctx.fill(); ctx.stroke();
    }
  }
  const ms = performance.now() - t0;
  drawnOnce = true;
  const reduced = drawnConn < nConn ? ` (${drawnConn} while dragging)` : "";
  $("stats").textContent = `${drawn.length} neurons and ${nConn} connections${reduced} drawn in ${ms.toFixed(1)} ms`;
  console.log(`viewer draw: ${drawn.length} neurons, ${nConn} connections${reduced}, ${ms.toFixed(1)} ms`);
}

function legend() {
  const el = $("legend");
  let html = "";
  DATA.taskNames.forEach((name, t) => {
    html += `<div><span class="swatch" style="background:${colour(t, 1)}"></span>task ${t}: ${name}</div>`;
  });
  html += `<div><span class="line" style="border-color:${crossColour(1)}"></span>connection across tasks</div>`;
  DATA.layers.forEach((l, k) => {
    html += `<div>layer ${l.layer}${k === DATA.layers.length - 1 ? " (output)" : ""}: ${MARKERS[k % MARKERS.length]}s, ${l.size} neurons</div>`;
  });
  el.innerHTML = html;
}

function hover(ev) {
  const r = canvas.getBoundingClientRect();
  const mx = ev.clientX - r.left, my = ev.clientY - r.top;
  let best = null, bestD = 64;
  for (const d of drawn) {
    const dd = (d[2] - mx) ** 2 + (d[3] - my) ** 2;
    if (dd < bestD) { bestD = dd; best = d; }
  }
  if (!best) { tooltip.hidden = true; return; }
  const [k, i] = best;
  const p = point(state.point);
  const t = p.task[k][i];
  const lines = [
    `layer ${DATA.layers[k].layer}, neuron ${i}`,
    `task ${t}: ${DATA.taskNames[t]}`,
    `position (${p.pos[k][2 * i].toFixed(3)}, ${p.pos[k][2 * i + 1].toFixed(3)})`,
    `incoming |w| sum ${p.inc[k][i].toFixed(4)}`,
    p.out[k] ? `outgoing |w| sum ${p.out[k][i].toFixed(4)}` : "outgoing: none (output layer)",
  ];
  if (drops[k]) lines.push(`accuracy drop when switched off: ${(100 * drops[k][i]).toFixed(2)} points (end of training)`);
  tooltip.textContent = lines.join("\n");
  tooltip.hidden = false;
  tooltip.style.left = `${mx + 14}px`;
  tooltip.style.top = `${my + 10}px`;
}

let drag = null;
canvas.addEventListener("mousedown", (ev) => { drag = { x: ev.clientX, y: ev.clientY, pan: ev.shiftKey || ev.button === 2 || state.view === "top" }; });
window.addEventListener("mouseup", () => {
  const moved = drag && drag.moved;
  drag = null;
  if (moved) applyState({});
});
canvas.addEventListener("contextmenu", (ev) => ev.preventDefault());
canvas.addEventListener("mousemove", (ev) => {
  if (drag) {
    const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
    drag.x = ev.clientX; drag.y = ev.clientY; drag.moved = true;
    if (drag.pan) applyState({ panx: state.panx + dx, pany: state.pany + dy });
    else applyState({ yaw: state.yaw - dx * 0.008, pitch: state.pitch + dy * 0.008 });
    tooltip.hidden = true;
  } else hover(ev);
});
canvas.addEventListener("mouseleave", () => { tooltip.hidden = true; });
canvas.addEventListener("wheel", (ev) => {
  ev.preventDefault();
  applyState({ zoom: state.zoom * Math.exp(-ev.deltaY * 0.0015) });
}, { passive: false });

$("point").max = DATA.points.length - 1;
$("point").addEventListener("input", (ev) => applyState({ point: +ev.target.value }));
$("neuron").addEventListener("input", (ev) => applyState({ neuron: +ev.target.value }));
$("conn").addEventListener("input", (ev) => applyState({ conn: +ev.target.value }));
$("cross").addEventListener("change", (ev) => applyState({ cross: ev.target.checked }));
for (const v of ["top", "perspective"]) $("view-" + v).addEventListener("change", () => applyState({ view: v }));
$("reset").addEventListener("click", () => applyState({ yaw: DEFAULTS.yaw, pitch: DEFAULTS.pitch, zoom: 1, panx: 0, pany: 0 }));
let timer = null;
$("play").addEventListener("click", () => {
  if (timer) { clearInterval(timer); timer = null; $("play").textContent = "play"; return; }
  $("play").textContent = "pause";
  if (state.point === DATA.points.length - 1) applyState({ point: 0 });
  timer = setInterval(() => {
    if (state.point >= DATA.points.length - 1) { clearInterval(timer); timer = null; $("play").textContent = "play"; return; }
    applyState({ point: state.point + 1 });
  }, 250);
});
window.addEventListener("hashchange", () => applyState(parseHash(), true));
window.addEventListener("resize", () => applyState({}, true));

$("title").textContent = DATA.title;
legend();
applyState(parseHash(), true);

// `#bench=N` redraws N times and logs the median time: how docs/VIEWER.md's size limits were measured.
const bench = +(new URLSearchParams(location.hash.replace(/^#/, "")).get("bench") || 0);
if (bench > 0) {
  const times = [];
  for (let r = 0; r < bench; r++) {
    const t0 = performance.now();
    draw();
    // Reading a pixel waits for the canvas to be painted, so the time includes rasterisation.
    ctx.getImageData(0, 0, 1, 1);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  console.log(`viewer bench: median ${times[times.length >> 1].toFixed(1)} ms per frame, fastest ${times[0].toFixed(1)} ms`);
}
