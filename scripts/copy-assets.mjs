// Copies the non-TypeScript files the program reads at run time (Lua scripts) next to the
// compiled JavaScript, so dist/ is complete on its own.
import { cpSync, existsSync } from 'node:fs';

const assets = [['src/stock/redis/lua', 'dist/src/stock/redis/lua']];
for (const [from, to] of assets) {
  if (existsSync(from)) cpSync(from, to, { recursive: true });
}
