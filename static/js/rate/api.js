// Thin client for the annotator API under /api/v1/rate/<campaign>/.
// Session auth like every page: the page view set the csrftoken cookie (ensure_csrf_cookie),
// which every unsafe request echoes in X-CSRFToken.

/** Thrown when the request never got an HTTP answer (offline, DNS, server down). */
export class NetworkError extends Error {}

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export class RateApi {
  /** @param {string} base e.g. "/api/v1/rate/7/" */
  constructor(base) {
    this.base = base;
  }

  /** Returns {status, data}; throws NetworkError only when there was no response at all. */
  async request(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
    let response;
    try {
      response = await fetch(this.base + path, {
        method,
        headers,
        credentials: "same-origin",
        cache: "no-store",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      throw new NetworkError(error.message || "network error");
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null; // an HTML error page from a proxy: the status says enough
    }
    return { status: response.status, data };
  }

  campaign() { return this.request("GET", ""); }
  leases() { return this.request("GET", "leases/"); }
  next(exclude) { return this.request("POST", "next/", { exclude }); }
  /** Send a vote (`answers` for a pair, `rankings` for best of K); with `nextExclude`, the
   * answer also leases the next task (`data.next`). */
  vote(record, nextExclude) {
    const { client_id, lease, answers, rankings, latency_ms } = record;
    const body = { client_id, lease, answers: answers || {}, latency_ms };
    if (rankings) body.rankings = rankings;
    if (nextExclude) body.next = { exclude: nextExclude };
    return this.request("POST", "votes/", body);
  }
  undo(clientId) { return this.request("POST", "votes/undo/", { client_id: clientId }); }
  skip(lease) { return this.request("POST", `leases/${lease}/skip/`, {}); }
  report(lease, side, note) {
    return this.request("POST", `leases/${lease}/report/`, { side, note });
  }
}
