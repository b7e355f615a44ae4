// The chat state and protocol: rooms, messages by stream id, pending sends
// by ref, presence and typing. Knows nothing of the DOM: it calls
// `view.changed(what)` and the view reads the state back.
//
// Delivery rules (so nothing is missed or shown twice):
//   - every message is kept by its stream id; one seen again is ignored;
//   - a room's cursor is the newest id it has seen (live, resumed, history)
//     or the `last_id` of a resume; after a reconnect the client sends
//     `resume {room, since: cursor}` and the server replays what came after;
//   - a message we send is shown at once as pending under a random `ref`;
//     the `ack` (or our own broadcast, which carries the ref) confirms it;
//     pending messages are sent again after a reconnect with the same ref,
//     which the server answers with the first id instead of storing twice.

import { compareIds, idTime, maxId, newRef, parseId, ROOM_RE } from "./ids.js";
import { fetchUpload } from "./session.js";

export const DEFAULT_ROOM = "general";
const HISTORY_PAGE = 50;
const TYPING_SHOW_MS = 4000;
const TYPING_SEND_EVERY_MS = 2500;
const CLOCK_SLACK_MS = 5 * 60 * 1000;
const AUTO_JOIN_MAX = 24; // rooms joined from the server's list (chat's max_rooms is 32)
export const MAX_TEXT = 4000; // chat's max_text_chars (code points)
export const QUICK_REACTIONS = ["\u{1F44D}", "\u2764\uFE0F", "\u{1F602}", "\u{1F389}", "\u{1F62E}", "\u{1F622}"];
const READ_EVERY_MS = 1500; // read markers sent at most this often per room
const AUTO_RETRY_GAP_MS = 350; // rate-limited sends go out again this far apart
// Errors a second try cannot fix: the message is offered for discarding only.
const FINAL_ERRORS = new Set(["too_long", "empty", "bad_field", "bad_room", "not_member", "no_room", "join_denied",
  "room_archived", "banned", "unauthorized", "forbidden"]);

function newRoom(name) {
  return {
    name,
    ids: [], // stream ids, ascending
    byId: new Map(),
    cursor: null,
    unread: 0,
    joined: false,
    history: { loaded: false, loading: false, before: null, done: false, unavailable: false },
    presence: new Map(), // userId -> username
    reads: new Map(), // userId -> { user, id }: how far each reader has read (receipts)
    typing: new Map(), // userId -> { user, until }
    kind: "public", // "public" | "private" | "direct" (rooms plugin: docs/rooms.md)
    role: "", // the user's role in a room it is a member of
    with: "", // direct rooms: the other user's name
  };
}

// What the server says a message carries ({id, url, fileType, size,
// filename}); anything else is left out. Only our server's upload URLs.
function validAttachments(list) {
  if (!Array.isArray(list)) return [];
  return list.filter((a) => a && typeof a.url === "string" && /^\/api\/uploads\/[0-9a-f]{32}$/.test(a.url) &&
    typeof a.fileType === "string" && typeof a.filename === "string" && Number.isFinite(a.size));
}

export class Chat {
  constructor(session, view) {
    this.me = session;
    this.view = view;
    this.conn = null;
    this.rooms = new Map();
    this.current = DEFAULT_ROOM;
    this.pending = new Map(); // ref -> { ref, room, text, attachments, ts, state: "pending"|"failed", error }
    this.files = new Map(); // upload url -> Promise of a blob: URL (fetched once with the token)
    this.requests = new Map(); // ref -> { kind, room, frame }
    this.lastOpenAt = 0;
    this.lastTypingSent = new Map();
    this.readSent = new Map(); // room -> { id, at }: the read marker we last sent
    this.retryChain = 0; // when the next rate-limited send may go out again
    this.storeKey = `aurora.rooms.${session.userId}`;
    this.roomsApi = false; // the server has the rooms plugin (a `rooms` answer came)
    this.hiddenKey = `aurora.hidden.${session.userId}`;
    this.hidden = new Set(); // member rooms the user left here (an owner keeps its room): not joined again
    try {
      for (const n of JSON.parse(localStorage.getItem(this.hiddenKey) || "[]")) if (typeof n === "string") this.hidden.add(n);
    } catch {
      this.hidden.clear();
    }
    this.restoreRooms();
  }

  // ---- rooms ----

