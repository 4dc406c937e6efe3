// Acta's page for residents: reads this node's API and shows the chain, budget rounds and
// their results, identities, credentials and sensors. Plain JavaScript, no build step.
// Every text comes from lang/<language>.json (translate that one file); every value from
// the API is written with textContent, never as HTML.
"use strict";

let strings = {};

/** The text of `key`, with `{name}` replaced by `values.name`. */
function t(key, values = {}) {
  const s = strings[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => (k in values ? String(values[k]) : `{${k}}`));
}

/** An element with attributes and children (strings become text). */
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(typeof c === "string" || typeof c === "number" ? String(c) : c);
  }
  return e;
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(typeof c === "string" ? c : c);
  return e;
}

class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

/** GET `path` on this node, as text; an error answer becomes an ApiError with its message. */
async function apiText(path) {
  let r;
  try {
    r = await fetch(path, { headers: { Accept: "application/json" } });
  } catch (e) {
    throw new ApiError(t("unreachable", { message: e.message }));
  }
  const text = await r.text();
  if (!r.ok) {
    let message = `HTTP ${r.status}`;
    try {
      message = JSON.parse(text).message ?? message;
    } catch {
      // Not JSON: the status says it.
    }
    throw new ApiError(t("error", { message }), r.status);
  }
  return text;
}

/** GET `path` on this node, as JSON. */
async function api(path) {
  const text = await apiText(path);
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(t("error", { message: "not JSON" }));
  }
}

/** Milliseconds since 1970 as a UTC time people read. */
function when(ms) {
  if (typeof ms !== "number") return String(ms ?? "-");
  return new Date(ms).toISOString().replace(".000Z", "Z").replace("T", " ");
}

/** A date or time a person typed (2027-03-01, 2027-03-01T09:00Z) as milliseconds. */
function parseTime(s) {
  const ms = Date.parse(/^\d{4}-\d\d-\d\d$/.test(s) ? `${s}T00:00:00Z` : s);
  return Number.isNaN(ms) ? null : ms;
}

function amount(n, currency) {
  const s = Number(n).toLocaleString("en-US");
  return currency ? `${currency} ${s}` : s;
}

/** A definition list of (label, value) pairs. */
function facts(pairs) {
  return el("dl", { class: "facts" },
    pairs.filter(([, v]) => v !== undefined).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

function table(caption, head, rows) {
  return el("table", {},
    el("caption", {}, caption),
    el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, c))))));
}

function short(s, n = 12) {
  s = String(s ?? "");
  return s.length > n + 1 ? `${s.slice(0, n)}…` : s;
}

/** The height of the last block at or before `ms`, by bisecting block headers. */
async function heightAt(ms) {
  const latest = await api("/blocks/latest");
  const timeOf = (b) => b.block.header.time;
  let hi = latest.block.header.height;
  if (timeOf(latest) <= ms) return hi;
  let lo = 1;
  if (timeOf(await api("/blocks/1")) > ms) return 0;
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (timeOf(await api(`/blocks/${mid}`)) <= ms) lo = mid; else hi = mid;
  }
  return lo;
}

// --- Views -------------------------------------------------------------------------------

async function chainView(view) {
  const [status, latest] = await Promise.all([api("/status"), api("/blocks/latest")]);
  const health = await fetch("/health").then((r) => r.json()).catch(() => null);
  const healthy = health && (health.status === "ok" || health.live === true || (health.reasons ?? []).length === 0);
  view.append(el("h1", {}, t("chain.title")),
    facts([
      [t("chain.health"), healthy ? t("chain.healthy") : t("chain.unhealthy", { reasons: (health?.reasons ?? []).join(", ") })],
      [t("chain.id"), status.chain_id],
      [t("chain.height"), status.height],
      [t("chain.last_block"), when(latest.block.header.time)],
      [t("chain.validators"), Array.isArray(status.validators) ? status.validators.length : status.validators],
    ]));
  const top = latest.block.header.height;
  const heights = [];
  for (let h = top; h > Math.max(0, top - 10); h--) heights.push(h);
  const blocks = await Promise.all(heights.map((h) => (h === top ? latest : api(`/blocks/${h}`))));
  view.append(table(t("chain.recent"), [t("block.height"), t("block.time"), t("block.txs"), t("block.hash")],
    blocks.map((b) => [String(b.block.header.height), when(b.block.header.time), String(b.block.txs?.length ?? 0), el("code", {}, short(b.hash, 16))])));
}

function phaseText(p) {
  return t(`round.phase.${p}`);
}

