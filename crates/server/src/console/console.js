// Ferry console: two small conveniences. Every page works without them.
"use strict";

// A button with data-copy="ID" copies the value of element ID and says so in ID-status.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  const status = document.getElementById(button.dataset.copy + "-status");
  const say = (text) => { if (status) status.textContent = text; };
  source.focus();
  source.select();
  const fallback = () => say(document.execCommand("copy") ? "Copied" : "Select the code and copy it");
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(source.value).then(() => say("Copied"), fallback);
  } else {
    fallback();
  }
});

// A file input with data-into="ID" puts the text of the chosen file into textarea ID.
const LARGEST_TEXT_FILE = 64 * 1024;
document.addEventListener("change", (event) => {
  const input = event.target;
  if (!input.matches || !input.matches("input[type=file][data-into]")) return;
  const file = input.files[0];
  const target = document.getElementById(input.dataset.into);
  if (!file || !target) return;
  if (file.size > LARGEST_TEXT_FILE) {
    input.setCustomValidity("This file is too large to be a response file.");
    input.reportValidity();
    return;
  }
  input.setCustomValidity("");
  file.text().then((text) => { target.value = text.trim(); });
});

// A table with data-live="URL" follows runs: while a row's run is submitted or running, or the
// run this page submitted has not finished, it asks URL every second for each link's status.
const live = document.querySelector("[data-live]");
if (live) {
  const submitted = document.getElementById("run-submitted");
  let waitingFor = submitted ? submitted.dataset.run : null;
  const busy = () => [...live.querySelectorAll(".run-status")]
    .some((cell) => ["running", "submitted"].includes(cell.textContent.trim()));
  const follow = () => {
    fetch(live.dataset.live, { credentials: "same-origin" })
      .then((answer) => answer.ok ? answer.json() : [])
      .then((links) => {
        for (const link of links) {
          const row = [...live.querySelectorAll("tr[data-link]")].find((r) => r.dataset.link === link.link);
          if (!row) continue;
          const status = row.querySelector(".run-status");
          status.textContent = link.status;
          status.dataset.status = link.status;
          row.querySelector(".run-detail").textContent = link.detail;
          row.querySelector(".lag").textContent = link.lag;
          if (link.run === waitingFor && !["running", "submitted"].includes(link.status)) {
            waitingFor = null;
            submitted.textContent = "Run " + link.run + ": " + link.status + ".";
          }
        }
        if (busy() || waitingFor) setTimeout(follow, 1000);
      })
      .catch(() => setTimeout(follow, 3000));
  };
  if (busy() || waitingFor) setTimeout(follow, 300);
}

// A section with data-upload="URL" imports a dropped or chosen file: the file is the body of a
// POST to URL (its type from its name, as the CLI does), with a progress bar, then the item or
// the refusal with its code.
const upload = document.querySelector("[data-upload]");
if (upload) {
  const input = upload.querySelector("input[type=file]");
  const bar = upload.querySelector("progress");
  const status = upload.querySelector("[role=status]");
  const zone = upload.querySelector(".dropzone");
  const typeOf = (name) => {
    const lower = name.toLowerCase();
    if (lower.endsWith(".geojson") || lower.endsWith(".json")) return "application/geo+json";
    if (lower.endsWith(".csv")) return "text/csv";
    if (lower.endsWith(".ndjson") || lower.endsWith(".jsonl")) return "application/x-ndjson";
    return "application/octet-stream";
  };
  const send = (file) => {
    const query = new URLSearchParams({ title: file.name.replace(/\.[^.]*$/, "") || file.name, file_name: file.name });
    const request = new XMLHttpRequest();
    request.open("POST", upload.dataset.upload + "?" + query);
    request.setRequestHeader("content-type", typeOf(file.name));
    request.setRequestHeader("x-csrf-token", upload.dataset.csrf);
    bar.hidden = false;
    bar.value = 0;
    status.className = "";
    status.textContent = "Uploading " + file.name + "…";
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) bar.value = Math.round(100 * event.loaded / event.total);
    };
    request.onload = () => {
      let answer = {};
      try { answer = JSON.parse(request.responseText); } catch (_) { /* not JSON: said below */ }
      status.textContent = "";
      if (request.status === 201) {
        bar.value = 100;
        const link = document.createElement("a");
        link.href = "/items/" + answer.id;
        link.id = "uploaded";
        link.textContent = answer.title;
        status.append("Imported ", link, " (" + answer.row_count + " rows).");
      } else {
        status.className = "error";
        status.textContent = (answer.message || request.statusText) + " (code: " + (answer.code || request.status) + ")";
      }
    };
    request.onerror = () => {
      status.className = "error";
      status.textContent = "The upload stopped: the connection to the instance was lost.";
    };
    request.send(file);
  };
  input.addEventListener("change", () => { if (input.files[0]) send(input.files[0]); });
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer.files[0]) send(event.dataTransfer.files[0]);
  });
}

