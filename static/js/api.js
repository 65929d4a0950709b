// The API over fetch: JSON in and out, errors as ApiError.

export class ApiError extends Error {
  constructor(status, body) {
    const error = body && body.error ? body.error : {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code;
    this.field = error.field;
    this.lost = error.lost;
    this.now = error.now;
  }
}

let unauthorized = () => {};
/** What to do when the server no longer accepts this browser (show the sign-in form). */
export function onUnauthorized(f) { unauthorized = f; }

export async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (res.status === 401 && !path.startsWith("/api/session")) unauthorized();
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}
