/**
 * The one redactor for text that leaves the process (log lines, error messages, readiness reasons, hook output,
 * configuration errors). Secrets are kept out by construction everywhere; this is the net under that: anything
 * shaped like an API token, a JWT or URL credentials is blanked.
 */
const SECRET_SHAPES = [
  // An Enkryptify API token, whatever follows the prefix.
  /ek_live_[^\s"'`,;]*/g,
  // A compact JWS/JWT: three base64url parts; the first two are long enough not to match version numbers or hosts.
  /[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g,
  // user:password@ in a URL.
  /(?<=[a-z][a-z0-9+.-]*:\/\/)[^\s/@]+@/gi,
] as const;

export const REDACTED = '[redacted]';

export function redact(text: string): string {
  let out = text;
  for (const shape of SECRET_SHAPES) out = out.replace(shape, REDACTED);
  return out;
}

/** True when `text` holds something secret-shaped (for values that must never be echoed at all). */
export function looksSecret(text: string): boolean {
  return SECRET_SHAPES.some((shape) => {
    shape.lastIndex = 0;
    const found = shape.test(text);
    shape.lastIndex = 0;
    return found;
  });
}
