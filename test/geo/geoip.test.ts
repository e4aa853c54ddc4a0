import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { Reader } from 'maxmind';
import { type GeoInfo, normalizeAddress, openGeoDb } from '../../src/geo/geoip.ts';
import { listNetworks, type MmdbNetwork, mmdbValue, networkBounds, writeMmdb } from '../helpers/mmdb.ts';

const FIXTURES = new URL('../fixtures/geoip/', import.meta.url);
const COUNTRY_TEST = new URL('GeoLite2-Country-Test.mmdb', FIXTURES).pathname;
const CITY_TEST = new URL('GeoIP2-City-Test.mmdb', FIXTURES).pathname;

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-geoip-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
/** A database written to a fresh file; returns its path. */
function dbFile(networks: readonly MmdbNetwork[], options?: Parameters<typeof writeMmdb>[1]): string {
  const path = join(dir, `db${++files}.mmdb`);
  writeFileSync(path, writeMmdb(networks, options));
  return path;
}
/** Replaces a file the way updaters do: write a temporary file beside it, rename it over. */
function replaceAtomically(path: string, content: Buffer): void {
  const tmp = `${path}.tmp${++files}`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}
async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const geo = (country: string, continent: string) => ({
  country: { iso_code: country },
  continent: { code: continent },
});
const plain = (info: GeoInfo | null) => (info === null ? null : { ...info });

const NETWORKS: MmdbNetwork[] = [
  { cidr: '81.2.0.0/16', record: geo('DE', 'EU') },
  { cidr: '81.2.69.0/24', record: geo('GB', 'EU') },
  { cidr: '81.2.69.128/25', record: geo('AT', 'EU') }, // nested twice
  { cidr: '203.0.113.7/32', record: geo('AU', 'OC') },
  { cidr: '2001:db8::/32', record: geo('JP', 'AS') },
  { cidr: '2001:db8:1::/48', record: geo('CH', 'EU') },
  { cidr: 'fe80::/10', record: geo('ZZ', 'AN') },
  // Only the registered country (anycast-like ranges): that one is used.
  { cidr: '198.51.100.0/24', record: { registered_country: { iso_code: 'US' }, continent: { code: 'NA' } } },
  { cidr: '192.0.2.0/24', record: { continent: { code: 'EU' } } },
  { cidr: '100.64.0.0/10', record: { isp: 'no geo data' } },
];
const EXPECT: [string, { country?: string; continent?: string } | null][] = [
  ['81.2.1.1', { country: 'DE', continent: 'EU' }],
  ['81.2.255.255', { country: 'DE', continent: 'EU' }],
  ['81.2.69.0', { country: 'GB', continent: 'EU' }],
  ['81.2.69.127', { country: 'GB', continent: 'EU' }],
  ['81.2.69.128', { country: 'AT', continent: 'EU' }],
  ['81.2.69.255', { country: 'AT', continent: 'EU' }],
  ['81.3.0.0', null],
  ['81.1.255.255', null],
  ['203.0.113.7', { country: 'AU', continent: 'OC' }],
  ['203.0.113.8', null],
  ['::ffff:81.2.69.200', { country: 'AT', continent: 'EU' }],
  ['::FFFF:81.2.1.1', { country: 'DE', continent: 'EU' }],
  ['0:0:0:0:0:ffff:5102:4501', { country: 'GB', continent: 'EU' }],
  ['2001:db8::1', { country: 'JP', continent: 'AS' }],
  ['2001:DB8:FFFF::1', { country: 'JP', continent: 'AS' }],
  ['2001:db8:1::abcd', { country: 'CH', continent: 'EU' }],
  ['2001:db9::', null],
  ['fe80::1%eth0', { country: 'ZZ', continent: 'AN' }],
  ['198.51.100.9', { country: 'US', continent: 'NA' }],
  ['192.0.2.1', { continent: 'EU' }],
  ['100.64.0.1', null],
  ['8.8.8.8', null],
  ['::1', null],
];

