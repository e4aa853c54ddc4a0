// h2c with prior knowledge beside HTTP/1.1 on one listener: the first bytes of a connection say
// which it is. A connection that sends nothing within the header timeout, ends, or fails before
// its first byte is closed (and never leaks: the listener is half-open for HTTP/1.1's sake).
import type { Socket } from 'node:net';

/** The HTTP/2 connection preface (RFC 9113 §3.4). */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

export function sniffPreface(
  socket: Socket,
  timeoutMs: number,
  h2: (socket: Socket) => void,
  h1: (socket: Socket) => void,
): void {
  const drop = (): void => {
    socket.destroy();
  };
  socket.on('error', drop);
  socket.once('end', drop);
  socket.setTimeout(timeoutMs, drop);
  socket.once('data', (first: Buffer) => {
    socket.off('error', drop);
    socket.off('end', drop);
    socket.setTimeout(0);
    socket.removeListener('timeout', drop);
    socket.pause();
    socket.unshift(first);
    const n = Math.min(first.length, PREFACE.length);
    // The session (or the HTTP/1.1 side) takes over the socket, reading what is buffered first.
    if (n >= 3 && first.subarray(0, n).equals(PREFACE.subarray(0, n))) h2(socket);
    else {
      h1(socket);
      socket.resume();
    }
  });
}
