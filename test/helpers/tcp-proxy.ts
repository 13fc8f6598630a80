/**
 * A TCP proxy in front of PostgreSQL that a test can close (connections refused), open, or cut (every live
 * connection reset), to play a database that is not there yet or goes away.
 */
import net from 'node:net';
import { freePort } from '../../src/net.js';

export class TcpProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  /** A proxy on a free port, closed until {@link open}. */
  static async create(targetUrl: string): Promise<TcpProxy> {
    const u = new URL(targetUrl);
    return new TcpProxy(await freePort(), { host: u.hostname, port: Number(u.port || 5432) });
  }

  /** `targetUrl` with host and port replaced by the proxy's. */
  urlFor(targetUrl: string): string {
    const u = new URL(targetUrl);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  async open(): Promise<void> {
    if (this.server) return;
    const server = net.createServer((client) => {
      const upstream = net.connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
  }

  /** Stops listening and resets every live connection. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.resetAndDestroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
