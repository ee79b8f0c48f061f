// amqplib (npm) against warrend: WARREN_BIN starts a broker per test file on a free port;
// BROKER_PORT uses a running one (RabbitMQ 3.10 passes this file too).
'use strict';
const {test, before, after} = require('node:test');
const assert = require('node:assert');
const {spawn} = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const amqp = require('amqplib');

let port;
let broker;
let log = '';

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

before(async () => {
  if (process.env.WARREN_BIN) {
    port = await freePort();
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'warren-node-'));
    broker = spawn(process.env.WARREN_BIN,
                   ['--amqp-port', String(port), '--bind', '127.0.0.1', '--data-dir', dataDir]);
    broker.stderr.on('data', (d) => { log += d; });
    const deadline = Date.now() + 10000;
    while (!log.includes(`amqp listening on 127.0.0.1:${port}`)) {
      if (Date.now() > deadline) throw new Error('warrend did not start:\n' + log);
      await new Promise((r) => setTimeout(r, 20));
    }
  } else if (process.env.BROKER_PORT) {
    port = Number(process.env.BROKER_PORT);
  } else {
    throw new Error('set WARREN_BIN or BROKER_PORT');
  }
});

after(async () => {
  if (broker) {
    const exited = new Promise((r) => broker.on('exit', (code) => r(code)));
    broker.kill('SIGTERM');
    assert.strictEqual(await exited, 0, 'warrend exits 0 on SIGTERM; its log:\n' + log);
  }
});

const url = () => `amqp://guest:guest@127.0.0.1:${port}`;
const uid = (p) => `${p}-${Math.random().toString(36).slice(2, 12)}`;

test('publish and consume with manual acks', async () => {
  const conn = await amqp.connect(url());
  const ch = await conn.createChannel();
  const {queue} = await ch.assertQueue('', {exclusive: true});
  for (let i = 0; i < 5; i++) ch.sendToQueue(queue, Buffer.from(`m${i}`), {headers: {n: i}});
  const got = [];
  await new Promise((resolve) => {
    ch.consume(queue, (msg) => {
      got.push([msg.content.toString(), msg.properties.headers.n]);
      ch.ack(msg);
      if (got.length === 5) resolve();
    });
  });
  assert.deepStrictEqual(got, [0, 1, 2, 3, 4].map((i) => [`m${i}`, i]));
  await conn.close();
});

test('confirm channel acks every publish', async () => {
  const conn = await amqp.connect(url());
  const ch = await conn.createConfirmChannel();
  const {queue} = await ch.assertQueue('', {exclusive: true});
  for (let i = 0; i < 100; i++) ch.sendToQueue(queue, Buffer.from('x'), {persistent: true});
  await ch.waitForConfirms();
  const {messageCount} = await ch.checkQueue(queue);
  assert.strictEqual(messageCount, 100);
  await conn.close();
});

test('a 404 closes only the channel', async () => {
  const conn = await amqp.connect(url());
  const ch = await conn.createChannel();
  ch.on('error', () => {});
  await assert.rejects(ch.checkQueue(uid('missing')), (err) => {
    assert.strictEqual(err.code, 404);
    assert.match(err.message, /NOT_FOUND - no queue/);
    return true;
  });
  const ch2 = await conn.createChannel();  // the connection still works
  const {queue} = await ch2.assertQueue('', {exclusive: true});
  assert.ok(queue.startsWith('amq.gen-'));
  await conn.close();
});

test('prefetch limits unacked deliveries', async () => {
  const conn = await amqp.connect(url());
  const ch = await conn.createChannel();
  const {queue} = await ch.assertQueue('', {exclusive: true});
  for (let i = 0; i < 10; i++) ch.sendToQueue(queue, Buffer.from(String(i)));
  await ch.prefetch(2);
  const held = [];
  await ch.consume(queue, (msg) => held.push(msg));
  await new Promise((r) => setTimeout(r, 300));
  assert.strictEqual(held.length, 2);
  ch.ack(held[1], true);
  await new Promise((r) => setTimeout(r, 300));
  assert.strictEqual(held.length, 4);
  await conn.close();
});

test('topic exchange routing', async () => {
  const conn = await amqp.connect(url());
  const ch = await conn.createChannel();
  const ex = uid('logs');
  await ch.assertExchange(ex, 'topic', {durable: false, autoDelete: false});
  const {queue} = await ch.assertQueue('', {exclusive: true});
  await ch.bindQueue(queue, ex, 'kern.*');
  ch.publish(ex, 'kern.crit', Buffer.from('yes'));
  ch.publish(ex, 'app.crit', Buffer.from('no'));
  await new Promise((r) => setTimeout(r, 200));
  const m = await ch.get(queue, {noAck: true});
  assert.strictEqual(m.content.toString(), 'yes');
  assert.strictEqual(await ch.get(queue, {noAck: true}), false);
  await ch.deleteExchange(ex);
  await conn.close();
});

test('direct reply-to RPC and consumer priority (amqplib)', async () => {
  const conn = await amqp.connect(url());
  const server = await conn.createChannel();
  const {queue} = await server.assertQueue('', {exclusive: true});
  // Two servers; the higher-priority one answers while it has credit.
  const seen = [];
  for (const [name, priority] of [['low', 1], ['high', 10]]) {
    await server.consume(queue, (msg) => {
      seen.push(name);
      server.sendToQueue(msg.properties.replyTo, Buffer.from(`${name}:${msg.content}`),
                         {correlationId: msg.properties.correlationId});
      server.ack(msg);
    }, {priority});
  }
  const client = await conn.createChannel();
  const replies = [];
  const done = new Promise((resolve) => {
    client.consume('amq.rabbitmq.reply-to', (msg) => {
      replies.push([msg.properties.correlationId, msg.content.toString()]);
      if (replies.length === 3) resolve();
    }, {noAck: true});
  });
  for (let i = 0; i < 3; i++) {
    client.sendToQueue(queue, Buffer.from(`q${i}`),
                       {replyTo: 'amq.rabbitmq.reply-to', correlationId: `c${i}`});
  }
  await done;
  assert.deepStrictEqual(replies, [['c0', 'high:q0'], ['c1', 'high:q1'], ['c2', 'high:q2']]);
  assert.deepStrictEqual(seen, ['high', 'high', 'high']);
  await conn.close();
});
