// Package faults switches on deliberate bugs in the reference
// implementation, for the conformance suite's mutants (a realistic buggy
// implementation must fail the suite). Nothing outside this module can
// import it, and nothing in the module switches a fault on but the
// mutant modes of cmd/missive-adapter and cmd/missive-server.
//
// Each fault is checked at one decision point of ref/; with no fault on,
// the check is one atomic load.
package faults

import (
	"fmt"
	"sort"
	"sync/atomic"
)

// Fault names a deliberate bug.
type Fault string

// The faults, with the check each one breaks.
const (
	AcceptBadSignature        Fault = "accept-bad-signature"          // XEdDSA verification always succeeds
	WeakSCheck                Fault = "weak-s-check"                  // XEdDSA accepts s >= q below 2^253 (XED-005)
	MaskU                     Fault = "mask-u"                        // XEdDSA masks the high bit of u (XED-006)
	AcceptBadPrekeySignature  Fault = "accept-bad-prekey-signature"   // PQXDH uses a bundle whose signatures fail (PQX-004)
	NoKEMBinding              Fault = "no-kem-binding"                // PQXDH leaves the KEM key and ciphertext out of TH (PQX-005)
	WrongKDFLabel             Fault = "wrong-kdf-label"               // the root chain uses another HKDF label (RAT-001)
	NoReplayCheck             Fault = "no-replay-check"               // used skipped message keys are kept (RAT-002, RAT-013)
	SkipPaddingCheck          Fault = "skip-padding-check"            // invalid padding is accepted (RAT-005)
	AcceptNonCanonicalCBOR    Fault = "accept-noncanonical-cbor"      // non-shortest integers and unsorted maps pass (CBOR-005)
	IgnoreUnknownFields       Fault = "ignore-unknown-fields"         // unknown map keys are skipped (CBOR-005)
	StatusBackwards           Fault = "status-backwards"              // the last receipt wins, even a lower one (CLI-004)
	NoDedup                   Fault = "no-dedup"                      // a redelivered message is shown again (CLI-001)
	NoOwnFanout               Fault = "no-own-fanout"                 // sent messages are not sent to the account's other devices (section 15.5)
	AcceptListRollback        Fault = "accept-list-rollback"          // an older device list replaces a newer one (DEV-001)
	IgnoreTTL                 Fault = "ignore-ttl"                    // the server delivers expired entries (SRV-012)
	AcceptRevokedDevice       Fault = "accept-revoked-device"         // the server lets a removed device connect (DEV-009)
	KeepSenderKeyAfterRemoval Fault = "keep-sender-key-after-removal" // a device keeps its group sender key after a member leaves (GRP-011)
	AcceptLateEdit            Fault = "accept-late-edit"              // edits and deletes are applied after their window (LIF-001)
	SkipDigestCheck           Fault = "skip-digest-check"             // a downloaded blob is opened without checking its digest (MED-002)
	IKFallback                Fault = "ik-fallback"                   // a failed IK handshake falls back to XX and pins the new key (TRN-005)
	AcceptUnlistedSender      Fault = "accept-unlisted-sender"        // a prekey message from a device the sender's list does not list with its key makes a session (DEV-020)
	NoRateLimit               Fault = "no-rate-limit"                 // the server never refuses a request as rate-limited (SRV-016)
	NonMemberGroupSend        Fault = "non-member-group-send"         // the server takes a group message from an account that is not a member (GRP-009)
	LastSeenToAll             Fault = "last-seen-to-all"              // the server shows last seen whatever its visibility (SRV-014)
	AnyEnvelopeType           Fault = "any-envelope-type"             // content is taken in any envelope type (MSG-020, MSG-021)
	AckInMemory               Fault = "ack-in-memory"                 // the server hides acknowledged entries in memory, never deleting them (SRV-011, SRV-018)
	ReceiptForReceipt         Fault = "receipt-for-receipt"           // a device answers a receipt with a receipt (CLI-002)
	SentAtUnchecked           Fault = "sent-at-unchecked"             // the server accepts any sent-at (SRV-023)
	SkipLinkMAC               Fault = "skip-link-mac"                 // a primary adds a companion whose mac does not verify (DEV-006)
	NoWriteTimeout            Fault = "no-write-timeout"              // a blocked write waits for ever (TRN-016)
	ReuseOneTimePrekeys       Fault = "reuse-one-time-prekeys"        // the server hands out one-time EC prekeys without removing them (SRV-003)
	UnboundedPrekeys          Fault = "unbounded-prekeys"             // the server holds any number of one-time prekeys for a device (SRV-025)
	BlobsBySize               Fault = "blobs-by-size"                 // the server counts a blob against BLOB_QUOTA by its size alone (MED-009)
	PingBeforeWelcome         Fault = "ping-before-welcome"           // a device sends a ping behind its hello, before the welcome (TRN-013)
	NoKeepalive               Fault = "no-keepalive"                  // a device never sends ping (TRN-014)
	OneRequestID              Fault = "one-request-id"                // a device gives every request id 1 (MSG-005)
	KeepKEMPrekeys            Fault = "keep-kem-prekeys"              // a device keeps the one-time KEM prekeys prekey messages used (PQX-010)
	KeepECPrekeys             Fault = "keep-ec-prekeys"               // a device keeps the one-time EC prekeys prekey messages used (PQX-010)
	PrekeysBeforeSession      Fault = "prekeys-before-session"        // a device looks up prekeys before the session of a prekey message (PQX-011)
	ForgetPrimaryKeys         Fault = "forget-primary-keys"           // a device checks no list against the primary key it recorded (DEV-014)
	NoIdleClose               Fault = "no-idle-close"                 // a device keeps a connection on which it receives nothing (TRN-015)
	NoIdleTimeout             Fault = "no-idle-timeout"               // the server keeps a connection on which it receives nothing (TRN-015)
	TakeLastNumber            Fault = "take-last-number"              // a receiver takes a message numbered 2^32 - 1 (RAT-016)
	ClockMessageIDs           Fault = "clock-message-ids"             // a device makes message ids of its clock and a counter (MSG-002)
	RestartPrekeyIDs          Fault = "restart-prekey-ids"            // a device numbers each upload's one-time EC prekeys from 1 (PQX-002)
	NoStopFlush               Fault = "no-stop-flush"                 // a stopping server drops the last-seen times it holds (SRV-022)
	StoreFailureOpen          Fault = "store-failure-open"            // the server keeps a connection open after its store failed a request (SRV-017)
	StoreSessionsLate         Fault = "store-sessions-late"           // a device stores its advanced sessions once the server has answered a send (RAT-008, SES-002)
	ForgetOwed                Fault = "forget-owed"                   // a device drops what it owes others when the connection it was due on ends (DEV-022)
	OwedInMemory              Fault = "owed-in-memory"                // a device keeps what it owes others in memory only: a restart loses it (DEV-022)
	RestampOwed               Fault = "restamp-owed"                  // a device sends what it owes again with a new message id and sent-at (DEV-022)
	DeleteUnsynced            Fault = "delete-unsynced"               // a device deletes a message for itself alone, telling its other devices nothing (DEV-023)
	IgnoreDeletedSync         Fault = "ignore-deleted-sync"           // a device drops deleted content from its own account's devices (DEV-023)
	NoFirstFrameLimit         Fault = "no-first-frame-limit"          // the server reads a first frame up to MAX_FRAME_SIZE before any hello (TRN-020)
	NoRegisterLimit           Fault = "no-register-limit"             // the server lets one source register accounts without bound (SRV-026)
	DeletionUnmarked          Fault = "deletion-unmarked"             // a device keeps no mark of a deletion: the message, coming after it, is shown (DEV-023)
	NoFanoutLimit             Fault = "no-fanout-limit"               // the server counts a send-group as one send, whatever its group devices (GRP-014)
	NoGroupStateBudget        Fault = "no-group-state-budget"         // the server stores every group state an account authors, as fast as it comes (GRP-015)
	AcceptPushedState         Fault = "accept-pushed-state"           // a device accepts the state of group-update content, not only what the server serves (GRP-016)
	AcceptPushedFork          Fault = "accept-pushed-fork"            // accept-pushed-state, without recording the author's key from such a state (GRP-016)
	NoPrekeyRotation          Fault = "no-prekey-rotation"            // a device never replaces its signed and last-resort prekeys (PQX-012)
	KeepReplacedPrekeys       Fault = "keep-replaced-prekeys"         // a device keeps replaced signed and last-resort prekeys for ever (PQX-013)
	FetchEveryUpdate          Fault = "fetch-every-update"            // a device fetches group states for every group-update content (GRP-017)
	KeepPendingSession        Fault = "keep-pending-session"          // an initiator uses a session that has not heard back however old its bundle (PQX-014)
	UnboundedHandout          Fault = "unbounded-handout"             // the server hands out a device's one-time prekeys to every fetch (SRV-027)
	KeepHandedOut             Fault = "keep-handed-out"               // a device keeps the one-time prekeys the server handed out until they are used (PQX-015)
	NewestHandoutFirst        Fault = "newest-handout-first"          // the server hands out a device's newest one-time prekeys first (SRV-028)
	DropReplacedSession       Fault = "drop-replaced-session"         // a device keeps no session that another replaced, nor tries one (PQX-016)
	NoKeyEpochFetch           Fault = "no-key-epoch-fetch"            // a device refuses a non-member's sender key whatever its epoch (GRP-006)
	NoReaddGap                Fault = "no-readd-gap"                  // the server serves an account added to a group again none of the states made while it was away (GRP-004)
)

