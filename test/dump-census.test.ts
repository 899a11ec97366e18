import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CensusTally } from '../src/backup/dump-census/census-tally.js';
import type { DumpCensus } from '../src/backup/dump-census/census-tally.js';
import { InsertStatementCensus } from '../src/backup/dump-census/insert-statement-census.js';

/** Feeds `dump` to a fresh census in the given chunk sizes (cycled), and returns its result. */
async function census(dump: Buffer, sizes: readonly number[]): Promise<DumpCensus> {
  const tally = new CensusTally();
  const sink = new InsertStatementCensus(tally);
  let at = 0;
  for (let k = 0; at < dump.length; k += 1) {
    const size = sizes[k % sizes.length]!;
    await new Promise<void>((resolve, reject) => sink.write(dump.subarray(at, at + size), (error) => (error ? reject(error) : resolve())));
    at += size;
  }
  await new Promise<void>((resolve, reject) => {
    sink.once('error', reject);
    sink.end(resolve);
  });
  return tally.result();
}

/** A small deterministic generator, so a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/** The bytes that make counting hard: quotes, escapes, row-like text, statement ends, newlines. */
const TRICKY = ["'", "\\'", "''", '\\\\', '),(', '(', ')', ';', '\n', '"', '\\"', 'VALUES', 'x', 'é', '\\n', ',', '\\0'];

/** A single-quoted SQL string of tricky text; `\` before a byte other than the ones above stays an escape. */
function trickyString(next: () => number): string {
  let body = '';
  const length = Math.floor(next() * 8);
  for (let i = 0; i < length; i += 1) {
    const piece = TRICKY[Math.floor(next() * TRICKY.length)]!;
    // A lone quote must be escaped inside the string, one way or the other.
    body += piece === "'" ? (next() < 0.5 ? "\\'" : "''") : piece;
  }
  return `'${body}'`;
}

/** Any value of a column no count reads. */
function anyValue(next: () => number): string {
  const kind = Math.floor(next() * 5);
  if (kind === 0) return 'NULL';
  if (kind === 1) return String(Math.floor(next() * 2e9) - 1e9);
  if (kind === 2) return `0x${Buffer.from([Math.floor(next() * 256), 0x29, 0x27, 0x28]).toString('hex').toUpperCase()}`;
  if (kind === 3) return '1.5e+20';
  return trickyString(next);
}

const HEAD = `-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB
/*!40101 SET NAMES utf8mb4 */;
CREATE TABLE \`sales\` (
  \`id\` int(11) NOT NULL AUTO_INCREMENT,
  \`name\` varchar(64) NOT NULL,
  \`stock\` int(11) NOT NULL,
  \`sold\` int(11) NOT NULL,
  PRIMARY KEY (\`id\`)
) ENGINE=InnoDB;
CREATE TABLE \`orders\` (
  \`id\` varchar(64) NOT NULL,
  \`sale_id\` int(11) NOT NULL,
  \`user_id\` varchar(128) NOT NULL,
  \`status\` varchar(16) NOT NULL,
  \`created_at\` bigint(20) NOT NULL,
  \`reason\` varchar(32) DEFAULT NULL,
  PRIMARY KEY (\`id\`)
) ENGINE=InnoDB;
CREATE TABLE \`payments\` (
  \`order_id\` varchar(64) NOT NULL,
  \`reference\` varchar(128) DEFAULT NULL
) ENGINE=InnoDB;
`;

interface Generated {
  readonly dump: Buffer;
  readonly expected: DumpCensus;
}

/**
 * A dump in mariadb-dump's shape, with rows whose strings hold everything a row scanner
 * could take for structure, and the census it must give (counted while generating).
 */
