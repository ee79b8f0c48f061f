'use strict';
// examples/hashcrack end to end: a producer, three competing workers and a collector; one worker
// is killed (SIGKILL) while it holds a batch. The word must still be found, and every batch must
// have been processed to an ack exactly once, the killed worker's batch by another worker.
// Against a shared broker (BROKER_URL), the job id tells this run's lines apart.
const {test, before, after} = require('node:test');
const assert = require('node:assert');
const {Broker, Program, requireExample, until, uid} = require('./harness');

let broker;
const env = {};
const programs = [];

before(async () => {
  broker = await Broker.open();
  env.AMQP_URL = broker.url;
  // The example's own names on a fresh warrend; unique ones on a shared broker.
  env.JOBS_QUEUE = broker.external ? uid('jobs_queue') : 'jobs_queue';
  env.RESULTS_QUEUE = broker.external ? uid('results_queue') : 'results_queue';
});

after(async () => {
  for (const p of programs) await p.stop();
  await broker?.cleanup({queues: [env.JOBS_QUEUE, env.RESULTS_QUEUE]});
  if (broker) assert.strictEqual(await broker.stop(), 0, `warrend log:\n${broker.log}`);
});

function start(script, args = []) {
  const p = new Program(script, args, env);
  programs.push(p);
  return p;
}

test('three workers, one killed mid-run: the word is found and every batch is acked', async () => {
  // 8 + 64 + 512 + 4096 = 4680 words in batches of 50: 94 batches. The word is the very last
  // one, so it is found only once the whole search space has been worked through.
  const batches = 94;
  const word = 'hhhh';
  const collector = start('hashcrack/collector.js');
  await collector.waitFor(/waiting for results/);
  // --slow: w1 and w3 take 10 ms per batch, so that the run lasts a moment; w2 takes 60 s, so
  // that it certainly holds its batch (prefetch 1, unacked) when it is killed.
  const workers = [['w1', '10'], ['w2', '60000'], ['w3', '10']].map(([name, slow]) =>
    start('hashcrack/worker.js', ['--name', name, '--slow', slow]));
  for (const w of workers) await w.waitFor(/waiting for batches/);

  const producer = start('hashcrack/producer.js',
                         ['--word', word, '--alphabet', 'abcdefgh', '--max-length', '4',
                          '--batch-size', '50']);
  const victim = workers[1];
  const startedRe = /^w2: batch (\d+) of job \S+ started$/;
  const started = await victim.waitFor(startedRe);
  victim.proc.kill('SIGKILL');
  await victim.exited;
  const inHand = Number(startedRe.exec(started)[1]);

  const ackRe = /^(w\d): batch (\d+) of job \S+ acked$/;
  const acks = () => workers.flatMap((w) => w.lines).filter((l) => ackRe.test(l))
                           .map((l) => ackRe.exec(l).slice(1));
  assert.ok(acks().length < batches, 'w2 was killed while the others were still working');

  assert.strictEqual(await producer.exited, 0, producer.output());
  const job = /^job ([0-9a-f]+): 94 batches \(4680 words/.exec(producer.lines[0]);
  assert.ok(job, producer.output());
  await collector.waitFor(new RegExp(`^job ${job[1]}: [0-9a-f]{40} is sha1\\("${word}"\\)`), 30000);

  await until('every batch to be acked', () => acks().length >= batches, 30000);
  const count = new Map();
  for (const [, b] of acks()) count.set(Number(b), (count.get(Number(b)) ?? 0) + 1);
  for (let b = 0; b < batches; b++) assert.strictEqual(count.get(b), 1, `batch ${b} acks`);
  assert.strictEqual(acks().length, batches);
  // The batch w2 died with went to another worker, redelivered.
  const [byWorker] = acks().find(([, b]) => Number(b) === inHand);
  assert.notStrictEqual(byWorker, 'w2');
  const redelivered = workers.flatMap((w) => w.lines)
                             .filter((l) => l.endsWith(`batch ${inHand} of job ${job[1]} started (redelivered)`));
  assert.strictEqual(redelivered.length, 1, `batch ${inHand} redelivered once`);
  // The survivors shared the work.
  for (const name of ['w1', 'w3']) assert.ok(acks().some(([w]) => w === name), `${name} acked`);

  // Nothing left behind in the broker.
  const amqp = requireExample('amqplib');
  const conn = await amqp.connect(broker.url);
  const ch = await conn.createChannel();
  assert.strictEqual((await ch.checkQueue(env.JOBS_QUEUE)).messageCount, 0);
  assert.strictEqual((await ch.checkQueue(env.RESULTS_QUEUE)).messageCount, 0);
  await conn.close();
});
