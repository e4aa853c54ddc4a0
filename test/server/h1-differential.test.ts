// Differential test: our HTTP/1.1 request parser against Node's llhttp, run for real (a node:http
// server on 127.0.0.1, raw bytes over TCP). Ours must refuse whatever node refuses, and where both
// accept, see the same requests (method, target, raw headers, body, trailers). Where ours refuses
// what node accepts, the case must be in STRICTER with the reason; an entry that no longer applies
// fails too, so the list stays true.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FLAG_UPGRADE } from '../../src/server/h1/parser.ts';
import { framingCombos, type H1Case, INVALID, mutations, UPGRADES, VALID } from '../helpers/h1-corpus.ts';
import { cut, DEFAULT_LIMITS, type H1Event, parsePieces, parseWhole } from '../helpers/h1-record.ts';
import { NodeOracle, type OracleMessage, type OracleResult } from '../helpers/llhttp-oracle.ts';

/** Cases where ours deliberately refuses what node:http accepts, and why. */
const STRICTER: Record<string, string> = {
  // versions and request lines
  'version HTTP/2.0': 'only HTTP/1.0 and 1.1 are HTTP/1 (505); llhttp also takes 2.0',
  'version HTTP/0.9': 'only HTTP/1.0 and 1.1 (505); llhttp also takes 0.9',
  'version missing (HTTP/0.9 request)': 'HTTP/0.9 simple requests are not supported (RFC 9112 §2.3)',
  'request line double spaces': 'RFC 9112 §3: exactly one SP between the parts of the request line',
  'version other protocol':
    'only HTTP/ versions; llhttp also takes RTSP/1.0 with methods RTSP shares with HTTP',
  'version ICE': 'only HTTP/ versions; llhttp also takes ICE/1.0 with SOURCE',
  'bare LF before request': 'only CRLF ends lines; llhttp skips bare LFs before a request',
  // targets (RFC 9112 §3.2)
  'target fragment': 'a fragment is not part of a request-target',
  'target asterisk with GET': 'asterisk-form is for OPTIONS only',
  'target asterisk with path': 'asterisk-form is exactly "*"',
  'absolute-form userinfo':
    'userinfo in an http(s) URI is deprecated and a phishing vector (RFC 9110 §4.2.4)',
  'absolute-form empty authority': 'an http URI with an empty host is invalid (RFC 9110 §4.2.1)',
  'absolute-form other scheme': 'a proxy for http and https only takes those schemes in absolute-form',
  'absolute-form double @': 'no userinfo in absolute-form',
  'connect origin-form': 'CONNECT takes authority-form only (RFC 9112 §3.2.3)',
  'connect without port': 'authority-form for CONNECT needs a port (RFC 9110 §9.3.6)',
  'connect with userinfo': 'authority-form has no userinfo',
  'connect with a body':
    'a CONNECT request body has no defined meaning (RFC 9110 §9.3.6); refused, not ignored',
  // Host (RFC 9112 §3.2: 400 for more than one Host or an invalid one)
  'host twice same': 'more than one Host is a 400 (RFC 9112 §3.2)',
  'host twice different': 'more than one Host is a 400 (RFC 9112 §3.2)',
  'host twice different case': 'more than one Host is a 400 (RFC 9112 §3.2)',
  'host with space': 'Host must be uri-host [":" port]',
  'host with userinfo': 'Host must be uri-host [":" port]',
  'host with slash': 'Host must be uri-host [":" port]',
  // transfer codings
  'TE identity, chunked': 'no transfer coding but chunked is implemented: 501 (RFC 9112 §6.1)',
  'TE gzip, chunked': 'no transfer coding but chunked is implemented: 501 (RFC 9112 §6.1)',
  'TE gzip then chunked headers': 'no transfer coding but chunked is implemented: 501 (RFC 9112 §6.1)',
  'TE empty element first': 'an empty list element in Transfer-Encoding is refused, not skipped',
  'TE in HTTP/1.0': 'Transfer-Encoding in HTTP/1.0 means faulty framing (RFC 9112 §6.1)',
  // chunked framing
  'chunk ext empty name': 'a chunk extension needs a name',
  'chunk ext empty value': 'an "=" needs a token or quoted-string after it',
  'chunk ext double semicolon': 'a chunk extension needs a name',
  'chunk ext long': 'chunk-size lines with extensions are limited to 4 KiB (node: 16 KiB of extensions)',
  'trailer Host': 'Host is a routing field, not allowed in trailers (RFC 9110 §6.5.1)',
  // limits
  'target over 8 KiB': 'maxUriLength (414); node only counts the target into its 16 KiB head limit',
  'header count over 100': 'maxHeaderCount (431); node keeps 2000 fields and drops the rest silently',
};

