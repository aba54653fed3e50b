/** One broken rule, named by the field it concerns, with what to do instead. */
export interface Violation {
  rule: string;
  field: string;
  message: string;
  hint: string;
}

/** Base of the errors the domain raises; none of them knows about HTTP. */
export abstract class DomainError extends Error {
  constructor(
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The input is malformed or breaks a rule; carries every violation found. */
export class InputError extends DomainError {
  constructor(
    message: string,
    readonly violations: Violation[] = [],
  ) {
    super(message);
  }
}

/** A guardrail refused the input. */
export class GuardrailError extends InputError {}

/** The thing asked for does not exist (or may not be revealed). */
export class NotFoundError extends DomainError {}

/** The request clashes with the current state (a taken name, a held lock, a finished deployment). */
export class ConflictError extends DomainError {}

/** The caller is known but may not do this. */
export class NotAllowedError extends DomainError {}

/** The caller is not authenticated. */
export class AuthenticationError extends DomainError {}

/** A dependency (database, Temporal) is unavailable; the caller may retry. */
export class ServiceUnavailableError extends DomainError {}

/** The body is larger than accepted. */
export class PayloadTooLargeError extends DomainError {}

/** A deploy freeze holds the tier: 409, with the `deploy_freeze` violation naming the window and its end. */
export class FreezeError extends ConflictError {
  constructor(message: string, violations: Violation[]) {
    super(message, { violations });
  }
}
