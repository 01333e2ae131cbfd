/*
 * One conversation for an agent: /ws/agents/conversations/<id>/ (docs/protocol.md).
 * On connect the server sends conversation, history and draft; after every change a new
 * message (if any), then conversation and draft again, each the full current state.
 * So this page simply replaces what it shows with each frame. Actions carry a request_id
 * and are answered by `ack` or `error`. All text is untrusted: only ever set with textContent.
 */
(function () {
  "use strict";

  var common = window.ChatDeskAgents; // agent-common.js, loaded first
  var root = document.getElementById("conversation");
  if (!root) return;

  var CONVERSATION_ID = root.getAttribute("data-conversation-id");
  var ME = root.getAttribute("data-me");
  var MY_USERNAME = root.getAttribute("data-username");

  var REASON_LABELS = common.REASON_LABELS;
  var waitingText = common.waitingText;
  var DRAFT_LABELS = {
    pending: gettext("drafting…"),
    generating: gettext("drafting…"),
    ready: gettext("Ready for review"),
    approved: gettext("Sent as drafted"),
    edited: gettext("Sent after edit"),
    rejected: gettext("Rejected"),
    auto_sent: gettext("Sent by autopilot"),
    superseded: gettext("Superseded by a newer customer message"),
    taken_over: gettext("Dropped: the conversation was taken over"),
    discarded: gettext("Discarded"),
    failed: gettext("Failed")
  };
  // Once a draft is decided its text has been used (or refused): the next draft may replace the box.
  var DECIDED = ["approved", "edited", "rejected", "auto_sent"];

  function find(selector) { return root.querySelector(selector); }
  function byTestId(id) { return find('[data-testid="' + id + '"]'); }

  var ui = {
    customer: find('[data-field="customer"]'),
    status: byTestId("conversation-status"),
    escalation: find('[data-field="escalation"]'),
    reasons: find('[data-field="reasons"]'),
    priority: find('[data-field="priority"]'),
    sentiment: find('[data-field="sentiment"]'),
    contactRow: find('[data-field="contact-row"]'),
    ratingRow: find('[data-field="rating-row"]'),
    rating: find('[data-field="rating"]'),
    contact: find('[data-field="contact"]'),
    page: find('[data-field="page"]'),
    identity: find('[data-field="identity"]'),
    identityNone: find('[data-field="identity-none"]'),
    identityName: find('[data-field="identity-name"]'),
    identityEmail: find('[data-field="identity-email"]'),
    identityAccount: find('[data-field="identity-account"]'),
    identityVerified: find('[data-field="identity-verified"]'),
    pageUnknown: find('[data-field="page-unknown"]'),
    agent: find('[data-field="agent"]'),
    topic: find('[data-field="topic"]'),
    waiting: find('[data-field="waiting"]'),
    notice: byTestId("notice"),
    messages: byTestId("messages"),
    historyEmpty: find('[data-field="history-empty"]'),
    earlier: find('[data-action="earlier"]'),
    draftStatus: byTestId("draft-status"),
    draftConfidence: byTestId("draft-confidence"),
    draftError: find('[data-field="draft-error"]'),
    draftText: byTestId("draft-text"),
    draftStream: byTestId("draft-stream"),
    draftHint: find('[data-field="draft-hint"]'),
    draftHintText: find('[data-field="draft-hint-text"]'),
    loadDraft: find('[data-action="load-draft"]'),
    sources: byTestId("draft-sources"),
    alternativesPanel: byTestId("draft-alternatives-panel"),
    alternatives: byTestId("draft-alternatives"),
    risk: byTestId("draft-risk"),
    riskReasons: byTestId("risk-reasons"),
    writeReply: byTestId("write-reply"),
    approve: byTestId("approve"),
    approveHint: find('[data-field="approve-hint"]'),
    sendEdit: byTestId("send-edit"),
    rejectReply: byTestId("reject-reply"),
    redraft: byTestId("redraft"),
    takeOver: byTestId("take-over"),
    handBack: byTestId("hand-back"),
    close: byTestId("close"),
    replyForm: find('[data-form="reply"]'),
    replyInput: byTestId("reply-input"),
    replySend: byTestId("reply-send"),
    replyCount: byTestId("reply-count"),
    replyHint: find('[data-field="reply-hint"]')
  };

  var view = {
    live: false,               // snapshot received on the current connection: actions may be sent
    conversation: null,
    messages: new Map(),       // seq -> message frame, one per seq
    draft: null,
    stream: { draftId: null, text: "" }, // the draft being written, as streamed so far
    filled: { id: null, text: "" }, // the draft last put into the draft box
    filledUsed: false,         // that draft was decided, so the box may be replaced without asking
    approveArmed: null,        // id of a risky draft whose Approve was clicked once: the next click sends it
    pendingReplies: new Map(), // request_id -> text of a reply on its way
    markedOutOfScope: new Set(), // seqs of customer messages marked "we don't answer this" here
    nextRequest: 1
  };

  // ------------------------------------------------------------- formatting

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  function percent(value) {
    return typeof value === "number" ? Math.round(value * 100) + "%" : "—";
  }

  function personText(name) {
    if (!name) return "—";
    return name === ME ? interpolate(gettext("%(name)s (you)"), { name: name }, true) : name;
  }

  // ---------------------------------------------------------------- notice

  function showNotice(text) {
    ui.notice.textContent = text;
    ui.notice.hidden = !text;
  }

  // ---------------------------------------------------------- conversation

  // The badge's words depend on the draft too (the conversation frame does not carry draft_status).
  function renderStatus() {
    var c = view.conversation;
    if (!c) return;
    var d = view.draft;
    var unfinished = d && ["pending", "generating", "ready"].indexOf(d.status) !== -1 ? d.status : null;
    ui.status.textContent = common.statusLabel(Object.assign({}, c, { draft_status: unfinished }));
  }

  function renderConversation() {
    var c = view.conversation;
    if (!c) return;
    ui.customer.textContent = c.customer;
    renderStatus();
    ui.status.setAttribute("data-status", c.status);
    ui.status.className = "badge status-" + c.status;

    var reason = c.escalation_reason ? (REASON_LABELS[c.escalation_reason] || c.escalation_reason) : "";
    // The reason stays after an escalation is handled; only the status says whether it is current.
    ui.escalation.textContent = !reason ? "—" : c.status === "escalated" ? reason :
      interpolate(gettext("Earlier: %(reason)s"), { reason: reason }, true);
    ui.escalation.classList.toggle("is-current", Boolean(reason) && c.status === "escalated");
    ui.reasons.replaceChildren();
    if (c.reasons && c.reasons.length) ui.reasons.appendChild(common.reasonChips(c.reasons, true));
    ui.reasons.hidden = !(c.reasons && c.reasons.length);
    ui.priority.textContent = c.priority ? String(c.priority) : "—";
    var sentiment = common.sentimentBadge(c.sentiment);
    ui.sentiment.replaceChildren();
    if (sentiment) ui.sentiment.appendChild(sentiment);
    else ui.sentiment.textContent = typeof c.sentiment === "number" ? common.signed(c.sentiment) : "—";
    ui.agent.textContent = personText(c.assigned_agent);
    ui.topic.textContent = c.topic || "—";
    // Who the host site says the customer is (docs/identity.md): one who signs in mid-chat shows up here.
    var who = c.identity;
    ui.identity.hidden = !who;
    ui.identityNone.hidden = Boolean(who);
    if (who) {
      var notGiven = gettext("(not given)");
      ui.identityName.textContent = who.name || notGiven;
      ui.identityEmail.textContent = who.email || notGiven;
      ui.identityAccount.textContent = (who.account_id || notGiven) + (who.site ? " \u00b7 " + who.site : "");
      ui.identityVerified.setAttribute("data-verified", who.verified ? "true" : "false");
      ui.identityVerified.querySelector('[data-badge="verified"]').hidden = !who.verified;
      ui.identityVerified.querySelector('[data-badge="unverified"]').hidden = Boolean(who.verified);
    }
    // The page the customer is on: each of their hellos updates it (docs/identity.md).
    if (c.page_url) {
      ui.page.href = c.page_url;
      ui.page.textContent = c.page_url.length > 120 ? c.page_url.slice(0, 119) + "\u2026" : c.page_url;
    }
    ui.page.hidden = !c.page_url;
    ui.pageUnknown.hidden = Boolean(c.page_url);
    // The customer left an address when no agent was at the desk.
    ui.contactRow.hidden = !c.contact_email;
    ui.contact.textContent = c.contact_email || "—";
    // The customer's CSAT rating of its latest rated closing (1-5), with their comment.
    ui.ratingRow.hidden = !c.rating;
    ui.rating.textContent = !c.rating ? "—" : c.rating.comment ?
      interpolate(gettext("%(score)s of 5: \u201c%(comment)s\u201d"), c.rating, true) :
      interpolate(gettext("%(score)s of 5"), c.rating, true);
    tick();

    if (c.status === "closed") {
      ui.replyHint.textContent = gettext("This conversation is closed. It opens again when the customer writes.");
    } else if (c.status === "taken_over") {
      ui.replyHint.textContent = gettext("Taken over: replies go straight to the customer; nothing is drafted.");
    } else {
      ui.replyHint.textContent = gettext("Replying takes the conversation over: no more drafts until you hand it back.");
    }
  }

  function tick() {
    ui.waiting.textContent = view.conversation ? waitingText(view.conversation.awaiting_reply_since) : "—";
  }

  // -------------------------------------------------------------- messages

  function senderLabel(message) {
    if (message.sender === "customer") return gettext("Customer");
    if (message.sender === "bot") return gettext("Autopilot");
    return message.author || gettext("Agent");
  }

  function buildMessage(message) {
    var item = el("li", "msg from-" + message.sender);
    item.setAttribute("data-testid", "message");
    item.setAttribute("data-sender", message.sender);
    item.setAttribute("data-seq", String(message.seq));
    var meta = el("div", "msg-meta");
    meta.appendChild(el("span", "msg-who", senderLabel(message)));
    var when = el("time", "msg-time", common.timeText(message.sent_at));
    if (message.sent_at) when.setAttribute("datetime", message.sent_at);
    meta.appendChild(when);
    item.appendChild(meta);
    item.appendChild(el("p", "msg-text", message.text));
    if (message.sender === "customer") item.appendChild(outOfScopeButton(message.seq));
    return item;
  }

  // One click marks a customer message as something the desk does not answer (docs/protocol.md).
  function outOfScopeButton(seq) {
    var marked = view.markedOutOfScope.has(seq);
    var button = el("button", "button small msg-action", marked ? gettext("Marked: we don't answer this") : gettext("We don't answer this"));
    button.type = "button";
    button.setAttribute("data-testid", "mark-out-of-scope");
    button.disabled = marked;
    button.title = gettext("Similar questions will be escalated to a person instead of drafted.");
    button.addEventListener("click", function () { act({ type: "mark_out_of_scope", seq: seq }); });
    return button;
  }

  function renderMessages() {
    var ordered = Array.from(view.messages.values()).sort(function (a, b) { return a.seq - b.seq; });
    var nearBottom = ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 80;
    ui.messages.replaceChildren.apply(ui.messages, ordered.map(buildMessage));
    ui.historyEmpty.hidden = ordered.length > 0;
    if (nearBottom || ordered.length <= 1) ui.messages.scrollTop = ui.messages.scrollHeight;
  }

  function highestSeq() {
    var highest = 0;
    view.messages.forEach(function (_, seq) { if (seq > highest) highest = seq; });
    return highest;
  }

  // ----------------------------------------------------------------- draft

  function renderDraft() {
    var d = view.draft;
    var status = d ? d.status : "none";
    var label = d ? (DRAFT_LABELS[d.status] || d.status) : gettext("No draft yet");
    if (d && d.decided_by && (status === "approved" || status === "edited" || status === "rejected")) {
      label = interpolate(gettext("%(outcome)s by %(name)s"), { outcome: label, name: d.decided_by }, true);
    }
    ui.draftStatus.textContent = label;
    ui.draftStatus.setAttribute("data-status", status);
    ui.draftConfidence.textContent = d ? percent(d.confidence) : "—";

    ui.draftError.hidden = !(d && d.error);
    ui.draftError.textContent = d && d.error ? interpolate(gettext("Drafting failed: %(error)s"), { error: d.error }, true) : "";

    var sources = (d && d.sources) || [];
    ui.sources.replaceChildren.apply(ui.sources, sources.map(function (source) {
      var item = el("li");
      item.appendChild(el("span", "source-title", source.title || source.id));
      item.appendChild(el("span", "source-score", typeof source.score === "number" ? source.score.toFixed(2) : ""));
      return item;
    }));
    if (!sources.length) ui.sources.appendChild(el("li", "muted", d && d.status === "ready" ? gettext("No sources") : "—"));

    var writing = Boolean(d && (status === "pending" || status === "generating"));
    if (!writing || (view.stream.draftId !== null && view.stream.draftId !== d.id)) {
      view.stream = { draftId: null, text: "" };
    }
    renderStream();

    renderAlternatives(d);
    renderRisk(d);

    var ready = Boolean(d && d.status === "ready");
    ui.draftText.readOnly = !ready;
    ui.draftText.placeholder = d && (status === "pending" || status === "generating")
      ? gettext("drafting…") : gettext("The draft appears here when it is ready.");
    if (d && view.filled.id === d.id && DECIDED.indexOf(d.status) !== -1 && !view.filledUsed) {
      fillDraftBox(d.id, d.text || ""); // decided: show what the draft said, leftover edits are moot
      view.filledUsed = true;
    }
    offerDraftText(d);
  }

  // A risky draft awaiting review shows why first (the server decides: risky, risk_reasons).
  function isRisky(d) {
    return Boolean(d && d.status === "ready" && d.risky);
  }

  function renderRisk(d) {
    var risky = isRisky(d);
    ui.risk.hidden = !risky;
    ui.riskReasons.replaceChildren.apply(ui.riskReasons, (risky ? d.risk_reasons || [] : []).map(function (text) {
      return el("li", null, text);
    }));
    if (!risky || view.approveArmed !== d.id) disarmApprove();
  }

  // Beam search proposes other wordings: "Use" puts one in the box, to send with "Send edited".
  function renderAlternatives(d) {
    var options = (d && d.status === "ready" && d.alternatives) || [];
    ui.alternativesPanel.hidden = !options.length;
    ui.alternatives.replaceChildren.apply(ui.alternatives, options.map(function (text) {
      var item = el("li");
      item.appendChild(el("span", "alternative-text", text));
      var use = el("button", "button small", gettext("Use"));
      use.type = "button";
      use.addEventListener("click", function () {
        ui.draftText.value = text;
        updateButtons();
      });
      item.appendChild(use);
      return item;
    }));
  }

  // A draft being written streams in as draft.delta frames; each says at which character its text starts.
  function onDraftDelta(frame) {
    if (view.stream.draftId !== frame.draft_id) view.stream = { draftId: frame.draft_id, text: "" };
    if (frame.offset > view.stream.text.length) return; // a gap: the final draft frame will carry the whole text
    view.stream.text = view.stream.text.slice(0, frame.offset) + frame.text;
    renderStream();
  }

  function renderStream() {
    ui.draftStream.hidden = !view.stream.text;
    ui.draftStream.textContent = view.stream.text;
  }

  function draftBoxModified() {
    return ui.draftText.value !== view.filled.text;
  }

  // Put a new or changed draft into the box, unless the agent has edits there that are still wanted.
  function offerDraftText(d) {
    var id = d ? d.id : null;
    var text = d ? d.text || "" : "";
    if (id === view.filled.id && text === view.filled.text) return;
    if (!draftBoxModified() || view.filledUsed) {
      fillDraftBox(id, text);
      return;
    }
    ui.draftHintText.textContent = id === view.filled.id
      ? gettext("The draft changed while you were editing; your edits are kept.")
      : gettext("A newer draft arrived while you were editing; your edits are kept.");
    ui.draftHint.hidden = false;
  }

  function fillDraftBox(id, text) {
    view.filled = { id: id, text: text };
    view.filledUsed = false;
    ui.draftText.value = text;
    ui.draftHint.hidden = true;
  }

  // --------------------------------------------------------------- buttons
  // Enabled only where docs/protocol.md allows the action; the server still has the last word.

  function updateButtons() {
    var c = view.conversation;
    var d = view.draft;
    // Another agent's taken-over conversation refuses every action (docs/protocol.md).
    var heldByOther = Boolean(c) && c.status === "taken_over" && c.assigned_agent_username !== MY_USERNAME;
    var canAct = view.live && Boolean(c) && c.status !== "closed" && !heldByOther;
    var ready = canAct && Boolean(d) && d.status === "ready";
    var boxText = ui.draftText.value.trim();

    // A risky draft: "Write a reply" is the main action; Approve is secondary and asks for a second click.
    var risky = ready && isRisky(d);
    ui.writeReply.hidden = !risky;
    ui.writeReply.disabled = !canAct;
    ui.approve.classList.toggle("primary", !risky);
    ui.approve.textContent = !risky ? gettext("Approve") :
      view.approveArmed === d.id ? gettext("Confirm: send as drafted") : gettext("Approve anyway…");
    ui.approve.disabled = !ready;
    ui.sendEdit.disabled = !ready || !boxText || boxText === (d.text || "").trim();
    ui.rejectReply.disabled = !ready || !boxText;
    ui.redraft.disabled = !ready;
    ui.takeOver.disabled = !canAct || c.status === "taken_over";
    ui.handBack.disabled = !canAct || (c.status !== "taken_over" && c.status !== "escalated");
    ui.close.disabled = !canAct;
    ui.replySend.disabled = !canAct || !replyFits();
    updateReplyCount();
  }

  // The reply box's counter: characters as the server counts them (code points, trimmed) of its limit.
  var MAX_REPLY = Number(ui.replyInput.getAttribute("data-max-chars")) || 4000;

  function replyLength() {
    return Array.from(ui.replyInput.value.trim()).length;
  }

  function replyFits() {
    var length = replyLength();
    return length > 0 && length <= MAX_REPLY;
  }

  function updateReplyCount() {
    var length = replyLength();
    ui.replyCount.textContent = interpolate(gettext("%(count)s / %(max)s"), { count: length, max: MAX_REPLY }, true);
    ui.replyCount.classList.toggle("is-over", length > MAX_REPLY);
    ui.replyCount.title = length > MAX_REPLY
      ? interpolate(gettext("Too long: a reply can be at most %(max)s characters."), { max: MAX_REPLY }, true) : "";
  }

  // Closing while the customer's latest message has no answer: ask first, saying so.
  function closeConversation() {
    var c = view.conversation;
    if (c && c.awaiting_reply_since &&
        !window.confirm(gettext("The customer's latest message has not been answered yet. Close the conversation anyway?"))) {
      return;
    }
    act({ type: "close" });
  }

  // ---------------------------------------------------------------- actions

  function act(frame) {
    frame.request_id = "r-" + view.nextRequest++;
    if (!send(frame)) {
      showNotice(gettext("Not connected. Wait for the connection to come back, then try again."));
      return null;
    }
    return frame.request_id;
  }
  // act: an action answered by ack or error; send: a frame nobody answers (typing), dropped when offline.
  window.ChatDeskConversation = { act: act, send: send };

  function actOnDraft(frame) {
    frame.draft_id = view.draft.id;
    act(frame);
  }

  function approve() {
    var d = view.draft;
    if (isRisky(d) && view.approveArmed !== d.id) {
      view.approveArmed = d.id;
      ui.approveHint.textContent = gettext("This draft is risky (see above). Click “Confirm: send as drafted” to send it as it is.");
      ui.approveHint.hidden = false;
      updateButtons();
      return;
    }
    disarmApprove();
    actOnDraft({ type: "approve" });
  }

  function disarmApprove() {
    view.approveArmed = null;
    ui.approveHint.hidden = true;
    ui.approveHint.textContent = "";
  }

  // The agent answers in their own words: the reply box below the conversation (it takes the conversation over).
  function writeReply() {
    ui.replyInput.scrollIntoView({ block: "center" });
    ui.replyInput.focus();
  }

  function sendEdited() {
    actOnDraft({ type: "edit", text: ui.draftText.value.trim() });
  }

  function rejectWithReply() {
    var text = ui.draftText.value.trim();
    if (!text) {
      showNotice(gettext("Write your reply in the draft box first."));
      return;
    }
    actOnDraft({ type: "reject", reply_text: text });
  }

  function askForRedraft() {
    actOnDraft({ type: "reject", redraft: true });
  }

  function sendReply() {
    var text = ui.replyInput.value.trim();
    if (!text) {
      showNotice(gettext("Type a reply before sending."));
      ui.replyInput.focus();
      return;
    }
    var requestId = act({ type: "reply", text: text, client_id: newClientId() });
    if (requestId) view.pendingReplies.set(requestId, ui.replyInput.value);
  }

  function newClientId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return "agent-" + window.crypto.randomUUID();
    return "agent-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 12);
  }

  function wireButtons() {
    ui.approve.addEventListener("click", approve);
    ui.writeReply.addEventListener("click", writeReply);
    ui.sendEdit.addEventListener("click", sendEdited);
    ui.rejectReply.addEventListener("click", rejectWithReply);
    ui.redraft.addEventListener("click", askForRedraft);
    ui.takeOver.addEventListener("click", function () { act({ type: "take_over" }); });
    ui.handBack.addEventListener("click", function () { act({ type: "hand_back" }); });
    ui.close.addEventListener("click", closeConversation);
    ui.replyForm.addEventListener("submit", function (event) { event.preventDefault(); sendReply(); });
    ui.replyInput.addEventListener("keydown", function (event) {
      // Ctrl/Cmd+Enter sends; plain Enter is a new line in a longer reply.
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); sendReply(); }
    });
    ui.draftText.addEventListener("input", updateButtons);
    ui.replyInput.addEventListener("input", updateButtons);
    ui.loadDraft.addEventListener("click", function () {
      if (view.draft) fillDraftBox(view.draft.id, view.draft.text || "");
      updateButtons();
    });
  }

  // ----------------------------------------------------------------- frames

  function onFrame(frame) {
    // agent-routing.js (claim, release, transfer, who is looking) and agent-notes.js (notes, tags,
    // typing) listen to the same frames.
    document.dispatchEvent(new CustomEvent("chatdesk:frame", { detail: frame }));
    switch (frame.type) {
      case "conversation":
        view.conversation = frame;
        renderConversation();
        break;
      case "history":
        // The snapshot's history replaces what is shown; a page asked for with "Earlier messages" adds to it.
        if (!view.live) view.messages.clear();
        (frame.messages || []).forEach(function (m) { if (typeof m.seq === "number") view.messages.set(m.seq, m); });
        ui.earlier.hidden = !frame.has_more;
        renderMessages();
        break;
      case "message":
        onMessage(frame);
        break;
      case "draft":
        view.draft = frame.draft;
        view.live = true; // the snapshot ends with the draft
        renderDraft();
        renderStatus();
        break;
      case "draft.delta":
        onDraftDelta(frame);
        return;
      case "ack":
        onAck(frame);
        break;
      case "error":
        onError(frame);
        break;
      default:
        return; // pong, and frame types added later
    }
    updateButtons();
  }

  function onMessage(frame) {
    if (typeof frame.seq !== "number" || view.messages.has(frame.seq)) return;
    if (frame.seq > highestSeq() + 1) {
      restart(); // missed something: a new connection sends the whole history again
      return;
    }
    view.messages.set(frame.seq, frame);
    renderMessages();
  }

  function onAck(frame) {
    showNotice("");
    if (frame.action === "approve" || frame.action === "edit" || frame.action === "reject") draftHandled();
    if (frame.action === "mark_out_of_scope" && typeof frame.seq === "number") {
      view.markedOutOfScope.add(frame.seq);
      renderMessages();
    }
    var replyText = view.pendingReplies.get(frame.request_id);
    if (replyText !== undefined) {
      view.pendingReplies.delete(frame.request_id);
      // Clear the box only if the agent has not started typing something else meanwhile.
      if (ui.replyInput.value === replyText) ui.replyInput.value = "";
      updateButtons();
    }
  }

  // The box's text has been used: from now on it follows the current draft again.
  function draftHandled() {
    var d = view.draft;
    fillDraftBox(d ? d.id : null, d ? d.text || "" : "");
  }

  function onError(frame) {
    view.pendingReplies.delete(frame.request_id); // the reply text stays in its box
    showNotice(frame.message || interpolate(gettext("That did not work (%(code)s)."), { code: frame.code }, true));
  }

  // -------------------------------------------------------------- connection
  // agent-common.js reconnects with backoff; each new connection gets a full snapshot,
  // starting with `conversation` and ending with `draft` (which sets view.live).

  function onClose(code) {
    view.live = false;
    updateButtons();
    if (code === 4404) {
      common.showConnection(root, "gone", gettext("Not found"));
      return true; // no retry: the error frame before the close already explained it
    }
    return false;
  }

  function onSignedOut() {
    showNotice(gettext("Your session has ended. Sign in again, then reload this page."));
  }

  var connection = null; // opened last, once the buttons are wired

  function send(frame) { return connection !== null && connection.send(frame); }

  // Drop the connection and open a new one at once (to get the full history again).
  function restart() {
    view.live = false;
    connection.restart();
  }

  ui.earlier.addEventListener("click", function () {
    var seqs = Array.from(view.messages.keys());
    if (seqs.length) send({ type: "history", before_seq: Math.min.apply(null, seqs) });
  });
  wireButtons();
  updateButtons();
  connection = common.connect("/ws/agents/conversations/" + encodeURIComponent(CONVERSATION_ID) + "/", {
    root: root,
    liveOn: "conversation",
    onFrame: onFrame,
    onClose: onClose,
    onSignedOut: onSignedOut
  });
  setInterval(tick, 1000);
})();
