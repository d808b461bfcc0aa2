//go:build unix

package conformance

import (
	"os"
	"os/exec"
	"syscall"
)

// ownGroup makes cmd the leader of a process group of its own, so that
// signalGroup reaches what it starts too: an adapter or a server under
// test is often a wrapper (sh -c, go run, npm start) around the process
// that does the work.
func ownGroup(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

// signalGroup sends sig to cmd's process group.
func signalGroup(cmd *exec.Cmd, sig os.Signal) {
	if cmd.Process == nil {
		return
	}
	if s, ok := sig.(syscall.Signal); ok && syscall.Kill(-cmd.Process.Pid, s) == nil {
		return
	}
	cmd.Process.Signal(sig)
}
