// Package vectors holds the Missive test vectors: JSON files, one per family,
// under v1/ (chapter 9 of the specification).
//
//   - v1/xeddsa.json: XEdDSA signatures and every rejection rule (chapter 3).
//   - v1/pqxdh.json: prekey bundles, prekey messages and the PQXDH key
//     agreement (chapter 4).
//   - v1/ratchet.json: Double Ratchet conversations, step by step (chapter 5).
//   - v1/ratchet_accumulated.json: one digest over many generated Double
//     Ratchet sessions (section 9.2).
//   - v1/wire.json: encodings of every CDDL structure rule of chapters 4, 5,
//     11, 15, 16 and 17, valid and invalid, under the CBOR profile (chapter
//     10).
//   - v1/transport.json: Noise XX and IK sessions with their frame streams
//     (chapter 12).
//   - v1/device_lists.json: signed device lists that a device accepts or
//     refuses (section 15.2, DEV-001).
//   - v1/receipts.json: schedules of receipts and sync content delivered to
//     several devices of two or three accounts, with the state each device
//     reaches (sections 14.3 and 15.7).
//   - v1/group_states.json: signed group states that a device or the server
//     accepts, ignores as duplicates, or refuses (section 16.2, GRP-001,
//     GRP-002).
//   - v1/sender_keys.json: sender keys, their distribution, group messages
//     and a receiving device's sender keys after each step (section 16.3).
//   - v1/media.json: attachment encryption and the checks of a downloaded
//     blob (section 17.2).
//   - v1/lifecycle.json: edits, deletes, timers, expiry and opened content
//     applied by one device, with the orders that converge (chapter 18).
//   - v1/group_receipts.json: receipts for group messages and the status per
//     device, per member and as a whole (section 16.6).
//
// The files are generated: do not edit them. They are written by
// internal/cmd/genvectors, which runs internal/gen, a second implementation of
// the specification written from the specification alone and independent of
// the reference implementation (ref/), in the manner of C2SP's CCTV. Run
// go generate in this directory to regenerate them; the tests check that the
// generator reproduces the committed files byte for byte.
package vectors

import "embed"

//go:generate go run ./internal/cmd/genvectors

// FS holds the version 1 vector files, v1/<family>.json.
//
//go:embed v1/*.json
var FS embed.FS
