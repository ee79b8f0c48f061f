'use strict';
// RPC server: consumes requests from `rpc_queue`, answers each one to the queue named in its
// reply_to property with the request's correlation_id, then acks the request. It does not care
// whether reply_to is an ordinary queue or RabbitMQ's direct reply-to pseudo-queue.
//
//   AMQP_URL=amqp://localhost node rpc/server.js
const amqp = require('amqplib');
const amqpUrl = require('../lib/amqp-url');

const QUEUE = process.env.RPC_QUEUE || 'rpc_queue';

// The remote procedure: the n-th Fibonacci number as a decimal string (BigInt: exact for any n).
function fib(n) {
  let a = 0n;
  let b = 1n;
  for (let i = 0; i < n; i++) [a, b] = [b, a + b];
  return a.toString();
}

function handle(request) {
  const n = request.n;
  if (!Number.isInteger(n) || n < 0 || n > 10000) {
    return {error: 'n must be an integer from 0 to 10000'};
  }
  return {n, fib: fib(n)};
}

async function main() {
  const conn = await amqp.connect(amqpUrl());
  let stopping = false;
  // 'close' below reports the loss; without an 'error' listener amqplib would throw instead.
  conn.on('error', (err) => console.error(`rpc server: ${err.message}`));
  conn.on('close', () => {
    if (stopping) return;
    console.error('connection to the broker lost');
    process.exit(1);
  });
  const ch = await conn.createChannel();
  await ch.assertQueue(QUEUE, {durable: false});
  await ch.prefetch(10);
  await ch.consume(QUEUE, (msg) => {
    if (msg === null) return;  // the queue was deleted under us
    const {replyTo, correlationId} = msg.properties;
    let reply;
    try {
      reply = handle(JSON.parse(msg.content.toString()));
    } catch (err) {
      reply = {error: `bad request: ${err.message}`};
    }
    if (replyTo) {
      ch.sendToQueue(replyTo, Buffer.from(JSON.stringify(reply)), {
        correlationId,
        contentType: 'application/json',
      });
    }
    ch.ack(msg);
  });
  console.log(`rpc server waiting for requests on ${QUEUE}`);
  const stop = () => {
    stopping = true;
    return conn.close().then(() => process.exit(0), () => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
