//go:build !linux

package main

import "syscall"

// childProcAttr: outside Linux the nodes share dist demo's process group
// and receive the terminal's Ctrl-C themselves, which also stops them.
func childProcAttr() *syscall.SysProcAttr { return nil }
