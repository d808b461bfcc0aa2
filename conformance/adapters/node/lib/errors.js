// Registered error codes (spec chapter 7, spec/errors.json) that this
// adapter can report. Only the codes it uses are listed; the registry is the
// authority for the rest.

export const ERROR_CODES = Object.freeze({
  'decode.malformed': 1001,
  'decode.truncated': 1002,
  'decode.trailing_bytes': 1003,
  'decode.indefinite_length': 1004,
  'decode.tag': 1005,
  'decode.float': 1006,
  'decode.non_shortest': 1007,
  'decode.unsorted_map': 1008,
  'decode.duplicate_key': 1009,
  'decode.invalid_utf8': 1010,
  'decode.unknown_field': 1011,
  'decode.missing_field': 1012,
  'decode.wrong_type': 1013,
  'decode.too_deep': 1014,
  'decode.too_long': 1015,
  'decode.too_short': 1016,
  'decode.too_many': 1017,
  'decode.value_out_of_range': 1018,
  'decode.unsupported_version': 1019,
  'auth.bad_signature': 2001,
});

// ProtocolError is a failure with a registered code: the adapter answers it
// with status ERROR, errorCode and errorName. Any other exception is a bug
// or a bad request and is answered ERROR without a code.
export class ProtocolError extends Error {
  /**
   * @param {string} name  a registered error name, such as "decode.truncated"
   * @param {string} [detail]  free text for people
   */
  constructor(name, detail) {
    if (!(name in ERROR_CODES)) throw new Error(`unregistered error name ${name}`);
    super(detail ? `${name}: ${detail}` : name);
    this.errorName = name;
    this.errorCode = ERROR_CODES[name];
    this.detail = detail || '';
  }
}
