package cache

import "syscall"

const sysFstatat = syscall.SYS_FSTATAT
