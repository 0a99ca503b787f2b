/* The gateway API call shared by every staff page (counter, enrolment and issuer desks,
 * check page): same origin only, no cookies, no cache, no Referer. */

const API = "/api/v1";

/** fetch to the gateway: {ok, status, code, message, data}. With a staff session
 * (staff.js), sends its token, and signs out on the gateway's own "unauthenticated".
 * Ids that are credentials go in extraHeaders, never in the path (history, Referer). */
export async function api(method, path, body, session, extraHeaders) {
  // extraHeaders: a session id the route needs (X-MIP-Enrolment-Session), never in the path
  const headers = { Accept: "application/json", ...(extraHeaders || {}) };
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
  // Only the gateway's own "unauthenticated" means the token is bad; a 401 from the
  // ledger (e.g. a bad signature on an attestation) is an error to show, not a sign-out.
  if (session && code === "unauthenticated" && session.onSignOut) {
    session.onSignOut("Your sign-in was not accepted. Sign in again.");
  }
  return { ok: false, status: response.status, code, message, data };
}
