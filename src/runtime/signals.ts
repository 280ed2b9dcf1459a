/**
 * The stop signal of an image (its config's StopSignal), as runc's `kill` takes it: a
 * signal name, with or without its SIG prefix and in any case, or a number. An image may
 * name anything there; a name runc does not know made every stop of its containers fail
 * ("unknown signal"), so that their pods could not be deleted. Such a signal is replaced
 * by SIGTERM, as an image that names none gets.
 */

/** Linux signal names runc knows, without the SIG prefix. */
const NAMES = new Set([
  'ABRT',
  'ALRM',
  'BUS',
  'CHLD',
  'CLD',
  'CONT',
  'FPE',
  'HUP',
  'ILL',
  'INT',
  'IO',
  'IOT',
  'KILL',
  'PIPE',
  'POLL',
  'PROF',
  'PWR',
  'QUIT',
  'SEGV',
  'STKFLT',
  'STOP',
  'SYS',
  'TERM',
  'TRAP',
  'TSTP',
  'TTIN',
  'TTOU',
  'URG',
  'USR1',
  'USR2',
  'VTALRM',
  'WINCH',
  'XCPU',
  'XFSZ',
]);
/** Signal numbers are 1 to 64 on Linux. */
const MAX_SIGNAL = 64;

export const DEFAULT_STOP_SIGNAL = 'SIGTERM';

/** The signal to stop a container with, given its image's StopSignal; see above. */
export function stopSignalOf(configured: string | undefined): string {
  const text = (configured ?? '').trim();
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    return n >= 1 && n <= MAX_SIGNAL ? String(n) : DEFAULT_STOP_SIGNAL;
  }
  const name = text.toUpperCase().replace(/^SIG/, '');
  return NAMES.has(name) ? `SIG${name}` : DEFAULT_STOP_SIGNAL;
}
