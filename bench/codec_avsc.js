// The peer of bench_codec's compiled-program cases (8-10): Node's avsc on the
// same record. Run by bench/codec_vs_avsc.sh, which installs avsc.
// usage: node codec_avsc.js SCHEMA.avsc BODY.avro decode|encode|resolve SECONDS
// Prints "records/s N". Before timing, checks that avsc reads the body and
// writes it back byte for byte, and that the resolver fills the v2 field.
'use strict';
const fs = require('fs');
const avsc = require('avsc');

const [schemaFile, bodyFile, mode, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg);
if (!['decode', 'encode', 'resolve'].includes(mode) || !(seconds >= 0)) {
  console.error('usage: node codec_avsc.js SCHEMA.avsc BODY.avro decode|encode|resolve SECONDS');
  process.exit(2);
}
const schema = JSON.parse(fs.readFileSync(schemaFile, 'utf8'));
const body = fs.readFileSync(bodyFile);
const type = avsc.Type.forSchema(schema);
const value = type.fromBuffer(body);
if (!type.toBuffer(value).equals(body)) {
  console.error('codec_avsc: avsc does not write the body back byte for byte');
  process.exit(1);
}

// The reader one version ahead, as bench_codec builds it (V2_FIELD).
const v2Schema = JSON.parse(JSON.stringify(schema));
v2Schema.fields.push({name: 'language', type: 'string', default: 'sv'});
const v2Type = avsc.Type.forSchema(v2Schema);
const resolver = v2Type.createResolver(type);
if (v2Type.fromBuffer(body, resolver).language !== 'sv') {
  console.error('codec_avsc: the resolver does not fill language');
  process.exit(1);
}

const ops = {
  decode: () => type.fromBuffer(body),
  encode: () => type.toBuffer(value),
  resolve: () => v2Type.fromBuffer(body, resolver),
};
const op = ops[mode];
const BATCH = 32; // operations between clock reads, as bench_codec

function runFor(ns) {
  let done = 0;
  let sink = 0;
  const start = process.hrtime.bigint();
  let now;
  do {
    for (let i = 0; i < BATCH; i++) sink ^= op() ? 1 : 0;
    done += BATCH;
    now = process.hrtime.bigint();
  } while (now - start < ns);
  return {done, ns: Number(now - start), sink};
}

const budget = BigInt(Math.round(seconds * 1e9));
const warmup = budget / 10n < 250000000n ? budget / 10n : 250000000n;
runFor(warmup);
const r = runFor(budget);
console.log(`records/s ${(r.done * 1e9 / r.ns).toFixed(0)}`);
