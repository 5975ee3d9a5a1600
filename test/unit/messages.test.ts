import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { codeAndMessage, withCode } from '../../src/errors.js';
import { delayText } from '../../src/cli/format.js';
import { messageForStatement } from '../../src/db/mysql/ledger-sql.js';
import { describeFailure } from '../../src/run/failure.js';

const SYNTAX = 'You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use';

describe('messageForStatement: the server\'s quote of a statement sent in a ledger transaction', () => {
  it('stops at the statement\'s end', () => {
    expect(messageForStatement(`${SYNTAX} near '; COMMIT' at line 1`, 'INSERT INTO t VALUES (1')).toBe(`${SYNTAX} near '' at line 1`);
    expect(messageForStatement(`${SYNTAX} near ''x; COMMIT' at line 3`, "UPDATE t\nSET\na = 'x")).toBe(`${SYNTAX} near ''x' at line 3`);
  });

  it('cuts a quote the server shortened inside the COMMIT, and leaves one that ends inside the statement', () => {
    const statement = `SELEC ${'a'.repeat(76)}`;
    expect(messageForStatement(`${SYNTAX} near '${statement.slice(-78)}; ' at line 1`, statement)).toBe(`${SYNTAX} near '${statement.slice(-78)}' at line 1`);
    const long = `SELEC ${'b'.repeat(200)}`;
    const quoted = `${SYNTAX} near '${long.slice(0, 80)}' at line 1`;
    expect(messageForStatement(quoted, long)).toBe(quoted);
  });

  it('leaves other messages alone', () => {
    expect(messageForStatement("Table 'db.t' doesn't exist", 'SELECT * FROM t')).toBe("Table 'db.t' doesn't exist");
  });
});

describe('a system error\'s code is said once', () => {
  it('withCode and codeAndMessage', () => {
    let error: unknown;
    try {
      readFileSync('/no/such/file');
    } catch (e) {
      error = e;
    }
    expect(withCode(error)).toMatch(/^ENOENT: no such file or directory, open '\/no\/such\/file'$/);
    expect(withCode(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))).toBe('ECONNRESET: socket hang up');
    expect(codeAndMessage('EACCES', "EACCES: permission denied, open 'x'")).toBe("EACCES: permission denied, open 'x'");
    expect(describeFailure({ code: 'EACCES', message: "EACCES: permission denied, open 'x'" })).toBe("EACCES: permission denied, open 'x'");
    expect(describeFailure({ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:1' })).toBe('ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:1');
  });
});

describe('delayText', () => {
  it('says a delay as given', () => {
    expect([0, 500, 999, 1000, 1500, 10_000, 119_500, 300_000].map(delayText)).toEqual(['0ms', '500ms', '999ms', '1s', '1.5s', '10s', '119.5s', '5m']);
  });
});
