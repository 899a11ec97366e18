import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ERRORS } from '../src/http/errors.js';

describe('error codes', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

  it('documents every error code with its status in docs/errors.md', () => {
    for (const [code, { status }] of Object.entries(ERRORS)) {
      const row = doc.split('\n').find((line) => line.startsWith(`| \`${code}\` |`));
      assert.ok(row, `docs/errors.md has no row for ${code}`);
      assert.match(row, new RegExp(`\\| ${status} \\|`), `docs/errors.md gives ${code} another status than ${status}`);
    }
  });

  it('documents no code the server does not have', () => {
    const documented = [...doc.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
    for (const code of documented) assert.ok(code in ERRORS, `docs/errors.md lists ${code}, which the server never answers`);
  });
});
