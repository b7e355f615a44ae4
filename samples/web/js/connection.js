// One WebSocket to the host, kept open: `new WebSocket(url, "Bearer." + token)`
// as the seed does, reconnecting with exponential backoff and jitter.
//
// A refused handshake (HTTP 401: bad or expired token) looks to a browser
// exactly like a server that is down: an error, then close code 1006, never
// an open. So after a few failures in a row that never opened, the
// connection asks GET /health: if the server answers, it is up and refusing
// us, and `onRejected` sends the user back to login.

const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 15000;
const STABLE_MS = 3000; // open this long before the backoff starts over
const FAILURES_BEFORE_PROBE = 3;

export class Connection {
  // handlers: onOpen(), onFrame(obj), onState({state, detail, retryAt}), onRejected(reason)
  constructor(url, token, handlers) {
    this.url = url;
    this.token = token;
    this.h = handlers;
    this.ws = null;
    this.attempt = 0;
    this.failedOpens = 0;
    this.timer = null;
    this.stopped = false;
    this.onOnline = () => this.retryNow();
    window.addEventListener("online", this.onOnline);
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    window.removeEventListener("online", this.onOnline);
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close(1000, "bye");
      this.ws = null;
    }
  }

  get connected() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  // Sends one JSON frame; false when not connected (the caller keeps it).
  send(frame) {
    if (!this.connected) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  retryNow() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.timer);
    this.open();
  }

  open() {
    this.timer = null;
    this.h.onState({ state: "connecting", detail: this.attempt ? `attempt ${this.attempt + 1}` : "" });
    let ws;
    try {
      ws = new WebSocket(this.url, "Bearer." + this.token);
    } catch (e) {
      this.h.onRejected(`cannot open a WebSocket: ${e.message}`);
      return;
    }
    this.ws = ws;
    let openedAt = 0;
    ws.onopen = () => {
      openedAt = Date.now();
      this.failedOpens = 0;
      this.h.onState({ state: "connected", detail: "" });
      this.h.onOpen();
    };
    ws.onmessage = (e) => {
      let frame;
      try {
        frame = JSON.parse(e.data);
      } catch {
        return; // not ours to show
      }
      if (frame && typeof frame === "object") this.h.onFrame(frame);
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      if (openedAt && Date.now() - openedAt >= STABLE_MS) this.attempt = 0;
      if (!openedAt) this.failedOpens += 1;
      const reason = e.reason ? `${e.reason} (${e.code})` : e.code === 1006 ? "" : `closed (${e.code})`;
      this.afterFailure(reason);
    };
  }

  async afterFailure(reason) {
    if (this.failedOpens >= FAILURES_BEFORE_PROBE && this.failedOpens % FAILURES_BEFORE_PROBE === 0) {
      if (await serverIsUp()) {
        this.h.onRejected("the server refused the session");
        return;
      }
    }
    if (this.stopped) return;
    const cap = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** this.attempt);
    const delay = Math.round(cap / 2 + Math.random() * (cap / 2)); // "equal jitter"
    this.attempt += 1;
    this.h.onState({ state: "waiting", detail: reason, retryAt: Date.now() + delay });
    this.timer = setTimeout(() => this.open(), delay);
  }
}

async function serverIsUp() {
  try {
    const res = await fetch("/health", { cache: "no-store" });
    return res.ok;
  } catch {
    return false;
  }
}

export function defaultUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}
