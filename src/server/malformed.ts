// A request too broken (or too slow) to reach the request path, on any HTTP/1.1 engine: answered
// once through the one error writer on a raw-socket responder (which closes the connection), and
// logged once.
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { ProxyError, type Reason } from '../pipeline/errors.ts';
import { normalizeIp } from '../pipeline/forwarding.ts';
import { respondError } from '../pipeline/respond.ts';
import { SocketResponder } from '../pipeline/responder.ts';
import type { ListenerSlot, Runtime } from '../pipeline/runtime.ts';

export function answerMalformed(rt: Runtime, slot: ListenerSlot, socket: Socket, reason: Reason): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const id = randomUUID();
  const error = new ProxyError(reason, undefined, { source: 'downstream' });
  const bytes = respondError(new SocketResponder(socket), error, {
    requestId: id,
    accept: undefined,
    proxyName: rt.via,
    close: true,
    head: false,
  });
  if (rt.log !== null) {
    rt.log.write(
      `{"time":"${new Date().toISOString()}","requestId":"${id}","listener":${JSON.stringify(slot.plan.name)},"clientIp":"${normalizeIp(socket.remoteAddress)}"` +
        `,"method":null,"host":null,"path":null,"status":${error.status},"bytes":${bytes},"route":null,"upstream":null,"target":null,"reason":"${reason}"}\n`,
    );
  }
}
