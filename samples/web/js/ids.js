// Stream ids ("<ms>-<seq>", Redis stream entry ids) and request refs.

export function parseId(id) {
  const m = /^(\d+)-(\d+)$/.exec(id || "");
  return m ? [Number(m[1]), Number(m[2])] : null;
}

export function compareIds(a, b) {
  const x = parseId(a);
  const y = parseId(b);
  return x[0] - y[0] || x[1] - y[1];
}

export function maxId(a, b) {
  if (!parseId(a)) return parseId(b) ? b : null;
  if (!parseId(b)) return a;
  return compareIds(a, b) >= 0 ? a : b;
}

// Milliseconds of an id: the time Redis stored the message.
export function idTime(id) {
  const p = parseId(id);
  return p ? p[0] : 0;
}

// Refs must be unique per user across tabs and reloads: the server drops a
// ref it saw in the last few minutes as a retry. Random prefix + counter.
const prefix = Array.from(crypto.getRandomValues(new Uint8Array(6)), (b) => b.toString(16).padStart(2, "0")).join("");
let counter = 0;
export function newRef() {
  counter += 1;
  return `${prefix}-${counter}`;
}

export const ROOM_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
