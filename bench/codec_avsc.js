// The Node peer of bench_codec: avsc on the same record. Run by
// bench/codec_vs_avsc.sh, which installs avsc.
// usage: node codec_avsc.js SCHEMA.avsc BODY.avro DOCUMENT.json MODE SECONDS
//   MODE decode, encode, resolve: the compiled-program cases (8-10);
//   MODE json: the JSON intake (cases 1 and 1s): JSON.parse, isValid and
//   toBuffer, with RFC 3339 timestamps read by Date.parse (a logical type).
// Prints "records/s N". Before timing, checks that avsc reads the body and
// writes it back byte for byte, that the resolver fills the v2 field and
// that the document encodes to the body.
'use strict';
const fs = require('fs');
const avsc = require('avsc');
const Rfc3339 = require('./avsc_rfc3339');

const [schemaFile, bodyFile, documentFile, mode, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg);
if (!['decode', 'encode', 'resolve', 'json'].includes(mode) || !(seconds >= 0)) {
  console.error('usage: node codec_avsc.js SCHEMA.avsc BODY.avro DOCUMENT.json ' +
                'decode|encode|resolve|json SECONDS');
  process.exit(2);
}


const schema = JSON.parse(fs.readFileSync(schemaFile, 'utf8'));
const body = fs.readFileSync(bodyFile);
const documentText = fs.readFileSync(documentFile, 'utf8');
const type = avsc.Type.forSchema(schema);
const value = type.fromBuffer(body);
if (!type.toBuffer(value).equals(body)) {
  console.error('codec_avsc: avsc does not write the body back byte for byte');
  process.exit(1);
}
const jsonType = avsc.Type.forSchema(schema, {logicalTypes: {'timestamp-millis': Rfc3339}});
if (!jsonType.toBuffer(JSON.parse(documentText)).equals(body)) {
  console.error('codec_avsc: the document does not encode to the body');
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

function fromJson() {
  const doc = JSON.parse(documentText);
  if (!jsonType.isValid(doc)) throw new Error('codec_avsc: the document is not valid');
  return jsonType.toBuffer(doc);
}

const ops = {
  decode: () => type.fromBuffer(body),
  encode: () => type.toBuffer(value),
  resolve: () => v2Type.fromBuffer(body, resolver),
  json: fromJson,
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
