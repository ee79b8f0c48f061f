'use strict';
// Worker: one of any number of competing consumers of `jobs_queue`, prefetch 1 (a worker holds
// one batch at a time, so a fast worker takes more batches than a slow one). It hashes every
// word of the batch, publishes a match to `results_queue` (waiting for the broker's confirm),
// and only then acks the batch. A worker that dies mid-batch never acked it: the broker gives
// the batch to another worker, flagged redelivered.
//
//   node hashcrack/worker.js [--name w1] [--slow MS]
// --slow adds MS of sleep per batch, to watch the distribution or to kill a worker mid-batch.
const crypto = require('node:crypto');
const {setTimeout: sleep} = require('node:timers/promises');
const amqp = require('amqplib');
const amqpUrl = require('../lib/amqp-url');
const parseArgs = require('./args');

const JOBS = process.env.JOBS_QUEUE || 'jobs_queue';
const RESULTS = process.env.RESULTS_QUEUE || 'results_queue';

async function main() {
  const opt = parseArgs(process.argv.slice(2), {name: `worker-${process.pid}`, slow: '0'});
  const slowMs = Number(opt.slow);
  const conn = await amqp.connect(amqpUrl());
  let stopping = false;
  // 'close' below reports the loss; without an 'error' listener amqplib would throw instead.
  conn.on('error', (err) => console.error(`${opt.name}: ${err.message}`));
  conn.on('close', () => {
    if (stopping) return;
    console.error(`${opt.name}: connection to the broker lost`);
    process.exit(1);
  });
  const ch = await conn.createConfirmChannel();
  ch.on('error', (err) => console.error(`${opt.name}: ${err.message}`));
  ch.on('close', () => {
    if (stopping) return;
    console.error(`${opt.name}: channel closed`);
    process.exit(1);
  });
  await ch.assertQueue(JOBS, {durable: true});
  await ch.assertQueue(RESULTS, {durable: true});
  await ch.prefetch(1);
  await ch.consume(JOBS, async (msg) => {
    if (msg === null) return;
    let job;
    try {
      job = JSON.parse(msg.content.toString());
      if (!Array.isArray(job.words) || typeof job.target !== 'string') throw new Error('no words');
    } catch (err) {
      console.error(`${opt.name}: dropping a malformed batch: ${err.message}`);
      ch.nack(msg, false, false);  // not requeued: it would fail again
      return;
    }
    const again = msg.fields.redelivered ? ' (redelivered)' : '';
    console.log(`${opt.name}: batch ${job.batch} of job ${job.job} started${again}`);
    if (slowMs > 0) await sleep(slowMs);
    for (const word of job.words) {
      if (crypto.createHash('sha1').update(word).digest('hex') === job.target) {
        const result = {job: job.job, batch: job.batch, target: job.target, word, worker: opt.name};
        ch.sendToQueue(RESULTS, Buffer.from(JSON.stringify(result)),
                       {persistent: true, contentType: 'application/json'});
        await ch.waitForConfirms();
        console.log(`${opt.name}: found "${word}" in batch ${job.batch}`);
      }
    }
    ch.ack(msg);
    console.log(`${opt.name}: batch ${job.batch} of job ${job.job} acked`);
  });
  console.log(`${opt.name}: waiting for batches on ${JOBS}`);
  const stop = () => {
    stopping = true;
    conn.close().then(() => process.exit(0), () => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err) => {
  console.error(`worker: ${err.message}`);
  process.exit(1);
});
