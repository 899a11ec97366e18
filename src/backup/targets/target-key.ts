/** Keys are `/`-separated names; this keeps them inside the target's root on every kind of target. */
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Returns `key` when every segment is a plain name (letters, digits, `.`, `_`, `-`, not
 * starting with a dot), so no key can climb out of the target's root (`..`) or collide with
 * a half-written `.partial` file.
 *
 * @throws Error naming the key.
 */
export function checkedKey(key: string): string {
  if (key === '' || !key.split('/').every((segment) => SEGMENT.test(segment))) {
    throw new Error(`invalid backup target key ${JSON.stringify(key)}: use /-separated names of letters, digits, '.', '_' and '-'`);
  }
  return key;
}

/** A key prefix for `list`: empty, or a key, or a key followed by `/`. */
export function checkedPrefix(prefix: string): string {
  if (prefix === '') return prefix;
  checkedKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
  return prefix;
}
