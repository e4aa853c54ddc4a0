// ns per request head: our HTTP/1.1 parser (src/server/h1/parser.ts) against llhttp compiled to
// WebAssembly as undici ships it (lib/llhttp/llhttp_simd-wasm.js, an internal file of undici), both
// producing the same things for the caller: method, target and a flat raw-headers array of strings.
// Each head arrives as its own chunk (copied into wasm memory for llhttp, as undici's client does).
//   node bench/micro/h1-parser.ts [rounds]

import { createRequire } from 'node:module';
import { type H1Handler, H1Parser } from '../../src/server/h1/parser.ts';

const require = createRequire(import.meta.url);
const ROUNDS = Number(process.argv[2] ?? 11);

const heads: Record<string, Buffer> = {
  'curl (3 headers, 78 B)': Buffer.from(
    'GET /api/items?id=42 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n',
  ),
  'browser (11 headers)': Buffer.from(
    [
      'GET /index.html?utm_source=x HTTP/1.1',
      'Host: www.example.com',
      'User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
      'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
      'Accept-Language: en-US,en;q=0.5',
      'Accept-Encoding: gzip, deflate, br, zstd',
      'Connection: keep-alive',
      'Cookie: session=abc123def456; theme=dark; _ga=GA1.2.345678.901234',
      'Upgrade-Insecure-Requests: 1',
      'Sec-Fetch-Dest: document',
      'Sec-Fetch-Mode: navigate',
      'Priority: u=0, i',
      '',
      '',
    ].join('\r\n'),
  ),
  'proxy POST (8 headers, 16 B body)': Buffer.from(
    'POST /v1/orders HTTP/1.1\r\nHost: api.internal\r\nContent-Type: application/json\r\nContent-Length: 16\r\n' +
      'X-Request-Id: 0f8fad5b-d9cb-469f-a165-70867728950e\r\nX-Forwarded-For: 203.0.113.7\r\n' +
      'X-Forwarded-Proto: https\r\nAuthorization: Bearer abcdefghijklmnopqrstuvwxyz\r\n\r\n{"item":"x","n":1}'.slice(
        0,
        -2,
      ),
  ),
};

let sink = 0;

// --- ours ---------------------------------------------------------------------------------------------
class Sink implements H1Handler {
  method = '';
  target = '';
  raw: string[] = [];
  onHead(method: string, target: string, _v: number, raw: string[]): void {
    this.method = method;
    this.target = target;
    this.raw = raw;
  }
  onBody(chunk: Buffer): void {
    sink += chunk.length;
  }
  onTrailers(): void {}
  onMessageComplete(): void {
    sink += this.raw.length;
  }
}
const ours = new H1Parser(new Sink(), { maxHeadBytes: 16384, maxUriLength: 8192, maxHeaderCount: 100 });
function runOurs(buf: Buffer): void {
  if (ours.execute(buf) !== buf.length) throw new Error(`ours refused: ${ours.errorCode}`);
}

