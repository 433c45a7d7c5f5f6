// Child process for the embedded-server tests: start (or attach), report, stop when stdin closes.
// A third argument "default" says the port is only a default (the server of another project may hold it).
import { startEmbedded } from '../../src/db/embedded.ts';

const [dataDir, port, mode] = process.argv.slice(2);
const server = await startEmbedded({ dataDir: dataDir!, port: Number(port), portIsDefault: mode === 'default' });
process.stdout.write(`${JSON.stringify({ url: server.url, owner: server.owner, pid: process.pid })}\n`);
process.stdin.on('end', () => {
  void server.stop().then(() => process.exit(0));
});
process.stdin.resume();
