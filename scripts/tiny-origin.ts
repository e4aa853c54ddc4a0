// A minimal origin in a process of its own, for what needs a backend that can be killed with
// SIGKILL (the failover test and bench/failover.ts): `node scripts/tiny-origin.ts PORT [HOST]`.
// Answers every request with `{"port":PORT}`, after reading the body; prints "ready" when listening.
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? 0);
const host = process.argv[3] ?? '127.0.0.1';
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const body = `{"port":${port}}`;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
});
server.keepAliveTimeout = 30_000;
server.listen(port, host, () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
