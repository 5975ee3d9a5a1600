import { expect } from 'vitest';
import { QueryBatchError, type ErrorCode } from '../../src/errors.js';

/** Runs fn and returns the QueryBatchError it throws; fails the test when it does not throw one. */
export function thrown(fn: () => unknown): QueryBatchError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(QueryBatchError);
    return error as QueryBatchError;
  }
  throw new Error('expected a QueryBatchError, nothing was thrown');
}

/** Expects fn to throw a QueryBatchError with this code and message fragments. */
export function expectError(fn: () => unknown, code: ErrorCode, ...fragments: string[]): QueryBatchError {
  const error = thrown(fn);
  expect(error.code).toBe(code);
  for (const fragment of fragments) expect(error.message).toContain(fragment);
  return error;
}
