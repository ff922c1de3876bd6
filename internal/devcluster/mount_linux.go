package devcluster

import "syscall"

// mntDetach is umount2's lazy unmount (a real node needs Linux).
const mntDetach = syscall.MNT_DETACH
