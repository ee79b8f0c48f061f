'use strict';
// Producer: splits every word up to --max-length over --alphabet into batches and sends each
// batch, with the SHA-1 to crack, as a persistent message to the durable queue `jobs_queue`
// through the default exchange. Publisher confirms: it exits once the broker has every batch.
//
//   node hashcrack/producer.js --word dog            # crack sha1("dog") (the demo)
//   node hashcrack/producer.js --hash <sha1 hex> --alphabet abc123 --max-length 6
const crypto = require('node:crypto');
const amqp = require('amqplib');
const amqpUrl = require('../lib/amqp-url');
const parseArgs = require('./args');
const {batches, countWords} = require('./words');

const JOBS = process.env.JOBS_QUEUE || 'jobs_queue';

async function main() {
  const opt = parseArgs(process.argv.slice(2), {
    alphabet: 'abcdefghijklmnopqrstuvwxyz',
    'max-length': '4',
    'batch-size': '10000',
    hash: '',
    word: '',
  });
  const target = opt.hash ? opt.hash.toLowerCase()
                          : crypto.createHash('sha1').update(opt.word).digest('hex');
  if (!/^[0-9a-f]{40}$/.test(target)) throw new Error('give --hash <40 hex digits> or --word');
  const maxLength = Number(opt['max-length']);
  const batchSize = Number(opt['batch-size']);
  if (!(maxLength >= 1 && maxLength <= 8)) throw new Error('--max-length must be 1..8');
  if (!(batchSize >= 1)) throw new Error('--batch-size must be at least 1');
  const alphabet = [...new Set(opt.alphabet)].join('');
  const total = countWords(alphabet.length, maxLength);
  const batchCount = Math.ceil(total / batchSize);
  const job = crypto.randomBytes(4).toString('hex');

  const conn = await amqp.connect(amqpUrl());
  conn.on('error', (err) => console.error(`producer: ${err.message}`));
  const ch = await conn.createConfirmChannel();
  await ch.assertQueue(JOBS, {durable: true});
  let n = 0;
  for (const words of batches(alphabet, maxLength, batchSize)) {
    const body = Buffer.from(JSON.stringify({job, batch: n, batches: batchCount, target, words}));
    const ok = ch.sendToQueue(JOBS, body, {persistent: true, contentType: 'application/json'});
    n++;
    if (!ok) await new Promise((resolve) => ch.once('drain', resolve));
  }
  await ch.waitForConfirms();
  console.log(`job ${job}: ${n} batches (${total} words over "${alphabet}", length 1..${maxLength})` +
              ` queued to crack ${target}`);
  await conn.close();
}

main().catch((err) => {
  console.error(`producer: ${err.message}`);
  process.exit(1);
});
