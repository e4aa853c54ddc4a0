// Every example config validates, starts, and serves each of its routes.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { jsonSchema } from '../src/config/schema.ts';
import { validateFile, validateText } from '../src/config/validate.ts';
import { start } from './helpers/gatehouse.ts';
import { send } from './helpers/http.ts';
import { type Origin, origin } from './helpers/origin.ts';
import { listenerUrl, spawnGatehouse } from './helpers/process.ts';

const dir = join(import.meta.dirname, '..', 'examples');
// examples/observability.yaml reads its admin token from the environment, as it should in production.
process.env.GATEHOUSE_ADMIN_TOKEN ??= 'examples-test-admin-token-0123';
const examples = readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f));

// Several origins, handed out in turn, so the targets of one upstream stay distinct.
let echoes: Origin[] = [];
before(async () => {
  echoes = await Promise.all([origin(), origin(), origin(), origin()]);
});
after(() => Promise.all(echoes.map((e) => e.close())));

test('there are examples', () => assert.ok(examples.length >= 3));

for (const file of examples) {
  test(`examples/${file} validates, starts, and serves every route`, async () => {
    assert.deepEqual((await validateFile(join(dir, file))).errors, []);
    let n = 0;
    // Same file, but listening on free loopback ports and with every target pointing at a test origin.
    const text = readFileSync(join(dir, file), 'utf8')
      .replace(/address: .*$/gm, 'address: "127.0.0.1:0"')
      .replace(/url: http:\/\/(?:\$\{[^}]*\}|[^\s},])+/g, () => `url: ${echoes[n++ % echoes.length].url}`)
      .replace(/trustedProxies: \[[^\]]*\]/g, 'trustedProxies: []');
    const v = validateText(text, file, { ...process.env });
    assert.deepEqual(v.errors, [], 'still valid with test addresses');
    const gh = await start(text.replace(/\$\{(\w+):-([^}]*)\}/g, '$2'));
    try {
      for (const r of v.config!.routes) {
        const listener = r.listeners?.[0];
        const host = r.match.hosts?.[0]?.replace('*.', 'x.') ?? 'example.test';
        const path =
          r.match.path ?? (r.match.pathPrefix ? `${r.match.pathPrefix.replace(/\/$/, '')}/x` : '/x');
        const query = r.match.query
          ? `?${new URLSearchParams(Object.entries(r.match.query).map(([k, q]) => [k, q === '*' ? '1' : q]))}`
          : '';
        const headers: Record<string, string> = { host, 'x-api-key': 'example' };
        for (const [k, h] of Object.entries(r.match.headers ?? {})) headers[k] = h === '*' ? '1' : h;
        const cookies = Object.entries(r.match.cookies ?? {}).map(([k, c]) => `${k}=${c === '*' ? '1' : c}`);
        if (cookies.length > 0) headers.cookie = cookies.join('; ');
        const reply = await send(`${gh.url(listener)}${path}${query}`, {
          method: r.match.methods?.[0] ?? 'GET',
          headers,
        });
        // A redirect route answers with its redirect, a respond route with its status; the rest 200.
        const expected = r.redirect?.status ?? r.respond?.status ?? 200;
        assert.equal(reply.status, expected, `route ${r.name}: ${reply.status} ${reply.body}`);
        if (v.config!.accessLog.format === 'json') {
          const last = gh.log.entries().at(-1);
          assert.equal(last?.route, r.name, `request for route ${r.name} took route ${last?.route}`);
        } else {
          // A text format: one line per request, with the request id the client got.
          assert.ok(gh.log.lines.at(-1)?.includes(String(reply.headers['x-request-id'])));
        }
      }
    } finally {
      await gh.close();
    }
  });
}

test('npm start (scripts/quickstart.ts) serves the demo page through Gatehouse', async () => {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [join(import.meta.dirname, '..', 'scripts', 'quickstart.ts')], {
    env: { ...process.env, GATEHOUSE_PORT: '0', DEMO_PORT_A: '0', DEMO_PORT_B: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const p = { child, stdout: '', stderr: '', exited: new Promise<number | null>((r) => child.on('exit', r)) };
  child.stderr.on('data', (c) => {
    p.stderr += c;
  });
  child.stdout.on('data', (c) => {
    p.stdout += c;
  });
  try {
    const url = await listenerUrl(p);
    const first = await send(url);
    assert.equal(first.status, 200);
    assert.match(first.body, /You reached <span class="who">backend-[ab]<\/span> through Gatehouse/);
    assert.equal(first.headers['x-content-type-options'], 'nosniff');
    const second = await send(url);
    assert.notEqual(
      /backend-[ab]/.exec(second.body)?.[0],
      /backend-[ab]/.exec(first.body)?.[0],
      'round robin',
    );
    const api = await send(`${url}/api/time`);
    assert.equal(JSON.parse(api.body).path, '/time');
  } finally {
    child.kill('SIGINT');
    assert.equal(await p.exited, 0);
  }
  assert.match(p.stdout, /"route":"site"/, 'access log on stdout');
  void spawnGatehouse;
});

test('gatehouse.schema.json is up to date with the schema', () => {
  const committed = JSON.parse(
    readFileSync(join(import.meta.dirname, '..', 'gatehouse.schema.json'), 'utf8'),
  );
  assert.deepEqual(committed, jsonSchema(), 'run `npm run schema` and commit the result');
});
