import type { StatementParams } from '../driver.js';

/**
 * The server's max_allowed_packet bounds every statement sent: a larger packet makes the
 * server drop the connection (which would read as a connection failure and block the
 * datasource). So the session measures what it sends. Pure.
 */

/** Room left in a packet for the protocol's own headers and a statement's framing. */
const HEADROOM = 1024;

/** The largest statement text or prepared-statement packet that fits under `maxAllowedPacket`. */
export function packetBudget(maxAllowedPacket: number): number {
  return Math.max(0, maxAllowedPacket - HEADROOM);
}

/** About how many bytes a prepared statement with these params takes on the wire (the text and each value as bytes). */
export function preparedBytes(sql: string, params: StatementParams): number {
  let bytes = Buffer.byteLength(sql, 'utf8');
  for (const value of Array.isArray(params) ? params : Object.values(params)) {
    if (value instanceof Uint8Array) bytes += value.length;
    else if (typeof value === 'string') bytes += Buffer.byteLength(value, 'utf8');
    else bytes += 16;
  }
  return bytes;
}

/** The error of a statement that can never be sent: the statement's fault (failed/), never the connection's. */
export function packetTooLarge(bytes: number, maxAllowedPacket: number): Error {
  return Object.assign(
    new Error(`Expected the statement with its params to fit in the server's max_allowed_packet (${maxAllowedPacket} bytes); it takes about ${bytes} bytes. Raise max_allowed_packet on the server, or spool a smaller value`),
    { code: 'ER_NET_PACKET_TOO_LARGE', errno: 1153 },
  );
}
