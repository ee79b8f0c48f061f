'use strict';
// Collector: prints every match the workers report on `results_queue`. A batch redelivered after
// a worker died can be reported twice; the collector prints each (job, word) once.
//
//   node hashcrack/collector.js
const amqp = require('amqplib');
const amqpUrl = require('../lib/amqp-url');

const RESULTS = process.env.RESULTS_QUEUE || 'results_queue';

async function main() {
  const conn = await amqp.connect(amqpUrl());
  let stopping = false;
  // 'close' below reports the loss; without an 'error' listener amqplib would throw instead.
  conn.on('error', (err) => console.error(`collector: ${err.message}`));
  conn.on('close', () => {
    if (stopping) return;
    console.error('collector: connection to the broker lost');
    process.exit(1);
  });
  const ch = await conn.createChannel();
  await ch.assertQueue(RESULTS, {durable: true});
  const seen = new Set();
  await ch.consume(RESULTS, (msg) => {
    if (msg === null) return;
    try {
      const r = JSON.parse(msg.content.toString());
      const key = `${r.job}/${r.word}`;
      if (!seen.has(key)) {
        seen.add(key);
        console.log(`job ${r.job}: ${r.target} is sha1("${r.word}")` +
                    ` (batch ${r.batch}, found by ${r.worker})`);
      }
    } catch (err) {
      console.error(`collector: skipping a malformed result: ${err.message}`);
    }
    ch.ack(msg);
  });
  console.log(`collector: waiting for results on ${RESULTS}`);
  const stop = () => {
    stopping = true;
    conn.close().then(() => process.exit(0), () => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err) => {
  console.error(`collector: ${err.message}`);
  process.exit(1);
});
