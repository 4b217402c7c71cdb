// The contest picker, a contest's status line (decided, reporting), a
// measure's Yes/No bar and the "Track a ballot" box. Like the rest of the
// page, everything is updated in place and written through textContent.

import { $, el, fmt, pct, rejectionLabel, reportingText, setAttrs, setText, sync, toMinute } from "./format.js";

// A measure's choices keep these colours (Okabe–Ito green and vermillion),
// whatever else the session has coloured.
export const YES_COLOR = "#009E73";
export const NO_COLOR = "#D55E00";

// renderPicker lists the contests (GET /api/v1/contests) in select, the
// default contest first as the main race. The option chosen keeps its node,
// so an update never changes what is selected or steals focus.
export function renderPicker(select, contests) {
  const items = [...contests].sort((a, b) => Number(b.contest_id === "default") - Number(a.contest_id === "default"));
  sync(select, items, (c) => c.contest_id, () => el("option"), (opt, c) => {
    opt.value = c.contest_id;
    const named = c.name && c.name !== c.contest_id;
    let label = c.contest_id === "default" ? `Main race${named ? `: ${c.name}` : ""}` : named ? c.name : c.contest_id;
    if (c.kind === "measure") label += " (measure)";
    if (c.decided) label += " ✓";
    setText(opt, label);
  });
}

// yesNo finds a measure's Yes and No among its choices: by name, then by a
// -yes/-no id, else the first two.
export function yesNo(candidates) {
  const find = (w) => candidates.find((c) => c.name.trim().toLowerCase() === w) ||
    candidates.find((c) => c.candidate_id.toLowerCase().endsWith(`-${w}`));
  const yes = find("yes"), no = find("no");
  if (yes && no && yes !== no) return { yes, no };
  return { yes: candidates[0], no: candidates[1] };
}

// renderMeasure draws the Yes/No bar: each side as wide as its share of
// the two.
export function renderMeasure(box, candidates) {
  const { yes, no } = yesNo(candidates);
  const y = yes ? yes.votes : 0, n = no ? no.votes : 0, total = y + n;
  const ys = total ? y / total : 0.5;
  const bar = $("measure-bar");
  const [yesPart, noPart] = bar.children;
  bar.classList.toggle("empty", total === 0);
  yesPart.style.width = `${(ys * 100).toFixed(2)}%`;
  noPart.style.width = `${((1 - ys) * 100).toFixed(2)}%`;
  const yesText = total ? `Yes ${pct(ys)} · ${fmt.format(y)} votes` : "Yes — no votes yet";
  const noText = total ? `No ${pct(1 - ys)} · ${fmt.format(n)} votes` : "No — no votes yet";
  setText($("measure-yes"), yesText);
  setText($("measure-no"), noText);
  setAttrs(bar, { "aria-label": `${yesText}; ${noText}` });
  box.dataset.yes = String(y);
  box.dataset.no = String(n);
}

// renderStatus fills the contest's status line from its GET
// /api/v1/contests/{id} answer (c), or says it is loading.
export function renderStatus(c, nameOf) {
  const badge = $("contest-decided");
  const rep = $("contest-reporting");
  const meter = $("contest-reporting-meter");
  if (!c) {
    setText($("contest-kind"), "");
    setText(badge, "—");
    setText(rep.querySelector(".text"), "Reporting: loading…");
    meter.hidden = true;
    return;
  }
  const regions = c.regions.length;
  setText($("contest-kind"), `${c.kind === "measure" ? "Ballot measure (Yes/No)" : "Candidate race"} · ${fmt.format(regions)} ${regions === 1 ? "region" : "regions"}`);
  badge.classList.toggle("decided", c.decided);
  if (c.decided) {
    const who = c.winner_candidate_id ? `: ${nameOf(c.winner_candidate_id)}` : "";
    setText(badge, c.decided_at ? `Decided at ${toMinute(c.decided_at)}${who}` : `Decided${who}`);
  } else {
    setText(badge, "Not decided yet");
  }
  const r = c.reporting;
  setText(rep.querySelector(".text"), r && r.available
    ? `Stations closed: ${reportingText(r)} (${pct(r.stations ? r.stations_closed / r.stations : 0)})`
    : "Reporting: no stations registered");
  meter.hidden = !(r && r.available);
  if (r && r.available) meter.value = r.stations ? r.stations_closed / r.stations : 0;
}

// --- Track a ballot -------------------------------------------------------

// The status box shows one of these and nothing else: never a choice, a
// voter or a region (the API does not send them either).
function ballotText(status, body) {
  switch (status) {
    case 200:
      if (body.status === "counted") return ["counted", "Counted: your vote is in the results." + proofText(body)];
      if (body.status === "rejected") return ["rejected", `Rejected: ${rejectionLabel(body.reason || "unknown")}.` + proofText(body)];
      if (body.status === "pending") return ["pending", "Pending: received, not counted yet."];
      return ["error", "Could not check this vote now; try again."];
    case 404: return ["not_found", "Not found: no vote with this ID has been received."];
    case 400: return ["invalid", "Not found: this is not a vote ID; check your receipt."];
    case 429: return ["slow_down", "Slow down: too many checks from this address; try again in a minute."];
    default: return ["error", "Could not check this vote now; try again."];
  }
}

// proofText says where the vote's decision is signed, when the answer
// carries an inclusion proof: the checkpoint's time and the tree position,
// which `votewatch ballot ID --verify-proof` checks against a pinned key.
function proofText(body) {
  const p = body.proof;
  if (!p || typeof body.checkpoint !== "string") return "";
  const time = (body.checkpoint.match(/^time (\S+)$/m) || [])[1] || "";
  return ` The decision is in the signed checkpoint of ${time} (partition ${p.partition}, leaf ${p.leaf_index + 1} of ${p.tree_size}); \`votewatch ballot ID --verify-proof\` checks it.`;
}

export function initBallotBox() {
  const form = $("ballot-form");
  const input = $("ballot-id");
  const out = $("ballot-status");
  let seq = 0;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const id = input.value.trim();
    if (!id) return;
    const mine = ++seq;
    out.dataset.status = "checking";
    setText(out, "Checking…");
    let status = 0, body = {};
    try {
      const resp = await fetch(`/api/v1/ballots/${encodeURIComponent(id)}`, { headers: { Accept: "application/json" }, cache: "no-store" });
      status = resp.status;
      if (resp.ok) body = await resp.json();
    } catch {
      status = 0;
    }
    if (mine !== seq) return; // a later check answers instead
    const [kind, text] = ballotText(status, body);
    out.dataset.status = kind;
    setText(out, text);
  });
}
