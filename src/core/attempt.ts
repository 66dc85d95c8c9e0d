// Why a host's attempt failed, and whether another attempt can help: shared by every step of a host's run.
import { fixWords, type FrontEnd } from './front-end.js'

/** Why an attempt failed: `retryable` false means another attempt can't help. */
export class AttemptError extends Error {
  constructor(readonly kind: string, message: string, readonly retryable: boolean) {
    super(message)
  }
}

/** The failure of a host the run ended for (timeout or signal) before it finished. */
export function endedError(signal: AbortSignal, frontEnd: FrontEnd): AttemptError {
  const reason = String(signal.reason ?? 'interrupted')
  return reason === 'timeout'
    ? new AttemptError('timed-out', `the time limit (${fixWords(frontEnd).option('--timeout')}) ended before this host finished`, false)
    : new AttemptError('interrupted', `the run was interrupted (${reason})`, false)
}

/** Stops an attempt between steps once the run has ended, so no agent starts after an interrupt. */
export function throwIfEnded(signal: AbortSignal, frontEnd: FrontEnd): void {
  if (signal.aborted) throw endedError(signal, frontEnd)
}

