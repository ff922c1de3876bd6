#include "textflag.h"

// sigfwdHandler is installed with rt_sigaction for every forwarded signal when direct
// forwarding is on. The kernel calls it with the C calling convention (DI = signal number) on
// the thread it chose, on that thread's alternate signal stack. It touches no Go state: it reads
// the target and rewrite table that Go filled in, sends the signal with kill(2), counts it, and,
// when Go has something to do about it (fwdNotify: stop signals, and any signal while no child
// runs), sends this process a SIGCHLD, which the Supervisor's loop receives through os/signal
// anyway: off the latency path, and with no file descriptor or goroutine of its own. For any
// other signal nothing else wakes, so the child gets the machine to itself as under tini. SYSCALL
// clobbers CX and R11 only; R8 and R9 survive it.
TEXT sigfwdHandler<>(SB), NOSPLIT|NOFRAME, $0
	MOVL DI, R8
	CMPL R8, $64
	JA   done
	MOVL ·fwdPid(SB), DI
	TESTL DI, DI
	JZ   unsent

	// out = rewrite[sig], or sig itself when there is no rewrite.
	LEAQ    ·fwdRewrite(SB), R9
	MOVBLZX (R9)(R8*1), SI
	TESTL   SI, SI
	JNZ     target
	MOVL    R8, SI

target:
	// The group (-pid) unless child-only; SIGKILL always goes to the group.
	CMPL SI, $9
	JEQ  group
	CMPB ·fwdChildOnly(SB), $0
	JNE  count

group:
	NEGL DI

count:
	// Counted before the kill: whoever decides about a restart after the child's end sees it.
	LEAQ ·fwdSent(SB), R9
	LOCK
	INCL (R9)(R8*4)
	MOVL $62, AX // kill(DI, SI)
	SYSCALL
	LEAQ ·fwdNotify(SB), R9
	CMPB (R9)(R8*1), $0
	JEQ  done
	JMP  wake

unsent:
	LEAQ ·fwdUnsent(SB), R9
	LOCK
	INCL (R9)(R8*4)

wake:
	MOVL ·fwdSelf(SB), DI
	MOVL $17, SI // SIGCHLD
	MOVL $62, AX // kill(self, SIGCHLD)
	SYSCALL

done:
	RET

// sigfwdRestorer returns from the handler: rt_sigreturn(2).
TEXT sigfwdRestorer<>(SB), NOSPLIT|NOFRAME, $0
	MOVL $15, AX
	SYSCALL
	INT  $3

GLOBL ·fwdHandlerAddr(SB), RODATA, $8
DATA ·fwdHandlerAddr(SB)/8, $sigfwdHandler<>(SB)

GLOBL ·fwdRestorerAddr(SB), RODATA, $8
DATA ·fwdRestorerAddr(SB)/8, $sigfwdRestorer<>(SB)
