/**
 * A controller: event handlers that put keys on a work queue, and workers that reconcile
 * each key against the informer caches. `run` registers handlers and starts the workers;
 * the manager starts the shared informers after every controller has registered.
 */
export interface Controller {
  readonly name: string;
  /** Registers informers and handlers; called before the informers start. */
  register(): void;
  /** Starts the workers; resolves when stop() has been called and they have ended. */
  run(): Promise<void>;
  stop(): void;
}
