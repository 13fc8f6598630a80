/**
 * Where webhooks may point (the server-side request forgery rules): the URL policy on its own, and the same rules
 * end to end through `createWebhook` and `updateWebhook` over HTTP, with the default settings and with
 * WEBHOOK_ALLOW_PRIVATE=true, including host names that resolve to loopback.
 */
import { promises as dns } from 'node:dns';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { useServer } from '../helpers/server.js';
import { addressRefusal, checkWebhookUrl, isPrivateAddress, UrlPolicyError } from '../../src/webhooks/url-policy.js';
import { parseUrl } from '../../src/webhooks/webhook.validation.js';
import { AppError } from '../../src/errors.js';

const strict = useServer('wh_url_strict', { WEBHOOK_WORKER: 'false' });
const lenient = useServer('wh_url_private', { WEBHOOK_WORKER: 'false', WEBHOOK_ALLOW_PRIVATE: 'true' });

type Server = typeof strict.server;
interface CreateOut {
  createWebhook: { webhook: { id: string; url: string } };
}

async function create(server: Server, url: string) {
  return server.gql<CreateOut>('mutation($url: String!) { createWebhook(input: { url: $url }) { webhook { id url } } }', { url });
}

async function expectRefused(server: Server, url: string, message: RegExp): Promise<void> {
  const res = await create(server, url);
  expect(res.body.data ?? null, url).toBeNull();
  expect(res.body.errors?.[0]?.extensions, url).toMatchObject({ code: 'BAD_USER_INPUT', field: 'url' });
  expect(res.body.errors?.[0]?.message, url).toMatch(message);
}

async function expectAccepted(server: Server, url: string): Promise<string> {
  const res = await create(server, url);
  expect(res.body.errors, url).toBeUndefined();
  return res.body.data!.createWebhook.webhook.url;
}

async function webhookCount(db: typeof strict.db): Promise<number> {
  const c = await db.client();
  const { rows } = await c.query<{ n: number }>('select count(*)::int as n from webhook');
  await c.end();
  return rows[0]!.n;
}

/** What the test machine's own name resolves to (nothing when it does not resolve). */
async function ownAddresses(): Promise<string[]> {
  try {
    return (await dns.lookup(hostname(), { all: true })).map((a) => a.address);
  } catch {
    return [];
  }
}

