// The peer of bench/run.sh (PEER=1): node-oidc-provider 9.x configured like the Tollgate the
// bench runs — one process, the in-memory adapter, opaque access tokens, client_credentials
// with client_secret_basic and private_key_jwt, introspection, and the JWT bearer grant
// (RFC 7523) as a custom grant type verifying the assertion against the IdP's JWKS with jose.
//
// Everything the bench registers in Tollgate through the admin API is given here statically, in
// the JSON file named by PEER_CONFIG (written by bench/lib.sh):
//   { "clients": [ oidc-provider client metadata … ],
//     "idps":    [ { "iss": "https://…", "jwks_uri": "http://127.0.0.1:…/jwks" } … ] }
// It listens on 127.0.0.1 (PEER_PORT, default: any free port) and prints
// "peer listening on http://127.0.0.1:PORT" once ready; the token endpoint is PORT/token and
// the introspection endpoint PORT/token/introspection.
//
// Differences from Tollgate that the bench output notes:
// - the in-memory adapter keeps about 1,000 entries of every kind together (tokens, grants and
//   the jti seen): a used assertion is forgotten after about 1,000 newer entries, and its replay
//   is accepted then; the same eviction drops issued tokens, so refresh tokens cannot be
//   pre-issued in bulk (the refresh_token scenario is n/a for the peer);
// - nothing survives a restart, and several processes cannot share state.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import * as jose from 'jose';
import Provider, { errors } from 'oidc-provider';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA', 'Ed25519'];
const CLOCK_TOLERANCE = 60; // seconds, as Tollgate's timestamp_skew_secs
const MAX_ASSERTION_LIFETIME = 86400; // as Tollgate's max_assertion_lifetime_secs

const config = JSON.parse(readFileSync(process.env.PEER_CONFIG, 'utf8'));

// The server's own signing key (unused for opaque tokens, but a provider needs one).
const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const signing = { ...(await jose.exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: 'peer' };

const server = http.createServer();
await new Promise((resolve) => server.listen(Number(process.env.PEER_PORT || 0), '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;
const tokenEndpoint = `${issuer}/token`;

// oidc-provider refuses to fetch from special-use addresses (its SSRF guard); Tollgate allows a
// plain-http JWKS URI on loopback, where the bench serves every key set. So for loopback URLs
// only, the guard's dispatcher is dropped. Client JWKS fetches are counted.
let clientJwksFetches = 0;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
function fetchAllowingLoopback(url, options) {
  clientJwksFetches += 1;
  if (LOOPBACK.has(new URL(url).hostname)) {
    const { dispatcher, ...rest } = options;
    return globalThis.fetch(url, rest);
  }
  return globalThis.fetch(url, options);
}

const provider = new Provider(issuer, {
  fetch: fetchAllowingLoopback,
  clients: config.clients,
  clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
  enabledJWA: { clientAuthSigningAlgValues: ALGORITHMS },
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    devInteractions: { enabled: false },
  },
  jwks: { keys: [signing] },
  cookies: { keys: ['tollgate-bench-peer'] },
  ttl: { AccessToken: 3600, ClientCredentials: 3600, RefreshToken: 86400 },
  clockTolerance: CLOCK_TOLERANCE,
  // The default is to warn for every request; the bench's clients are static and known.
  renderError(ctx, out) { ctx.body = out; },
});

// The IdPs' key sets: one cached remote JWKS per IdP (jose caches for 10 min and re-fetches on an
// unknown kid at most every 30 s by default; the bench's JWKS servers say max-age=300).
let jwksFetches = 0;
const countingFetch = (url, options) => { jwksFetches += 1; return fetch(url, options); };
const idps = new Map(config.idps.map(({ iss, jwks_uri: uri }) => [
  iss,
  jose.createRemoteJWKSet(new URL(uri), { cacheMaxAge: 300_000, [jose.customFetch]: countingFetch }),
]));

// RFC 7523 §3 as Tollgate checks it (CONTRACT §6): iss an IdP, signature by its keys, sub, aud
// the token endpoint, exp present and not past (nor too far ahead), nbf/iat not in the future,
// jti used once (ReplayDetection, in the adapter — here the in-memory one).
async function jwtBearer(ctx) {
  const { assertion, scope } = ctx.oidc.params;
  if (!assertion) throw new errors.InvalidRequest('missing assertion');
  if (assertion.length > 16384) throw new errors.InvalidGrant('assertion too large');
  let claims;
  try {
    claims = jose.decodeJwt(assertion);
  } catch {
    throw new errors.InvalidGrant('malformed assertion');
  }
  const keys = idps.get(claims.iss);
  if (!keys) throw new errors.InvalidGrant('unknown issuer');
  let payload;
  try {
    ({ payload } = await jose.jwtVerify(assertion, keys, {
      issuer: claims.iss,
      audience: tokenEndpoint,
      algorithms: ALGORITHMS,
      clockTolerance: CLOCK_TOLERANCE,
      requiredClaims: ['exp', 'sub', 'jti'],
    }));
  } catch (e) {
    throw new errors.InvalidGrant(`invalid assertion (${e.code || e.message})`);
  }
  const now = Math.floor(Date.now() / 1000);
  if (payload.exp > now + MAX_ASSERTION_LIFETIME + CLOCK_TOLERANCE) {
    throw new errors.InvalidGrant('assertion lifetime too long');
  }
  if (!(await provider.ReplayDetection.unique(payload.iss, payload.jti, payload.exp + CLOCK_TOLERANCE))) {
    throw new errors.InvalidGrant('the assertion was already used (jti)');
  }
  const { client } = ctx.oidc;
  const common = { accountId: payload.sub, client, gty: 'jwt-bearer', scope: scope || undefined };
  const accessToken = new provider.AccessToken(common);
  const refreshToken = new provider.RefreshToken(common);
  ctx.oidc.entity('AccessToken', accessToken);
  ctx.body = {
    access_token: await accessToken.save(),
    token_type: 'Bearer',
    expires_in: accessToken.expiration,
    refresh_token: await refreshToken.save(),
    scope: scope || undefined,
  };
}
provider.registerGrantType(JWT_BEARER, jwtBearer, ['assertion', 'scope']);

// What the bench reads besides the token endpoint: the JWKS fetches (of the jwt-bearer grant,
// and of clients' jwks_uri) at /bench-metrics.
const handler = provider.callback();
server.on('request', (req, res) => {
  if (req.url === '/bench-metrics') {
    res.setHeader('content-type', 'text/plain');
    res.end(`peer_jwks_fetches_total ${jwksFetches + clientJwksFetches}\n`
      + `peer_jwt_bearer_jwks_fetches_total ${jwksFetches}\n`
      + `peer_client_jwks_fetches_total ${clientJwksFetches}\n`);
    return;
  }
  handler(req, res);
});
// Every bench client must be valid metadata: fail now rather than with invalid_client later.
for (const { client_id: id } of config.clients.filter((c) => c.client_id.startsWith('bench-'))) {
  await provider.Client.find(id);
}
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
console.log(`peer listening on ${issuer}`);
