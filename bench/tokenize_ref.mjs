// tokenize_ref.mjs - the reference side of bench/tokenize.sh: encodes the same documents with
// @huggingface/tokenizers (and gpt-3-encoder for GPT-2), two passes, and prints MB/s.
// Also writes the documents file (NUL-separated) when asked: node tokenize_ref.mjs --docs OUT
import fs from 'node:fs';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';

const ref = process.env.TOKREF;
const args = process.argv.slice(2);
const data = args[1];
if (args[0] === '--docs') {
  const lines = zlib.gunzipSync(fs.readFileSync(`${data}/gpt2_ref.jsonl.gz`)).toString('utf8').split('\n');
  const docs = lines.filter((l) => l).map((l) => JSON.parse(l).text);
  fs.writeFileSync(args[2], docs.join('\0'));
  process.exit(0);
}
const { Tokenizer } = await import(`${ref}/node_modules/@huggingface/tokenizers/dist/tokenizers.mjs`);
const docs = fs.readFileSync(args[2], 'utf8').split('\0');
const bytes = docs.reduce((a, d) => a + Buffer.byteLength(d), 0);
function run(name, encode) {
  for (let pass = 1; pass <= 2; pass++) {
    let tokens = 0;
    const t0 = process.hrtime.bigint();
    for (const d of docs) tokens += encode(d).length;
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(`${name.padEnd(28)} pass ${pass}: ${(bytes / s / 1e6).toFixed(2).padStart(8)} MB/s  ${bytes} bytes, ${tokens} tokens, ${s.toFixed(3)} s`);
  }
}
for (const m of args[0].split(',')) {
  let json = m === 'gpt2'
    ? JSON.parse(zlib.gunzipSync(fs.readFileSync(`${data}/gpt2/tokenizer.json.gz`)))
    : JSON.parse(fs.readFileSync(`${data}/${m}/tokenizer.json`));
  const tk = new Tokenizer(json, {});
  run(`tokenizers.js ${m}`, (d) => tk.encode(d, { add_special_tokens: false }).ids);
  if (m === 'gpt2') {
    const require = createRequire(`${ref}/package.json`);
    const g = require('gpt-3-encoder');
    run('gpt-3-encoder gpt2', (d) => g.encode(d));
  }
}
