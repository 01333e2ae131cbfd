/* Routing on the agent's conversation page: the handoff summary, who is responsible (claim, release),
 * handing the conversation to another agent or team with a note, and which other agents have it open.
 * It reads the frames agent-conversation.js receives ("chatdesk:frame" events) and sends through its
 * act(); docs/protocol.md describes the frames. */
(function () {
  "use strict";

  var root = document.getElementById("conversation");
  if (!root) return;
  var ME = root.getAttribute("data-username");

  function find(selector) { return root.querySelector(selector); }
  var ui = {
    viewers: find('[data-testid="viewers"]'),
    summary: find('[data-testid="handoff-summary"]'),
    lastTransfer: find('[data-testid="last-transfer"]'),
    team: find('[data-field="team"]'),
    claim: find('[data-testid="claim"]'),
    release: find('[data-testid="release"]'),
    form: find('[data-form="transfer"]'),
    to: find('[data-testid="transfer-to"]'),
    note: find('[data-testid="transfer-note"]'),
    send: find('[data-testid="transfer-send"]')
  };

  function act(frame) { return window.ChatDeskConversation && window.ChatDeskConversation.act(frame); }

  function onConversation(c) {
    var open = c.status !== "closed";
    var mine = c.assigned_agent_username === ME;
    ui.team.textContent = c.team || gettext("Everyone");
    ui.summary.hidden = !c.handoff_summary;
    var byModel = c.handoff_summary_by && c.handoff_summary_by !== "extractive";
    var label = byModel ? gettext("Handoff summary (written by the model): %(summary)s") : gettext("Handoff summary: %(summary)s");
    ui.summary.textContent = c.handoff_summary ? interpolate(label, { summary: c.handoff_summary }, true) : "";
    // Claim: take responsibility for an escalated conversation nobody (else) holds yet.
    ui.claim.disabled = !(c.status === "escalated" && !mine && !c.assigned_agent_username);
    ui.release.disabled = !(c.status === "escalated" && mine);
    ui.send.disabled = !open || (c.status === "taken_over" && !mine);
    var t = c.last_transfer;
    ui.lastTransfer.hidden = !t;
    if (t) {
      var to = t.to_agent || (t.to_team ? interpolate(gettext("team %(team)s"), { team: t.to_team }, true) : "");
      var values = { by: t.by || gettext("an agent"), to: to, note: t.note };
      ui.lastTransfer.textContent = t.note ?
        interpolate(gettext("Transferred by %(by)s to %(to)s: \u201c%(note)s\u201d"), values, true) :
        interpolate(gettext("Transferred by %(by)s to %(to)s"), values, true);
    }
  }

  function onViewers(frame) {
    var others = (frame.agents || []).filter(function (a) { return a.username !== ME; });
    ui.viewers.hidden = others.length === 0;
    ui.viewers.textContent = others.length ?
      interpolate(gettext("Also looking: %(names)s"), { names: others.map(function (a) { return a.name; }).join(", ") }, true) : "";
  }

  document.addEventListener("chatdesk:frame", function (event) {
    var frame = event.detail;
    if (frame.type === "conversation") onConversation(frame);
    else if (frame.type === "viewers") onViewers(frame);
  });
  ui.claim.addEventListener("click", function () { act({ type: "claim" }); });
  ui.release.addEventListener("click", function () { act({ type: "release" }); });
  ui.form.addEventListener("submit", function (event) {
    event.preventDefault();
    var target = ui.to.value;
    if (!target) return;
    var kind = target.slice(0, target.indexOf(":"));
    var frame = { type: "transfer", note: ui.note.value.trim() };
    frame[kind === "team" ? "to_team" : "to_agent"] = target.slice(target.indexOf(":") + 1);
    if (act(frame)) ui.note.value = "";
  });
})();
