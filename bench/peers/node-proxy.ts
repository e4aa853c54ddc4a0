// The "minimal proxy" peer: node:http + an undici Pool, no routing, no forwarding headers, no log.
// What any Node proxy costs at the least.
import { createServer } from 'node:http';
import { Pool } from 'undici';

const [port, originUrl] = process.argv.slice(2);
const pool = new Pool(originUrl, { connections: 256, pipelining: 1 });
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'proxy-connection']);

createServer((req, res) => {
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP.has(k)) headers[k] = v;
  pool.stream(
    {
      path: req.url ?? '/',
      method: req.method ?? 'GET',
      headers,
      body: req.method === 'GET' || req.method === 'HEAD' ? null : req,
    },
    ({ statusCode, headers: h }) => {
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP.has(k)) out[k] = v;
      res.writeHead(statusCode, out);
      return res;
    },
    (err) => {
      if (err && !res.headersSent) res.writeHead(502).end();
    },
  );
}).listen(Number(port), '127.0.0.1');