async function roundsView(view) {
  const list = await api("/budget/rounds?limit=100");
  view.append(el("h1", {}, t("rounds.title")));
  const rounds = list.rounds ?? [];
  if (rounds.length === 0) {
    view.append(el("p", {}, t("rounds.none")));
    return;
  }
  const byDistrict = new Map();
  for (const r of rounds) {
    const d = r.round.spec.district;
    if (!byDistrict.has(d)) byDistrict.set(d, []);
    byDistrict.get(d).push(r);
  }
  for (const [district, items] of byDistrict) {
    view.append(el("h2", {}, t("rounds.district", { district })),
      el("ul", { class: "cards" }, items.map((r) => el("li", {},
        el("a", { href: `#/rounds/${r.round.id}` }, r.round.spec.title),
        el("p", {}, `${phaseText(r.phase)} · ${amount(r.round.spec.budget, r.round.spec.currency)} · ${t("round.ballots")}: ${r.round.voters}`),
        el("p", { class: "muted" }, t("round.dates", { p: r.dates.proposals_from, v: r.dates.voting_from, c: r.dates.closes_at }))))));
  }
}

/** A horizontal bar chart: one row per project, bar length its supporters. */
function supportChart(projects, approvals, selected, voters) {
  const rowH = 28, labelW = 0, width = 600;
  const max = Math.max(1, voters, ...approvals);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${rowH * projects.length + 10}`, role: "img", "aria-label": t("round.chart"), class: "chart" });
  projects.forEach((p, i) => {
    const n = approvals[i] ?? 0;
    const y = i * rowH + 5;
    const w = Math.max(2, ((width - labelW - 160) * n) / max);
    chart.append(svg("rect", { x: labelW, y, width: w, height: rowH - 8, class: selected.has(i) ? "bar funded" : "bar" }));
    chart.append(svg("text", { x: labelW + w + 6, y: y + rowH - 13, class: "bar-label" }, `${n} · ${short(p.title, 28)}`));
  });
  return el("figure", {}, chart, el("figcaption", {}, t("round.chart")));
}

async function roundView(view, id) {
  const r = await api(`/budget/rounds/${encodeURIComponent(id)}`);
  const spec = r.round.spec;
  view.append(el("h1", {}, spec.title),
    facts([
      [t("round.phase"), r.phase_left_ms ? `${phaseText(r.phase)}, ${t("round.left", { left: duration(r.phase_left_ms) })}` : phaseText(r.phase)],
      [t("round.budget"), amount(spec.budget, spec.currency)],
      [t("round.ballots"), r.round.voters],
      [t("nav.rounds"), t("round.dates", { p: r.dates.proposals_from, v: r.dates.voting_from, c: r.dates.closes_at })],
    ]));
  const projects = (await api(`/budget/rounds/${encodeURIComponent(id)}/proposals`)).projects ?? [];
  let result = null;
  const cancelled = r.round.status?.cancelled;
  if (cancelled) {
    view.append(el("p", { class: "muted" }, t("round.cancelled", { height: cancelled.at })));
  } else {
    try {
      result = await api(`/budget/rounds/${encodeURIComponent(id)}/result`);
    } catch (e) {
      view.append(el("p", { class: "muted" }, t("round.no_result", { message: e.message })));
    }
  }
  if (!result) {
    view.append(table(t("round.projects"), [t("round.project"), t("round.cost")],
      projects.map((p) => [p.title, amount(p.cost, spec.currency)])));
    return;
  }
  const tally = result.result;
  const selected = new Set(tally.selected);
  const approvals = tally.approvals ?? [];
  view.append(el("h2", {}, t("round.result")),
    el("p", {}, t("round.spent", { spent: amount(tally.total_cost, spec.currency), budget: amount(spec.budget, spec.currency), count: tally.selected.length, voters: tally.voters })),
    supportChart(projects, approvals, selected, tally.voters),
    table(t("round.projects"), [t("round.project"), t("round.cost"), t("round.supporters"), t("round.share"), t("round.funded")],
      projects.map((p, i) => [p.title, amount(p.cost, spec.currency), String(approvals[i] ?? 0),
        approvals[i] ? amount(Math.round(p.cost / approvals[i]), spec.currency) : "-",
        selected.has(i) ? t("round.yes") : t("round.no")])));
  view.append(...explainRule(tally, spec));
}

/** The rule that chose the projects, in words. */
function explainRule(tally, spec) {
  const rule = String(tally.rule?.rule ?? tally.rule ?? "");
  const out = [];
  if (rule.startsWith("greedy")) {
    out.push(el("p", {}, t("rule.greedy")));
  } else {
    const share = tally.voters ? amount(Math.floor(spec.budget / tally.voters), spec.currency) : "-";
    out.push(el("p", {}, t("rule.mes", { voters: tally.voters, share })));
    if (tally.endowment) {
      const [num, den] = tally.endowment;
      out.push(el("p", {}, t("rule.add1", { steps: tally.add1_steps ?? 0, share: amount(Math.floor(Number(num) / Number(den)), spec.currency) })));
    }
  }
  return out;
}

function duration(ms) {
  const m = Math.floor(ms / 60000), d = Math.floor(m / 1440), h = Math.floor((m % 1440) / 60);
  return d ? `${d}d ${h}h` : h ? `${h}h ${m % 60}m` : `${m}m`;
}

/** A form of labelled inputs that calls `go(values)` on submit, above its result. */
function form(view, title, fields, button, go) {
  const out = el("div", { class: "result" });
  const f = el("form", {});
  for (const [name, label, placeholder] of fields) {
    const id = `f-${name}`;
    f.append(el("label", { for: id }, label), el("input", { id, name, placeholder, autocomplete: "off" }));
  }
  f.append(el("button", { type: "submit" }, button));
  f.addEventListener("submit", async (e) => {
    e.preventDefault();
    const values = Object.fromEntries(new FormData(f).entries());
    out.replaceChildren(el("p", {}, t("loading")));
    try {
      const shown = await go(values);
      out.replaceChildren(...shown);
    } catch (err) {
      out.replaceChildren(el("p", { class: "error", role: "alert" }, err.message));
    }
  });
  view.append(el("h1", {}, title), f, out);
}

function didView(view) {
  form(view, t("did.title"), [["did", t("did.label"), "did:acta:…"], ["time", t("did.time"), "2027-03-01"]], t("did.go"), async ({ did, time }) => {
    let path = `/dids/${encodeURIComponent(did.trim())}`;
    if (time.trim()) {
      const ms = parseTime(time.trim());
      if (ms === null) throw new ApiError(t("time.invalid"));
      path += `?versionTime=${encodeURIComponent(new Date(ms).toISOString())}`;
    }
    const r = await api(path);
    const doc = r.didDocument;
    const meta = r.didDocumentMetadata ?? {};
    return [
      meta.deactivated ? el("p", { class: "error" }, t("did.deactivated")) : null,
      table(t("did.keys"), ["id", "publicKeyMultibase"], (doc.verificationMethod ?? []).map((m) => [m.id, el("code", {}, m.publicKeyMultibase)])),
      doc.controller ? facts([[t("did.controllers"), doc.controller.join(", ")]]) : null,
      doc.service ? table(t("did.services"), ["id", "type", "serviceEndpoint"], doc.service.map((s) => [s.id, s.type, s.serviceEndpoint])) : null,
      facts(Object.entries(meta).map(([k, v]) => [k, String(v)])),
    ].filter(Boolean);
  });
}

function credentialView(view) {
  form(view, t("cred.title"), [["id", t("cred.label"), "3b0c…"], ["time", t("cred.time"), "2027-03-01"]], t("cred.go"), async ({ id, time }) => {
    let path = `/credentials/${encodeURIComponent(id.trim())}`;
    if (time.trim()) {
      const ms = parseTime(time.trim());
      if (ms === null) throw new ApiError(t("time.invalid"));
      path += `?height=${await heightAt(ms)}`;
    }
    const r = await api(path);
    const c = r.credential;
    return [
      el("p", { class: r.status === "valid" ? "ok" : "error" }, `${t("cred.status")}: ${t(`cred.status.${r.status}`)}`),
      el("p", { class: "muted" }, t("cred.node_word")),
      facts([
        [t("cred.kind"), c.kind],
        [t("cred.issuer"), c.issuer],
        [t("cred.subject"), c.subject],
        [t("cred.district"), c.district ?? undefined],
        [t("cred.status"), t("cred.valid", { from: when(c.valid_from), until: when(c.valid_until) })],
        ["", t("cred.at", { height: r.height, time: r.checked_at })],
      ]),
    ];
  });
}

/** Readings per batch over time: one dot per batch at the middle of its window. */
function batchChart(batches) {
  const width = 600, height = 200, pad = 30;
  const xs = batches.map((a) => (a.batch.window_start + a.batch.window_end) / 2);
  const ys = batches.map((a) => a.batch.reading_count);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const y1 = Math.max(1, ...ys);
  const x = (v) => pad + ((width - 2 * pad) * (v - x0)) / Math.max(1, x1 - x0);
  const y = (v) => height - pad - ((height - 2 * pad) * v) / y1;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": t("device.chart"), class: "chart" });
  chart.append(svg("line", { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, class: "axis" }));
  chart.append(svg("polyline", { points: xs.map((v, i) => `${x(v)},${y(ys[i])}`).join(" "), class: "line" }));
  xs.forEach((v, i) => chart.append(svg("circle", { cx: x(v), cy: y(ys[i]), r: 3, class: "dot" })));
  chart.append(svg("text", { x: pad, y: height - 8, class: "bar-label" }, when(x0)));
  chart.append(svg("text", { x: width - pad, y: height - 8, "text-anchor": "end", class: "bar-label" }, when(x1)));
  return el("figure", {}, chart, el("figcaption", {}, t("device.chart")));
}

function deviceView(view) {
  form(view, t("device.title"), [["did", t("device.label"), "did:acta:…"]], t("device.go"), async ({ did }) => {
    const d = await api(`/devices/${encodeURIComponent(did.trim())}`);
    const dev = d.device;
    const from = Math.max(0, dev.next_sequence - 100);
    const list = await api(`/devices/${encodeURIComponent(did.trim())}/attestations?from=${from}&limit=100`);
    const batches = list.attestations ?? [];
    return [
      facts([[t("device.kind"), `${dev.kind} (${dev.unit})`], [t("device.location"), dev.location], [t("device.active"), dev.active ? t("round.yes") : t("round.no")]]),
      batches.length ? batchChart(batches) : null,
      table(t("device.batches"), [t("batch.sequence"), t("batch.window"), t("batch.count"), t("batch.root")],
        batches.slice().reverse().map((a) => [String(a.batch.sequence), `${when(a.batch.window_start)} – ${when(a.batch.window_end)}`, String(a.batch.reading_count), el("code", {}, short(a.batch.readings_root, 16))])),
    ].filter(Boolean);
  });
}

// --- Verifying in the browser ------------------------------------------------------------

let verifier = null;

/**
 * The verifier: `acta audit verify` compiled to WebAssembly (node/web/wasm), loaded once.
 * Resolves to a function from a request object to its result (see that crate's
 * documentation). A module that trapped is dropped, with the key it held.
 */
function loadVerifier() {
  verifier ??= instantiate().catch((e) => {
    verifier = null;
    throw e;
  });
  return verifier;
}

async function instantiate() {
  const bytes = await fetch("verifier.wasm").then((r) => r.arrayBuffer());
  if (bytes.byteLength === 0) throw new Error(t("verify.missing"));
  let memory = null;
  const imports = {
    acta: {
      // The module's only source of randomness (it asks for none to verify).
      random_fill(ptr, len) {
        for (let o = 0; o < len; o += 65536) {
          crypto.getRandomValues(new Uint8Array(memory.buffer, ptr + o, Math.min(65536, len - o)));
        }
      },
    },
  };
  const { instance } = await WebAssembly.instantiate(bytes, imports);
  const x = instance.exports;
  memory = x.memory;
  return (request) => {
    const input = new TextEncoder().encode(JSON.stringify(request));
    let answer;
    try {
      const ptr = x.acta_alloc(input.length);
      new Uint8Array(x.memory.buffer, ptr, input.length).set(input);
      input.fill(0);
      const n = x.acta_call(ptr, input.length);
      x.acta_free(ptr, input.length);
      // The answer's place first, then the memory's buffer (which growth replaces).
      const at = x.acta_answer_ptr();
      answer = JSON.parse(new TextDecoder().decode(new Uint8Array(x.memory.buffer, at, n)));
    } catch (e) {
      // A trap leaves the module unusable: start again from a fresh one, without the key.
      verifier = null;
      dropWallet();
      throw new Error(t("verify.crashed", { message: e.message }));
    }
    if (!answer.ok) throw new Error(answer.error);
    return answer.result;
  };
}

/** The genesis file the resident loaded this visit: the only thing the verifier trusts. */
let genesisText = null;
/**
 * A trust pin (`acta audit pin`) loaded this visit, or null: proofs are then verified from
 * the pinned validator set instead of the genesis set (ADR 0028).
 */
let trustText = null;

/** The text of the file chosen in `input`, or null. */
async function fileText(input) {
  const f = input.files?.[0];
  return f ? f.text() : null;
}

/** The verdict, step by step, as `acta audit verify` prints it; `id` names its last line. */
function verdict(result, chain, id) {
  if (!result.verified) {
    return [el("p", { class: "error", role: "alert", id }, t("verify.failed", { step: result.step, message: result.message }))];
  }
  return [
    el("ol", { class: "steps" }, result.steps.map((s) => el("li", {}, el("span", { class: "ok" }, t("verify.ok")), " ", s))),
    result.readings.length ? table(t("verify.readings"), [t("batch.sequence"), t("verify.index"), t("verify.reading")],
      result.readings.map((r) => [String(r.sequence), String(r.index), el("code", {}, r.bytes)])) : null,
    el("p", { class: "ok", role: "status", id }, result.trusted?.pin
      ? t("verify.verified_pinned", { chain, height: result.height, pin: result.trusted.pin.height })
      : t("verify.verified", { chain, height: result.height })),
  ].filter(Boolean);
}

function verifyView(view) {
  const out = el("div", { class: "result" });
  const genesis = el("input", { id: "f-genesis", type: "file", accept: ".json,application/json", "aria-describedby": "genesis-state" });
  const file = el("input", { id: "f-file", type: "file", accept: ".json,application/json" });
  const record = el("input", { id: "f-record", autocomplete: "off", placeholder: "/budget/rounds/0/ballots/did:acta:…" });
  const readings = el("input", { id: "f-readings", autocomplete: "off", inputmode: "numeric", placeholder: "17, 18" });
  const trust = el("input", { id: "f-trust", type: "file", accept: ".json,application/json", "aria-describedby": "trust-state" });
  genesis.addEventListener("change", async () => {
    genesisText = (await fileText(genesis)) ?? genesisText;
    if (genesisText) document.getElementById("genesis-state").textContent = t("verify.genesis_kept");
  });
  trust.addEventListener("change", async () => {
    trustText = (await fileText(trust)) ?? trustText;
    if (trustText) document.getElementById("trust-state").textContent = t("verify.trust_kept");
  });
  const forget = el("button", { type: "button", id: "forget-trust" }, t("verify.trust_forget"));
  forget.addEventListener("click", () => {
    trustText = null;
    trust.value = "";
    document.getElementById("trust-state").textContent = t("verify.trust_hint");
  });
  const f = el("form", {},
    el("label", { for: "f-genesis" }, t("verify.genesis")), genesis,
    el("p", { class: "muted", id: "genesis-state" }, genesisText ? t("verify.genesis_kept") : t("verify.genesis_hint")),
    el("label", { for: "f-trust" }, t("verify.trust")), trust,
    el("p", { class: "muted" }, el("span", { id: "trust-state" }, trustText ? t("verify.trust_kept") : t("verify.trust_hint")), " ", forget),
    el("label", { for: "f-file" }, t("verify.file")), file,
    el("label", { for: "f-record" }, t("verify.record")), record,
    el("label", { for: "f-readings" }, t("verify.reading_indexes")), readings,
    el("button", { type: "submit" }, t("verify.go")));
  f.addEventListener("submit", async (e) => {
    e.preventDefault();
    out.replaceChildren(el("p", {}, t("loading")));
    try {
      genesisText = (await fileText(genesis)) ?? genesisText;
      if (!genesisText) throw new Error(t("verify.no_genesis"));
      trustText = (await fileText(trust)) ?? trustText;
      let checked = await fileText(file);
      let asked;
      if (checked === null && record.value.trim().startsWith("/")) {
        asked = record.value.trim();
        checked = await apiText(`${asked}${asked.includes("?") ? "&" : "?"}prove=true`);
      } else if (checked === null) {
        throw new Error(t("verify.nothing"));
      }
      const wanted = readings.value.split(/[\s,]+/).filter(Boolean).map(Number);
      if (wanted.some((n) => !Number.isInteger(n) || n < 0)) throw new Error(t("verify.bad_indexes"));
      await checkFile(checked, wanted, out, asked, "verdict");
    } catch (err) {
      out.replaceChildren(el("p", { class: "error", role: "alert", id: "verdict" }, err.message));
    }
  });
  view.append(el("h1", {}, t("verify.title")), el("p", {}, t("verify.intro")), f, out);
}

// --- Voting from the page ----------------------------------------------------------------

/** The key opened this visit (its DID and public key; the key itself stays in the module). */
let wallet = null;

/** Forgets, on this side, the key opened and every ballot secret and file made with it. */
function dropWallet() {
  wallet = null;
  ballots.clear();
  for (const f of ballotFiles.values()) URL.revokeObjectURL(f.url);
  ballotFiles.clear();
}

/** POST a signed transaction (hex) and wait for its block: the node's answer. */
async function submitTx(hexTx) {
  let r;
  try {
    r = await fetch("/txs?mode=commit", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ tx: hexTx }),
    });
  } catch (e) {
    throw new ApiError(t("unreachable", { message: e.message }));
  }
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(t("vote.refused", { message: body?.message ?? `HTTP ${r.status}` }));
  return body;
}

/** The nonce a public key's (hex) next transaction is signed with: after its committed
 * transactions and those waiting in the node's mempool. */
async function nonceOf(publicKey) {
  const next = (await api(`/signers/${publicKey}/nonce`)).next;
  if (!Number.isSafeInteger(next) || next < 0) throw new ApiError(t("vote.refused", { message: "the node named no next nonce" }));
  return next;
}

function keyForm(done) {
  const file = el("input", { id: "f-keyfile", type: "file", accept: ".json,application/json" });
  const pass = el("input", { id: "f-passphrase", type: "password", autocomplete: "off" });
  const words = el("textarea", { id: "f-words", rows: "3", autocomplete: "off", spellcheck: "false" });
  const out = el("div", {});
  const f = el("form", {},
    el("p", {}, t("vote.key_intro")),
    el("label", { for: "f-keyfile" }, t("vote.keyfile")), file,
    el("label", { for: "f-passphrase" }, t("vote.passphrase")), pass,
    el("label", { for: "f-words" }, t("vote.words")), words,
    el("button", { type: "submit" }, t("vote.open")), out);
  f.addEventListener("submit", async (e) => {
    e.preventDefault();
    out.replaceChildren(el("p", { role: "status" }, t("vote.opening")));
    // Let the message show before the key's derivation holds the page for a few seconds.
    await new Promise((resolve) => setTimeout(resolve, 50));
    try {
      const w = await loadVerifier();
      const text = await fileText(file);
      if (text !== null) wallet = w({ op: "unlock", keystore: text, passphrase: pass.value });
      else if (words.value.trim()) wallet = w({ op: "recover", words: words.value });
      else throw new Error(t("vote.no_key"));
      // What was typed or chosen is cleared as soon as the module holds the key.
      pass.value = "";
      words.value = "";
      file.value = "";
      done();
    } catch (err) {
      out.replaceChildren(el("p", { class: "error", role: "alert" }, err.message));
    }
  });
  return f;
}

async function voteView(view) {
  view.append(el("h1", {}, t("vote.title")), el("p", { class: "notice" }, t("vote.keys_stay")));
  if (!wallet) {
    view.append(keyForm(() => show()));
    return;
  }
  const forget = el("button", { type: "button", class: "secondary" }, t("vote.forget"));
  forget.addEventListener("click", async () => {
    (await loadVerifier())({ op: "forget" });
    dropWallet();
    show();
  });
  view.append(facts([[t("vote.you"), wallet.did]]), forget);
  const [rounds, creds] = await Promise.all([
    api("/budget/rounds?limit=100"),
    api(`/dids/${encodeURIComponent(wallet.did)}/credentials`),
  ]);
  const districts = new Set((creds.credentials ?? [])
    .filter((c) => c.status === "valid" && c.credential.kind === "resident")
    .map((c) => c.credential.district));
  // A secret round takes token requests from its opening, ballots once voting opens.
  const open = (rounds.rounds ?? []).filter((r) => districts.has(r.round.spec.district) &&
    (r.phase === "voting" || (isSecret(r.round.spec) && ["announced", "proposals"].includes(r.phase))));
  if (open.length === 0) {
    view.append(el("p", {}, t("vote.none")));
    return;
  }
  for (const r of open) view.append(await ballotForm(r));
}

function isSecret(spec) {
  return spec.secrecy !== "public";
}

async function ballotForm(r) {
  const id = r.round.id;
  const spec = r.round.spec;
  const projects = (await api(`/budget/rounds/${id}/proposals`)).projects ?? [];
  const limits = spec.ballot.approval ?? { min: 1, max: projects.length };
  const out = el("div", { class: "result" });
  const boxes = projects.map((p) => el("input", { type: "checkbox", id: `p-${id}-${p.index}`, value: String(p.index) }));
  const cast = el("button", { type: "submit" }, t("vote.cast"));
  const f = el("form", {},
    el("fieldset", {},
      el("legend", {}, t("vote.pick", { title: spec.title, min: limits.min, max: limits.max })),
      projects.map((p, i) => el("div", { class: "choice" }, boxes[i],
        el("label", { for: `p-${id}-${p.index}` }, `${p.title} (${amount(p.cost, spec.currency)})`)))),
    cast, out);
  const section = el("section", {}, el("h2", {}, spec.title));
  if (isSecret(spec)) {
    // The token comes first; the ballot form waits for it.
    const part = el("div", { class: "token", id: `token-${id}` });
    section.append(part);
    await tokenPart(r, part, cast);
  } else if (r.phase !== "voting") {
    cast.disabled = true;
  }
  f.addEventListener("submit", async (e) => {
    e.preventDefault();
    const chosen = boxes.filter((b) => b.checked).map((b) => Number(b.value));
    if (chosen.length < limits.min || chosen.length > limits.max) {
      out.replaceChildren(el("p", { class: "error", role: "alert" }, t("vote.count", { min: limits.min, max: limits.max })));
      return;
    }
    // One ballot at a time: a second one would take the same nonce.
    cast.disabled = true;
    out.replaceChildren(el("p", {}, t("vote.sending")));
    try {
      if (isSecret(spec)) await castSecret(r, chosen, out);
      else await castPublic(id, chosen, out);
    } catch (err) {
      out.replaceChildren(el("p", { class: "error", role: "alert" }, err.message));
    } finally {
      cast.disabled = false;
    }
  });
  section.append(f);
  return section;
}

/** The chain's id and a validity limit 10 minutes of the chain's time ahead, whatever this
 * device's clock says. */
async function txWindow() {
  const [status, latest] = await Promise.all([api("/status"), api("/blocks/latest")]);
  return { chain_id: status.chain_id, valid_until: latest.block.header.time + 10 * 60 * 1000 };
}

async function castPublic(id, chosen, out) {
  const w = await loadVerifier();
  const signed = w({
    op: "vote", ...(await txWindow()), nonce: await nonceOf(wallet.public_key), round: id, projects: chosen,
  });
  await sendBallot(id, signed, out, t("vote.done_public"));
}

/** Sends a signed ballot, checks the node took that very transaction, and offers its
 * receipt: the transaction proven in its block with its outcome. (The proof that it is
 * among the ballots counted exists once the round is tallied: acta budget receipt.) */
async function sendBallot(id, signed, out, said) {
  const answer = await submitTx(signed.tx);
  if (answer.hash !== signed.id) throw new ApiError(t("vote.other_tx", { hash: String(answer.hash) }));
  const asked = `/txs/${signed.id}`;
  const receipt = await apiText(`${asked}?prove=true`);
  const link = el("a", { download: `receipt-round${id}.json`, id: `receipt-link-${id}` }, t("vote.keep"));
  link.href = URL.createObjectURL(new Blob([receipt], { type: "application/json" }));
  const check = el("button", { type: "button", id: `check-receipt-${id}` }, t("vote.check"));
  const checked = el("div", {});
  check.addEventListener("click", () => checkFile(receipt, [], checked, asked, `verdict-${id}`));
  out.replaceChildren(
    // The node's word, not yet a proof: shown plainly; the receipt's check says "verified".
    el("p", { role: "status", id: `vote-done-${id}`, "data-tx": signed.id },
      t("vote.done", { height: answer.height, hash: short(signed.id, 16) }), " ", said),
    el("p", {}, link), genesisInput(`f-genesis-${id}`), check, checked);
}

// --- Secret rounds: the ballot token ---------------------------------------------------

/** What this visit holds of each secret round's ballot secret, by round (the ballot key's
 * public half; the secret stays in the module). */
const ballots = new Map();
/** The sealed ballot files made this visit, by round: a name and a download address. */
const ballotFiles = new Map();

/** This resident's token request of round `id` on the ledger, or null. */
async function tokenRequest(id) {
  try {
    return (await api(`/budget/rounds/${id}/tokens/${encodeURIComponent(wallet.did)}`)).request;
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return null;
    throw e;
  }
}

/** The link to save round `id`'s sealed ballot file, if one was made this visit; saving it
 * (following the link) runs `saved`. */
function ballotFileLink(id, saved) {
  const f = ballotFiles.get(id);
  if (!f) return "";
  const a = el("a", { download: f.name, href: f.url, id: `ballot-file-${id}` }, t("token.save", { name: f.name }));
  a.addEventListener("click", () => {
    f.saved = true;
    saved?.();
  });
  return el("p", {}, a);
}

/**
 * Shows where the resident stands with round `r`'s ballot token, and what to do next: make
 * the ballot file (a one-time ballot key made and sealed in the module) and save it, send
 * the request, open the ballot file saved earlier, or wait for the registrar. `cast` is
 * enabled once a token can be had.
 */
async function tokenPart(r, part, cast) {
  const id = r.round.id;
  const request = await tokenRequest(id);
  let held = ballots.get(id);
  if (held && held.resident !== wallet.did) held = undefined;
  const again = () => tokenPart(r, part, cast);
  const out = el("div", {});
  cast.disabled = true;
  const shown = [el("p", {}, t("token.intro"))];
  if (!request && !held) {
    const pass = el("input", { id: `f-ballot-pass-${id}`, type: "password", autocomplete: "new-password" });
    const make = el("button", { type: "button", id: `make-ballot-${id}` }, t("token.make"));
    make.addEventListener("click", () => busy(make, out, t("token.making"), async () => {
      try {
        await makeBallot(r, pass.value);
      } finally {
        pass.value = "";
      }
      await again();
    }));
    shown.push(el("label", { for: pass.id }, t("token.passphrase")), pass, make,
      el("p", { class: "muted" }, t("token.or_open")), openBallotForm(r, out, again));
  } else if (!request) {
    // Sent only once the file is saved: the ledger takes one request per resident, and
    // without the file it is worth nothing.
    const file = ballotFiles.get(id);
    const send = el("button", { type: "button", id: `send-token-${id}`, disabled: file && !file.saved ? "" : null }, t("token.send"));
    send.addEventListener("click", () => busy(send, out, t("token.asking"), async () => {
      await sendRequest(r);
      await again();
    }));
    shown.push(ballotFileLink(id, () => { send.disabled = false; }), send);
  } else if (!held || held.blinded !== request.blinded) {
    shown.push(el("p", {}, t(held ? "token.other_request" : "token.asked", { index: request.index })),
      openBallotForm(r, out, again));
  } else if (request.blind_signature === null || request.blind_signature === undefined) {
    const check = el("button", { type: "button", id: `token-check-${id}` }, t("token.check"));
    check.addEventListener("click", () => busy(check, out, t("loading"), again));
    shown.push(el("p", { role: "status", id: `token-state-${id}` }, t("token.waiting", { index: request.index })), check);
  } else {
    shown.push(el("p", { class: "ok", role: "status", id: `token-state-${id}` },
      r.phase === "voting" ? t("token.ready") : t("token.ready_later", { from: when(r.round.spec.voting_from) })));
    cast.disabled = r.phase !== "voting";
  }
  if (request) shown.push(ballotFileLink(id));
  part.replaceChildren(el("h3", {}, t("token.title")), ...shown, out);
}

/** A form that opens a ballot file saved earlier (the page's or the acta wallet's). */
function openBallotForm(r, out, done) {
  const id = r.round.id;
  const file = el("input", { id: `f-ballot-file-${id}`, type: "file", accept: ".json,application/json" });
  const pass = el("input", { id: `f-ballot-open-${id}`, type: "password", autocomplete: "off" });
  const open = el("button", { type: "button", id: `open-ballot-${id}` }, t("token.open"));
  open.addEventListener("click", () => busy(open, out, t("vote.opening"), async () => {
    const text = await fileText(file);
    if (text === null) throw new Error(t("token.no_file"));
    let b;
    try {
      b = (await loadVerifier())({ op: "ballot_open", file: text, passphrase: pass.value });
    } finally {
      pass.value = "";
    }
    file.value = "";
    if (b.round !== id || b.resident !== wallet.did) throw new Error(t("token.other_file", { round: b.round }));
    ballots.set(id, b);
    await done();
  }));
  return el("div", {},
    el("label", { for: file.id }, t("token.file")), file,
    el("label", { for: pass.id }, t("vote.passphrase")), pass, open);
}

/** Runs `work` with `button` disabled and a note in `out`; an error is shown there. */
async function busy(button, out, note, work) {
  button.disabled = true;
  out.replaceChildren(el("p", { role: "status" }, note));
  // Let the note show before key derivation holds the page for a few seconds.
  await new Promise((resolve) => setTimeout(resolve, 50));
  try {
    await work();
    out.replaceChildren();
  } catch (err) {
    out.replaceChildren(el("p", { class: "error", role: "alert" }, err.message));
  } finally {
    button.disabled = false;
  }
}

/** Makes round `r`'s ballot secret in the module (or takes the one held), sealed with
 * `passphrase`, and offers the file to save. */
async function makeBallot(r, passphrase) {
  const id = r.round.id;
  const made = (await loadVerifier())({
    op: "ballot_make", chain_id: (await api("/status")).chain_id, round: id,
    registrar_key: r.round.spec.secrecy.secret.key, passphrase,
  });
  ballots.set(id, made.ballot);
  const old = ballotFiles.get(id);
  if (old) URL.revokeObjectURL(old.url);
  ballotFiles.set(id, {
    name: `${made.file.name}.json`,
    url: URL.createObjectURL(new Blob([made.file.text], { type: "application/json" })),
    saved: false,
  });
}

/** Sends the token request of the ballot secret held for round `r`, signed by the
 * resident's key (the same request however often it is sent). */
async function sendRequest(r) {
  const w = await loadVerifier();
  const signed = w({
    op: "ballot_request", ...(await txWindow()), nonce: await nonceOf(wallet.public_key), round: r.round.id,
  });
  const answer = await submitTx(signed.tx);
  if (answer.hash !== signed.id) throw new ApiError(t("vote.other_tx", { hash: String(answer.hash) }));
}

/** Casts a secret round's ballot from the one-time ballot key, with the token unblinded
 * from the registrar's answer to the resident's request. */
async function castSecret(r, chosen, out) {
  const id = r.round.id;
  const held = ballots.get(id);
  const request = await tokenRequest(id);
  if (!held || !request?.blind_signature) throw new Error(t("token.not_ready"));
  const w = await loadVerifier();
  const signed = w({
    op: "ballot_vote", ...(await txWindow()), nonce: await nonceOf(held.ballot_public_key), round: id,
    projects: chosen, resident: wallet.did, registrar_key: r.round.spec.secrecy.secret.key,
    blinded: request.blinded, blind_signature: request.blind_signature,
  });
  await sendBallot(id, signed, out, t("vote.done_secret", { ballot: signed.ballot_did }));
}

/** An input (with id `id`) for the genesis file, kept for the visit. */
function genesisInput(id) {
  const input = el("input", { id, type: "file", accept: ".json,application/json" });
  input.addEventListener("change", async () => {
    genesisText = (await fileText(input)) ?? genesisText;
  });
  return el("p", {}, el("label", { for: id }, t("verify.genesis")), " ", input);
}

/**
 * Verifies `file` (JSON text) in the page against the loaded genesis; the verdict goes in
 * `out`, its last line with id `id`. With `asked` (an API path), the proof must answer
 * exactly that request.
 */
async function checkFile(file, wanted, out, asked, id) {
  try {
    if (!genesisText) throw new Error(t("verify.no_genesis"));
    const verify = await loadVerifier();
    const chain = JSON.parse(genesisText).chain_id;
    out.replaceChildren(...verdict(verify({ op: "verify", genesis: genesisText, trust: trustText, file, readings: wanted, asked }), chain, id));
  } catch (err) {
    out.replaceChildren(el("p", { class: "error", role: "alert", id }, err.message));
  }
}

// --- Routing -----------------------------------------------------------------------------

async function show() {
  const view = document.getElementById("view");
  const [, section, id] = (location.hash || "#/").split("/");
  view.replaceChildren(el("p", {}, t("loading")));
  const fresh = el("div", {});
  try {
    if (section === "rounds" && id !== undefined) await roundView(fresh, id);
    else if (section === "rounds") await roundsView(fresh);
    else if (section === "did") didView(fresh);
    else if (section === "credential") credentialView(fresh);
    else if (section === "device") deviceView(fresh);
    else if (section === "verify") verifyView(fresh);
    else if (section === "vote") await voteView(fresh);
    else await chainView(fresh);
    view.replaceChildren(fresh);
  } catch (e) {
    view.replaceChildren(el("p", { class: "error", role: "alert" }, e.message));
  }
  for (const a of document.querySelectorAll("nav a")) {
    if (a.getAttribute("href") === `#/${section ?? ""}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  view.focus();
}

async function start() {
  const lang = (document.documentElement.lang || "en").slice(0, 2);
  strings = await fetch(`lang/${lang}.json`).then((r) => r.json()).catch(() => ({}));
  for (const e of document.querySelectorAll("[data-t]")) e.textContent = t(e.dataset.t);
  for (const e of document.querySelectorAll("[data-t-aria]")) e.setAttribute("aria-label", t(e.dataset.tAria));
  // The skip link moves the focus to the content without changing the route.
  document.querySelector(".skip")?.addEventListener("click", (e) => {
    e.preventDefault();
    document.getElementById("view").focus();
  });
  window.addEventListener("hashchange", show);
  await show();
}

start();
