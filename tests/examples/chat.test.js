'use strict';
// examples/chat end to end in a real browser: Debian's chromium, headless, driven by
// playwright-core. Two pages on two chat instances; then the durable-subscriber guarantee: with
// the history service stopped, messages are sent, Warren restarts, the history service returns,
// and a reloaded page shows every message exactly once, in order.
//
// This runs under the asan-ubsan preset too: only warrend is instrumented there, and a browser
// driving it is the point of the test.
const {test, before, after} = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const {Broker, Program, requireExample, freePort, until, tempDir, uid} = require('./harness');

const {chromium} = requireExample('playwright-core');

let broker;
let browser;
let profileDir;
let historyDbDir;
const env = {};
const programs = [];

before(async () => {
  broker = await Broker.open();
  env.AMQP_URL = broker.url;
  if (broker.external) {  // a shared broker: names of our own
    env.CHAT_EXCHANGE = uid('chat');
    env.HISTORY_QUEUE = uid('chat_history');
  }
  profileDir = tempDir('warren-chat-chromium-');
  historyDbDir = tempDir('warren-chat-history-');
  // Without the background-networking flags Chromium keeps calling home on a closed network.
  browser = await chromium.launchPersistentContext(profileDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  for (const p of programs) await p.stop();
  await broker?.cleanup({queues: [env.HISTORY_QUEUE].filter(Boolean),
                         exchanges: [env.CHAT_EXCHANGE].filter(Boolean)});
  if (broker) assert.strictEqual(await broker.stop(), 0, `warrend log:\n${broker.log}`);
  for (const d of [profileDir, historyDbDir]) if (d) fs.rmSync(d, {recursive: true, force: true});
});

function start(script, extraEnv) {
  const p = new Program(script, [], {...env, ...extraEnv});
  programs.push(p);
  return p;
}

const connectedCount = (p) => p.lines.filter((l) => l.endsWith('connected to the broker')).length;
// Connected again after losing the broker, and not lost since.
const reconnected = (p) => {
  const events = p.lines.filter((l) => /connected to the broker$|lost the broker connection/.test(l));
  return connectedCount(p) >= 2 && events[events.length - 1].endsWith('connected to the broker');
};

async function startHistory(port) {
  const history = start('chat/history.js', {PORT: String(port), HISTORY_DB: historyDbDir});
  await until('the history service to connect', () => connectedCount(history) === 1);
  return history;
}

// Texts of the page's messages, top to bottom.
const texts = (page) => page.$$eval('#messages li .text', (els) => els.map((e) => e.textContent));
const ids = (page) => page.$$eval('#messages li', (els) => els.map((e) => e.dataset.id));

async function openPage(port) {
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.waitForSelector('#history-status[data-state="loaded"]');
  await page.waitForSelector('body[data-connected="yes"]');
  return page;
}

async function send(page, user, text) {
  await page.bringToFront();  // the user switches to that window (background tabs are throttled)
  await page.fill('#name', user);
  await page.fill('#text', text);
  await page.click('#send');
  // The check mark: the broker confirmed the persistent message.
  await page.locator('#messages li.confirmed .text', {hasText: text}).waitFor();
}

async function seen(page, text) {
  await page.locator('#messages li .text', {hasText: text}).waitFor();
}

// Bad input gets an error answer (or, above 16 KiB, the socket closed with 1009), never a
// crash: the test goes on with the same server.
async function badClientsAreRefused(port) {
  const WebSocket = requireExample('ws');
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  const replies = [];
  ws.on('message', (d) => replies.push(JSON.parse(d.toString())));
  const closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject); });
  for (const frame of ['garbage', 'null', '42', JSON.stringify({tag: 't', text: '  '})]) ws.send(frame);
  await until('four error replies', () => replies.length === 4);
  assert.deepStrictEqual(replies, [
    {type: 'error', error: 'not JSON'},
    {type: 'error', error: 'expected {tag, user, text}'},
    {type: 'error', error: 'expected {tag, user, text}'},
    {type: 'error', tag: 't', error: 'empty message'},
  ]);
  ws.send('x'.repeat(17 * 1024));
  assert.strictEqual(await closed, 1009);
  const res = await fetch(`http://127.0.0.1:${port}/nothing-here`);
  assert.strictEqual(res.status, 404);
}

