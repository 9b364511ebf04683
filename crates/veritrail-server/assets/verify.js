// veritrail: checks, in the browser, that a record is in its tenant's log.
//
// A record's proof section (the record page, or the Activity page's drawer) carries the
// record's stored bytes, its seq, an RFC 9162 inclusion proof, the signed checkpoint (a
// C2SP signed note: origin, tree size, base64 root hash, then Ed25519 signature lines) and
// the log's verifier key. This script checks that the checkpoint is of this tenant's log
// (its origin), hashes the record (SHA-256 of 0x00 || bytes), folds the proof up to a
// root, compares it with the root the checkpoint states, and checks the checkpoint's
// signature under the verifier key (WebCrypto Ed25519). When this browser has
// pinned a key (the Integrity page's button), the page's key must be that one. The badge
// says "verified" only if all of this passed here; anything else says "failed" (or "not
// checked" without script, or in a browser without Ed25519). It exports its checks for
// tests outside a browser (Node has the same WebCrypto).

"use strict";

function b64(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

async function sha256(...parts) {
  let length = 0;
  for (const part of parts) length += part.length;
  const joined = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", joined));
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

// The tree size and root hash a checkpoint's body states.
function parseCheckpoint(note) {
  const lines = note.split("\n");
  if (lines.length < 3 || !/^[0-9]+$/.test(lines[1])) throw new Error("not a checkpoint");
  const root = b64(lines[2]);
  if (root.length !== 32) throw new Error("the checkpoint's root is not a SHA-256 hash");
  return { size: BigInt(lines[1]), root };
}

// RFC 9162 section 2.1.3.2: does `proof` prove that the leaf with `leafBytes` is at `index`
// in the tree of `size` leaves whose root is `root`?
async function verifyInclusion(leafBytes, index, size, proof, root) {
  index = BigInt(index);
  size = BigInt(size);
  if (index >= size) return false;
  let fn = index;
  let sn = size - 1n;
  let r = await sha256(new Uint8Array([0]), leafBytes);
  for (const p of proof) {
    if (p.length !== 32 || sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      r = await sha256(new Uint8Array([1]), p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = await sha256(new Uint8Array([1]), r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && equal(r, root);
}

const utf8 = new TextEncoder();

// The big-endian 32-bit number of `bytes`' first four.
function u32be(bytes) {
  return ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0;
}

// A verifier key, `name+keyid+base64(0x01 || Ed25519 public key)` (C2SP signed-note);
// `label` is its `name+keyid`, for people.
function parseVerifierKey(text) {
  // The base64 part may itself hold `+`: the name and the key id end at the first two.
  const match = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/]+=*)$/.exec(text.trim());
  if (!match) throw new Error("not a verifier key");
  const raw = b64(match[3]);
  if (raw.length !== 33 || raw[0] !== 1) throw new Error("not an Ed25519 verifier key");
  return {
    name: match[1], keyId: parseInt(match[2], 16), label: `${match[1]}+${match[2]}`,
    raw, publicKey: raw.slice(1),
  };
}

// Does the signed note `note` carry a valid signature by verifier key `vkey`? The key id
// must be the one its name and public key give (SHA-256(name || \n || 0x01 || key)[:4]),
// and the signature line naming that key must verify over the note's text.
async function verifyNote(note, vkey) {
  const key = parseVerifierKey(vkey);
  const id = await sha256(utf8.encode(`${key.name}\n`), key.raw);
  if (u32be(id) !== key.keyId) return false;
  const split = note.lastIndexOf("\n\n");
  if (split < 0) return false;
  const text = note.slice(0, split + 1);
  let ok = false;
  for (const line of note.slice(split + 2).split("\n")) {
    const match = /^\u2014 (\S+) ([A-Za-z0-9+/]+=*)$/.exec(line);
    if (!match || match[1] !== key.name) continue;
    const sig = b64(match[2]);
    if (sig.length !== 68) continue;
    if (u32be(sig) !== key.keyId) continue;
    const publicKey = await crypto.subtle.importKey("raw", key.publicKey, { name: "Ed25519" }, false, ["verify"]);
    // Every signature by this key must verify, and one must be there.
    if (!(await crypto.subtle.verify({ name: "Ed25519" }, publicKey, sig.slice(4), utf8.encode(text)))) return false;
    ok = true;
  }
  return ok;
}

// The key this browser pinned (the Integrity page), if any.
const PIN = "veritrail.pinned-verifier-key";
function pinnedKey() {
  try {
    return globalThis.localStorage?.getItem(PIN) ?? null;
  } catch (err) {
    return null;
  }
}

// The whole check of one record: its verdict (`verified`, `failed` or `unchecked`) and a
// sentence that says what was checked, or what failed.
async function checkRecord({ record, seq, treeSize, proof, checkpoint, key, tenant, pinned, pinnable = false }) {
  let parsed;
  let vkey;
  try {
    parsed = parseCheckpoint(checkpoint);
    vkey = parseVerifierKey(key);
  } catch (err) {
    return { verdict: "failed", why: "The checkpoint or the log's key cannot be read." };
  }
  // One deployment key signs every tenant's checkpoints; the origin line says whose log
  // this is (`<key name>/<tenant>`), so another tenant's record cannot pass for this one's.
  const origin = checkpoint.split("\n")[0];
  if (origin !== `${vkey.name}/${tenant}`) {
    return { verdict: "failed", why: `The checkpoint is of the log ${origin}, not of tenant ${tenant}'s log.` };
  }
  if (BigInt(treeSize) !== parsed.size) {
    return { verdict: "failed", why: "The proof is for another tree size than the checkpoint's." };
  }
  if (!(await verifyInclusion(record, seq, parsed.size, proof, parsed.root))) {
    return { verdict: "failed", why: "The record and its proof do not lead to the checkpoint's root hash." };
  }
  let signed;
  try {
    signed = await verifyNote(checkpoint, key);
  } catch (err) {
    if (err && err.name === "NotSupportedError") {
      return { verdict: "unchecked", why: "The proof leads to the checkpoint's root, but this browser cannot check Ed25519 signatures, so the checkpoint's signature was not checked." };
    }
    signed = false;
  }
  if (!signed) {
    return { verdict: "failed", why: "The checkpoint's signature does not verify under the log's key." };
  }
  const name = vkey.label;
  if (pinned && pinned.trim() !== key.trim()) {
    return { verdict: "failed", why: `The checkpoint is signed by ${name}, which is not the key this browser pinned.` };
  }
  return {
    verdict: "verified",
    why: `The record's leaf hash, folded with the ${proof.length} proof hashes, gives the root of the checkpoint of ${parsed.size} records of ${origin}, and the checkpoint's signature verifies under ${name}${pinned ? ", the key this browser pinned" : pinnable ? " (pin it on the Integrity page to notice if it ever changes)" : ""}.`,
  };
}

const BADGE = { verified: "verified", failed: "failed", unchecked: "not checked" };

// Checks a record's proof section and sets its badge.
async function checkPage(section) {
  const badge = section.querySelector("[data-badge]");
  const detail = section.querySelector("[data-badge-detail]");
  let result;
  try {
    result = await checkRecord({
      record: b64(section.dataset.record),
      seq: section.dataset.seq,
      treeSize: section.dataset.treeSize,
      proof: JSON.parse(section.dataset.proof).map(b64),
      checkpoint: section.querySelector("[data-checkpoint]").textContent,
      key: section.dataset.key,
      tenant: section.dataset.tenant,
      pinned: pinnedKey(),
      pinnable: section.dataset.pinnable === "true",
    });
  } catch (err) {
    result = { verdict: "failed", why: "The proof data on this page cannot be read." };
  }
  badge.textContent = BADGE[result.verdict];
  badge.className = `badge ${result.verdict}`;
  if (detail) detail.textContent = result.why;
  section.dataset.verified = result.verdict === "verified" ? "true" : "false";
}

// The Integrity page's pin: this browser remembers the log's key, and every later check
// requires it.
function showPin(pin) {
  const key = pin.dataset.key;
  const status = pin.querySelector("[data-pin-status]");
  const button = pin.querySelector("button");
  const pinned = pinnedKey();
  if (!pinned) {
    status.textContent = "This browser has not pinned a key: records are checked against the key the server shows.";
    button.textContent = "Pin this key in this browser";
  } else if (pinned === key) {
    status.textContent = "This browser has pinned this key: a record signed by any other key shows failed.";
    button.textContent = "Forget the pinned key";
  } else {
    status.textContent = `This browser pinned another key (${pinned}): records signed by this one show failed. Pin this one only if you know the log's key changed.`;
    button.textContent = "Pin this key instead";
  }
}

if (typeof document !== "undefined") {
  for (const section of document.querySelectorAll("[data-proof]")) checkPage(section);
  for (const pin of document.querySelectorAll("[data-pin]")) {
    const button = pin.querySelector("button");
    button.hidden = false;
    button.addEventListener("click", () => {
      if (pinnedKey() === pin.dataset.key) localStorage.removeItem(PIN);
      else localStorage.setItem(PIN, pin.dataset.key);
      showPin(pin);
    });
    showPin(pin);
  }
}
if (typeof module !== "undefined") {
  module.exports = { verifyInclusion, parseCheckpoint, verifyNote, checkRecord, b64 };
}
