/*
 * Agents' live queue: /ws/agents/queue/ (docs/protocol.md).
 * A `queue` snapshot on connect, then one `queue.update` per change. Longest waiting first.
 * All text is untrusted: it is only ever set with textContent.
 */
(function () {
  "use strict";

  var common = window.ChatDeskAgents; // agent-common.js, loaded first
  var root = document.getElementById("queue");
  if (!root) return;

  var list = root.querySelector(".queue-list");
  var emptyNote = root.querySelector('[data-testid="queue-empty"]');
  var loadingNote = root.querySelector('[data-testid="queue-loading"]');

  var STATUS_LABELS = common.STATUS_LABELS;
  var REASON_LABELS = common.REASON_LABELS;
  var waitingText = common.waitingText;

  var items = new Map(); // conversation id -> queue item, as the server last sent it

  // ------------------------------------------------------------- formatting

  function draftText(item) {
    switch (item.draft_status) {
      case "pending":
      case "generating":
        return "drafting…";
      case "ready":
        return typeof item.draft_confidence === "number"
          ? "draft ready " + Math.round(item.draft_confidence * 100) + "%"
          : "draft ready";
      case null:
      case undefined:
        return "no draft";
      default:
        return item.draft_status;
    }
  }

  // ---------------------------------------------------------------- render

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  // Longest waiting first; rows with nothing unanswered go last, in the order they came.
  function sortedItems() {
    var rows = Array.from(items.values());
    return rows.sort(function (a, b) {
      var ta = a.awaiting_reply_since ? Date.parse(a.awaiting_reply_since) : Infinity;
      var tb = b.awaiting_reply_since ? Date.parse(b.awaiting_reply_since) : Infinity;
      if (ta === tb) return 0;
      return ta < tb ? -1 : 1;
    });
  }

  function buildRow(item) {
    var row = el("li", "queue-item status-" + item.status);
    row.setAttribute("data-testid", "queue-item");
    row.setAttribute("data-id", item.id);
    row.setAttribute("data-status", item.status);

    var link = el("a", "queue-link");
    link.href = "/agents/c/" + encodeURIComponent(item.id) + "/";

    var main = el("div", "q-main");
    var top = el("div", "q-top");
    top.appendChild(el("strong", "q-customer", item.customer));
    var badge = el("span", "badge status-" + item.status, STATUS_LABELS[item.status] || item.status);
    badge.setAttribute("data-status", item.status);
    top.appendChild(badge);
    if (item.status === "escalated" && item.escalation_reason) {
      top.appendChild(el("span", "q-reason", REASON_LABELS[item.escalation_reason] || item.escalation_reason));
    }
    if (item.topic) top.appendChild(el("span", "q-topic", item.topic));
    if (item.contact_email) top.appendChild(el("span", "q-contact", "Answer by email: " + item.contact_email));
    main.appendChild(top);
    main.appendChild(el("p", "q-text", item.latest_customer_text ? "“" + item.latest_customer_text + "”" : "No message yet"));

    var side = el("div", "q-side");
    var waiting = el("span", "q-waiting", waitingText(item.awaiting_reply_since));
    if (item.awaiting_reply_since) waiting.setAttribute("data-since", item.awaiting_reply_since);
    waiting.title = "Waiting for a reply";
    side.appendChild(waiting);
    var draft = el("span", "q-draft draft-" + (item.draft_status || "none"), draftText(item));
    side.appendChild(draft);
    side.appendChild(el("span", "q-agent", item.assigned_agent ? "Agent: " + item.assigned_agent : "Unassigned"));

    link.appendChild(main);
    link.appendChild(side);
    row.appendChild(link);
    return row;
  }

  function render() {
    var rows = sortedItems().map(buildRow);
    list.replaceChildren.apply(list, rows);
    loadingNote.hidden = true;
    emptyNote.hidden = rows.length > 0;
  }

  // Only the waiting times change by themselves; the rest changes with frames.
  function tick() {
    list.querySelectorAll("[data-since]").forEach(function (node) {
      node.textContent = waitingText(node.getAttribute("data-since"));
    });
  }

  // ---------------------------------------------------------------- frames

  function onFrame(frame) {
    if (frame.type === "queue") {
      items.clear();
      (frame.items || []).forEach(function (item) { items.set(item.id, item); });
      render();
    } else if (frame.type === "queue.update") {
      if (frame.in_queue && frame.item) items.set(frame.id, frame.item);
      else items.delete(frame.id);
      render();
    } else if (frame.type === "error" && frame.code === "not_agent") {
      common.showConnection(root, "denied", frame.message || "Sign in as an agent to see the queue.");
    }
  }

  // ---------------------------------------------------------- connection
  // agent-common.js reconnects with backoff; a new connection gets a fresh snapshot, starting with `queue`.

  // Close code 4403: the indicator already says "Signed out"; offer the way back in.
  function showSignedOut() {
    var note = el("p", "notice");
    note.appendChild(document.createTextNode("Your session has ended. "));
    var link = el("a", null, "Sign in again");
    link.href = "/accounts/login/?next=" + encodeURIComponent(location.pathname);
    note.appendChild(link);
    root.insertBefore(note, root.firstChild);
  }

  common.connect(root.getAttribute("data-ws-path"), {
    root: root,
    liveOn: "queue",
    onFrame: onFrame,
    onSignedOut: showSignedOut
  });
  setInterval(tick, 1000);
})();
