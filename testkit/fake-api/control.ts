// The `/__control/…` API: the library's controls over HTTP, for a fake API in another process (cli.ts).
// Bad input is 400 `{"message"}`; an unknown route 404. Going down answers first and closes after.
//   GET  /log[?windowMs=N]   the summary (per token and per sub) and every entry     GET /issued   {"issued": [JWT…]}
//   POST /reset                                   POST /down?ms=N   refuse connections for N ms
//   POST /mode    {"fault", "route"?, …}  a persistent fault; {"fault":"ok","route"?} clears
//   POST /enqueue {"fault", "route"?, "count"?, …}  one-shot faults
//   POST /revoke | /allow | /forbid  {"token"}    POST /bind | /unbind  {"sub", "workspaceId"}
//   POST /secret  {"workspace","project","environment","name","value"}  value null deletes
//   POST /oidc/token  {"namespace"?, "serviceAccount"?, "pod"?, "audience"?, "lifetimeSec"?, "flaw"?} → {"token"}
//        a projected token of the fake's own test issuer (cli.ts --oidc-test-issuer); 404 without one
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TOKEN_FLAWS, type MintOptions, type TokenFlaw } from '../projected-token.ts';
import { parseFaultRoute, parseFaultSpec } from './faults.ts';
import { jsonResponse, readJson, writeAnswer } from './http.ts';
import type { FakeApi } from './types.ts';

export interface ControlExtras {
  readonly mint?: (options?: MintOptions) => Promise<string>;
}

type Handler = (api: FakeApi, body: unknown, url: URL, extras: ControlExtras) => Promise<[number, unknown]> | [number, unknown];

function field(body: unknown, name: string): unknown {
  return typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined;
}

function text(body: unknown, name: string): string {
  const value = field(body, name);
  if (typeof value !== 'string' || value === '') throw new Error(`"${name}" must be a non-empty string`);
  return value;
}

function optional<T>(body: unknown, name: string, check: (value: unknown) => value is T, what: string): T | undefined {
  const value = field(body, name);
  if (value === undefined) return undefined;
  if (!check(value)) throw new Error(`"${name}" must be ${what}`);
  return value;
}

const isString = (v: unknown): v is string => typeof v === 'string' && v !== '';
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);
const isPositive = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0;
const isFlaw = (v: unknown): v is TokenFlaw => typeof v === 'string' && (TOKEN_FLAWS as readonly string[]).includes(v);

function mintOptions(body: unknown): MintOptions {
  const entries = {
    namespace: optional(body, 'namespace', isString, 'a non-empty string'),
    serviceAccount: optional(body, 'serviceAccount', isString, 'a non-empty string'),
    pod: optional(body, 'pod', isString, 'a non-empty string'),
    audience: optional(body, 'audience', isStrings, 'an array of strings'),
    lifetimeSec: optional(body, 'lifetimeSec', isPositive, 'a number > 0'),
    flaw: optional(body, 'flaw', isFlaw, `one of ${TOKEN_FLAWS.join(', ')}`),
  };
  return Object.fromEntries(Object.entries(entries).filter(([, value]) => value !== undefined));
}

const tokenVerb = (verb: 'revoke' | 'allow' | 'forbid'): Handler => (api, body) => {
  api[verb](text(body, 'token'));
  return [200, { ok: true }];
};

const ROUTES: Readonly<Record<string, Handler>> = {
  'GET /log': (api, _body, url) => {
    const windowMs = url.searchParams.get('windowMs');
    return [200, { ...api.summary(windowMs === null ? undefined : Number(windowMs)), entries: api.log }];
  },
  'GET /issued': (api) => [200, { issued: api.issued() }],
  'POST /reset': (api) => {
    api.reset();
    return [200, { ok: true }];
  },
  'POST /mode': async (api, body) => {
    const route = field(body, 'route') === undefined ? undefined : parseFaultRoute(field(body, 'route'));
    if (field(body, 'fault') === 'ok') {
      await api.setMode('ok', route === undefined ? {} : { route });
      return [200, { mode: 'ok' }];
    }
    const spec = parseFaultSpec(body);
    await api.setMode(spec);
    return [200, { mode: spec.fault, route: spec.route ?? 'exchange' }];
  },
  'POST /enqueue': (api, body) => {
    const count = field(body, 'count') ?? 1;
    if (typeof count !== 'number' || !Number.isInteger(count) || count < 1) throw new Error('count must be an integer >= 1');
    api.enqueue(parseFaultSpec(body), count);
    return [200, { queued: count }];
  },
  'POST /revoke': tokenVerb('revoke'),
  'POST /allow': tokenVerb('allow'),
  'POST /forbid': tokenVerb('forbid'),
  'POST /bind': (api, body) => {
    api.bind(text(body, 'sub'), text(body, 'workspaceId'));
    return [200, { ok: true }];
  },
  'POST /unbind': (api, body) => {
    api.unbind(text(body, 'sub'), text(body, 'workspaceId'));
    return [200, { ok: true }];
  },
  'POST /secret': (api, body) => {
    const value = field(body, 'value');
    if (typeof value !== 'string' && value !== null) throw new Error('"value" must be a string, or null to delete');
    const ref = { workspace: text(body, 'workspace'), project: text(body, 'project'), environment: text(body, 'environment'), name: text(body, 'name') };
    api.setSecret(ref, value ?? undefined);
    return [200, { ok: true }];
  },
  'POST /oidc/token': async (_api, body, _url, extras) => {
    if (extras.mint === undefined) return [404, { message: 'this fake has no test issuer (start it with --oidc-test-issuer)' }];
    return [200, { token: await extras.mint(mintOptions(body)) }];
  },
};

export async function handleControl(api: FakeApi, req: IncomingMessage, res: ServerResponse, url: URL, extras: ControlExtras = {}): Promise<void> {
  const route = `${req.method ?? ''} ${url.pathname.slice('/__control'.length)}`;
  const reply = (status: number, body: unknown): void => { writeAnswer(res, jsonResponse(status, body)); };
  try {
    if (route === 'POST /down') {
      const ms = Number(url.searchParams.get('ms'));
      if (!Number.isFinite(ms) || ms <= 0) throw new Error('down needs ?ms=<milliseconds > 0>');
      res.once('finish', () => void api.down(ms).catch(() => undefined));
      reply(202, { downForMs: ms });
      return;
    }
    const handler = ROUTES[route];
    if (handler === undefined) {
      reply(404, { message: `no control route ${route}` });
      return;
    }
    const body = req.method === 'POST' ? await readJson(req) : undefined;
    if (route === 'POST /mode' && field(body, 'fault') === 'down') {
      // Answer first: the caller's connection would die with the listener.
      const spec = parseFaultSpec(body);
      res.once('finish', () => void api.setMode(spec).catch(() => undefined));
      reply(200, { mode: 'down' });
      return;
    }
    const [status, answer] = await handler(api, body, url, extras);
    reply(status, answer);
  } catch (error) {
    reply(400, { message: error instanceof Error ? error.message : String(error) });
  }
}