describe('the test writer (test/helpers/mmdb.ts), read back with the maxmind reader', () => {
  for (const recordSize of [24, 28, 32] as const) {
    test(`${recordSize}-bit records: v4, v6, nested networks, IPv4 aliases, misses`, () => {
      const r = new Reader(writeMmdb(NETWORKS, { recordSize, databaseType: 'Test-Country' }));
      assert.equal(r.metadata.recordSize, recordSize);
      assert.equal(r.metadata.ipVersion, 6);
      assert.equal(r.metadata.databaseType, 'Test-Country');
      assert.equal(r.metadata.binaryFormatMajorVersion, 2);
      assert.deepEqual(r.metadata.description, { en: 'Gatehouse test database' });
      assert.deepEqual(r.get('81.2.69.1'), geo('GB', 'EU'));
      assert.deepEqual(r.get('81.2.69.200'), geo('AT', 'EU'));
      assert.deepEqual(r.get('81.2.0.1'), geo('DE', 'EU'));
      assert.deepEqual(r.get('::ffff:81.2.69.1'), geo('GB', 'EU'), 'the ::ffff:0:0/96 alias');
      assert.deepEqual(r.get('2002:5102:4501::1'), geo('GB', 'EU'), 'the 2002::/16 alias');
      assert.deepEqual(r.get('::81.2.69.1'), geo('GB', 'EU'), 'IPv4 sits under ::/96');
      assert.deepEqual(r.get('2001:db8:1::1'), geo('CH', 'EU'));
      assert.deepEqual(r.get('2001:db8:2::1'), geo('JP', 'AS'));
      assert.equal(r.get('81.3.0.0'), null);
      assert.equal(r.get('2001:db9::'), null);
      // The networks as stored: the nested ones split the outer ones.
      assert.equal(r.getWithPrefixLength('81.2.69.1')[1], 25, '81.2.69.0/24 less its 81.2.69.128/25');
      assert.equal(r.getWithPrefixLength('::ffff:81.2.69.1')[1], 121);
      assert.equal(r.getWithPrefixLength('203.0.113.7')[1], 32);
    });
  }

  test('input order does not matter; a network listed twice is an error', () => {
    const a = writeMmdb(NETWORKS, { buildEpoch: 1 });
    const b = writeMmdb([...NETWORKS].reverse(), { buildEpoch: 1 });
    const ra = new Reader(a);
    const rb = new Reader(b);
    for (const [ip] of EXPECT) if (!ip.includes('%')) assert.deepEqual(rb.get(ip), ra.get(ip), ip);
    assert.throws(() => writeMmdb([NETWORKS[0], NETWORKS[0]]), /listed twice/);
    assert.throws(() => writeMmdb([{ cidr: '2001:db8::/32', record: 1 }], { ipVersion: 4 }), /IPv6 network/);
    assert.throws(() => writeMmdb([{ cidr: '10.0.0.0/33', record: 1 }]), /prefix length/);
    assert.throws(() => writeMmdb([{ cidr: 'nope/8', record: 1 }]), /not an IP address/);
  });

  test('an IPv4 tree; a tree without aliases; /0 networks', () => {
    const v4 = new Reader(
      writeMmdb(
        NETWORKS.filter((n) => !n.cidr.includes(':')),
        { ipVersion: 4 },
      ),
    );
    assert.equal(v4.metadata.ipVersion, 4);
    assert.deepEqual(v4.get('81.2.69.200'), geo('AT', 'EU'));
    assert.equal(v4.get('81.3.0.0'), null);
    const noAlias = new Reader(writeMmdb(NETWORKS, { ipv4Aliases: false }));
    assert.deepEqual(noAlias.get('81.2.69.1'), geo('GB', 'EU'));
    assert.equal(noAlias.get('::ffff:81.2.69.1'), null);
    const all = new Reader(
      writeMmdb([
        { cidr: '0.0.0.0/0', record: 'v4' },
        { cidr: '::/0', record: 'any' },
      ]),
    );
    assert.equal(all.get('1.2.3.4'), 'v4');
    assert.equal(all.get('::ffff:1.2.3.4'), 'v4');
    assert.equal(all.get('2001:db8::1'), 'any');
    const v4all = new Reader(writeMmdb([{ cidr: '0.0.0.0/0', record: 'v4' }], { ipVersion: 4 }));
    assert.equal(v4all.get('255.255.255.255'), 'v4');
  });

  test('every data type round-trips', () => {
    const record = {
      string: 'Zürich 東京',
      empty: '',
      long: 'x'.repeat(300),
      longer: 'y'.repeat(70_000),
      uint32: 4_294_967_295,
      zero: 0,
      int32: -2_147_483_648,
      double: 1.5,
      uint16: mmdbValue.uint16(65_535),
      uint64: 18_446_744_073_709_551_615n,
      uint128: mmdbValue.uint128(2n ** 128n - 1n),
      small128: 2n ** 64n,
      float: mmdbValue.float(0.25),
      bytes: new Uint8Array([0, 1, 255]),
      true: true,
      false: false,
      array: [1, 'two', [3], { four: 4 }],
      emptyArray: [],
      map: { nested: { deeper: { deepest: 'yes' } } },
      emptyMap: {},
      int32pos: mmdbValue.int32(5),
    };
    const r = new Reader(writeMmdb([{ cidr: '10.0.0.0/8', record }]));
    const got = r.get('10.1.2.3') as unknown as Record<string, unknown>;
    assert.deepEqual(
      { ...got, bytes: [...(got.bytes as Buffer)] },
      {
        ...record,
        uint16: 65_535,
        uint128: 2n ** 128n - 1n,
        float: 0.25,
        bytes: [0, 1, 255],
        int32pos: 5,
      },
    );
  });

  test('repeated values are written once (pointers), also past 2048 bytes and 512 KiB', () => {
    const many: MmdbNetwork[] = [];
    // ~600 KB of distinct records, each also repeating the shared keys and names: pointers of all three short sizes.
    for (let i = 0; i < 3000; i++)
      many.push({
        cidr: `10.${i >> 8}.${i & 255}.0/24`,
        record: {
          ...geo('DE', 'EU'),
          id: i,
          note: `record ${i} ${'z'.repeat(180)}`,
          names: { en: 'Germany', de: 'Deutschland' },
        },
      });
    const withPointers = writeMmdb(many);
    const without = writeMmdb(many, { dedupe: false });
    assert.ok(withPointers.length < without.length, `${withPointers.length} < ${without.length}`);
    assert.ok(withPointers.length > 526_336, 'large enough for 3-byte pointers');
    const r = new Reader(withPointers);
    for (const i of [0, 1, 700, 2999]) {
      const got = r.get(`10.${i >> 8}.${i & 255}.9`) as unknown as Record<string, unknown>;
      assert.equal(got.id, i);
      assert.deepEqual(got.country, { iso_code: 'DE' });
      assert.deepEqual(got.names, { en: 'Germany', de: 'Deutschland' });
    }
  });

  test('28- and 32-bit records above 2^24 (a data section past 16 MiB)', () => {
    const networks: MmdbNetwork[] = [
      { cidr: '1.0.0.0/8', record: { pad: 'p'.repeat(16_800_000) } },
      { cidr: '2.0.0.0/8', record: geo('GB', 'EU') },
      { cidr: '2001:db8::/32', record: geo('DE', 'EU') },
    ];
    assert.throws(() => writeMmdb(networks, { recordSize: 24 }), /cannot address/);
    for (const recordSize of [28, 32] as const) {
      const r = new Reader(writeMmdb(networks, { recordSize }));
      assert.deepEqual(r.get('2.3.4.5'), geo('GB', 'EU'));
      assert.deepEqual(r.get('2001:db8::5'), geo('DE', 'EU'));
      assert.equal((r.get('1.2.3.4') as unknown as { pad: string }).pad.length, 16_800_000);
    }
  });

  test('rebuilding MaxMind’s GeoLite2-Country-Test from its networks gives the same answers', () => {
    const official = readFileSync(COUNTRY_TEST);
    const r = new Reader(official);
    const cidrs = listNetworks(official, r.metadata);
    assert.equal(cidrs.length, 244);
    const networks = cidrs.map((cidr) => ({ cidr, record: r.get(networkBounds(cidr)[0]) as never }));
    const rebuilt = writeMmdb(networks, { recordSize: 28, databaseType: r.metadata.databaseType });
    const ours = new Reader(rebuilt);
    assert.deepEqual(listNetworks(rebuilt, ours.metadata), cidrs);
    for (const cidr of cidrs) {
      for (const ip of networkBounds(cidr)) {
        assert.deepEqual(ours.get(ip), r.get(ip), ip);
        if (!ip.includes(':'))
          assert.deepEqual(ours.get(`::ffff:${ip}`), r.get(`::ffff:${ip}`), `::ffff:${ip}`);
      }
    }
  });
});

