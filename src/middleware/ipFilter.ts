// `ipFilter`: allow or deny by client address (after trusted-proxy resolution). Deny wins; with an
// allow list, anything not on it is refused.
import { BlockList, isIPv6 } from 'node:net';
import type { IpFilterConfig } from '../config/schema.ts';
import type { LocalResponse, MiddlewareKind } from './types.ts';

export function blockListOf(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) {
    const [ip, bits] = c.split('/');
    const type = isIPv6(ip) ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(ip, type);
    else list.addSubnet(ip, Number(bits), type);
  }
  return list;
}

export function inList(list: BlockList, ip: string): boolean {
  return list.check(ip, isIPv6(ip) ? 'ipv6' : 'ipv4');
}

const FORBIDDEN: LocalResponse = { status: 403, reason: 'forbidden' };

export const ipFilter: MiddlewareKind<IpFilterConfig> = {
  create(name, config) {
    const allow = config.allow?.length ? blockListOf(config.allow) : undefined;
    const deny = config.deny?.length ? blockListOf(config.deny) : undefined;
    return {
      name,
      onRequest(ctx) {
        if (deny && inList(deny, ctx.clientIp)) return FORBIDDEN;
        if (allow && !inList(allow, ctx.clientIp)) return FORBIDDEN;
        return undefined;
      },
    };
  },
};
