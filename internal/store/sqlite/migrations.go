package sqlite

import (
	"context"
	"database/sql"
)

// migrations is append-only: each entry is one schema version, applied in its
// own transaction. Never edit or reorder an entry that has shipped; add a new
// one instead.
var migrations = []string{
	// 1: parties, tokens, operator collections, objects, status resources.
	`
CREATE TABLE settings (
	key   TEXT PRIMARY KEY,
	value BLOB NOT NULL
);
CREATE TABLE parties (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	created_at INTEGER NOT NULL
);
CREATE TABLE tokens (
	id         TEXT PRIMARY KEY,
	party_id   TEXT NOT NULL REFERENCES parties(id),
	hash       BLOB NOT NULL UNIQUE,
	label      TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	revoked_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tokens_party ON tokens(party_id);
CREATE TABLE collections (
	pk          INTEGER PRIMARY KEY,
	id          TEXT NOT NULL UNIQUE,
	api_root    TEXT NOT NULL,
	title       TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL
);
CREATE INDEX collections_root ON collections(api_root, pk);
CREATE TABLE collection_access (
	collection_pk INTEGER NOT NULL REFERENCES collections(pk),
	party_id      TEXT NOT NULL REFERENCES parties(id),
	can_read      INTEGER NOT NULL,
	can_write     INTEGER NOT NULL,
	PRIMARY KEY (collection_pk, party_id)
);
CREATE TABLE objects (
	seq          INTEGER PRIMARY KEY,
	coll         INTEGER NOT NULL REFERENCES collections(pk),
	id           TEXT NOT NULL,
	type         TEXT NOT NULL,
	spec_version TEXT NOT NULL,
	version      INTEGER NOT NULL,
	date_added   INTEGER NOT NULL,
	is_first     INTEGER NOT NULL,
	is_last      INTEGER NOT NULL,
	raw          BLOB NOT NULL
);
CREATE UNIQUE INDEX objects_version ON objects(coll, id, version);
CREATE INDEX objects_added ON objects(coll, date_added, seq);
CREATE TABLE statuses (
	id          TEXT PRIMARY KEY,
	api_root    TEXT NOT NULL,
	party_id    TEXT NOT NULL,
	status      TEXT NOT NULL,
	request_ts  INTEGER NOT NULL,
	total       INTEGER NOT NULL,
	details     BLOB NOT NULL
);
`,
	// 2: the Merkle ledger (see package ledger). ledger_size has one row, the
	// appenders' lock; entries and stored hashes are append-only.
	`
CREATE TABLE ledger_size (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	size INTEGER NOT NULL
);
INSERT INTO ledger_size(id, size) VALUES (1, 0);
CREATE TABLE ledger_entries (
	idx  INTEGER PRIMARY KEY,
	data BLOB NOT NULL
);
CREATE TABLE ledger_hashes (
	idx  INTEGER PRIMARY KEY,
	hash BLOB NOT NULL
);
CREATE TABLE ledger_checkpoints (
	size INTEGER PRIMARY KEY,
	note BLOB NOT NULL
);
CREATE TABLE ledger_cosignatures (
	size    INTEGER NOT NULL REFERENCES ledger_checkpoints(size),
	witness TEXT NOT NULL,
	line    BLOB NOT NULL,
	PRIMARY KEY (size, witness)
);
`,
	// 3: party keys, agreements (versions and signatures), give-to-get
	// accounting, and the agreement collections.
	`
ALTER TABLE collections ADD COLUMN agreement TEXT NOT NULL DEFAULT '';
ALTER TABLE collections ADD COLUMN contributor TEXT NOT NULL DEFAULT '';
CREATE TABLE party_keys (
	key_id      TEXT PRIMARY KEY,
	party_id    TEXT NOT NULL REFERENCES parties(id),
	public      BLOB NOT NULL,
	valid_from  INTEGER NOT NULL,
	valid_until INTEGER NOT NULL DEFAULT 0,
	rotation    BLOB
);
CREATE INDEX party_keys_party ON party_keys(party_id, valid_from);
CREATE TABLE agreements (
	id         TEXT PRIMARY KEY,
	party_a    TEXT NOT NULL REFERENCES parties(id),
	party_b    TEXT NOT NULL REFERENCES parties(id),
	created_at INTEGER NOT NULL
);
CREATE INDEX agreements_a ON agreements(party_a);
CREATE INDEX agreements_b ON agreements(party_b);
CREATE TABLE agreement_versions (
	agreement_id TEXT NOT NULL REFERENCES agreements(id),
	version      INTEGER NOT NULL,
	document     BLOB NOT NULL,
	hash         BLOB NOT NULL,
	created_at   INTEGER NOT NULL,
	PRIMARY KEY (agreement_id, version)
);
CREATE TABLE agreement_signatures (
	seq          INTEGER PRIMARY KEY,
	agreement_id TEXT NOT NULL REFERENCES agreements(id),
	version      INTEGER NOT NULL,
	party_id     TEXT NOT NULL,
	action       TEXT NOT NULL,
	raw          BLOB NOT NULL,
	signed_at    INTEGER NOT NULL,
	UNIQUE (agreement_id, version, party_id, action, signed_at)
);
CREATE TABLE agreement_credits (
	agreement_id TEXT NOT NULL REFERENCES agreements(id),
	object_id    TEXT NOT NULL,
	party_id     TEXT NOT NULL,
	ord          INTEGER NOT NULL,
	weight       REAL NOT NULL,
	added_at     INTEGER NOT NULL,
	PRIMARY KEY (agreement_id, object_id)
);
CREATE UNIQUE INDEX agreement_credits_ord ON agreement_credits(agreement_id, party_id, ord);
CREATE TABLE agreement_released (
	agreement_id TEXT NOT NULL REFERENCES agreements(id),
	reader       TEXT NOT NULL,
	up_to        INTEGER NOT NULL,
	PRIMARY KEY (agreement_id, reader)
);
`,
	// 4: handovers (escrowed swaps) and their deposits, requests, and each
	// party's event stream with its per-party counter.
	`
CREATE TABLE handovers (
	id                   TEXT PRIMARY KEY,
	agreement_id         TEXT NOT NULL REFERENCES agreements(id),
	proposer             TEXT NOT NULL REFERENCES parties(id),
	counterpart          TEXT NOT NULL REFERENCES parties(id),
	proposer_delivers    TEXT NOT NULL,
	counterpart_delivers TEXT NOT NULL,
	request_id           TEXT NOT NULL DEFAULT '',
	deadline             INTEGER NOT NULL,
	state                TEXT NOT NULL,
	created_at           INTEGER NOT NULL,
	decided_at           INTEGER NOT NULL DEFAULT 0,
	closed_at            INTEGER NOT NULL DEFAULT 0,
	near_notified        INTEGER NOT NULL DEFAULT 0,
	release_index        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX handovers_proposer ON handovers(proposer, created_at);
CREATE INDEX handovers_counterpart ON handovers(counterpart, created_at);
CREATE INDEX handovers_open ON handovers(deadline) WHERE state IN ('proposed', 'accepted');
CREATE TABLE handover_deposits (
	handover_id  TEXT NOT NULL REFERENCES handovers(id),
	party_id     TEXT NOT NULL,
	sealed       INTEGER NOT NULL,
	content      BLOB NOT NULL,
	sha256       BLOB NOT NULL,
	objects      INTEGER NOT NULL,
	deposited_at INTEGER NOT NULL,
	ledger_index INTEGER NOT NULL,
	dispute      TEXT NOT NULL DEFAULT '',
	disputed_at  INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (handover_id, party_id)
);
CREATE TABLE requests (
	id              TEXT PRIMARY KEY,
	agreement_id    TEXT NOT NULL REFERENCES agreements(id),
	requester       TEXT NOT NULL REFERENCES parties(id),
	responder       TEXT NOT NULL REFERENCES parties(id),
	subject         TEXT NOT NULL,
	refs            TEXT NOT NULL,
	reason          TEXT NOT NULL,
	urgency         TEXT NOT NULL,
	state           TEXT NOT NULL,
	filed_at        INTEGER NOT NULL,
	ack_by          INTEGER NOT NULL,
	fulfil_by       INTEGER NOT NULL,
	acknowledged_at INTEGER NOT NULL DEFAULT 0,
	answered_at     INTEGER NOT NULL DEFAULT 0,
	ground          TEXT NOT NULL DEFAULT '',
	ground_text     TEXT NOT NULL DEFAULT '',
	handover_id     TEXT NOT NULL DEFAULT '',
	ack_overdue     INTEGER NOT NULL DEFAULT 0,
	answer_overdue  INTEGER NOT NULL DEFAULT 0,
	near_notified   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX requests_agreement ON requests(agreement_id, filed_at);
CREATE INDEX requests_requester ON requests(requester, filed_at);
CREATE INDEX requests_responder ON requests(responder, filed_at);
CREATE INDEX requests_open ON requests(fulfil_by) WHERE state IN ('filed', 'acknowledged');
CREATE TABLE event_heads (
	party_id TEXT PRIMARY KEY REFERENCES parties(id),
	seq      INTEGER NOT NULL
);
CREATE TABLE events (
	party_id TEXT NOT NULL,
	seq      INTEGER NOT NULL,
	kind     TEXT NOT NULL,
	subject  TEXT NOT NULL,
	data     BLOB NOT NULL,
	at       INTEGER NOT NULL,
	PRIMARY KEY (party_id, seq)
);
`,
	// 5: private matching sessions (package matching) and their round-1
	// messages in chunks of at most 1 MiB.
	`
CREATE TABLE matches (
	id           TEXT PRIMARY KEY,
	agreement_id TEXT NOT NULL REFERENCES agreements(id),
	session_id   BLOB NOT NULL,
	cap          INTEGER NOT NULL,
	initiator    TEXT NOT NULL REFERENCES parties(id),
	responder    TEXT NOT NULL REFERENCES parties(id),
	i_upload     TEXT NOT NULL DEFAULT '',
	i_count      INTEGER NOT NULL DEFAULT 0,
	i_size       INTEGER NOT NULL DEFAULT 0,
	i_at         INTEGER NOT NULL DEFAULT 0,
	i_index      INTEGER NOT NULL DEFAULT 0,
	r_upload     TEXT NOT NULL DEFAULT '',
	r_count      INTEGER NOT NULL DEFAULT 0,
	r_size       INTEGER NOT NULL DEFAULT 0,
	r_at         INTEGER NOT NULL DEFAULT 0,
	r_index      INTEGER NOT NULL DEFAULT 0,
	handover_id  TEXT NOT NULL REFERENCES handovers(id),
	created_at   INTEGER NOT NULL,
	ledger_index INTEGER NOT NULL
);
CREATE INDEX matches_initiator ON matches(initiator, created_at);
CREATE INDEX matches_responder ON matches(responder, created_at);
CREATE TABLE match_chunks (
	match_id TEXT NOT NULL REFERENCES matches(id),
	party_id TEXT NOT NULL,
	upload   TEXT NOT NULL,
	seq      INTEGER NOT NULL,
	data     BLOB NOT NULL,
	PRIMARY KEY (match_id, party_id, upload, seq)
);
`,
	// 6: credits are per party. An object the counterpart contributed but
	// has not released to you earns you credit when you give it: refusing
	// it would tell you what the counterpart holds.
	`
CREATE TABLE agreement_credits_v6 (
	agreement_id TEXT NOT NULL REFERENCES agreements(id),
	object_id    TEXT NOT NULL,
	party_id     TEXT NOT NULL,
	ord          INTEGER NOT NULL,
	weight       REAL NOT NULL,
	added_at     INTEGER NOT NULL,
	PRIMARY KEY (agreement_id, object_id, party_id)
);
INSERT INTO agreement_credits_v6(agreement_id, object_id, party_id, ord, weight, added_at)
	SELECT agreement_id, object_id, party_id, ord, weight, added_at FROM agreement_credits;
DROP TABLE agreement_credits;
ALTER TABLE agreement_credits_v6 RENAME TO agreement_credits;
CREATE UNIQUE INDEX agreement_credits_ord ON agreement_credits(agreement_id, party_id, ord);
`,
	// 7: running totals of each party's contributions, so a write under an
	// agreement reads its balance in one row instead of summing every credit
	// (which made ingest slow down as contributions grew); and an index for
	// agreements with a rolling window.
	`
CREATE TABLE agreement_totals (
	agreement_id TEXT NOT NULL REFERENCES agreements(id),
	party_id     TEXT NOT NULL,
	contributed  INTEGER NOT NULL,
	credits      REAL NOT NULL,
	PRIMARY KEY (agreement_id, party_id)
);
INSERT INTO agreement_totals(agreement_id, party_id, contributed, credits)
	SELECT agreement_id, party_id, max(ord), sum(weight) FROM agreement_credits GROUP BY agreement_id, party_id;
CREATE INDEX agreement_credits_added ON agreement_credits(agreement_id, party_id, added_at);
`,
	// 8: who owns each object id in each operator collection: the party
	// that first posted it; nobody else may delete it or add versions of it
	// (an agreement's collections have one writer, their contributor).
	// Objects stored before go to the writer whose earliest status resource
	// lists the id as a success; ids none lists stay unowned until their
	// next write claims them.
	`
CREATE TABLE object_owners (
	coll     INTEGER NOT NULL REFERENCES collections(pk),
	id       TEXT NOT NULL,
	party_id TEXT NOT NULL,
	PRIMARY KEY (coll, id)
) WITHOUT ROWID;
INSERT OR IGNORE INTO object_owners(coll, id, party_id)
	SELECT coll, id, party_id FROM (
		WITH posted AS MATERIALIZED (
			SELECT s.api_root, s.party_id, s.request_ts, json_extract(j.value, '$.id') AS oid
			FROM statuses s, json_each(CAST(s.details AS TEXT), '$.successes') j
			WHERE s.api_root IN (SELECT api_root FROM collections WHERE contributor = ''))
		SELECT o.coll, o.id, p.party_id, min(p.request_ts)
		FROM (SELECT DISTINCT coll, id FROM objects) o
		JOIN collections c ON c.pk = o.coll AND c.contributor = ''
		JOIN collection_access a ON a.collection_pk = c.pk AND a.can_write = 1
		JOIN posted p ON p.api_root = c.api_root AND p.party_id = a.party_id AND p.oid = o.id
		GROUP BY o.coll, o.id);
`,
	// 9: token expiry and last use (issue 16): an operator can issue
	// tokens that stop working on their own and see which are idle.
	`
ALTER TABLE tokens ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN last_used_at INTEGER NOT NULL DEFAULT 0;
`,
	// 10: content fingerprints (stix.Fingerprint) of contributions, so that
	// credit goes to content new to the agreement, not to a new id; and the
	// fingerprints of what plain handovers released, known to both sides.
	// The key is the fingerprint's first 64 bits (fp64 in agreements.go),
	// indexed alone so that the index stays small. Contributions made
	// before have no fingerprint and stay deduplicated by id only.
	`
ALTER TABLE agreement_credits ADD COLUMN fingerprint INTEGER;
CREATE INDEX agreement_credits_fingerprint ON agreement_credits(fingerprint);
CREATE TABLE agreement_handed (
	agreement_id TEXT NOT NULL REFERENCES agreements(id),
	fingerprint  INTEGER NOT NULL,
	PRIMARY KEY (agreement_id, fingerprint)
) WITHOUT ROWID;
`,
	// 11: contests of credits (issue 12): the receiving party's signed
	// objection to the credit for one object; while it stands the credit
	// does not count. agreement_totals.contested is the weight under an
	// open contest, so a balance is still one row.
	`
ALTER TABLE agreement_credits ADD COLUMN contested INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agreement_totals ADD COLUMN contested REAL NOT NULL DEFAULT 0;
CREATE TABLE agreement_contests (
	id             TEXT PRIMARY KEY,
	agreement_id   TEXT NOT NULL REFERENCES agreements(id),
	contester      TEXT NOT NULL,
	contributor    TEXT NOT NULL,
	object_id      TEXT NOT NULL,
	weight         REAL NOT NULL,
	reason         TEXT NOT NULL,
	statement      BLOB NOT NULL,
	filed_at       INTEGER NOT NULL,
	ledger_index   INTEGER NOT NULL,
	withdrawn_at   INTEGER NOT NULL DEFAULT 0,
	withdrawal     BLOB,
	withdraw_index INTEGER NOT NULL DEFAULT 0,
	UNIQUE (agreement_id, contributor, object_id)
);
CREATE INDEX agreement_contests_agreement ON agreement_contests(agreement_id, filed_at);
`,
	// 12: each deposit's signed manifest (count, types and content
	// fingerprints of its STIX objects, signed by the depositor) and the
	// signed statement of a dispute of it (issue 12, finding 8).
	`
ALTER TABLE handover_deposits ADD COLUMN manifest BLOB;
ALTER TABLE handover_deposits ADD COLUMN dispute_statement BLOB;
`,
	// 13: the reach of a release (issue 18): the (date_added, seq) position
	// of the last version released to the reader in the contributor's
	// collection, so that a read of the released prefix stops there
	// instead of checking every unreleased contribution. (0, 0): nothing
	// released is stored.
	`
ALTER TABLE agreement_released ADD COLUMN reach_added INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agreement_released ADD COLUMN reach_seq INTEGER NOT NULL DEFAULT 0;
UPDATE agreement_released SET
	reach_added = coalesce((SELECT o.date_added FROM collections k
		JOIN objects o ON o.coll = k.pk
		JOIN agreement_credits c ON c.agreement_id = k.agreement AND c.party_id = k.contributor AND c.object_id = o.id AND c.ord <= agreement_released.up_to
		WHERE k.agreement = agreement_released.agreement_id AND k.contributor <> '' AND k.contributor <> agreement_released.reader
		ORDER BY o.date_added DESC, o.seq DESC LIMIT 1), 0),
	reach_seq = coalesce((SELECT o.seq FROM collections k
		JOIN objects o ON o.coll = k.pk
		JOIN agreement_credits c ON c.agreement_id = k.agreement AND c.party_id = k.contributor AND c.object_id = o.id AND c.ord <= agreement_released.up_to
		WHERE k.agreement = agreement_released.agreement_id AND k.contributor <> '' AND k.contributor <> agreement_released.reader
		ORDER BY o.date_added DESC, o.seq DESC LIMIT 1), 0);
`,
	// 14: the full-text index of the dashboard's search (issue 17): every
	// stored version's name, aliases, description and pattern as words,
	// and its collection, type, labels, markings and references as facet
	// tokens (store.FacetToken), kept by triggers so that no write path can
	// forget it. Contentless: the text stays in objects alone. Who may see
	// a match is decided at query time, like any read.
	`
CREATE VIRTUAL TABLE object_search USING fts5(body, facets, content='', contentless_delete=1,
	tokenize='unicode61 remove_diacritics 0');
CREATE TRIGGER object_search_insert AFTER INSERT ON objects BEGIN
	INSERT INTO object_search(rowid, body, facets)
	SELECT s, ` + searchColumns + ` FROM (SELECT NEW.seq AS s, NEW.coll AS k, NEW.type AS ty, CAST(NEW.raw AS TEXT) AS t);
END;
CREATE TRIGGER object_search_delete AFTER DELETE ON objects BEGIN
	DELETE FROM object_search WHERE rowid = OLD.seq;
END;
INSERT INTO object_search(rowid, body, facets)
	SELECT s, ` + searchColumns + ` FROM (SELECT seq AS s, coll AS k, type AS ty, CAST(raw AS TEXT) AS t FROM objects);
`,
	// 15: the search index's insert trigger parses each object's JSON
	// once (into JSONB) instead of once per json_* call: fourteen parses
	// of every stored object were a fifth of ingest's CPU (issue 18). The
	// index's contents do not change.
	`
DROP TRIGGER object_search_insert;
CREATE TRIGGER object_search_insert AFTER INSERT ON objects BEGIN
	INSERT INTO object_search(rowid, body, facets)
	SELECT s, ` + searchColumnsJSONB + ` FROM (SELECT NEW.seq AS s, NEW.coll AS k, NEW.type AS ty,
		CASE WHEN json_valid(CAST(NEW.raw AS TEXT)) THEN jsonb(CAST(NEW.raw AS TEXT)) END AS j);
END;
`,
	// 16: parties' own signed verifications of the ledger (issue 17,
	// `parley verify --upload`): what the dashboard shows instead of the
	// server's claim about itself.
	`
CREATE TABLE ledger_verifications (
	party_id    TEXT NOT NULL REFERENCES parties(id),
	seq         INTEGER NOT NULL,
	size        INTEGER NOT NULL,
	root        TEXT NOT NULL,
	entries     INTEGER NOT NULL,
	verified_at INTEGER NOT NULL,
	received_at INTEGER NOT NULL,
	statement   BLOB NOT NULL,
	PRIMARY KEY (party_id, seq)
);
`,
	// 17: collections carry a kind, so the handover collection is found by
	// it instead of by its title. Existing handover collections are those
	// the title rule found: no agreement, outside the operator's root,
	// titled "Handed over to …".
	`
ALTER TABLE collections ADD COLUMN kind TEXT NOT NULL DEFAULT '';
UPDATE collections SET kind = 'handover'
	WHERE agreement = '' AND api_root <> 'shared' AND substr(title, 1, 15) = 'Handed over to ';
`,
	// 18: this node's public URL and the peers its operator pinned
	// (issue 14, sovereign nodes).
	`
CREATE TABLE node_self (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	public_url TEXT NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE TABLE node_peers (
	name     TEXT PRIMARY KEY,
	url      TEXT NOT NULL,
	key      TEXT NOT NULL,
	key_id   TEXT NOT NULL UNIQUE,
	added_at INTEGER NOT NULL
);
`,
	// 19: parties' mirrors (issue 14): standing pulls from another TAXII
	// 2.1 server into the party's contribution collection under an
	// agreement, with their cursors, progress and the lease of the runner
	// pulling each. source_token is the source's secret, never shown.
	`
CREATE TABLE mirrors (
	id                TEXT PRIMARY KEY,
	party_id          TEXT NOT NULL REFERENCES parties(id),
	agreement_id      TEXT NOT NULL REFERENCES agreements(id),
	created_at        INTEGER NOT NULL,
	source_url        TEXT NOT NULL,
	source_collection TEXT NOT NULL,
	source_user       TEXT NOT NULL,
	source_token      TEXT NOT NULL,
	page_limit        INTEGER NOT NULL,
	added_after       TEXT NOT NULL,
	next_token        TEXT NOT NULL,
	session_last      TEXT NOT NULL,
	accepted          INTEGER NOT NULL,
	refused           INTEGER NOT NULL,
	last_refusal      TEXT NOT NULL,
	pages             INTEGER NOT NULL,
	last_success      INTEGER NOT NULL,
	last_error        TEXT NOT NULL,
	last_error_at     INTEGER NOT NULL,
	failures          INTEGER NOT NULL,
	next_attempt      INTEGER NOT NULL,
	lease             TEXT NOT NULL,
	lease_until       INTEGER NOT NULL
);
CREATE INDEX mirrors_by_party ON mirrors(party_id, created_at);
CREATE INDEX mirrors_due ON mirrors(next_attempt);
`,
	// 20: the joint report's counts by type and TLP (issue 17): each
	// credited contribution's type and TLP level (of its latest version),
	// and their sums per block of store.TallyBlock ordinals, kept in the
	// transaction that stores them, so that a report reads O(blocks)
	// rows instead of every object. Contributions credited before have no
	// mark: credit_marks_pending names their parties until a backfill.
	`
CREATE TABLE credit_marks (
	agreement_id TEXT NOT NULL REFERENCES agreements(id),
	party_id     TEXT NOT NULL,
	object_id    TEXT NOT NULL,
	ord          INTEGER NOT NULL,
	type         TEXT NOT NULL,
	tlp          INTEGER NOT NULL,
	version      INTEGER NOT NULL,
	PRIMARY KEY (agreement_id, party_id, object_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX credit_marks_ord ON credit_marks(agreement_id, party_id, ord);
CREATE TABLE credit_tallies (
	agreement_id TEXT NOT NULL REFERENCES agreements(id),
	party_id     TEXT NOT NULL,
	block        INTEGER NOT NULL,
	type         TEXT NOT NULL,
	tlp          INTEGER NOT NULL,
	n            INTEGER NOT NULL,
	PRIMARY KEY (agreement_id, party_id, block, type, tlp)
) WITHOUT ROWID;
CREATE TABLE credit_marks_pending (
	agreement_id TEXT NOT NULL REFERENCES agreements(id),
	party_id     TEXT NOT NULL,
	PRIMARY KEY (agreement_id, party_id)
) WITHOUT ROWID;
INSERT INTO credit_marks_pending(agreement_id, party_id) SELECT DISTINCT agreement_id, party_id FROM agreement_credits;
`,
	// 21: the signed statements of joint reports (issue 17): the bytes
	// each report.signed ledger entry commits to, so that anyone can fetch
	// them and check the signature and the commitment later. Signatures
	// recorded before have their ledger entry only.
	`
CREATE TABLE report_signatures (
	agreement_id TEXT NOT NULL REFERENCES agreements(id),
	ledger_index INTEGER NOT NULL,
	party_id     TEXT NOT NULL,
	key_id       TEXT NOT NULL,
	report_hash  TEXT NOT NULL,
	period_from  INTEGER NOT NULL,
	period_to    INTEGER NOT NULL,
	signed_at    INTEGER NOT NULL,
	statement    BLOB NOT NULL,
	PRIMARY KEY (agreement_id, ledger_index)
);
`,
	// 22: marks keyed by ordinal (issue 18): a new credit's ordinal comes
	// after every other of its party, so its mark appends to the b-tree
	// instead of dirtying a random page of it (keyed by object id) at
	// every commit; the ordinal index goes, the key serves Tally. Each
	// credit has one ordinal, so each object still has at most one mark.
	`
CREATE TABLE credit_marks_by_ord (
	agreement_id TEXT NOT NULL REFERENCES agreements(id),
	party_id     TEXT NOT NULL,
	ord          INTEGER NOT NULL,
	object_id    TEXT NOT NULL,
	type         TEXT NOT NULL,
	tlp          INTEGER NOT NULL,
	version      INTEGER NOT NULL,
	PRIMARY KEY (agreement_id, party_id, ord)
) WITHOUT ROWID;
INSERT INTO credit_marks_by_ord(agreement_id, party_id, ord, object_id, type, tlp, version)
	SELECT agreement_id, party_id, ord, object_id, type, tlp, version FROM credit_marks;
DROP TABLE credit_marks;
ALTER TABLE credit_marks_by_ord RENAME TO credit_marks;
`,
	// 23: agreements across nodes (issue 14, item 2): the parties of peer
	// nodes this node's parties have agreements with, and the outbox of
	// signed agreement steps owed to peers, written in the transaction of
	// the step and sent until the peer answers.
	`
CREATE TABLE node_remote_parties (
	party_id    TEXT PRIMARY KEY REFERENCES parties(id),
	node_key    TEXT NOT NULL,
	node_key_id TEXT NOT NULL,
	name        TEXT NOT NULL,
	learned_at  INTEGER NOT NULL
);
CREATE TABLE node_outbox (
	seq          INTEGER PRIMARY KEY,
	peer_key_id  TEXT NOT NULL,
	agreement_id TEXT NOT NULL,
	party_id     TEXT NOT NULL,
	kind         TEXT NOT NULL,
	body         BLOB NOT NULL,
	created_at   INTEGER NOT NULL,
	state        TEXT NOT NULL,
	attempts     INTEGER NOT NULL,
	next_attempt INTEGER NOT NULL,
	last_error   TEXT NOT NULL,
	done_at      INTEGER NOT NULL
);
CREATE INDEX node_outbox_pending ON node_outbox(state, peer_key_id, seq);
CREATE INDEX node_outbox_agreement ON node_outbox(agreement_id, seq);
`,
	// 24: compact, insertion-ordered keys for STIX ids (issue 18): each
	// id gets an integer key once, in stix_ids, and the objects' and
	// owners' b-trees are keyed by (coll, key) instead of (coll, id), so
	// that a new object appends to them rather than dirtying a random page
	// of each at every commit; the one random insert left is stix_ids's
	// index on id. objects keeps its id column (reads return it without a
	// join; parley copy reads it). Keys are given in order of each id's
	// first stored version, then ids only an owner row names. objects is
	// rebuilt with the same seqs, so the search index (keyed by seq) stays
	// as it is; its triggers are re-created on the new table.
	`
CREATE TABLE stix_ids (
	key INTEGER PRIMARY KEY,
	id  TEXT NOT NULL UNIQUE
);
INSERT INTO stix_ids(id) SELECT id FROM objects GROUP BY id ORDER BY min(seq);
INSERT INTO stix_ids(id) SELECT DISTINCT id FROM object_owners WHERE id NOT IN (SELECT id FROM stix_ids) ORDER BY id;
DROP TRIGGER object_search_insert;
DROP TRIGGER object_search_delete;
CREATE TABLE objects_v24 (
	seq          INTEGER PRIMARY KEY,
	coll         INTEGER NOT NULL REFERENCES collections(pk),
	key          INTEGER NOT NULL,
	id           TEXT NOT NULL,
	type         TEXT NOT NULL,
	spec_version TEXT NOT NULL,
	version      INTEGER NOT NULL,
	date_added   INTEGER NOT NULL,
	is_first     INTEGER NOT NULL,
	is_last      INTEGER NOT NULL,
	raw          BLOB NOT NULL
);
INSERT INTO objects_v24(seq, coll, key, id, type, spec_version, version, date_added, is_first, is_last, raw)
	SELECT o.seq, o.coll, k.key, o.id, o.type, o.spec_version, o.version, o.date_added, o.is_first, o.is_last, o.raw
	FROM objects o JOIN stix_ids k ON k.id = o.id ORDER BY o.seq;
DROP TABLE objects;
ALTER TABLE objects_v24 RENAME TO objects;
CREATE UNIQUE INDEX objects_version ON objects(coll, key, version);
CREATE INDEX objects_added ON objects(coll, date_added, seq);
CREATE TRIGGER object_search_insert AFTER INSERT ON objects BEGIN
	INSERT INTO object_search(rowid, body, facets)
	SELECT s, ` + searchColumnsJSONB + ` FROM (SELECT NEW.seq AS s, NEW.coll AS k, NEW.type AS ty,
		CASE WHEN json_valid(CAST(NEW.raw AS TEXT)) THEN jsonb(CAST(NEW.raw AS TEXT)) END AS j);
END;
CREATE TRIGGER object_search_delete AFTER DELETE ON objects BEGIN
	DELETE FROM object_search WHERE rowid = OLD.seq;
END;
CREATE TABLE object_owners_v24 (
	coll     INTEGER NOT NULL REFERENCES collections(pk),
	key      INTEGER NOT NULL,
	party_id TEXT NOT NULL,
	PRIMARY KEY (coll, key)
) WITHOUT ROWID;
INSERT INTO object_owners_v24(coll, key, party_id)
	SELECT o.coll, k.key, o.party_id FROM object_owners o JOIN stix_ids k ON k.id = o.id;
DROP TABLE object_owners;
ALTER TABLE object_owners_v24 RENAME TO object_owners;
`,
	// 25: each other's witness (issue 14 item 5): this node's view of
	// each pinned peer's ledger (its keys and the last checkpoint this
	// node cosigned, by the peer's node key id), the peers' misbehaviour
	// it caught with both conflicting checkpoints, and the receipts its
	// peers handed it.
	`
CREATE TABLE node_peer_logs (
	key_id      TEXT PRIMARY KEY,
	peer        TEXT NOT NULL,
	log_key     TEXT NOT NULL,
	witness_key TEXT NOT NULL,
	size        INTEGER NOT NULL,
	checkpoint  BLOB,
	updated_at  INTEGER NOT NULL
);
CREATE TABLE node_peer_incidents (
	key_id TEXT NOT NULL,
	digest TEXT NOT NULL,
	peer   TEXT NOT NULL,
	kind   TEXT NOT NULL,
	detail TEXT NOT NULL,
	ours   BLOB,
	theirs BLOB,
	at     INTEGER NOT NULL,
	PRIMARY KEY (key_id, digest)
);
CREATE INDEX node_peer_incidents_at ON node_peer_incidents(at);
CREATE TABLE node_peer_receipts (
	key_id    TEXT NOT NULL,
	idx       INTEGER NOT NULL,
	leaf_hash TEXT NOT NULL,
	added_at  INTEGER NOT NULL,
	PRIMARY KEY (key_id, idx)
);
`,
	// 26: credits keyed by the compact STIX id key (issue 18, item 4):
	// the primary key (agreement_id, object_id, party_id) put ~140 random
	// bytes into a b-tree at each new credit. Its replacement,
	// agreement_credits_key, is (agreement_id, key, party_id), key being
	// the object id's stix_ids key: ids get keys in order of first storage,
	// so a new credit appends to it. The table keeps its rowid: keyed
	// WITHOUT ROWID by the same columns, every secondary index entry would
	// carry them, and the fingerprint index (random by nature) would grow
	// from ~12 bytes an entry to ~100 (measured dearer, docs/BENCHMARKS.md).
	// object_id stays a column (Range, tallies and contests return it
	// without a join; parley copy reads it). Ids credited but never stored
	// get keys first.
	`
INSERT INTO stix_ids(id) SELECT DISTINCT object_id FROM agreement_credits
	WHERE object_id NOT IN (SELECT id FROM stix_ids) ORDER BY object_id;
CREATE TABLE agreement_credits_v26 (
	agreement_id TEXT NOT NULL REFERENCES agreements(id),
	key          INTEGER NOT NULL,
	party_id     TEXT NOT NULL,
	object_id    TEXT NOT NULL,
	ord          INTEGER NOT NULL,
	weight       REAL NOT NULL,
	added_at     INTEGER NOT NULL,
	fingerprint  INTEGER,
	contested    INTEGER NOT NULL DEFAULT 0
);
INSERT INTO agreement_credits_v26(agreement_id, key, party_id, object_id, ord, weight, added_at, fingerprint, contested)
	SELECT c.agreement_id, k.key, c.party_id, c.object_id, c.ord, c.weight, c.added_at, c.fingerprint, c.contested
	FROM agreement_credits c JOIN stix_ids k ON k.id = c.object_id ORDER BY c.rowid;
DROP TABLE agreement_credits;
ALTER TABLE agreement_credits_v26 RENAME TO agreement_credits;
CREATE UNIQUE INDEX agreement_credits_key ON agreement_credits(agreement_id, key, party_id);
CREATE UNIQUE INDEX agreement_credits_ord ON agreement_credits(agreement_id, party_id, ord);
CREATE INDEX agreement_credits_added ON agreement_credits(agreement_id, party_id, added_at);
CREATE INDEX agreement_credits_fingerprint ON agreement_credits(fingerprint);
`,
	// 27: feeds across nodes (issue 14, item 3): where this node's pull
	// of each peer's party's contributions stands.
	`
CREATE TABLE node_feed_cursors (
	agreement_id TEXT NOT NULL,
	party_id     TEXT NOT NULL,
	after_ord    INTEGER NOT NULL,
	pulled       INTEGER NOT NULL,
	refused      INTEGER NOT NULL,
	attempts     INTEGER NOT NULL,
	next_attempt INTEGER NOT NULL,
	last_error   TEXT NOT NULL,
	updated_at   INTEGER NOT NULL,
	PRIMARY KEY (agreement_id, party_id)
);
`,
	// 28: where a feed pull stands, for the party and the operator
	// (issue 14): when it last succeeded and how many the peer said it
	// releases.
	`
ALTER TABLE node_feed_cursors ADD COLUMN last_success INTEGER NOT NULL DEFAULT 0;
ALTER TABLE node_feed_cursors ADD COLUMN peer_released INTEGER NOT NULL DEFAULT 0;
`,
	// 29: handovers across nodes (issue 14 item 4): the cases this node
	// holds as the escrow node an agreement between two other nodes names,
	// and the sealed deposits their nodes forwarded.
	`
CREATE TABLE escrow_held (
	handover_id      TEXT PRIMARY KEY,
	agreement_id     TEXT NOT NULL,
	document_sha256  TEXT NOT NULL,
	document         BLOB NOT NULL,
	proposer         TEXT NOT NULL,
	counterpart      TEXT NOT NULL,
	proposer_node    TEXT NOT NULL,
	counterpart_node TEXT NOT NULL,
	deadline         INTEGER NOT NULL,
	state            TEXT NOT NULL,
	created_at       INTEGER NOT NULL,
	closed_at        INTEGER NOT NULL,
	release_index    INTEGER NOT NULL
);
CREATE INDEX escrow_held_open ON escrow_held(state, deadline);
CREATE TABLE escrow_held_deposits (
	handover_id  TEXT NOT NULL REFERENCES escrow_held(handover_id),
	party_id     TEXT NOT NULL,
	content      BLOB NOT NULL,
	sha256       BLOB NOT NULL,
	deposited_at INTEGER NOT NULL,
	ledger_index INTEGER NOT NULL,
	PRIMARY KEY (handover_id, party_id)
);
`,
	// 30: Put writes the search index itself (searchindex.go), computing
	// each row's words and facets in Go where the object's JSON is plain
	// and with this trigger's SQL otherwise: the trigger's JSON functions
	// were a quarter of Put's CPU (issue 18). The index's contents do not
	// change; only Put inserts into objects.
	`
DROP TRIGGER object_search_insert;
`,
	// 31: feeds across nodes carry later versions of contributions
	// already pulled (issue 14 item 3): where this node's pull of the
	// peer's later versions stands, the peer's position token.
	`
ALTER TABLE node_feed_cursors ADD COLUMN versions_after TEXT NOT NULL DEFAULT '';
`,
	// 32: PostgreSQL's search trigger computes documents inline; nothing
	// changes here but the version, which both backends keep equal.
	`SELECT 1`,
	// 33: gradual release of handovers between two nodes without an
	// escrow node (issue 14 item 4): the chunk count and each side's
	// signed commitment, and every chunk as this node knows it.
	`
CREATE TABLE handover_gradual (
	handover_id            TEXT PRIMARY KEY REFERENCES handovers(id),
	chunks                 INTEGER NOT NULL,
	proposer_commitment    BLOB,
	counterpart_commitment BLOB,
	stopped_by             TEXT NOT NULL DEFAULT '',
	stop_reason            TEXT NOT NULL DEFAULT '',
	stopped_at             INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE handover_chunks (
	handover_id  TEXT NOT NULL REFERENCES handover_gradual(handover_id),
	depositor    TEXT NOT NULL,
	idx          INTEGER NOT NULL,
	sha256       BLOB NOT NULL,
	size         INTEGER NOT NULL,
	content      BLOB,
	moved_at     INTEGER NOT NULL DEFAULT 0,
	confirmed_at INTEGER NOT NULL DEFAULT 0,
	confirmation BLOB,
	ledger_index INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (handover_id, depositor, idx)
);
`,
	// 34: a contribution's credit in fewer, smaller b-tree entries (issue
	// 18, item 4). Each of the credit's index entries repeated the
	// agreement and party ids (~90 bytes of text); they are now small
	// integers (ag, pa) given once per name in credit_names. The table is
	// keyed by (ag, pa, ord) WITHOUT ROWID, so the ordinal index goes
	// (its key is the table's), and a new credit still appends to its
	// party's range. The credit's mark (the type, TLP level and version
	// the joint report counts, migration 20) moves into the credit row
	// from credit_marks, which repeated the agreement, party, ordinal and
	// object id; mark_type is NULL for a credit with no mark (credited
	// before migration 20 and not backfilled, or given without a type).
	// agreement_credits_named shows the rows with their ids, for copies.
	`
CREATE TABLE credit_names (
	n    INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE
);
INSERT INTO credit_names(name) SELECT agreement_id FROM agreement_credits UNION SELECT party_id FROM agreement_credits;
CREATE TABLE agreement_credits_v34 (
	ag           INTEGER NOT NULL,
	pa           INTEGER NOT NULL,
	ord          INTEGER NOT NULL,
	key          INTEGER NOT NULL,
	object_id    TEXT NOT NULL,
	weight       REAL NOT NULL,
	added_at     INTEGER NOT NULL,
	fingerprint  INTEGER,
	contested    INTEGER NOT NULL DEFAULT 0,
	mark_type    TEXT,
	mark_tlp     INTEGER,
	mark_version INTEGER,
	PRIMARY KEY (ag, pa, ord)
) WITHOUT ROWID;
INSERT INTO agreement_credits_v34(ag, pa, ord, key, object_id, weight, added_at, fingerprint, contested, mark_type, mark_tlp, mark_version)
	SELECT a.n, p.n, c.ord, c.key, c.object_id, c.weight, c.added_at, c.fingerprint, c.contested, m.type, m.tlp, m.version
	FROM agreement_credits c
	JOIN credit_names a ON a.name = c.agreement_id
	JOIN credit_names p ON p.name = c.party_id
	LEFT JOIN credit_marks m ON m.agreement_id = c.agreement_id AND m.party_id = c.party_id AND m.ord = c.ord;
DROP TABLE agreement_credits;
DROP TABLE credit_marks;
ALTER TABLE agreement_credits_v34 RENAME TO agreement_credits;
CREATE UNIQUE INDEX agreement_credits_key ON agreement_credits(ag, key, pa);
CREATE INDEX agreement_credits_added ON agreement_credits(ag, pa, added_at);
CREATE INDEX agreement_credits_fingerprint ON agreement_credits(fingerprint);
CREATE VIEW agreement_credits_named AS
	SELECT a.name AS agreement_id, p.name AS party_id, c.key, c.object_id, c.ord, c.weight, c.added_at, c.fingerprint, c.contested,
		c.mark_type, c.mark_tlp, c.mark_version
	FROM agreement_credits c JOIN credit_names a ON a.n = c.ag JOIN credit_names p ON p.n = c.pa;
`,
	// 35: the search index merges its segments eight at a time instead
	// of FTS5's default four (issue 18): every commit adds a segment, and
	// merging them was a tenth of ingest's CPU. Eight halves the merge
	// work per level and leaves at most seven segments a level to search
	// (docs/BENCHMARKS.md); the setting is stored in the index itself.
	`
INSERT INTO object_search(object_search, rank) VALUES ('automerge', 8);
`,
	// 36: a rolling window's credits found from one row per Contribute
	// (credit_batches: the ordinals it credited and their time) instead
	// of an index entry per credit (agreement_credits_added), which every
	// credit wrote and only a window's balance read (issue 18, item 4).
	// A call's credits share their time and have consecutive ordinals;
	// the batches of credits stored before are their runs of
	// consecutive ordinals with one time.
	`
CREATE TABLE credit_batches (
	ag        INTEGER NOT NULL,
	pa        INTEGER NOT NULL,
	added_at  INTEGER NOT NULL,
	first_ord INTEGER NOT NULL,
	last_ord  INTEGER NOT NULL,
	PRIMARY KEY (ag, pa, added_at, first_ord)
) WITHOUT ROWID;
INSERT INTO credit_batches(ag, pa, added_at, first_ord, last_ord)
	SELECT ag, pa, added_at, min(ord), max(ord) FROM (
		SELECT ag, pa, added_at, ord, ord - row_number() OVER (PARTITION BY ag, pa, added_at ORDER BY ord) AS run
		FROM agreement_credits)
	GROUP BY ag, pa, added_at, run;
DROP INDEX agreement_credits_added;
`,
	// 37: the credits' content fingerprints move from an index on
	// agreement_credits to two tables of their own (issue 18, item 4):
	// a fingerprint is random, so each commit of new credits dirtied
	// most of that index's leaves, a number growing with the credits.
	// A new credit's fingerprint goes into the small credit_fps_new;
	// when it holds fpMergeAt (agreements.go), Contribute moves them all
	// into credit_fps in key order, so that a commit dirties the small
	// table's few pages and, now and then, the large one's once. Credit
	// rows keep their fingerprint; a lookup reads both tables.
	`
CREATE TABLE credit_fps (
	ag          INTEGER NOT NULL,
	fingerprint INTEGER NOT NULL,
	pa          INTEGER NOT NULL,
	ord         INTEGER NOT NULL,
	PRIMARY KEY (ag, fingerprint, pa, ord)
) WITHOUT ROWID;
CREATE TABLE credit_fps_new (
	ag          INTEGER NOT NULL,
	fingerprint INTEGER NOT NULL,
	pa          INTEGER NOT NULL,
	ord         INTEGER NOT NULL,
	PRIMARY KEY (ag, fingerprint, pa, ord)
) WITHOUT ROWID;
INSERT INTO credit_fps(ag, fingerprint, pa, ord)
	SELECT ag, fingerprint, pa, ord FROM agreement_credits WHERE fingerprint IS NOT NULL ORDER BY ag, fingerprint, pa, ord;
DROP INDEX agreement_credits_fingerprint;
`,
	// 38: an id finds its key by a hash of it in two small-entry tables
	// instead of stix_ids's unique index on id (issue 18, item 2): ids
	// are random, so each commit of new ids dirtied a leaf of that index
	// per id, most of its leaves at a million. stix_ids is rebuilt
	// without the index, with the same keys; stixids.go says how the
	// tables are used, and its fillIDHashes (migrationSteps) enters the
	// hashes of the ids already stored, which SQL cannot compute.
	`
CREATE TABLE stix_ids_v38 (
	key INTEGER PRIMARY KEY,
	id  TEXT NOT NULL
);
INSERT INTO stix_ids_v38(key, id) SELECT key, id FROM stix_ids ORDER BY key;
DROP TABLE stix_ids;
ALTER TABLE stix_ids_v38 RENAME TO stix_ids;
CREATE TABLE stix_id_hashes (
	h   INTEGER NOT NULL,
	key INTEGER NOT NULL,
	PRIMARY KEY (h, key)
) WITHOUT ROWID;
CREATE TABLE stix_id_hashes_new (
	h   INTEGER NOT NULL,
	key INTEGER NOT NULL,
	PRIMARY KEY (h, key)
) WITHOUT ROWID;
`,
	// 39: the search index moves to a file of its own, search.db, filled
	// behind the writer (searchdb.go; issue 18: it was a fifth to a third
	// of ingest in the writer's transactions). It is rebuilt there from
	// objects. What stays here: the deletions it must take in
	// (search_gone, by a trigger, so that no delete path can forget it)
	// and a random origin that tells this database's index from another's.
	`
DROP TRIGGER object_search_delete;
DROP TABLE object_search;
CREATE TABLE search_origin (id BLOB NOT NULL);
INSERT INTO search_origin(id) VALUES (randomblob(16));
CREATE TABLE search_gone (
	n   INTEGER PRIMARY KEY,
	seq INTEGER NOT NULL
);
CREATE TRIGGER search_gone_delete AFTER DELETE ON objects BEGIN
	INSERT INTO search_gone(seq) VALUES (OLD.seq);
END;
`,
	// 40: the writer knows the fingerprint of every credit a party knows
	// under an agreement exactly, in memory (fpfilter.go), read from the
	// credit rows, which keep theirs; the two tables of migration 37 that
	// let SQLite find one by its value go. Filing each new fingerprint in
	// them, and merging the small into the large, was about a quarter of
	// what give-to-get added to an ingest (issue 18, item 4).
	`
DROP TABLE credit_fps;
DROP TABLE credit_fps_new;
`,
}

