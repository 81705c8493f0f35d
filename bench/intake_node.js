// The Node peer of `avvik report` (bench/intake_vs_kcat.sh): the same NDJSON
// file read, each line JSON.parse'd, checked with avsc's isValid, written with
// toBuffer behind the same single-object framing (c3 01 and the schema's
// fingerprint, taken from a record avvik wrote), and sent keyed by its
// deviation_id, with avvik's one header (avk-id: the deviation id), through
// kafkajs's idempotent producer (acks=all), every send awaited before it
// exits. Prints "sent N" and the count of invalid lines.
// usage: node intake_node.js BROKERS TOPIC SCHEMA.avsc HEADER_HEX FILE.ndjson
'use strict';
const fs = require('fs');
const readline = require('readline');
const avsc = require('avsc');
const Rfc3339 = require('./avsc_rfc3339');
const {Kafka, logLevel} = require('kafkajs');
const Cluster = require('kafkajs/src/cluster');

// kafkajs sends an idempotent producer's InitProducerId to the controller;
// the embedded broker names controller 0, which no broker has. Real Kafka
// takes InitProducerId without a transactional id on any broker: there, the
// first broker of the metadata.
const findController = Cluster.prototype.findControllerBroker;
Cluster.prototype.findControllerBroker = async function anyBroker() {
  try {
    return await findController.call(this);
  } catch (e) {
    if (e.name !== 'KafkaJSBrokerNotFound') throw e;
    return this.findBroker({nodeId: this.brokerPool.metadata.brokers[0].nodeId});
  }
};

const [brokers, topic, schemaFile, headerHex, file] = process.argv.slice(2);
if (!file) {
  console.error('usage: node intake_node.js BROKERS TOPIC SCHEMA.avsc HEADER_HEX FILE.ndjson');
  process.exit(2);
}


const type = avsc.Type.forSchema(JSON.parse(fs.readFileSync(schemaFile, 'utf8')),
                                 {logicalTypes: {'timestamp-millis': Rfc3339}});
const header = Buffer.from(headerHex, 'hex');
const BATCH = 1000; // messages a send; kafkajs batches them per partition
const IN_FLIGHT = 5; // sends awaited together

async function main() {
  const kafka = new Kafka({clientId: 'bench-node', brokers: brokers.split(','),
                           logLevel: logLevel.ERROR});
  const producer = kafka.producer({idempotent: true, maxInFlightRequests: 1});
  await producer.connect();
  let sent = 0;
  let invalid = 0;
  let messages = [];
  const pending = new Set();
  const flush = async () => {
    const p = producer.send({topic, acks: -1, messages});
    messages = [];
    pending.add(p);
    p.finally(() => pending.delete(p));
    if (pending.size >= IN_FLIGHT) await Promise.race(pending);
  };
  const lines = readline.createInterface({input: fs.createReadStream(file), crlfDelay: Infinity});
  for await (const line of lines) {
    if (!line) continue;
    let doc;
    try {
      doc = JSON.parse(line);
    } catch (e) {
      invalid++;
      continue;
    }
    if (!type.isValid(doc)) {
      invalid++;
      continue;
    }
    messages.push({
      key: doc.deviation_id,
      value: Buffer.concat([header, type.toBuffer(doc)]),
      headers: {'avk-id': doc.deviation_id},
    });
    sent++;
    if (messages.length === BATCH) await flush();
  }
  if (messages.length) await flush();
  await Promise.all(pending);
  await producer.disconnect();
  console.log(`sent ${sent} invalid ${invalid}`);
}

main().catch((e) => {
  console.error(`intake_node: ${e.message}`);
  process.exit(1);
});
