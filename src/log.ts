import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * The process's root logger. Structured JSON on stderr; the level comes from
 * FLYCES_LOG_LEVEL (default info). Components take a child with their ids bound once:
 * `rootLogger.child({ component: 'scheduler' })`.
 */
export const rootLogger: Logger = pino(
  { level: process.env.FLYCES_LOG_LEVEL ?? 'info', base: { pid: process.pid } },
  pino.destination({ dest: 2, sync: true }),
);

/** A logger for one component, e.g. `componentLogger('agent', { node })`. */
export function componentLogger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return rootLogger.child({ component, ...bindings });
}

/**
 * For one-shot commands that print their own result (`flyces image import`): only
 * warnings and errors are logged, unless FLYCES_LOG_LEVEL asks for more.
 */
export function quietLogs(): void {
  if (process.env.FLYCES_LOG_LEVEL === undefined) rootLogger.level = 'warn';
}
