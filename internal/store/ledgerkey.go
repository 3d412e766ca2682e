package store

// LedgerCommitmentKeySetting names the setting holding the ledger's secret
// commitment key (ledger.Store.CommitmentKey): 32 random bytes, written
// once by whichever instance appends first and never changed, because
// every version-2 entry's opening key derives from it.
const LedgerCommitmentKeySetting = "ledger.commitment-key"
