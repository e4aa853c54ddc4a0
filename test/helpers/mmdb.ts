// A small MaxMind DB writer for tests, from the published "MaxMind DB File Format Specification" v2.0:
// a binary search tree (24, 28 or 32-bit records), a 16-byte zero separator, the data section, then
// "\xAB\xCD\xEFMaxMind.com" and the metadata map.
//
//   writeMmdb([{ cidr: '81.2.69.0/24', record: { country: { iso_code: 'GB' }, continent: { code: 'EU' } } }])
//
// The tree is IPv6 by default, with IPv4 networks under ::/96 and, like MaxMind's own databases,
// ::ffff:0:0/96 (IPv4-mapped) and 2002::/16 (6to4) pointing at the IPv4 subtree. Nested networks:
// the longest prefix wins, whatever the input order. Repeated values (map keys, strings, maps, whole
// records) are written once and referred to with pointers, as MaxMind's writer does.
//
// JavaScript values map to: string → UTF-8 string; integer 0..2^32-1 → uint32; negative integer ≥ -2^31
// → int32; other numbers → double; bigint → uint64 (uint128 above 2^64-1); boolean; Uint8Array → bytes;
// array; plain object → map. `mmdbValue.uint16(7)`, `.float(1.5)`, `.uint128(…)` etc. pick a type.

import { isIPv4, isIPv6 } from 'node:net';

type MmdbTypeName = 'uint16' | 'uint32' | 'int32' | 'uint64' | 'uint128' | 'double' | 'float' | 'bytes';

/** A value with its MaxMind DB type chosen explicitly. */
export class MmdbTyped {
  readonly type: MmdbTypeName;
  readonly value: number | bigint | Uint8Array;
  constructor(type: MmdbTypeName, value: number | bigint | Uint8Array) {
    this.type = type;
    this.value = value;
  }
}

export type MmdbValue =
  | string
  | number
  | bigint
  | boolean
  | Uint8Array
  | MmdbTyped
  | readonly MmdbValue[]
  | { readonly [key: string]: MmdbValue };

export const mmdbValue = {
  uint16: (n: number) => new MmdbTyped('uint16', n),
  uint32: (n: number) => new MmdbTyped('uint32', n),
  int32: (n: number) => new MmdbTyped('int32', n),
  uint64: (n: number | bigint) => new MmdbTyped('uint64', n),
  uint128: (n: number | bigint) => new MmdbTyped('uint128', n),
  double: (n: number) => new MmdbTyped('double', n),
  float: (n: number) => new MmdbTyped('float', n),
  bytes: (b: Uint8Array) => new MmdbTyped('bytes', b),
};

export interface MmdbNetwork {
  /** `81.2.69.0/24`, `2001:db8::/32`; a bare address is a /32 or /128. Host bits are ignored. */
  readonly cidr: string;
  readonly record: MmdbValue;
}

export interface MmdbOptions {
  /** 6 (default): IPv4 networks go under ::/96. 4: IPv4 networks only. */
  readonly ipVersion?: 4 | 6;
  /** Bits per search-tree record (default 28, as GeoLite2-Country). */
  readonly recordSize?: 24 | 28 | 32;
  /** For IPv6 trees with IPv4 data: point ::ffff:0:0/96 and 2002::/16 at the IPv4 subtree (default true). */
  readonly ipv4Aliases?: boolean;
  /** Write repeated values once and point at them (default true). */
  readonly dedupe?: boolean;
  readonly databaseType?: string;
  readonly description?: string;
  readonly languages?: readonly string[];
  /** Unix seconds (default: now). */
  readonly buildEpoch?: number;
}

export const METADATA_MARKER = Buffer.from([0xab, 0xcd, 0xef, ...Buffer.from('MaxMind.com', 'latin1')]);

// Data types (the spec's numbers).
const T = {
  pointer: 1,
  string: 2,
  double: 3,
  bytes: 4,
  uint16: 5,
  uint32: 6,
  map: 7,
  int32: 8,
  uint64: 9,
  uint128: 10,
  array: 11,
  boolean: 14,
  float: 15,
} as const;

const MAX_SIZE = 65821 + 0xffffff;

