// Package testscripts holds the conformance scenarios: testscript files,
// one behaviour each, named after it, which the conformance runner plays
// with reference clients, the implementation under test and a server.
//
// A scenario's comments say which requirements it covers and which suites
// play it:
//
//	# requirements: SRV-006 SRV-009
//	# suites: client server
//
// Commands: "server start|stop|kill|restart|duplicate on|off|queue A/D N|
// rekey [back]|welcome-delay DURATION|answer-delay DURATION|
// repeat-bundles A/D whole|kem|ec|off|forge-list ACCOUNT on|off|
// drain-prekeys A/D|uploaded A/D|store-fail on|off|drop-send A/D ACCOUNT|
// drop-sends A/D ACCOUNT|off|dropped A/D|lose-answer A/D ACCOUNT|
// answer-lost A/D|resent A/D" (rekey:
// restart with a new static key, or the one before; queue: the device's
// queue holds N entries, waiting for it up to 15 s; welcome-delay: how
// long the client suite's server holds each welcome back to see what a
// device sends before it; answer-delay: how long it holds each answer to a
// request back, so that devices have requests unanswered; repeat-bundles:
// it hands out the one-time prekeys of the device's first bundle again,
// the whole bundle, without its one-time EC prekey, or its one-time EC
// prekey with fresh keys, as a server without SRV-003 would; forge-list:
// it serves a device list of the account forged under a new primary key;
// drain-prekeys A/D: it takes the device's one-time prekeys from its store
// until the next fetch leaves fewer than PREKEY_LOW of a kind; uploaded
// A/D: the device uploads prekeys after that, within 15 s, or the
// scenario is skipped; store-fail: the store of a server under test
// started with {store-fail} fails to queue any envelope, or works again;
// drop-send A/D ACCOUNT: the next send of the device to ACCOUNT is lost
// before it is stored, the connection closed instead of an answer, and
// dropped A/D waits for that loss; drop-sends does so to every such send
// until turned off; lose-answer A/D ACCOUNT: the next such send is stored
// and its answer lost, the connection closed, answer-lost A/D waits for
// that, and resent A/D for the same envelope to come again),
// "clock advance 31d", and actor commands "NAME VERB ARGS", where NAME is
// alice, bob, carol, dave, erin or frank, with an optional digit for a
// second device of the same account (alice2). A conversation (CONV) is an
// account, or @NAME for a group the scenario created ('#' would start a
// comment). Messages are named by the text they were sent with (the
// caption for media); a verb that takes two texts takes them quoted.
//
// Verbs: create impl|ref, send CONV TEXT, send-crash ACCOUNT TEXT (an
// implementation's device crashes once the message has left it, and is
// opened again, offline), expect [@GROUP] ACCOUNT TEXT,
// expect-none [WAIT], read CONV, status TEXT STATUS, knows TEXT, offline,
// online, refused, key-refused (must not connect: the server's key
// changed), presence ACCOUNT STATE, privacy LASTSEEN ONLINE
// [CONTACT...], link NEWNAME [impl|ref], unlink NAME, keepalive (client
// suite: never silent for longer than KEEPALIVE_INTERVAL over one),
// idle-closes (client suite: the server answers no more pings, and the
// device must end its connection within IDLE_TIMEOUT), restart (an
// implementation's device stops and is opened again from its storage,
// offline; optional: device.restart).
//
// A scenario that waits on the spec's timeouts says for how long
// ("# waits: 95s"): the suites run such scenarios last, the longest last.
//
// Groups, media and the lifecycle (chapters 16 to 18): group-create @NEW
// ACCOUNT..., group-add|group-remove|group-admin @GROUP ACCOUNT...,
// member-status TEXT ACCOUNT STATUS (a group message's status for one
// member; unknown for none), send-media CONV SIZE [view-once] CAPTION
// (SIZE such as 0, 600KiB, 1.5MiB), expect-media [@GROUP] ACCOUNT CAPTION
// (shown, then downloaded and compared), download CAPTION, open-once
// CAPTION, opened CAPTION, edit 'TEXT' 'NEW', unsend TEXT, delete-here
// ACCOUNT TEXT (delete for me, in the conversation with ACCOUNT), shows
// 'TEXT' 'SHOWN', shows-deleted TEXT, shows-nothing TEXT (not held, or
// deleted here), expires TEXT DURATION,
// timer CONV DURATION|off. With "!", download, open-once, edit, unsend and
// the group verbs must fail, with the error code named first if one is
// (! bob download auth.digest_mismatch a picture).
//
// Verbs of reference actors only, which play a misbehaving peer or test the
// server: forge-edit 'TEXT' 'NEW' and forge-unsend TEXT (without the
// sender's own checks), resend TEXT (the message sent again, with its id
// and sent-at, newly encrypted), forge-edit-first ACCOUNT 'TEXT' 'NEW' and
// forge-unsend-first ACCOUNT TEXT (the change sent before its message),
// forge-media CONV SIZE CAPTION (a digest that is not the blob's),
// forge-receipt ACCOUNT delivered|read|played TEXT, failures N (the
// deliveries the device could not process), message-ids ACCOUNT N (the
// N or more messages shown from ACCOUNT have ids of 16 bytes, no two
// agreeing in more than 4 byte positions: MSG-002), blob-upload NAME SIZE [UPTO]
// [bad-digest], blob-resume NAME HELD, blob-get [CODE] NAME. The verbs that
// play a device of the runner's own, a raw connection (hello, send-as,
// prekey-reuse, upload-prekeys, raw), are listed in conformance/scenario_raw.go.
package testscripts

import "embed"

// FS holds the scenarios.
//
//go:embed *.txtar
var FS embed.FS
