'use strict';
// History service: the durable subscriber of the chat. It consumes the durable, non-exclusive
// queue `chat_history` bound to the fanout exchange `chat`, so while it is stopped (or while the
// broker restarts) messages wait in the queue, and it gets every one of them when it is back.
// Each message is stored in LevelDB under a monotonic timestamp key and acked only after that
// write succeeded. A message delivered twice (the service died between its write and its ack)
// is recognised by its message id and stored once. GET /history returns the latest messages in
// order.
//
//   PORT=8090 HISTORY_DB=./chat-history AMQP_URL=amqp://localhost node chat/history.js
const http = require('node:http');
const {Level} = require('level');
const amqpUrl = require('../lib/amqp-url');
const keepConnected = require('../lib/keep-connected');

const PORT = Number(process.env.PORT || 8090);
const HOST = process.env.HOST || '127.0.0.1';
const DB_PATH = process.env.HISTORY_DB || './chat-history';
const EXCHANGE = process.env.CHAT_EXCHANGE || 'chat';
const QUEUE = process.env.HISTORY_QUEUE || 'chat_history';
const PREFETCH = 100;

// Keys: "m!<16-digit microseconds since the epoch>" -> message, "id!<message id>" -> its m! key.
const db = new Level(DB_PATH, {valueEncoding: 'json'});
let lastStamp = 0;

// Strictly increasing, even when the clock stands still or steps back.
function nextKey() {
  lastStamp = Math.max(Date.now() * 1000, lastStamp + 1);
  return `m!${String(lastStamp).padStart(16, '0')}`;
}

async function store(message) {
  const idKey = `id!${message.id}`;
  if ((await db.get(idKey)) !== undefined) return false;  // already stored: a redelivery
  const key = nextKey();
  await db.batch([
    {type: 'put', key, value: {...message, stamp: lastStamp}},
    {type: 'put', key: idKey, value: key},
  ], {sync: true});
  return true;
}

async function consumeHistory(conn) {
  const ch = await conn.createChannel();
  await ch.assertExchange(EXCHANGE, 'fanout', {durable: true});
  await ch.assertQueue(QUEUE, {durable: true, exclusive: false, autoDelete: false});
  await ch.bindQueue(QUEUE, EXCHANGE, '');
  await ch.prefetch(PREFETCH);
  // Deliveries are stored one after the other, in queue order, so keys follow that order.
  let chain = Promise.resolve();
  let failed = false;
  await ch.consume(QUEUE, (msg) => {
    if (msg === null) return;
    chain = chain.then(async () => {
      if (failed) return;  // the channel is closing; the broker requeues this one
      let message;
      try {
        message = JSON.parse(msg.content.toString());
        if (typeof message.text !== 'string') throw new Error('no text');
        message.id = msg.properties.messageId || message.id;
        if (typeof message.id !== 'string' || !message.id) throw new Error('no message id');
      } catch (err) {
        console.error(`history: dropping a malformed message: ${err.message}`);
        ch.ack(msg);  // it can never be stored; keeping it would block the queue
        return;
      }
      try {
        await store(message);
      } catch (err) {
        // Not stored, so not acked. Closing the channel returns this and every later unacked
        // delivery to the queue in order; keepConnected consumes again after a pause.
        console.error(`history: write failed (${err.message}); will retry`);
        failed = true;
        conn.close().catch(() => {});
        return;
      }
      ch.ack(msg);
    }).catch((err) => {
      // The channel closed under us (the broker went away): this delivery comes back, and its
      // second copy is recognised by its id if the write above got through.
      console.error(`history: could not ack (${err.message})`);
    });
  });
}

let broker = null;

async function latest(limit) {
  const out = [];
  for await (const value of db.values({gt: 'm!', lt: 'm"', reverse: true, limit})) out.push(value);
  return out.reverse();
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (req.method === 'GET' && url.pathname === '/history') {
    const limit = Math.min(Math.max(Number(url.searchParams.get('limit')) || 100, 1), 1000);
    try {
      const body = JSON.stringify(await latest(limit));
      res.writeHead(200, {'content-type': 'application/json', 'cache-control': 'no-store'});
      res.end(body);
    } catch (err) {
      res.writeHead(500, {'content-type': 'application/json'});
      res.end(JSON.stringify({error: err.message}));
    }
  } else {
    res.writeHead(404, {'content-type': 'text/plain'});
    res.end('not found\n');
  }
});

async function main() {
  await db.open();
  // Continue the key sequence of the previous run.
  for await (const key of db.keys({gt: 'm!', lt: 'm"', reverse: true, limit: 1})) {
    lastStamp = Number(key.slice(2));
  }
  broker = keepConnected(amqpUrl(), consumeHistory, {name: 'history', retryMs: 1000});
  server.listen(PORT, HOST, () => console.log(`history: http://${HOST}:${PORT}/history`));
}

async function stop() {
  server.close();
  if (broker) await broker.stop();
  await db.close();
  process.exit(0);
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

main().catch((err) => {
  console.error(`history: ${err.message}`);
  process.exit(1);
});
