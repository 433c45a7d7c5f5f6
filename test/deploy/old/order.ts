// The rolling-deploy test's old code (`baton worker --dir test/deploy/old`): version 1 only.
import { defineWorkflow } from '../../../src/index.ts';
import { deployStep } from '../steps.ts';

export const order = defineWorkflow('deploy-order')
  .then(deployStep('old', 'reserve', 50))
  .waitForEvent('go')
  .then(deployStep('old', 'ship', 300))
  .build();
