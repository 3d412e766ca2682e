#include "textflag.h"

// func getg() uintptr: the running goroutine's g, which the runtime keeps
// in register g (R28) on arm64.
TEXT ·getg(SB), NOSPLIT, $0-8
	MOVD g, R0
	MOVD R0, ret+0(FP)
	RET
