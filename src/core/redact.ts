/**
 * The one redactor for text that leaves the process (log lines, error messages, readiness reasons, hook output,
 * configuration errors). Secrets are kept out by construction everywhere; this is the net under that: anything
 * shaped like an API token, a JWT, a bearer or basic credential, URL credentials, a secret query parameter or a
 * PEM private key is blanked.
 *
 * The logger runs it over every serialized line, JSON included, so no shape may consume a `"` or a `\` that is not
 * part of the secret: a replacement must never break the line's quoting.
 */

export const REDACTED = '[redacted]';

interface SecretShape {
  /** Substrings without one of which the shape cannot match: a cheap test that skips the regex on most text. */
  readonly hints: readonly string[];
  readonly pattern: RegExp;
  readonly replace: (match: string, ...groups: string[]) => string;
}

const blank = (): string => REDACTED;
const keepPrefix = (_match: string, prefix: string): string => `${prefix}${REDACTED}`;

/** A JWT's first part is base64url of its JSON header: it decodes to `{` and then (after blanks) `"`. */
function jwtOrKeep(match: string): string {
  const header = match.slice(0, match.indexOf('.'));
  return /^\{\s*"/.test(Buffer.from(header, 'base64url').toString('latin1')) ? REDACTED : match;
}

function basicOrKeep(match: string, prefix: string, credential: string): string {
  const decoded = Buffer.from(credential, 'base64').toString('latin1');
  return /^[\x20-\x7e]*:[\x20-\x7e]*$/.test(decoded) ? `${prefix}${REDACTED}` : match;
}

const SHAPES: readonly SecretShape[] = [
  // An Enkryptify API token: the prefix and whatever follows it, up to a blank, a quote or a backslash (JSON escapes).
  { hints: ['ek_live_'], pattern: /ek_live_[^\s"'`\\]+/g, replace: blank },
  // A compact JWS/JWE, or a JWT cut after its payload's start: base64url of a JSON header (`ey…` or `ew…`), long
  // enough for `{"alg":…}`, then dot-separated parts; also right after a JSON escape such as `\n`. The header check
  // spares host names like ewr1-prod.example.com.
  {
    hints: ['ey', 'ew'],
    pattern: /(?:(?<![A-Za-z0-9_-])|(?<=\\[nrtbf])|(?<=\\u[0-9a-fA-F]{4}))e[yw][A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{2,}(?:\.[A-Za-z0-9_-]*){0,3}/g,
    replace: jwtOrKeep,
  },
  // user:password@ in a URL (userinfo cannot hold `/`, `?`, `#` or `@`).
  { hints: ['://'], pattern: /([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@"\\]+@/gi, replace: (_m, scheme = '') => `${scheme}${REDACTED}@` },
  // `Authorization: Bearer <credential>` of any shape; 16+ characters so prose ("Bearer token") survives.
  { hints: ['earer', 'EARER'], pattern: /(Bearer\s+)[A-Za-z0-9._~+/-]{16,}=*/gi, replace: keepPrefix },
  // `Authorization: Basic <base64 of user:password>`; only when it decodes to `user:password`, so prose survives.
  { hints: ['asic', 'ASIC'], pattern: /(Basic\s+)([A-Za-z0-9+/]{4,}=*)/gi, replace: basicOrKeep },
  // Credentials in a query string.
  {
    hints: ['='],
    pattern: /([?&](?:access_token|id_token|refresh_token|token|api_key|apikey|password|client_secret|secret)=)[^&\s"'\\#]+/gi,
    replace: keepPrefix,
  },
  // A PEM private key, raw or with its newlines escaped inside a JSON string, with or without its END line.
  {
    hints: ['PRIVATE KEY'],
    pattern: /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:[A-Za-z0-9+/=\s]|\\[nrt])*(?:-----END [A-Z0-9 ]*PRIVATE KEY-----)?/g,
    replace: blank,
  },
];

export function redact(text: string): string {
  let out = text;
  for (const shape of SHAPES) {
    if (shape.hints.some((hint) => out.includes(hint))) out = out.replace(shape.pattern, shape.replace);
  }
  return out;
}

/** True when `text` holds something secret-shaped (for values that must never be echoed at all). */
export function looksSecret(text: string): boolean {
  return redact(text) !== text;
}
