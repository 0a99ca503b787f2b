/* The holder's keys, made and used on this device only (gateway/web/README.md, "Holder wallet").
 *
 * - The passkey's PRF output (WebAuthn `prf` extension, evaluated by the authenticator with a
 *   fixed salt) is the input of HKDF-SHA256, whose 32-byte output is the passport's master
 *   secret: the SLIP-0010 seed of gateway/holder/keys.py. It is recomputed at every unlock and
 *   kept in memory only; nothing secret is written to storage or sent anywhere.
 * - SLIP-0010 Ed25519 derivation (hardened only) composes WebCrypto's HMAC-SHA512, and the
 *   keys are WebCrypto Ed25519 keys imported non-extractable from their 32-byte seeds (PKCS#8).
 *   Paths and the institution index are the gateway's (gateway/holder/keys.py); the browser
 *   tests compare both derivations on the same seed.
 * - A holder request is signed over DOMAIN || canonical JSON (chaincode/protocol/
 *   holder_requests.py); canonical JSON here is RFC 8785 for the documents MIP signs (object
 *   keys sorted by UTF-16 code units, JSON.stringify's escapes; integers only, no floats).
 * No crypto primitive is written here: HMAC, SHA-256, HKDF and Ed25519 are WebCrypto's. */
"use strict";

