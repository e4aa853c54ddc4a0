// `gatehouse explain`: which route a request would take, why each route before it did not match,
// and where the request would go. Uses the same compiled table and the same match function as the
// proxy, so what it says is what the proxy does.

import type { ListenerPlan, Plan } from '../config/compile.ts';
import { hostOnly } from '../pipeline/accept.ts';
import { normalizePath } from '../pipeline/path.ts';
import { cookieValue } from '../pipeline/template.ts';
import { type MatchInput, type Mismatch, mismatch, queryParams, type Route, upstreamPath } from './table.ts';

export function explain(
  plan: Plan,
  url: string,
  method: string,
  headerLines: readonly string[],
  listenerName?: string,
): { text: string; matched: boolean } {
  const u = new URL(url);
  const headers: Record<string, string> = { host: u.host };
  for (const line of headerLines) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  const listener = pickListener(plan, u, listenerName);
  const lines: string[] = [];
  if (listener === undefined) return { text: `no listener named "${listenerName}"\n`, matched: false };
  const path = normalizePath(u.pathname) ?? u.pathname;
  const input: MatchInput = {
    host: hostOnly(headers.host),
    sni: u.protocol === 'https:' ? hostOnly(headers.host) : '',
    path,
    method: method.toUpperCase(),
    headers,
    query: u.search,
    params: undefined,
    // explain has no client address: a geo condition does not match.
    geo: () => null,
  };
  lines.push(`request:  ${input.method} ${url}`);
  lines.push(`listener: ${listener.name}    host: ${input.host || '(none)'}    path: ${path}`);
  lines.push('', 'routes, in the order they are tried:');
  let winner: Route | undefined;
  listener.table.forEach((r, i) => {
    const n = `${String(i + 1).padStart(3)}. ${r.name.padEnd(20)}`;
    if (winner) {
      lines.push(`${n} (not tried)`);
      return;
    }
    const why = mismatch(r, input);
    if (why === null) {
      winner = r;
      lines.push(`${n} MATCH  ${describeRoute(r)}`);
    } else lines.push(`${n} no     ${reason(r, why, input)}`);
  });
  if (listener.table.length === 0) lines.push('  (this listener has no routes)');
  lines.push('');
  if (!winner) {
    lines.push('result: no route matches: Gatehouse answers 404 (route_not_found)');
    return { text: `${lines.join('\n')}\n`, matched: false };
  }
  const up = winner.upstream;
  if (up !== null)
    lines.push(`result: route ${winner.name} → upstream ${up.name} (${up.settings.loadBalancer})`);
  else if (winner.split !== null)
    lines.push(
      `result: route ${winner.name} → split ${winner.split.sides.map((s) => `${s.upstream.name} ${s.weight}`).join(', ')}${winner.split.sticky ? ` (sticky by cookie ${winner.split.sticky.cookie})` : ''}`,
    );
  else lines.push(`result: route ${winner.name} → answered by Gatehouse (${winner.backend})`);
  lines.push(
    `  path ${up !== null || winner.split !== null ? 'sent upstream' : 'used'}: ${upstreamPath(winner, path)}${u.search}`,
  );
  const mws = winner.config.middlewares;
  if (mws.length > 0) lines.push(`  middlewares: ${mws.join(', ')}`);
  const ups = up !== null ? [up] : (winner.split?.sides.map((s) => s.upstream) ?? []);
  for (const x of ups) {
    lines.push(ups.length > 1 ? `  targets of ${x.name}:` : '  targets:');
    for (const t of x.targets) lines.push(`    ${t.id}  weight ${t.weight}`);
  }
  return { text: `${lines.join('\n')}\n`, matched: true };
}

function pickListener(plan: Plan, u: URL, name: string | undefined): ListenerPlan | undefined {
  if (name !== undefined) return plan.listeners.get(name);
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  for (const l of plan.config.listeners)
    if (l.address.endsWith(`:${port}`)) return plan.listeners.get(l.name);
  return plan.listeners.values().next().value;
}

function describeRoute(r: Route): string {
  const parts: string[] = [];
  if (r.priority !== 0) parts.push(`priority ${r.priority}`);
  const hosts = [...(r.exactHosts ?? []), ...(r.wildcardHosts ?? []).map((s) => `*${s}`)];
  if (hosts.length) parts.push(`hosts ${hosts.join(', ')}`);
  if (r.pathKind === 'exact') parts.push(`path = ${r.pathValue}`);
  else if (r.pathKind === 'regex') parts.push(`path ~ ${r.pathValue}`);
  else parts.push(`path prefix ${r.pathValue || '/'}`);
  if (r.methods) parts.push(`methods ${[...r.methods].join(',')}`);
  if (r.headers) parts.push(`headers ${r.headers.map(([k, v]) => `${k}=${v}`).join(', ')}`);
  if (r.query) parts.push(`query ${r.query.map(([k, v]) => `${k}=${v}`).join(', ')}`);
  return parts.join('; ');
}

function reason(r: Route, why: Mismatch, input: MatchInput): string {
  switch (why) {
    case 'method':
      return `method ${input.method} is not one of ${[...(r.methods ?? [])].join(', ')}`;
    case 'host': {
      const hosts = [...(r.exactHosts ?? []), ...(r.wildcardHosts ?? []).map((s) => `*${s}`)];
      return `host ${input.host || '(none)'} is not ${hosts.join(' or ')}`;
    }
    case 'sni': {
      const names = [...(r.exactSni ?? []), ...(r.wildcardSni ?? []).map((s) => `*${s}`)];
      return `TLS server name ${input.sni || '(none)'} is not ${names.join(' or ')}`;
    }
    case 'path':
      if (r.pathKind === 'exact') return `path ${input.path} is not ${r.pathValue}`;
      if (r.pathKind === 'regex') return `path ${input.path} does not match ${r.pathValue}`;
      return `path ${input.path} is not under ${r.pathValue}`;
    case 'headers': {
      const missing = (r.headers ?? []).find(
        ([k, v]) => input.headers[k] === undefined || (v !== '*' && input.headers[k] !== v),
      );
      return missing
        ? `header ${missing[0]} is ${input.headers[missing[0]] ?? 'absent'}, wanted ${missing[1]}`
        : 'headers differ';
    }
    case 'query': {
      const q = queryParams(input);
      const missing = (r.query ?? []).find(([k, v]) => !q.has(k) || (v !== '*' && !q.getAll(k).includes(v)));
      return missing
        ? `query ${missing[0]} is ${q.get(missing[0]) ?? 'absent'}, wanted ${missing[1]}`
        : 'query differs';
    }
    case 'cookies': {
      const missing = (r.cookies ?? []).find(([k, v]) => {
        const got = cookieValue(input.headers.cookie, k);
        return got === undefined || (v !== '*' && got !== v);
      });
      return missing
        ? `cookie ${missing[0]} is ${cookieValue(input.headers.cookie, missing[0]) ?? 'absent'}, wanted ${missing[1]}`
        : 'cookies differ';
    }
    case 'geo':
      return `the client's country or continent is not ${[...(r.geo?.countries ?? []), ...(r.geo?.continents ?? [])].join(', ')} (explain has no client address)`;
  }
}
