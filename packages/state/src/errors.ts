/**
 * Errors an operator may meet when the control-plane state is opened or read.
 * Each carries a stable `code` (for programs) and a message written for a person
 * at 3 a.m.: what is wrong, and what to do about it. No message ever contains
 * secret material.
 */
export type StateErrorCode =
  | 'ROOT_SECRET_MISSING'
  | 'ROOT_SECRET_AMBIGUOUS'
  | 'ROOT_SECRET_UNREADABLE'
  | 'ROOT_SECRET_TOO_SHORT'
  | 'ROOT_SECRET_WRONG'
  | 'STORES_MISSING'
  | 'STORES_LOCKED'
  | 'STORE_OPEN_FAILED'
  | 'KMS_MISSING'
  | 'KMS_CORRUPT'
  | 'DECRYPT_FAILED'
  | 'CHECKPOINT_TARGET_EXISTS'
  | 'CHECKPOINT_UNSTABLE'
  | 'STATE_CLOSED';

export class StateError extends Error {
  override readonly name = 'StateError';
  constructor(
    readonly code: StateErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function isStateError(err: unknown, code?: StateErrorCode): err is StateError {
  return err instanceof StateError && (code === undefined || err.code === code);
}