/** Writes a MaxMind DB file holding `networks`. */
export function writeMmdb(networks: readonly MmdbNetwork[], options: MmdbOptions = {}): Buffer {
  const ipVersion = options.ipVersion ?? 6;
  const recordSize = options.recordSize ?? 28;
  if (ipVersion !== 4 && ipVersion !== 6) throw new Error(`ipVersion must be 4 or 6, not ${ipVersion}`);
  if (recordSize !== 24 && recordSize !== 28 && recordSize !== 32)
    throw new Error(`recordSize must be 24, 28 or 32, not ${recordSize}`);

  // The data section first: each distinct record once; the tree refers to records by offset.
  const data = new DataWriter(options.dedupe ?? true);
  const parsed = networks.map((n, i) => {
    const { bits, prefix } = parseCidr(n.cidr, ipVersion);
    return { bits, prefix, offset: data.writeRecord(n.record), i };
  });

  // Shorter prefixes first, so a longer one inserted later splits the shorter one's leaf.
  parsed.sort((a, b) => a.prefix - b.prefix || a.i - b.i);
  const root = new TreeNode();
  const seen = new Set<string>();
  for (const p of parsed) {
    const key = `${Buffer.from(p.bits).toString('hex')}/${p.prefix}`;
    if (seen.has(key)) throw new Error(`network ${networks[p.i].cidr} is listed twice`);
    seen.add(key);
    insert(root, p.bits, p.prefix, { offset: p.offset });
  }
  if (ipVersion === 6 && (options.ipv4Aliases ?? true)) addIpv4Aliases(root);

  // Number the nodes breadth-first from the root (node 0); aliased subtrees are numbered once.
  const numbers = new Map<TreeNode, number>([[root, 0]]);
  const order: TreeNode[] = [root];
  for (let i = 0; i < order.length; i++) {
    for (const r of [order[i].left, order[i].right]) {
      if (r instanceof TreeNode && !numbers.has(r)) {
        numbers.set(r, order.length);
        order.push(r);
      }
    }
  }
  const nodeCount = order.length;
  const value = (r: TreeRecord): number =>
    r === null ? nodeCount : r instanceof TreeNode ? numbers.get(r)! : nodeCount + 16 + r.offset;
  const maxValue = nodeCount + 16 + data.size;
  if (maxValue >= 2 ** recordSize)
    throw new Error(
      `${recordSize}-bit records cannot address ${nodeCount} nodes and ${data.size} data bytes`,
    );

  const nodeBytes = recordSize / 4;
  const tree = Buffer.alloc(nodeCount * nodeBytes);
  for (const [n, node] of order.entries())
    writeNode(tree, n * nodeBytes, recordSize, value(node.left), value(node.right));

  const metadata = new DataWriter(false);
  metadata.write({
    binary_format_major_version: mmdbValue.uint16(2),
    binary_format_minor_version: mmdbValue.uint16(0),
    build_epoch: mmdbValue.uint64(BigInt(options.buildEpoch ?? Math.floor(Date.now() / 1000))),
    database_type: options.databaseType ?? 'Gatehouse-Test-Country',
    description: { en: options.description ?? 'Gatehouse test database' },
    ip_version: mmdbValue.uint16(ipVersion),
    languages: [...(options.languages ?? ['en'])],
    node_count: mmdbValue.uint32(nodeCount),
    record_size: mmdbValue.uint16(recordSize),
  });

  return Buffer.concat([tree, Buffer.alloc(16), data.bytes(), METADATA_MARKER, metadata.bytes()]);
}

// ---- the search tree ----

type TreeRecord = TreeNode | { readonly offset: number } | null;

class TreeNode {
  left: TreeRecord = null;
  right: TreeRecord = null;
  get(bit: number): TreeRecord {
    return bit ? this.right : this.left;
  }
  set(bit: number, r: TreeRecord): void {
    if (bit) this.right = r;
    else this.left = r;
  }
}

function bitAt(bits: Uint8Array, i: number): number {
  return (bits[i >> 3] >> (7 - (i & 7))) & 1;
}

/** The node holding the record for bit `depth` of `bits`, creating and splitting nodes on the way. */
function descend(root: TreeNode, bits: Uint8Array, depth: number): TreeNode {
  let node = root;
  for (let i = 0; i < depth; i++) {
    const bit = bitAt(bits, i);
    const r = node.get(bit);
    if (r instanceof TreeNode) {
      node = r;
      continue;
    }
    // Empty, or a shorter network's data: a new node whose both halves keep what was there.
    const next = new TreeNode();
    next.left = r;
    next.right = r;
    node.set(bit, next);
    node = next;
  }
  return node;
}

function insert(root: TreeNode, bits: Uint8Array, prefix: number, r: TreeRecord): void {
  if (prefix === 0) {
    root.left = r;
    root.right = r;
    return;
  }
  descend(root, bits, prefix - 1).set(bitAt(bits, prefix - 1), r);
}