type Verdict = 'same' | 'stricter' | 'looser' | 'different';

interface Outcome {
  completed: number;
  error: string | null;
}

function ours(events: H1Event[]): Outcome {
  let completed = 0;
  let error: string | null = null;
  for (const e of events) {
    if (e.type === 'complete') completed++;
    if (e.type === 'error') error = `${e.code} ${e.status}`;
  }
  return { completed, error };
}

/** Our requests, in node's terms. */
function ourMessages(events: H1Event[]): OracleMessage[] {
  const out: OracleMessage[] = [];
  let cur: OracleMessage | null = null;
  for (const e of events) {
    if (e.type === 'head') {
      const kind = e.flags & FLAG_UPGRADE ? (e.method === 'CONNECT' ? 'connect' : 'upgrade') : 'request';
      cur = {
        kind,
        method: e.method,
        url: e.target,
        versionMajor: 1,
        versionMinor: e.versionMinor,
        rawHeaders: e.rawHeaders,
        body: Buffer.alloc(0),
        rawTrailers: [],
      };
    } else if (e.type === 'body' && cur) cur.body = Buffer.concat([cur.body, Buffer.from(e.data, 'latin1')]);
    else if (e.type === 'trailers' && cur) cur.rawTrailers = e.rawTrailers;
    else if (e.type === 'complete' && cur) {
      out.push(cur);
      cur = null;
    }
  }
  return out;
}

function comparable(m: OracleMessage) {
  return {
    kind: m.kind,
    method: m.method,
    url: m.url,
    version: `${m.versionMajor}.${m.versionMinor}`,
    rawHeaders: m.rawHeaders,
    // node hands over the socket after an upgrade's head; its body is not compared
    body: m.kind === 'request' ? m.body.toString('latin1') : '',
    rawTrailers: m.rawTrailers,
  };
}

function verdict(node: OracleResult, events: H1Event[]): { verdict: Verdict; detail: string } {
  const o = ours(events);
  const n = { completed: node.messages.length, error: node.error };
  const detail = `node: ${n.completed} request(s), error ${n.error}; ours: ${o.completed}, error ${o.error}`;
  const mine = ourMessages(events);
  for (let i = 0; i < Math.min(mine.length, node.messages.length); i++) {
    try {
      assert.deepEqual(comparable(mine[i]), comparable(node.messages[i]));
    } catch (err) {
      return { verdict: 'different', detail: `request ${i} differs: ${(err as Error).message}` };
    }
  }
  if (o.completed > n.completed || (o.completed === n.completed && n.error !== null && o.error === null)) {
    return { verdict: 'looser', detail };
  }
  if (o.completed < n.completed || (o.error !== null && n.error === null))
    return { verdict: 'stricter', detail };
  return { verdict: 'same', detail };
}

const corpus: H1Case[] = [...VALID, ...UPGRADES, ...INVALID];

