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

// "Find a tune" by humming: the microphone's samples, kept as they come (a ScriptProcessor: an
// AudioWorklet would need a module file of its own for the same few lines), written as a 16-bit WAV
// and sent to /api/find; the job page then follows the search.
function wavBlob(chunks, rate) {
  const n = chunks.reduce((a, c) => a + c.length, 0);
  const buf = new DataView(new ArrayBuffer(44 + 2 * n));
  const text = (o, s) => { for (let i = 0; i < s.length; i++) buf.setUint8(o + i, s.charCodeAt(i)); };
  text(0, "RIFF"); buf.setUint32(4, 36 + 2 * n, true); text(8, "WAVE"); text(12, "fmt ");
  buf.setUint32(16, 16, true); buf.setUint16(20, 1, true); buf.setUint16(22, 1, true);
  buf.setUint32(24, rate, true); buf.setUint32(28, 2 * rate, true); buf.setUint16(32, 2, true);
  buf.setUint16(34, 16, true); text(36, "data"); buf.setUint32(40, 2 * n, true);
  let o = 44;
  chunks.forEach((c) => c.forEach((x) => { buf.setInt16(o, Math.max(-1, Math.min(1, x)) * 32767, true); o += 2; }));
  return new Blob([buf], { type: "audio/wav" });
}

const HUM_SECONDS = 30;  // a query longer than this is cut: a tune's few bars are enough

function humToFind() {
  const btn = document.getElementById("hum");
  if (!btn) return;
  const status = document.getElementById("hum-status");
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.AudioContext) {
    btn.disabled = true; status.textContent = "this browser cannot record here (it needs a microphone, over https or on this machine)";
    return;
  }
  let rec = null;
  const stop = async () => {
    const r = rec; rec = null;
    clearInterval(r.timer);
    r.proc.disconnect(); r.src.disconnect(); r.stream.getTracks().forEach((t) => t.stop());
    const wav = wavBlob(r.chunks, r.ctx.sampleRate);
    await r.ctx.close();
    btn.disabled = true; status.textContent = "sending…";
    const fd = new FormData();
    fd.append("file", wav, "hummed.wav");
    const bars = document.getElementById("find-bars");
    if (bars && bars.value.trim()) fd.append("bars", bars.value.trim());
    let res, body;
    try {
      res = await fetch("/api/find", { method: "POST", body: fd, headers: { "x-csrf-token": btn.dataset.csrf } });
      body = await res.json();
    } catch (e) { res = { ok: false, status: 0 }; body = { error: String(e) }; }
    if (!res.ok) { btn.disabled = false; btn.textContent = "Record"; status.textContent = body.error || `failed (${res.status})`; return; }
    window.location = `/jobs/${body.job}`;
  };
  btn.addEventListener("click", async () => {
    if (rec) { await stop(); return; }
    let stream;
    try { stream = await navigator.mediaDevices.getUserMedia({ audio: true }); }
    catch (e) { status.textContent = `no microphone: ${e.message}`; return; }
    const ctx = new AudioContext();
    const src = ctx.createMediaStreamSource(stream);
    const proc = ctx.createScriptProcessor(4096, 1, 1);
    const chunks = [];
    proc.onaudioprocess = (ev) => chunks.push(new Float32Array(ev.inputBuffer.getChannelData(0)));
    src.connect(proc); proc.connect(ctx.destination);
    const t0 = Date.now();
    rec = { stream, ctx, src, proc, chunks, timer: setInterval(() => {
      const s = (Date.now() - t0) / 1000;
      status.textContent = `recording… ${s.toFixed(0)} s (press again to find it)`;
      if (s >= HUM_SECONDS && rec) stop();
    }, 250) };
    btn.textContent = "Stop and find it";
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const sel = document.getElementById("model");
  if (sel) { sel.addEventListener("change", showControls); showControls(); }
  followJob();
  reportPlays();
  humToFind();
});