  restoreRooms() {
    let saved = null;
    try {
      saved = JSON.parse(localStorage.getItem(this.storeKey) || "null");
    } catch {
      saved = null;
    }
    const names = Array.isArray(saved?.rooms) ? saved.rooms.filter((r) => ROOM_RE.test(r)) : [];
    this.room(DEFAULT_ROOM);
    for (const n of names) this.room(n);
    if (typeof saved?.current === "string" && this.rooms.has(saved.current)) this.current = saved.current;
  }

  saveRooms() {
    localStorage.setItem(this.storeKey, JSON.stringify({ rooms: [...this.rooms.keys()], current: this.current }));
  }

  room(name) {
    let r = this.rooms.get(name);
    if (!r) {
      r = newRoom(name);
      this.rooms.set(name, r);
    }
    return r;
  }

  get currentRoom() {
    return this.room(this.current);
  }

  // Joins (or just opens) a room typed by the user. Returns an error text or "".
  joinByName(input) {
    const name = input.trim().replace(/^#/, "");
    if (!ROOM_RE.test(name)) return "A room name is 1–64 letters, digits, or _ . : -";
    const known = this.rooms.has(name);
    this.unhide(name);
    this.room(name);
    if (!known) this.request("join", name, { type: "join", room: name });
    this.switchTo(name);
    return "";
  }

  unhide(name) {
    if (this.hidden.delete(name)) localStorage.setItem(this.hiddenKey, JSON.stringify([...this.hidden]));
  }

  leave(name) {
    if (name === DEFAULT_ROOM || !this.rooms.has(name)) return;
    const r = this.rooms.get(name);
    // A member gives up its membership too; the owner keeps its room, which
    // is then not joined again from the server's list until asked for.
    if (r.role && r.role !== "owner") this.request("room_leave", name, { type: "room_leave", room: name });
    if (r.role === "owner") {
      this.hidden.add(name);
      localStorage.setItem(this.hiddenKey, JSON.stringify([...this.hidden]));
    }
    this.request("leave", name, { type: "leave", room: name });
    this.drop(name);
  }

  // Forgets a room here (left, removed, archived).
  drop(name) {
    if (name === DEFAULT_ROOM || !this.rooms.has(name)) return;
    this.rooms.delete(name);
    for (const [ref, p] of this.pending) if (p.room === name) this.pending.delete(ref);
    if (this.current === name) this.current = DEFAULT_ROOM;
    this.saveRooms();
    this.view.changed("rooms");
    this.view.changed("room");
  }

  switchTo(name) {
    if (!this.rooms.has(name)) return;
    this.current = name;
    const r = this.currentRoom;
    r.unread = 0;
    this.markRead(r);
    this.saveRooms();
    this.view.changed("rooms");
    this.view.changed("room");
    if (!r.history.loaded && !r.history.loading) this.loadHistory(r);
  }

  // ---- rooms with members (the rooms plugin) ----

  // Each returns an error text for the form, or "".
  createRoom(input, isPrivate) {
    const name = input.trim().replace(/^#/, "");
    if (!ROOM_RE.test(name)) return "A room name is 1–64 letters, digits, or _ . : -";
    if (this.rooms.has(name)) return `#${name} is already in your list`;
    this.request("room_create", name, { type: "room_create", room: name, visibility: isPrivate ? "private" : "public" });
    return "";
  }

  invite(username) {
    const u = username.trim();
    if (!u) return "Whom? Type a username";
    this.request("room_invite", this.current, { type: "room_invite", room: this.current, username: u });
    return "";
  }

  openDirect(username) {
    const u = username.trim();
    if (!u) return "Whom? Type a username";
    if (u === this.me.username) return "A direct message needs another user";
    this.request("dm_open", null, { type: "dm_open", username: u });
    return "";
  }

  // A room the server says we are a member of: in the list, joined.
  adopt(entry, open = false) {
    if (!entry || !ROOM_RE.test(entry.room || "")) return;
    if (open) this.unhide(entry.room);
    const known = this.rooms.has(entry.room);
    // Archived rooms cannot be joined; rooms left on purpose stay left; and
    // no more than AUTO_JOIN_MAX rooms are joined from the list.
    if (!known && !open && (entry.archived === true || this.hidden.has(entry.room) || this.rooms.size >= AUTO_JOIN_MAX)) return;
    const r = this.room(entry.room);
    if (typeof entry.roomType === "string") r.kind = entry.roomType;
    if (typeof entry.role === "string") r.role = entry.role;
    if (Array.isArray(entry.members)) {
      const other = entry.members.find((m) => m && m.userId !== this.me.userId);
      if (other && typeof other.user === "string") r.with = other.user;
    }
    if (!known) {
      this.request("join", r.name, { type: "join", room: r.name });
      this.saveRooms();
    }
    if (open) this.switchTo(r.name);
    this.view.changed("rooms");
  }

  onRooms(f) {
    this.requests.delete(String(f.ref));
    this.roomsApi = true;
    for (const entry of Array.isArray(f.rooms) ? f.rooms : []) {
      this.adopt(entry);
      // Unread counts are the server's (from the read markers this client
      // sends): they survive a log out, another tab, another device.
      const r = this.rooms.get(entry?.room);
      if (r && r.name !== this.current && Number.isInteger(entry.unread)) r.unread = Math.max(r.unread, entry.unread);
    }
    this.view.changed("rooms");
  }

  // The read marker of a room on screen moves to its newest message.
  markRead(r) {
    const newest = r.ids.length ? r.ids[r.ids.length - 1] : null;
    if (!newest || !this.conn?.connected || document.hidden) return;
    const sent = this.readSent.get(r.name);
    if (sent && compareIds(sent.id, newest) >= 0) return;
    const now = Date.now();
    if (sent && now - sent.at < READ_EVERY_MS) {
      clearTimeout(r.readTimer);
      r.readTimer = setTimeout(() => this.markRead(r), READ_EVERY_MS - (now - sent.at));
      return;
    }
    this.readSent.set(r.name, { id: newest, at: now });
    this.request("read", r.name, { type: "read", room: r.name, id: newest });
  }

  // member_added / member_removed / member_role / room_updated.
  onRoomEvent(f) {
    const r = typeof f.room === "string" ? this.rooms.get(f.room) : null;
    const me = f.userId === this.me.userId;
    if (f.type === "member_added" && me && !r) {
      this.unhide(f.room); // invited again: shown again
      this.request("rooms", null, { type: "rooms", activity: false }); // its type, role and names come with the list
    } else if (f.type === "member_removed" && me && r) {
      this.drop(f.room);
      if (f.by !== this.me.userId) this.view.notice(`You were removed from #${f.room}.`);
    } else if (f.type === "member_role" && me && r) {
      r.role = String(f.role || r.role);
      this.view.changed("rooms");
    } else if (f.type === "room_updated" && r && f.archived === true) {
      this.drop(f.room);
      this.view.notice(`#${f.room} was archived.`);
    }
  }

  // ---- connection ----

  attach(conn) {
    this.conn = conn;
  }

  // A frame with a fresh ref, remembered so its answer (or error, or
  // rate_limited) can be matched.
  request(kind, room, frame) {
    const ref = newRef();
    const full = { ...frame, ref };
    this.requests.set(ref, { kind, room, frame: full });
    this.conn?.send(full);
    return ref;
  }

  onOpen() {
    const reconnect = this.lastOpenAt > 0;
    const since = reconnect ? `${Math.max(0, this.lastOpenAt - CLOCK_SLACK_MS)}-0` : null;
    this.lastOpenAt = Date.now();
    // Answers to the old connection's requests will not come.
    for (const [ref, q] of this.requests) if (q.kind !== "message") this.requests.delete(ref);
    for (const r of this.rooms.values()) {
      r.presence.clear();
      r.typing.clear();
      r.joined = r.name === DEFAULT_ROOM; // joined by the server at connect
      if (r.history.loading) r.history.loading = false;
      const from = r.cursor || since;
      if (from) {
        this.request("resume", r.name, { type: "resume", room: r.name, since: from });
      } else if (r.name !== DEFAULT_ROOM) {
        this.request("join", r.name, { type: "join", room: r.name });
      }
    }
    const cur = this.currentRoom;
    if (!cur.history.loaded) this.loadHistory(cur);
    // Messages not confirmed before the drop: same ref, so never stored twice.
    for (const p of this.pending.values()) if (p.state === "pending") this.sendPending(p);
    // Rooms we are a member of (answered `unhandled` without the rooms plugin),
    // with their unread counts.
    this.readSent.clear();
    this.request("rooms", null, { type: "rooms" });
    this.view.changed("all");
  }

  // ---- sending ----

  // Returns an error text (nothing sent) or "". `attachments`: uploads
  // (POST /api/uploads answers) to send with it; then the text may be empty.
  send(text, attachments = []) {
    const room = this.current;
    if (!text.trim() && !attachments.length) return "";
    const n = [...text].length;
    if (n > MAX_TEXT) return `Too long to send: ${n} of at most ${MAX_TEXT} characters.`;
    const ref = newRef();
    const p = { ref, room, text: text.trim() ? text : "", attachments, ts: Date.now(), state: "pending", error: "" };
    this.pending.set(ref, p);
    this.sendPending(p);
    this.view.changed("room", { stick: true });
    return "";
  }

  // A blob: URL for an upload, fetched once with the token (an <img> cannot
  // send one); the promise rejects when the server refuses it.
  fileUrl(url) {
    if (!this.files.has(url)) {
      const p = fetchUpload(this.me.token, url).then((blob) => URL.createObjectURL(blob));
      p.catch(() => this.files.delete(url)); // tried again on the next render
      this.files.set(url, p);
    }
    return this.files.get(url);
  }

  sendPending(p) {
    const frame = { type: "message", room: p.room, text: p.text, ref: p.ref };
    if (p.attachments?.length) frame.attachments = p.attachments.map((a) => a.id);
    this.requests.set(p.ref, { kind: "message", room: p.room, frame });
    this.conn?.send(frame); // not connected: sent by onOpen
  }

  retry(ref) {
    const p = this.pending.get(ref);
    if (!p || p.final) return;
    p.state = "pending";
    p.error = "";
    this.sendPending(p);
    this.view.changed("room");
  }

  discard(ref) {
    clearTimeout(this.pending.get(ref)?.timer);
    this.pending.delete(ref);
    this.requests.delete(ref);
    this.view.changed("room");
  }

  // ---- changes to messages (docs/protocol.md, "Changes to messages") ----

  edit(id, text) {
    const r = this.currentRoom;
    const m = r.byId.get(id);
    if (!m || !m.own || m.deleted) return "";
    const n = [...text].length;
    if (!text.trim()) return "An edit cannot be empty: delete the message instead.";
    if (n > MAX_TEXT) return `Too long: ${n} of at most ${MAX_TEXT} characters.`;
    if (text !== m.text) this.request("edit", r.name, { type: "edit", room: r.name, id, text });
    return "";
  }

  remove(id) {
    const r = this.currentRoom;
    if (r.byId.get(id)?.deleted) return;
    this.request("delete", r.name, { type: "delete", room: r.name, id });
  }

  // Adds our reaction, or takes it back if it is there.
  react(id, emoji) {
    const r = this.currentRoom;
    const m = r.byId.get(id);
    if (!m || m.deleted) return;
    const mine = m.reactions.get(emoji)?.has(this.me.userId);
    this.request("react", r.name, { type: "react", room: r.name, id, emoji, op: mine ? "remove" : "add" });
  }

  // May we delete this message? Ours, or any as a room's owner or admin.
  canDelete(m) {
    const r = this.rooms.get(m.room);
    return !m.deleted && (m.own || r?.role === "owner" || r?.role === "admin");
  }

  // edit / delete / reaction, live or replayed by resume: applied in id order.
  onChange(f) {
    const r = typeof f.room === "string" ? this.rooms.get(f.room) : null;
    if (!r || !parseId(f.id) || typeof f.target !== "string") return;
    r.cursor = maxId(r.cursor, f.id);
    const m = r.byId.get(f.target);
    if (!m || (m.changeId && compareIds(m.changeId, f.id) >= 0)) return; // unknown here, or applied already
    m.changeId = f.id;
    if (m.deleted) return;
    if (f.type === "edit" && typeof f.text === "string") {
      m.text = f.text;
      m.edited = true;
    } else if (f.type === "delete") {
      m.deleted = true;
      m.text = "";
      m.reactions.clear();
    } else if (f.type === "reaction" && typeof f.emoji === "string" && typeof f.userId === "string") {
      const who = m.reactions.get(f.emoji) || new Set();
      if (f.op === "remove") who.delete(f.userId);
      else who.add(f.userId);
      if (who.size) m.reactions.set(f.emoji, who);
      else m.reactions.delete(f.emoji);
    }
    m.v = (m.v || 0) + 1;
    if (r.name === this.current) this.view.changed("room");
  }

  typing() {
    const now = Date.now();
    const room = this.current;
    if (now - (this.lastTypingSent.get(room) || 0) < TYPING_SEND_EVERY_MS) return;
    this.lastTypingSent.set(room, now);
    this.conn?.send({ type: "typing", room });
  }

  loadHistory(r, older = false) {
    const h = r.history;
    if (h.loading || h.unavailable || (older && h.done)) return;
    if (!this.conn?.connected) return;
    h.loading = true;
    const frame = { type: "history", room: r.name, limit: HISTORY_PAGE };
    if (older && h.before) frame.before = h.before;
    this.request(older ? "history-older" : "history", r.name, frame);
    if (r.name === this.current) this.view.changed("history");
  }

  // ---- receiving ----

  onFrame(f) {
    switch (f.type) {
      case "message":
        return this.onMessage(f, "live");
      case "edit":
      case "delete":
      case "reaction":
        return this.onChange(f);
      case "receipts":
        return this.onReceipts(f);
      case "search":
        this.requests.delete(String(f.ref));
        return this.view.searchResults(f);
      case "ack":
        return this.onAck(f);
      case "joined":
        return this.onJoined(f);
      case "left":
        this.requests.delete(f.ref);
        return;
      case "resumed":
        return this.onResumed(f);
      case "history":
        return this.onHistory(f);
      case "presence":
        return this.onPresence(f);
      case "typing":
        return this.onTyping(f);
      case "rate_limited":
        return this.onRateLimited(f);
      case "rooms":
        return this.onRooms(f);
      case "member_added":
      case "member_removed":
      case "member_role":
      case "room_updated":
        return this.onRoomEvent(f);
      case "error":
        return this.onError(f);
      default:
        if (typeof f.type !== "string" && typeof f.text === "string") return this.onMessage(f, "live"); // seed shape
    }
  }

  // how: "live" | "resume" | "history"
  onMessage(m, how) {
    const room = typeof m.room === "string" ? m.room : DEFAULT_ROOM;
    const r = this.rooms.get(room);
    if (!r || typeof m.text !== "string") return false;
    if (!parseId(m.id)) {
      // The seed's plain shape without an id: show, cannot dedupe.
      m = { ...m, id: `${Number(m.ts) || Date.now()}-${Math.floor(Math.random() * 1e9)}` };
    }
    const own = m.userId === this.me.userId;
    if (own && m.ref !== undefined) this.confirm(String(m.ref), m.id);
    r.cursor = how === "history" ? r.cursor : maxId(r.cursor, m.id);
    if (r.byId.has(m.id)) return false;
    const msg = {
      id: m.id,
      room,
      user: typeof m.user === "string" ? m.user : "unknown",
      userId: typeof m.userId === "string" ? m.userId : "",
      text: m.text,
      ts: Number(m.ts) || idTime(m.id),
      own,
      // The latest state, as history gives it; live and resumed changes update it.
      edited: m.edited === true,
      deleted: m.deleted === true,
      reactions: new Map(
        (Array.isArray(m.reactions) ? m.reactions : [])
          .filter((x) => x && typeof x.emoji === "string" && Array.isArray(x.userIds))
          .map((x) => [x.emoji, new Set(x.userIds.filter((u) => typeof u === "string"))]),
      ),
      attachments: validAttachments(m.attachments),
    };
    r.byId.set(m.id, msg);
    insertSorted(r.ids, m.id);
    r.typing.delete(msg.userId);
    if (how !== "history" && !own && room !== this.current) r.unread += 1;
    if (how !== "history") {
      if (room === this.current) this.view.changed("room", { stick: own });
      this.view.changed("rooms");
    }
    if (room === this.current) this.markRead(r);
    return true;
  }

  // Our message `ref` is stored as `id`: the pending copy goes.
  confirm(ref, id) {
    const p = this.pending.get(ref);
    this.requests.delete(ref);
    if (!p) return;
    this.pending.delete(ref);
    const r = this.rooms.get(p.room);
    if (r && !r.byId.has(id)) {
      r.byId.set(id, { id, room: p.room, user: this.me.username, userId: this.me.userId, text: p.text, ts: idTime(id), own: true,
        edited: false, deleted: false, reactions: new Map(), attachments: validAttachments(p.attachments) });
      insertSorted(r.ids, id);
      r.cursor = maxId(r.cursor, id);
    }
    if (p.room === this.current) this.view.changed("room");
  }

  onAck(f) {
    const ref = f.ref === undefined ? "" : String(f.ref);
    const q = this.requests.get(ref);
    if (q?.kind === "message" && parseId(f.id)) return this.confirm(ref, f.id);
    this.requests.delete(ref);
    if (q?.kind === "room_create" || q?.kind === "dm_open") this.adopt(f, true);
    else if (q?.kind === "room_invite") this.view.notice(`Invited ${q.frame.username} to #${q.room}.`);
  }

  onJoined(f) {
    this.requests.delete(String(f.ref));
    const r = this.rooms.get(f.room);
    if (!r) return;
    r.joined = true;
    if (f.room === this.current && !r.history.loaded) this.loadHistory(r);
    this.view.changed("rooms");
  }

  onResumed(f) {
    this.requests.delete(String(f.ref));
    const r = this.rooms.get(f.room);
    if (!r) return;
    r.joined = true;
    r.cursor = maxId(r.cursor, f.last_id);
    // Cut short (more than the server replays at once): the gap is history's.
    if (f.complete === false) {
      r.history = { loaded: false, loading: false, before: null, done: false, unavailable: r.history.unavailable };
      if (f.room === this.current) this.loadHistory(r);
    }
    this.view.changed("rooms");
    if (f.room === this.current) this.view.changed("room");
  }

  onHistory(f) {
    const q = this.requests.get(String(f.ref));
    this.requests.delete(String(f.ref));
    const r = this.rooms.get(f.room);
    if (!r) return;
    const h = r.history;
    const list = Array.isArray(f.messages) ? f.messages : [];
    const first = !h.loaded;
    for (const m of list) this.onMessage({ ...m, room: f.room }, "history");
    h.loading = false;
    h.loaded = true;
    if (q?.kind !== "history-older" || !h.before || (f.next_before && compareIds(f.next_before, h.before) < 0)) {
      h.before = typeof f.next_before === "string" && f.next_before ? f.next_before : h.before;
    }
    if (!f.next_before || list.length === 0) h.done = true;
    if (first && list.length) {
      // History comes from the database, which may lag the stream by a
      // batch: replay the stream from its newest message to close the gap.
      const newest = list.reduce((a, m) => maxId(a, m.id), null);
      if (newest) this.request("resume", f.room, { type: "resume", room: f.room, since: newest });
    }
    if (f.room === this.current) this.view.changed("history", { prepend: q?.kind === "history-older" });
  }

  onPresence(f) {
    const r = this.rooms.get(f.room);
    if (!r) return;
    this.requests.delete(String(f.ref));
    if (Array.isArray(f.users)) {
      r.presence.clear();
      for (const u of f.users) if (u && typeof u.userId === "string") r.presence.set(u.userId, String(u.user));
    } else if (f.event === "join" && typeof f.userId === "string") {
      r.presence.set(f.userId, String(f.user));
    } else if (f.event === "leave" && typeof f.userId === "string") {
      // The user may still be here on another tab: ask for the truth.
      r.presence.delete(f.userId);
      clearTimeout(r.presenceTimer);
      r.presenceTimer = setTimeout(() => this.request("presence", r.name, { type: "presence", room: r.name }), 400);
    }
    if (f.room === this.current) this.view.changed("presence");
  }

  onTyping(f) {
    const r = this.rooms.get(f.room);
    if (!r || f.userId === this.me.userId || typeof f.userId !== "string") return;
    r.typing.set(f.userId, { user: String(f.user), until: Date.now() + TYPING_SHOW_MS });
    if (f.room === this.current) this.view.changed("typing");
  }

  // Messages of the open room holding every word of `q` (the ingest
  // plugin's search, docs/ingest.md): answered by a `search` frame.
  search(q) {
    const words = q.trim();
    if (!words) return;
    this.request("search", this.current, { type: "search", room: this.current, q: words, limit: 50 });
  }

  // A snapshot (after a join, or asked) or an event: positions only move forward.
  onReceipts(f) {
    const r = typeof f.room === "string" ? this.rooms.get(f.room) : null;
    if (!r || !Array.isArray(f.reads)) return;
    this.requests.delete(String(f.ref));
    for (const x of f.reads) {
      if (!x || typeof x.userId !== "string" || !parseId(x.id)) continue;
      const cur = r.reads.get(x.userId);
      if (!cur || compareIds(cur.id, x.id) < 0) r.reads.set(x.userId, { user: String(x.user), id: x.id });
    }
    if (r.name === this.current) this.view.changed("receipts");
  }

  // Who (other than us) has read up to message `id` of room `r`.
  readBy(r, id) {
    const names = [];
    for (const [userId, x] of r.reads) if (userId !== this.me.userId && compareIds(x.id, id) >= 0) names.push(x.user);
    return names.sort((a, b) => a.localeCompare(b));
  }

  typingNames(room) {
    const now = Date.now();
    const names = [];
    for (const [id, t] of room.typing) {
      if (t.until <= now) room.typing.delete(id);
      else names.push(t.user);
    }
    return names;
  }

  onRateLimited(f, quiet = false) {
    const ref = f.ref === undefined ? "" : String(f.ref);
    const wait = Math.max(0, Number(f.retry_after_ms) || 1000);
    const q = this.requests.get(ref);
    const p = this.pending.get(ref);
    if (p) {
      // Sent again by itself once allowed, one after another (not all at
      // the same instant, which would be refused again).
      const now = Date.now();
      p.state = "failed";
      p.error = "rate limited";
      p.retryAt = Math.max(now + wait, this.retryChain + AUTO_RETRY_GAP_MS);
      this.retryChain = p.retryAt;
      clearTimeout(p.timer);
      p.timer = setTimeout(() => {
        if (this.pending.get(ref) === p && p.error === "rate limited") this.retry(ref);
      }, p.retryAt - now);
      this.view.changed("room");
    } else if (q) {
      // resume / join / history / presence: try again when allowed.
      setTimeout(() => {
        if (this.requests.get(ref) === q) this.conn?.send(q.frame);
      }, wait + 50);
    }
    if (!quiet) this.view.rateLimited(wait);
  }

  onError(f) {
    const ref = f.ref === undefined ? "" : String(f.ref);
    if (f.code === "busy" && this.requests.has(ref)) {
      // The same read is still in flight (or the server's read queue is
      // full): ask again a little later, as for rate_limited.
      return this.onRateLimited({ ref: f.ref, retry_after_ms: 500 }, true);
    }
    const q = this.requests.get(ref);
    this.requests.delete(ref);
    const text = typeof f.message === "string" && f.message ? f.message : String(f.code || "error");
    const p = this.pending.get(ref);
    if (p) {
      p.state = "failed";
      p.error = text;
      p.final = FINAL_ERRORS.has(String(f.code));
      if (p.room === this.current) this.view.changed("room");
      return;
    }
    if (q && q.kind === "search") {
      this.view.searchError(f.code === "unhandled" ? "Search is not available on this server." : text);
      return;
    }
    if (q && (q.kind === "edit" || q.kind === "delete" || q.kind === "react")) {
      this.view.notice(text);
      return;
    }
    if (q && (q.kind === "history" || q.kind === "history-older")) {
      const r = this.rooms.get(q.room);
      if (!r) return;
      r.history.loading = false;
      r.history.loaded = true;
      if (f.code === "unhandled") r.history.unavailable = true; // no history plugin on this server
      else r.history.error = text;
      if (q.room === this.current) this.view.changed("history");
      return;
    }
    if (q && q.kind === "resume" && (f.code === "not_member" || f.code === "room_archived")) {
      // Removed or archived while we were away.
      this.drop(q.room);
      this.view.notice(`#${q.room}: ${text}`);
      return;
    }
    if (q && q.kind === "join") {
      this.rooms.delete(q.room);
      if (this.current === q.room) this.current = DEFAULT_ROOM;
      this.saveRooms();
      this.view.changed("all");
      this.view.notice(`Cannot join #${q.room}: ${text}`);
      return;
    }
    if (q && q.kind === "presence") return;
    if (q && q.kind === "rooms") return; // no rooms plugin here (`unhandled`): public rooms only
    if (q && q.kind === "room_leave") return;
    this.view.notice(text);
  }
}

function insertSorted(ids, id) {
  let i = ids.length;
  while (i > 0 && compareIds(ids[i - 1], id) > 0) i -= 1;
  ids.splice(i, 0, id);
}