function addIpv4Aliases(root: TreeNode): void {
  // The IPv4 space is ::/96: follow 96 zero bits (or stop at data covering it).
  let target: TreeRecord = root;
  for (let i = 0; i < 96 && target instanceof TreeNode; i++) target = target.left;
  if (target === null) return; // no IPv4 data
  for (const [alias, prefix] of [
    ['::ffff:0:0', 96],
    ['2002::', 16],
  ] as const) {
    const bits = parseIp(alias);
    const node = descend(root, bits, prefix - 1);
    const bit = bitAt(bits, prefix - 1);
    if (node.get(bit) instanceof TreeNode)
      throw new Error(`networks inside ${alias}/${prefix} clash with its IPv4 alias (ipv4Aliases: false)`);
    node.set(bit, target);
  }
}

function writeNode(buf: Buffer, at: number, size: 24 | 28 | 32, left: number, right: number): void {
  if (size === 24) {
    buf.writeUIntBE(left, at, 3);
    buf.writeUIntBE(right, at + 3, 3);
  } else if (size === 28) {
    // | left 23..0 | left 27..24, right 27..24 | right 23..0 |
    buf.writeUIntBE(left & 0xffffff, at, 3);
    buf[at + 3] = ((left >>> 24) << 4) | (right >>> 24);
    buf.writeUIntBE(right & 0xffffff, at + 4, 3);
  } else {
    buf.writeUInt32BE(left, at);
    buf.writeUInt32BE(right, at + 4);
  }
}

// ---- addresses ----

/** An address as 4 or 16 bytes, big-endian. */
export function parseIp(ip: string): Uint8Array {
  if (isIPv4(ip)) return Uint8Array.from(ip.split('.').map(Number));
  if (!isIPv6(ip) || ip.includes('%')) throw new Error(`not an IP address: ${JSON.stringify(ip)}`);
  let text = ip;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1].split('.').map(Number);
    text = text.slice(0, dotted.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const groups = (s: string | undefined) => (s ? s.split(':').map((g) => Number.parseInt(g, 16)) : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return out;
}

function parseCidr(cidr: string, ipVersion: 4 | 6): { bits: Uint8Array; prefix: number } {
  const slash = cidr.indexOf('/');
  const addr = slash === -1 ? cidr : cidr.slice(0, slash);
  const raw = parseIp(addr);
  const max = raw.length * 8;
  const len = slash === -1 ? String(max) : cidr.slice(slash + 1);
  const prefix = Number(len);
  if (!/^\d{1,3}$/.test(len) || prefix > max) throw new Error(`bad prefix length in ${cidr}`);
  if (raw.length === 16) {
    if (ipVersion === 4) throw new Error(`${cidr}: an IPv6 network in an IPv4 database`);
    return { bits: raw, prefix };
  }
  if (ipVersion === 4) return { bits: raw, prefix };
  const bits = new Uint8Array(16);
  bits.set(raw, 12);
  return { bits, prefix: 96 + prefix };
}

// ---- the data section ----

class DataWriter {
  readonly #chunks: Buffer[] = [];
  #size = 0;
  readonly #dedupe: boolean;
  /** Where each value (by a key of its type and content) was written. */
  readonly #written = new Map<string, number>();

  constructor(dedupe: boolean) {
    this.#dedupe = dedupe;
  }

  get size(): number {
    return this.#size;
  }

  bytes(): Buffer {
    return Buffer.concat(this.#chunks);
  }

  /** A record's offset: an identical record written before is reused. */
  writeRecord(value: MmdbValue): number {
    const key = keyOf(value);
    const known = this.#written.get(key);
    if (known !== undefined) return known;
    const at = this.#size;
    this.write(value);
    this.#written.set(key, at);
    return at;
  }

  write(value: MmdbValue): void {
    const key = this.#dedupe ? keyOf(value) : '';
    if (this.#dedupe) {
      const known = this.#written.get(key);
      if (known !== undefined) {
        const ptr = pointer(known);
        // A pointer only pays when it is shorter than the value (never for small numbers, booleans).
        if (ptr.length < encodedLengthAtLeast(value)) {
          this.#push(ptr);
          return;
        }
      }
    }
    const at = this.#size;
    if (typeof value === 'string') {
      const b = Buffer.from(value, 'utf8');
      this.#push(control(T.string, b.length), b);
    } else if (typeof value === 'boolean') {
      this.#push(control(T.boolean, value ? 1 : 0));
    } else if (typeof value === 'number') {
      if (Number.isInteger(value) && value >= 0 && value <= 0xffffffff)
        this.#uint(T.uint32, BigInt(value), 4);
      else if (Number.isInteger(value) && value < 0 && value >= -(2 ** 31)) this.#int32(value);
      else this.#double(value);
    } else if (typeof value === 'bigint') {
      if (value < 0n) throw new Error(`negative bigint ${value}: MaxMind DB has no signed 64/128-bit type`);
      if (value < 2n ** 64n) this.#uint(T.uint64, value, 8);
      else this.#uint(T.uint128, value, 16);
    } else if (value instanceof MmdbTyped) {
      this.#typed(value);
    } else if (value instanceof Uint8Array) {
      this.#push(control(T.bytes, value.length), Buffer.from(value));
    } else if (Array.isArray(value)) {
      this.#push(control(T.array, value.length));
      for (const v of value) this.write(v);
    } else if (typeof value === 'object' && value !== null) {
      const entries = Object.entries(value as Record<string, MmdbValue>);
      this.#push(control(T.map, entries.length));
      for (const [k, v] of entries) {
        this.write(k);
        this.write(v);
      }
    } else {
      throw new Error(`cannot store ${String(value)} in a MaxMind DB`);
    }
    if (this.#dedupe && !this.#written.has(key)) this.#written.set(key, at);
  }

  #typed(t: MmdbTyped): void {
    const v = t.value;
    switch (t.type) {
      case 'bytes':
        this.#push(control(T.bytes, (v as Uint8Array).length), Buffer.from(v as Uint8Array));
        return;
      case 'double':
        this.#double(Number(v));
        return;
      case 'float': {
        const b = Buffer.alloc(4);
        b.writeFloatBE(Number(v));
        this.#push(control(T.float, 4), b);
        return;
      }
      case 'int32':
        this.#int32(Number(v));
        return;
      default: {
        const width = { uint16: 2, uint32: 4, uint64: 8, uint128: 16 }[t.type];
        this.#uint(T[t.type], BigInt(v as number | bigint), width);
      }
    }
  }

  #uint(type: number, v: bigint, width: number): void {
    if (v < 0n || v >= 2n ** BigInt(width * 8))
      throw new Error(`${v} does not fit a ${width * 8}-bit unsigned int`);
    // Big-endian, leading zero bytes dropped (0 has no payload at all).
    const bytes: number[] = [];
    for (let x = v; x > 0n; x >>= 8n) bytes.unshift(Number(x & 0xffn));
    this.#push(control(type, bytes.length), Buffer.from(bytes));
  }

  #int32(v: number): void {
    if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) throw new Error(`${v} is not a 32-bit int`);
    if (v >= 0) {
      this.#uint(T.int32, BigInt(v), 4);
      return;
    }
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    this.#push(control(T.int32, 4), b);
  }

  #double(v: number): void {
    const b = Buffer.alloc(8);
    b.writeDoubleBE(v);
    this.#push(control(T.double, 8), b);
  }

  #push(...bufs: Buffer[]): void {
    for (const b of bufs) {
      this.#chunks.push(b);
      this.#size += b.length;
    }
  }
}

