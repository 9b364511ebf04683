// veritrail: checks, in the browser, that a record is in its tenant's log.
//
// The record page carries the record's stored bytes, its seq, an RFC 9162 inclusion proof
// and the signed checkpoint (a C2SP signed note: origin, tree size, base64 root hash). This
// script hashes the record (SHA-256 of 0x00 || bytes), folds the proof up to a root, and
// compares it with the root the checkpoint states. The badge says "verified" only if this
// very check passed here; anything else says "failed" (or "not checked" without script).
// It exports `verifyInclusion` for tests outside a browser (Node has the same WebCrypto).

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

// Checks the proof section of a record page and sets its badge.
async function checkPage(section) {
  const badge = section.querySelector("[data-badge]");
  let ok = false;
  try {
    const checkpoint = parseCheckpoint(section.querySelector("[data-checkpoint]").textContent);
    const proof = JSON.parse(section.dataset.proof).map(b64);
    ok = BigInt(section.dataset.treeSize) === checkpoint.size &&
      await verifyInclusion(b64(section.dataset.record), section.dataset.seq, checkpoint.size, proof, checkpoint.root);
  } catch (err) {
    ok = false;
  }
  badge.textContent = ok ? "verified" : "failed";
  badge.className = ok ? "badge verified" : "badge failed";
  section.dataset.verified = ok ? "true" : "false";
}

if (typeof document !== "undefined") {
  for (const section of document.querySelectorAll("[data-proof]")) checkPage(section);
}
if (typeof module !== "undefined") {
  module.exports = { verifyInclusion, parseCheckpoint, b64 };
}