// A canvas with data-tiles="URL" draws a feature layer from URL/z/x/y tiles (Web Mercator):
// drag to pan, wheel or the buttons to zoom, click a feature to list its properties. Features
// come from this instance only; background tiles come from data-basemap (with {z}, {x}, {y})
// when an admin configured one, as images under the canvas.
const map = document.querySelector("canvas[data-tiles]");
if (map) {
  const context = map.getContext("2d");
  const status = document.getElementById("map-status");
  const properties = document.getElementById("feature-properties");
  const tiles = new Map();
  const view = { lon: 0, lat: 0, zoom: 1 };
  const basemap = map.dataset.basemap ? document.getElementById("basemap") : null;
  const backgrounds = new Map();
  const TILE = 256;
  const world = (lon, lat, zoom) => {
    const scale = TILE * Math.pow(2, zoom);
    const sin = Math.min(Math.max(Math.sin(lat * Math.PI / 180), -0.9999), 0.9999);
    return [(lon + 180) / 360 * scale, (0.5 - Math.log((1 + sin) / (1 - sin)) / (4 * Math.PI)) * scale];
  };
  const toScreen = (lon, lat) => {
    const [cx, cy] = world(view.lon, view.lat, view.zoom);
    const [x, y] = world(lon, lat, view.zoom);
    return [x - cx + map.width / 2, y - cy + map.height / 2];
  };
  const fromScreen = (sx, sy) => {
    const scale = TILE * Math.pow(2, view.zoom);
    const [cx, cy] = world(view.lon, view.lat, view.zoom);
    const x = sx - map.width / 2 + cx, y = sy - map.height / 2 + cy;
    const lon = x / scale * 360 - 180;
    const lat = Math.atan(Math.sinh(Math.PI * (1 - 2 * y / scale))) * 180 / Math.PI;
    return [lon, lat];
  };
  const load = (z, x, y) => {
    const key = z + "/" + x + "/" + y;
    if (!tiles.has(key)) {
      tiles.set(key, null);
      fetch(map.dataset.tiles + "/" + key, { credentials: "same-origin" })
        .then((answer) => answer.ok ? answer.json() : { features: [] })
        .then((tile) => { tiles.set(key, tile); draw(); });
    }
    return tiles.get(key);
  };
  // Every ring or line of a geometry, as lists of [lon, lat]; points as one-position lists.
  const parts = (g) => {
    if (!g) return [];
    switch (g.type) {
      case "Point": return [[g.coordinates]];
      case "MultiPoint": return g.coordinates.map((c) => [c]);
      case "LineString": return [g.coordinates];
      case "MultiLineString": case "Polygon": return g.coordinates;
      case "MultiPolygon": return g.coordinates.flat();
      case "GeometryCollection": return g.geometries.flatMap(parts);
      default: return [];
    }
  };
  // The tiles of zoom z in view, as [x, y] pairs.
  const inView = (z) => {
    const n = Math.pow(2, z);
    const [left, top] = fromScreen(0, 0), [right, bottom] = fromScreen(map.width, map.height);
    const col = (lon) => Math.floor((lon + 180) / 360 * n);
    const row = (lat) => Math.floor(world(0, lat, z)[1] / TILE);
    const found = [];
    for (let x = Math.max(0, col(left)); x <= Math.min(n - 1, col(right)); x++) {
      for (let y = Math.max(0, row(top)); y <= Math.min(n - 1, row(bottom)); y++) found.push([x, y]);
    }
    return found;
  };
  // Background images placed where their tiles are on screen, in CSS pixels.
  const drawBasemap = (z) => {
    const scale = map.clientWidth / map.width;
    basemap.style.width = map.clientWidth + "px";
    basemap.style.height = map.clientHeight + "px";
    const [cx, cy] = world(view.lon, view.lat, z);
    const wanted = new Set();
    for (const [x, y] of inView(z)) {
      const key = z + "/" + x + "/" + y;
      wanted.add(key);
      let image = backgrounds.get(key);
      if (!image) {
        image = document.createElement("img");
        image.alt = "";
        image.src = map.dataset.basemap.replace("{z}", z).replace("{x}", x).replace("{y}", y);
        backgrounds.set(key, image);
        basemap.append(image);
      }
      image.style.left = (x * TILE - cx + map.width / 2) * scale + "px";
      image.style.top = (y * TILE - cy + map.height / 2) * scale + "px";
      image.style.width = image.style.height = TILE * scale + "px";
    }
    for (const [key, image] of backgrounds) {
      if (!wanted.has(key)) { image.remove(); backgrounds.delete(key); }
    }
  };
  let drawn = [];
  const draw = () => {
    context.clearRect(0, 0, map.width, map.height);
    const z = Math.max(0, Math.min(22, Math.round(view.zoom)));
    if (basemap) {
      drawBasemap(z);
    } else {
      context.fillStyle = "#f1f4f8";
      context.fillRect(0, 0, map.width, map.height);
    }
    const seen = new Set();
    drawn = [];
    let truncated = false, waiting = false;
    for (const [x, y] of inView(z)) {
      const tile = load(z, x, y);
      if (!tile) { waiting = true; continue; }
      truncated = truncated || tile.truncated;
      for (const feature of tile.features) {
        const id = JSON.stringify(feature.key);
        if (seen.has(id)) continue;
        seen.add(id);
        drawn.push(feature);
        const type = feature.geometry ? feature.geometry.type : "";
        context.strokeStyle = "#1f5fbf";
        context.fillStyle = "rgba(31, 95, 191, 0.25)";
        context.lineWidth = 2;
        for (const part of parts(feature.geometry)) {
          const points = part.map((c) => toScreen(c[0], c[1]));
          if (points.length === 1) {
            context.beginPath();
            context.arc(points[0][0], points[0][1], 4, 0, 2 * Math.PI);
            context.fillStyle = "#1f5fbf";
            context.fill();
            continue;
          }
          context.beginPath();
          points.forEach((p, i) => i ? context.lineTo(p[0], p[1]) : context.moveTo(p[0], p[1]));
          if (type.endsWith("Polygon")) { context.closePath(); context.fill(); }
          context.stroke();
        }
      }
    }
    status.textContent = waiting ? "Loading…" : drawn.length + " features in view" + (truncated ? " (some tiles hold more: zoom in)" : "");
    map.dataset.drawn = waiting ? "" : String(drawn.length);
    // When the first complete drawing was done, in milliseconds from the page's start.
    if (!waiting && !map.dataset.drawnMs) map.dataset.drawnMs = String(Math.round(performance.now()));
    map.dataset.view = JSON.stringify(view);
  };
  // The nearest drawn position to a screen point, within 8 pixels.
  const pick = (sx, sy) => {
    let best = null, distance = 8;
    for (const feature of drawn) {
      for (const part of parts(feature.geometry)) {
        for (const c of part) {
          const [x, y] = toScreen(c[0], c[1]);
          const d = Math.hypot(x - sx, y - sy);
          if (d <= distance) { best = feature; distance = d; }
        }
      }
    }
    return best;
  };
  const show = (feature) => {
    properties.replaceChildren();
    if (!feature) return;
    const add = (name, value) => {
      const term = document.createElement("dt");
      term.textContent = name;
      const text = document.createElement("dd");
      text.textContent = value === null || value === undefined ? "" : (typeof value === "string" ? value : JSON.stringify(value));
      properties.append(term, text);
    };
    add("Key", feature.key);
    for (const [name, value] of Object.entries(feature.values || {})) add(name, value);
  };
  const zoomBy = (delta, sx = map.width / 2, sy = map.height / 2) => {
    const [lon, lat] = fromScreen(sx, sy);
    view.zoom = Math.max(0, Math.min(22, view.zoom + delta));
    const [nx, ny] = toScreen(lon, lat);
    [view.lon, view.lat] = fromScreen(map.width / 2 + nx - sx, map.height / 2 + ny - sy);
    draw();
  };
  // Where an event is on the canvas, in its own pixels (the page may show it smaller).
  const at = (e) => [e.offsetX * map.width / map.clientWidth, e.offsetY * map.height / map.clientHeight];
  let dragging = null;
  map.addEventListener("pointerdown", (e) => { const [x, y] = at(e); dragging = { x, y, moved: false }; });
  map.addEventListener("pointermove", (e) => {
    if (!dragging) return;
    const [x, y] = at(e);
    const dx = x - dragging.x, dy = y - dragging.y;
    if (Math.abs(dx) + Math.abs(dy) < 3 && !dragging.moved) return;
    dragging.moved = true;
    [view.lon, view.lat] = fromScreen(map.width / 2 - dx, map.height / 2 - dy);
    dragging.x = x; dragging.y = y;
    draw();
  });
  map.addEventListener("pointerup", (e) => {
    if (dragging && !dragging.moved) show(pick(...at(e)));
    dragging = null;
  });
  map.addEventListener("wheel", (e) => { e.preventDefault(); zoomBy(e.deltaY < 0 ? 1 : -1, ...at(e)); });
  map.addEventListener("keydown", (e) => {
    const step = 64;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (e.key === "+" || e.key === "=") zoomBy(1);
    else if (e.key === "-") zoomBy(-1);
    else if (moves[e.key]) {
      [view.lon, view.lat] = fromScreen(map.width / 2 + moves[e.key][0], map.height / 2 + moves[e.key][1]);
      draw();
    } else return;
    e.preventDefault();
  });
  document.getElementById("zoom-in").addEventListener("click", () => zoomBy(1));
  document.getElementById("zoom-out").addEventListener("click", () => zoomBy(-1));
  // Start over the whole world's tile, then fit the view to what it holds.
  fetch(map.dataset.tiles + "/0/0/0", { credentials: "same-origin" })
    .then((answer) => answer.ok ? answer.json() : { features: [] })
    .then((tile) => {
      tiles.set("0/0/0", tile);
      let [west, east, south, north] = [Infinity, -Infinity, Infinity, -Infinity];
      for (const feature of tile.features) {
        for (const part of parts(feature.geometry)) {
          for (const c of part) {
            west = Math.min(west, c[0]); east = Math.max(east, c[0]);
            south = Math.min(south, c[1]); north = Math.max(north, c[1]);
          }
        }
      }
      if (west <= east) {
        view.lon = (west + east) / 2;
        view.lat = (south + north) / 2;
        const [x0, y0] = world(west, north, 0), [x1, y1] = world(east, south, 0);
        const span = Math.max(x1 - x0, y1 - y0, 1e-9);
        view.zoom = Math.max(0, Math.min(18, Math.floor(Math.log2(Math.min(map.width, map.height) * 0.8 / span))));
      }
      draw();
    });
}
