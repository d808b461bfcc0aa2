package gen

import (
	"encoding/json"
	"fmt"

	"github.com/missive-protocol/missive/spec"
)

// codeError is a failure with a registered error name (chapter 7).
type codeError struct {
	name string
}

func (e *codeError) Error() string { return e.name }

// The registered codes that the generator's implementation reports. Their
// names are checked against spec/errors.json by checkRegistry.
var (
	errMalformed          = &codeError{"decode.malformed"}
	errTruncated          = &codeError{"decode.truncated"}
	errTrailingBytes      = &codeError{"decode.trailing_bytes"}
	errIndefiniteLength   = &codeError{"decode.indefinite_length"}
	errTag                = &codeError{"decode.tag"}
	errFloat              = &codeError{"decode.float"}
	errNonShortest        = &codeError{"decode.non_shortest"}
	errUnsortedMap        = &codeError{"decode.unsorted_map"}
	errDuplicateKey       = &codeError{"decode.duplicate_key"}
	errInvalidUTF8        = &codeError{"decode.invalid_utf8"}
	errUnknownField       = &codeError{"decode.unknown_field"}
	errMissingField       = &codeError{"decode.missing_field"}
	errWrongType          = &codeError{"decode.wrong_type"}
	errTooDeep            = &codeError{"decode.too_deep"}
	errTooLong            = &codeError{"decode.too_long"}
	errTooShort           = &codeError{"decode.too_short"}
	errTooMany            = &codeError{"decode.too_many"}
	errValueOutOfRange    = &codeError{"decode.value_out_of_range"}
	errUnsupportedVersion = &codeError{"decode.unsupported_version"}
	errKeyType            = &codeError{"decode.key_type"}
	errKeyLength          = &codeError{"decode.key_length"}
	errKeyNoncanonical    = &codeError{"decode.key_noncanonical"}
	errBadPadding         = &codeError{"decode.bad_padding"}
	errBadSignature       = &codeError{"auth.bad_signature"}
	errDecryptFailed      = &codeError{"auth.decrypt_failed"}
	errLowOrderKey        = &codeError{"auth.low_order_key"}
	errDuplicateMessage   = &codeError{"state.duplicate_message"}
	errTooManySkipped     = &codeError{"state.too_many_skipped"}
	errUnknownPrekey      = &codeError{"state.unknown_prekey"}
	errNoSendingChain     = &codeError{"state.no_sending_chain"}
	errChainExhausted     = &codeError{"state.chain_exhausted"}
	errTooLarge           = &codeError{"policy.too_large"}
	errDeviceListInvalid  = &codeError{"auth.device_list_invalid"}
	errIdentityChanged    = &codeError{"auth.identity_changed"}
	errDeviceListRollback = &codeError{"state.device_list_rollback"}
	errDeviceNotListed    = &codeError{"auth.device_not_listed"}
	errSenderMismatch     = &codeError{"auth.sender_mismatch"}
	errContentMismatch    = &codeError{"auth.content_mismatch"}
	errDigestMismatch     = &codeError{"auth.digest_mismatch"}
	errGroupInvalid       = &codeError{"auth.group_invalid"}
	errUnknownAccount     = &codeError{"state.unknown_account"}
	errUnknownGroup       = &codeError{"state.unknown_group"}
	errGroupRollback      = &codeError{"state.group_rollback"}
	errUnknownSenderKey   = &codeError{"state.unknown_sender_key"}
	errStaleSenderKey     = &codeError{"state.stale_sender_key"}
	errNotMember          = &codeError{"policy.not_member"}
	errNotAdmin           = &codeError{"policy.not_admin"}
	errNotAuthor          = &codeError{"policy.not_author"}
	errNotEditable        = &codeError{"policy.not_editable"}
	errWindowPassed       = &codeError{"policy.window_passed"}
)

var allCodeErrors = []*codeError{
	errMalformed, errTruncated, errTrailingBytes, errIndefiniteLength, errTag, errFloat,
	errNonShortest, errUnsortedMap, errDuplicateKey, errInvalidUTF8, errUnknownField,
	errMissingField, errWrongType, errTooDeep, errTooLong, errTooShort, errTooMany,
	errValueOutOfRange, errUnsupportedVersion, errKeyType, errKeyLength, errKeyNoncanonical,
	errBadPadding, errBadSignature, errDecryptFailed, errLowOrderKey, errDuplicateMessage,
	errTooManySkipped, errUnknownPrekey, errNoSendingChain, errChainExhausted, errTooLarge,
	errDeviceListInvalid, errIdentityChanged, errDeviceListRollback, errDeviceNotListed, errSenderMismatch,
	errContentMismatch, errDigestMismatch, errGroupInvalid, errUnknownAccount, errUnknownGroup, errGroupRollback,
	errUnknownSenderKey, errStaleSenderKey, errNotMember, errNotAdmin, errNotAuthor, errNotEditable, errWindowPassed,
}

// registeredNames reads the error names of spec/errors.json.
func registeredNames() (map[string]bool, error) {
	b, err := spec.FS.ReadFile("errors.json")
	if err != nil {
		return nil, err
	}
	var reg struct {
		Codes []struct {
			Code int    `json:"code"`
			Name string `json:"name"`
		} `json:"codes"`
	}
	if err := json.Unmarshal(b, &reg); err != nil {
		return nil, fmt.Errorf("errors.json: %v", err)
	}
	names := make(map[string]bool, len(reg.Codes))
	for _, c := range reg.Codes {
		names[c.Name] = true
	}
	return names, nil
}

// checkRegistry fails if the generator uses an error name that the
// specification does not register.
func checkRegistry() error {
	names, err := registeredNames()
	if err != nil {
		return err
	}
	for _, e := range allCodeErrors {
		if !names[e.name] {
			return fmt.Errorf("error name %q is not registered in spec/errors.json", e.name)
		}
	}
	return nil
}

// errName returns the registered name of err, or "" for nil. An error that is
// not a registered code is returned as a failure of the generator.
func errName(err error) (string, error) {
	if err == nil {
		return "", nil
	}
	if ce, ok := err.(*codeError); ok {
		return ce.name, nil
	}
	return "", fmt.Errorf("unregistered failure: %v", err)
}
