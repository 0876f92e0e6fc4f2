// CAST-RT control panel: plain JS, no external resources (works as an OBS custom browser dock).
"use strict";
(function () {
  const token = new URLSearchParams(location.search).get("token");
  const $ = (id) => document.getElementById(id);
  let state = null;
  let galleryKey = "";
  let alphaTimer = null;

  function withToken(path) {
    if (!token) return path;
    return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
  }

  function headers(extra) {
    const h = Object.assign({}, extra || {});
    if (token) h["Authorization"] = "Bearer " + token;
    return h;
  }

  function showError(msg) { $("error").textContent = msg || ""; }

  async function post(path, body) {
    const res = await fetch(withToken(path), {
      method: "POST",
      headers: headers({ "Content-Type": "application/json" }),
      body: JSON.stringify(body),
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(data.error || res.status + " " + res.statusText);
    showError("");
    return data;
  }

  function renderGallery(styles, selected) {
    const key = styles.map((s) => s.index + ":" + s.name).join("|");
    const gallery = $("gallery");
    if (key !== galleryKey) {
      galleryKey = key;
      gallery.textContent = "";
      for (const s of styles) {
        const b = document.createElement("button");
        b.type = "button";
        b.dataset.index = String(s.index);
        b.title = s.name;
        const img = document.createElement("img");
        img.src = withToken(s.thumbnail);
        img.alt = s.name;
        const label = document.createElement("span");
        label.textContent = (s.index < 9 ? s.index + 1 + " " : "") + s.name;
        b.append(img, label);
        b.addEventListener("click", () => selectStyle(s.index));
        gallery.append(b);
      }
    }
    for (const b of gallery.children) {
      b.classList.toggle("selected", Number(b.dataset.index) === selected);
    }
  }

  function renderControls(settings, strategies) {
    $("stylize").checked = settings.stylize;
    $("temporal_enabled").checked = settings.temporal_enabled;
    $("preserve_color").checked = settings.preserve_color;
    if (document.activeElement !== $("alpha") && alphaTimer === null) {
      $("alpha").value = settings.alpha;
    }
    $("alpha-value").textContent = Number(settings.alpha).toFixed(2);
    const sel = $("temporal");
    if (sel.options.length !== strategies.length) {
      sel.textContent = "";
      for (const name of strategies) sel.append(new Option(name, name));
    }
    sel.value = settings.temporal;
  }

  function fmt(v) {
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(2);
    if (v && typeof v === "object") return JSON.stringify(v);
    return String(v);
  }

  function renderStats(stats) {
    const table = $("stats");
    table.textContent = "";
    const addRow = (k, v) => {
      const row = table.insertRow();
      row.insertCell().textContent = k;
      row.insertCell().textContent = fmt(v);
    };
    for (const [k, v] of Object.entries(stats)) {
      if (v && typeof v === "object" && !Array.isArray(v)) {
        for (const [k2, v2] of Object.entries(v)) addRow(k + " " + k2, v2);
      } else {
        addRow(k, v);
      }
    }
  }

  function render() {
    if (!state) return;
    renderGallery(state.styles, state.settings.style_index);
    renderControls(state.settings, state.temporal_strategies);
    renderStats(state.stats);
    $("upload-form").hidden = !state.upload;
  }

  async function refresh() {
    try {
      const res = await fetch(withToken("/api/state"), { headers: headers(), cache: "no-store" });
      if (!res.ok) throw new Error(res.status === 401 ? "unauthorised: add ?token=… to the URL" : String(res.status));
      state = await res.json();
      $("status").textContent = "connected";
      $("status").classList.remove("bad");
      render();
    } catch (e) {
      $("status").textContent = "offline (" + e.message + ")";
      $("status").classList.add("bad");
    }
  }

  async function selectStyle(index) {
    try {
      await post("/api/style", { index: index });
      if (state) { state.settings.style_index = index; render(); }
    } catch (e) { showError(e.message); }
  }

  async function setSetting(name, value) {
    try {
      const data = await post("/api/settings", { [name]: value });
      if (state) { state.settings = data.settings; render(); }
    } catch (e) { showError(e.message); refresh(); }
  }

  function bind() {
    for (const name of ["stylize", "temporal_enabled", "preserve_color"]) {
      $(name).addEventListener("change", (ev) => setSetting(name, ev.target.checked));
    }
    $("temporal").addEventListener("change", (ev) => setSetting("temporal", ev.target.value));
    $("alpha").addEventListener("input", (ev) => {
      $("alpha-value").textContent = Number(ev.target.value).toFixed(2);
      if (alphaTimer !== null) clearTimeout(alphaTimer);
      alphaTimer = setTimeout(() => { alphaTimer = null; setSetting("alpha", Number(ev.target.value)); }, 80);
    });
    $("preview").addEventListener("change", (ev) => {
      const img = $("stream");
      if (ev.target.checked) { img.src = withToken("/stream.mjpg"); img.hidden = false; }
      else { img.removeAttribute("src"); img.hidden = true; }
    });
    $("upload-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const file = $("upload-file").files[0];
      if (!file) return;
      try {
        const res = await fetch(withToken("/api/upload?name=" + encodeURIComponent(file.name)), {
          method: "POST",
          headers: headers({ "Content-Type": file.type || "application/octet-stream" }),
          body: file,
        });
        const data = await res.json().catch(() => ({}));
        if (!res.ok) throw new Error(data.error || String(res.status));
        showError("");
        $("upload-file").value = "";
        await refresh();
        await selectStyle(data.index);
      } catch (e) { showError("upload: " + e.message); }
    });
  }

  bind();
  refresh();
  setInterval(refresh, 1000);
})();
