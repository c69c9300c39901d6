"""The provenance index: every record's provenance in SQLite, so that matching, purging and the card's
figures need not parse millions of JSONL lines each time.

It lives in `<project>/.kiki/index.sqlite` and is a cache, never the source of truth: the data files and
their manifests are. Nothing is served from it unless it is verified again at each use:

- **The index file itself.** A schema version and the index file's own (device, inode) are stored in it;
  a different schema, a database SQLite cannot read, or an index file that is not the one this machine
  created (copied in, restored, or committed in a pull request: checkouts create new inodes) is deleted
  and rebuilt. It is never read without `.kiki/index.lock` held, so concurrent runs serialise.
- **Each data file.** The rows of a file are served only while the file verifies against its manifest
  entry (sha256 and size). The index records the manifest entry its rows were built from and the file's
  stat when it was last verified: device, inode, size, mtime_ns and ctime_ns. When that stat and the
  manifest entry are unchanged, the file is not hashed again. Trade-off: this trusts the file system's
  timestamps, as `git status` does; ctime cannot be set back by `touch` or `os.utime`, so an edit in
  place is still seen. Like git's "racily clean" rule, a stat recorded within RACY_NS of a change to the
  file is not trusted: that file is hashed again next time. Whenever the stat or the manifest entry
  differs, the file is hashed; a file that does not match its manifest (or has none) is never served.
  Callers stream such files exactly as before: the results, and the `file:line` errors, are the same.
- **Rows.** Each line is parsed once with `json.loads`, checked with the same rules as
  `records.parse_line` (lines it cannot vouch for go through `parse_line` itself, so every error is the
  same `BadInput`), and the content hash is the same canonical JSON hash. A file with a bad line is
  remembered as bad, with no rows: streaming it raises the error, in stream order.
- **Purges.** `purge.plan` takes byte ranges from the index; once a file is rewritten without them, the
  purge notes the cut (`note_cuts`) with the SHA-256 the file had and the one it has now (hashed as it
  was copied). When a file later verifies with exactly that hash, its rows are derived (cut rows deleted,
  later offsets and lines shifted), not parsed again; any other content is parsed again.

Incremental: only files whose manifest entry or stat changed are looked at again. A file that verifies
and whose first bytes are exactly the ones indexed (checked by hashing that prefix) has only its appended
lines parsed; any other changed file is parsed whole (in worker processes over the 2 cores when there is
much to parse), and its rows that did not change are kept, so the SQLite index work is proportional to
the records that changed. Per-file aggregates (records, bytes, tokens estimate, licences, domains, days)
are kept beside the rows, so the card's figures do not scan them.

Rows carry what matching needs, normalised as `matching.Matcher` compares it (lower-cased GitHub owner
and repository, exact path, reversed host labels for `domain:`, normalised URL path and query, Hub
dataset), so every selector is one or two indexed equality or range look-ups.

The package: `rows` (the fast line parser and the named types callers get), `schema` (the SQLite file, how
it is opened and vouched for, per-file bookkeeping), `refresh` (verify, hash, parse, merge, derive), `store`
(`opened`: the locked, refreshed index), `queries` (look-ups, figures, the eligibility rule over rows) and
`match` (selectors as look-ups). Nothing is imported here: the callers that need the index import it lazily.
"""