// All lists every fault with the check it breaks.
var All = map[Fault]string{
	AcceptBadSignature:        "XEdDSA verification always succeeds",
	WeakSCheck:                "XEdDSA accepts s >= q when s < 2^253, as Signal's rule does (XED-005)",
	MaskU:                     "XEdDSA masks the high bit of u instead of rejecting it (XED-006)",
	AcceptBadPrekeySignature:  "PQXDH uses a bundle whose prekey signatures fail (PQX-004)",
	NoKEMBinding:              "PQXDH leaves the KEM key and ciphertext out of the transcript hash (PQX-005)",
	WrongKDFLabel:             "the root chain uses a misspelt HKDF label (RAT-001)",
	NoReplayCheck:             "used skipped message keys are kept, so replays decrypt (RAT-002, RAT-013)",
	SkipPaddingCheck:          "an invalid padding is accepted (RAT-005)",
	AcceptNonCanonicalCBOR:    "non-shortest integers and unsorted maps are accepted (CBOR-005)",
	IgnoreUnknownFields:       "unknown map keys are skipped (CBOR-005)",
	StatusBackwards:           "the last receipt sets the status, even a lower one (CLI-004)",
	NoDedup:                   "a redelivered message is shown again (CLI-001)",
	NoOwnFanout:               "sent messages are not sent to the account's other devices (section 15.5)",
	AcceptListRollback:        "an older device list replaces a newer one (DEV-001)",
	IgnoreTTL:                 "the server delivers entries after their expiry (SRV-012)",
	AcceptRevokedDevice:       "the server lets a removed device connect (DEV-009)",
	KeepSenderKeyAfterRemoval: "a device goes on encrypting with its group sender key after a member is removed (GRP-011)",
	AcceptLateEdit:            "edits and deletes are applied after their window has passed (LIF-001)",
	IKFallback:                "a failed IK handshake falls back to XX silently and pins the server's new key (TRN-005)",
	SkipDigestCheck:           "a downloaded blob is opened without checking its size and digest (MED-002)",
	AcceptUnlistedSender:      "a prekey message from a device that the sender's device list does not list with its identity key is accepted and makes a session (DEV-020)",
	NoRateLimit:               "the server never refuses a request as rate-limited (SRV-016)",
	NonMemberGroupSend:        "the server skips the membership check of send-group (GRP-009 step 5)",
	LastSeenToAll:             "the server shows an account's last seen whatever its last-seen visibility (SRV-014)",
	AnyEnvelopeType:           "content is taken whatever the type of the envelope it came in (MSG-020, MSG-021)",
	AckInMemory:               "the server hides acknowledged entries in memory and never deletes them from its store: they come again after a restart (SRV-011, SRV-018)",
	ReceiptForReceipt:         "a device answers every receipt it gets with a delivered receipt of its own (CLI-002)",
	SentAtUnchecked:           "the server accepts envelopes whatever their sent-at, even years ahead of its clock (SRV-023)",
	SkipLinkMAC:               "a primary adds the companion of a link request whose mac does not verify (DEV-006)",
	NoWriteTimeout:            "a write to a peer that reads nothing blocks for ever, holding the connection open (TRN-016)",
	ReuseOneTimePrekeys:       "the server's store hands out a one-time EC prekey without removing it, to every fetch (SRV-003)",
	UnboundedPrekeys:          "the server takes every upload of one-time prekeys, however many it holds for the device already (SRV-025)",
	BlobsBySize:               "the server counts a blob against BLOB_QUOTA by its size alone, not as at least MEDIA_CHUNK: an account may hold millions of blobs of 16 bytes (MED-009)",
	PingBeforeWelcome:         "a device sends a ping right behind its hello, before the server's welcome has come (TRN-013)",
	NoKeepalive:               "a device sends no ping, however long it has sent nothing (TRN-014)",
	OneRequestID:              "a device gives every request id 1 and takes the answers in the order of its requests, which the reference server keeps (MSG-005)",
	KeepKEMPrekeys:            "a device deletes the one-time EC prekey a prekey message used but keeps its one-time KEM prekey (PQX-010)",
	KeepECPrekeys:             "a device deletes the one-time KEM prekey a prekey message used but keeps its one-time EC prekey (PQX-010)",
	PrekeysBeforeSession:      "a device takes every prekey message for a new session, never looking for the session an earlier one made (PQX-011)",
	ForgetPrimaryKeys:         "a device takes an account's device list under a new primary key, as if it had recorded none (DEV-014)",
	NoIdleClose:               "a device keeps a connection open however long it receives nothing on it, pings unanswered (TRN-015)",
	NoIdleTimeout:             "the server keeps a connection open however long it receives nothing on it (TRN-015)",
	TakeLastNumber:            "a receiver takes a message numbered 2^32 - 1 like any other, skipping keys up to it, instead of refusing it first (RAT-016)",
	ClockMessageIDs:           "a device makes each message id of its clock (8 bytes of milliseconds) and a counter, unique but not from its random source (MSG-002)",
	RestartPrekeyIDs:          "a device numbers the one-time EC prekeys of each upload after its first from 1 again, giving used and held ids to new keys (PQX-002)",
	NoStopFlush:               "a stopping server drops the last-seen times it holds in memory instead of storing them; its sweep still stores them every second (SRV-022)",
	StoreFailureOpen:          "the server answers a request its store failed with policy.shutting_down and a retry time, but keeps the connection open (SRV-017)",
	StoreSessionsLate:         "a device stores the advanced state of its sessions once the server has answered a send, not before the send leaves it: a crash in between makes it reuse a message key (RAT-008, SES-002)",
	ForgetOwed:                "a device drops a sent transcript, a receipt, or read or opened content it owes when the connection it was due on ends before the server accepts it, instead of sending it at the next connection (DEV-022)",
	OwedInMemory:              "a device keeps what it owes others in memory only: it sends it again after a connection's end, but a restart of the device loses it (DEV-022)",
	RestampOwed:               "a device sends what it owes again with a new message id and sent-at at each try, so that a try whose answer was lost is stored and shown again instead of being a resend (DEV-022)",
	DeleteUnsynced:            "a device deletes a message for itself alone: it sends its account's other devices no deleted content, and they go on showing the message (DEV-023)",
	IgnoreDeletedSync:         "a device drops the deleted content of its own account's other devices: a message deleted on one goes on showing on it (DEV-023)",
	NoFirstFrameLimit:         "the server reads a first frame of up to MAX_FRAME_SIZE from a connection not yet authenticated, holding its memory for up to HANDSHAKE_TIMEOUT, instead of refusing one above MAX_FIRST_FRAME (TRN-020)",
	NoRegisterLimit:           "the server lets one source address register new accounts without bound, as fast as it asks (SRV-026)",
	DeletionUnmarked:          "a device deletes the messages it holds and keeps no mark of the deletion: a message that comes after it (a deletion that came first, a resend to a companion linked since, which the primary told of its deletions) is shown (DEV-023)",
	NoFanoutLimit:             "the server counts a send-group as one send against SEND_RATE, whatever the number of group devices it stores it for, instead of taking a token of the device's fan-out bucket for each (GRP-014)",
	NoGroupStateBudget:        "the server stores every group state an account's devices author, as fast as they come, instead of one a GROUP_STATE_RATE interval beyond a burst of GROUP_STATE_BURST (GRP-015)",
	AcceptPushedFork:          "a device accepts the signed state of group-update content from any peer, as it comes, but records no key from it (GRP-001 step 2 applies to the states the server serves only): a state an admin sends a member and never sets on the server forks the member's view of the group (GRP-016)",
	AcceptPushedState:         "a device accepts the signed state of group-update content from any peer, as it comes, instead of only the states the server serves: a state a peer made up in the name of an account the device has not met records that peer's key for the account (GRP-016)",
	NoPrekeyRotation:          "a device uploads a signed prekey and a last-resort KEM prekey when it registers, and never replaces them (PQX-012)",
	KeepReplacedPrekeys:       "a device replaces its signed and last-resort prekeys every PREKEY_ROTATION but keeps the private keys of the replaced ones for ever, and takes prekey messages that name them (PQX-013)",
	FetchEveryUpdate:          "a device fetches group states for each group-update content of a version or a group it does not hold, however often the content's sender sends such content (GRP-017)",
	KeepPendingSession:        "an initiator goes on sending prekey messages in a session it has heard nothing in, however long ago it fetched the session's bundle: once the responder has deleted the signed prekey they name, every message is lost (PQX-014)",
	UnboundedHandout:          "the server hands out a device's one-time prekeys to every fetch, however many it has handed out lately: any account can make the device keep and upload keys at its request rate (SRV-027)",
	KeepHandedOut:             "a device keeps the private key of every one-time prekey until a prekey message uses it, however long ago the server handed it out (PQX-015)",
	NewestHandoutFirst:        "the server hands out a device's newest one-time prekeys first: the device, which reads the counts as the newest held, deletes keys the server still holds PREKEY_GRACE later (SRV-028)",
	DropReplacedSession:       "a device drops the session a new bundle or a prekey message replaces, and decrypts in the current session only: two devices that initiated sessions with each other at once each keep the other's, and every later message of either fails (PQX-016)",
	NoKeyEpochFetch:           "a device refuses the sender key of an account its latest group state does not list as policy.not_member, whatever the key's epoch, instead of fetching the states first when the epoch is above its version: the key of a member added in a state it has not fetched yet is lost, and with it that member's messages (GRP-006)",
	NoReaddGap:                "the server serves an account that was removed from a group and added again only the states that name it or whose previous state does, not those made while it was away: its devices, which check every state against the one before, cannot follow the group once it was changed while they were away (GRP-004)",
}

