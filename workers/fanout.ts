// A fan-out: split the input into 10 shards, process them in parallel
// branches (spread over every worker), then join.
//
//   npm run baton -- start fanout '{"items":[1,2,3,4,5,6,7,8,9,10,11,12]}' --wait
//
// One shard's result, by its task key (step 1, branch 3), without loading the rest:
//
//   npm run baton -- status <id> --task 1/b3        // or client.taskResult(id, '1/b3')
import { defineTask, defineWorkflow } from 'baton';

const SHARDS = 10;

export const split = defineTask('split', async (input: { items: number[] }) =>
  Array.from({ length: SHARDS }, (_, shard) => input.items.filter((_, i) => i % SHARDS === shard)),
);

const processShard = (shard: number) =>
  defineTask(`process-shard-${shard}`, async (shards: number[][]) => {
    const items = shards[shard] ?? [];
    return items.reduce((sum, n) => sum + n * n, 0);
  });

export const total = defineTask('total', async (sums: number[]) => ({ sumOfSquares: sums.reduce((a, b) => a + b, 0), shards: sums.length }));

export const fanout = defineWorkflow('fanout')
  .then(split)
  .parallel(Array.from({ length: SHARDS }, (_, i) => processShard(i)))
  .then(total)
  .build();
