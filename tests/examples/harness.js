'use strict';
// Shared by the example tests: the broker under test and the example processes.
//
// The broker is either the warrend named by WARREN_BIN, started on a free port with a fresh data
// dir (what CTest does), or an already running one at BROKER_URL (for example the local RabbitMQ
// 3.10: BROKER_URL=amqp://guest:guest@127.0.0.1:5672), which the tests never restart.
const {spawn} = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const {createRequire} = require('node:module');

const EXAMPLES = path.resolve(__dirname, '..', '..', 'examples');
// The examples' npm packages (examples/package-lock.json; scripts/install-deps.sh installs them).
const requireExample = createRequire(path.join(EXAMPLES, 'package.json'));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, check, timeoutMs = 15000, everyMs = 25) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

function tempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

// Unique names, so that runs against a shared RabbitMQ do not meet each other.
const uid = (p) => `${p}-${crypto.randomBytes(5).toString('hex')}`;

class Broker {
  static async open() {
    const b = new Broker();
    if (process.env.WARREN_BIN) {
      b.port = await freePort();
      b.dataDir = tempDir('warren-examples-');
      await b.start();
    } else if (process.env.BROKER_URL) {
      b.external = process.env.BROKER_URL;
    } else {
      throw new Error('set WARREN_BIN or BROKER_URL');
    }
    return b;
  }

  get url() {
    return this.external || `amqp://guest:guest@127.0.0.1:${this.port}`;
  }

  get restartable() {
    return !this.external;
  }

  async start() {
    this.log = '';
    this.proc = spawn(process.env.WARREN_BIN,
                      ['--amqp-port', String(this.port), '--bind', '127.0.0.1',
                       '--data-dir', this.dataDir],
                      {stdio: ['ignore', 'ignore', 'pipe']});
    this.proc.stderr.on('data', (d) => { this.log += d; });
    // 'close', not 'exit': by then every line the program printed has been read.
    this.exited = new Promise((r) => this.proc.on('close', (code, signal) => r(code ?? signal)));
    await until('warrend to listen', () => {
      if (this.proc.exitCode !== null) throw new Error(`warrend exited:\n${this.log}`);
      return this.log.includes(`amqp listening on 127.0.0.1:${this.port}`);
    }, 20000);
  }

  // SIGTERM; returns the exit code (0 expected).
  async stop() {
    if (!this.proc) return 0;
    this.proc.kill('SIGTERM');
    const code = await this.exited;
    this.proc = null;
    return code;
  }

  // Against an external broker: deletes what a test declared there (a fresh warrend needs no
  // cleaning; its data dir is thrown away).
  async cleanup({queues = [], exchanges = []}) {
    if (!this.external) return;
    const amqp = requireExample('amqplib');
    const conn = await amqp.connect(this.url);
    const ch = await conn.createChannel();
    for (const q of queues) await ch.deleteQueue(q);
    for (const e of exchanges) await ch.deleteExchange(e);
    await conn.close();
  }

  async restart() {
    const code = await this.stop();
    if (code !== 0) throw new Error(`warrend exited with ${code} on SIGTERM:\n${this.log}`);
    await this.start();
  }
}

// One example program (node examples/<script>) with its output collected line by line.
class Program {
  constructor(script, args = [], env = {}) {
    this.name = `${script} ${args.join(' ')}`.trim();
    this.lines = [];
    this.proc = spawn(process.execPath, [path.join(EXAMPLES, script), ...args], {
      cwd: EXAMPLES,
      env: {...process.env, ...env},
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // 'close', not 'exit': by then every line the program printed has been read.
    this.closed = false;
    this.exited = new Promise((r) => this.proc.on('close', (code, signal) => {
      this.closed = true;
      r(code ?? signal);
    }));
    let partial = '';
    const collect = (d) => {
      const parts = (partial + d).split('\n');
      partial = parts.pop();
      this.lines.push(...parts);
    };
    this.proc.stdout.on('data', collect);
    this.proc.stderr.on('data', collect);
  }

  output() {
    return this.lines.join('\n');
  }

  waitFor(pattern, timeoutMs = 15000) {
    return until(`${this.name} to print ${pattern}`, () => {
      if (this.closed) {
        const line = this.lines.find((l) => pattern.test(l));
        if (line) return line;
        throw new Error(`${this.name} exited (${this.proc.exitCode ?? this.proc.signalCode}) ` +
                        `before printing ${pattern}:\n${this.output()}`);
      }
      return this.lines.find((l) => pattern.test(l));
    }, timeoutMs);
  }

  async stop(signal = 'SIGTERM') {
    if (!this.closed) this.proc.kill(signal);
    return this.exited;
  }
}

module.exports = {Broker, Program, EXAMPLES, requireExample, freePort, sleep, until, tempDir, uid};
