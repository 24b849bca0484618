// The local API client (docs/local-api.md). Paths are relative to the page,
// so the playground also works behind a proxy that serves the API under a
// prefix. Every call sends the API token kept in localStorage; a 401 asks
// for it (askToken) and tries again.

const TOKEN_KEY = "wan22.token";

export class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function storedToken() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

export function storeToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

// client returns the API's calls. askToken(reason) resolves to a token, or
// to null when the user declines.
export function client(askToken) {
  async function call(method, path, body, ask = true) {
    for (let attempt = 0; ; attempt++) {
      const headers = {};
      const token = storedToken();
      if (token) headers.Authorization = "Bearer " + token;
      if (body !== undefined) headers["Content-Type"] = "application/json";
      let resp;
      try {
        resp = await fetch(path, { method, headers, body, cache: "no-store" });
      } catch (e) {
        throw new APIError(0, "the server did not answer (" + e.message + "); is serve --api still running?");
      }
      if (resp.status === 401 && ask && attempt < 3) {
        const t = await askToken(token ? "The server refused this token; enter its API_TOKEN again." : "");
        if (!t) throw new APIError(401, "the server needs its API token (API_TOKEN); use the API token button");
        storeToken(t);
        continue;
      }
      let data = null;
      try {
        data = await resp.json();
      } catch {
        // not JSON: reported below by status
      }
      if (!resp.ok) {
        throw new APIError(resp.status, (data && data.error) || "HTTP " + resp.status + " " + resp.statusText);
      }
      return data;
    }
  }
  const job = (route, id) => route + "/" + encodeURIComponent(id);
  return {
    run: (body) => call("POST", "run", body),
    stream: (id) => call("GET", job("stream", id)),
    status: (id) => call("GET", job("status", id)),
    // statusQuiet is status without asking for the token (on page load).
    statusQuiet: (id) => call("GET", job("status", id), undefined, false),
    cancel: (id) => call("POST", job("cancel", id)),
  };
}
