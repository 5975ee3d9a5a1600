/**
 * Where the dashboard listens unless told: its own file, so that the CLI's option texts can
 * name it without loading the server (hono, prom-client).
 */
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 9464;