describe('openGeoDb', () => {
  test('answers from a written database: v4, v6, mapped, nested, registered country, misses', () => {
    for (const recordSize of [24, 28, 32] as const) {
      const db = openGeoDb(dbFile(NETWORKS, { recordSize }), { watchInterval: 0 });
      try {
        for (const [ip, want] of EXPECT) {
          assert.deepEqual(plain(db.lookup(ip)), want, `${ip} (${recordSize}-bit)`);
          assert.deepEqual(plain(db.lookup(ip)), want, `${ip} again (cached)`);
        }
        const a = db.lookup('81.2.69.1');
        assert.ok(Object.isFrozen(a));
        assert.equal(db.lookup('81.2.69.2'), a, 'one answer object per record');
      } finally {
        db.close();
      }
    }
  });

  test('an IPv4-only database: IPv4 and mapped addresses answer, IPv6 ones do not', () => {
    const db = openGeoDb(
      dbFile(
        NETWORKS.filter((n) => !n.cidr.includes(':')),
        { ipVersion: 4 },
      ),
      {
        watchInterval: 0,
      },
    );
    try {
      assert.deepEqual(plain(db.lookup('81.2.69.1')), { country: 'GB', continent: 'EU' });
      assert.deepEqual(plain(db.lookup('::ffff:81.2.69.1')), { country: 'GB', continent: 'EU' });
      assert.deepEqual(plain(db.lookup('0:0:0:0:0:ffff:5102:4501')), { country: 'GB', continent: 'EU' });
      assert.equal(db.lookup('2001:db8::1'), null);
      assert.equal(db.lookup('::81.2.69.1'), null);
    } finally {
      db.close();
    }
  });

  test('MaxMind’s GeoLite2-Country-Test database', () => {
    const db = openGeoDb(COUNTRY_TEST, { watchInterval: 0 });
    try {
      const cases: [string, object | null][] = [
        ['2.125.160.216', { country: 'GB', continent: 'EU' }], // registered_country FR: country wins
        ['2.125.160.223', { country: 'GB', continent: 'EU' }],
        ['2.125.160.224', null],
        ['::ffff:2.125.160.220', { country: 'GB', continent: 'EU' }],
        ['81.2.69.142', { country: 'GB', continent: 'EU' }],
        ['81.2.69.141', null],
        ['89.160.20.112', { country: 'SE', continent: 'EU' }],
        ['89.160.20.200', { country: 'SE', continent: 'EU' }],
        ['216.160.83.56', { country: 'US', continent: 'NA' }],
        ['67.43.156.1', { country: 'BT', continent: 'AS' }],
        ['202.196.224.1', { country: 'PH', continent: 'AS' }],
        ['2001:218::1', { country: 'JP', continent: 'AS' }],
        ['2001:220::1', { country: 'KR', continent: 'AS' }],
        ['2a02:d180::1', { country: 'DE', continent: 'EU' }],
        ['2a02:d500::1', { continent: 'EU' }], // no country in the record
        ['2001:db8::1', null],
        ['127.0.0.1', null],
      ];
      for (const [ip, want] of cases) assert.deepEqual(plain(db.lookup(ip)), want, ip);
    } finally {
      db.close();
    }
  });

  test('MaxMind’s GeoIP2-City-Test database (a city file answers with its country too)', () => {
    const db = openGeoDb(CITY_TEST, { watchInterval: 0 });
    try {
      assert.deepEqual(plain(db.lookup('81.2.69.160')), { country: 'GB', continent: 'EU' });
      assert.deepEqual(plain(db.lookup('::ffff:81.2.69.160')), { country: 'GB', continent: 'EU' });
      assert.deepEqual(plain(db.lookup('216.160.83.56')), { country: 'US', continent: 'NA' });
      assert.deepEqual(plain(db.lookup('89.160.20.112')), { country: 'SE', continent: 'EU' });
      assert.deepEqual(plain(db.lookup('2001:218::1')), { country: 'JP', continent: 'AS' });
      assert.equal(db.lookup('10.0.0.1'), null);
    } finally {
      db.close();
    }
  });

  test('garbage addresses answer null and never throw', () => {
    const db = openGeoDb(dbFile([{ cidr: '0.0.0.0/0', record: geo('DE', 'EU') }, ...NETWORKS.slice(4)]), {
      watchInterval: 0,
    });
    try {
      assert.deepEqual(
        plain(db.lookup('1.2.3.4')),
        { country: 'DE', continent: 'EU' },
        'everything IPv4 is DE',
      );
      for (const bad of [
        '',
        'not-an-ip',
        '999.1.1.1',
        '1.2.3',
        '1.2.3.4.5',
        '01.2.3.4',
        ' 1.2.3.4',
        '1.2.3.4 ',
        '1.2.3.4/24',
        '[::1]',
        '::ffff:999.1.1.1',
        '::ffff:1.2.3',
        '2001:db8::g',
        '2001:db8:::1',
        '1:2:3:4:5:6:7:8:9',
        '%eth0',
        'x'.repeat(100_000),
        undefined,
        null,
        42,
        {},
      ] as unknown as string[]) {
        assert.equal(db.lookup(bad), null, JSON.stringify(bad)?.slice(0, 40));
      }
    } finally {
      db.close();
    }
  });

  test('normalizeAddress: IPv4-mapped forms become IPv4, zones are dropped', () => {
    assert.equal(normalizeAddress('1.2.3.4'), '1.2.3.4');
    assert.equal(normalizeAddress('::ffff:1.2.3.4'), '1.2.3.4');
    assert.equal(normalizeAddress('::FFFF:1.2.3.4'), '1.2.3.4');
    assert.equal(normalizeAddress('::ffff:102:304'), '1.2.3.4');
    assert.equal(normalizeAddress('0:0:0:0:0:ffff:c0a8:0101'), '192.168.1.1');
    assert.equal(normalizeAddress('::ffff:0:102:304'), '::ffff:0:102:304', 'SIIT, not mapped');
    assert.equal(normalizeAddress('ffff::1'), 'ffff::1');
    assert.equal(normalizeAddress('fe80::1%eth0'), 'fe80::1');
    assert.equal(normalizeAddress('2001:db8::1', true), null, 'IPv6 in an IPv4-only file');
    assert.equal(normalizeAddress('::ffff:1.2.3.4', true), '1.2.3.4');
    assert.equal(normalizeAddress('999.1.1.1'), null);
  });

  test('a missing, unreadable or invalid file is an error naming geoip.database', () => {
    const good = writeMmdb(NETWORKS);
    const write = (name: string, content: Buffer) => {
      const p = join(dir, name);
      writeFileSync(p, content);
      return p;
    };
    const cases: [string, RegExp][] = [
      [join(dir, 'missing.mmdb'), /^geoip\.database: cannot read .*missing\.mmdb: no such file$/],
      [dir, /^geoip\.database: cannot read .*: is a directory$/],
      [write('empty.mmdb', Buffer.alloc(0)), /^geoip\.database: .*empty\.mmdb: not a MaxMind DB file/],
      [write('text.mmdb', Buffer.from('hello, world\n'.repeat(100))), /not a MaxMind DB file/],
      [write('gz.mmdb', gzipSync(good)), /gzip-compressed/],
      [
        write('nometa.mmdb', good.subarray(0, good.indexOf(Buffer.from('MaxMind.com')) - 3)),
        /not a MaxMind DB file/,
      ],
      [write('halfmeta.mmdb', good.subarray(0, good.length - 60)), /not a valid MaxMind DB file/],
      // The tree cut off: node_count says more than there is.
      [write('cut.mmdb', good.subarray(good.indexOf(Buffer.from('MaxMind.com')) - 200)), /damaged|truncated/],
    ];
    // The 16-byte separator after the tree overwritten.
    const damaged = Buffer.from(good);
    const nodes = new Reader(good).metadata.searchTreeSize;
    damaged[nodes + 3] = 0x41;
    cases.push([write('sep.mmdb', damaged), /no data section separator/]);
    // An unsupported major version.
    const v3 = Buffer.from(good);
    const key = v3.lastIndexOf(Buffer.from('binary_format_major_version'));
    v3[key + 'binary_format_major_version'.length + 1] = 3; // uint16, 1 byte: 2 → 3
    cases.push([write('v3.mmdb', v3), /format version 3 is not supported/]);
    for (const [path, want] of cases)
      assert.throws(() => openGeoDb(path, { watchInterval: 0 }), { message: want }, path);
  });
});

