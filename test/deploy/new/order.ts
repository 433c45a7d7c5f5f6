// The rolling-deploy test's new code (`baton worker --dir test/deploy/new`): version 2 adds a
// fraud check before shipping; version 1 stays exported, unchanged in shape, until no instance of
// it is in flight (`baton definitions`).
import { defineWorkflow } from '../../../src/index.ts';
import { deployStep } from '../steps.ts';

const reserve = deployStep('new', 'reserve', 50);

export const orderV1 = defineWorkflow('deploy-order')
  .then(reserve)
  .waitForEvent('go')
  .then(deployStep('new', 'ship', 300))
  .build();

export const order = defineWorkflow('deploy-order', { version: 2 })
  .then(reserve)
  .waitForEvent('go')
  .then(deployStep('new', 'fraud-check', 100))
  .then(deployStep('new', 'ship-v2', 300))
  .build();
