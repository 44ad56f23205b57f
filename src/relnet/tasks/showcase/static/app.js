// relnet showcase page: draws the scene, asks the server's RN, shows the answer, the strong pairs and the grid.
// No build step: plain ES2017 in one file. The server is stateless; this page owns the scene.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const SIZE = 480;          // scene mode: unit square -> 480 px
const R = 20;              // object radius in px
const LINE_MIN = 0.35;     // pairs below this (rescaled) strength get no line
const state = { info: null, mode: null, scene: null, question: null, result: null,
                inflight: false, dirty: false, seq: 0, drag: null, lastGood: null };
window.relnet = { state, idle: () => !state.inflight && !state.dirty };

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, parent = null) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

async function post(path, body) {
  const r = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
                                body: JSON.stringify(body) });
  const data = await r.json().catch(() => ({ error: `HTTP ${r.status}` }));
  if (!r.ok) throw new Error(data.error || `HTTP ${r.status}`);
  return data;
}

function showError(msg) {
  const box = $("error");
  box.textContent = msg || "";
  box.hidden = !msg;
}

// ------------------------------------------------------------------------------------------------ shapes

function shapeElement(shape, cx, cy, r, fill, parent) {
  if (shape === "circle" || shape === 1 && state.mode === "pixels") return el("circle", { cx, cy, r, fill }, parent);
  if (shape === "square" || shape === 0 && state.mode === "pixels") {
    const s = r * 0.9;
    return el("rect", { x: cx - s, y: cy - s, width: 2 * s, height: 2 * s, rx: r * 0.08, fill }, parent);
  }
  const h = r * 1.15;  // triangle: centroid at (cx, cy)
  const pts = [[cx, cy - h], [cx + h * 0.95, cy + h * 0.6], [cx - h * 0.95, cy + h * 0.6]];
  return el("polygon", { points: pts.map((p) => p.join(",")).join(" "), fill }, parent);
}

function objectPositions() {
  // Positions in SVG user units, one per object (scene mode: objects; pixel mode: the 6 drawn shapes).
  if (state.mode === "scene") return state.scene.objects.map((o) => [o.x * SIZE, o.y * SIZE]);
  return state.scene.centres.map(([x, y]) => [x, y]);
}

function cellCentre(k) {
  const cells = state.info.cells, step = state.info.image_size / cells;
  return [((k % cells) + 0.5) * step, (Math.floor(k / cells) + 0.5) * step];
}

// ------------------------------------------------------------------------------------------------ drawing

function pairStrengths() {
  // Unordered pairs {i, j}, i != j, strength max(||g_ij||, ||g_ji||) rescaled to [0, 1] over all pairs (min -> 0,
  // max -> 1); only the strongest are drawn (at most MAX_LINES, and only those above LINE_MIN).
  const g = state.result && state.result.grid;
  if (!g) return [];
  const pairs = [];
  for (let i = 0; i < g.length; i++) {
    for (let j = i + 1; j < g.length; j++) pairs.push([i, j, Math.max(g[i][j] ?? 0, g[j][i] ?? 0)]);
  }
  const vs = pairs.map((p) => p[2]);
  const lo = Math.min(...vs), hi = Math.max(...vs);
  const limit = g.length > 10 ? 24 : 15;
  return pairs.map(([i, j, v]) => [i, j, hi > lo ? (v - lo) / (hi - lo) : 1])
              .filter((p) => p[2] >= LINE_MIN).sort((a, b) => b[2] - a[2]).slice(0, limit).reverse();
}