describe('reloading when the file changes', () => {
  const A: MmdbNetwork[] = [
    { cidr: '81.2.69.0/24', record: geo('GB', 'EU') },
    { cidr: '2001:db8::/32', record: geo('JP', 'AS') },
  ];
  const B: MmdbNetwork[] = [
    { cidr: '81.2.69.0/24', record: geo('DE', 'EU') },
    { cidr: '2001:db8::/32', record: geo('KR', 'AS') },
    { cidr: '203.0.113.0/24', record: geo('AU', 'OC') },
  ];

  test('an atomic replacement is picked up; a corrupt one keeps the old data and calls onError', async () => {
    const path = dbFile(A);
    const errors: string[] = [];
    const reloads: string[] = [];
    const db = openGeoDb(path, {
      watchInterval: 20,
      onError: (m) => errors.push(m),
      onReload: (info) => reloads.push(info.databaseType),
    });
    try {
      assert.equal(db.lookup('81.2.69.1')?.country, 'GB');
      assert.equal(db.lookup('203.0.113.1'), null);

      // Right after opening: the change is measured against the version read, so none is missed.
      replaceAtomically(path, writeMmdb(B, { databaseType: 'Test-B' }));
      await until(() => db.lookup('81.2.69.1')?.country === 'DE', 'the lookups to answer from B');
      assert.equal(db.lookup('2001:db8::1')?.country, 'KR');
      assert.equal(db.lookup('203.0.113.1')?.country, 'AU', 'a miss before is not remembered after a reload');
      assert.deepEqual(reloads, ['Test-B']);
      assert.deepEqual(errors, []);

      replaceAtomically(path, Buffer.from('not a database'));
      await until(() => errors.length > 0, 'onError for the corrupt file');
      assert.match(errors[0], /^geoip\.database: .*: not a MaxMind DB file .*; keeping the loaded data$/);
      assert.equal(db.lookup('81.2.69.1')?.country, 'DE', 'B still answers');
      await new Promise((r) => setTimeout(r, 120));
      assert.equal(errors.length, 1, 'a refused version is reported once, not at every poll');

      // A truncated copy (a half-written file) is refused too.
      const full = writeMmdb(A);
      replaceAtomically(path, full.subarray(0, full.length >> 1));
      await until(() => errors.length > 1, 'onError for the truncated file');
      assert.equal(db.lookup('81.2.69.1')?.country, 'DE');

      // Deleted, then back: reported, kept, and read again when it returns.
      unlinkSync(path);
      await until(() => errors.length > 2, 'onError for the deleted file');
      assert.match(errors[2], /is gone; keeping the loaded data$/);
      assert.equal(db.lookup('81.2.69.1')?.country, 'DE');
      writeFileSync(path, writeMmdb(A, { databaseType: 'Test-A' }));
      await until(() => db.lookup('81.2.69.1')?.country === 'GB', 'A again after the file came back');
      assert.deepEqual(reloads, ['Test-B', 'Test-A']);
    } finally {
      db.close();
    }
  });

  test('an in-place rewrite is picked up', async () => {
    const path = dbFile(A);
    const db = openGeoDb(path, { watchInterval: 20 });
    try {
      assert.equal(db.lookup('2001:db8::1')?.country, 'JP');
      writeFileSync(path, writeMmdb(B));
      await until(() => db.lookup('2001:db8::1')?.country === 'KR', 'the rewrite');
    } finally {
      db.close();
    }
  });

  test('close() stops watching, and only for that GeoDb', async () => {
    const path = dbFile(A);
    const closed = openGeoDb(path, { watchInterval: 20 });
    const open = openGeoDb(path, { watchInterval: 20 });
    try {
      closed.close();
      closed.close(); // twice is fine
      replaceAtomically(path, writeMmdb(B));
      await until(() => open.lookup('81.2.69.1')?.country === 'DE', 'the other GeoDb to reload');
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(
        closed.lookup('81.2.69.1')?.country,
        'GB',
        'the closed one still answers from what it had',
      );
    } finally {
      open.close();
    }
  });

  test('with watchInterval 0 the file is not watched', async () => {
    const path = dbFile(A);
    const db = openGeoDb(path, { watchInterval: 0 });
    try {
      replaceAtomically(path, writeMmdb(B));
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(db.lookup('81.2.69.1')?.country, 'GB');
    } finally {
      db.close();
    }
  });
});
