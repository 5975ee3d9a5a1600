import { chromium, type Browser } from 'playwright-core';

/**
 * Debian's chromium through playwright-core (which downloads no browser), headless, with
 * the flags this machine's closed network needs: without the background-networking ones
 * chromium keeps trying to reach Google's hosts.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}