// migrationSteps are the parts of migrations done in Go, by the version
// they belong to; each runs in its migration's transaction, after its SQL.
var migrationSteps = map[int]func(context.Context, *sql.Tx) error{
	38: fillIDHashes,
}

// searchColumns computes, from an object's collection k, type ty and JSON
// text t, the two columns of object_search: the words (name, aliases,
// description, pattern; the first 64 KiB) and the facet tokens, as
// store.FacetToken spells them. json_each reads a scalar as one value and
// a missing member as none. Text that is not JSON gets facets only.
const searchColumns = `
	CASE WHEN json_valid(t) THEN substr(
		coalesce(json_extract(t, '$.name'), '') || ' ' ||
		coalesce((SELECT group_concat(value, ' ') FROM json_each(t, '$.aliases')), '') || ' ' ||
		coalesce(json_extract(t, '$.description'), '') || ' ' ||
		coalesce(json_extract(t, '$.pattern'), ''), 1, 65536) ELSE '' END,
	'C' || k || ' T' || hex(ty) || CASE WHEN json_valid(t) THEN
		coalesce((SELECT group_concat(' L' || hex(value), '') FROM json_each(t, '$.labels')), '') ||
		coalesce((SELECT group_concat(' M' || hex(value), '') FROM json_each(t, '$.object_marking_refs')), '') ||
		coalesce((SELECT group_concat(' M' || hex(json_extract(value, '$.marking_ref')), '') FROM json_each(t, '$.granular_markings')), '') ||
		coalesce((SELECT group_concat(' R' || hex(value), '') FROM json_each(t, '$.source_ref')), '') ||
		coalesce((SELECT group_concat(' R' || hex(value), '') FROM json_each(t, '$.target_ref')), '') ||
		coalesce((SELECT group_concat(' R' || hex(value), '') FROM json_each(t, '$.sighting_of_ref')), '') ||
		coalesce((SELECT group_concat(' R' || hex(value), '') FROM json_each(t, '$.object_refs')), '') ||
		coalesce((SELECT group_concat(' R' || hex(value), '') FROM json_each(t, '$.where_sighted_refs')), '') ||
		coalesce((SELECT group_concat(' R' || hex(value), '') FROM json_each(t, '$.observed_data_refs')), '')
	ELSE '' END`

