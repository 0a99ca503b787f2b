/* Shared by the desk pages (check, issuer): the gateway API call, staff sign-in kept in
 * sessionStorage only (as at the counter, with the same #token= kiosk link and refusal of
 * ?token=), and typed errors shown as the gateway sends them (code and message).
 * Plain script, no build step, no network access beyond the gateway. */
"use strict";

(() => {
  const API = "/api/v1";

  function byId(id) {
    const el = document.getElementById(id);
    if (!el) throw new Error(`missing element #${id}`);
    return el;
  }

  /** Staff sign-in for one page: its own sessionStorage key, gone when the tab closes. */
  function staffSession(key, onSignOut) {
    const session = {
      token: () => sessionStorage.getItem(key),
      set: (value) => sessionStorage.setItem(key, value),
      clear: () => sessionStorage.removeItem(key),
      onSignOut,
      /** Moves #token= into sessionStorage and erases it from the address bar and history;
       * refuses ?token= (the server has already seen, and may have logged, it). Returns a
       * notice to show, or "". */
      takeFromUrl() {
        const url = new URL(window.location.href);
        const fragment = new URLSearchParams(url.hash.replace(/^#/, ""));
        const fromFragment = fragment.get("token");
        let notice = "";
        if (url.searchParams.has("token")) {
          url.searchParams.delete("token");
          notice = "A token in the address (?token=) is not accepted because servers log it. "
            + "Sign in below, or use #token= for kiosk setup, and have the token replaced.";
        }
        if (fromFragment) {
          sessionStorage.setItem(key, fromFragment);
          fragment.delete("token");
          const rest = fragment.toString();
          url.hash = rest ? `#${rest}` : "";
        }
        if (fromFragment || url.href !== window.location.href) {
          window.history.replaceState(null, "", url.pathname + url.search + url.hash);
        }
        return notice;
      },
    };
    return session;
  }

  /** fetch to the gateway: {ok, status, code, message, data}. With a session, sends its
   * token, and signs out on the gateway's own "unauthenticated". */
  async function api(method, path, body, session) {
    const headers = { Accept: "application/json" };
    if (session) headers.Authorization = `Bearer ${session.token() || ""}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(API + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
        referrerPolicy: "no-referrer",
      });
    } catch (_) {
      return { ok: false, status: 0, code: "network", message: "", data: null };
    }
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (response.ok) return { ok: true, status: response.status, code: null, message: "", data };
    const error = data && data.error ? data.error : {};
    const code = typeof error.code === "string" ? error.code : `http_${response.status}`;
    const message = typeof error.message === "string" ? error.message : "";
    if (session && code === "unauthenticated" && session.onSignOut) {
      session.onSignOut("Your sign-in was not accepted. Sign in again.");
    }
    return { ok: false, status: response.status, code, message, data };
  }

  /** Fills `box` with a typed error: the page's sentence for the code, then the gateway's
   * own code and message (so staff can quote them). */
  function showError(box, r, sentences) {
    const sentence = (sentences && sentences[r.code]) || COMMON[r.code] || "The request was refused.";
    const detail = document.createElement("code");
    detail.textContent = r.message ? `${r.code}: ${r.message}` : r.code;
    const lead = document.createElement("span");
    lead.textContent = `${sentence} `;
    box.replaceChildren(lead, detail);
    box.dataset.code = r.code;
    box.hidden = false;
  }

  function clearError(box) {
    box.replaceChildren();
    delete box.dataset.code;
    box.hidden = true;
  }

  const COMMON = {
    unauthenticated: "Your sign-in was not accepted. Sign in again.",
    forbidden: "Your account may not do this here.",
    wrong_role: "Your role may not do this.",
    wrong_org: "Your organisation may not do this.",
    ledger_refused: "The ledger refused this.",
    invalid_request: "The request was not accepted: check the fields.",
    not_found: "Nothing with this ID was found on the ledger.",
    precondition_failed: "The ledger refused this in the record's current state.",
    access_denied: "The ledger refused this for your organisation.",
    ledger_unavailable: "The ledger is not reachable. Try again in a moment.",
    internal_error: "The gateway failed. Try again.",
    network: "The gateway cannot be reached. Check the connection.",
  };

  window.MipDesk = Object.freeze({ byId, staffSession, api, showError, clearError });
})();
