// 1 GiB up and 1 GiB down through Gatehouse with flat memory: bodies are streamed with
// backpressure both ways, never buffered.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { type Origin, origin } from '../helpers/origin.ts';
import { configFile, listenerUrl, type Proc, spawnGatehouse } from '../helpers/process.ts';

const GIB = 1024 ** 3;
const CHUNK = Buffer.alloc(1024 * 1024, 'g');

let up: Origin;
let proc: Proc;
let url: string;
let peakRss = 0;
let baselineRss = 0;
let sampler: NodeJS.Timeout;

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** A body of `n` bytes produced on demand (so the test itself holds no more than one chunk). */
function source(n: number): Readable {
  let left = n;
  return new Readable({
    read() {
      if (left <= 0) return this.push(null);
      const c = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
      left -= c.length;
      this.push(c);
    },
  });
}

before(async () => {
  up = await origin((req, res) => {
    if (req.method === 'POST') {
      let bytes = 0;
      req.on('data', (c: Buffer) => {
        bytes += c.length;
      });
      req.on('end', () => res.end(String(bytes)));
      return;
    }
    res.writeHead(200, { 'content-length': String(GIB) });
    source(GIB).pipe(res);
  });
  const file = await configFile(`
listeners: [{ name: web, address: "127.0.0.1:0" }]
limits: { maxRequestBody: 2gb }
accessLog: { enabled: false }
routes: [{ name: all, upstream: up }]
upstreams:
  up: { targets: [{ url: "${up.url}" }] }
`);
  proc = spawnGatehouse(['run', '-c', file]);
  url = await listenerUrl(proc);
  // bin/gatehouse runs the CLI in its own process on Node >= 22.18, or hands over to one child.
  const children = readFileSync(`/proc/${proc.child.pid}/task/${proc.child.pid}/children`, 'utf8').trim();
  const pid = children ? Number(children.split(' ')[0]) : (proc.child.pid as number);
  // Warm up (first request loads the rest of the code), then take the baseline.
  await new Promise<void>((r) =>
    request(`${url}/warm`, { method: 'POST', headers: { 'content-length': '1' } }, (res) =>
      res.resume().on('end', r),
    ).end('x'),
  );
  baselineRss = rssOf(pid);
  sampler = setInterval(() => {
    try {
      peakRss = Math.max(peakRss, rssOf(pid));
    } catch {}
  }, 50);
});

after(async () => {
  clearInterval(sampler);
  proc.child.kill('SIGTERM');
  await proc.exited;
  await up.close();
});

/** Memory may grow by socket buffers and garbage not yet collected, never by anything near the body's size. */
function report(what: string): void {
  const mib = (n: number) => (n / 2 ** 20).toFixed(0);
  console.log(
    `# ${what}: baseline RSS ${mib(baselineRss)} MiB, peak ${mib(peakRss)} MiB, for 1024 MiB streamed`,
  );
  assert.ok(peakRss - baselineRss < 160 * 2 ** 20, `RSS grew by ${mib(peakRss - baselineRss)} MiB`);
}

test('a 1 GiB upload streams through with flat memory', async () => {
  const answer = await new Promise<string>((resolve, reject) => {
    const req = request(
      `${url}/upload`,
      { method: 'POST', headers: { 'content-length': String(GIB) } },
      (res) => {
        let s = '';
        res.on('data', (c) => {
          s += c;
        });
        res.on('end', () => resolve(s));
      },
    );
    req.on('error', reject);
    source(GIB).pipe(req);
  });
  assert.equal(answer, String(GIB));
  report('upload');
});

test('a 1 GiB download streams through with flat memory, even to a slow reader', async () => {
  let received = 0;
  await new Promise<void>((resolve, reject) => {
    request(`${url}/download`, (res) => {
      assert.equal(res.headers['content-length'], String(GIB));
      let paused = false;
      res.on('data', (c: Buffer) => {
        received += c.length;
        // Read slowly for the first 64 MiB, so backpressure has to hold the upstream back.
        if (!paused && received < 64 * 2 ** 20 && received % (8 * 2 ** 20) < c.length) {
          paused = true;
          res.pause();
          setTimeout(() => {
            paused = false;
            res.resume();
          }, 100);
        }
      });
      res.on('end', resolve);
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
  assert.equal(received, GIB);
  report('download');
});
