/**
 * A small glob matcher for file sets, on `/`-separated paths relative to the set's root:
 * `*` and `?` stay within one path segment, `**` spans any number of segments (`a/**` is
 * everything under `a`, `**\/x` is `x` in any folder), `[abc]`/`[!abc]` are character
 * classes and `{a,b}` alternatives. Unlike a shell, `*` also matches names starting with a
 * dot: a backup should not silently skip `.env`-style configuration.
 */
export class GlobPattern {
  readonly source: string;
  readonly #regex: RegExp;
  /** For `dir/**`: matches `dir` itself, so a walk can skip an excluded folder whole. */
  readonly #folder: RegExp | undefined;

  constructor(glob: string) {
    this.source = glob;
    const normalized = glob.replace(/^\.\//, '').replace(/\/+$/, '');
    this.#regex = new RegExp(`^${translate(normalized)}$`);
    this.#folder = normalized.endsWith('/**') ? new RegExp(`^${translate(normalized.slice(0, -3))}$`) : undefined;
  }

  /** True when the file at `path` matches. */
  matches(path: string): boolean {
    return this.#regex.test(path);
  }

  /** True when everything under the folder `path` matches (the walk need not enter it). */
  coversFolder(path: string): boolean {
    return this.#folder?.test(path) ?? false;
  }
}

function escape(char: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(char) ? `\\${char}` : char;
}

function translate(glob: string): string {
  let out = '';
  let braces = 0;
  for (let i = 0; i < glob.length; i += 1) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        const slashAfter = glob[i + 2] === '/';
        const atSegmentStart = i === 0 || glob[i - 1] === '/';
        if (atSegmentStart && slashAfter) {
          out += '(?:.*/)?';
          i += 2;
        } else {
          out += '.*';
          i += 1;
        }
      } else {
        out += '[^/]*';
      }
    } else if (c === '?') {
      out += '[^/]';
    } else if (c === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close === -1) {
        out += '\\[';
      } else {
        const body = glob.slice(i + 1, close);
        out += `[${body.startsWith('!') ? `^${body.slice(1)}` : body}]`;
        i = close;
      }
    } else if (c === '{') {
      braces += 1;
      out += '(?:';
    } else if (c === '}' && braces > 0) {
      braces -= 1;
      out += ')';
    } else if (c === ',' && braces > 0) {
      out += '|';
    } else {
      out += escape(c);
    }
  }
  if (braces > 0) throw new Error(`the glob ${JSON.stringify(glob)} has an unclosed {`);
  return out;
}
