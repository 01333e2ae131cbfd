/* Internal notes, tags and typing on the agent's conversation page (docs/notes.md, docs/protocol.md).
 * Notes and tags are for agents only; every agent with the conversation open sees them change live.
 * While the agent types a reply, a `typing` frame goes out at most every 2.5 s (never for an empty box),
 * and "Customer is typing…" shows for a few seconds after each `typing` frame from the customer.
 * It reads the frames agent-conversation.js receives ("chatdesk:frame" events) and sends through it.
 * All text is untrusted: only ever set with textContent. */
(function () {
  "use strict";

  var root = document.getElementById("conversation");
  if (!root) return;
  var common = window.ChatDeskAgents; // agent-common.js, loaded first

  var NOTE_TIME = { dateStyle: "short", timeStyle: "short" }; // a note's day and time (Intl options)
  var TYPING_EVERY_MS = 2500;  // the server relays at most one each 2 s
  var TYPING_SHOWN_MS = 5000;  // how long "Customer is typing…" stays after the last frame

  function find(selector) { return root.querySelector(selector); }
  var ui = {
    tags: find('[data-testid="tags"]'),
    tagForm: find('[data-form="add-tag"]'),
    tagInput: find('[data-testid="tag-input"]'),
    notes: find('[data-testid="notes"]'),
    notesMore: find('[data-field="notes-more"]'),
    noteForm: find('[data-form="add-note"]'),
    noteInput: find('[data-testid="note-input"]'),
    replyInput: find('[data-testid="reply-input"]'),
    replySend: find('[data-testid="reply-send"]'),
    customerTyping: find('[data-testid="customer-typing"]')
  };
  var shown = new Set(); // ids of the notes on the page
  var sent = new Map();  // request_id -> [input, text]: cleared once acknowledged, kept on an error
  var typingSentAt = 0;
  var typingTimer = null;

  function conversation() { return window.ChatDeskConversation; }
  function act(frame) { return conversation() && conversation().act(frame); }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  function addNote(note) {
    if (!note || shown.has(note.id)) return;
    shown.add(note.id);
    var item = el("li", "note");
    item.setAttribute("data-testid", "note");
    var meta = el("div", "msg-meta");
    meta.appendChild(el("span", "msg-who", note.author || gettext("A former agent")));
    var when = el("time", "msg-time", common.timeText(note.created_at, NOTE_TIME));
    if (note.created_at) when.setAttribute("datetime", note.created_at);
    meta.appendChild(when);
    item.appendChild(meta);
    item.appendChild(el("p", "msg-text", note.text));
    ui.notes.appendChild(item);
  }

  function onNotes(frame) {
    shown.clear();
    ui.notes.replaceChildren();
    (frame.notes || []).forEach(addNote);
    ui.notesMore.hidden = !frame.has_more;
  }

  function onTags(frame) {
    ui.tags.replaceChildren();
    (frame.tags || []).forEach(function (name) {
      var item = el("li", "tag", name);
      item.setAttribute("data-testid", "tag");
      item.setAttribute("data-tag", name);
      var remove = el("button", null, "\u00d7");
      remove.type = "button";
      remove.setAttribute("aria-label", interpolate(gettext("Remove the tag %(tag)s"), { tag: name }, true));
      remove.addEventListener("click", function () { act({ type: "remove_tag", tag: name }); });
      item.appendChild(remove);
      ui.tags.appendChild(item);
    });
  }

  function showCustomerTyping(on) {
    clearTimeout(typingTimer);
    ui.customerTyping.textContent = on ? gettext("Customer is typing…") : "";
    if (on) typingTimer = setTimeout(function () { showCustomerTyping(false); }, TYPING_SHOWN_MS);
  }

  function submitted(input, frame) {
    var requestId = act(frame);
    if (requestId) sent.set(requestId, [input, input.value]);
  }

  function answered(frame) {
    var request = sent.get(frame.request_id);
    if (!request) return;
    sent.delete(frame.request_id);
    // Clear the box only if it still holds what was sent (an error leaves it to fix and send again).
    if (frame.type === "ack" && request[0].value === request[1]) request[0].value = "";
  }

  document.addEventListener("chatdesk:frame", function (event) {
    var frame = event.detail;
    if (frame.type === "ack" || frame.type === "error") answered(frame);
    else if (frame.type === "notes") onNotes(frame);
    else if (frame.type === "note") addNote(frame.note);
    else if (frame.type === "tags") onTags(frame);
    else if (frame.type === "typing" && frame.who === "customer") showCustomerTyping(true);
    else if (frame.type === "message" && frame.sender === "customer") showCustomerTyping(false);
  });

  ui.tagForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var tag = ui.tagInput.value.trim();
    if (tag) submitted(ui.tagInput, { type: "add_tag", tag: tag });
  });
  ui.noteForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = ui.noteInput.value.trim();
    if (text) submitted(ui.noteInput, { type: "add_note", text: text });
  });
  ui.replyInput.addEventListener("input", function () {
    var now = Date.now();
    // Only while this agent may reply (the page enables Send then): not on a closed conversation or one
    // another agent holds.
    if (!ui.replyInput.value.trim() || ui.replySend.disabled || now - typingSentAt < TYPING_EVERY_MS) return;
    if (!conversation()) return;
    if (conversation().send({ type: "typing" })) typingSentAt = now;
  });
})();