describe('HTTP/1.1 parser against node:http (llhttp)', () => {
  const oracle = new NodeOracle();
  const results = new Map<string, OracleResult>();
  // Generated inputs (seeded): here ours may be stricter without a reason, never looser or different.
  // H1_FUZZ_SCALE=15 H1_FUZZ_SEED=7 runs 15× more (and other) inputs, ~15 s.
  const scale = Number(process.env.H1_FUZZ_SCALE ?? 1);
  const seed = Number(process.env.H1_FUZZ_SEED ?? 0);
  const generated: { name: string; inputs: Buffer[]; results: OracleResult[] }[] = [
    { name: 'mutations of the valid cases', inputs: mutations(0x6a7e + seed, 600 * scale), results: [] },
    {
      name: 'combinations of framing headers and bodies',
      inputs: framingCombos(0xf2a3 + seed, 400 * scale),
      results: [],
    },
  ];

  before(async () => {
    await oracle.start();
    // A few connections at a time; each input has its own.
    const queue: (() => Promise<void>)[] = corpus.map((c) => async () => {
      results.set(c.name, await oracle.run(c.bytes));
    });
    for (const g of generated) {
      g.inputs.forEach((bytes, i) => {
        queue.push(async () => {
          g.results[i] = await oracle.run(bytes);
        });
      });
    }
    const worker = async () => {
      for (let job = queue.shift(); job; job = queue.shift()) await job();
    };
    await Promise.all(Array.from({ length: 12 }, worker));
  });

  after(() => oracle.close());

  it('the corpus has unique names and the allow-list names only corpus cases', () => {
    const names = new Set(corpus.map((c) => c.name));
    assert.equal(names.size, corpus.length, 'duplicate case names');
    for (const name of Object.keys(STRICTER))
      assert.ok(names.has(name), `STRICTER names an unknown case: ${name}`);
  });

  it('node accepts every VALID and UPGRADES case (the corpus means what it says)', () => {
    for (const c of [...VALID, ...UPGRADES]) {
      const r = results.get(c.name)!;
      assert.equal(r.error, null, `${c.name}: node refused (${r.error})`);
      assert.ok(r.messages.length > 0, `${c.name}: node emitted no request`);
    }
  });

  for (const g of generated) {
    it(`seeded fuzz: ${g.name} (${g.inputs.length} inputs)`, () => {
      const count: Record<Verdict, number> = { same: 0, stricter: 0, looser: 0, different: 0 };
      g.inputs.forEach((bytes, i) => {
        const { verdict: v, detail } = verdict(g.results[i], parseWhole(bytes, DEFAULT_LIMITS));
        count[v]++;
        const input = JSON.stringify(bytes.toString('latin1'));
        assert.notEqual(v, 'looser', `ours accepts what node refuses: ${input}. ${detail}`);
        assert.notEqual(v, 'different', `${input}: ${detail}`);
      });
      // the generators must produce both kinds, or they test little
      assert.ok(count.same > g.inputs.length / 4, JSON.stringify(count));
      assert.ok(g.results.filter((r) => r.error !== null).length > g.inputs.length / 10, 'enough refusals');
    });
  }

  for (const c of corpus) {
    it(c.name, () => {
      const node = results.get(c.name)!;
      const events = parseWhole(c.bytes, DEFAULT_LIMITS);
      const { verdict: v, detail } = verdict(node, events);
      const reason = STRICTER[c.name];
      assert.notEqual(v, 'looser', `ours accepts what node refuses. ${detail}`);
      assert.notEqual(v, 'different', detail);
      if (reason) assert.equal(v, 'stricter', `allow-listed as stricter (${reason}) but: ${detail}`);
      else assert.equal(v, 'same', `ours is stricter without a reason in STRICTER. ${detail}`);
      // and the same result when the bytes arrive one at a time
      const bytewise = parsePieces(
        cut(
          c.bytes,
          Array.from({ length: c.bytes.length - 1 }, (_, i) => i + 1),
        ),
        DEFAULT_LIMITS,
      );
      assert.deepEqual(bytewise, events, 'fed one byte at a time');
    });
  }
});
