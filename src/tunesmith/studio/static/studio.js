// The studio's little bit of JavaScript: show the controls a model honours, follow a job's
// progress, and report plays of a piece. No build step, no framework.
"use strict";

function showControls() {
  const sel = document.getElementById("model");
  if (!sel) return;
  const opt = sel.selectedOptions[0];
  const caps = new Set((opt.dataset.caps || "").split(" "));
  document.querySelectorAll("#generate-form [data-cap]").forEach((el) => {
    const on = caps.has(el.dataset.cap);
    el.hidden = !on;
    el.querySelectorAll("input, select").forEach((i) => { i.disabled = !on; });
  });
  const style = document.getElementById("style");
  if (style) {
    style.querySelectorAll("option[data-s]").forEach((o) => o.remove());
    (opt.dataset.styles || "").split("|").filter(Boolean).forEach((s) => {
      const o = document.createElement("option"); o.value = s; o.textContent = s; o.dataset.s = "1"; style.appendChild(o);
    });
  }
}

async function followJob() {
  const box = document.getElementById("job");
  if (!box) return;
  const id = box.dataset.job;
  for (;;) {
    let j;
    try {
      const r = await fetch(`/api/jobs/${id}`, { headers: { accept: "application/json" } });
      if (!r.ok) return;
      j = await r.json();
    } catch (e) { await new Promise((res) => setTimeout(res, 2000)); continue; }
    document.getElementById("job-progress").value = j.progress;
    const st = document.getElementById("job-status");
    st.textContent = j.status; st.className = `status ${j.status}`;
    document.getElementById("job-message").textContent = j.message;
    document.getElementById("job-eta").textContent =
      j.eta_seconds ? `· about ${Math.round(j.eta_seconds)} s left` : (j.ahead ? `· ${j.ahead} jobs ahead` : "");
    if (j.status === "done") {
      if (j.result && j.result.hits) {  // the page lists the tunes found: shown once the job is done
        if (!document.getElementById("hits")) window.location.reload();
        return;
      }
      const pieces = (j.result && j.result.pieces) || [];
      if (pieces.length === 1) { window.location = `/pieces/${pieces[0]}`; return; }
      const ul = document.createElement("ul"); ul.className = "list";
      pieces.forEach((p) => { const li = document.createElement("li"); const a = document.createElement("a");
        a.href = `/pieces/${p}`; a.textContent = `Piece ${p}`; li.appendChild(a); ul.appendChild(li); });
      const res = document.getElementById("job-result"); res.replaceChildren(ul);
      const c = document.getElementById("cancel-form"); if (c) c.remove();
      return;
    }
    if (j.status === "failed" || j.status === "cancelled") {
      const c = document.getElementById("cancel-form"); if (c) c.remove();
      return;
    }
    await new Promise((res) => setTimeout(res, 700));
  }
}

function reportPlays() {
  const a = document.getElementById("player");
  if (!a || !a.dataset.csrf) return;
  const send = (kind, value) => fetch(`/api/pieces/${a.dataset.piece}/events`, {
    method: "POST", headers: { "content-type": "application/json", "x-csrf-token": a.dataset.csrf },
    body: JSON.stringify(value === undefined ? { kind } : { kind, value }) });
  let started = false;
  a.addEventListener("play", () => { if (!started) { started = true; send("play", 0); } });
  a.addEventListener("ended", () => send("complete"));
}

document.addEventListener("DOMContentLoaded", () => {
  const sel = document.getElementById("model");
  if (sel) { sel.addEventListener("change", showControls); showControls(); }
  followJob();
  reportPlays();
});
