package escrow

import "os"

// Crash points, named where PARLEY_CRASH_AT can stop the process. They
// exist only for crash-injection tests; with the variable unset (always,
// in production) crashPoint is one string comparison against "".
const (
	CrashDepositBeforeTx     = "deposit.before-tx"     // request validated, nothing written
	CrashDepositMidTx        = "deposit.mid-tx"        // deposit row written, not committed
	CrashReleaseMidTx        = "release.mid-tx"        // one side's objects released, not committed
	CrashDepositBeforeCommit = "deposit.before-commit" // everything written, commit not issued
	CrashDepositAfterCommit  = "deposit.after-commit"  // committed, answer not sent
	CrashWithdrawMidTx       = "withdraw.mid-tx"       // deposit deleted, not committed
	CrashExpiryMidTx         = "expiry.mid-tx"         // deposits deleted, not committed
	CrashExpiryAfterCommit   = "expiry.after-commit"   // expiry committed
)

// CrashPoints lists every point, for tests.
var CrashPoints = []string{CrashDepositBeforeTx, CrashDepositMidTx, CrashReleaseMidTx, CrashDepositBeforeCommit,
	CrashDepositAfterCommit, CrashWithdrawMidTx, CrashExpiryMidTx, CrashExpiryAfterCommit}

// crashAt is read once: the hook is inert unless the variable is set.
var crashAt = os.Getenv("PARLEY_CRASH_AT")

// crashPoint exits at once, as kill -9 would, when PARLEY_CRASH_AT names
// point: no deferred function runs and no transaction commits.
func crashPoint(point string) {
	if crashAt != "" && crashAt == point {
		os.Exit(137)
	}
}
