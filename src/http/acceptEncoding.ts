// Accept-Encoding (RFC 9110 §12.5.3): which content coding a client takes, and how much it likes it.
//
//   Accept-Encoding = #( codings [ weight ] )     codings = content-coding / "identity" / "*"
//   weight = OWS ";" OWS "q=" qvalue              qvalue  = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
//
// How this module reads it, for a server that may compress:
//   - no header at all: the client said nothing, and we do not guess (RFC 9110 allows any coding,
//     but old clients and tools send nothing and do not decode): identity.
//   - an empty header: identity only.
//   - codings compare case-insensitively; `x-gzip` is gzip (RFC 9110 §18.6).
//   - q=0 means "not acceptable"; a coding not listed takes the q of `*` when there is one, and is
//     not acceptable otherwise.
//   - a member whose q is malformed (`q=2`, `q=0.5000`, `q=abc`) or whose coding is not a token is
//     ignored, as if it were not there; parameters other than q are ignored.
//   - the first member naming a coding counts; later ones for the same coding are ignored.
//   - among acceptable offered codings the highest q wins; ties go to the server's order.
//   - identity wins only when the client lists it explicitly with a q higher than the best coding's
//     (`gzip;q=0.5, identity` asks for identity first). `identity;q=0` does not make us refuse the
//     request: when nothing offered is acceptable we send identity anyway, which every client reads.

/** A content-coding token, lower case. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
/** A qvalue, RFC 9110 §12.4.2. */
const QVALUE = /^(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)$/;

/**
 * The best coding among `offered` (names in lower case, in the server's order of preference) for
 * the client's Accept-Encoding, or null for identity (send the content as it is).
 */
export function negotiate(
  header: string | readonly string[] | undefined | null,
  offered: readonly string[],
): string | null {
  if (header === undefined || header === null) return null;
  const text = typeof header === 'string' ? header : header.join(',');
  const n = offered.length;
  if (n === 0 || text.length === 0) return null;
  // q per offered coding, -1 while not listed. Offered lists are short (three codings at most).
  const q = n <= 4 ? [-1, -1, -1, -1] : new Array<number>(n).fill(-1);
  let star = -1;
  let identity = -1;
  let from = 0;
  while (from <= text.length) {
    let to = text.indexOf(',', from);
    if (to < 0) to = text.length;
    const member = text.slice(from, to);
    from = to + 1;
    const semi = member.indexOf(';');
    let coding = (semi < 0 ? member : member.slice(0, semi)).trim().toLowerCase();
    if (coding === '' || !TOKEN.test(coding)) continue;
    let weight = 1;
    if (semi >= 0) {
      weight = weightOf(member, semi);
      if (weight < 0) continue;
    }
    if (coding === 'x-gzip') coding = 'gzip';
    if (coding === '*') {
      if (star < 0) star = weight;
    } else if (coding === 'identity') {
      if (identity < 0) identity = weight;
    } else {
      const i = offered.indexOf(coding);
      if (i >= 0 && q[i] < 0) q[i] = weight;
    }
  }
  let best = -1;
  let bestQ = 0;
  for (let i = 0; i < n; i++) {
    const w = q[i] >= 0 ? q[i] : Math.max(star, 0);
    if (w > bestQ) {
      best = i;
      bestQ = w;
    }
  }
  if (best < 0 || identity > bestQ) return null;
  return offered[best];
}

/**
 * The q of the parameters after `;` in a member: 1 without a q, -1 when the q is malformed. The
 * first q counts; other parameters are ignored.
 */
function weightOf(member: string, semi: number): number {
  let from = semi + 1;
  while (from < member.length) {
    let to = member.indexOf(';', from);
    if (to < 0) to = member.length;
    const param = member.slice(from, to);
    from = to + 1;
    const eq = param.indexOf('=');
    if (eq < 0) continue;
    const name = param.slice(0, eq).trim();
    if (name !== 'q' && name !== 'Q') continue;
    const value = param.slice(eq + 1).trim();
    return QVALUE.test(value) ? Number(value) : -1;
  }
  return 1;
}

/**
 * Accept-Encoding reduced to what it means for a server offering `offered`: the coding it gets, or
 * 'identity'. Two requests with the same key get the same response from the compress middleware
 * configured with the same `offered` list, so a cache may key its variants on it (in place of the
 * raw header, whose spellings are many). The list must be the compress middleware's `encodings`:
 * keys computed over another list can put together clients that get different answers.
 */
export function normalizeAcceptEncoding(
  header: string | readonly string[] | undefined | null,
  offered: readonly string[],
): string {
  return negotiate(header, offered) ?? 'identity';
}

/**
 * negotiate() for one offered list, remembering the answer for the header values seen most (browsers
 * send a handful of spellings). Bounded: short values only, and the memory is dropped when full.
 */
export class EncodingNegotiator {
  readonly offered: readonly string[];
  readonly #memo = new Map<string, string | null>();

  constructor(offered: readonly string[]) {
    this.offered = offered.map((c) => c.toLowerCase());
  }

  pick(header: string | readonly string[] | undefined): string | null {
    if (header === undefined) return null;
    if (typeof header !== 'string') return negotiate(header, this.offered);
    const memo = this.#memo;
    const known = memo.get(header);
    if (known !== undefined) return known;
    const coding = negotiate(header, this.offered);
    if (header.length <= MEMO_VALUE_MAX) {
      if (memo.size >= MEMO_ENTRIES) memo.clear();
      memo.set(header, coding);
    }
    return coding;
  }
}

const MEMO_ENTRIES = 256;
const MEMO_VALUE_MAX = 200;
