'use strict';
// RPC client: sends fib(n) requests to `rpc_queue` with reply_to and a correlation id per
// request, and matches each reply to its request by that id (replies may arrive in any order).
//
//   node rpc/client.js [--direct] N...
//
// Without --direct the replies come back on an exclusive, server-named queue of this client.
// With --direct they use RabbitMQ's direct reply-to: the client consumes the pseudo-queue
// `amq.rabbitmq.reply-to` in no-ack mode and publishes its requests on that same channel.
const crypto = require('node:crypto');
const amqp = require('amqplib');
const amqpUrl = require('../lib/amqp-url');

const QUEUE = process.env.RPC_QUEUE || 'rpc_queue';
const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';

class RpcClient {
  static async open(url, {direct}) {
    const conn = await amqp.connect(url);
    const ch = await conn.createChannel();
    // A channel error (say, the broker refuses the reply consumer) rejects the pending call;
    // without a listener amqplib would also raise it as an uncaught 'error' event.
    ch.on('error', () => {});
    conn.on('error', () => {});
    const client = new RpcClient(conn, ch);
    if (direct) {
      client.replyTo = DIRECT_REPLY_TO;
    } else {
      const {queue} = await ch.assertQueue('', {exclusive: true});
      client.replyTo = queue;
    }
    // Direct reply-to must be consumed with no-ack; the exclusive queue may as well be.
    await ch.consume(client.replyTo, (msg) => client.onReply(msg), {noAck: true});
    return client;
  }

  constructor(conn, ch) {
    this.conn = conn;
    this.ch = ch;
    this.pending = new Map();  // correlation id -> {resolve, reject, timer}
    ch.on('close', () => this.failAll(new Error('channel closed')));
  }

  onReply(msg) {
    if (msg === null) return;
    const waiter = this.pending.get(msg.properties.correlationId);
    if (!waiter) return;  // a late reply to a request that timed out: drop it
    this.pending.delete(msg.properties.correlationId);
    clearTimeout(waiter.timer);
    waiter.resolve(JSON.parse(msg.content.toString()));
  }

  call(request, timeoutMs = 10000) {
    const correlationId = crypto.randomUUID();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(correlationId);
        reject(new Error(`no reply to ${JSON.stringify(request)} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(correlationId, {resolve, reject, timer});
      this.ch.sendToQueue(QUEUE, Buffer.from(JSON.stringify(request)), {
        correlationId,
        replyTo: this.replyTo,
        contentType: 'application/json',
      });
    });
  }

  failAll(err) {
    for (const {reject, timer} of this.pending.values()) {
      clearTimeout(timer);
      reject(err);
    }
    this.pending.clear();
  }

  close() {
    return this.conn.close();
  }
}

async function main() {
  const args = process.argv.slice(2);
  const direct = args.includes('--direct');
  const numbers = args.filter((a) => a !== '--direct');
  if (numbers.length === 0) numbers.push('10', '30', '90');
  const client = await RpcClient.open(amqpUrl(), {direct});
  console.log(`replies to ${client.replyTo}`);
  // All requests in flight at once: the correlation ids sort the replies out.
  const replies = await Promise.all(numbers.map((n) => client.call({n: Number.isNaN(Number(n)) ? n : Number(n)})));
  for (const [i, reply] of replies.entries()) {
    if (reply.error) console.log(`fib(${numbers[i]}) failed: ${reply.error}`);
    else console.log(`fib(${reply.n}) = ${reply.fib}`);
  }
  await client.close();
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err.message);
    process.exit(1);
  });
}

module.exports = {RpcClient};