// ServerFaults are the faults of the server; the others are the client's.
var ServerFaults = map[Fault]bool{IgnoreTTL: true, AcceptRevokedDevice: true, NoRateLimit: true, NonMemberGroupSend: true,
	LastSeenToAll: true, AckInMemory: true, SentAtUnchecked: true, NoWriteTimeout: true, ReuseOneTimePrekeys: true,
	NoIdleTimeout: true, UnboundedPrekeys: true, BlobsBySize: true, NoStopFlush: true, StoreFailureOpen: true, NoRegisterLimit: true, NoFirstFrameLimit: true,
	NoFanoutLimit: true, NoGroupStateBudget: true, UnboundedHandout: true, NewestHandoutFirst: true, NoReaddGap: true}

var on atomic.Pointer[Fault]

// Enable switches a fault on for the whole process.
func Enable(f Fault) error {
	if _, ok := All[f]; !ok {
		return fmt.Errorf("faults: unknown fault %q", f)
	}
	on.Store(&f)
	return nil
}

// Has reports whether f is on.
func Has(f Fault) bool {
	p := on.Load()
	return p != nil && *p == f
}

// Names returns the fault names, sorted.
func Names() []string {
	out := make([]string, 0, len(All))
	for f := range All {
		out = append(out, string(f))
	}
	sort.Strings(out)
	return out
}
