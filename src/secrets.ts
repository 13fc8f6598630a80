/**
 * Masking of credentials before text reaches output: configuration errors, log lines and command-line errors are
 * shipped and kept, so a password in a URL, or a `password=` value, is replaced by {@link MASK} first.
 *
 * Masking works on the text, not on a parsed URL, so that a value too broken for `new URL` (exactly the kind that
 * gets echoed in an error) is masked as well. When in doubt it masks too much rather than too little.
 */

/** What a masked credential is replaced with. */
export const MASK = '***';

/** The scheme and `//` a URL starts with (after blanks, which an environment variable may carry). */
const SCHEME = /^\s*[a-z][a-z\d+.-]*:\/\//i;

/** A `password=value` pair (a URL query or a libpq `key=value` string), also `sslpassword=`; quoted values too. */
const PASSWORD_PAIR = /(password\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s&]*)/gi;

/**
 * A URL in free text: from its scheme up to whitespace, a quote, or the start of the next URL (a comma-separated
 * list is split at each scheme). `\b` keeps the look-ahead from matching inside a word.
 */
const URL_IN_TEXT = /\b[a-z][a-z\d+.-]*:\/\/(?:(?!\b[a-z][a-z\d+.-]*:\/\/)[^\s"'`<>])*/gi;

/**
 * The password of one URL replaced by {@link MASK}: `postgres://admin:S3cret@host/db` becomes
 * `postgres://admin:***@host/db`. The whole string is taken as the URL, even when `new URL` would refuse it or it
 * lacks its `scheme://`: the password runs from the first `:` of the user info to the last `@` of the authority, or,
 * in a URL `new URL` refuses (a raw `/`, `?` or `#` in the password), to the last `@` of the string. Also masks
 * `password=` pairs (a query parameter, or a libpq `key=value` string given where a URL belongs).
 *
 * @param url a URL as configured or as quoted in a message; returned unchanged when it holds no credential.
 */
export function maskUrl(url: string): string {
  return maskPasswordPairs(maskUserInfo(url, true));
}

function parses(url: string): boolean {
  try {
    new URL(url);
    return true;
  } catch {
    return false;
  }
}

/**
 * @param bare whether a value without `scheme://` (`admin:S3cret@host/db`) is masked too: yes for a value known to
 *   be a URL, no in free text, where `a:b@c` may be anything.
 */
function maskUserInfo(url: string, bare: boolean): string {
  const scheme = SCHEME.exec(url);
  if (!scheme && !bare) return url;
  const start = scheme ? scheme[0].length : 0;
  const rest = url.slice(start);
  let at = (rest.split(/[/?#]/, 1)[0] ?? '').lastIndexOf('@');
  if (at < 0) {
    // No `@` before the path: a well-formed URL then has no password (an `@` further on is in its path or query).
    if (scheme && parses(url)) return url;
    at = rest.lastIndexOf('@');
  }
  const colon = rest.indexOf(':');
  if (at < 0 || colon < 0 || colon > at) return url;
  return `${url.slice(0, start + colon + 1)}${MASK}${url.slice(start + at)}`;
}

/**
 * {@link maskUrl} for each URL of a comma-separated list (`DATABASE_REPLICA_URLS`). The list is cut where each
 * `scheme://` starts, not at its commas, so a comma inside a password leaves none of it shown.
 *
 * @param list the list as configured.
 */
export function maskUrlList(list: string): string {
  return list
    .split(/(?=\b[a-z][a-z\d+.-]*:\/\/)/i)
    .map(maskUrl)
    .join('');
}

function maskPasswordPairs(text: string): string {
  return text.replace(PASSWORD_PAIR, `$1${MASK}`);
}

/**
 * Every URL password and `password=` value in free text replaced by {@link MASK}: for messages of errors raised by
 * libraries (which may quote the URL they were given) and for comma-separated lists of URLs. Each URL ends at
 * whitespace or a quote; use {@link maskUrl} for a value known to be one URL (its password may hold a space).
 *
 * @param text any text bound for output.
 */
export function maskSecrets(text: string): string {
  return maskPasswordPairs(text.replace(URL_IN_TEXT, (url) => maskUserInfo(url, false)));
}

/**
 * {@link maskSecrets}, after replacing each of `values` (secrets the caller holds, such as a bearer token, which a
 * library may quote in its error) by {@link MASK}, also with surrounding blanks trimmed, as HTTP headers are.
 *
 * @param text any text bound for output.
 * @param values the secrets; undefined and empty ones are skipped.
 */
export function maskKnownSecrets(text: string, values: ReadonlyArray<string | undefined>): string {
  let masked = text;
  for (const value of values.flatMap((v) => (v ? [v, v.trim()] : []))) {
    if (value !== '') masked = masked.split(value).join(MASK);
  }
  return maskSecrets(masked);
}