/** The control byte(s) for a type and a payload size (or a map's/array's entry count). */
function control(type: number, size: number): Buffer {
  if (!Number.isInteger(size) || size < 0 || size > MAX_SIZE) throw new Error(`size ${size} out of range`);
  let bits: number;
  let extra: Buffer;
  if (size < 29) {
    bits = size;
    extra = Buffer.alloc(0);
  } else if (size < 285) {
    bits = 29;
    extra = Buffer.from([size - 29]);
  } else if (size < 65821) {
    bits = 30;
    extra = Buffer.alloc(2);
    extra.writeUInt16BE(size - 285);
  } else {
    bits = 31;
    extra = Buffer.alloc(3);
    extra.writeUIntBE(size - 65821, 0, 3);
  }
  // Types 1..7 sit in the control byte's top 3 bits; the others are "extended": 0 there, then type - 7.
  const head = type <= 7 ? Buffer.from([(type << 5) | bits]) : Buffer.from([bits, type - 7]);
  return Buffer.concat([head, extra]);
}

/** A pointer to a data-section offset: 001SSVVV and 1–4 more bytes. */
function pointer(offset: number): Buffer {
  if (offset < 2048) return Buffer.from([0x20 | (offset >> 8), offset & 0xff]);
  if (offset < 526336) {
    const v = offset - 2048;
    return Buffer.from([0x28 | (v >> 16), (v >> 8) & 0xff, v & 0xff]);
  }
  if (offset < 526336 + 2 ** 27) {
    const v = offset - 526336;
    return Buffer.from([0x30 | (v >>> 24), (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff]);
  }
  const b = Buffer.alloc(5);
  b[0] = 0x38;
  b.writeUInt32BE(offset, 1);
  return b;
}

/** Roughly how long a value's encoding is: enough to tell whether a pointer would be shorter. */
function encodedLengthAtLeast(value: MmdbValue): number {
  if (typeof value === 'string') return 1 + Buffer.byteLength(value, 'utf8');
  if (Array.isArray(value)) return value.length === 0 ? 2 : Number.POSITIVE_INFINITY;
  if (typeof value === 'object' && !(value instanceof MmdbTyped) && !(value instanceof Uint8Array))
    return Object.keys(value).length === 0 ? 1 : Number.POSITIVE_INFINITY;
  return 1; // numbers, booleans, bytes: keep them inline
}

/** A string naming a value's type and content, for deduplication. */
function keyOf(value: MmdbValue): string {
  if (typeof value === 'string') return `s${JSON.stringify(value)}`;
  if (typeof value === 'number') return `n${Object.is(value, -0) ? '-0' : String(value)}`;
  if (typeof value === 'bigint') return `b${value}`;
  if (typeof value === 'boolean') return value ? 'T' : 'F';
  if (value instanceof MmdbTyped)
    return `${value.type}(${value.value instanceof Uint8Array ? Buffer.from(value.value).toString('hex') : String(value.value)})`;
  if (value instanceof Uint8Array) return `x${Buffer.from(value).toString('hex')}`;
  if (Array.isArray(value)) return `[${value.map(keyOf).join(',')}]`;
  return `{${Object.entries(value as Record<string, MmdbValue>)
    .map(([k, v]) => `${JSON.stringify(k)}:${keyOf(v)}`)
    .join(',')}}`;
}

// ---- walking a file's tree (to list what a database holds) ----

/**
 * Every network with data in a MaxMind DB file, in address order: IPv4 networks of an IPv6 tree
 * (under ::/96) as IPv4 CIDRs; the ::ffff:0:0/96 and 2002::/16 aliases (subtrees reached a second
 * time) are skipped.
 */
export function listNetworks(
  file: Buffer,
  meta: { nodeCount: number; recordSize: number; ipVersion: number },
): string[] {
  const { nodeCount, recordSize, ipVersion } = meta;
  const nodeBytes = recordSize / 4;
  const read = (node: number, bit: number): number => {
    const at = node * nodeBytes;
    if (recordSize === 24) return file.readUIntBE(at + bit * 3, 3);
    if (recordSize === 32) return file.readUInt32BE(at + bit * 4);
    const middle = file[at + 3];
    return bit
      ? ((middle & 0x0f) << 24) | file.readUIntBE(at + 4, 3)
      : ((middle & 0xf0) << 20) | file.readUIntBE(at, 3);
  };
  const width = ipVersion === 6 ? 128 : 32;
  const out: string[] = [];
  const visited = new Set<number>();
  const walk = (node: number, depth: number, prefix: bigint): void => {
    if (visited.has(node)) return;
    visited.add(node);
    for (const bit of [0, 1]) {
      const r = read(node, bit);
      const p = (prefix << 1n) | BigInt(bit);
      if (r < nodeCount) walk(r, depth + 1, p);
      else if (r > nodeCount) out.push(formatNetwork(p << BigInt(width - depth - 1), depth + 1, width));
    }
  };
  walk(0, 0, 0n);
  return out;
}

function formatNetwork(address: bigint, prefix: number, width: number): string {
  if (width === 32 || (address >> 32n === 0n && prefix >= 96)) {
    const v4 = Number(address & 0xffffffffn);
    return `${v4 >>> 24}.${(v4 >> 16) & 255}.${(v4 >> 8) & 255}.${v4 & 255}/${width === 32 ? prefix : prefix - 96}`;
  }
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((address >> BigInt(i * 16)) & 0xffffn).toString(16));
  return `${groups.join(':')}/${prefix}`;
}

/** The first and last address of a CIDR, as text. */
export function networkBounds(cidr: string): [string, string] {
  const [addr, len] = cidr.split('/');
  const raw = parseIp(addr);
  const width = raw.length * 8;
  let n = 0n;
  for (const b of raw) n = (n << 8n) | BigInt(b);
  const host = (1n << BigInt(width - Number(len))) - 1n;
  const first = n & ~host;
  const last = first | host;
  const text = (v: bigint): string => {
    if (width === 32) return formatNetwork(v, 32, 32).replace(/\/32$/, '');
    return formatNetwork(v, 128, 128).replace(/\/128$/, '');
  };
  return [text(first), text(last)];
}