function drawScene() {
  const svg = $("scene");
  svg.replaceChildren();
  const pixels = state.mode === "pixels";
  const W = pixels ? state.info.image_size : SIZE;
  svg.setAttribute("viewBox", `0 0 ${W} ${W}`);
  if (pixels) {
    el("image", { href: state.scene.image, x: 0, y: 0, width: W, height: W, style: "image-rendering: pixelated" }, svg);
  } else {
    el("rect", { x: 0, y: 0, width: W, height: W, fill: "#1b1e26" }, svg);
  }
  // Lines for the strong pairs, brighter and thicker for stronger ones (drawn under the objects).
  const lines = el("g", { id: "pair-lines" }, svg);
  const pos = objectPositions();
  const points = pixels && state.result && state.result.points;  // keypoint models: where each object sits
  const at = points ? (k) => points[k] : pixels ? cellCentre : (k) => pos[k];
  const unit = pixels ? W / SIZE : 1;
  for (const [i, j, s] of pairStrengths()) {
    const [x1, y1] = at(i), [x2, y2] = at(j);
    el("line", { x1, y1, x2, y2, class: "pair-line", "data-i": i, "data-j": j, "data-strength": s.toFixed(3),
                 stroke: pixels ? "#d6336c" : "#ffd166", "stroke-opacity": (0.15 + 0.85 * s).toFixed(3),
                 "stroke-width": ((1 + 5 * s) * unit).toFixed(3), "stroke-linecap": "round" }, lines);
  }
  if (points) {
    const marks = el("g", { id: "keypoints" }, svg);
    points.forEach(([x, y], k) => {
      const m = el("circle", { cx: x, cy: y, r: 1.6, class: "keypoint", fill: "#d6336c", stroke: "#fff",
                               "stroke-width": 0.4 }, marks);
      m.dataset.index = k;
    });
  }
  const objs = el("g", { id: "objects" }, svg);
  const ref = state.result ? state.result.referent : null;
  pos.forEach(([x, y], k) => {
    let node;
    if (pixels) {
      node = el("circle", { cx: x, cy: y, r: 7, fill: "transparent", stroke: "#555", "stroke-width": 0.4,
                            "stroke-dasharray": "1 1" }, objs);
      node.dataset.color = state.scene.colors[k];
      node.dataset.shape = state.info.shapes[state.scene.shapes[k]];
    } else {
      const o = state.scene.objects[k];
      node = shapeElement(o.shape, x, y, R, state.info.colors[o.color], objs);
      node.dataset.color = o.color;
      node.dataset.shape = o.shape;
    }
    node.classList.add("obj");
    node.dataset.index = k;
    node.dataset.x = pixels ? state.scene.centres[k][0] : state.scene.objects[k].x;
    node.dataset.y = pixels ? state.scene.centres[k][1] : state.scene.objects[k].y;
    if (k === ref) el("circle", { cx: x, cy: y, r: pixels ? 9 : R + 8, class: "referent-ring",
                                  style: pixels ? "stroke: #222; stroke-width: 0.7; stroke-dasharray: 1.5 1"
                                                : "stroke: #fff; stroke-width: 2" }, objs);
  });
}

function heat(t) {
  // 0 -> panel colour, 1 -> bright yellow
  const a = [27, 30, 38], b = [255, 209, 102];
  const c = a.map((v, k) => Math.round(v + (b[k] - v) * t));
  return `rgb(${c.join(",")})`;
}

function headerIcon(k) {
  const th = document.createElement("th");
  if (state.mode === "scene") {
    const o = state.scene.objects[k];
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 44 44");
    shapeElement(o.shape, 22, 22, 16, state.info.colors[o.color], svg);
    th.appendChild(svg);
    th.title = `${o.color} ${o.shape}`;
  } else {
    th.textContent = k;
  }
  return th;
}

function drawGrid() {
  const table = $("grid");
  table.replaceChildren();
  const g = state.result && state.result.grid;
  if (!g) return;
  table.classList.toggle("dense", g.length > 10);
  // Colour scale over the off-diagonal cells: min -> dark, max -> bright.
  let max = -Infinity, min = Infinity;
  g.forEach((row, i) => row.forEach((v, j) => {
    if (v !== null && i !== j) { max = Math.max(max, v); min = Math.min(min, v); }
  }));
  const head = table.insertRow();
  head.appendChild(document.createElement("th"));
  for (let j = 0; j < g.length; j++) head.appendChild(headerIcon(j));
  g.forEach((row, i) => {
    const tr = table.insertRow();
    tr.appendChild(headerIcon(i));
    row.forEach((v, j) => {
      const td = tr.insertCell();
      td.classList.add("cell");
      td.dataset.i = i;
      td.dataset.j = j;
      if (i === j || v === null) {
        // The diagonal is greyed out: g is not evaluated there (showcase) or it is a cell with itself (pixels).
        td.classList.add("diag");
        td.title = v === null ? `(${i}, ${j}): not computed` : `(${i}, ${i}): self-pair, ${v.toFixed(3)}`;
      } else {
        const t = max > min ? Math.max(0, (v - min) / (max - min)) : 1;
        td.style.background = heat(t);
        td.dataset.value = v;
        td.title = `||g(o${i}, o${j}, q)|| = ${v.toFixed(3)}`;
        if (g.length <= 10) td.textContent = v.toFixed(1);
        td.style.color = t > 0.5 ? "#0b0d12" : "#c9ccd4";
      }
    });
  });
}

function drawAnswer() {
  const r = state.result;
  $("current-question").textContent = r ? r.question : (state.question || "Choose a question.");
  $("model-answer").textContent = r ? r.answer : "-";
  $("model-prob").textContent = r ? `(p = ${r.probability.toFixed(3)})` : "";
  $("true-answer").textContent = r ? r.correct : "-";
  const v = $("verdict");
  v.textContent = r ? (r.answer === r.correct ? "correct" : "wrong") : "";
  v.className = r ? (r.answer === r.correct ? "ok" : "wrong") : "";
  $("runner-up").textContent = r && r.top.length > 1
    ? r.top.slice(1).map((t) => `${t.answer} (${t.probability.toFixed(3)})`).join(", ") : "-";
}