describe('the URL policy', () => {
  it('refuses loopback, private, link-local and mapped addresses by default, and allows them when asked', () => {
    for (const address of ['127.0.0.1', '::1', '10.1.2.3', '192.168.0.1', '172.16.0.1', '169.254.169.254', '::ffff:127.0.0.1', 'fd00::1', '100.64.0.1']) {
      expect(addressRefusal(address, false), address).toMatch(/WEBHOOK_ALLOW_PRIVATE/);
      expect(addressRefusal(address, true), address).toBeUndefined();
      expect(isPrivateAddress(address), address).toBe(true);
    }
    expect(addressRefusal('93.184.215.14', false)).toBeUndefined();
    expect(addressRefusal('2606:4700::1111', false)).toBeUndefined();
    // Neither setting reaches multicast, broadcast or unspecified addresses.
    for (const address of ['224.0.0.1', '255.255.255.255', '0.0.0.0', '::']) expect(addressRefusal(address, true), address).toBeDefined();
  });

  it('checks the scheme, credentials, fragment and length as written', () => {
    const refusal = (url: string, allowPrivate = false) => {
      try {
        checkWebhookUrl(url, allowPrivate);
        return 'accepted';
      } catch (err) {
        expect(err).toBeInstanceOf(UrlPolicyError);
        return (err as Error).message;
      }
    };
    expect(refusal('ftp://93.184.215.14/')).toBe('url must be https');
    expect(refusal('http://93.184.215.14/')).toBe('url must be https');
    expect(refusal('http://93.184.215.14/', true)).toBe('url must be https unless its host is a private address');
    expect(refusal('https://user:pw@93.184.215.14/')).toMatch(/user name or password/);
    expect(refusal('https://93.184.215.14/#x')).toMatch(/fragment/);
    expect(refusal('not a url')).toMatch(/absolute URL/);
    expect(refusal(`https://93.184.215.14/${'a'.repeat(2048)}`)).toMatch(/longer than 2048/);
    expect(refusal('https://LOCALHOST./hook')).toMatch(/loopback name/);
    expect(refusal('https://93.184.215.14/hook')).toBe('accepted');
    expect(refusal('http://127.0.0.1:8080/hook', true)).toBe('accepted');
  });

  it('re-checks a host name after resolving it, and accepts one that does not resolve (or not in time)', async () => {
    const resolving = (addresses: string[]) => async () => addresses;
    const message = async (promise: Promise<unknown>) => promise.then(() => 'accepted', (err: unknown) => (err instanceof AppError ? `${String(err.extensions.field)}: ${err.message}` : String(err)));
    expect(await message(parseUrl('https://hooks.example.com/in', false, resolving(['127.0.0.1'])))).toMatch(/^url: url is refused: hooks\.example\.com resolves to 127\.0\.0\.1 is a loopback address/);
    expect(await message(parseUrl('https://hooks.example.com/in', false, resolving(['93.184.215.14', '10.0.0.7'])))).toMatch(/resolves to 10\.0\.0\.7 is a private address/);
    expect(await message(parseUrl('https://hooks.example.com/in', false, resolving(['93.184.215.14'])))).toBe('accepted');
    expect(await message(parseUrl('https://hooks.example.com/in', true, resolving(['10.0.0.7'])))).toBe('accepted');
    // http goes only to private addresses, whatever the name looks like.
    expect(await message(parseUrl('http://hooks.example.com/in', true, resolving(['93.184.215.14'])))).toMatch(/must be https unless its host is a private address/);
    expect(await message(parseUrl('http://hooks.internal/in', true, resolving(['10.0.0.7'])))).toBe('accepted');
    const nxdomain = async () => Promise.reject(Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' }));
    expect(await message(parseUrl('https://no-such-host.invalid/in', false, nxdomain))).toBe('accepted');
    const never = () => new Promise<string[]>(() => undefined);
    const started = Date.now();
    expect(await message(parseUrl('https://slow.example.com/in', false, never))).toBe('accepted');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('returns the URL normalized', async () => {
    expect(await parseUrl('  HTTPS://93.184.215.14:443/a/../hook?x=1 ', false)).toBe('https://93.184.215.14/hook?x=1');
  });
});

describe('createWebhook with the default settings (no private addresses)', () => {
  const { server, db } = strict;

  it('refuses loopback, private, link-local and mapped addresses, and http anywhere', async () => {
    const before = await webhookCount(db);
    await expectRefused(server, 'http://127.0.0.1:9/hook', /127\.0\.0\.1 is a loopback address/);
    await expectRefused(server, 'https://127.0.0.1/hook', /127\.0\.0\.1 is a loopback address.*WEBHOOK_ALLOW_PRIVATE/);
    await expectRefused(server, 'https://[::1]/hook', /::1 is a loopback address/);
    await expectRefused(server, 'https://localhost/hook', /localhost is a loopback name/);
    await expectRefused(server, 'https://169.254.169.254/latest/meta-data', /169\.254\.169\.254 is a linkLocal address/);
    await expectRefused(server, 'https://10.0.0.5/hook', /10\.0\.0\.5 is a private address/);
    await expectRefused(server, 'https://[::ffff:127.0.0.1]/hook', /is a loopback address/);
    await expectRefused(server, 'http://93.184.215.14/hook', /^url must be https$/);
    await expectRefused(server, 'https://user:secret@93.184.215.14/hook', /user name or password/);
    await expectRefused(server, 'hooks.example.com/in', /not an absolute URL/);
    expect(await webhookCount(db)).toBe(before);
  });

  it('refuses a host name that resolves to loopback: the machine\'s own name', async () => {
    const name = hostname();
    const addresses = await ownAddresses();
    const refused = addresses.some((a) => addressRefusal(a, false) !== undefined);
    const res = await create(server, `https://${name}/hook`);
    if (refused) {
      expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'url' });
      expect(res.body.errors?.[0]?.message).toContain(`${name} resolves to`);
    } else {
      // A machine whose name resolves to public addresses only (or not at all) may have hooks pointed at it.
      expect(res.body.errors).toBeUndefined();
    }
  });

  it('accepts https to a public address, and a name that does not resolve (delivery checks it again)', async () => {
    expect(await expectAccepted(server, 'https://93.184.215.14/hook')).toBe('https://93.184.215.14/hook');
    expect(await expectAccepted(server, 'https://[2606:4700::1111]:8443/in')).toBe('https://[2606:4700::1111]:8443/in');
    expect(await expectAccepted(server, 'https://no-such-host.invalid/in')).toBe('https://no-such-host.invalid/in');
  });

  it('applies the same rules to a new url on updateWebhook, and leaves the webhook as it was', async () => {
    const id = (await create(server, 'https://93.184.215.14/before')).body.data!.createWebhook.webhook.id;
    const res = await server.gql(`mutation { updateWebhook(id: "${id}", input: { url: "https://127.0.0.1/after" }) { url } }`);
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'url' });
    const named = await server.gql(`mutation { updateWebhook(id: "${id}", input: { url: "https://localhost:8443/after" }) { url } }`);
    expect(named.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'url' });
    const read = await server.gql<{ webhook: { url: string } }>(`{ webhook(id: "${id}") { url } }`);
    expect(read.body.data!.webhook.url).toBe('https://93.184.215.14/before');
  });
});

describe('createWebhook with WEBHOOK_ALLOW_PRIVATE=true', () => {
  const { server } = lenient;

  it('accepts http and https to loopback and private addresses, and names resolving to them', async () => {
    expect(await expectAccepted(server, 'http://127.0.0.1:8080/hook')).toBe('http://127.0.0.1:8080/hook');
    expect(await expectAccepted(server, 'https://[::1]:8443/hook')).toBe('https://[::1]:8443/hook');
    expect(await expectAccepted(server, 'http://10.0.0.5/hook')).toBe('http://10.0.0.5/hook');
    expect(await expectAccepted(server, 'http://localhost:8080/hook')).toBe('http://localhost:8080/hook');
    expect(await expectAccepted(server, 'https://169.254.169.254/hook')).toBe('https://169.254.169.254/hook');
  });

  it('still refuses http to a public address, and what no setting allows', async () => {
    await expectRefused(server, 'http://93.184.215.14/hook', /must be https unless its host is a private address/);
    await expectRefused(server, 'https://224.0.0.1/hook', /multicast/);
    await expectRefused(server, 'https://0.0.0.0/hook', /unspecified/);
    expect(await expectAccepted(server, 'https://93.184.215.14/hook')).toBe('https://93.184.215.14/hook');
  });
});
