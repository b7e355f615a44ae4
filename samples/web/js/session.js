// The login session: register/login against /api/auth/*, the token in
// localStorage (as the seed keeps it), and its claims.
const TOKEN_KEY = "token"; // the seed's key

// The payload of a JWT, or null when it is not one. base64url → JSON.
export function parseJwt(token) {
  try {
    const part = token.split(".")[1];
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === "object" ? claims : null;
  } catch {
    return null;
  }
}

// { token, userId, username, exp (ms) } or null when absent, unreadable or expired.
export function loadSession() {
  const token = localStorage.getItem(TOKEN_KEY);
  if (!token) return null;
  const session = sessionFromToken(token);
  if (!session) {
    localStorage.removeItem(TOKEN_KEY);
    return { expired: true };
  }
  return session;
}

export function sessionFromToken(token) {
  const claims = parseJwt(token);
  if (!claims || typeof claims.username !== "string" || typeof claims.userId !== "string") return null;
  const exp = typeof claims.exp === "number" ? claims.exp * 1000 : Infinity;
  if (exp <= Date.now()) return null;
  return { token, userId: claims.userId, username: claims.username, exp };
}

export function saveToken(token) {
  localStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  localStorage.removeItem(TOKEN_KEY);
}

// The server's own words for a failed request: {"error": "..."} when it sent
// one, else a sentence for the status.
async function failure(res, fallback) {
  let text = "";
  try {
    const body = await res.json();
    if (body && typeof body.error === "string") text = body.error;
  } catch {
    // empty body (the seed's 401) or not JSON
  }
  if (res.status === 429) {
    const retry = Number(res.headers.get("Retry-After"));
    const wait = Number.isFinite(retry) && retry > 0 ? ` Try again in ${formatSeconds(retry)}.` : "";
    return (text || "Too many attempts.") + wait;
  }
  if (text) return text;
  if (res.status >= 500) return `The server is unavailable (${res.status}). Try again shortly.`;
  return fallback;
}

function formatSeconds(s) {
  if (s < 90) return `${Math.ceil(s)} s`;
  return `${Math.ceil(s / 60)} min`;
}

async function post(path, username, password) {
  try {
    return await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username, password }),
    });
  } catch {
    throw new Error("Cannot reach the server.");
  }
}

// Uploads a file (POST /api/uploads: the server sniffs its type and keeps
// it for attaching). Resolves to {id, url, fileType, size, filename};
// throws an Error whose message is for the user.
export async function uploadFile(token, file) {
  let res;
  try {
    res = await fetch(`/api/uploads?name=${encodeURIComponent(file.name || "file")}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": file.type || "application/octet-stream" },
      body: file,
    });
  } catch {
    throw new Error("Cannot reach the server.");
  }
  if (res.status === 413) throw new Error(await failure(res, `${file.name} is too large to upload.`));
  if (!res.ok) throw new Error(await failure(res, `Upload failed (${res.status}).`));
  return await res.json();
}

// An upload's bytes, fetched with the token (an <img> cannot send one):
// resolves to a Blob; throws when the server refuses.
export async function fetchUpload(token, url) {
  const res = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`Cannot load the file (${res.status}).`);
  return await res.blob();
}

// Resolves on success; throws an Error whose message is for the user.
export async function register(username, password) {
  const res = await post("/api/auth/register", username, password);
  if (!res.ok) throw new Error(await failure(res, `Registration failed (${res.status}).`));
}

// Resolves to the token.
export async function login(username, password) {
  const res = await post("/api/auth/login", username, password);
  if (res.status === 401) throw new Error("Wrong username or password.");
  if (!res.ok) throw new Error(await failure(res, `Login failed (${res.status}).`));
  const body = await res.json();
  if (!body || typeof body.token !== "string") throw new Error("The server sent no token.");
  return body.token;
}
