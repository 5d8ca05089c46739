// The secret reads the vendor SDK makes (Enkryptify/sdk src/api.ts), answered from a small in-memory store:
//   GET /v1/workspace/{ws}/project/{prj}/secret?environmentId=…&resolve=true          → 200 [Secret, …]
//   GET /v1/workspace/{ws}/project/{prj}/secret/{name}?environmentId=…&resolve=true   → 200 Secret, or 404 {"message"}
// Path segments are percent-decoded (the SDK encodes each). A Secret is {id, name, note, type, dataType,
// values: [{environmentId, value, isPersonal}], createdAt, updatedAt}; `values` holds the requested environment's
// value only, and a secret without one there is neither listed nor found. `type`/`dataType` are "secret"/"string"
// (the vendor does not document other values). A missing environmentId is 400. Authentication and rate limits
// are server.ts's.
import { randomUUID } from 'node:crypto';
import { message, type CannedResponse, jsonResponse } from './http.ts';

/** workspace → project → environment → secret name → value. */
export type SecretSeed = Readonly<Record<string, Readonly<Record<string, Readonly<Record<string, Readonly<Record<string, string>>>>>>>>;

export interface SecretRef {
  readonly workspace: string;
  readonly project: string;
  readonly environment: string;
  readonly name: string;
}

export interface Secret {
  readonly id: string;
  readonly name: string;
  readonly note: string;
  readonly type: string;
  readonly dataType: string;
  readonly values: readonly { readonly environmentId: string; readonly value: string; readonly isPersonal: boolean }[];
  readonly createdAt: string;
  readonly updatedAt: string;
}

interface Stored {
  readonly id: string;
  readonly createdAt: string;
  updatedAt: string;
  readonly values: Map<string, string>;
}

export interface SecretPath {
  readonly workspace: string;
  readonly project: string;
  /** Absent: the list. */
  readonly name?: string;
}

/** The secret route a path names, or undefined (including a segment that does not percent-decode). */
export function parseSecretPath(path: string): SecretPath | undefined {
  const match = /^\/v1\/workspace\/([^/]+)\/project\/([^/]+)\/secret(?:\/([^/]+))?$/.exec(path);
  if (match === null) return undefined;
  try {
    const [workspace, project, name] = [match[1], match[2], match[3]].map((s) => (s === undefined ? undefined : decodeURIComponent(s)));
    if (workspace === undefined || project === undefined) return undefined;
    return name === undefined ? { workspace, project } : { workspace, project, name };
  } catch {
    return undefined;
  }
}

export class SecretStore {
  readonly #secrets = new Map<string, Map<string, Stored>>();
  readonly #now: () => number;

  constructor(now: () => number, seed: SecretSeed = {}) {
    this.#now = now;
    for (const [workspace, projects] of Object.entries(seed)) {
      for (const [project, environments] of Object.entries(projects)) {
        for (const [environment, secrets] of Object.entries(environments)) {
          for (const [name, value] of Object.entries(secrets)) this.set({ workspace, project, environment, name }, value);
        }
      }
    }
  }

  set(ref: SecretRef, value: string): void {
    const project = this.#project(ref.workspace, ref.project, true);
    const at = new Date(this.#now()).toISOString();
    const stored = project.get(ref.name) ?? { id: randomUUID(), createdAt: at, updatedAt: at, values: new Map<string, string>() };
    stored.updatedAt = at;
    stored.values.set(ref.environment, value);
    project.set(ref.name, stored);
  }

  delete(ref: SecretRef): void {
    const project = this.#project(ref.workspace, ref.project, false);
    const stored = project.get(ref.name);
    stored?.values.delete(ref.environment);
    if (stored?.values.size === 0) project.delete(ref.name);
  }

  /** The answer to a secret read, authentication aside. */
  answer(path: SecretPath, environmentId: string | null): CannedResponse {
    if (environmentId === null || environmentId === '') return message(400, 'environmentId is required');
    const project = this.#project(path.workspace, path.project, false);
    if (path.name === undefined) {
      return jsonResponse(200, [...project].flatMap(([name, stored]) => view(name, stored, environmentId) ?? []));
    }
    const stored = project.get(path.name);
    const secret = stored === undefined ? undefined : view(path.name, stored, environmentId);
    return secret === undefined ? message(404, `secret ${path.name} not found in this environment`) : jsonResponse(200, secret);
  }

  #project(workspace: string, project: string, create: boolean): Map<string, Stored> {
    const key = JSON.stringify([workspace, project]);
    const found = this.#secrets.get(key) ?? new Map<string, Stored>();
    if (create) this.#secrets.set(key, found);
    return found;
  }
}

function view(name: string, stored: Stored, environmentId: string): Secret | undefined {
  const value = stored.values.get(environmentId);
  if (value === undefined) return undefined;
  return {
    id: stored.id,
    name,
    note: '',
    type: 'secret',
    dataType: 'string',
    values: [{ environmentId, value, isPersonal: false }],
    createdAt: stored.createdAt,
    updatedAt: stored.updatedAt,
  };
}
