/*
 * Agents' live queue: /ws/agents/queue/ (docs/protocol.md).
 * A `queue` snapshot on connect, then one `queue.update` per change. Longest waiting first.
 * All text is untrusted: it is only ever set with textContent.
 */
(function () {
  "use strict";

  var root = document.getElementById("queue");
  if (!root) return;

  var list = root.querySelector(".queue-list");
  var emptyNote = root.querySelector('[data-testid="queue-empty"]');
  var loadingNote = root.querySelector('[data-testid="queue-loading"]');
  var connState = document.querySelector('[data-testid="connection-state"]');

  var STATUS_LABELS = { open: "Drafting", escalated: "Escalated", taken_over: "Taken over", closed: "Closed" };
  var REASON_LABELS = {
    customer_request: "Customer asked for a person",
    low_confidence: "Draft confidence too low",
    draft_failed: "Drafting failed or timed out"
  };

  var items = new Map(); // conversation id -> queue item, as the server last sent it

  // ------------------------------------------------------------- formatting

  function waitingText(since) {
    if (!since) return "—";
    var seconds = Math.max(0, Math.floor((Date.now() - Date.parse(since)) / 1000));
    if (isNaN(seconds)) return "—";
    if (seconds < 60) return seconds + " s";
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + " min " + pad(seconds % 60) + " s";
    return Math.floor(minutes / 60) + " h " + pad(minutes % 60) + " min";
  }

  function pad(n) {
    return n < 10 ? "0" + n : String(n);
  }

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

  function showConnection(stateName, text) {
    connState.setAttribute("data-state", stateName);
    connState.textContent = text;
    root.classList.toggle("is-stale", stateName !== "open");
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
      showConnection("denied", frame.message || "Sign in as an agent to see the queue.");
    }
  }

  // ---------------------------------------------------------- connection
  // Reconnects with backoff (1 s, 2 s, 4 s … 15 s); a new connection gets a fresh snapshot.

  var socket = null;
  var attempt = 0;

  function connect() {
    showConnection("connecting", attempt ? "Reconnecting…" : "Connecting…");
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var current = new WebSocket(scheme + location.host + root.getAttribute("data-ws-path"));
    socket = current;
    var pingTimer = null; // one per connection, so an old socket's close cannot stop the new one's
    current.addEventListener("open", function () {
      pingTimer = setInterval(function () { send({ type: "ping" }); }, 25000);
    });
    current.addEventListener("message", function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (!frame || typeof frame.type !== "string") return;
      if (frame.type === "queue") {
        attempt = 0;
        showConnection("open", "Live");
      }
      onFrame(frame);
    });
    current.addEventListener("close", function (event) {
      if (current !== socket) return;
      clearInterval(pingTimer);
      socket = null;
      if (event.code === 4403) {
        showSignedOut();
        return; // retrying cannot help until the agent signs in again
      }
      var delay = Math.min(1000 * Math.pow(2, attempt), 15000);
      attempt++;
      showConnection("reconnecting", "Offline — reconnecting in " + Math.round(delay / 1000) + " s");
      setTimeout(connect, delay);
    });
  }

  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
  }

  function showSignedOut() {
    showConnection("denied", "Signed out");
    var note = el("p", "notice");
    note.appendChild(document.createTextNode("Your session has ended. "));
    var link = el("a", null, "Sign in again");
    link.href = "/accounts/login/?next=" + encodeURIComponent(location.pathname);
    note.appendChild(link);
    root.insertBefore(note, root.firstChild);
  }

  connect();
  setInterval(tick, 1000);
})();
