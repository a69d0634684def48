// The gallery page: search, grid, large view with "more like this", search by photo,
// filters, duplicates, and indexing progress. Plain JavaScript, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const results = $("results");
const similar = $("similar");
const message = $("message");

function say(text, isError = false) {
  message.textContent = text;
  message.classList.toggle("error", isError);
}

// The filters as query parameters (only those set).
function filterParams(k) {
  const p = new URLSearchParams();
  p.set("k", String(k ?? $("k").value));
  if ($("folder").value) p.set("folder", $("folder").value);
  const day = (v) => Math.floor(Date.parse(v + "T00:00:00Z") / 1000);
  if ($("after").value) p.set("after", String(day($("after").value)));
  if ($("before").value) p.set("before", String(day($("before").value) + 86400));
  if (!$("words").checked) p.set("words", "false");
  return p;
}

async function getJson(url, init) {
  const response = await fetch(url, init);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

// One photo of a grid: its thumbnail, rank, and score + name on hover.
function tile(hit, rank) {
  const fig = document.createElement("figure");
  fig.className = "hit";
  fig.tabIndex = 0;
  fig.dataset.id = hit.id;
  fig.dataset.score = hit.score.toFixed(4);
  fig.dataset.path = hit.path;
  fig.dataset.name = hit.name ?? "";
  const matched = hit.matched ?? [];
  fig.dataset.matched = matched.join(" ");
  // Score on hover; the calibrated relevance where the model has one (SigLIP), and the
  // words of the photo that the query matched (hybrid search).
  fig.title = [`score ${hit.score.toFixed(3)}`,
    hit.relevance != null ? `relevance ${(hit.relevance * 100).toFixed(0)}%` : null,
    matched.length ? `matched: ${matched.join(", ")}` : null, hit.path]
    .filter(Boolean).join(" · ");
  const img = document.createElement("img");
  img.src = `/thumb/${hit.id}`;
  img.alt = hit.name ?? "";
  img.loading = "lazy";
  const badge = document.createElement("span");
  badge.className = "rank";
  badge.textContent = String(rank + 1);
  const caption = document.createElement("figcaption");
  caption.textContent = `${hit.score.toFixed(3)} · ${hit.name ?? hit.path}`;
  fig.append(img, badge, caption);
  if (matched.length) {
    const words = document.createElement("span");
    words.className = "words";
    words.textContent = matched.join(" · ");
    fig.append(words);
  }
  fig.addEventListener("click", () => openViewer(hit));
  fig.addEventListener("keydown", (e) => { if (e.key === "Enter") openViewer(hit); });
  return fig;
}

function render(grid, hits, label) {
  grid.replaceChildren(...hits.map(tile));
  grid.dataset.state = "done";
  grid.dataset.label = label;
}

// Runs a search into the main grid; `request` returns the JSON {hits, ms}.
async function showResults(label, request) {
  $("dupes").hidden = true;
  results.hidden = false;
  results.dataset.state = "loading";
  say(`Searching ${label}…`);
  try {
    const body = await request();
    render(results, body.hits, label);
    say(body.hits.length
      ? `${body.hits.length} photos for ${label}, best first (${body.ms.toFixed(0)} ms)`
      : `No photo matches ${label} with these filters.`);
  } catch (e) {
    results.dataset.state = "error";
    say(`Search failed: ${e.message}`, true);
  }
}

function searchText(q) {
  const p = filterParams();
  p.set("q", q);
  history.replaceState(null, "", "#q=" + encodeURIComponent(q));
  return showResults(`“${q}”`, () => getJson(`/api/search?${p}`));
}

function searchPhoto(file) {
  if (!file) return;
  return showResults(`photos like ${file.name}`, () =>
    getJson(`/api/search-image?${filterParams()}`, { method: "POST", body: file }));
}

$("search-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const q = $("q").value.trim();
  if (q) searchText(q);
});
for (const id of ["folder", "after", "before", "k", "words"]) {
  $(id).addEventListener("change", () => {
    const q = $("q").value.trim();
    if (q) searchText(q);
  });
}
$("pick").addEventListener("change", (e) => searchPhoto(e.target.files[0]));

// Drop a photo anywhere on the page.
let dragDepth = 0;
document.addEventListener("dragenter", (e) => {
  e.preventDefault();
  dragDepth++;
  $("drop-hint").hidden = false;
});
document.addEventListener("dragleave", () => {
  if (--dragDepth <= 0) { dragDepth = 0; $("drop-hint").hidden = true; }
});
document.addEventListener("dragover", (e) => e.preventDefault());
document.addEventListener("drop", (e) => {
  e.preventDefault();
  dragDepth = 0;
  $("drop-hint").hidden = true;
  searchPhoto(e.dataTransfer.files[0]);
});

