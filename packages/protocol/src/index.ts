export {
  ERROR_CATALOGUE,
  ERROR_CODES,
  TresorError,
  errorSpec,
  isErrorCode,
  isTresorError,
  type ErrorCode,
  type ErrorSpec,
  type TresorErrorOptions,
} from './errors.js';
