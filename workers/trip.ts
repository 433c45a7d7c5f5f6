// A saga: book a flight, then a hotel, then charge the card. Each booking
// registers its undo; when a later step fails for good, the undos of the steps
// that completed run in reverse order (each durable and retried like any task),
// and the instance ends `compensated`.
//
//   npm run baton -- start trip '{"tripId":"t-1","nights":2}' --wait       // completes
//   npm run baton -- start trip '{"tripId":"t-2","nights":99}' --wait      // the charge is declined:
//                                                                            // the hotel, then the flight, are cancelled
//   npm run baton -- cancel <id> --compensate                              // undo what completed so far
import { defineTask, defineWorkflow, NonRetryableError } from 'baton';

interface Trip {
  tripId: string;
  nights: number;
}

export const bookFlight = defineTask('trip-book-flight', async (trip: Trip) => ({ ...trip, flight: `F-${trip.tripId}` }));

export const cancelFlight = defineTask(
  'trip-cancel-flight',
  // A compensation gets the step's input and output.
  async ({ output }: { input: Trip; output: Trip & { flight: string } }, ctx) => {
    ctx.log.info({ flight: output.flight }, 'flight cancelled');
    return { cancelled: output.flight };
  },
  { retry: { maxAttempts: 10, backoff: 'exponential' } },
);

export const bookHotel = defineTask('trip-book-hotel', async (trip: Trip & { flight: string }) => ({ ...trip, hotel: `H-${trip.tripId}` }));

export const cancelHotel = defineTask('trip-cancel-hotel', async ({ output }: { input: unknown; output: { hotel: string } }, ctx) => {
  ctx.log.info({ hotel: output.hotel }, 'hotel cancelled');
  return { cancelled: output.hotel };
});

export const chargeCard = defineTask('trip-charge-card', async (trip: Trip & { flight: string; hotel: string }) => {
  if (trip.nights > 30) throw new NonRetryableError(`card declined for ${trip.nights} nights`);
  return { ...trip, charged: trip.nights * 120 };
});

export const trip = defineWorkflow<Trip>('trip')
  .then(bookFlight, { compensate: cancelFlight })
  .then(bookHotel, { compensate: cancelHotel })
  .then(chargeCard)
  .build();
