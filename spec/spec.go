// Package spec embeds the Missive specification: its markdown chapters and
// its data files, chiefly the error-code registry (errors.json). Tools read
// the specification through this package, so the text that people read and
// the data that programs check are the same bytes.
package spec

import "embed"

// Version is the version of this specification (chapter 8).
const Version = "1.0.0-draft.1"

// ProtocolVersion is the protocol version this specification defines.
const ProtocolVersion = 1

// FS holds the chapters (*.md), the CDDL (*.cddl) and the registries (*.json).
//
//go:embed *.md *.json
var FS embed.FS
