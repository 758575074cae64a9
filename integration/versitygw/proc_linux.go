package versitygw

import "syscall"

// sysProcAttr kills the server when the test process dies, so that no
// gateway outlives a crashed or killed test binary.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
