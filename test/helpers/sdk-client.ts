// The vendor TypeScript SDK's requests (Enkryptify/sdk: src/api.ts, its token exchange and its Kubernetes auth),
// reproduced shape for shape from its public source, since the SDK is not installable here. What matters is what
// goes on the wire and how answers are read:
// - one base URL (`baseUrl` or ENKRYPTIFY_API_URL) for the exchange and every read;
// - reads: `GET {base}/v1/workspace/{ws}/project/{prj}/secret/{name}?environmentId=…&resolve=true` (one secret) and
//   `GET {base}/v1/workspace/{ws}/project/{prj}/secret?environmentId=…&resolve=true` (all: the eager cache's first
//   read), each path segment encodeURIComponent'ed, with `Authorization: Bearer <token>` and
//   `Content-Type: application/json`, through the global fetch;
// - `useTokenExchange`: `POST {base}/v1/auth/exchange` with the API token as Bearer, then every read with the
//   returned `accessToken`, kept until shortly before it expires;
// - Kubernetes auth: `POST {base}/v1/auth/oidc/exchange` with `{"token","workspaceId"}`, the token read from
//   ENKRYPTIFY_TOKEN_PATH, then reads with the returned `accessToken`;
// - 401 → AuthenticationError, 403 → AuthorizationError, 404 → NotFoundError (a missing secret, when reading one),
//   429 → RateLimitError, any other failure → ApiError. A secret's value is the environment's personal value,
//   else its shared one.
import { readFile } from 'node:fs/promises';

export class SdkError extends Error {
  readonly status: number;
  constructor(name: string, status: number, what: string) {
    super(`${name}: HTTP ${String(status)} for ${what}`);
    this.name = name;
    this.status = status;
  }
}

export class SecretNotFoundError extends Error {
  constructor(key: string) {
    super(`Secret "${key}" not found`);
    this.name = 'SecretNotFoundError';
  }
}

export type SdkAuth =
  | { readonly kind: 'token'; readonly token: string; readonly useTokenExchange?: boolean }
  | { readonly kind: 'kubernetes'; readonly tokenPath: string };

export interface SdkOptions {
  readonly baseUrl: string;
  readonly workspace: string;
  readonly project: string;
  readonly environment: string;
  readonly auth: SdkAuth;
  /** The eager cache (the SDK's default): the first get() reads every secret at once. */
  readonly eager?: boolean;
  /** An exchanged token is kept until this long before its expiry; default 60 s (scaled down in tests). */
  readonly exchangeMarginMs?: number;
}

interface SecretValue { readonly environmentId: string; readonly value: string; readonly isPersonal: boolean }
interface Secret { readonly name: string; readonly values: readonly SecretValue[] }

export class SdkClient {
  readonly #o: SdkOptions;
  #exchanged: { token: string; expiresAtMs: number } | undefined;

  constructor(options: SdkOptions) {
    this.#o = options;
  }

  /** The access token it holds now (after an exchange), for tests that check which JWT an SDK keeps. */
  get heldToken(): string | undefined {
    return this.#exchanged?.token;
  }

  async get(key: string): Promise<string> {
    const value = this.#o.eager === true
      ? (await this.#request<Secret[]>(this.#secretsPath())).map((secret) => (secret.name === key ? this.#valueOf(secret) : undefined)).find((v) => v !== undefined)
      : await this.#single(key);
    if (value === undefined) throw new SecretNotFoundError(key);
    return value;
  }

  async #single(key: string): Promise<string | undefined> {
    try {
      return this.#valueOf(await this.#request<Secret>(this.#secretsPath(key)));
    } catch (error) {
      if (error instanceof SdkError && error.name === 'NotFoundError') return undefined;
      throw error;
    }
  }

  #secretsPath(name?: string): string {
    const { workspace, project, environment } = this.#o;
    const path = `/v1/workspace/${encodeURIComponent(workspace)}/project/${encodeURIComponent(project)}/secret${name === undefined ? '' : `/${encodeURIComponent(name)}`}`;
    return `${path}?${new URLSearchParams({ environmentId: environment, resolve: 'true' }).toString()}`;
  }

  #valueOf(secret: Secret): string | undefined {
    const here = secret.values.filter((v) => v.environmentId === this.#o.environment);
    return (here.find((v) => v.isPersonal) ?? here.find((v) => !v.isPersonal))?.value;
  }

  async #request<T>(endpoint: string): Promise<T> {
    const token = await this.#token();
    const response = await fetch(`${this.#o.baseUrl}${endpoint}`, {
      method: 'GET',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    });
    if (!response.ok) {
      await response.body?.cancel();
      throw errorFor(response.status, `GET ${endpoint}`);
    }
    return (await response.json()) as T;
  }

  async #token(): Promise<string> {
    const { auth } = this.#o;
    if (auth.kind === 'token' && auth.useTokenExchange !== true) return auth.token;
    const held = this.#exchanged;
    if (held !== undefined && Date.now() < held.expiresAtMs - (this.#o.exchangeMarginMs ?? 60_000)) return held.token;
    const exchange = auth.kind === 'token'
      ? { path: '/v1/auth/exchange', headers: { Authorization: `Bearer ${auth.token}`, 'Content-Type': 'application/json' }, body: undefined }
      : { path: '/v1/auth/oidc/exchange', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token: (await readFile(auth.tokenPath, 'utf8')).trim(), workspaceId: this.#o.workspace }) };
    const response = await fetch(`${this.#o.baseUrl}${exchange.path}`, { method: 'POST', headers: exchange.headers, ...(exchange.body === undefined ? {} : { body: exchange.body }) });
    if (!response.ok) {
      await response.body?.cancel();
      throw errorFor(response.status, `POST ${exchange.path}`);
    }
    const body = (await response.json()) as { accessToken: string; expiresIn: number };
    this.#exchanged = { token: body.accessToken, expiresAtMs: Date.now() + body.expiresIn * 1000 };
    return body.accessToken;
  }
}

function errorFor(status: number, what: string): SdkError {
  const name = status === 401 ? 'AuthenticationError' : status === 403 ? 'AuthorizationError' : status === 404 ? 'NotFoundError' : status === 429 ? 'RateLimitError' : 'ApiError';
  return new SdkError(name, status, what);
}
