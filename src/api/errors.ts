/**
 * API errors as Kubernetes Status objects. Every expected failure of a request is an
 * ApiError with a stable reason; the HTTP code is chosen here and nowhere else.
 */

export type StatusReason =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Invalid'
  | 'Gone'
  | 'Expired'
  | 'MethodNotAllowed'
  | 'NotAcceptable'
  | 'UnsupportedMediaType'
  | 'RequestEntityTooLarge'
  | 'TooManyRequests'
  | 'Timeout'
  | 'InternalError'
  | 'ServiceUnavailable';

const HTTP_CODE: Record<StatusReason, number> = {
  BadRequest: 400,
  Unauthorized: 401,
  Forbidden: 403,
  NotFound: 404,
  AlreadyExists: 409,
  Conflict: 409,
  Invalid: 422,
  Gone: 410,
  Expired: 410,
  MethodNotAllowed: 405,
  NotAcceptable: 406,
  UnsupportedMediaType: 415,
  RequestEntityTooLarge: 413,
  TooManyRequests: 429,
  Timeout: 504,
  InternalError: 500,
  ServiceUnavailable: 503,
};

export interface StatusCause {
  reason?: string;
  message: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface StatusObject {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message: string;
  reason?: StatusReason;
  details?: StatusDetails;
  code: number;
}

export class ApiError extends Error {
  readonly code: number;

  constructor(
    readonly reason: StatusReason,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message);
    this.name = 'ApiError';
    this.code = HTTP_CODE[reason];
  }

  toStatus(): StatusObject {
    const status: StatusObject = {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      code: this.code,
    };
    if (this.details) status.details = this.details;
    return status;
  }
}

/**
 * The 404 for a path that names no resource (or no subresource), as Kubernetes answers it:
 * with empty details. Clients tell it from an object's 404 by those details; kubectl debug
 * reads them to say ephemeral containers are not served, and crashes if they are missing.
 */
export function pathNotFound(): ApiError {
  return new ApiError('NotFound', 'the server could not find the requested resource', {});
}

/** Names a resource the way Kubernetes messages do: `pods` or `deployments.apps`. */
function qualified(resource: string, group: string): string {
  return group ? `${resource}.${group}` : resource;
}

export function notFound(resource: string, group: string, name: string): ApiError {
  return new ApiError('NotFound', `${qualified(resource, group)} "${name}" not found`, {
    name,
    group,
    kind: resource,
  });
}

export function alreadyExists(resource: string, group: string, name: string): ApiError {
  return new ApiError('AlreadyExists', `${qualified(resource, group)} "${name}" already exists`, {
    name,
    group,
    kind: resource,
  });
}

export function conflict(resource: string, group: string, name: string): ApiError {
  const what = qualified(resource, group);
  return new ApiError(
    'Conflict',
    `Operation cannot be fulfilled on ${what} "${name}": the object has been modified; ` +
      'please apply your changes to the latest version and try again',
    { name, group, kind: resource },
  );
}

/** One validation failure at a field path, in Kubernetes' wording. */
export interface FieldError {
  field: string;
  type: 'Required' | 'Invalid' | 'Unsupported' | 'Duplicate' | 'Forbidden' | 'TooLong' | 'NotFound';
  value?: unknown;
  detail?: string;
}

/** The error's text after its field path, as a Status cause's message carries it. */
export function fieldErrorDetail(err: FieldError): string {
  return formatFieldError(err).slice(err.field.length + 2);
}

export function formatFieldError(err: FieldError): string {
  const typeText = {
    Required: 'Required value',
    Invalid: 'Invalid value',
    Unsupported: 'Unsupported value',
    Duplicate: 'Duplicate value',
    Forbidden: 'Forbidden',
    TooLong: 'Too long',
    NotFound: 'Not found',
  }[err.type];
  let text = `${err.field}: ${typeText}`;
  if (err.value !== undefined && err.type !== 'Required' && err.type !== 'Forbidden') {
    text += `: ${JSON.stringify(err.value)}`;
  }
  if (err.detail) text += `: ${err.detail}`;
  return text;
}

/** The 422 Invalid error for a list of field errors on one object. */
export function invalid(kind: string, group: string, name: string, errs: FieldError[]): ApiError {
  const what = group ? `${kind}.${group}` : kind;
  const list = errs.map(formatFieldError);
  const joined = list.length === 1 ? list[0] : `[${list.join(', ')}]`;
  return new ApiError('Invalid', `${what} "${name}" is invalid: ${joined}`, {
    name,
    group,
    kind,
    causes: errs.map((e) => ({
      reason: `Field${e.type}`,
      message: fieldErrorDetail(e),
      field: e.field,
    })),
  });
}

export function badRequest(message: string): ApiError {
  return new ApiError('BadRequest', message);
}

/**
 * The ApiError an error response stands for: the Status it carries, or, for a body that is
 * not a Status, an error with the body's text and a reason guessed from the HTTP code.
 */
export function errorFromResponse(code: number, text: string): ApiError {
  try {
    const status = JSON.parse(text) as StatusObject;
    if (status?.kind === 'Status' && status.reason) {
      return new ApiError(status.reason, status.message, status.details);
    }
  } catch {
    // Not a Status object: describe the raw answer below.
  }
  const reason: StatusReason =
    code === 404
      ? 'NotFound'
      : code === 409
        ? 'Conflict'
        : code >= 500
          ? 'InternalError'
          : 'BadRequest';
  return new ApiError(reason, text.trim() || `HTTP ${code}`);
}
