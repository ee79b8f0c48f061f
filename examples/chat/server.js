'use strict';
// Chat server: serves the page and a WebSocket endpoint. Run several on different ports; they
// share messages through the fanout exchange `chat`:
//   - a message a browser sends is published to `chat` (persistent, publisher-confirmed; the
//     browser sees a check mark once the broker has confirmed it);
//   - each instance consumes its own exclusive, server-named queue bound to `chat` and pushes
//     every message to its WebSocket clients. The queue goes away with the instance: it needs
//     no messages while it is down, the history service has them.
// GET /history is passed on to the history service (HISTORY_URL).
//
//   PORT=8080 HISTORY_URL=http://127.0.0.1:8090 AMQP_URL=amqp://localhost node chat/server.js
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const {WebSocketServer} = require('ws');
const amqpUrl = require('../lib/amqp-url');
const keepConnected = require('../lib/keep-connected');

const PORT = Number(process.env.PORT || 8080);
const HOST = process.env.HOST || '127.0.0.1';
const HISTORY_URL = process.env.HISTORY_URL || 'http://127.0.0.1:8090';
const EXCHANGE = process.env.CHAT_EXCHANGE || 'chat';
const MAX_USER = 32;
const MAX_TEXT = 2000;
const PAGE = fs.readFileSync(path.join(__dirname, 'public', 'index.html'));

let channel = null;  // the confirm channel of the current broker connection, if any

const broker = keepConnected(amqpUrl(), async (conn) => {
  const ch = await conn.createConfirmChannel();
  await ch.assertExchange(EXCHANGE, 'fanout', {durable: true});
  const {queue} = await ch.assertQueue('', {exclusive: true});
  await ch.bindQueue(queue, EXCHANGE, '');
  await ch.consume(queue, (msg) => {
    if (msg !== null) broadcast(msg.content);
  }, {noAck: true});
  ch.on('close', () => { if (channel === ch) channel = null; });
  channel = ch;
}, {name: `chat:${PORT}`});

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (req.method === 'GET' && (url.pathname === '/' || url.pathname === '/index.html')) {
    res.writeHead(200, {'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store'});
    res.end(PAGE);
  } else if (req.method === 'GET' && url.pathname === '/history') {
    proxyHistory(url, res);
  } else {
    res.writeHead(404, {'content-type': 'text/plain'});
    res.end('not found\n');
  }
});

function proxyHistory(url, res) {
  const upstream = http.get(new URL(`/history${url.search}`, HISTORY_URL), (up) => {
    res.writeHead(up.statusCode, {'content-type': 'application/json', 'cache-control': 'no-store'});
    up.pipe(res);
  });
  upstream.setTimeout(5000, () => upstream.destroy(new Error('timeout')));
  upstream.on('error', (err) => {
    if (res.headersSent) return res.destroy();
    res.writeHead(503, {'content-type': 'application/json'});
    res.end(JSON.stringify({error: `history service unavailable (${err.message})`}));
  });
}

const wss = new WebSocketServer({server, path: '/ws', maxPayload: 16 * 1024});

function broadcast(content) {
  let message;
  try {
    message = JSON.parse(content.toString());
  } catch {
    return;  // not ours
  }
  const frame = JSON.stringify({type: 'message', ...message});
  for (const client of wss.clients) {
    if (client.readyState === client.OPEN) client.send(frame);
  }
}

wss.on('connection', (ws) => {
  // A bad frame (say, above maxPayload) closes that socket; it must not take the server down.
  ws.on('error', (err) => console.error(`chat:${PORT}: websocket error: ${err.message}`));
  ws.on('message', (data) => {
    let req;
    try {
      req = JSON.parse(data.toString());
    } catch {
      return ws.send(JSON.stringify({type: 'error', error: 'not JSON'}));
    }
    if (typeof req !== 'object' || req === null) {
      return ws.send(JSON.stringify({type: 'error', error: 'expected {tag, user, text}'}));
    }
    const tag = String(req.tag ?? '');
    const user = String(req.user ?? '').trim().slice(0, MAX_USER) || 'anonymous';
    const text = String(req.text ?? '').slice(0, MAX_TEXT);
    if (!text.trim()) return ws.send(JSON.stringify({type: 'error', tag, error: 'empty message'}));
    const ch = channel;
    if (!ch) {
      return ws.send(JSON.stringify({type: 'error', tag, error: 'broker unavailable, try again'}));
    }
    const message = {id: crypto.randomUUID(), user, text, time: Date.now(), via: PORT};
    // Tell the browser the id before publishing: its own message then comes back through the
    // instance's queue under an id it already knows.
    ws.send(JSON.stringify({type: 'accepted', tag, id: message.id}));
    const options = {
      persistent: true,
      messageId: message.id,
      timestamp: Math.floor(message.time / 1000),
      contentType: 'application/json',
    };
    try {
      ch.publish(EXCHANGE, '', Buffer.from(JSON.stringify(message)), options, (err) => {
        if (ws.readyState !== ws.OPEN) return;
        ws.send(JSON.stringify(err ? {type: 'error', tag, id: message.id, error: 'not stored'}
                                   : {type: 'confirmed', tag, id: message.id}));
      });
    } catch (err) {
      ws.send(JSON.stringify({type: 'error', tag, id: message.id, error: err.message}));
    }
  });
});

server.listen(PORT, HOST, () => console.log(`chat:${PORT}: http://${HOST}:${PORT}/`));

async function stop() {
  wss.close();
  for (const client of wss.clients) client.terminate();
  server.close();
  await broker.stop();
  process.exit(0);
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
