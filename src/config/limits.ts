// The longest delay Node's timers take (2^31 − 1 ms, about 24.8 days): a longer one fires after 1 ms,
// with only a TimeoutOverflowWarning. Durations from the command line that feed a timer are refused
// past it (the config schema bounds its own timer periods far below).
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The same in whole seconds, for options given in seconds. */
export const MAX_TIMER_SECONDS = Math.floor(MAX_TIMER_MS / 1000);