// The large view: the photo, its metadata, and "more like this".
function fmtBytes(n) {
  if (n == null) return "?";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

async function openViewer(hit) {
  $("viewer").hidden = false;
  $("viewer-img").src = `/view/${hit.id}`;
  $("viewer-img").alt = hit.name ?? "";
  $("meta").replaceChildren();
  similar.replaceChildren();
  similar.dataset.state = "loading";
  similar.dataset.for = hit.id;
  getJson(`/api/photo/${hit.id}`).then((m) => {
    const rows = [
      ["name", m.name], ["folder", m.folder], ["path", m.path],
      ["taken", m.captured ?? "no EXIF date"],
      ["modified", m.modified ? new Date(m.modified * 1000).toLocaleString() : "?"],
      ["file size", fmtBytes(m.bytes)],
      ["pixels", m.width ? `${m.width} × ${m.height}` : "?"],
      ["score", hit.score.toFixed(4)],
      ...(hit.relevance != null ? [["relevance", `${(hit.relevance * 100).toFixed(1)}%`]] : []),
      ...((hit.matched ?? []).length ? [["matched words", hit.matched.join(", ")]] : []),
      ["id", String(m.id)],
    ];
    $("meta").replaceChildren(...rows.flatMap(([k, v]) => {
      const dt = document.createElement("dt"); dt.textContent = k;
      const dd = document.createElement("dd"); dd.textContent = v ?? "";
      return [dt, dd];
    }));
  }).catch((e) => { $("meta").textContent = e.message; });
  try {
    const body = await getJson(`/api/similar/${hit.id}?${filterParams(24)}`);
    if (similar.dataset.for === String(hit.id)) render(similar, body.hits, `like ${hit.id}`);
  } catch (e) {
    similar.dataset.state = "error";
    similar.textContent = e.message;
  }
}

function closeViewer() {
  $("viewer").hidden = true;
  $("viewer-img").removeAttribute("src");
}
$("close").addEventListener("click", closeViewer);
$("viewer").addEventListener("click", (e) => { if (e.target === $("viewer")) closeViewer(); });
document.addEventListener("keydown", (e) => { if (e.key === "Escape") closeViewer(); });

// Duplicates: groups of near-identical photos side by side.
$("dupes-btn").addEventListener("click", async () => {
  const view = $("dupes");
  results.hidden = true;
  view.hidden = false;
  view.dataset.state = "loading";
  view.replaceChildren();
  say("Looking for near-identical photos…");
  try {
    const body = await getJson("/api/duplicates?min=0.95");
    for (const group of body.groups) {
      const row = document.createElement("div");
      row.className = "group";
      row.append(...group.map(tile));
      view.append(row);
    }
    view.dataset.state = "done";
    say(body.groups.length
      ? `${body.groups.length} groups of near-identical photos (cosine ≥ ${body.min.toFixed(2)})`
      : "No near-identical photos.");
  } catch (e) {
    view.dataset.state = "error";
    say(`Duplicates failed: ${e.message}`, true);
  }
});

// Library facts and live indexing progress.
async function loadFolders() {
  const body = await getJson("/api/folders");
  const select = $("folder");
  const keep = select.value;
  select.replaceChildren(new Option("all folders", ""),
    ...body.folders.map((f) => new Option(`${f.folder} (${f.photos})`, f.folder)));
  select.value = keep;
}

let wasRunning = false;
async function pollStatus() {
  let running = false;
  try {
    const s = await getJson("/api/status");
    $("library-info").textContent = `${s.photos} photos · ${s.model}`;
    const ix = s.indexing;
    running = ix.running;
    $("indexing").hidden = !ix.folder;
    if (ix.folder) {
      const total = Math.max(ix.to_encode, 1);
      $("progress").value = ix.running ? ix.encoded / total : 1;
      $("indexing-text").textContent = ix.running
        ? `indexing ${ix.folder}: ${ix.seen} found, ${ix.encoded}/${ix.to_encode} encoded, ` +
          `${ix.failed} failed, ${ix.rate.toFixed(1)} photos/s`
        : ix.error ? `indexing failed: ${ix.error}` : `indexed ${ix.folder}: ${ix.summary}`;
    }
    $("errors").hidden = ix.errors.length === 0;
    $("errors-summary").textContent =
      `${ix.failed} ${ix.failed === 1 ? "photo" : "photos"} could not be indexed`;
    $("errors-list").replaceChildren(...ix.errors.map((t) => {
      const li = document.createElement("li"); li.textContent = t; return li;
    }));
    document.body.dataset.indexing = ix.running ? "running" : ix.finished ? "finished" : "none";
    if (wasRunning && !running) loadFolders();
    wasRunning = running;
  } catch (e) {
    $("library-info").textContent = `status unavailable: ${e.message}`;
  }
  setTimeout(pollStatus, running ? 1000 : 5000);
}

pollStatus();
loadFolders().catch(() => {});
const initial = new URLSearchParams(location.hash.slice(1)).get("q");
if (initial) { $("q").value = initial; searchText(initial); }
