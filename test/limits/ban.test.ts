// The ban list on its own, with a clock of the test's own: counting in a sliding window, bans that
// double up to the longest, lifting, the allow list, forgetting, and memory that stays bounded.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type BanConfig, BanList } from '../../src/limits/ban.ts';
import { ClientUpstreamBudget } from '../../src/limits/clientBudget.ts';

const S = 1000;
const M = 60 * S;

function list(cfg: Partial<BanConfig> = {}, opts: { maxTracked?: number; maxBans?: number } = {}) {
  const clock = { now: 1_000_000 };
  const bans = new BanList(
    { after: 3, window: 10 * S, duration: M, maxDuration: 8 * M, allow: [], ...cfg },
    { now: () => clock.now, ...opts },
  );
  return { bans, clock };
}

test('after offences within the window an address is banned; fewer, or spread out, are not', () => {
  const { bans, clock } = list();
  assert.equal(bans.offence('10.0.0.1', 'rate_limited'), null);
  assert.equal(bans.offence('10.0.0.1', 'rate_limited'), null);
  assert.equal(bans.isBanned('10.0.0.1'), false);
  const b = bans.offence('10.0.0.1', 'waf_blocked');
  assert.ok(b, 'the third offence within 10 s bans');
  assert.equal(b.level, 1);
  assert.equal(b.until - b.since, M);
  assert.equal(b.reason, 'waf_blocked');
  assert.equal(bans.isBanned('10.0.0.1'), true);
  assert.equal(bans.isBanned('10.0.0.2'), false, 'another address is not');

  // One offence every 8 s: never three within 10 s (the sliding window keeps less than 3).
  for (let i = 0; i < 10; i++) {
    clock.now += 8 * S;
    assert.equal(bans.offence('10.0.0.9', 'rate_limited'), null, `offence ${i + 1} spread out`);
  }
  assert.equal(bans.isBanned('10.0.0.9'), false);
});

test('the window slides: the previous window counts by how much of it still overlaps', () => {
  const { bans, clock } = list();
  // Two offences in one 10 s window, then two more 1 s into the next: 2 + 2 × 0.9 ≥ 3.
  bans.offence('10.0.0.1', 'rate_limited');
  bans.offence('10.0.0.1', 'rate_limited');
  clock.now += 11 * S;
  assert.equal(bans.offence('10.0.0.1', 'rate_limited'), null);
  assert.ok(bans.offence('10.0.0.1', 'rate_limited'), 'the previous window still weighs 0.9');
  // Two offences, then two more 18 s later: the previous window overlaps by 0.2 (2 + 0.4 < 3).
  bans.offence('10.0.0.2', 'rate_limited');
  bans.offence('10.0.0.2', 'rate_limited');
  clock.now += 18 * S;
  bans.offence('10.0.0.2', 'rate_limited');
  assert.equal(bans.offence('10.0.0.2', 'rate_limited'), null);
  // Two windows later nothing of the old ones counts.
  clock.now += 25 * S;
  bans.offence('10.0.0.2', 'rate_limited');
  assert.equal(bans.offence('10.0.0.2', 'rate_limited'), null);
  assert.ok(bans.offence('10.0.0.2', 'rate_limited'), 'three at once ban');
});

test('each further ban doubles, up to maxDuration; offences while banned do not count', () => {
  const { bans, clock } = list();
  const ip = '192.0.2.7';
  const lengths: number[] = [];
  for (let round = 0; round < 6; round++) {
    let b = null;
    for (let i = 0; i < 3; i++) b = bans.offence(ip, 'rate_limited');
    assert.ok(b, `round ${round + 1} bans`);
    lengths.push((b.until - b.since) / M);
    // Offences while banned are ignored (a banned client's refusals are not new offences).
    assert.equal(bans.offence(ip, 'rate_limited'), null);
    clock.now = b.until; // the ban runs out
    assert.equal(bans.isBanned(ip), false, 'a ban ends at its time');
    clock.now += S;
  }
  assert.deepEqual(lengths, [1, 2, 4, 8, 8, 8], 'minutes: doubling, capped at maxDuration (8 min)');
  assert.equal(bans.total, 6);
  assert.equal(bans.expired, 6);
  assert.ok(bans.ignored >= 6);
});

test('an address that behaves for maxDuration after a ban starts again from the first length', () => {
  const { bans, clock } = list();
  const ip = '192.0.2.8';
  for (let i = 0; i < 3; i++) bans.offence(ip, 'rate_limited');
  clock.now += M; // first ban (1 min) over
  assert.equal(bans.isBanned(ip), false);
  clock.now += 8 * M; // maxDuration of good behaviour
  let b = null;
  for (let i = 0; i < 3; i++) b = bans.offence(ip, 'rate_limited');
  assert.ok(b);
  assert.equal(b.level, 1);
  assert.equal(b.until - b.since, M);
});

