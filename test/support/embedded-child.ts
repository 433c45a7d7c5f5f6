// Child process for the embedded-server tests: start (or attach), report, stop when stdin closes.
import { startEmbedded } from '../../src/db/embedded.ts';

const [dataDir, port] = process.argv.slice(2);
const server = await startEmbedded({ dataDir: dataDir!, port: Number(port) });
process.stdout.write(`${JSON.stringify({ url: server.url, owner: server.owner, pid: process.pid })}\n`);
process.stdin.on('end', () => {
  void server.stop().then(() => process.exit(0));
});
process.stdin.resume();
