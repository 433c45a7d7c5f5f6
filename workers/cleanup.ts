// A schedule: every Sunday at 04:17 in Europe/Paris, one cleanup job fleet-wide,
// however many workers run. `npm run baton -- schedules` shows its last and next tick.
// catchUp 'none': a tick missed while no worker ran is skipped, so starting a worker
// on your laptop days later does not run it at once.
import { defineSchedule, defineTask } from 'baton';

export const cleanupTempFiles = defineTask('cleanup-temp-files', async (input: { olderThanDays: number }, ctx) => {
  ctx.log.info({ olderThanDays: input.olderThanDays }, 'cleaning up temporary files (an example: nothing to delete)');
  return { deleted: 0 };
});

export const weeklyCleanup = defineSchedule('weekly-cleanup', {
  cron: '17 4 * * 0',
  timezone: 'Europe/Paris',
  run: cleanupTempFiles,
  input: { olderThanDays: 7 },
  catchUp: 'none',
});
