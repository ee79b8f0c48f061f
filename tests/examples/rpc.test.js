'use strict';
// examples/rpc end to end: the server and the client programs against the broker, once with an
// exclusive reply queue and once with direct reply-to (amq.rabbitmq.reply-to).
const {test, before, after} = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const {Broker, Program, EXAMPLES, uid} = require('./harness');

let broker;
let server;
const env = {};

// fib as the server computes it, independently.
function fib(n) {
  let [a, b] = [0n, 1n];
  for (let i = 0; i < n; i++) [a, b] = [b, a + b];
  return a.toString();
}

before(async () => {
  broker = await Broker.open();
  env.AMQP_URL = broker.url;
  env.RPC_QUEUE = uid('rpc_queue');
  server = new Program('rpc/server.js', [], env);
  await server.waitFor(/waiting for requests/);
});

after(async () => {
  if (server) assert.strictEqual(await server.stop(), 0, server.output());
  await broker?.cleanup({queues: [env.RPC_QUEUE]});
  if (broker) assert.strictEqual(await broker.stop(), 0, `warrend log:\n${broker.log}`);
});

async function runClient(args) {
  const client = new Program('rpc/client.js', args, env);
  const code = await client.exited;
  assert.strictEqual(code, 0, client.output());
  return client.lines;
}

// Many calls in flight on one client: each reply must be the one for its own request.
async function concurrentCalls(direct) {
  process.env.RPC_QUEUE = env.RPC_QUEUE;
  const {RpcClient} = require(path.join(EXAMPLES, 'rpc', 'client.js'));
  const client = await RpcClient.open(broker.url, {direct});
  try {
    const ns = Array.from({length: 200}, (_, i) => (i * 37) % 300);
    const replies = await Promise.all(ns.map((n) => client.call({n})));
    replies.forEach((r, i) => assert.deepStrictEqual(r, {n: ns[i], fib: fib(ns[i])}));
    assert.deepStrictEqual(await client.call({n: -1}),
                           {error: 'n must be an integer from 0 to 10000'});
    return client.replyTo;
  } finally {
    await client.close();
  }
}

test('exclusive reply queue: the client prints the right results', async () => {
  const lines = await runClient(['10', '30', '90', '300']);
  assert.match(lines[0], /^replies to amq\.gen-/);
  assert.deepStrictEqual(lines.slice(1), [10, 30, 90, 300].map((n) => `fib(${n}) = ${fib(n)}`));
  assert.match(await concurrentCalls(false), /^amq\.gen-/);
});

// Needs direct reply-to in the broker (issue 5). Checked against RabbitMQ 3.10 with BROKER_URL.
test('direct reply-to: the client prints the right results', async () => {
  const lines = await runClient(['--direct', '7', '50', '1000']);
  assert.strictEqual(lines[0], 'replies to amq.rabbitmq.reply-to');
  assert.deepStrictEqual(lines.slice(1), [7, 50, 1000].map((n) => `fib(${n}) = ${fib(n)}`));
  assert.strictEqual(await concurrentCalls(true), 'amq.rabbitmq.reply-to');
});
