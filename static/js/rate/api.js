// Thin client for the annotator API under /api/v1/rate/<campaign>/.
// Session auth: the page view set the csrftoken cookie (ensure_csrf_cookie), which every
// unsafe request echoes in X-CSRFToken. The two hot requests, next/ and votes/, carry the
// page's rating token instead ("Authorization: Rating ..."), which the server checks without
// loading the session (evalhub/campaigns/rating_tokens.py). The token lives half an hour: a
// 401 for it fetches a fresh one through the session and sends the request again; if that
// fails too, the request goes out with the session, whose answer the caller handles as before.

/** Thrown when the request never got an HTTP answer (offline, DNS, server down). */
export class NetworkError extends Error {}

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export class RateApi {
  /**
   * @param {string} base e.g. "/api/v1/rate/7/"
   * @param {string|null} ratingToken the page's rating token, or null to use the session only
   */
  constructor(base, ratingToken = null) {
    this.base = base;
    this.ratingToken = ratingToken;
    this.refreshing = null; // one token refresh at a time, shared by concurrent requests
  }

  /** Returns {status, data}; throws NetworkError only when there was no response at all. */
  async request(method, path, body, ratingToken = null) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (ratingToken) headers.Authorization = `Rating ${ratingToken}`;
    else if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
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

  /** A POST to next/ or votes/: with the rating token while it works, else the session. */
  async hot(path, body) {
    for (let attempt = 0; attempt < 2 && this.ratingToken; attempt++) {
      const used = this.ratingToken;
      const answer = await this.request("POST", path, body, used);
      if (answer.status !== 401) return answer;
      await this.refreshToken(used);
    }
    return this.request("POST", path, body);
  }

  /** Replace an expired token (null when the session cannot get one: signed out). */
  refreshToken(expired) {
    if (this.ratingToken !== expired) return Promise.resolve(); // another request did it
    if (!this.refreshing) {
      this.refreshing = this.request("POST", "rating-token/", {})
        .then(({ status, data }) => {
          if (status === 201 && data && data.token) this.ratingToken = data.token;
          // Signed out or no longer a member: the session answers from now on. (A server
          // error keeps the old token, so the next request tries to renew it again.)
          else if (status < 500) this.ratingToken = null;
        })
        .catch(() => { /* offline: the session request after this one says so */ })
        .finally(() => { this.refreshing = null; });
    }
    return this.refreshing;
  }

  campaign() { return this.request("GET", ""); }
  leases() { return this.request("GET", "leases/"); }
  next(exclude) { return this.hot("next/", { exclude }); }
  /** Send a vote; with `nextExclude`, the answer also leases the next task (`data.next`). */
  vote(record, nextExclude) {
    const { client_id, lease, answers, latency_ms } = record;
    const body = { client_id, lease, answers, latency_ms };
    if (nextExclude) body.next = { exclude: nextExclude };
    return this.hot("votes/", body);
  }
  undo(clientId) { return this.request("POST", "votes/undo/", { client_id: clientId }); }
  skip(lease) { return this.request("POST", `leases/${lease}/skip/`, {}); }
  report(lease, side, note) {
    return this.request("POST", `leases/${lease}/report/`, { side, note });
  }
}