test('chat across two instances, history survives a stopped service and a Warren restart',
     async (t) => {
  const historyPort = await freePort();
  const [portA, portB] = [await freePort(), await freePort()];
  let history = await startHistory(historyPort);
  const historyUrl = `http://127.0.0.1:${historyPort}`;
  const chatA = start('chat/server.js', {PORT: String(portA), HISTORY_URL: historyUrl});
  const chatB = start('chat/server.js', {PORT: String(portB), HISTORY_URL: historyUrl});
  await until('both chat servers to connect',
              () => connectedCount(chatA) === 1 && connectedCount(chatB) === 1);

  await badClientsAreRefused(portA);

  const pageA = await openPage(portA);
  const pageB = await openPage(portB);
  assert.deepStrictEqual(await texts(pageA), []);

  // Live: typed in one page, shown in the other (and in its own).
  await send(pageA, 'alice', 'hello from A');
  await seen(pageB, 'hello from A');
  await send(pageB, 'bob', 'hello from B');
  await seen(pageA, 'hello from B');
  const live = ['hello from A', 'hello from B'];
  assert.deepStrictEqual(await texts(pageA), live);
  assert.deepStrictEqual(await texts(pageB), live);
  await until('the history service to store both', async () => {
    const res = await fetch(`${historyUrl}/history`);
    return (await res.json()).length === 2;
  });

  // The history service goes away; messages keep flowing between the pages and wait for it in
  // chat_history.
  assert.strictEqual(await history.stop(), 0, history.output());
  const offline = [];
  for (let i = 1; i <= 4; i++) {
    const [from, to, user] = i % 2 ? [pageA, pageB, 'alice'] : [pageB, pageA, 'bob'];
    const text = `while history is down #${i}`;
    await send(from, user, text);
    await seen(to, text);
    offline.push(text);
  }

  if (broker.restartable) {
    // Warren restarts: the queued persistent messages must come back from disk; the chat
    // servers reconnect by themselves.
    await broker.restart();
    await until('both chat servers to reconnect',
                () => reconnected(chatA) && reconnected(chatB), 20000);
  } else {
    t.diagnostic('external broker: not restarted');
  }

  history = await startHistory(historyPort);
  const expected = [...live, ...offline];
  await until('the history service to catch up', async () => {
    const res = await fetch(`${historyUrl}/history`);
    return (await res.json()).length >= expected.length;
  });

  await pageB.reload();
  await pageB.waitForSelector('#history-status[data-state="loaded"]');
  assert.deepStrictEqual(await texts(pageB), expected);
  assert.strictEqual(new Set(await ids(pageB)).size, expected.length, 'one element per message');
  assert.strictEqual(await pageB.textContent('#history-status'), `${expected.length} earlier messages`);

  // After the restart live chat works again, and that message reaches the history too.
  await pageB.waitForSelector('body[data-connected="yes"]');
  await send(pageB, 'bob', 'after the restart');
  await seen(pageA, 'after the restart');
  expected.push('after the restart');
  await until('the history service to store it', async () => {
    const res = await fetch(`${historyUrl}/history`);
    return (await res.json()).length === expected.length;
  });
  await pageA.reload();
  await pageA.waitForSelector('#history-status[data-state="loaded"]');
  assert.deepStrictEqual(await texts(pageA), expected);
  const stored = await (await fetch(`${historyUrl}/history`)).json();
  assert.deepStrictEqual(stored.map((m) => m.text), expected);
  const stamps = stored.map((m) => m.stamp);
  assert.ok(stamps.every((s, i) => i === 0 || s > stamps[i - 1]), `monotonic keys: ${stamps}`);
});
