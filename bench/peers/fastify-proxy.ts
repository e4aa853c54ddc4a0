// The @fastify/http-proxy peer, as its README sets it up.
import proxy from '@fastify/http-proxy';
import Fastify from 'fastify';

const [port, originUrl] = process.argv.slice(2);
const app = Fastify({ logger: false });
await app.register(proxy, { upstream: originUrl, prefix: '/', http2: false });
await app.listen({ port: Number(port), host: '127.0.0.1' });
