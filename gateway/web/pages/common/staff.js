/* Staff sign-in, the same on the counter, the enrolment desk and the issuer desk: the
 * token is kept in sessionStorage only (gone when the tab closes, never in localStorage or
 * a cookie), under the page's own key. A kiosk link's #token= is moved into sessionStorage
 * and erased from the address bar and history at once (a fragment is never sent to a
 * server); a ?token= query is refused with a notice, since by the time the page runs the
 * server has already seen, and may have logged, it. */

import { byId } from "./dom.js";

const QUERY_TOKEN_NOTICE = "A token in the address (?token=) is not accepted because servers "
  + "log it. Sign in below, or use #token= for kiosk setup, and have the token replaced.";

/** The token under `key`; `onSignOut(message)` is what api.js calls on "unauthenticated". */
export function staffSession(key, onSignOut) {
  return {
    token: () => sessionStorage.getItem(key),
    set: (value) => sessionStorage.setItem(key, value),
    clear: () => sessionStorage.removeItem(key),
    onSignOut,
    /** Takes #token= from the address and refuses ?token=; returns a notice to show, or "". */
    takeFromUrl() {
      const url = new URL(window.location.href);
      const fragment = new URLSearchParams(url.hash.replace(/^#/, ""));
      const fromFragment = fragment.get("token");
      let notice = "";
      if (url.searchParams.has("token")) {
        url.searchParams.delete("token");
        notice = QUERY_TOKEN_NOTICE;
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
}

/** Wires the page's sign-in card (#signin-form, #token), the top bar (#staff-status,
 * #sign-out) and the setup notice (#notice). `page.signedIn()` and `page.signedOut()` show
 * the page's own sections; `start()` signs in from the address or sessionStorage, or shows
 * the sign-in card. */
export function staffSignIn(key, page) {
  const ui = {
    notice: byId("notice"),
    staffStatus: byId("staff-status"),
    signOut: byId("sign-out"),
    signinForm: byId("signin-form"),
    token: byId("token"),
  };
  const session = staffSession(key, signOut);

  function showNotice(text) {
    ui.notice.textContent = text;
    ui.notice.hidden = !text;
  }

  function signOut(message) {
    session.clear();
    page.signedOut();
    ui.staffStatus.textContent = "Not signed in";
    ui.signOut.hidden = true;
    if (message) showNotice(message);
    ui.token.value = "";
    ui.token.focus();
  }

  function signedIn() {
    ui.staffStatus.textContent = "Signed in";
    ui.signOut.hidden = false;
    page.signedIn();
  }

  /** Moves #token= into the session; a refused ?token= leaves a notice. */
  function takeFromUrl() {
    const notice = session.takeFromUrl();
    if (notice) showNotice(notice);
  }

  ui.signinForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = ui.token.value.trim();
    if (!value) return;
    session.set(value);
    ui.token.value = "";
    showNotice("");
    signedIn();
  });
  ui.signOut.addEventListener("click", () => signOut(""));

  return {
    session,
    signOut,
    signedIn,
    takeFromUrl,
    start() {
      takeFromUrl();
      if (session.token()) signedIn();
      else signOut("");
    },
  };
}
