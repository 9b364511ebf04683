// Runs the record page's inclusion check (assets/verify.js) outside a browser, on the
// data a real record page carries, and on tampered copies of it. Input on stdin:
// {"record": b64, "seq": n, "tree_size": n, "proof": [b64...], "checkpoint": text}.
// Output: one JSON object, each case's verdict.
"use strict";
const path = require("path");
const { verifyInclusion, parseCheckpoint, b64 } = require(path.join(__dirname, "../../assets/verify.js"));

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
  };
  process.stdout.write(JSON.stringify(out));
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack || err));
  process.exit(1);
});
