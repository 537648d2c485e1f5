package main

import "syscall"

// childProcAttr puts a node process in its own process group, so that a
// Ctrl-C reaches only dist demo, which then stops the nodes in order, and
// kills the node if dist demo itself dies.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