function generate(seed: number, statements: number): Generated {
  const next = random(seed);
  const liveOrders = new Map<number, number>();
  const counts = { sales: 0, orders: 0, payments: 0, rejected_orders: 0 };
  const sales: { saleId: number; stock: number; sold: number }[] = [];
  let text = HEAD;
  let saleId = 0;
  for (let s = 0; s < statements; s += 1) {
    const table = (['sales', 'orders', 'orders', 'payments', 'rejected_orders'] as const)[Math.floor(next() * 5)]!;
    const rows: string[] = [];
    const n = 1 + Math.floor(next() * 6);
    for (let r = 0; r < n; r += 1) {
      if (table === 'sales') {
        saleId += 1;
        const stock = Math.floor(next() * 1e6);
        const sold = Math.floor(next() * 10) - 3;
        sales.push({ saleId, stock, sold });
        rows.push(`(${saleId},${trickyString(next)},${stock},${sold})`);
      } else if (table === 'orders') {
        const sale = 1 + Math.floor(next() * 4);
        const status = ['created', 'paid', 'expired', 'cancelled', "it''s ),( paid"][Math.floor(next() * 5)]!;
        if (status === 'created' || status === 'paid') liveOrders.set(sale, (liveOrders.get(sale) ?? 0) + 1);
        rows.push(`(${trickyString(next)},${sale},${trickyString(next)},'${status}',${anyValue(next)},${anyValue(next)})`);
      } else if (table === 'payments') {
        rows.push(`(${anyValue(next)},${anyValue(next)})`);
      } else {
        // rejected_orders has no CREATE TABLE here: it is only counted, never read by column.
        rows.push(`(${Array.from({ length: 1 + Math.floor(next() * 4) }, () => anyValue(next)).join(',')})`);
      }
      counts[table] += 1;
    }
    const verb = ['INSERT INTO', 'INSERT IGNORE INTO', 'REPLACE INTO'][Math.floor(next() * 3)]!;
    // Most statements on one line as mariadb-dump writes them; some spread over lines.
    const separator = next() < 0.8 ? ',' : ',\n';
    text += `${verb} \`${table}\` VALUES ${rows.join(separator)};\n`;
    if (next() < 0.3) text += `/*!40000 ALTER TABLE \`${table}\` ENABLE KEYS */;\n-- a comment: INSERT INTO \`x\` VALUES (1);\n`;
  }
  text += '-- Dump completed\n';
  const expected: DumpCensus = {
    rowCounts: Object.fromEntries(Object.entries(counts).filter(([table, count]) => count > 0 || table !== 'rejected_orders').sort(([a], [b]) => (a < b ? -1 : 1))),
    sales: sales.map((sale) => ({ ...sale, liveOrders: liveOrders.get(sale.saleId) ?? 0 })),
  };
  return { dump: Buffer.from(text, 'utf8'), expected };
}

describe('InsertStatementCensus', () => {
  it('counts rows and reads the sale snapshot of tricky data, at every chunk boundary', async () => {
    for (let seed = 1; seed <= 12; seed += 1) {
      const { dump, expected } = generate(seed, 6);
      const whole = await census(dump, [dump.length]);
      assert.deepEqual(whole, expected, `seed ${seed}, in one chunk`);
      // Every split in two: a boundary anywhere — in a head, a string, an escape, a number.
      for (let cut = 1; cut < dump.length; cut += 1) {
        assert.deepEqual(await census(dump, [cut, dump.length]), expected, `seed ${seed}, cut at byte ${cut}`);
      }
    }
  });

  it('gives the same census whatever the chunk sizes, on a larger dump', async () => {
    const { dump, expected } = generate(99, 400);
    for (const sizes of [[1], [2, 3, 5], [7, 64, 1], [4096], [65536, 13]]) {
      assert.deepEqual(await census(dump, sizes), expected, `chunks of ${sizes.join(', ')}`);
    }
  });

  it('reads column lists, names holding VALUES or backticks, and other statements', async () => {
    const dump = Buffer.from(
      [
        'CREATE TABLE `VALUES` (',
        '  `a` int(11)',
        ') ENGINE=InnoDB;',
        'INSERT INTO `VALUES` VALUES (1),(2);',
        'INSERT INTO `we``ird` (`VALUES`, `b`) VALUES (\'),(\',1),(")",2);',
        'INSERT INTO `sales` (`sold`, `stock`, `id`) VALUES (3,10,7);',
        'INSERT INTO `orders` (`status`, `sale_id`) VALUES (\'paid\',7),(\'created\',7),(\'cancelled\',7);',
        'INSERT INTO `blobs` VALUES (0x28292C3B27,_binary \'\\\'),(\\\\\'),(NULL);',
        '-- INSERT INTO `orders` VALUES (\'x\',1);',
        'UNLOCK TABLES;',
        '',
      ].join('\n'),
    );
    const expected: DumpCensus = {
      rowCounts: { VALUES: 2, blobs: 2, orders: 3, sales: 1, 'we`ird': 2 },
      sales: [{ saleId: 7, stock: 10, sold: 3, liveOrders: 2 }],
    };
    for (let cut = 1; cut < dump.length; cut += 1) assert.deepEqual(await census(dump, [cut, dump.length]), expected, `cut at byte ${cut}`);
  });

  it('fails on a dump cut inside an INSERT', async () => {
    await assert.rejects(census(Buffer.from("INSERT INTO `payments` VALUES ('a',1),('b"), [5]), /ends inside an INSERT of table payments/);
  });
});
