import { defineTask } from 'baton';

export const upper = defineTask('js-upper', async (text) => text.toUpperCase());
