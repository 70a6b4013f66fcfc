// qkv explorer: vanilla JavaScript, no dependencies, no network beyond this server's /api.
// Every piece of text from the user or the model is set with textContent (never innerHTML),
// so a text containing <script> is shown as text and never runs.
"use strict";
(function () {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const STATIC = window.QKV_STATIC || null; // set by data.js in an exported (static) page
  const $ = (id) => document.getElementById(id);
  const state = { analysis: null, payload: null, token: null };

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function svgEl(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function fmt(x) { return Number(x).toFixed(4); }
  function vec(values, size) {
    const shown = values.slice(0, 12).map((v) => (v >= 0 ? "+" : "") + fmt(v)).join(", ");
    const n = size || values.length;
    return "[" + shown + (n > 12 ? ", …" : "") + "]  (" + n + " numbers)";
  }
  // a perceptually ordered colour ramp (white -> blue -> dark navy)
  function colour(w) {
    const t = Math.max(0, Math.min(1, w));
    const r = Math.round(247 - t * 239), g = Math.round(251 - t * 203), b = Math.round(255 - t * 148);
    return "rgb(" + r + "," + g + "," + b + ")";
  }

  async function api(path, body) {
    if (STATIC) return staticApi(path, body);
    const options = body === undefined ? {} : {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    };
    const response = await fetch(path, options);
    let data;
    try { data = await response.json(); } catch (e) { throw new Error("HTTP " + response.status); }
    if (!response.ok) throw new Error(data.error || "HTTP " + response.status);
    return data;
  }
  function staticApi(path, body) {
    if (path === "/api/info") return STATIC.info;
    const entry = STATIC.entries.find((e) => e.analysis.text === body.text);
    if (!entry) throw new Error("this static page has no precomputed data for that text");
    if (path === "/api/analyze") return entry.analysis;
    const walk = entry.walkthroughs[[body.kind, body.layer, body.head, body.token].join("/")];
    if (!walk) throw new Error("no precomputed walkthrough for that token");
    return walk;
  }

  function showError(message) { $("error").textContent = message || ""; }
  function setOptions(select, values, labels) {
    const previous = select.value;
    clear(select);
    values.forEach((v, i) => { const o = el("option", labels ? labels[i] : v); o.value = String(v); select.appendChild(o); });
    if (values.map(String).includes(previous)) select.value = previous;
  }

  function current() {
    const a = state.analysis, kind = $("kind").value;
    const layer = Number($("layer").value), head = Number($("head").value);
    const weights = a.attentions[kind][layer][head];
    return { kind, layer, head, weights, q: a.labels[kind].query, k: a.labels[kind].key };
  }

  async function analyze() {
    showError("");
    const text = STATIC ? $("static-texts").value : $("text").value;
    state.payload = { text: text, search: $("search").value };
    $("status").textContent = "running…";
    try {
      state.analysis = await api("/api/analyze", state.payload);
    } catch (err) {
      showError(err.message); $("status").textContent = ""; return;
    }
    $("status").textContent = "";
    const a = state.analysis;
    $("output-panel").hidden = !a.output;
    $("output-text").textContent = a.output;
    setOptions($("kind"), a.kinds);
    onKind();
    $("view-panel").hidden = false;
    $("walk-panel").hidden = true;
    state.token = null;
    draw();
  }

  function onKind() {
    const layers = state.analysis.attentions[$("kind").value];
    setOptions($("layer"), layers.map((_, i) => i));
    setOptions($("head"), layers[Number($("layer").value) || 0].map((_, i) => i));
  }

  function draw() {
    const c = current();
    const tokens = $("tokens");
    clear(tokens);
    c.q.forEach((tok, i) => {
      const b = el("button", tok, "token" + (state.token === i ? " selected" : ""));
      b.type = "button"; b.dataset.index = String(i); b.title = "query token " + i;
      b.addEventListener("click", () => explain(i));
      tokens.appendChild(b);
    });
    const figure = $("figure");
    clear(figure);
    figure.appendChild($("view").value === "lines" ? lines(c) : heatmap(c));
  }

  function heatmap(c) {
    const rows = c.q.length, cols = c.k.length;
    const cell = Math.max(6, Math.min(28, Math.floor(640 / Math.max(rows, cols))));
    const left = 120, top = 110;
    const svg = svgEl("svg", { width: left + cols * cell + 10, height: top + rows * cell + 10, class: "heatmap",
      "data-rows": rows, "data-cols": cols, role: "img" });
    svg.appendChild(svgEl("title", {}, c.kind + " layer " + c.layer + " head " + c.head));
    const every = Math.ceil(Math.max(rows, cols) / 60); // thin the labels on long inputs
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        const w = c.weights[i][j];
        const r = svgEl("rect", { x: left + j * cell, y: top + i * cell, width: cell, height: cell, fill: colour(w),
          class: "cell" + (state.token === i ? " selected-row" : ""), "data-row": i, "data-col": j });
        r.appendChild(svgEl("title", {}, c.q[i] + " → " + c.k[j] + ": " + fmt(w)));
        r.addEventListener("click", () => explain(i));
        svg.appendChild(r);
      }
      if (i % every === 0) {
        const t = svgEl("text", { x: left - 6, y: top + i * cell + cell / 2 + 4, "text-anchor": "end",
          class: "clickable row-label" + (state.token === i ? " selected" : "") }, c.q[i]);
        t.addEventListener("click", () => explain(i));
        svg.appendChild(t);
      }
    }
    for (let j = 0; j < cols; j += every) {
      const x = left + j * cell + cell / 2 + 4, y = top - 6;
      svg.appendChild(svgEl("text", { x: x, y: y, transform: "rotate(-60 " + x + " " + y + ")", class: "col-label" }, c.k[j]));
    }
    return svg;
  }

  function lines(c) {
    const rows = c.q.length, cols = c.k.length, step = 20, width = 520;
    const height = Math.max(rows, cols) * step + 30;
    const svg = svgEl("svg", { width: width, height: height, class: "lines", "data-rows": rows, "data-cols": cols });
    for (let i = 0; i < rows; i++) {
      if (state.token !== null && state.token !== i) continue;
      for (let j = 0; j < cols; j++) {
        const w = c.weights[i][j];
        if (w < 0.01) continue;
        svg.appendChild(svgEl("line", { x1: 150, y1: 20 + i * step, x2: width - 150, y2: 20 + j * step,
          stroke: "#3b7dd8", "stroke-width": 1 + 4 * w, "stroke-opacity": Math.min(1, 0.1 + w) }));
      }
    }
    c.q.forEach((tok, i) => {
      const t = svgEl("text", { x: 140, y: 24 + i * step, "text-anchor": "end",
        class: "clickable" + (state.token === i ? " selected" : "") }, tok);
      t.addEventListener("click", () => explain(i));
      svg.appendChild(t);
    });
    c.k.forEach((tok, j) => svg.appendChild(svgEl("text", { x: width - 140, y: 24 + j * step }, tok)));
    return svg;
  }

  async function explain(token) {
    showError("");
    state.token = token;
    draw();
    const c = current();
    let w;
    try {
      w = await api("/api/explain", Object.assign({}, state.payload, { kind: c.kind, layer: c.layer, head: c.head, token: token }));
    } catch (err) { showError(err.message); return; }
    renderWalk(w);
  }

  function step(list, title, body) {
    const li = el("li");
    li.appendChild(el("strong", title));
    if (typeof body === "string") li.appendChild(el("div", body, "vec")); else if (body) li.appendChild(body);
    list.appendChild(li);
  }

  function renderWalk(w) {
    const box = $("walkthrough");
    clear(box);
    box.appendChild(el("p", w.kind + " attention · layer " + w.layer + " · head " + w.head + " of " + w.n_heads +
      " · query token " + w.token + " “" + w.query_token + "”", "walk-title"));
    const ol = el("ol", null, "steps");
    step(ol, "input vector x (what enters this attention layer)", vec(w.x, w.x_size));
    step(ol, "query q = x·W_Q + b_Q (head " + w.head + ")", vec(w.q));
    const table = el("table");
    table.id = "walk-table";
    const head = el("tr");
    ["j", "key token", "k_j (first dims)", "q·k_j", "÷ √d_k", "softmax weight", ""].forEach((h) => head.appendChild(el("th", h)));
    table.appendChild(head);
    w.key_tokens.forEach((tok, j) => {
      const tr = el("tr");
      tr.appendChild(el("td", j));
      tr.appendChild(el("td", tok, "tok"));
      tr.appendChild(el("td", vec(w.keys[j].slice(0, 3), w.d_k), "vec"));
      if (w.allowed[j]) {
        tr.appendChild(el("td", fmt(w.dots[j])));
        tr.appendChild(el("td", fmt(w.scaled[j])));
      } else {
        tr.appendChild(el("td", "masked", "masked"));
        tr.appendChild(el("td", ""));
      }
      tr.appendChild(el("td", fmt(w.weights[j])));
      const barCell = el("td", null, "tok"), bar = el("span", null, "bar");
      bar.style.width = (w.weights[j] * 10).toFixed(2) + "em";
      barCell.appendChild(bar); tr.appendChild(barCell);
      table.appendChild(tr);
    });
    step(ol, "keys k_j = x_j·W_K + b_K, scores q·k_j, scaled by 1/√d_k = 1/√" + w.d_k + " = " + w.scale.toFixed(5) +
      ", softmax over the allowed keys", table);
    step(ol, "head output Σ_j w_j v_j (the values weighted by the softmax)", vec(w.head_output));
    step(ol, "concatenation of the " + w.n_heads + " heads' outputs", vec(w.concat, w.concat_size));
    step(ol, "output projection concat·W_O + b_O", vec(w.out, w.x_size));
    box.appendChild(ol);
    box.appendChild(el("p", "Checked against the model's own forward pass: max |difference| = " +
      Number(w.max_abs_error).toExponential(2), "muted check"));
    (w.notes || []).forEach((n) => box.appendChild(el("p", n, "muted")));
    $("walk-panel").hidden = false;
  }

  async function init() {
    $("run").addEventListener("click", analyze);
    $("kind").addEventListener("change", () => { onKind(); state.token = null; draw(); });
    $("layer").addEventListener("change", () => { onKind(); draw(); });
    $("head").addEventListener("change", draw);
    $("view").addEventListener("change", draw);
    if (STATIC) {
      $("text").hidden = true;
      const select = $("static-texts");
      select.hidden = false;
      const texts = STATIC.entries.map((e) => e.analysis.text);
      setOptions(select, texts);
      select.addEventListener("change", analyze);
      $("search").disabled = true;
    }
    try {
      const info = await api("/api/info");
      $("model-name").textContent = info.name + " (" + info.kind + ")";
      if (info.max_chars) $("text").maxLength = info.max_chars;
    } catch (err) { showError(err.message); }
    if (STATIC) analyze();
  }
  init();
})();
