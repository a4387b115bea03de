/** Limits shared by everything that sets timers from user input. */

/** Longest delay a Node timer can hold (2^31 - 1 ms, about 24.8 days). */
export const MAX_MS = 2_147_483_647;