function drawQuestions() {
  const ul = $("questions");
  ul.replaceChildren();
  const seeds = state.info.questions;
  state.scene.questions.forEach((q, k) => {
    if (k === seeds.length) { const sep = document.createElement("li"); sep.className = "sep"; ul.appendChild(sep); }
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.className = "question" + (q === state.question ? " active" : "");
    b.textContent = q;
    b.dataset.seed = k < seeds.length ? "1" : "0";
    b.addEventListener("click", () => choose(q));
    li.appendChild(b);
    ul.appendChild(li);
  });
}

function render() {
  drawScene();
  drawGrid();
  drawAnswer();
  drawQuestions();
  document.body.dataset.seq = state.seq;
}

// ------------------------------------------------------------------------------------------------ server calls

function sceneForServer() {
  if (state.mode === "scene") return { objects: state.scene.objects.map(({ color, shape, x, y }) => ({ color, shape, x, y })) };
  return { centres: state.scene.centres, shapes: state.scene.shapes };
}

async function ask() {
  if (!state.question) return;
  if (state.inflight) { state.dirty = true; return; }
  state.inflight = true;
  state.dirty = false;
  const question = state.question;
  try {
    const r = await post("/api/ask", { scene: sceneForServer(), question });
    state.result = r;
    state.question = state.lastGood = r.question;
    if (r.image) state.scene.image = r.image;
    showError("");
  } catch (e) {
    // A rejected (typed) question: show why and go back to the last question that worked.
    showError(e.message);
    if (question !== state.lastGood) state.question = state.lastGood || null;
  } finally {
    state.inflight = false;
    state.seq += 1;
    render();
    if (state.dirty) ask();
  }
}

function choose(q) {
  state.question = q;
  ask();
}

async function newScene(seed) {
  try {
    state.scene = await post("/api/scene", seed === undefined ? {} : { seed });
    showError("");
  } catch (e) {
    showError(e.message);
    return;
  }
  state.result = null;
  state.question = state.question || state.scene.questions[0];
  render();
  await ask();
}

// ------------------------------------------------------------------------------------------------ dragging

function svgPoint(evt) {
  const svg = $("scene");
  const p = svg.createSVGPoint();
  p.x = evt.clientX;
  p.y = evt.clientY;
  return p.matrixTransform(svg.getScreenCTM().inverse());
}

function setupDrag() {
  const svg = $("scene");
  svg.addEventListener("pointerdown", (evt) => {
    const t = evt.target.closest(".obj");
    if (!t) return;
    state.drag = { k: Number(t.dataset.index), id: evt.pointerId };
    svg.setPointerCapture(evt.pointerId);
    evt.preventDefault();
  });
  svg.addEventListener("pointermove", (evt) => {
    if (!state.drag || evt.pointerId !== state.drag.id) return;
    const p = svgPoint(evt);
    const k = state.drag.k;
    if (state.mode === "scene") {
      const clamp = (v) => Math.min(0.97, Math.max(0.03, v / SIZE));
      state.scene.objects[k].x = clamp(p.x);
      state.scene.objects[k].y = clamp(p.y);
    } else {
      const clamp = (v) => Math.min(69, Math.max(5, Math.round(v)));
      state.scene.centres[k] = [clamp(p.x), clamp(p.y)];
    }
    drawScene();
    ask();  // live: at most one request in flight, the latest position is sent next
  });
  const end = (evt) => {
    if (!state.drag || evt.pointerId !== state.drag.id) return;
    state.drag = null;
    ask();
  };
  svg.addEventListener("pointerup", end);
  svg.addEventListener("pointercancel", end);
}

// ------------------------------------------------------------------------------------------------ start

async function main() {
  const r = await fetch("/api/info");
  state.info = await r.json();
  state.mode = state.info.mode;
  $("mode").textContent = state.mode === "scene"
    ? "state-description RN, question LSTM"
    : `Sort-of-CLEVR CNN+RN: ${state.info.num_objects} ${state.info.objects === "keypoints" ? "learned keypoints" : "cells"} as objects`;
  const dl = $("forms");
  for (const f of state.info.forms) { const o = document.createElement("option"); o.value = f; dl.appendChild(o); }
  $("new-scene").addEventListener("click", () => newScene());
  $("ask-form").addEventListener("submit", (evt) => {
    evt.preventDefault();
    const text = $("question-input").value.trim();
    if (text) choose(text);
  });
  setupDrag();
  const seed = new URLSearchParams(location.search).get("seed");
  await newScene(seed === null ? undefined : Number(seed));
}

main().catch((e) => showError(String(e)));
