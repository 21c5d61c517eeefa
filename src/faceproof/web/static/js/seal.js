// Encrypts an upload to the session's own P-256 key before it leaves the page: a compact JWE
// (RFC 7516) with alg ECDH-ES (Concat KDF, RFC 7518 §4.6) and enc A256GCM, plus `cty` (the
// media type) and `fp_use` (the capture step) in the protected header. Only the engine can open
// it, whatever proxies sit between the page and the engine. See privacy/upload_crypto.py.

const encoder = new TextEncoder();

function b64url(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function u32(n) {
  return new Uint8Array([(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
}

function concat(...arrays) {
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) { out.set(a, at); at += a.length; }
  return out;
}

/** True when this browser can encrypt (WebCrypto needs a secure context: HTTPS or localhost). */
export function canSeal() {
  return Boolean(globalThis.crypto && crypto.subtle);
}

/** The blob encrypted to `jwk` (the session's public key) for the capture step `use`. */
export async function seal(blob, jwk, use) {
  const subtle = crypto.subtle;
  const curve = { name: "ECDH", namedCurve: "P-256" };
  const recipient = await subtle.importKey("jwk", { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y }, curve, false, []);
  const ephemeral = await subtle.generateKey(curve, true, ["deriveBits"]);
  const shared = new Uint8Array(await subtle.deriveBits({ name: "ECDH", public: recipient }, ephemeral.privateKey, 256));
  const enc = encoder.encode("A256GCM");
  const otherInfo = concat(u32(enc.length), enc, u32(0), u32(0), u32(256));
  const cek = await subtle.digest("SHA-256", concat(u32(1), shared, otherInfo));
  const key = await subtle.importKey("raw", cek, "AES-GCM", false, ["encrypt"]);
  const epk = await subtle.exportKey("jwk", ephemeral.publicKey);
  const header = { alg: "ECDH-ES", enc: "A256GCM", epk: { kty: "EC", crv: "P-256", x: epk.x, y: epk.y }, cty: blob.type, fp_use: use };
  const protectedHeader = b64url(encoder.encode(JSON.stringify(header)));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const plaintext = new Uint8Array(await blob.arrayBuffer());
  const sealed = new Uint8Array(
    await subtle.encrypt({ name: "AES-GCM", iv, additionalData: encoder.encode(protectedHeader), tagLength: 128 }, key, plaintext),
  );
  const ciphertext = sealed.subarray(0, sealed.length - 16);
  const tag = sealed.subarray(sealed.length - 16);
  const compact = [protectedHeader, "", b64url(iv), b64url(ciphertext), b64url(tag)].join(".");
  return new Blob([compact], { type: "application/jose" });
}
