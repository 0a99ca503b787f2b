/* A credential as the issuer hands it to the holder ({credential_id, content, salt}):
 * reading it, showing its fields, and its salted hash. Shared by the check page (which has
 * the gateway check it: POST /checks) and the holder wallet (which checks it on the device
 * against the ledger's public record, so the content never leaves the holder's device). */

/** {credential_id, content, salt} from the pasted text (or an already parsed value), or
 * null. Extra members (the issuer's response also carries the public record) are dropped. */
export function parsePresentation(text) {
  let value = text;
  if (typeof text === "string") {
    try {
      value = JSON.parse(text);
    } catch (_) {
      return null;
    }
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) return null;
  const { credential_id: id, content, salt } = value;
  if (typeof id !== "string" || typeof salt !== "string") return null;
  if (typeof content !== "string" && (typeof content !== "object" || content === null)) return null;
  return { credential_id: id, content, salt };
}

export function contentObject(content) {
  if (typeof content !== "string") return content;
  try {
    return JSON.parse(content);
  } catch (_) {
    return null;
  }
}

export function label(name) {
  return name.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
}

export function display(name, value) {
  if (name === "expiry" && typeof value === "number") {
    return new Date(value * 1000).toISOString().slice(0, 10);
  }
  if (Array.isArray(value)) {
    return value.map((item) => (item && typeof item === "object"
      ? Object.values(item).map(String).join(": ") : String(item))).join("; ");
  }
  if (value && typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** The <dt>/<dd> pairs of the content's fields (each <dd> with data-field). */
export function fieldRows(content) {
  const object = contentObject(content);
  const rows = [];
  if (object && typeof object === "object") {
    for (const [name, value] of Object.entries(object)) {
      const dt = document.createElement("dt");
      dt.textContent = label(name);
      const dd = document.createElement("dd");
      dd.textContent = display(name, value);
      dd.dataset.field = name;
      rows.push(dt, dd);
    }
  }
  return rows;
}

/** Lowercase hex SHA-256(salt || content): the ledger's `hash` of a credential
 * (chaincode/protocol/credential_terms.py), with `saltB64` standard base64 and `canonical`
 * the canonical JSON text exactly as issued. WebCrypto's SHA-256. */
export async function saltedHash(saltB64, canonical) {
  const salt = Uint8Array.from(atob(saltB64), (c) => c.charCodeAt(0));
  const text = new TextEncoder().encode(canonical);
  const bytes = new Uint8Array(salt.length + text.length);
  bytes.set(salt);
  bytes.set(text, salt.length);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}