test('lift ends a ban at once; the next ban of that address still doubles; list shows active ones', () => {
  const { bans, clock } = list();
  for (let i = 0; i < 3; i++) bans.offence('10.1.1.1', 'rate_limited');
  for (let i = 0; i < 3; i++) bans.offence('10.1.1.2', 'waf_blocked');
  const shown = bans.list();
  assert.deepEqual(
    shown.map((b) => [b.ip, b.level, b.reason, b.remaining]),
    [
      ['10.1.1.1', 1, 'rate_limited', 60],
      ['10.1.1.2', 1, 'waf_blocked', 60],
    ],
  );
  assert.match(shown[0].until, /^\d{4}-\d\d-\d\dT/);
  assert.equal(bans.lift('10.1.1.1'), true);
  assert.equal(bans.lift('10.1.1.1'), false, 'not banned any more');
  assert.equal(bans.lift('10.9.9.9'), false, 'never banned');
  assert.equal(bans.isBanned('10.1.1.1'), false);
  assert.equal(bans.active, 1);
  assert.equal(bans.lifted, 1);
  clock.now += S;
  let b = null;
  for (let i = 0; i < 3; i++) b = bans.offence('10.1.1.1', 'rate_limited');
  assert.ok(b);
  assert.equal(b.level, 2);
  assert.equal(b.until - b.since, 2 * M, 'a lifted ban still counts for the next one');
  clock.now += 10 * M;
  assert.deepEqual(bans.list(), [], 'expired bans are not listed');
  assert.equal(bans.active, 0);
});

test('a manual ban, for a given time or for the next automatic length', () => {
  const { bans, clock } = list();
  const a = bans.ban('2001:db8::1', 5 * S);
  assert.equal(a.until - a.since, 5 * S);
  assert.equal(a.reason, 'manual');
  assert.equal(bans.isBanned('2001:db8::1'), true);
  clock.now += 5 * S;
  assert.equal(bans.isBanned('2001:db8::1'), false);
  const b = bans.ban('2001:db8::1');
  assert.equal(b.until - b.since, 2 * M, 'second ban of that address: doubled');
});

test('addresses in allow are never banned, IPv4 and IPv6 CIDRs', () => {
  const { bans } = list({ allow: ['10.0.0.0/8', '2001:db8::/32', '192.0.2.1'] });
  for (const ip of ['10.2.3.4', '2001:db8:1::5', '192.0.2.1'])
    for (let i = 0; i < 10; i++) assert.equal(bans.offence(ip, 'rate_limited'), null, ip);
  assert.equal(bans.active, 0);
  assert.equal(bans.ignored, 30);
  for (let i = 0; i < 3; i++) bans.offence('192.0.2.2', 'rate_limited');
  assert.equal(bans.isBanned('192.0.2.2'), true, 'the address next to an allowed one is not allowed');
  assert.equal(bans.offences.get('rate_limited'), 33, 'offences counted by kind, allowed or not');
});

test('memory stays bounded: tracked offenders in an LRU, active bans capped', () => {
  const { bans, clock } = list({ after: 2 }, { maxTracked: 1000, maxBans: 100 });
  // 5,000 addresses offending once each: at most 1,000 are remembered.
  for (let i = 0; i < 5000; i++) bans.offence(`10.${i >> 8}.${i & 255}.1`, 'rate_limited');
  assert.equal(bans.tracked, 1000);
  // 300 addresses banned: at most 100 bans at once, the oldest dropped first.
  for (let i = 0; i < 300; i++) {
    const ip = `172.16.${i >> 8}.${i & 255}`;
    bans.offence(ip, 'rate_limited');
    bans.offence(ip, 'rate_limited');
    clock.now += 1;
  }
  assert.equal(bans.active, 100);
  assert.equal(bans.evicted, 200);
  assert.equal(bans.isBanned('172.16.1.43'), true, 'the newest are kept');
  assert.equal(bans.isBanned('172.16.0.0'), false, 'the oldest went');
});

test('an empty address (a socket already gone) is never an offender', () => {
  const { bans } = list({ after: 1 });
  assert.equal(bans.offence('', 'rate_limited'), null);
  assert.equal(bans.tracked, 0);
});

test('client upstream budget: a slot per request, per upstream and address, freed on release', () => {
  const b = new ClientUpstreamBudget(2);
  assert.equal(b.acquire('api', '10.0.0.1'), true);
  assert.equal(b.acquire('api', '10.0.0.1'), true);
  assert.equal(b.acquire('api', '10.0.0.1'), false, 'a third in flight is refused');
  assert.equal(b.acquire('api', '10.0.0.2'), true, 'another address has its own');
  assert.equal(b.acquire('web', '10.0.0.1'), true, 'another upstream has its own');
  assert.equal(b.refused.get('api'), 1);
  b.release('api', '10.0.0.1');
  assert.equal(b.inflight('api', '10.0.0.1'), 1);
  assert.equal(b.acquire('api', '10.0.0.1'), true);
  b.release('api', '10.0.0.1');
  b.release('api', '10.0.0.1');
  b.release('api', '10.0.0.1'); // one release too many is harmless
  assert.equal(b.inflight('api', '10.0.0.1'), 0);
  assert.deepEqual(
    [...b.clients()],
    [
      ['api', 1],
      ['web', 1],
    ],
  );
});