// searchColumnsJSONB is searchColumns over j, the object's JSON already
// parsed into JSONB (NULL when the text is not JSON), so that each of its
// json_* calls reads the parse instead of parsing the text again.
const searchColumnsJSONB = `
	CASE WHEN j IS NOT NULL THEN substr(
		coalesce(json_extract(j, '$.name'), '') || ' ' ||
		coalesce((SELECT group_concat(value, ' ') FROM json_each(j, '$.aliases')), '') || ' ' ||
		coalesce(json_extract(j, '$.description'), '') || ' ' ||
		coalesce(json_extract(j, '$.pattern'), ''), 1, 65536) ELSE '' END,
	'C' || k || ' T' || hex(ty) || CASE WHEN j IS NOT NULL THEN
		coalesce((SELECT group_concat(' L' || hex(value), '') FROM json_each(j, '$.labels')), '') ||
		coalesce((SELECT group_concat(' M' || hex(value), '') FROM json_each(j, '$.object_marking_refs')), '') ||
		coalesce((SELECT group_concat(' M' || hex(json_extract(value, '$.marking_ref')), '') FROM json_each(j, '$.granular_markings')), '') ||
		coalesce((SELECT group_concat(' R' || hex(value), '') FROM json_each(j, '$.source_ref')), '') ||
		coalesce((SELECT group_concat(' R' || hex(value), '') FROM json_each(j, '$.target_ref')), '') ||
		coalesce((SELECT group_concat(' R' || hex(value), '') FROM json_each(j, '$.sighting_of_ref')), '') ||
		coalesce((SELECT group_concat(' R' || hex(value), '') FROM json_each(j, '$.object_refs')), '') ||
		coalesce((SELECT group_concat(' R' || hex(value), '') FROM json_each(j, '$.where_sighted_refs')), '') ||
		coalesce((SELECT group_concat(' R' || hex(value), '') FROM json_each(j, '$.observed_data_refs')), '')
	ELSE '' END`
