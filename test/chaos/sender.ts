// The fault suite's event sender: a separate process that sends "go" to each
// waiting instance at a random moment (some before the step is reached, so
// they are buffered), retrying through connection faults, then exits.
import { createClient, InvalidStateError } from '../../src/index.ts';

const ids: string[] = JSON.parse(process.argv[2] ?? '[]');
const spreadMs = Number(process.argv[3] ?? 5_000);
// The database may be restarting right now (a fault of the suite): keep trying to connect.
async function connect() {
  for (let attempt = 0; ; attempt++) {
    try {
      return await createClient({ config: { logLevel: 'silent' } });
    } catch {
      await new Promise((r) => setTimeout(r, Math.min(2_000, 100 * 2 ** attempt)));
    }
  }
}
const client = await connect();
let sent = 0;
await Promise.all(
  ids.map(async (id) => {
    await new Promise((r) => setTimeout(r, Math.random() * spreadMs));
    for (let attempt = 0; ; attempt++) {
      try {
        await client.sendEvent(id, 'go', 1);
        sent += 1;
        return;
      } catch (error) {
        if (error instanceof InvalidStateError) return; // it already ended (cancelled, timed out)
        await new Promise((r) => setTimeout(r, Math.min(2_000, 50 * 2 ** attempt)));
      }
    }
  }),
);
process.stdout.write(`sent ${sent}\n`);
await client.close();
