// The quickstart's demo backend: a page that shows what arrived from Gatehouse, and a JSON API.
import { createServer, type IncomingMessage, type Server } from 'node:http';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(name: string, req: IncomingMessage): string {
  const interesting = [
    'host',
    'x-forwarded-for',
    'x-forwarded-proto',
    'x-forwarded-host',
    'x-real-ip',
    'x-request-id',
    'via',
  ];
  const rows = interesting
    .map(
      (h) => `<tr><td><code>${h}</code></td><td><code>${esc(String(req.headers[h] ?? '-'))}</code></td></tr>`,
    )
    .join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Gatehouse quickstart</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1d2430}
 h1{font-size:1.6rem} .who{display:inline-block;padding:.15rem .6rem;border-radius:.4rem;background:${name === 'backend-a' ? '#dbeafe' : '#dcfce7'}}
 table{border-collapse:collapse;width:100%} td{border-bottom:1px solid #e5e7eb;padding:.3rem .5rem;vertical-align:top}
 code{font-size:.9em} li{margin:.3rem 0}
</style></head><body>
<h1>You reached <span class="who">${name}</span> through Gatehouse</h1>
<p>Your browser talked to Gatehouse on port 8080. Gatehouse matched the route <code>site</code>, picked one of
two backends by round robin, and forwarded your request. <strong>Reload the page</strong>: the other backend answers.</p>
<h2>What the backend received</h2>
<table>${rows}</table>
<p>Gatehouse set <code>X-Forwarded-*</code> and <code>X-Real-IP</code> from your connection (a client cannot forge them),
added <code>Via</code>, and gave the request an id that is also in its access log line (in the terminal) and in the
response's <code>X-Request-Id</code> header.</p>
<h2>Try</h2>
<ul>
 <li><a href="/api/time">/api/time</a>: the <code>api</code> route strips <code>/api</code>, so the backend sees <code>${esc('/time')}</code>.
   It is rate limited: reload it quickly a dozen times to get a 429.</li>
 <li><code>bin/gatehouse explain -c examples/quickstart.yaml http://127.0.0.1:8080/api/time</code>: which route, and why.</li>
 <li>Stop one backend's port and watch the health check take it out (the other keeps serving).</li>
</ul>
<p>Configuration: <code>examples/quickstart.yaml</code>. Reference: <code>docs/configuration.md</code>.</p>
</body></html>`;
}

export function demoOrigin(name: string): Server {
  return createServer((req, res) => {
    if (req.url === '/healthz') return res.end('ok');
    if (req.url === '/time' || req.url?.startsWith('/time?')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(
        JSON.stringify({
          backend: name,
          time: new Date().toISOString(),
          path: req.url,
          requestId: req.headers['x-request-id'],
        }),
      );
    }
    if (req.url === '/favicon.ico') return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(page(name, req));
  });
}