(() => {
  const enc = new TextEncoder();
  const subtle = window.crypto.subtle;
  const MIP_PURPOSE = 0x4d4950; // "MIP"
  const PASSPORT_BRANCH = 0;
  const ACCOUNT_BRANCH = 1;
  const HARDENED = 0x80000000;
  const DOMAIN = "MIP-HOLDER-REQUEST-V1\n";
  const CHANNEL = "mipchannel";
  // PKCS#8 wrapping of a raw Ed25519 private key (RFC 8410): a fixed prefix, then the seed.
  const PKCS8_ED25519 = hex("302e020100300506032b657004220420");
  // The PRF input (the browser hashes it again with its own "WebAuthn PRF" context).
  const PRF_SALT = enc.encode("MIP-wallet-prf-v1");
  const HKDF_SALT = enc.encode("MIP-wallet-v1");
  const HKDF_INFO = enc.encode("passport master secret");
  const STORE_INFO = enc.encode("wallet store key"); // wallet_views.js: what the device keeps

  function hex(text) {
    const out = new Uint8Array(text.length / 2);
    for (let i = 0; i < out.length; i += 1) out[i] = parseInt(text.substr(i * 2, 2), 16);
    return out;
  }

  function toHex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function b64(bytes) {
    let s = "";
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s);
  }

  function b64url(bytes) {
    return b64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function unb64url(text) {
    const s = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
    return Uint8Array.from(s, (c) => c.charCodeAt(0));
  }

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  async function sha256(bytes) {
    return new Uint8Array(await subtle.digest("SHA-256", bytes));
  }

  async function hmacSha512(key, data) {
    const k = await subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-512" }, false, ["sign"]);
    return new Uint8Array(await subtle.sign("HMAC", k, data));
  }

  /** The 32-byte master secret from the passkey's PRF output (HKDF-SHA256). */
  async function masterFromPrf(prfOutput) {
    const ikm = await subtle.importKey("raw", prfOutput, "HKDF", false, ["deriveBits"]);
    const bits = await subtle.deriveBits(
      { name: "HKDF", hash: "SHA-256", salt: HKDF_SALT, info: HKDF_INFO }, ikm, 256);
    return new Uint8Array(bits);
  }

  /** SLIP-0010 Ed25519: the private seed at the hardened path `indexes` under `seed`. */
  async function slip10(seed, indexes) {
    let I = await hmacSha512(enc.encode("ed25519 seed"), seed);
    let key = I.slice(0, 32);
    let chain = I.slice(32);
    for (const index of indexes) {
      if (!Number.isInteger(index) || index < 0 || index >= HARDENED) throw new Error("bad index");
      const data = new Uint8Array(37);
      data.set(key, 1); // 0x00 || key || ser32(index + 2^31)
      new DataView(data.buffer).setUint32(33, index + HARDENED);
      I = await hmacSha512(chain, data);
      key = I.slice(0, 32);
      chain = I.slice(32);
    }
    return key;
  }

  /** A WebCrypto Ed25519 key pair from a 32-byte seed: {publicRaw, sign(bytes)}. The signing
   * key is non-extractable; the extractable copy lives only long enough to read the public key. */
  async function keyFromSeed(seed, path) {
    const pkcs8 = concat(PKCS8_ED25519, seed);
    const readable = await subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, true, ["sign"]);
    const jwk = await subtle.exportKey("jwk", readable);
    const signing = await subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, false, ["sign"]);
    pkcs8.fill(0);
    const publicRaw = unb64url(jwk.x);
    return Object.freeze({
      path,
      publicRaw,
      publicB64: b64(publicRaw),
      sign: async (bytes) => new Uint8Array(await subtle.sign({ name: "Ed25519" }, signing, bytes)),
    });
  }

  function pathOf(indexes) {
    return `m/${indexes.map((i) => `${i}'`).join("/")}`;
  }

  async function derive(master, indexes) {
    const seed = await slip10(master, indexes);
    try {
      return await keyFromSeed(seed, pathOf(indexes));
    } finally {
      seed.fill(0);
    }
  }

  /** The 31-bit derivation index of an institution (its MSP id), as gateway/holder/keys.py. */
  async function institutionIndex(mspId) {
    const digest = await sha256(concat(enc.encode("MIP-institution-v1\0"), enc.encode(mspId)));
    return new DataView(digest.buffer).getUint32(0) & 0x7fffffff;
  }

  async function passportKey(master) {
    return derive(master, [MIP_PURPOSE, PASSPORT_BRANCH]);
  }

  async function accountKey(master, mspId, accountIndex) {
    return derive(master, [MIP_PURPOSE, ACCOUNT_BRANCH, await institutionIndex(mspId), accountIndex]);
  }

  /** The contract's passport id: hex sha256 of the passport public key. */
  async function passportId(key) {
    return toHex(await sha256(key.publicRaw));
  }

  /** RFC 8785 canonical JSON of a MIP document (strings, safe integers, booleans, null,
   * arrays, objects). Floats are refused, as chaincode/protocol/canonical.py refuses them. */
  function canonical(value) {
    if (value === null || typeof value === "boolean" || typeof value === "string") {
      return JSON.stringify(value);
    }
    if (typeof value === "number") {
      if (!Number.isSafeInteger(value)) throw new Error("only safe integers can be signed");
      return String(value);
    }
    if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
    if (typeof value === "object") {
      const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
    }
    throw new Error(`cannot sign a ${typeof value}`);
  }

  /** The AES-256-GCM key (non-extractable) that seals what the wallet keeps on this device
   * (credentials with their salts, the passport's device link): HKDF-SHA256 of the master
   * secret with its own info, so it is re-made at each unlock and never stored. */
  async function storeKey(master) {
    const ikm = await subtle.importKey("raw", master, "HKDF", false, ["deriveKey"]);
    return subtle.deriveKey({ name: "HKDF", hash: "SHA-256", salt: HKDF_SALT, info: STORE_INFO },
                            ikm, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  }

  function randomHex(bytes) {
    return toHex(crypto.getRandomValues(new Uint8Array(bytes)));
  }

  /** A signed holder request {action, body, nonce, expires, channel, signer, signature}.
   * `expires` is only how long the signature may be carried (the contract caps it at 600 s
   * and checks it against the transaction's time, not this device's clock); `expires`, when
   * given, is a deadline someone else set (a guardian rotation's) and replaces it. */
  async function signRequest(key, action, body, ttl = 300, expires = null) {
    const envelope = {
      action,
      body,
      nonce: randomHex(16),
      expires: expires === null ? Math.floor(Date.now() / 1000) + ttl : expires,
      channel: CHANNEL,
      signer: key.publicB64,
    };
    const payload = concat(enc.encode(DOMAIN), enc.encode(canonical(envelope)));
    return { ...envelope, signature: b64(await key.sign(payload)) };
  }

  window.MipWalletKeys = Object.freeze({
    PRF_SALT, masterFromPrf, slip10, keyFromSeed, passportKey, accountKey, passportId,
    institutionIndex, canonical, signRequest, b64url, unb64url, toHex, hex, randomHex,
    storeKey, b64,
  });
})();
