// The DOM. User data goes into the page only through textContent and
// attribute setters: never innerHTML (the seed's XSS hole).

import { MAX_TEXT, QUICK_REACTIONS } from "./chat.js";

const $ = (id) => document.getElementById(id);
const GROUP_MS = 5 * 60 * 1000; // consecutive messages of one author within this share a header
const QUICK = QUICK_REACTIONS;

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });

function shortTime(ms) {
  const d = new Date(ms);
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  return sameDay ? timeFmt.format(d) : `${dayFmt.format(d)}, ${timeFmt.format(d)}`;
}

// "#" for a public room, "@" for a direct one, a lock (drawn in CSS: no
// emoji font needed) for a private one.
function roomMark(r) {
  if (r.kind === "private") {
    const m = el("span", "hash lock");
    m.setAttribute("role", "img");
    m.setAttribute("aria-label", "private");
    return m;
  }
  return el("span", "hash", r.kind === "direct" ? "@" : "#");
}

function roomLabel(r) {
  return r.kind === "direct" ? r.with || "direct message" : r.name;
}

function sizeText(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export class View {
  constructor(handlers) {
    // onSwitch(name), onLeave(name), onRetry(ref), onDiscard(ref), onOlder(),
    // onEdit(id, text) -> error text, onDelete(id), onReact(id, emoji)
    this.h = handlers;
    this.editing = null; // the id of the message whose text is being edited
    this.chat = null;
    this.dirty = new Set();
    this.opts = {};
    this.scheduled = false;
    this.nodes = new Map(); // key -> element, for the current room
    this.shownRoom = null;
    this.rateUntil = 0;
    this.rateTimer = null;
    this.noticeTimer = null;
    this.messages = $("messages");
    this.list = el("div", "message-list");
    this.historyNote = el("div", "history-note");
    this.messages.append(this.historyNote, this.list);
    this.messages.addEventListener("scroll", () => {
      if (this.messages.scrollTop < 120) this.h.onOlder();
    });
    setInterval(() => this.renderTyping(), 1000);
  }

  bind(chat) {
    this.chat = chat;
    this.nodes.clear();
    this.list.replaceChildren();
    this.shownRoom = null;
    $("me-name").textContent = chat.me.username;
    this.changed("all");
  }

  // Batches changes into one render per task.
  changed(what, opts = {}) {
    this.dirty.add(what);
    if (opts.stick) this.opts.stick = true;
    if (opts.prepend) this.opts.prepend = true;
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      const dirty = this.dirty;
      const o = this.opts;
      this.dirty = new Set();
      this.opts = {};
      if (this.chat) this.render(dirty, o);
    });
  }

  render(d, o) {
    const all = d.has("all");
    if (all || d.has("rooms")) this.renderRooms();
    if (all || d.has("room") || d.has("history")) this.renderMessages(o);
    if (all || d.has("room") || d.has("history") || d.has("receipts")) this.renderReadBy();
    if (all || d.has("room") || d.has("presence")) this.renderPresence();
    if (all || d.has("room") || d.has("typing")) this.renderTyping();
  }

  renderRooms() {
    const ul = $("rooms");
    const items = [];
    for (const r of this.chat.rooms.values()) {
      const li = el("li", "room" + (r.name === this.chat.current ? " active" : ""));
      li.dataset.room = r.name;
      const b = el("button", "room-open");
      b.type = "button";
      li.dataset.kind = r.kind;
      b.append(roomMark(r), el("span", "room-name", roomLabel(r)));
      if (r.kind !== "public") b.title = r.kind === "direct" ? `Direct messages with ${r.with || "someone"}` : "Private room";
      if (r.unread > 0) {
        const badge = el("span", "unread", r.unread > 99 ? "99+" : String(r.unread));
        badge.setAttribute("aria-label", `${r.unread} unread`);
        b.append(badge);
      }
      b.addEventListener("click", () => this.h.onSwitch(r.name));
      li.append(b);
      if (r.name !== "general") {
        const x = el("button", "room-leave", "×");
        x.type = "button";
        x.title = `Leave #${r.name}`;
        x.setAttribute("aria-label", `Leave ${r.name}`);
        x.addEventListener("click", () => this.h.onLeave(r.name));
        li.append(x);
      }
      items.push(li);
    }
    ul.replaceChildren(...items);
    const cur = this.chat.currentRoom;
    const mark = roomMark(cur);
    $("room-title").replaceChildren(...(cur.kind === "private" ? [mark, roomLabel(cur)] : [`${mark.textContent} ${roomLabel(cur)}`]));
    document.title = `${cur.kind === "public" ? "#" : cur.kind === "direct" ? "@" : ""}${roomLabel(cur)} · Aurora`;
    // The rooms plugin's forms, where the server has it.
    $("create-form").hidden = !this.chat.roomsApi;
    $("dm-form").hidden = !this.chat.roomsApi;
    $("invite-form").hidden = !(cur.kind !== "direct" && (cur.role === "owner" || cur.role === "admin"));
  }

  renderMessages(o) {
    const chat = this.chat;
    const r = chat.currentRoom;
    const box = this.messages;
    if (this.shownRoom !== r.name) {
      this.nodes.clear();
      this.list.replaceChildren();
      this.shownRoom = r.name;
      o = { ...o, stick: true };
    }
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 48;
    const fromBottom = box.scrollHeight - box.scrollTop;

    // Desired order: stored messages by id, then our pending ones.
    const items = r.ids.map((id) => ({ key: `m:${id}`, m: r.byId.get(id) }));
    for (const p of chat.pending.values()) {
      if (p.room === r.name) items.push({ key: `p:${p.ref}`, p });
    }
    const keep = new Set(items.map((i) => i.key));
    for (const [k, node] of this.nodes) {
      if (!keep.has(k)) {
        node.remove();
        this.nodes.delete(k);
      }
    }
    let prev = null;
    let prevAuthor = null;
    let prevTs = 0;
    for (const it of items) {
      let node = this.nodes.get(it.key);
      if (it.m) {
        const v = String(it.m.v || 0);
        if (!node || node.dataset.v !== v) {  // new, or changed (edit, delete, reaction): built again
          const fresh = this.messageNode(it.m);
          fresh.dataset.v = v;
          if (node) node.replaceWith(fresh);
          node = fresh;
          this.nodes.set(it.key, node);
        }
        const cont = prevAuthor === it.m.userId && it.m.ts - prevTs < GROUP_MS;
        node.classList.toggle("cont", cont);
        prevAuthor = it.m.userId;
        prevTs = it.m.ts;
      } else {
        if (!node) {
          node = this.messageNode({ user: chat.me.username, userId: chat.me.userId, text: it.p.text, ts: it.p.ts, own: true,
            attachments: it.p.attachments });
          node.dataset.ref = it.p.ref;
          this.nodes.set(it.key, node);
        }
        this.updatePending(node, it.p);
        prevAuthor = null;
      }
      const want = prev ? prev.nextSibling : this.list.firstChild;
      if (want !== node) this.list.insertBefore(node, want);
      prev = node;
    }
    this.renderHistoryNote(r);

    if (o.prepend) box.scrollTop = box.scrollHeight - fromBottom;
    else if (o.stick || atBottom) box.scrollTop = box.scrollHeight;
    // A first page shorter than the view: fetch more while there is more.
    if (box.scrollHeight <= box.clientHeight + 4) this.h.onOlder();
  }

  messageNode(m) {
    const node = el("article", "msg" + (m.own ? " own" : ""));
    if (m.id) node.dataset.id = m.id;
    const meta = el("div", "meta");
    const author = el("span", "author", m.user);
    const time = el("time", "time", shortTime(m.ts));
    time.dateTime = new Date(m.ts).toISOString();
    time.title = fullFmt.format(new Date(m.ts));
    meta.append(author, time);
    if (m.own) meta.append(el("span", "you", "you"));
    if (m.edited && !m.deleted) meta.append(el("span", "edited", "(edited)"));
    if (m.deleted) {
      node.classList.add("deleted");
      node.append(meta, el("div", "text tombstone", "This message was deleted."));
      return node;
    }
    node.append(meta);
    if (m.text) node.append(el("div", "text", m.text));
    if (m.attachments?.length) node.append(this.attachmentsRow(m.attachments));
    if (!m.id || !this.chat) return node; // a pending copy: nothing to change yet
    if (m.reactions?.size) node.append(this.reactionsRow(m));
    node.append(this.actions(m));
    return node;
  }

  // Images shown (fetched with the token into blob: URLs), other files as
  // links that save them under their name.
  attachmentsRow(list) {
    const row = el("div", "attachments");
    for (const a of list) {
      if (a.fileType.startsWith("image/")) {
        const img = el("img", "attachment-image");
        img.alt = a.filename;
        img.title = `${a.filename} (${sizeText(a.size)})`;
        // An image that loads grows its message: a view that was at the
        // bottom stays there.
        img.addEventListener("load", () => {
          const box = this.messages;
          if (box.scrollHeight - box.scrollTop - box.clientHeight < 48 + img.height) box.scrollTop = box.scrollHeight;
        });
        this.chat?.fileUrl(a.url).then((src) => { img.src = src; }, () => { img.alt = `${a.filename} (cannot load)`; });
        row.append(img);
        continue;
      }
      const link = el("a", "attachment-file", `\u{1F4CE} ${a.filename}`);
      link.href = "#";
      link.title = `${a.fileType}, ${sizeText(a.size)}`;
      link.append(el("span", "size", ` ${sizeText(a.size)}`));
      link.addEventListener("click", (e) => {
        e.preventDefault();
        this.chat?.fileUrl(a.url).then((href) => {
          const save = document.createElement("a");
          save.href = href;
          save.download = a.filename;
          save.click();
        }, () => this.notice(`Cannot load ${a.filename}.`));
      });
      row.append(link);
    }
    return row;
  }

  // 👍 2  ❤️ 1: one button per emoji, pressed when we are among its users.
  reactionsRow(m) {
    const row = el("div", "reactions");
    for (const [emoji, who] of m.reactions) {
      const mine = who.has(this.chat.me.userId);
      const b = el("button", "reaction" + (mine ? " mine" : ""));
      b.type = "button";
      b.setAttribute("aria-pressed", String(mine));
      b.title = `${who.size} reacted with ${emoji}`;
      b.append(el("span", "emoji", emoji), el("span", "count", String(who.size)));
      b.addEventListener("click", () => this.h.onReact(m.id, emoji));
      row.append(b);
    }
    return row;
  }

  // React (a small palette), Edit (ours), Delete (ours, or a moderator's).
  actions(m) {
    const bar = el("div", "actions");
    const palette = el("div", "palette");
    palette.hidden = true;
    for (const emoji of QUICK) {
      const b = el("button", "pick", emoji);
      b.type = "button";
      b.setAttribute("aria-label", `React with ${emoji}`);
      b.addEventListener("click", () => {
        palette.hidden = true;
        this.h.onReact(m.id, emoji);
      });
      palette.append(b);
    }
    const react = el("button", "link act-react", "React");
    react.type = "button";
    react.addEventListener("click", () => {
      palette.hidden = !palette.hidden;
    });
    bar.append(react);
    if (m.own) {
      const edit = el("button", "link act-edit", "Edit");
      edit.type = "button";
      edit.addEventListener("click", () => this.startEdit(bar.parentElement, m));
      bar.append(edit);
    }
    if (this.chat.canDelete(m)) {
      const del = el("button", "link act-delete", "Delete");
      del.type = "button";
      del.addEventListener("click", () => this.h.onDelete(m.id));
      bar.append(del);
    }
    bar.append(palette);
    return bar;
  }

  // The text becomes an input: Enter saves, Escape cancels.
  startEdit(node, m) {
    const text = node.querySelector(".text");
    const input = el("input", "edit-input");
    input.value = m.text;
    input.setAttribute("aria-label", "Edit message");
    const done = () => input.replaceWith(text);
    input.addEventListener("keydown", (e) => {
      if (e.key === "Escape") done();
      if (e.key !== "Enter") return;
      e.preventDefault();
      const err = this.h.onEdit(m.id, input.value);
      if (err) this.notice(err);
      else done();
    });
    text.replaceWith(input);
    input.focus();
  }

  updatePending(node, p) {
    node.classList.add("pending");
    node.classList.toggle("failed", p.state === "failed");
    let status = node.querySelector(".status");
    if (!status) {
      status = el("div", "status");
      node.append(status);
    }
    if (p.state === "pending") {
      status.replaceChildren(el("span", "sending", "sending…"));
      return;
    }
    const parts = [];
    if (p.error === "rate limited") {
      // Sent again by itself (chat.js): no button to press.
      const s = Math.max(0, Math.ceil((p.retryAt - Date.now()) / 1000));
      parts.push(el("span", "error-text", `Rate limited: sending again in ${s} s.`));
      setTimeout(() => this.changed("room"), 1000);
    } else {
      parts.push(el("span", "error-text", `Not sent: ${p.error}`));
      if (!p.final) {
        const retry = el("button", "link", "Retry");
        retry.type = "button";
        retry.addEventListener("click", () => this.h.onRetry(p.ref));
        parts.push(retry);
      }
    }
    const drop = el("button", "link", "Discard");
    drop.type = "button";
    drop.addEventListener("click", () => this.h.onDiscard(p.ref));
    parts.push(drop);
    status.replaceChildren(...parts);
  }

  // "Read by N" under our newest message (the names on hover).
  renderReadBy() {
    const r = this.chat.currentRoom;
    for (const old of this.list.querySelectorAll(".read-by")) old.remove();
    let newest = null;
    for (let i = r.ids.length - 1; i >= 0; i--) {
      const m = r.byId.get(r.ids[i]);
      if (m?.own && !m.deleted) {
        newest = m;
        break;
      }
    }
    if (!newest) return;
    const names = this.chat.readBy(r, newest.id);
    const node = this.nodes.get(`m:${newest.id}`);
    if (!names.length || !node) return;
    const note = el("div", "read-by", `Read by ${names.length}`);
    note.title = names.join(", ");
    node.append(note);
  }

  renderHistoryNote(r) {
    const h = r.history;
    let text = "";
    if (h.loading) text = "Loading earlier messages…";
    else if (h.unavailable) text = "History is not available on this server: new messages appear below.";
    else if (h.error) text = `History could not be loaded: ${h.error}`;
    else if (h.loaded && h.done) text = `This is the beginning of #${r.name}.`;
    this.historyNote.textContent = text;
    this.historyNote.hidden = !text;
  }

  renderPresence() {
    const r = this.chat.currentRoom;
    const users = [...r.presence.entries()].sort((a, b) => a[1].localeCompare(b[1]));
    const items = users.map(([id, name]) => {
      const li = el("li", "member" + (id === this.chat.me.userId ? " self" : ""));
      li.append(el("span", "dot"), el("span", "member-name", name));
      if (id === this.chat.me.userId) li.append(el("span", "you", "you"));
      return li;
    });
    $("member-list").replaceChildren(...items);
    $("members-title").textContent = `Online — ${users.length}`;
    $("online").textContent = `${users.length} online`;
  }

  renderTyping() {
    if (!this.chat) return;
    const names = this.chat.typingNames(this.chat.currentRoom);
    let text = "";
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length > 2) text = "Several people are typing…";
    const t = $("typing");
    if (t.textContent !== text) t.textContent = text;
  }

  // Connection state: connecting | connected | waiting (retryAt) | stopped.
  connection(s) {
    const c = $("conn");
    c.dataset.state = s.state;
    clearInterval(this.connTimer);
    const banner = $("banner");
    const label = () => {
      if (s.state === "connected") return "connected";
      if (s.state === "connecting") return "connecting…";
      const secs = Math.max(0, Math.ceil((s.retryAt - Date.now()) / 1000));
      return `offline · retry in ${secs} s`;
    };
    const paint = () => {
      c.textContent = label();
      if (s.state === "connected") {
        banner.hidden = true;
      } else if (s.state === "waiting") {
        banner.textContent = `Disconnected${s.detail ? ` (${s.detail})` : ""}. Reconnecting in ${Math.max(0, Math.ceil((s.retryAt - Date.now()) / 1000))} s… Messages you send now are delivered when it is back.`;
        banner.hidden = false;
      }
    };
    paint();
    if (s.state === "waiting") this.connTimer = setInterval(paint, 500);
  }

  // Search results: newest first, each with its author and time.
  searchResults(f) {
    const list = Array.isArray(f.messages) ? f.messages : [];
    const items = list.map((m) => {
      const li = el("li", "search-hit");
      const meta = el("div", "meta");
      const ts = Number(m.ts) || 0;
      const time = el("time", "time", shortTime(ts));
      time.dateTime = new Date(ts).toISOString();
      meta.append(el("span", "author", String(m.user ?? "")), time);
      if (m.edited) meta.append(el("span", "edited", "(edited)"));
      li.append(meta, el("div", "text", String(m.text ?? "")));
      return li;
    });
    const n = list.length;
    const more = f.next_before ? "+" : "";
    this.showSearch(`${n}${more} message${n === 1 ? "" : "s"} with \u201c${String(f.q ?? "")}\u201d`, items);
  }

  searchError(text) {
    this.showSearch(`Search: ${text}`, []);
  }

  showSearch(title, items) {
    $("search-title").textContent = title;
    $("search-list").replaceChildren(...items);
    $("search-results").hidden = false;
  }

  // The composer's count once it nears the limit; over it, sending is off.
  textLength(n) {
    const warn = $("text-warning");
    const over = n > MAX_TEXT;
    warn.hidden = n <= MAX_TEXT - 200;
    warn.textContent = over ? `${n} / ${MAX_TEXT}: too long to send` : `${n} / ${MAX_TEXT}`;
    warn.classList.toggle("over", over);
    $("composer").querySelector("button[type=submit]").disabled = over;
  }

  rateLimited(ms) {
    this.rateUntil = Math.max(this.rateUntil, Date.now() + ms);
    const secs = (ms / 1000).toFixed(ms < 10000 ? 1 : 0);
    this.notice(`Slow down: rate limited, retry in ${secs} s.`);
  }

  notice(text) {
    const banner = $("banner");
    if ($("conn").dataset.state !== "connected") return; // the connection banner wins
    banner.textContent = text;
    banner.hidden = false;
    clearTimeout(this.noticeTimer);
    this.noticeTimer = setTimeout(() => {
      if ($("conn").dataset.state === "connected") banner.hidden = true;
    }, 4000);
  }
}
