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
// Commands: "server start|stop|kill|restart|duplicate on|off|queue A/D N",
// "clock advance 31d", and actor commands "NAME VERB ARGS", where NAME is
// alice, bob, carol, dave, erin or frank, with an optional digit for a
// second device of the same account (alice2). Verbs: create impl|ref,
// send ACCOUNT TEXT, expect ACCOUNT TEXT, expect-none [WAIT], read ACCOUNT,
// status TEXT STATUS, knows TEXT, offline, online, refused,
// presence ACCOUNT STATE, privacy LASTSEEN ONLINE [CONTACT...],
// link NEWNAME [impl|ref], unlink NAME.
package testscripts

import "embed"

// FS holds the scenarios.
//
//go:embed *.txtar
var FS embed.FS
