// Runs the record page's checks (assets/verify.js) outside a browser, on the data a real
// record page carries, and on tampered copies of it. Input on stdin: {"record": b64,
// "seq": n, "tree_size": n, "proof": [b64...], "checkpoint": text, "key": verifier key,
// "tenant": the page's tenant, "other_key": another valid verifier key}. Output: one JSON object, each case's verdict.
"use strict";
const path = require("path");
const { verifyInclusion, parseCheckpoint, verifyNote, checkRecord, b64 } = require(path.join(__dirname, "../../assets/verify.js"));

function flip(bytes, at) {
  const copy = Uint8Array.from(bytes);
  copy[at % copy.length] ^= 1;
  return copy;
}

async function main() {
  let input = "";
  for await (const chunk of process.stdin) input += chunk;
  const page = JSON.parse(input);
  const checkpoint = parseCheckpoint(page.checkpoint);
  const record = b64(page.record);
  const proof = page.proof.map(b64);
  const check = (rec, seq, size, prf, root) => verifyInclusion(rec, seq, size, prf, root);
  const out = {
    genuine: await check(record, page.seq, checkpoint.size, proof, checkpoint.root),
    tampered_record: await check(flip(record, 40), page.seq, checkpoint.size, proof, checkpoint.root),
    tampered_proof: proof.length > 0
      ? await check(record, page.seq, checkpoint.size, [flip(proof[0], 3), ...proof.slice(1)], checkpoint.root)
      : false,
    other_seq: await check(record, BigInt(page.seq) + 1n < checkpoint.size ? BigInt(page.seq) + 1n : 0n, checkpoint.size, proof, checkpoint.root),
    other_root: await check(record, page.seq, checkpoint.size, proof, flip(checkpoint.root, 7)),
    short_proof: proof.length > 0
      ? await check(record, page.seq, checkpoint.size, proof.slice(1), checkpoint.root)
      : false,
    size_matches: BigInt(page.tree_size) === checkpoint.size,
    signature: await verifyNote(page.checkpoint, page.key),
  };
  // The page's whole check, as its badge shows it.
  const whole = async (changes) => (await checkRecord({
    record, seq: page.seq, treeSize: page.tree_size, proof, checkpoint: page.checkpoint,
    key: page.key, tenant: page.tenant, pinned: null, ...changes,
  })).verdict;
  // One character of the signature changed (the last before its padding).
  const sigAt = page.checkpoint.lastIndexOf("=") - 2;
  const sigChar = page.checkpoint[sigAt] === "A" ? "B" : "A";
  // The checkpoint's size changed: the proof no longer fits, and the signature no longer
  // covers the text.
  const lines = page.checkpoint.split("\n");
  lines[1] = String(BigInt(lines[1]) + 1n);
  Object.assign(out, {
    page: await whole({}),
    page_pinned: await whole({ pinned: page.key }),
    tampered_signature: await whole({ checkpoint: page.checkpoint.slice(0, sigAt) + sigChar + page.checkpoint.slice(sigAt + 1) }),
    tampered_checkpoint: await whole({ checkpoint: lines.join("\n"), treeSize: lines[1] }),
    other_key: await whole({ key: page.other_key }),
    other_pinned: await whole({ pinned: page.other_key }),
    other_size: await whole({ treeSize: BigInt(page.tree_size) + 1n }),
    other_tenant: await whole({ tenant: `${page.tenant}x` }),
  });
  process.stdout.write(JSON.stringify(out));
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack || err));
  process.exit(1);
});
