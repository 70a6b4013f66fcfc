// qkv explorer: vanilla JavaScript, no dependencies, no network beyond this server's /api.
// Every piece of text from the user or the model is set with textContent (never innerHTML),
// so a text containing <script> is shown as text and never runs.
//
// Views: all heads at a glance (layers x heads grid of small maps, BertViz's "model view"); one head as
// a heatmap or as token-to-token lines; every head of a layer in its own colour ("head view"); and, for a
// clicked query token, the walkthrough: x -> q, k_j, v_j -> q.k_j (dimension by dimension) -> softmax ->
// w_j v_j summed to the head output -> concat -> W_O. Recurrent (Bahdanau / Luong) attention has its own
// walkthrough; a GPT run also shows the next-token probabilities at the clicked position.
"use strict";
(function () {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const STATIC = window.QKV_STATIC || null; // set by data.js in an exported (static) page
  const $ = (id) => document.getElementById(id);
  const state = { analysis: null, payload: null, token: null, info: null };
  const HEAD_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd"];

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
  function signed(v) { return (v >= 0 ? "+" : "") + fmt(v); }
  // a vector: the first numbers, its full size, and a button that shows every number it has
  function vecNode(values, size) {
    const n = size || values.length, shown = 8;
    const box = el("span", null, "vec");
    const text = el("span", "[" + values.slice(0, shown).map(signed).join(", ") + (values.length > shown ? ", …" : "") + "]");
    box.appendChild(text);
    const cut = values.length < n ? "first " + values.length + " of " + n + " numbers" : n + " numbers";
    box.appendChild(el("span", "  (" + cut + ")", "muted"));
    if (values.length > shown) {
      const more = el("button", "show all", "more");
      more.type = "button";
      more.addEventListener("click", () => {
        const open = more.textContent === "show all";
        text.textContent = "[" + (open ? values : values.slice(0, shown)).map(signed).join(", ") + (open ? "" : ", …") + "]";
        more.textContent = open ? "show fewer" : "show all";
      });
      box.appendChild(more);
    }
    box.dataset.values = values.join(",");
    return box;
  }
  // a perceptually ordered colour ramp (white -> blue -> dark navy) for weights in [0, 1]
  function colour(w) {
    const t = Math.max(0, Math.min(1, w));
    const r = Math.round(247 - t * 239), g = Math.round(251 - t * 203), b = Math.round(255 - t * 148);
    return "rgb(" + r + "," + g + "," + b + ")";
  }
  // diverging: blue for negative, red for positive products, white at 0
  function diverging(v, max) {
    const t = Math.max(-1, Math.min(1, v / (max || 1)));
    if (t >= 0) return "rgb(255," + Math.round(255 - 170 * t) + "," + Math.round(255 - 190 * t) + ")";
    return "rgb(" + Math.round(255 + 190 * t) + "," + Math.round(255 + 120 * t) + ",255)";
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
    if (path === "/api/next") throw new Error("next-token probabilities need the server (qkv serve)");
    const walk = entry.walkthroughs[[body.kind, body.layer, body.head, body.token].join("/")];
    if (!walk) throw new Error("no precomputed walkthrough for that token");
    return walk;
  }

  // Answers can come back out of order (a slow /api/next for top-k "all", then a fast one for top-k 3).
  // Each request kind takes a ticket; an answer whose ticket is no longer the newest is dropped,
  // so the page always shows the last thing the reader asked for.
  const tickets = {};
  function ticket(kind) {
    const mine = (tickets[kind] = (tickets[kind] || 0) + 1);
    return () => tickets[kind] === mine;
  }

  function showError(message) { $("error").textContent = message || ""; }
  function setOptions(select, values, labels) {
    const previous = select.value;
    clear(select);
    values.forEach((v, i) => { const o = el("option", labels ? labels[i] : v); o.value = String(v); select.appendChild(o); });
    if (values.map(String).includes(previous)) select.value = previous;
  }

  const AXES = { encoder_self: ["source token (query)", "source token (key)"],
    decoder_self: ["target token (query)", "target token (key)"], cross: ["target token (query)", "source token (key)"] };
  const PLURAL = { "source token (query)": "source tokens (queries)", "source token (key)": "source tokens (keys)",
    "target token (query)": "target tokens (queries)", "target token (key)": "target tokens (keys)" };
  function current() {
    const a = state.analysis, kind = $("kind").value;
    const layer = Number($("layer").value), head = Number($("head").value);
    const weights = a.attentions[kind][layer][head];
    return { kind, layer, head, weights, layers: a.attentions[kind], q: a.labels[kind].query, k: a.labels[kind].key,
      axes: AXES[kind] || ["query token", "key token"] };
  }

  async function analyze() {
    showError("");
    const text = STATIC ? $("static-texts").value : $("text").value;
    // the drawn tokens stay those of the previous text until this answer comes, so a click meanwhile still
    // asks about the previous text: the new payload becomes the page's only when its analysis is drawn
    const payload = { text: text, search: $("search").value };
    $("status").textContent = "running…";
    const fresh = ticket("analyze");
    let analysis;
    try {
      analysis = await api("/api/analyze", payload);
    } catch (err) {
      if (fresh()) { showError(err.message); $("status").textContent = ""; }
      return;
    }
    if (!fresh()) return;
    showError("");  // an error about the previous text, shown while this analysis was on its way
    state.payload = payload;
    state.analysis = analysis;
    $("status").textContent = "";
    const a = state.analysis;
    $("output-panel").hidden = !a.output;
    $("output-text").textContent = a.output;
    $("normalised").textContent = a.text !== text ? "the model read: “" + a.text + "”" : "";
    if (STATIC && a.search) $("search").value = a.search;  // the (disabled) menu names the export's own search
    setOptions($("kind"), a.kinds);
    onKind();
    $("view-panel").hidden = false;
    deselect();
  }

  // no token selected: its walkthrough and next-token table go too (they would describe a token not shown as chosen)
  function deselect() {
    ticket("explain"); ticket("next");  // and answers still on their way for it are dropped
    $("walk-panel").hidden = true;
    $("next-panel").hidden = true;
    state.token = null;
    draw();
  }

  // another layer or head: the selected token's walkthrough follows it (the next-token table does not depend on it)
  function onHead() {
    if (state.token !== null) explain(state.token, { next: false }); else draw();
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
    const view = $("view").value;
    figure.appendChild(view === "lines" ? lines(c) : view === "heads" ? headView(c) : heatmap(c));
    figure.appendChild(legend(view === "heads" ? null : "attention weight (0 to 1)"));
    drawGrid(c);
  }

  // a colour bar for the weights, or (head view) one swatch per head
  function legend(title) {
    const box = el("div", null, "legend");
    if (title) {
      box.appendChild(el("span", "0 "));
      const bar = svgEl("svg", { width: 160, height: 12, class: "colourbar" });
      for (let i = 0; i < 32; i++) bar.appendChild(svgEl("rect", { x: i * 5, y: 0, width: 5, height: 12, fill: colour(i / 31) }));
      box.appendChild(bar);
      box.appendChild(el("span", " 1 — " + title));
    }
    return box;
  }

  function heatmap(c, opts) {
    const rows = c.q.length, cols = c.k.length;
    const cell = Math.max(6, Math.min(28, Math.floor(640 / Math.max(rows, cols))));
    const left = 140, top = 120;
    const svg = svgEl("svg", { width: left + cols * cell + 20, height: top + rows * cell + 40, class: "heatmap",
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
    svg.appendChild(svgEl("text", { x: left + (cols * cell) / 2, y: top + rows * cell + 24, "text-anchor": "middle",
      class: "axis-title" }, c.axes[1]));
    const yx = 14, yy = top + (rows * cell) / 2;
    svg.appendChild(svgEl("text", { x: yx, y: yy, transform: "rotate(-90 " + yx + " " + yy + ")", "text-anchor": "middle",
      class: "axis-title" }, c.axes[0]));
    return svg;
  }

  function lines(c) {
    const rows = c.q.length, cols = c.k.length, step = 20, width = 520;
    const height = Math.max(rows, cols) * step + 50;
    const svg = svgEl("svg", { width: width, height: height, class: "lines", "data-rows": rows, "data-cols": cols });
    svg.appendChild(svgEl("text", { x: 140, y: 14, "text-anchor": "end", class: "axis-title" }, c.axes[0]));
    svg.appendChild(svgEl("text", { x: width - 140, y: 14, class: "axis-title" }, c.axes[1]));
    for (let i = 0; i < rows; i++) {
      if (state.token !== null && state.token !== i) continue;
      for (let j = 0; j < cols; j++) {
        const w = c.weights[i][j];
        if (w < 0.01) continue;
        svg.appendChild(svgEl("line", { x1: 150, y1: 40 + i * step, x2: width - 150, y2: 40 + j * step,
          stroke: "#3b7dd8", "stroke-width": 1 + 4 * w, "stroke-opacity": Math.min(1, 0.1 + w) }));
      }
    }
    tokenColumns(svg, c, 140, width - 140, step);
    return svg;
  }

  function tokenColumns(svg, c, xq, xk, step) {
    c.q.forEach((tok, i) => {
      const t = svgEl("text", { x: xq, y: 44 + i * step, "text-anchor": "end",
        class: "clickable q-label" + (state.token === i ? " selected" : "") }, tok);
      t.addEventListener("click", () => explain(i));
      svg.appendChild(t);
    });
    c.k.forEach((tok, j) => svg.appendChild(svgEl("text", { x: xk, y: 44 + j * step, class: "k-label" }, tok)));
  }

  // every head of the layer, each in its own colour (BertViz's head view); click a token to see only its lines
  function headView(c) {
    const rows = c.q.length, cols = c.k.length, step = 20, width = 560;
    const heads = c.layers[c.layer];
    const box = el("div", null, "head-view");
    const keyBox = el("div", null, "head-key");
    const shown = state.headsShown || (state.headsShown = {});
    heads.forEach((_, h) => {
      const label = el("label", null, "head-swatch");
      const cb = el("input");
      cb.type = "checkbox"; cb.checked = shown[h] !== false; cb.dataset.head = String(h);
      cb.addEventListener("change", () => { shown[h] = cb.checked; draw(); });
      const sw = el("span", "■", "swatch"); sw.style.color = HEAD_COLOURS[h % HEAD_COLOURS.length];
      label.appendChild(cb); label.appendChild(sw); label.appendChild(el("span", " head " + h + " "));
      keyBox.appendChild(label);
    });
    box.appendChild(keyBox);
    const svg = svgEl("svg", { width: width, height: Math.max(rows, cols) * step + 50, class: "head-lines",
      "data-heads": heads.length });
    svg.appendChild(svgEl("text", { x: 150, y: 14, "text-anchor": "end", class: "axis-title" }, c.axes[0]));
    svg.appendChild(svgEl("text", { x: width - 150, y: 14, class: "axis-title" }, c.axes[1]));
    heads.forEach((w, h) => {
      if (shown[h] === false) return;
      const offset = (h - (heads.length - 1) / 2) * 1.2; // heads side by side, not on top of each other
      for (let i = 0; i < rows; i++) {
        if (state.token !== null && state.token !== i) continue;
        for (let j = 0; j < cols; j++) {
          if (w[i][j] < 0.05) continue;
          svg.appendChild(svgEl("line", { x1: 160, y1: 40 + i * step + offset, x2: width - 160, y2: 40 + j * step + offset,
            stroke: HEAD_COLOURS[h % HEAD_COLOURS.length], "stroke-width": 0.5 + 3 * w[i][j],
            "stroke-opacity": Math.min(0.9, 0.15 + w[i][j]), "data-head": h }));
        }
      }
    });
    tokenColumns(svg, c, 150, width - 150, step);
    box.appendChild(svg);
    box.appendChild(el("p", "Line width and opacity: the attention weight; click a query token to keep only its lines.", "muted"));
    return box;
  }

  // layers x heads: one small map per head (BertViz's model view); click one to open it above
  function drawGrid(c) {
    const grid = $("grid");
    clear(grid);
    const layers = c.layers, rows = c.q.length, cols = c.k.length;
    const size = Math.max(48, Math.min(96, Math.floor(760 / Math.max(1, layers[0].length))));
    const table = el("table", null, "grid");
    table.dataset.layers = String(layers.length);
    table.dataset.heads = String(layers[0].length);
    const head = el("tr");
    head.appendChild(el("th", ""));
    layers[0].forEach((_, h) => head.appendChild(el("th", "head " + h)));
    table.appendChild(head);
    layers.forEach((heads, l) => {
      const tr = el("tr");
      tr.appendChild(el("th", "layer " + l));
      heads.forEach((w, h) => {
        const td = el("td");
        const svg = svgEl("svg", { width: size, height: size, class: "mini" + (l === c.layer && h === c.head ? " current" : ""),
          "data-layer": l, "data-head": h, viewBox: "0 0 " + cols + " " + rows, preserveAspectRatio: "none" });
        svg.appendChild(svgEl("title", {}, c.kind + " layer " + l + " head " + h + " (rows: " + c.axes[0] +
          ", columns: " + c.axes[1] + ")"));
        for (let i = 0; i < rows; i++) {
          for (let j = 0; j < cols; j++) {
            if (w[i][j] < 0.02) continue; // white background: only visible cells are drawn
            svg.appendChild(svgEl("rect", { x: j, y: i, width: 1, height: 1, fill: colour(w[i][j]) }));
          }
        }
        svg.addEventListener("click", () => {
          $("layer").value = String(l); onKind(); $("head").value = String(h); onHead();
        });
        td.appendChild(svg);
        tr.appendChild(td);
      });
      table.appendChild(tr);
    });
    grid.appendChild(el("p", c.kind + ": every layer and head. In each map the rows are the " +
      (PLURAL[c.axes[0]] || c.axes[0]) + " and the columns the " + (PLURAL[c.axes[1]] || c.axes[1]) +
      ", as in the heatmap above; click a map to open it there.", "muted"));
    grid.appendChild(table);
    grid.appendChild(legend("attention weight (0 to 1)"));
  }

  async function explain(token, { next = true } = {}) {
    showError("");
    state.token = token;
    draw();
    const c = current();
    const fresh = ticket("explain");
    // a language model's next-token table is asked for at once, beside the walkthrough (not after it, so a
    // walkthrough superseded or failed cannot leave the table showing another token); a static page has no server
    if (next && state.info && state.info.kind === "lm" && !STATIC) nextTokens(token);
    let w;
    try {
      w = await api("/api/explain", Object.assign({}, state.payload, { kind: c.kind, layer: c.layer, head: c.head, token: token }));
    } catch (err) {
      if (fresh()) { showError(err.message); $("walk-panel").hidden = true; }  // not the previous head's walkthrough
      return;
    }
    if (!fresh()) return;
    if (w.family && w.family !== "dot-product") renderRecurrent(w); else renderWalk(w);
  }

  function step(list, title, body) {
    const li = el("li");
    li.appendChild(el("strong", title));
    if (typeof body === "string") li.appendChild(el("div", body, "vec")); else if (body) li.appendChild(el("div")).appendChild(body);
    list.appendChild(li);
    return li;
  }

  function scoreTable(w, scoreTitle, scaledTitle) {
    const table = el("table");
    table.id = "walk-table";
    const head = el("tr");
    ["j", "key token", scoreTitle, scaledTitle, "softmax weight w_j", ""].forEach((h) => head.appendChild(el("th", h)));
    table.appendChild(head);
    w.key_tokens.forEach((tok, j) => {
      const tr = el("tr");
      tr.appendChild(el("td", j));
      tr.appendChild(el("td", tok, "tok"));
      if (w.allowed[j]) {
        tr.appendChild(el("td", fmt(w.dots[j])));
        tr.appendChild(el("td", scaledTitle ? fmt(w.scaled[j]) : ""));
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
    return table;
  }

  // the value side: each v_j, its weight, w_j v_j, and their sum (checked here against the head output)
  function valueTable(w, values, weighted, output, size) {
    const box = el("div");
    const table = el("table");
    table.id = "value-table";
    const head = el("tr");
    ["j", "key token", "w_j", "v_j", "w_j · v_j"].forEach((h) => head.appendChild(el("th", h)));
    table.appendChild(head);
    w.key_tokens.forEach((tok, j) => {
      const tr = el("tr", null, "value-row");
      tr.appendChild(el("td", j));
      tr.appendChild(el("td", tok, "tok"));
      tr.appendChild(el("td", fmt(w.weights[j])));
      tr.appendChild(el("td")).appendChild(vecNode(values[j], size));
      const wv = el("td", null, "weighted");
      wv.appendChild(vecNode(weighted[j], size));
      tr.appendChild(wv);
      table.appendChild(tr);
    });
    const sum = el("tr", null, "sum-row");
    sum.appendChild(el("td", "Σ"));
    sum.appendChild(el("td", "head output", "tok"));
    sum.appendChild(el("td", fmt(w.weights.reduce((a, b) => a + b, 0))));
    sum.appendChild(el("td", ""));
    const out = el("td", null, "head-output");
    out.appendChild(vecNode(output, size));
    sum.appendChild(out);
    table.appendChild(sum);
    box.appendChild(table);
    const total = output.map((_, d) => weighted.reduce((acc, row) => acc + row[d], 0));
    const diff = Math.max(...total.map((v, d) => Math.abs(v - output[d])));
    const check = el("p", "Adding the rows w_j · v_j above, dimension by dimension, gives the head output: max |difference| = " +
      diff.toExponential(2) + " (rounding of the numbers shown).", "muted check value-check");
    check.dataset.diff = String(diff);
    box.appendChild(check);
    return box;
  }

  // q ∘ k_j: the product of q and k_j in every dimension; a row's sum is the score q · k_j
  function neuronView(w) {
    const d = w.q.length, rows = w.keys.length, cell = Math.max(6, Math.min(16, Math.floor(520 / d)));
    const prods = w.keys.map((k) => k.map((kd, i) => kd * w.q[i]));
    const max = Math.max(1e-9, ...prods.map((r) => Math.max(...r.map(Math.abs))));
    const left = 130, top = 30, partial = d < w.d_k;  // a static page keeps only the first dimensions
    const svg = svgEl("svg", { width: left + d * cell + (partial ? 230 : 90), height: top + rows * cell + 40, class: "neuron",
      "data-rows": rows, "data-dims": d });
    svg.appendChild(svgEl("text", { x: left, y: 16, class: "axis-title" }, "dimension d of the head (0.." + (d - 1) + ")"));
    svg.appendChild(svgEl("text", { x: left + d * cell + 8, y: 16, class: "axis-title" },
      partial ? "Σ of these " + d + " of " + w.d_k + " (partial q·k_j)" : "Σ_d = q·k_j"));
    prods.forEach((row, j) => {
      row.forEach((v, i) => {
        const r = svgEl("rect", { x: left + i * cell, y: top + j * cell, width: cell, height: cell, fill: diverging(v, max),
          class: "prod" });
        r.appendChild(svgEl("title", {}, w.key_tokens[j] + ", dimension " + i + ": q_d·k_jd = " + fmt(w.q[i]) + " × " +
          fmt(w.keys[j][i]) + " = " + fmt(v)));
        svg.appendChild(r);
      });
      svg.appendChild(svgEl("text", { x: left - 6, y: top + j * cell + cell - 2, "text-anchor": "end" }, w.key_tokens[j]));
      const total = row.reduce((a, b) => a + b, 0);
      svg.appendChild(svgEl("text", { x: left + d * cell + 8, y: top + j * cell + cell - 2, class: "row-sum" }, fmt(total)));
    });
    const box = el("div");
    box.appendChild(svg);
    box.appendChild(el("p", "Red: the dimension pushes the score up (q and k_j agree in sign), blue: down; " +
      "the darkest shade is ±" + fmt(max) + ". Hover a cell for its numbers.", "muted"));
    return box;
  }

  function renderWalk(w) {
    const box = $("walkthrough");
    clear(box);
    box.appendChild(el("p", w.kind + " attention · layer " + w.layer + " · head " + w.head + " of " + w.n_heads +
      " · query token " + w.token + " “" + w.query_token + "”", "walk-title"));
    const ol = el("ol", null, "steps");
    step(ol, "input vector x (what enters this attention layer: in a pre-norm model the LayerNorm of the residual stream)",
      vecNode(w.x, w.x_size));
    step(ol, "query q = x·W_Q + b_Q (head " + w.head + ")", vecNode(w.q, w.d_k));
    const kv = el("table");
    const kvHead = el("tr");
    ["j", "key token", "k_j = x_j·W_K + b_K", "v_j = x_j·W_V + b_V"].forEach((h) => kvHead.appendChild(el("th", h)));
    kv.appendChild(kvHead);
    w.key_tokens.forEach((tok, j) => {
      const tr = el("tr");
      tr.appendChild(el("td", j)); tr.appendChild(el("td", tok, "tok"));
      tr.appendChild(el("td")).appendChild(vecNode(w.keys[j], w.d_k));
      tr.appendChild(el("td")).appendChild(vecNode(w.values[j], w.d_k));
      kv.appendChild(tr);
    });
    step(ol, "keys and values of the " + w.key_tokens.length + " key tokens" +
      (w.kv_head !== w.head ? " (key/value head " + w.kv_head + ", shared by several query heads)" : ""), kv);
    const scores = el("div");
    scores.appendChild(scoreTable(w, "q·k_j", "÷ √d_k"));
    const details = el("details");
    details.appendChild(el("summary", "q ∘ k_j dimension by dimension: which dimensions make a score large"));
    details.appendChild(neuronView(w));
    scores.appendChild(details);
    step(ol, "scores q·k_j, scaled by 1/√d_k = 1/√" + w.d_k + " = " + w.scale.toFixed(5) +
      ", softmax over the allowed keys", scores);
    step(ol, "head output Σ_j w_j v_j: the values, weighted by the softmax", valueTable(w, w.values, w.weighted_values, w.head_output, w.d_k));
    step(ol, "concatenation of the " + w.n_heads + " heads' outputs", vecNode(w.concat, w.concat_size));
    step(ol, "output projection out = concat·W_O + b_O", vecNode(w.out, w.out_size || w.x_size));
    box.appendChild(ol);
    box.appendChild(el("p", "Checked against the model's own forward pass: max |difference| = " +
      Number(w.max_abs_error).toExponential(2), "muted check"));
    (w.notes || []).forEach((n) => box.appendChild(el("p", n, "muted")));
    if (w.flow) box.appendChild(dataFlow(w.flow));
    $("walk-panel").hidden = false;
  }

  // the whole layer around this attention, for this token: each box opens its real numbers
  function dataFlow(flow) {
    const box = el("details", null, "flow");
    box.id = "flow";
    box.appendChild(el("summary", "data flow of layer " + flow.layer + " for this token: embedding + position, " +
      "LayerNorm, attention, residual, MLP, logits"));
    const ol = el("ol", null, "flow-stages");
    let stream = null;
    flow.stages.forEach((st, i) => {
      const li = el("li", null, "flow-stage");
      li.dataset.child = st.child || "";
      li.appendChild(el("strong", st.what));
      if (st.input) {
        const input = el("div", null, "flow-input");
        input.appendChild(el("span", "in (the residual stream here): ", "muted"));
        input.appendChild(vecNode(st.input, st.input_size));
        li.appendChild(input);
      }
      const out = el("div", null, "flow-output");
      out.appendChild(vecNode(st.vector, st.vector_size));
      li.appendChild(out);
      ol.appendChild(li);
      if (st.what.startsWith("layer input")) stream = st.vector;
      const sublayer = st.child && !st.child.includes("norm");
      if (flow.norm_first && sublayer && stream) { // pre-norm: stream + sub-layer output = the next stream
        const next = flow.stages.slice(i + 1).find((n) => n.input || n.what.startsWith("layer output"));
        if (!next) return;
        const after = next.input || next.vector;
        const diff = Math.max(...after.map((v, d) => Math.abs(stream[d] + st.vector[d] - v)));
        const check = el("p", "residual: the stream + this output = the next stream (max |difference| " +
          diff.toExponential(2) + ")", "muted residual-check");
        check.dataset.diff = String(diff);
        li.appendChild(check);
        stream = after;
      }
    });
    box.appendChild(ol);
    if (flow.next) {
      box.appendChild(el("p", "after the last layer, the logits at this position give the next token: " +
        flow.next.map((n) => JSON.stringify(n.token) + " " + fmt(n.p)).join(", "), "muted flow-next"));
    }
    return box;
  }

  // Bahdanau (additive) and Luong (multiplicative) attention: one query, the decoder state
  function renderRecurrent(w) {
    const box = $("walkthrough");
    clear(box);
    box.appendChild(el("p", w.title + " · query token " + w.token + " “" + w.query_token + "”", "walk-title"));
    const ol = el("ol", null, "steps");
    step(ol, "query s = " + w.query_name, vecNode(w.query, w.query_size));
    step(ol, "keys = values h_j: the encoder states of the " + w.key_tokens.length + " source tokens", null);
    if (w.family === "additive") {
      step(ol, "W s (the query projected into the attention space)", vecNode(w.projected_query, w.projected_size));
      const t = el("table");
      const h = el("tr");
      ["j", "key token", "U h_j + b", "tanh(W s + U h_j + b)", "e_j = vᵀ tanh(…)"].forEach((x) => h.appendChild(el("th", x)));
      t.appendChild(h);
      w.key_tokens.forEach((tok, j) => {
        const tr = el("tr");
        tr.appendChild(el("td", j)); tr.appendChild(el("td", tok, "tok"));
        tr.appendChild(el("td")).appendChild(vecNode(w.projected_keys[j], w.projected_size));
        tr.appendChild(el("td")).appendChild(vecNode(w.hidden[j], w.projected_size));
        tr.appendChild(el("td", fmt(w.dots[j])));
        t.appendChild(tr);
      });
      step(ol, "for every source token: U h_j + b, add W s, tanh, then the dot product with v", t);
    } else {
      if (w.projected_keys) step(ol, "W_a h_j for every source token (Luong's general score)", null);
    }
    step(ol, "scores, softmax over the source tokens", scoreTable(w, w.family === "additive" ? "e_j" : "score", ""));
    step(ol, "context c = Σ_j w_j h_j: the values weighted by the softmax", valueTable(w, w.values, w.weighted_values, w.context, w.value_size));
    box.appendChild(ol);
    box.appendChild(el("p", "Checked against the model's own forward pass: max |difference| = " +
      Number(w.max_abs_error).toExponential(2), "muted check"));
    (w.notes || []).forEach((n) => box.appendChild(el("p", n, "muted")));
    $("walk-panel").hidden = false;
  }

  // language models: the next-token distribution after the clicked position
  async function nextTokens(token) {
    const panel = $("next-panel");
    showError("");  // e.g. an earlier "temperature must be > 0"
    const fresh = ticket("next");
    let r;
    try {
      r = await api("/api/next", Object.assign({}, state.payload, { position: token,
        temperature: Number($("temperature").value), top_k: Number($("top-k").value) }));
    } catch (err) { if (fresh()) showError(err.message); return; }
    if (!fresh()) return;
    const box = $("next");
    clear(box);
    box.appendChild(el("p", "after “" + r.context_tail + "” (position " + r.position + "), temperature " + r.temperature +
      ", top-k " + (r.top_k || "all") + ":", "muted"));
    const table = el("table");
    table.id = "next-table";
    const head = el("tr");
    ["next token", "probability", ""].forEach((h) => head.appendChild(el("th", h)));
    table.appendChild(head);
    r.tokens.forEach((tok, i) => {
      const tr = el("tr", null, "next-row");
      tr.appendChild(el("td", JSON.stringify(tok), "tok"));
      const p = el("td", fmt(r.probs[i]));
      p.dataset.p = String(r.probs[i]);
      tr.appendChild(p);
      const barCell = el("td", null, "tok"), bar = el("span", null, "bar");
      bar.style.width = (r.probs[i] * 12).toFixed(2) + "em";
      barCell.appendChild(bar); tr.appendChild(barCell);
      table.appendChild(tr);
    });
    box.appendChild(table);
    box.appendChild(el("p", r.rest > 0 ? "all other tokens together: " + fmt(r.rest) : "", "muted"));
    panel.hidden = false;
  }

  async function init() {
    $("run").addEventListener("click", analyze);
    $("kind").addEventListener("change", () => { onKind(); deselect(); });  // token i of another kind is another token
    $("layer").addEventListener("change", () => { onKind(); onHead(); });
    $("head").addEventListener("change", onHead);
    $("view").addEventListener("change", draw);
    ["temperature", "top-k"].forEach((id) => $(id).addEventListener("change", () => {
      if (state.token !== null) nextTokens(state.token);
    }));
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
      state.info = info;
      $("model-name").textContent = info.name + " (" + info.kind + (info.task ? ", " + info.task : "") + ")";
      if (info.max_chars) $("text").maxLength = info.max_chars;
      if (info.example && !STATIC) $("text").value = info.example;
      $("lm-controls").hidden = info.kind !== "lm" || !!STATIC;  // next-token probabilities need the server
    } catch (err) { showError(err.message); return; }
    analyze(); // render on load: the example, every head
  }
  init();
})();
