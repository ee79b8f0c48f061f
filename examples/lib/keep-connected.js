'use strict';
// Keeps one AMQP connection open for a long-running service: connects, runs `setup` (declare,
// bind, consume) on the new connection, and when the connection drops (the broker restarted, a
// network blip, setup itself failed) connects again after a pause and runs `setup` again.
// Plain amqplib; the same code runs against Warren and RabbitMQ.
const {setTimeout: sleep} = require('node:timers/promises');
const amqp = require('amqplib');

function keepConnected(url, setup, {name = 'service', retryMs = 500} = {}) {
  let stopped = false;
  let current = null;
  let wakeStopped;
  const stoppedPromise = new Promise((resolve) => { wakeStopped = resolve; });

  async function loop() {
    let failures = 0;
    while (!stopped) {
      let conn;
      try {
        conn = await amqp.connect(url);
      } catch (err) {
        if (failures++ % 20 === 0) console.error(`${name}: cannot connect (${err.message}); retrying`);
        await Promise.race([sleep(retryMs), stoppedPromise]);
        continue;
      }
      failures = 0;
      const closed = new Promise((resolve) => conn.once('close', resolve));
      conn.on('error', (err) => console.error(`${name}: connection error: ${err.message}`));
      try {
        await setup(conn);
        current = conn;
        console.log(`${name}: connected to the broker`);
      } catch (err) {
        console.error(`${name}: setup failed: ${err.message}`);
        conn.close().catch(() => {});
      }
      await Promise.race([closed, stoppedPromise]);
      current = null;
      if (!stopped) {
        console.error(`${name}: lost the broker connection; reconnecting`);
        await Promise.race([sleep(retryMs), stoppedPromise]);
      }
    }
  }
  loop();

  return {
    get connection() { return current; },
    async stop() {
      stopped = true;
      wakeStopped();
      if (current) await current.close().catch(() => {});
    },
  };
}

module.exports = keepConnected;