// --- llhttp (wasm, from undici) -------------------------------------------------------------------------
const constants = require('undici/lib/llhttp/constants.js') as {
  TYPE: Record<string, number>;
  ERROR: Record<string, number>;
};
const wasmBytes = require('undici/lib/llhttp/llhttp_simd-wasm.js') as Buffer;
const METHOD_NAMES = new Map<number, string>(
  Object.entries(require('undici/lib/llhttp/constants.js').METHODS as Record<string, number>).map(
    ([k, v]) => [v, k],
  ),
);
let cur: Buffer = Buffer.alloc(0);
let curPtr = 0;
let url = '';
let raw: string[] = [];
let exportsRef: Record<string, (...args: number[]) => number> & { memory: WebAssembly.Memory };
const str = (at: number, len: number) => cur.latin1Slice(at - curPtr, at - curPtr + len);
/** 0: a string per callback, as a straightforward binding would; 1: offsets, one decode per head. */
let llMode = 0;
const offs: number[] = [];
function span(at: number, len: number): void {
  offs.push(at - curPtr, at - curPtr + len);
}
const instance = new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array(wasmBytes)), {
  env: {
    wasm_on_url: (_p: number, at: number, len: number) => {
      if (llMode === 1) span(at, len);
      else url = str(at, len);
      return 0;
    },
    wasm_on_status: () => 0,
    wasm_on_message_begin: () => {
      raw = [];
      offs.length = 0;
      return 0;
    },
    wasm_on_header_field: (_p: number, at: number, len: number) => {
      if (llMode === 1) span(at, len);
      else raw.push(str(at, len));
      return 0;
    },
    wasm_on_header_value: (_p: number, at: number, len: number) => {
      if (llMode === 1) span(at, len);
      else raw.push(str(at, len));
      return 0;
    },
    wasm_on_headers_complete: (p: number) => {
      if (llMode === 1) {
        const lo = offs[0];
        const text = cur.latin1Slice(lo, offs[offs.length - 1]);
        url = text.slice(0, offs[1] - lo);
        for (let i = 2; i < offs.length; i += 2) raw.push(text.slice(offs[i] - lo, offs[i + 1] - lo));
      }
      const method = METHOD_NAMES.get(exportsRef.llhttp_get_method(p))!;
      sink += method.length + url.length + raw.length;
      return 0;
    },
    wasm_on_body: (_p: number, _at: number, len: number) => {
      sink += len;
      return 0;
    },
    wasm_on_message_complete: () => 0,
  },
});
exportsRef = instance.exports as typeof exportsRef;
const ll = exportsRef;
const parserPtr = ll.llhttp_alloc(constants.TYPE.REQUEST);
const bufSize = 65536;
const bufPtr = ll.malloc(bufSize);
let view = new Uint8Array(ll.memory.buffer, bufPtr, bufSize);
function runLlhttp(buf: Buffer): void {
  if (view.buffer !== ll.memory.buffer) view = new Uint8Array(ll.memory.buffer, bufPtr, bufSize);
  view.set(buf);
  cur = Buffer.from(ll.memory.buffer, bufPtr, buf.length);
  curPtr = bufPtr;
  const ret = ll.llhttp_execute(parserPtr, bufPtr, buf.length);
  if (ret !== constants.ERROR.OK) throw new Error(`llhttp refused: ${ret}`);
}
declare global {
  interface Buffer {
    latin1Slice(start: number, end: number): string;
  }
}

// --- measure ------------------------------------------------------------------------------------------
const runLlhttpStrings = (buf: Buffer) => {
  llMode = 0;
  runLlhttp(buf);
};
const runLlhttpOneDecode = (buf: Buffer) => {
  llMode = 1;
  runLlhttp(buf);
};
const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1];

/** ns per call of each fn on buf: rounds interleaved, so drift in machine load hits all alike. */
function measure(fns: ((b: Buffer) => void)[], buf: Buffer): number[] {
  const n = 100_000;
  for (const fn of fns) for (let i = 0; i < 50_000; i++) fn(buf); // warm-up
  const samples: number[][] = fns.map(() => []);
  for (let r = 0; r < ROUNDS; r++) {
    fns.forEach((fn, k) => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) fn(buf);
      samples[k].push(Number(process.hrtime.bigint() - t0) / n);
    });
  }
  return samples.map(median);
}

process.stdout.write(
  `node ${process.version}, undici ${require('undici/package.json').version}, median of ${ROUNDS} interleaved rounds of 100k\n`,
);
process.stdout.write(
  `${'head'.padEnd(36)}${'ours ns'.padStart(10)}${'llhttp wasm ns'.padStart(16)}${'ratio'.padStart(8)}${'llhttp, 1 decode'.padStart(18)}${'ratio'.padStart(8)}\n`,
);
function row(name: string, buf: Buffer, per = 1): void {
  const [a, b, c] = measure([runOurs, runLlhttpStrings, runLlhttpOneDecode], buf).map((x) => x / per);
  process.stdout.write(
    `${name.padEnd(36)}${a.toFixed(0).padStart(10)}${b.toFixed(0).padStart(16)}${(b / a).toFixed(2).padStart(8)}${c.toFixed(0).padStart(18)}${(c / a).toFixed(2).padStart(8)}\n`,
  );
}
for (const [name, buf] of Object.entries(heads)) row(name, buf);
// ten pipelined browser heads in one chunk
row(
  'browser ×10 pipelined, per head',
  Buffer.concat(Array.from({ length: 10 }, () => heads['browser (11 headers)'])),
  10,
);
if (sink === 42) process.stdout.write('\n');
