// bench/depth-ab.mjs's runner: node depth-ab-child.mjs <tree> <home> <url> <limit>: one
// qb.run({ limit }) with that tree's build; prints its wall and CPU (user + system) time.
const [tree, home, url, limitText] = process.argv.slice(2);
const { QueryBatch } = await import(`${tree}/dist-bench/src/index.js`);
const qb = new QueryBatch({ home, configFile: false, datasources: { main: { url } } });
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const summary = await qb.run({ limit: Number(limitText) });
const runMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
await qb.close();
console.log(JSON.stringify({ success: summary.success, runMs, cpuMs: (cpu.user + cpu.system) / 1000 }));
