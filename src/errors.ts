/**
 * Stable error codes. Everything inside switchyard throws SwitchyardError with
 * one of these codes; the protocol edge (src/frontend/*) translates a code to a
 * PostgreSQL SQLSTATE or a MySQL errno. docs/errors.md lists them all.
 */
export const ErrorCodes = {
  CONFIG_INVALID: 'SWITCHYARD_CONFIG_INVALID',
  AUTH_FAILED: 'SWITCHYARD_AUTH_FAILED',
  AUTH_TIMEOUT: 'SWITCHYARD_AUTH_TIMEOUT',
  CLIENT_IDLE_TIMEOUT: 'SWITCHYARD_CLIENT_IDLE_TIMEOUT',
  BACKEND_AUTH_FAILED: 'SWITCHYARD_BACKEND_AUTH_FAILED',
  BACKEND_CONNECT_FAILED: 'SWITCHYARD_BACKEND_CONNECT_FAILED',
  BACKEND_GONE: 'SWITCHYARD_BACKEND_GONE',
  POOL_TIMEOUT: 'SWITCHYARD_POOL_TIMEOUT',
  POOL_CLOSED: 'SWITCHYARD_POOL_CLOSED',
  NO_PRIMARY: 'SWITCHYARD_NO_PRIMARY',
  SPLIT_BRAIN: 'SWITCHYARD_SPLIT_BRAIN',
  NO_REPLICA: 'SWITCHYARD_NO_REPLICA',
  PROTOCOL_VIOLATION: 'SWITCHYARD_PROTOCOL_VIOLATION',
  MESSAGE_TOO_LARGE: 'SWITCHYARD_MESSAGE_TOO_LARGE',
  TOO_MANY_CLIENTS: 'SWITCHYARD_TOO_MANY_CLIENTS',
  TLS_REQUIRED: 'SWITCHYARD_TLS_REQUIRED',
  UNSUPPORTED: 'SWITCHYARD_UNSUPPORTED',
  SHUTTING_DOWN: 'SWITCHYARD_SHUTTING_DOWN',
  INTERNAL: 'SWITCHYARD_INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class SwitchyardError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SwitchyardError';
    this.code = code;
  }
}

export function isSwitchyardError(e: unknown): e is SwitchyardError {
  return e instanceof SwitchyardError;
}

/** PostgreSQL SQLSTATE for each code (used only at the PostgreSQL protocol edge). */
export const pgSqlState: Record<ErrorCode, string> = {
  SWITCHYARD_CONFIG_INVALID: 'XX000',
  SWITCHYARD_AUTH_FAILED: '28P01',
  SWITCHYARD_AUTH_TIMEOUT: '08006',
  SWITCHYARD_CLIENT_IDLE_TIMEOUT: '57P05',
  SWITCHYARD_BACKEND_AUTH_FAILED: '28000',
  SWITCHYARD_BACKEND_CONNECT_FAILED: '08001',
  SWITCHYARD_BACKEND_GONE: '08006',
  SWITCHYARD_POOL_TIMEOUT: '53300',
  SWITCHYARD_POOL_CLOSED: '57P01',
  SWITCHYARD_NO_PRIMARY: '57P03',
  SWITCHYARD_SPLIT_BRAIN: '57P03',
  SWITCHYARD_NO_REPLICA: '57P03',
  SWITCHYARD_PROTOCOL_VIOLATION: '08P01',
  SWITCHYARD_MESSAGE_TOO_LARGE: '08P01',
  SWITCHYARD_TOO_MANY_CLIENTS: '53300',
  SWITCHYARD_TLS_REQUIRED: '28000',
  SWITCHYARD_UNSUPPORTED: '0A000',
  SWITCHYARD_SHUTTING_DOWN: '57P01',
  SWITCHYARD_INTERNAL: 'XX000',
};

/** MySQL errno and SQLSTATE for each code (used only at the MySQL protocol edge). */
export const mysqlErrno: Record<ErrorCode, { errno: number; sqlState: string }> = {
  SWITCHYARD_CONFIG_INVALID: { errno: 1105, sqlState: 'HY000' },
  SWITCHYARD_AUTH_FAILED: { errno: 1045, sqlState: '28000' },
  SWITCHYARD_AUTH_TIMEOUT: { errno: 1159, sqlState: '08S01' },
  SWITCHYARD_CLIENT_IDLE_TIMEOUT: { errno: 1159, sqlState: '08S01' },
  SWITCHYARD_BACKEND_AUTH_FAILED: { errno: 1045, sqlState: '28000' },
  SWITCHYARD_BACKEND_CONNECT_FAILED: { errno: 2003, sqlState: 'HY000' },
  SWITCHYARD_BACKEND_GONE: { errno: 2013, sqlState: 'HY000' },
  SWITCHYARD_POOL_TIMEOUT: { errno: 1040, sqlState: '08004' },
  SWITCHYARD_POOL_CLOSED: { errno: 1053, sqlState: '08S01' },
  SWITCHYARD_NO_PRIMARY: { errno: 1290, sqlState: 'HY000' },
  SWITCHYARD_SPLIT_BRAIN: { errno: 1290, sqlState: 'HY000' },
  SWITCHYARD_NO_REPLICA: { errno: 1290, sqlState: 'HY000' },
  SWITCHYARD_PROTOCOL_VIOLATION: { errno: 1047, sqlState: '08S01' },
  SWITCHYARD_MESSAGE_TOO_LARGE: { errno: 1153, sqlState: '08S01' },
  SWITCHYARD_TOO_MANY_CLIENTS: { errno: 1040, sqlState: '08004' },
  SWITCHYARD_TLS_REQUIRED: { errno: 3159, sqlState: 'HY000' },
  SWITCHYARD_UNSUPPORTED: { errno: 1235, sqlState: '42000' },
  SWITCHYARD_SHUTTING_DOWN: { errno: 1053, sqlState: '08S01' },
  SWITCHYARD_INTERNAL: { errno: 1105, sqlState: 'HY000' },
};
