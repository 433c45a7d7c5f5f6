import { defineTask } from 'baton';

export const length = defineTask('ts-length', async (text: string): Promise<number> => text.length);
